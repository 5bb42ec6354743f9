"""Which alert of a fault is its most likely cause: the first line of its notification.

Order: firing before resolved; then by kind, causes before effects (broken input -> traffic or
data quality; a moved feature -> data drift, then the joint distribution; a changed relation
-> concept drift; all of these move the model's output -> prediction drift, which shows up in
realized performance before an estimate of it, and in business KPIs last); then critical over
warning; then the alert furthest past its threshold (relative to the threshold); then the
earliest start.

>>> from driftwarden.alerts.model import Alert
>>> def a(kind, subject, sev="warning", stat=0.3):
...     return Alert(fingerprint=subject, severity=sev, state="firing", starts_at=0,
...                  labels={"kind": kind, "subject": subject}, values={"statistic": stat, "threshold": 0.2})
>>> [x.labels["subject"] for x in by_cause([a("prediction_drift", "score"), a("data_drift", "age", stat=1.4),
...                                         a("data_drift", "spend", "critical"), a("estimated_performance", "f1"),
...                                         a("performance", "f1")])]
['spend', 'age', 'score', 'f1', 'f1']
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from driftwarden.alerts.model import SEVERITY_RANK, Alert

CAUSE_ORDER = ("traffic", "quality", "data_drift", "multivariate_drift", "concept_drift", "prediction_drift",
               "performance", "estimated_performance", "kpi")
_RANK = {kind: i for i, kind in enumerate(CAUSE_ORDER)}


def exceedance(alert: Alert) -> float:
    """How far past its threshold, relative to the threshold (0 when unknown)."""
    stat, thr = alert.values.get("statistic"), alert.values.get("threshold")
    if stat is None or thr is None or not (math.isfinite(stat) and math.isfinite(thr)):
        return 0.0
    return abs(stat - thr) / max(abs(thr), 1e-12)


def cause_key(alert: Alert) -> tuple[bool, int, int, float, float, str]:
    return (alert.state != "firing", _RANK.get(alert.labels.get("kind", ""), len(CAUSE_ORDER)),
            -SEVERITY_RANK.get(alert.severity, 0), -exceedance(alert), alert.starts_at, alert.key)


def by_cause(alerts: Iterable[Alert]) -> list[Alert]:
    """``alerts``, most likely cause first."""
    return sorted(alerts, key=cause_key)
