"""Retraining requests to a local CI receiver that verifies signatures; presets; policy."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.settings import AlertingSettings
from driftwarden.alerts.webhook import sign, verify_signature
from tests.alerts.conftest import SECRET, T0, Recorder, finding, settings
from tests.alerts.servers import CiState

ENV = {"CI_SECRET": SECRET, "GH_TOKEN": "ghp-test", "GL_TOKEN": "glptt-test"}


def ci_pipeline(url: str, box: Outbox, preset: str = "generic", **policy: object) -> AlertPipeline:
    hook: dict[str, object] = {"type": "webhook", "url": url, "secret_env": "CI_SECRET", "preset": preset}
    if preset != "generic":
        hook["token_env"] = "GH_TOKEN" if preset == "github" else "GL_TOKEN"
    cfg: AlertingSettings = settings(
        receivers={"ci": hook}, group_wait=0, retraining={"churn": {"receiver": "ci", "min_new_labels": 1000, **policy}}
    )
    return AlertPipeline(cfg, box, {**build_notifiers(cfg, environ=ENV), "log": Recorder()})


def degrade(pipe: AlertPipeline, t: float, subject: str = "age", kind: str = "data_drift", bad: bool = True) -> None:
    for dt in (0.0, 60.0):
        pipe.ingest("churn", {"model_version": "3.2.0"}, [finding(subject, bad, t + dt, kind=kind)], now=t + dt)


def test_generic_retraining_request_is_signed_and_sent_once(ci: tuple[str, CiState]) -> None:
    url, server = ci
    box = Outbox()
    try:
        pipe = ci_pipeline(url + "/retrain", box)
        pipe.note_labels("churn", 400, "3.2.0", now=T0)
        degrade(pipe, T0)
        for t in range(int(T0 + 60), int(T0 + 600), 10):  # many windows, labels short: nothing
            pipe.ingest("churn", {"model_version": "3.2.0"}, [finding("age", True, t)], now=t)
            pipe.flush(t)
        assert [e for e in box.entries() if e.receiver == "ci"] == []
        assert pipe.retrain.why_not("churn") == "waiting for labels: 400 of 1000 new labelled samples"
        pipe.note_labels("churn", 1500, "3.2.0", now=T0 + 600)
        for now in (T0 + 600, T0 + 610, T0 + 620):
            server.now = now  # the receiver's clock: within the 5-minute replay window
            pipe.flush(now)
            pipe.deliver(now)
        (req,) = server.accepted
        body = json.loads(req["body"])
        assert set(body) == {"version", "model", "model_version", "reason", "evidence", "idempotency_key", "group_key", "sent_at"}
        assert (body["version"], body["model"], body["model_version"]) == (1, "churn", "3.2.0")
        assert body["evidence"][0]["statistic"] == 0.31 and body["evidence"][0]["threshold"] == 0.2
        assert req["headers"]["x-driftwarden-signature"].startswith("v1=")
        assert len(server.requests) == 1
        print("RETRAIN_REQUEST", req["body"].decode())
    finally:
        box.close()


def test_cooldown_max_per_day_and_inhibited_drift(ci: tuple[str, CiState]) -> None:
    url, server = ci
    box = Outbox()
    try:
        pipe = ci_pipeline(url + "/retrain", box, min_new_labels=0, cooldown="1h", max_per_day=2)
        pipe.note_labels("churn", 0, "3.2.0", now=T0)
        # drift while a data-quality alert fires: inhibited, no retraining on broken data
        degrade(pipe, T0, "schema", kind="quality")
        degrade(pipe, T0, "age")
        pipe.flush(T0 + 60)
        assert pipe.retrain.why_not("churn") == "no new triggering alert"
        degrade(pipe, T0 + 120, "schema", kind="quality", bad=False)  # quality recovers
        pipe.flush(T0 + 180)
        assert len([e for e in box.entries() if e.receiver == "ci"]) == 1  # now the drift counts
        degrade(pipe, T0 + 200, "plan")  # another degradation within the cooldown
        pipe.flush(T0 + 300)
        assert pipe.retrain.why_not("churn").startswith("cooldown")
        pipe.flush(T0 + 180 + 3600)  # cooldown over: the plan drift gets its own request
        degrade(pipe, T0 + 4000, "tenure")
        pipe.flush(T0 + 180 + 7200 + 1)
        assert pipe.retrain.why_not("churn") == "max_per_day reached (2)"
        assert len([e for e in box.entries() if e.receiver == "ci"]) == 2
        server.now = T0 + 10000
        pipe.deliver(T0 + 10000)
        assert len(server.accepted) == 2
    finally:
        box.close()


@pytest.mark.parametrize("preset", ["github", "gitlab"])
def test_ci_presets(preset: str, ci: tuple[str, CiState]) -> None:
    url, server = ci
    box = Outbox()
    try:
        path = "/repos/acme/models/dispatches" if preset == "github" else "/api/v4/projects/7/trigger/pipeline"
        pipe = ci_pipeline(url + path, box, preset=preset, min_new_labels=0)
        degrade(pipe, T0)
        pipe.flush(T0 + 60)
        pipe.deliver(T0 + 60)
        (req,) = server.accepted
        if preset == "github":
            doc = json.loads(req["body"])
            assert doc["event_type"] == "driftwarden-retrain" and doc["client_payload"]["model"] == "churn"
            assert req["headers"]["authorization"] == "Bearer ghp-test"
        else:
            form = dict(urllib.parse.parse_qsl(req["body"].decode()))
            assert form["token"] == "glptt-test" and form["ref"] == "main"
            assert json.loads(form["variables[DRIFTWARDEN_PAYLOAD]"])["model"] == "churn"
    finally:
        box.close()


def test_receiver_errors_and_retry(ci: tuple[str, CiState]) -> None:
    url, server = ci
    box = Outbox()
    try:
        pipe = ci_pipeline(url + "/retrain", box, min_new_labels=0)
        degrade(pipe, T0)
        pipe.flush(T0 + 60)
        server.script = ["503", "400"]
        pipe.deliver(T0 + 60)
        assert box.pending_count() == 1  # 503: retry later
        assert pipe.deliver(T0 + 65) == 0  # 400: permanent, recorded
        (entry,) = [e for e in box.entries() if e.receiver == "ci"]
        assert entry.failed_at == T0 + 65 and "HTTP 400" in (entry.last_error or "")
    finally:
        box.close()


@pytest.mark.parametrize(
    ("timestamp", "body", "now", "secret", "ok"),
    [
        ("1000", b"{}", 1000, SECRET, True),  # fresh and intact
        ("1000", b"{}", 1300, SECRET, True),  # exactly at the 5-minute edge
        ("1000", b"{}", 1301, SECRET, False),  # replay: older than 5 minutes
        ("1000", b"{}", 699, SECRET, False),  # from the future beyond tolerance
        ("1000", b"{ }", 1000, SECRET, False),  # body changed
        ("1001", b"{}", 1000, SECRET, False),  # timestamp changed
        ("1000", b"{}", 1000, "other", False),  # wrong secret
        ("soon", b"{}", 1000, SECRET, False),  # not a number
    ],
)
def test_verify_signature(timestamp: str, body: bytes, now: float, secret: str, ok: bool) -> None:
    signature = sign(SECRET, "1000", b"{}")
    assert verify_signature(secret, timestamp, body, signature, now=now) is ok
