"""The alertmanager receiver against a real Prometheus Alertmanager (built once from its Go module).

Alertmanager reads the wall clock, so these tests pass the wall clock as ``now`` to flush and
deliver; event times (``startsAt``) are an hour before it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import msgspec
import pytest

from driftwarden.alerts.alertmanager import TIME_BASIS, AlertmanagerNotifier, rfc3339
from driftwarden.alerts.notify import Notification
from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.redact import redact
from tests.alerts.conftest import T0, Recorder, finding, settings
from tests.alerts.servers import serve
from tests.broker.alertmanager import Alertmanager

EVERYTHING = "?active=true&silenced=true&inhibited=true&unprocessed=true"
LABELS = {"model_version": "3.2.0", "team.name": "growth"}


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    am = Alertmanager()
    try:
        am.start()
        yield am
    finally:
        am.close()


def pipeline(url: str, box: Outbox, **receiver: Any) -> AlertPipeline:
    cfg = settings(
        receivers={"am": {"type": "alertmanager", "url": url, "reports_url": "http://driftwarden:8080/reports", **receiver}},
        route={"receiver": "am", "repeat_interval": "5m", "group_interval": "1m"},
        group_wait=0,
    )
    return AlertPipeline(cfg, box, {**build_notifiers(cfg, environ={}), "log": Recorder()})


def fire(pipe: AlertPipeline, t0: float) -> None:
    for dt in (0.0, 60.0):  # for_windows = 2
        pipe.ingest("churn", LABELS, [finding("age", True, t0 + dt)], now=t0 + dt)


def received(am: Alertmanager) -> dict[str, float]:
    """Alertmanager's own counters of alerts received, by status, and of invalid ones."""
    with urllib.request.urlopen(am.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.findall(r'^alertmanager_alerts_(received|invalid)_total\{(?:status="(\w+)",)?version="v2"\} (\S+)$', text, re.M)
    return {status or kind: float(value) for kind, status, value in found}


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_alert_fires_updates_and_resolves_in_alertmanager(alertmanager: Alertmanager) -> None:
    now = time.time()
    t0 = float(int(now) - 3600)
    box = Outbox()
    pipe = pipeline(alertmanager.url, box)
    fire(pipe, t0)
    pipe.flush(now)
    assert pipe.deliver(now) == 1

    (got,) = alertmanager.get("/api/v2/alerts" + EVERYTHING)  # type: ignore[misc]
    assert got["labels"] == {
        "alertname": "driftwarden_data_drift", "model": "churn", "kind": "data_drift", "detector": "psi",
        "subject": "age", "severity": "warning", "model_version": "3.2.0", "team_name": "growth",
    }
    notes = got["annotations"]
    assert notes["statistic"] == "0.31" and notes["threshold"] == "0.2" and notes["window_size"] == "5000"
    assert notes["summary"] and notes["detail_top_suspects"] == "plan=pro (+18%), country=DE (+9%)"
    assert notes["description"] == "psi 0.31 over 5,000 events (threshold 0.2)" and notes["time_basis"] == TIME_BASIS
    assert when(got["startsAt"]) == t0  # event time of the first degraded window
    assert when(got["endsAt"]) == pytest.approx(now + 3 * (300 + 60), abs=0.002)  # the lease: 3 x (repeat + group)
    assert got["generatorURL"] == "http://driftwarden:8080/reports/churn/"
    assert got["status"]["state"] == "active"

    link = "http://driftwarden:8080/reports/churn/r1/report.html"
    pipe.attach_report(pipe.lifecycle.active()[0].fingerprint, link, "# PSI drift on age")
    later = now + 61  # the next group_interval tick: the group is re-sent with the report
    pipe.flush(later)
    assert pipe.deliver(later) == 1
    (got,) = alertmanager.get("/api/v2/alerts" + EVERYTHING)  # type: ignore[misc]
    assert got["generatorURL"] == link and got["annotations"]["report_url"] == link
    assert got["annotations"]["report_summary"] == "# PSI drift on age"
    assert when(got["endsAt"]) == pytest.approx(later + 1080, abs=0.002)  # lease renewed

    pipe.ingest("churn", LABELS, [finding("age", False, t0 + 120)], now=t0 + 120)
    pipe.flush(later + 61)
    assert pipe.deliver(later + 61) == 1
    assert alertmanager.get("/api/v2/alerts" + EVERYTHING) == []  # endsAt in the past: resolved, not listed
    assert received(alertmanager) == {"firing": 2.0, "resolved": 1.0, "invalid": 0.0}
    sent = [msgspec.convert(e.payload, Notification) for e in box.entries("am")]
    assert [n.status for n in sent] == ["firing", "firing", "resolved"]
    resolved_body = AlertmanagerNotifier(alertmanager.url, 1080.0).body(
        msgspec.structs.replace(sent[-1], sent_at=later + 61)
    )
    assert when(resolved_body[0]["endsAt"]) == t0 + 120  # resolution time (event time)


def test_delivery_retried_from_the_outbox_while_alertmanager_is_down(alertmanager: Alertmanager) -> None:
    alertmanager.stop()
    now = time.time()
    t0 = float(int(now) - 3600)
    box = Outbox()
    pipe = pipeline(alertmanager.url, box, timeout="2s")
    fire(pipe, t0)
    pipe.flush(now)
    assert pipe.deliver(now) == 0
    (entry,) = box.entries("am")
    assert entry.attempts == 1 and entry.delivered_at is None and entry.failed_at is None
    assert "Connection refused" in (entry.last_error or "") and entry.next_attempt_at == now + 5.0  # first backoff
    assert pipe.deliver(now + 1) == 0  # not due yet: nothing sent, still one attempt
    assert box.entries("am")[0].attempts == 1

    alertmanager.start()
    retry_at = time.time() + 5.0
    assert pipe.deliver(retry_at) == 1
    (entry,) = box.entries("am")
    assert entry.attempts == 2 and entry.delivered_at == retry_at
    (got,) = alertmanager.get("/api/v2/alerts" + EVERYTHING)  # type: ignore[misc]
    assert got["labels"]["alertname"] == "driftwarden_data_drift" and when(got["startsAt"]) == t0
    assert when(got["endsAt"]) == pytest.approx(retry_at + 1080, abs=0.002)  # the lease runs from the actual send
    assert pipe.deliver(retry_at + 600) == 0  # delivered once
    assert received(alertmanager)["firing"] == 1.0


def test_a_wrong_path_is_a_permanent_failure(alertmanager: Alertmanager) -> None:
    """Alertmanager answers 404 under a route prefix it does not serve: recorded, not retried."""
    now = time.time()
    box = Outbox()
    pipe = pipeline(alertmanager.url + "/alertmanager", box)
    fire(pipe, float(int(now) - 3600))
    pipe.flush(now)
    assert pipe.deliver(now) == 0
    (entry,) = box.entries("am")
    assert entry.failed_at == now and entry.attempts == 1 and (entry.last_error or "").startswith("HTTP 404")
    assert pipe.deliver(now + 600) == 0 and received(alertmanager)["firing"] == 0.0


class _Capture:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: list[tuple[str, dict[str, str], Any]] = []


class _CaptureHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


BASIC = "Basic " + base64.b64encode(b"dw:pa55").decode()


@pytest.mark.parametrize(
    ("auth", "env", "header"),
    [
        ({"username": "dw", "password_env": "AM_PASSWORD"}, {"AM_PASSWORD": "pa55"}, BASIC),
        ({"bearer_token_env": "AM_TOKEN"}, {"AM_TOKEN": "tok-123"}, "Bearer tok-123"),
        ({}, {}, None),
    ],
)
def test_credentials_come_from_the_environment(auth: dict[str, str], env: dict[str, str], header: str | None) -> None:
    state = _Capture()
    with serve(_CaptureHandler, state) as url:
        cfg = settings(receivers={"am": {"type": "alertmanager", "url": url + "/prefix/", **auth}}, route={"receiver": "am"},
                       group_wait=0)
        pipe = AlertPipeline(cfg, Outbox(), build_notifiers(cfg, environ=env))
        fire(pipe, T0)
        pipe.flush(T0 + 60)
        assert pipe.deliver(T0 + 60) == 1
    ((path, headers, body),) = state.requests
    assert path == "/prefix/api/v2/alerts" and headers.get("authorization") == header
    assert [a["labels"]["subject"] for a in body] == ["age"]
    assert body[0]["endsAt"] == rfc3339(T0 + 60 + 3 * (4 * 3600 + 300))  # default lease: 3 x (repeat + group interval)
    assert not env or redact(f"secret {next(iter(env.values()))}") == "secret [REDACTED]"


def test_a_missing_secret_names_the_yaml_path() -> None:
    cfg = settings(receivers={"am": {"type": "alertmanager", "url": "http://am:9093", "bearer_token_env": "AM_TOKEN"}})
    with pytest.raises(ValueError, match=r"receivers\.am\.bearer_token_env: environment variable AM_TOKEN is not set"):
        build_notifiers(cfg, environ={})


@pytest.mark.parametrize(
    ("receiver", "extra", "message"),
    [
        (
            {"url": "alertmanager:9093"},
            {},
            r"url: 'alertmanager:9093' is not an http\(s\) URL \(e.g. http://alertmanager:9093\) - at `\$.receivers\[...\]`",
        ),
        ({"url": "http://am:9093", "reports_url": "/reports"}, {}, "reports_url: '/reports' is not an http"),
        ({"url": "http://am:9093", "username": "dw"}, {}, "basic auth needs both username and password_env"),
        ({"url": "http://am:9093", "username": "dw", "password_env": "P", "bearer_token_env": "T"}, {}, "not both"),
        ({"url": "http://am:9093", "ends_after": "1x"}, {}, "ends_after: invalid duration '1x'"),
        ({"url": "http://am:9093", "ends_after": 0}, {}, "ends_after must be positive"),
        ({"url": "http://am:9093", "token": "t"}, {}, "unknown field `token`"),
        (
            {"url": "http://am:9093", "ends_after": "1h"},
            {"route": {"receiver": "log", "routes": [{"matchers": ['severity="critical"'], "receiver": "am"}]}},
            r"receivers.am.ends_after 1h must exceed route.routes\[0\]'s repeat_interval \+ group_interval \(14400s \+ 300s\)",
        ),
        (
            {"url": "http://am:9093"},
            {"retraining": {"churn": {"receiver": "am"}}},
            "retraining.churn.receiver 'am' is an alertmanager",
        ),
    ],
)
def test_config_is_strict(receiver: dict[str, Any], extra: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        settings(receivers={"am": {"type": "alertmanager", **receiver}}, **extra)


def test_a_lease_longer_than_the_repeat_is_accepted() -> None:
    cfg = settings(
        receivers={"am": {"type": "alertmanager", "url": "http://am:9093", "ends_after": "20m"}},
        route={"receiver": "am", "repeat_interval": "5m", "group_interval": "1m"},
    )
    assert cfg.alertmanager_lease("am") == 1200.0
