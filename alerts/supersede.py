"""Supersession: one line per check and per fault, whatever the configured inhibition rules say.

- The ``critical`` alert of a check supersedes its ``warning`` (same fingerprint): while the
  critical fires, the warning is never shown, firing or resolved (nor resolved together with
  it; a warning that outlives its critical is shown again: de-escalation); a critical that
  started after its warning carries ``annotations["supersedes"] = "warning"``, so that an
  escalation reads as one alert, not two.
- Realized performance supersedes the estimate of the same model and metric: while a
  ``performance`` alert fires, the ``estimated_performance`` alert of its subject is not shown
  and the realized one quotes the estimate (``annotations["estimate"]``).

>>> from driftwarden.alerts.model import Alert
>>> def a(sev, kind="data_drift", subject="age", state="firing", t=0):
...     return Alert(fingerprint=f"{kind}/{subject}", severity=sev, state=state, starts_at=t, values={"statistic": 0.6},
...                  labels={"model": "churn", "kind": kind, "subject": subject})
>>> shown = Superseder(sources=lambda: [])([a("warning"), a("critical", t=60)], now=60)
>>> [(x.severity, x.annotations.get("supersedes")) for x in shown]
[('critical', 'warning')]
>>> stage = Superseder(sources=lambda: [])
>>> shown = stage([a("warning", "estimated_performance", "f1"), a("critical", "performance", "f1")], now=0)
>>> [(x.labels["kind"], x.annotations.get("estimate")) for x in shown]
[('performance', 'estimated_performance f1 0.6 (warning)')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from driftwarden.alerts.model import Alert

REALIZED, ESTIMATED = "performance", "estimated_performance"


class Superseder:
    """Stage: drop warnings held by their critical and estimates held by realized performance."""

    def __init__(self, sources: Callable[[], Sequence[Alert]]):
        self._sources = sources

    def __call__(self, alerts: Sequence[Alert], now: float) -> list[Alert]:
        known = [*self._sources(), *alerts]
        critical = {a.fingerprint for a in known if a.severity == "critical" and a.state == "firing"}
        critical_here = {a.fingerprint for a in alerts if a.severity == "critical"}
        realized = {_metric(a): a for a in known if a.labels.get("kind") == REALIZED and a.state == "firing"}
        warned = {a.fingerprint: a.starts_at for a in known if a.severity == "warning" and a.state == "firing"}
        estimates = {_metric(a): a for a in alerts if a.labels.get("kind") == ESTIMATED}
        out: list[Alert] = []
        for alert in alerts:
            if alert.severity == "warning" and (alert.fingerprint in critical or (
                    alert.state == "resolved" and alert.fingerprint in critical_here)):
                continue
            if alert.labels.get("kind") == ESTIMATED and _metric(alert) in realized:
                continue
            notes: dict[str, str] = {}
            if alert.severity == "critical" and alert.state == "firing" and warned.get(alert.fingerprint, now) < alert.starts_at:
                notes["supersedes"] = "warning"
            estimate = estimates.get(_metric(alert)) if alert.labels.get("kind") == REALIZED else None
            if estimate is not None and alert.state == "firing":
                stat = estimate.values.get("statistic")
                number = f" {stat:.4g}" if stat is not None else ""
                notes["estimate"] = f"{ESTIMATED} {estimate.labels.get('subject', '')}{number} ({estimate.severity})"
            if notes:
                alert = alert.copy()
                alert.annotations.update(notes)
            out.append(alert)
        return out


def _metric(alert: Alert) -> tuple[str, str]:
    return alert.labels.get("model", ""), alert.labels.get("subject", "")
