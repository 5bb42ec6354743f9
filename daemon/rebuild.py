"""Reset the reference after retraining: the last step of monitor -> explain -> retrain.

When a model's events start carrying a new ``model_version`` and the model's config says
``rebuild_reference.on_new_version: true``, the first ``rows`` labelled events of the new
version (joined outcomes: features, prediction, score, outcome, KPIs) become the model's new
reference. It is written as Parquet under ``rebuild_reference.directory`` (so a restart and an
auditor find it) and the model's detectors are rebuilt on it. While the rows are being
collected, drift findings of the model are held back: the old reference describes the old
model's world, against which the new model's predictions would all look drifted.

Rows collected but not yet complete are not checkpointed: after a restart the collection
starts again from the restart's first events (the rebuild is later, never wrong).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.findings import Finding

log = logging.getLogger(__name__)
HELD_KINDS = {"data_drift", "prediction_drift", "multivariate_drift", "estimated_performance"}


class RebuildSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    on_new_version: bool = False
    rows: int = 20_000  # labelled events of the new version that form the new reference
    directory: str = "references"


class ReferenceRebuilder:
    def __init__(self, model_id: str, settings: RebuildSettings) -> None:
        self.model_id = model_id
        self.settings = settings
        self.version: str | None = None  # the version being collected, None when idle
        self._parts: list[OutcomeBatch] = []
        self._rows = 0

    @property
    def active(self) -> bool:
        return self.version is not None

    def start(self, version: str) -> None:
        if self.settings.on_new_version:
            self.version, self._parts, self._rows = version, [], 0
            log.info("model %s: collecting %d labelled events of version %s for a new reference",
                     self.model_id, self.settings.rows, version)

    def hold(self, findings: Sequence[Finding]) -> list[Finding]:
        """The findings that may reach the alerts while a rebuild is pending."""
        return [f for f in findings if f.kind not in HELD_KINDS] if self.active else list(findings)

    def add(self, batch: OutcomeBatch) -> OutcomeBatch | None:
        """Collect the new version's rows; the complete new reference once ``rows`` are in."""
        if not self.active or batch.model_version is None:
            return None
        mask = batch.model_version == self.version
        if not mask.any():
            return None
        self._parts.append(take(batch, np.flatnonzero(mask)))
        self._rows += int(mask.sum())
        if self._rows < self.settings.rows:
            return None
        reference = take(concat(self._parts), np.arange(self.settings.rows))
        self.version, self._parts, self._rows = None, [], 0
        return reference


def take(batch: OutcomeBatch, index: np.ndarray) -> OutcomeBatch:
    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[index]

    return OutcomeBatch(
        timestamps=batch.timestamps[index], prediction_timestamps=batch.prediction_timestamps[index],
        y_true=batch.y_true[index], y_pred=batch.y_pred[index], score=pick(batch.score),
        features={k: v[index] for k, v in batch.features.items()},
        kpis={k: v[index] for k, v in batch.kpis.items()}, model_version=pick(batch.model_version),
    )


def concat(parts: Sequence[OutcomeBatch]) -> OutcomeBatch:
    def cat(arrays: Sequence[np.ndarray | None]) -> np.ndarray | None:
        return None if any(a is None for a in arrays) else np.concatenate(arrays)  # type: ignore[arg-type]

    return OutcomeBatch(
        timestamps=np.concatenate([p.timestamps for p in parts]),
        prediction_timestamps=np.concatenate([p.prediction_timestamps for p in parts]),
        y_true=np.concatenate([p.y_true for p in parts]), y_pred=np.concatenate([p.y_pred for p in parts]),
        score=cat([p.score for p in parts]),
        features={k: np.concatenate([p.features[k] for p in parts]) for k in parts[0].features},
        kpis={k: np.concatenate([p.kpis.get(k, np.full(len(p), np.nan)) for p in parts]) for k in parts[0].kpis},
        model_version=cat([p.model_version for p in parts]),
    )


def write_reference(batch: OutcomeBatch, directory: Path, model_id: str, version: str) -> Path:
    """The rebuilt reference as Parquet in the reference file format (see README)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(float(batch.timestamps.max()), UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model_id}-{version}")[:120]
    path = directory / f"{safe}-{stamp}.parquet"

    def arrow(values: np.ndarray) -> pa.Array:
        if values.dtype.kind == "O":
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
        return pa.array(values)

    cols: dict[str, np.ndarray] = {name: values for name, values in batch.features.items()}
    cols.update(prediction=batch.y_pred, outcome=batch.y_true, timestamp=batch.timestamps)
    if batch.score is not None:
        cols["score"] = batch.score
    if batch.model_version is not None:
        cols["model_version"] = batch.model_version
    cols.update({f"kpi_{k}": v for k, v in batch.kpis.items()})
    pq.write_table(pa.table({k: arrow(v) for k, v in cols.items()}), path)
    return path
