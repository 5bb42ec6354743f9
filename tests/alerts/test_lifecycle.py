from __future__ import annotations

import json

import pytest

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from tests.alerts.conftest import T0, Recorder, finding, settings


def states(lc: AlertLifecycle) -> dict[str, str]:
    return {f"{a.labels['subject']}/{a.severity}": a.state for a in lc.alerts.values()}


@pytest.mark.parametrize(
    ("kwargs", "windows", "expected"),
    [
        # (lifecycle settings, degraded flags of successive 60 s windows, final states)
        # two consecutive bad windows fire
        ({}, [True, True], {"age/warning": "firing"}),
        # bad, good, bad: the streak restarts, still pending
        ({}, [True, False, True], {"age/warning": "pending"}),
        # a healthy window resolves a firing alert (resolve_after 0)
        ({}, [True, True, False], {"age/warning": "resolved"}),
        # resolve_after 2 min: one healthy window is not enough...
        ({"resolve_after": 120}, [True, True, False], {"age/warning": "firing"}),
        # ...three are (cleared at t, t+60, t+120)
        ({"resolve_after": 120}, [True, True, False, False, False], {"age/warning": "resolved"}),
        # a flap inside resolve_after keeps it firing
        ({"resolve_after": 120}, [True, True, False, True, False, False], {"age/warning": "firing"}),
        # for_seconds replaces for_windows: degraded for 3 min
        ({"for_seconds": 180}, [True, True, True], {"age/warning": "pending"}),
        ({"for_seconds": 180}, [True, True, True, True], {"age/warning": "firing"}),
    ],
)
def test_transitions(kwargs: dict[str, float], windows: list[bool], expected: dict[str, str]) -> None:
    lc = AlertLifecycle(**kwargs)  # type: ignore[arg-type]
    for i, bad in enumerate(windows):
        lc.update("churn", {}, [finding("age", bad, T0 + 60 * i)], now=T0 + 60 * i + 1)
    assert states(lc) == expected


def test_critical_holds_warning_and_deescalation() -> None:
    lc = AlertLifecycle(for_windows=1)
    lc.update("m", {}, [finding("age", True, T0, severity="critical")], now=T0)
    assert states(lc) == {"age/warning": "firing", "age/critical": "firing"}  # critical implies warning
    lc.update("m", {}, [finding("age", True, T0 + 60, severity="warning")], now=T0 + 60)
    assert states(lc) == {"age/warning": "firing", "age/critical": "resolved"}
    # two findings per key in one window (warning and critical thresholds) are merged
    lc.update(
        "m",
        {},
        [finding("age", True, T0 + 120, severity="warning"), finding("age", True, T0 + 120, severity="critical")],
        now=T0 + 120,
    )
    assert states(lc) == {"age/warning": "firing", "age/critical": "firing"}


def test_new_model_version_resolves_old_alerts_and_state_round_trips() -> None:
    box = Outbox()
    try:
        rec = Recorder()
        pipe = AlertPipeline(settings(group_wait=0), box, {"log": rec})
        for t in (T0, T0 + 60):
            pipe.ingest("churn", {"model_version": "1"}, [finding("age", True, t)], now=t)
        pipe.flush(T0 + 60)
        # checkpoint -> JSON -> a fresh pipeline continues exactly
        saved = json.loads(json.dumps(pipe.state()))
        again = AlertPipeline(settings(group_wait=0), box, {"log": rec})
        again.load_state(saved)
        assert again.state() == pipe.state()
        changed = again.ingest("churn", {"model_version": "2"}, [finding("age", True, T0 + 120)], now=T0 + 120)
        assert [(a.labels["model_version"], a.state) for a in changed] == [("1", "resolved"), ("2", "pending")]
        assert changed[0].annotations["resolved_by"] == "model version 2 replaced 1"
        again.flush(T0 + 400)
        again.deliver(T0 + 400)
        assert [n.reason for n in rec.sent] == ["first_notification", "resolved"]
    finally:
        box.close()


def test_attach_report_annotates_and_replies_in_thread() -> None:
    box = Outbox()
    try:
        rec = Recorder()
        pipe = AlertPipeline(settings(group_wait=0), box, {"log": rec})
        for t in (T0, T0 + 60):
            pipe.ingest("churn", {}, [finding("age", True, t)], now=t)
        pipe.flush(T0 + 60)
        fp = next(iter(pipe.lifecycle.alerts.values())).fingerprint
        pipe.attach_report(fp, "https://dw.example/reports/1", "*Top suspect*: `plan=pro`")
        pipe.flush(T0 + 360)
        pipe.deliver(T0 + 360)
        assert [(n.reason, n.thread_role) for n in rec.sent] == [("first_notification", "root"), ("report_attached", "reply")]
        assert rec.sent[1].alerts[0].annotations["report_link"] == "https://dw.example/reports/1"
    finally:
        box.close()


def test_silence_lifted_while_firing_notifies() -> None:
    box = Outbox()
    try:
        rec = Recorder()
        pipe = AlertPipeline(settings(group_wait=0), box, {"log": rec})
        sid = pipe.silences.add(['model="churn"'], T0, T0 + 3600, "deploy", "ana")
        for t in (T0, T0 + 60):
            pipe.ingest("churn", {}, [finding("age", True, t)], now=t)
        pipe.flush(T0 + 60)
        assert rec.sent == [] and box.pending_count() == 0
        pipe.silences.expire(sid, T0 + 100)
        pipe.flush(T0 + 360)
        pipe.deliver(T0 + 360)
        assert [n.reason for n in rec.sent] == ["first_notification"]
    finally:
        box.close()


def test_a_firing_alert_whose_check_stops_being_evaluated_resolves_after_resolve_timeout() -> None:
    from driftwarden.alerts.lifecycle import AlertLifecycle
    from driftwarden.detectors.findings import Finding

    lc = AlertLifecycle(for_windows=1, resolve_timeout=3600)
    bad = Finding("performance", "accuracy", "accuracy", 0.5, 0.7, True, 1000.0, 500)
    assert [a.state for a in lc.update("churn", {}, [bad], now=1000)] == ["firing"]
    assert lc.expire(1000 + 3599) == []  # still within the timeout
    (resolved,) = lc.expire(1000 + 3600)
    assert resolved.state == "resolved" and resolved.ends_at == 4600
    assert "resolve_timeout" in resolved.annotations["resolved_by"]
    assert AlertLifecycle(resolve_timeout=None).expire(1e12) == []
