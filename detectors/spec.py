"""What a model looks like to the detectors: task, declared features, settings.

These are msgspec Structs so that the daemon's YAML loader can validate a
model's section strictly (unknown keys are errors) straight into them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from driftwarden.detectors.settings import MonitorSettings

Task = Literal["binary", "multiclass", "regression"]
FeatureType = Literal["numeric", "categorical"]


class FeatureSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A declared input feature.

    ``min``/``max`` are declared bounds (data quality); ``importance`` weights
    the feature when suspects are ranked (estimated from the reference if absent).
    """

    type: FeatureType
    min: float | None = None
    max: float | None = None
    importance: float | None = None


class ModelSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Everything the detectors need to know about one model."""

    task: Task
    features: dict[str, FeatureSpec]
    positive_label: str = "1"
    monitoring: MonitorSettings = msgspec.field(default_factory=MonitorSettings)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"
