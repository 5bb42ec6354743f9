"""Columnar micro-batches: the only shape in which events reach the detectors.

The daemon decodes a Kafka poll into these in one pass; detectors update
vectorized over them. Columns are numpy arrays of equal length ``n``:

* numeric feature: ``float64``, ``NaN`` where the value is missing (null,
  absent) or not a number (see ``type_errors``);
* categorical feature: ``object`` array of ``str`` or ``None`` (missing).
  Numbers and booleans sent for a categorical feature are turned into their
  JSON text (``1`` -> ``"1"``, ``true`` -> ``"true"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class PredictionBatch:
    """Prediction events of one model, in arrival order."""

    timestamps: np.ndarray  # float64 epoch seconds (event time)
    features: dict[str, np.ndarray]  # declared features only, see module doc
    prediction: np.ndarray  # float64 for regression; object (str labels) for binary/multiclass
    score: np.ndarray | None = None  # float64 P(positive) for binary; NaN where absent
    model_version: np.ndarray | None = None  # object array of str or None
    class_scores: dict[str, np.ndarray] | None = None  # multiclass: class -> float64 probability, NaN absent
    type_errors: dict[str, int] = field(default_factory=dict)  # feature -> values of the wrong type
    missing_keys: dict[str, int] = field(default_factory=dict)  # declared feature absent from event
    undeclared_keys: dict[str, int] = field(default_factory=dict)  # undeclared feature key -> count

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])


@dataclass(slots=True)
class OutcomeBatch:
    """Outcomes joined to their predictions (one row per matched pair)."""

    timestamps: np.ndarray  # float64 epoch seconds of the outcome event
    prediction_timestamps: np.ndarray  # float64 epoch seconds of the matched prediction
    y_true: np.ndarray  # same dtype convention as PredictionBatch.prediction
    y_pred: np.ndarray
    score: np.ndarray | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)  # the prediction's features (segments)
    kpis: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN where absent
    model_version: np.ndarray | None = None
    class_scores: dict[str, np.ndarray] | None = None  # multiclass probabilities, as in PredictionBatch

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def label_lag(self) -> np.ndarray:
        """Seconds between prediction and outcome, per row."""
        return self.timestamps - self.prediction_timestamps
