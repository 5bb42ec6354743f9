from __future__ import annotations

import pytest

from driftwarden.alerts.inhibit import Inhibitor
from driftwarden.alerts.model import Alert
from driftwarden.alerts.settings import AlertingSettings


def alert(
    fp: str, kind: str, severity: str = "warning", model: str = "churn", state: str = "firing", subject: str = "age"
) -> Alert:
    labels = {"model": model, "kind": kind, "severity": severity, "detector": "psi", "subject": subject}
    return Alert(fingerprint=fp, severity=severity, labels=labels, state=state, starts_at=0)  # type: ignore[arg-type]


RULES = AlertingSettings().inhibit_rules  # the defaults

CASES = [
    # (all alerts, the one under test, held?)
    # a data-quality alert fires for the model: its drift alert is held
    ([alert("q", "quality"), alert("d", "data_drift")], "d", True),
    # staleness / consumer lag come as kind=traffic: they hold drift too
    ([alert("t", "traffic"), alert("d", "prediction_drift")], "d", True),
    # ...but only for the same model
    ([alert("q", "quality", model="fraud"), alert("d", "data_drift")], "d", False),
    # a pending (not firing) quality alert holds nothing
    ([alert("q", "quality", state="pending"), alert("d", "data_drift")], "d", False),
    # performance alerts are not drift: not held by quality
    ([alert("q", "quality"), alert("p", "performance")], "p", False),
    # the quality alert itself is not held
    ([alert("q", "quality"), alert("d", "data_drift")], "q", False),
    # critical holds the warning of the same check (same fingerprint, other severity)
    ([alert("d", "performance", "critical"), alert("d", "performance", "warning")], "d/warning", True),
    # ...not the warning of another subject
    ([alert("x", "performance", "critical", subject="f1"), alert("y", "performance", "warning")], "y", False),
    # the critical one is not held by itself
    ([alert("d", "performance", "critical")], "d/critical", False),
    # a resolved drift alert passes even while quality fires (its resolution is news)
    ([alert("q", "quality"), alert("d", "data_drift", state="resolved")], "d", False),
]


@pytest.mark.parametrize(("alerts", "target", "held"), CASES)
def test_default_inhibition(alerts: list[Alert], target: str, held: bool) -> None:
    stage = Inhibitor(RULES, sources=lambda: alerts)
    (subject,) = [a for a in alerts if target in (a.fingerprint, a.key)]
    passed = stage(alerts, now=0)
    assert (subject not in passed) is held
