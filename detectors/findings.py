"""What every detector reports: one :class:`Finding` per check per evaluation.

A finding is emitted for every evaluation, healthy or not, so that the alert
lifecycle downstream can tell "still bad" from "cleared". ``degraded`` says
whether the condition holds right now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "data_drift",
    "prediction_drift",
    "multivariate_drift",
    "concept_drift",
    "performance",
    "estimated_performance",
    "quality",
    "traffic",
    "kpi",
]
Severity = Literal["warning", "critical"]
Scalar = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class Finding:
    """One evaluated check.

    ``subject`` is what was checked: a feature name, ``"prediction"``,
    ``"score"``, ``"error"``, a metric name or a KPI name. ``detector`` is the
    test or metric (``"psi"``, ``"ks"``, ``"adwin"``, ``"accuracy"``...).
    ``window_end`` is the event time (epoch seconds) of the last event the
    evaluation saw; ``window_size`` how many events it covered. ``known_at`` is
    the event time from which the verdict was known, when later than
    ``window_end`` (realized performance of a window is known once its labels
    came); the alert lifecycle takes findings in that order.
    """

    kind: Kind
    detector: str
    subject: str
    statistic: float
    threshold: float
    degraded: bool
    window_end: float
    window_size: int
    p_value: float | None = None
    severity: Severity = "warning"
    summary: str = ""
    details: dict[str, Scalar] = field(default_factory=dict)
    known_at: float | None = None

    @property
    def decided_at(self) -> float:
        """Event time from which this verdict was known."""
        return self.window_end if self.known_at is None else max(self.known_at, self.window_end)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the check across evaluations: (kind, detector, subject)."""
        return (self.kind, self.detector, self.subject)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "detector": self.detector,
            "subject": self.subject,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "degraded": self.degraded,
            "window_end": self.window_end,
            "window_size": self.window_size,
            "p_value": self.p_value,
            "severity": self.severity,
            "summary": self.summary,
            "details": dict(self.details),
            "known_at": self.known_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Finding:
        return cls(**d)  # type: ignore[arg-type]
