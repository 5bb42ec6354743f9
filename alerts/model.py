"""The alert: identity (fingerprint), labels, annotations, numbers and lifecycle timestamps.

The fingerprint names the checked condition: model, kind, detector and subject (feature,
segment, metric). Severity is not part of it, so that a critical alert can hold the warning
of the same fingerprint; an alert is identified by ``key = fingerprint/severity`` and one
occurrence of it (pending -> firing -> resolved) by ``instance = key@starts_at``.

>>> fp = fingerprint("churn", "data_drift", "psi", "age")
>>> fp
'00cc4e21a01b3de5'
>>> a = Alert(fingerprint=fp, severity="warning", labels={"model": "churn"}, starts_at=100.0)
>>> a.key, a.instance, a.state
('00cc4e21a01b3de5/warning', '00cc4e21a01b3de5/warning@100', 'pending')
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

State = Literal["pending", "firing", "resolved"]
SEVERITY_RANK = {"warning": 1, "critical": 2}


def fingerprint(model: str, kind: str, detector: str, subject: str) -> str:
    """Stable 16-hex-digit id of a checked condition (independent of version and severity)."""
    raw = "\x1f".join((model, kind, detector, subject)).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


class Alert(msgspec.Struct, kw_only=True):
    """One alert. ``values`` holds the numbers (statistic, threshold, p_value, window_size)."""

    fingerprint: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    values: dict[str, float | None] = msgspec.field(default_factory=dict)
    state: State = "pending"
    starts_at: float
    fired_at: float | None = None
    ends_at: float | None = None
    degraded_windows: int = 0
    last_degraded_at: float | None = None
    clear_since: float | None = None
    last_evaluated_at: float | None = None  # event time of the last evaluation of the check

    @property
    def key(self) -> str:
        return f"{self.fingerprint}/{self.severity}"

    @property
    def instance(self) -> str:
        return f"{self.key}@{self.starts_at:.17g}"

    @property
    def model(self) -> str:
        return self.labels.get("model", "")

    def copy(self) -> Alert:
        return msgspec.convert(msgspec.to_builtins(self), Alert)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form used in notification payloads and state."""
        out: dict[str, object] = msgspec.to_builtins(self)
        return out


def alert_from_dict(data: object) -> Alert:
    return msgspec.convert(data, Alert)
