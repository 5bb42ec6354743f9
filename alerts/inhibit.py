"""Inhibition: firing *source* alerts hold matching *target* alerts with equal labels.

An alert never inhibits itself. Resolved targets pass (their resolution is news).

>>> from driftwarden.alerts.settings import InhibitRule
>>> from driftwarden.alerts.model import Alert
>>> rule = InhibitRule(source_matchers=['kind="quality"'], target_matchers=['kind="data_drift"'])
>>> quality = Alert(fingerprint="q", severity="warning", state="firing", starts_at=0,
...                 labels={"model": "churn", "kind": "quality"})
>>> drift = Alert(fingerprint="d", severity="warning", state="firing", starts_at=0,
...               labels={"model": "churn", "kind": "data_drift"})
>>> inhibit = Inhibitor([rule], sources=lambda: [quality, drift])
>>> [a.fingerprint for a in inhibit([quality, drift], now=0)]
['q']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from driftwarden.alerts.matchers import Matcher, matches, parse_matchers
from driftwarden.alerts.model import Alert
from driftwarden.alerts.settings import InhibitRule


class Inhibitor:
    """Stage that drops firing alerts held by an inhibition rule."""

    def __init__(self, rules: Sequence[InhibitRule], sources: Callable[[], Sequence[Alert]]):
        self._rules: list[tuple[tuple[Matcher, ...], tuple[Matcher, ...], tuple[str, ...]]] = [
            (parse_matchers(r.source_matchers), parse_matchers(r.target_matchers), tuple(r.equal)) for r in rules
        ]
        self._sources = sources

    def inhibited_by(self, alert: Alert, firing: Sequence[Alert]) -> Alert | None:
        """The firing alert that holds ``alert``, or None."""
        for source_m, target_m, equal in self._rules:
            if not matches(target_m, alert.labels):
                continue
            for source in firing:
                if source.key == alert.key or not matches(source_m, source.labels):
                    continue
                if all(source.labels.get(n, "") == alert.labels.get(n, "") for n in equal):
                    return source
        return None

    def __call__(self, alerts: Sequence[Alert], now: float) -> list[Alert]:
        firing = [a for a in self._sources() if a.state == "firing"]
        return [a for a in alerts if a.state != "firing" or self.inhibited_by(a, firing) is None]
