"""What an on-call person must be told: the *topic* of an alert, and whether a new alert is news.

One fault moves several checks that say the same thing: F1, ROC AUC and accuracy all fall,
the estimate is confirmed by realized values, ADWIN sees the error rate rise. Each is a line
in the fault's notification, but only news earns a notification of its own. The topic of an
alert is what it tells a person:

- an input-side check (traffic, data quality, data drift, the joint distribution) tells that
  *its subject* changed: ``feature:age`` and ``feature:income`` are two pieces of news, and the
  data-quality and data-drift checks of one feature tell the same (a new category is both an
  unseen-category rate and a drift of ``region``; nulls are both a missing rate and a drift);
  the joint distribution's alert that puts most of the change on one feature (``blames:
  age (95%), ...``) tells what ``feature:age`` told, one whose correlation changed is news;
- prediction drift tells that the model's output moved (``prediction``);
- realized or estimated performance and concept drift tell that the model got worse
  (``performance``), whichever metric or detector says it;
- business KPIs tell that the business felt it (``kpi``).

A new firing alert in a fault already notified is news when its topic was not told in that
fault's thread yet. An escalation to critical is not: the warning and the critical of one check
never both notify (the critical supersedes the warning in the fault's list, :mod:`alerts.supersede`,
and leads any later message of the thread).

>>> from driftwarden.alerts.model import Alert
>>> def a(kind, subject, sev="warning"):
...     return Alert(fingerprint=subject, severity=sev, state="firing", starts_at=0, labels={"kind": kind, "subject": subject})
>>> told = told_topics([a("performance", "accuracy"), a("data_drift", "age", "critical")])
>>> told
{'performance': 1, 'feature:age': 2}
>>> pca = a("multivariate_drift", "features"); pca.annotations["blames"] = "age (95%), tenure_days (4%)"
>>> topic(pca), is_news(pca, told)
('feature:age', False)
>>> pca.annotations["blames"] = "income, debt (corr 0.80 -> 0.02)"
>>> topic(pca), is_news(pca, told)
('multivariate_drift:features', True)
>>> [is_news(x, told) for x in (a("performance", "f1"), a("concept_drift", "error"), a("performance", "f1", "critical"),
...                              a("data_drift", "income"), a("data_drift", "age"))]
[False, False, False, True, False]
>>> is_news(a("quality", "age"), told), topic(a("quality", "age"))  # its missing rate: age again
(False, 'feature:age')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from driftwarden.alerts.model import SEVERITY_RANK, Alert

FEATURE_KINDS = frozenset({"data_drift", "quality"})  # checks of one input feature: its subject is the topic
OUTPUT_TOPICS = {"prediction_drift": "prediction", "performance": "performance",
                 "estimated_performance": "performance", "concept_drift": "performance", "kpi": "kpi"}


def topic(alert: Alert) -> str:
    """What ``alert`` tells a person (see the module doc)."""
    kind = alert.labels.get("kind", "")
    if kind == "multivariate_drift" and (lead := _leading_feature(alert.annotations.get("blames", ""))):
        return f"feature:{lead}"
    if kind in FEATURE_KINDS:
        return f"feature:{alert.labels.get('subject', '')}"
    return OUTPUT_TOPICS.get(kind) or f"{kind}:{alert.labels.get('subject', '')}"


def _leading_feature(blames: str) -> str | None:
    """The feature a multivariate alert puts most of the change on (``age (95%), ...``); None for a
    changed correlation (``income, debt (corr 0.80 -> 0.02)``: news of its own)."""
    found = re.match(r"\s*([^,(]+?) \(\d+%\)", blames)
    return found.group(1) if found else None


def told_topics(alerts: Iterable[Alert], told: Mapping[str, int] | None = None) -> dict[str, int]:
    """Topic -> highest severity rank among ``alerts`` (and ``told``, the topics told before)."""
    out = dict(told or {})
    for a in alerts:
        t = topic(a)
        out[t] = max(out.get(t, 0), SEVERITY_RANK.get(a.severity, 1))
    return out


def is_news(alert: Alert, told: Mapping[str, int]) -> bool:
    """Whether ``alert`` says something its fault's thread has not said (its topic)."""
    return topic(alert) not in told
