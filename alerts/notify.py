"""Notifications, the notifier protocol and the one retry policy all notifiers share.

A notifier turns a :class:`Notification` into one request and says how it went. It never
sleeps and never retries by itself: the pipeline retries from the durable outbox.

>>> http_result(200, "ok").ok, http_result(429, "slow down", retry_after=30).retryable
(True, True)
>>> http_result(503, "unavailable").retryable, http_result(404, "no such channel").retryable
(True, False)
>>> [backoff(n) for n in (1, 2, 3, 8, 20)]
[5.0, 10.0, 20.0, 300.0, 300.0]
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
from typing import Any, Literal, Protocol

import msgspec

from alerts.model import Alert


class RetrainRequest(msgspec.Struct, kw_only=True):
    model: str
    model_version: str
    reason: str
    evidence: list[dict[str, Any]]


class Notification(msgspec.Struct, kw_only=True):
    """One message to one receiver, as stored in the outbox (plus delivery-time fields)."""

    type: Literal["alerts", "retrain"]
    receiver: str
    group_key: str
    idempotency_key: str
    reason: str
    status: Literal["firing", "resolved"]
    created_at: float
    group_labels: dict[str, str] = msgspec.field(default_factory=dict)
    alerts: list[Alert] = msgspec.field(default_factory=list)
    new: list[str] = msgspec.field(default_factory=list)
    resolved: list[str] = msgspec.field(default_factory=list)
    thread_key: str | None = None
    thread_role: Literal["root", "reply"] = "root"
    retrain: RetrainRequest | None = None
    # filled in by the pipeline at delivery time, never stored:
    thread_ref: str | None = None
    possibly_sent: bool = False
    sent_at: float = 0.0

    def firing_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    def payload(self) -> dict[str, Any]:
        """The JSON-safe form stored in the outbox."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        for name in ("thread_ref", "possibly_sent", "sent_at"):
            out.pop(name, None)
        return out


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    retryable: bool = False
    detail: str = ""
    remote_id: str | None = None
    retry_after: float | None = None


class Notifier(Protocol):
    def notify(self, notification: Notification) -> DeliveryResult:
        """Send one notification; classify the failure with :func:`http_result`/:func:`error_result`."""
        ...


def http_result(status: int, detail: str, remote_id: str | None = None, retry_after: float | None = None) -> DeliveryResult:
    """2xx ok; 408, 429 and 5xx retryable; anything else permanent."""
    if 200 <= status < 300:
        return DeliveryResult(ok=True, detail=detail, remote_id=remote_id)
    retryable = status in (408, 429) or status >= 500
    return DeliveryResult(ok=False, retryable=retryable, detail=f"HTTP {status}: {detail}"[:500], retry_after=retry_after)


RETRYABLE_ERRORS = (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError)


def error_result(exc: BaseException) -> DeliveryResult:
    """Timeouts and connection errors are retryable; other exceptions are permanent."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    return DeliveryResult(ok=False, retryable=isinstance(exc, RETRYABLE_ERRORS), detail=detail)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form only)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff(attempts: int, base: float = 5.0, cap: float = 300.0) -> float:
    """Exponential backoff after ``attempts`` failed attempts: base, 2*base, 4*base ... capped."""
    return min(cap, base * 2.0 ** max(0, attempts - 1))
