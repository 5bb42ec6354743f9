"""A receiver that writes each notification to the log: one short line per alert (no secrets in it).

A line says what fired or resolved, how bad, since when and where the report is; the same
values ride along as log fields (``model``, ``kind``, ``detector``, ``subject``, ``severity``,
``statistic``, ``threshold``, ``evidence``, ``evidence_threshold``, ``starts_at``, ``report``) for
``--log-format json``. The whole payload is logged at DEBUG only.

>>> import logging
>>> from driftwarden.alerts.model import Alert
>>> from driftwarden.alerts.notify import Notification
>>> alert = Alert(fingerprint="00cc4e21a01b3de5", severity="warning", state="firing", starts_at=1796000000.0,
...               labels={"model": "churn", "kind": "data_drift", "detector": "psi", "subject": "age"},
...               values={"statistic": 1.5860786237530387, "threshold": 0.2},
...               annotations={"report_link": "r/1.html"})
>>> n = Notification(type="alerts", receiver="log", group_key="g", idempotency_key="k",
...                  reason="first_notification", status="firing", created_at=0.0, alerts=[alert])
>>> for message, fields in lines(n):
...     print(message)
alert firing: churn data_drift/psi on age (warning): psi 1.59 (threshold 0.2), since 2026-11-30T00:53:20Z; report r/1.html
>>> LogNotifier(level="info").notify(n).ok
True
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from driftwarden.alerts.model import Alert
from driftwarden.alerts.notify import DeliveryResult, Notification
from driftwarden.alerts.quote import evidence_text, metric_text
from driftwarden.detectors.base import utc_text

LOG = logging.getLogger("driftwarden.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def alert_line(alert: Alert) -> tuple[str, dict[str, Any]]:
    """(message, log fields) for one alert of a notification."""
    labels = alert.labels
    fields: dict[str, Any] = {
        "alert_state": alert.state, "model": labels.get("model", ""), "kind": labels.get("kind", ""),
        "detector": labels.get("detector", ""), "subject": labels.get("subject", ""), "severity": alert.severity,
        "statistic": alert.values.get("statistic"), "threshold": alert.values.get("threshold"),
        "evidence": alert.values.get("evidence"), "evidence_threshold": alert.values.get("evidence_threshold"),
        "starts_at": utc_text(alert.starts_at), "report": alert.annotations.get("report_link"),
    }
    evidence = f"; evidence: {evidence_text(alert)}" if evidence_text(alert) else ""
    if labels.get("segment"):
        fields["segment"] = labels["segment"]
        evidence += f"; segment {labels['segment']}"
    message = (f"alert {alert.state}: {fields['model']} {fields['kind']}/{fields['detector']} on {fields['subject']} "
               f"({alert.severity}): {metric_text(alert)}{evidence}, since {fields['starts_at']}")
    if alert.state == "resolved":
        message += f", until {utc_text(alert.ends_at)}"
    if fields["report"]:
        message += f"; report {fields['report']}"
    return message, {k: v for k, v in fields.items() if v is not None}


def lines(notification: Notification) -> Iterator[tuple[str, dict[str, Any]]]:
    """One (message, fields) per alert of the notification, or one for a retrain request."""
    common = {"receiver": notification.receiver, "group_key": notification.group_key, "reason": notification.reason}
    if notification.retrain is not None:
        r = notification.retrain
        yield (f"retrain request: {r.model} version {r.model_version}: {r.reason} "
               f"({len(r.evidence)} piece(s) of evidence)",
               {**common, "model": r.model, "model_version": r.model_version})
        return
    if not notification.alerts:
        yield f"alert notification ({notification.reason}) with no alerts for {notification.group_labels}", common
    for alert in notification.alerts:
        message, fields = alert_line(alert)
        yield message, {**common, **fields}


class LogNotifier:
    def __init__(self, level: str = "warning", logger: logging.Logger = LOG):
        self.level = _LEVELS[level]
        self.logger = logger

    def notify(self, notification: Notification) -> DeliveryResult:
        for message, fields in lines(notification):
            self.logger.log(self.level, "%s", message, extra=fields)
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("alert notification payload %s", json.dumps(notification.payload(), sort_keys=True))
        return DeliveryResult(ok=True, detail="logged")
