"""The log receiver: one short line per alert; the whole payload only at DEBUG."""

from __future__ import annotations

import json
import logging

import pytest

from driftwarden.alerts.log_receiver import LogNotifier
from driftwarden.alerts.model import Alert
from driftwarden.alerts.notify import Notification, RetrainRequest
from driftwarden.daemon.logs import JsonFormatter

T0 = 1_764_478_800.0  # 2025-11-30T05:00:00Z


def _alert(subject: str, state: str, **extra: object) -> Alert:
    return Alert(fingerprint=subject * 2, severity="critical" if subject == "age" else "warning", state=state,  # type: ignore[arg-type]
                 labels={"model": "churn", "kind": "data_drift", "detector": "psi", "subject": subject},
                 values={"statistic": 0.31234567, "threshold": 0.2, "p_value": 1e-9, "window_size": 5000.0},
                 annotations={"summary": "PSI above threshold", "report_summary": "x" * 20_000,
                              **{f"detail.k{i}": str(i) for i in range(50)}},
                 starts_at=T0, **extra)  # type: ignore[arg-type]


def _notification() -> Notification:
    firing = _alert("age", "firing")
    firing.annotations["report_link"] = "http://127.0.0.1:9108/reports/churn/r1/report.html"
    resolved = _alert("plan", "resolved", ends_at=T0 + 3600)
    return Notification(type="alerts", receiver="log", group_key="{}:{model=\"churn\"}", idempotency_key="k",
                        reason="new_alerts", status="firing", created_at=T0, group_labels={"model": "churn"},
                        alerts=[firing, resolved])


def test_one_compact_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.log_receiver")
    with caplog.at_level(logging.INFO, logger="test.log_receiver"):
        assert LogNotifier("warning", logger).notify(_notification()).ok
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert [r.getMessage() for r in caplog.records] == [
        "alert firing: churn data_drift/psi on age (critical): psi 0.312 over 5,000 events (threshold 0.2, p=1e-9), "
        "since 2025-11-30T05:00:00Z; report http://127.0.0.1:9108/reports/churn/r1/report.html",
        "alert resolved: churn data_drift/psi on plan (warning): psi 0.312 over 5,000 events (threshold 0.2, p=1e-9), "
        "since 2025-11-30T05:00:00Z, until 2025-11-30T06:00:00Z",
    ]
    line = json.loads(JsonFormatter().format(caplog.records[0]))
    assert {k: line[k] for k in ("model", "kind", "detector", "subject", "severity", "statistic", "threshold",
                                 "starts_at", "report", "alert_state", "receiver")} == {
        "model": "churn", "kind": "data_drift", "detector": "psi", "subject": "age", "severity": "critical",
        "statistic": 0.31234567, "threshold": 0.2, "starts_at": "2025-11-30T05:00:00Z",
        "report": "http://127.0.0.1:9108/reports/churn/r1/report.html", "alert_state": "firing", "receiver": "log"}
    assert all(len(JsonFormatter().format(r)) < 700 for r in caplog.records)


def test_the_payload_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.log_receiver.debug")
    with caplog.at_level(logging.DEBUG, logger="test.log_receiver.debug"):
        LogNotifier("info", logger).notify(_notification())
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO, logging.DEBUG]
    payload = json.loads(caplog.records[2].getMessage().removeprefix("alert notification payload "))
    assert payload["alerts"][0]["annotations"]["report_summary"] == "x" * 20_000


def test_a_retrain_request_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.log_receiver.retrain")
    n = Notification(type="retrain", receiver="log", group_key="g", idempotency_key="k", reason="first_notification",
                     status="firing", created_at=T0,
                     retrain=RetrainRequest(model="churn", model_version="3.2.0", reason="performance degraded",
                                            evidence=[{"a": 1}, {"b": 2}]))
    with caplog.at_level(logging.INFO, logger="test.log_receiver.retrain"):
        LogNotifier("info", logger).notify(n)
    assert [r.getMessage() for r in caplog.records] == [
        "retrain request: churn version 3.2.0: performance degraded (2 piece(s) of evidence)"]
