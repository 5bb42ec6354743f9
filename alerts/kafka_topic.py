"""A receiver that publishes notifications to a Kafka topic through a producer-like object.

Anything with ``send(topic, key=bytes, value=bytes)`` works (kafka-python's KafkaProducer);
if ``send`` returns a future with ``get(timeout)``, delivery is confirmed before reporting ok.
The record key is the idempotency key, so consumers can drop at-least-once duplicates.

>>> class Recorder:
...     def __init__(self): self.sent = []
...     def send(self, topic, key=None, value=None): self.sent.append((topic, key))
>>> from driftwarden.alerts.notify import Notification
>>> n = Notification(type="alerts", receiver="audit", group_key="g", idempotency_key="k1",
...                  reason="first_notification", status="firing", created_at=0.0)
>>> producer = Recorder()
>>> KafkaTopicNotifier(producer, "driftwarden-alerts").notify(n).ok, producer.sent
(True, [('driftwarden-alerts', b'k1')])
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from driftwarden.alerts.notify import DeliveryResult, Notification, error_result


class Producer(Protocol):
    def send(self, topic: str, key: bytes | None = ..., value: bytes | None = ...) -> Any: ...


class KafkaTopicNotifier:
    def __init__(self, producer: Producer, topic: str, timeout: float = 10.0):
        self.producer = producer
        self.topic = topic
        self.timeout = timeout

    def notify(self, notification: Notification) -> DeliveryResult:
        body = {"version": 1, **notification.payload(), "sent_at": notification.sent_at}
        value = json.dumps(body, sort_keys=True).encode()
        try:
            future = self.producer.send(self.topic, key=notification.idempotency_key.encode(), value=value)
            get = getattr(future, "get", None)
            if callable(get):
                get(timeout=self.timeout)
        except Exception as exc:  # the client's errors are not ours to enumerate: classify them
            result = error_result(exc)
            retryable = result.retryable or "Timeout" in type(exc).__name__ or getattr(exc, "retriable", False)
            return DeliveryResult(ok=False, retryable=bool(retryable), detail=result.detail)
        return DeliveryResult(ok=True, detail=f"published to {self.topic}")
