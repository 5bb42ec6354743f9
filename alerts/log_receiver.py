"""A receiver that writes each notification as one JSON log line (no secrets in it).

>>> import logging
>>> from alerts.notify import Notification
>>> n = Notification(type="alerts", receiver="log", group_key="g", idempotency_key="k",
...                  reason="first_notification", status="firing", created_at=0.0)
>>> LogNotifier(level="info").notify(n).ok
True
"""

from __future__ import annotations

import json
import logging

from alerts.notify import DeliveryResult, Notification

LOG = logging.getLogger("driftwarden.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogNotifier:
    def __init__(self, level: str = "warning", logger: logging.Logger = LOG):
        self.level = _LEVELS[level]
        self.logger = logger

    def notify(self, notification: Notification) -> DeliveryResult:
        self.logger.log(self.level, "alert notification %s", json.dumps(notification.payload(), sort_keys=True))
        return DeliveryResult(ok=True, detail="logged")
