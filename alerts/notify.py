"""Notifications, the notifier protocol and the one retry policy all notifiers share.

A notifier turns a :class:`Notification` into one request and says how it went. It never
sleeps and never retries by itself: the pipeline retries from the durable outbox.

>>> http_result(200, "ok").ok, http_result(429, "slow down", retry_after=30).retryable
(True, True)
>>> http_result(503, "unavailable").retryable, http_result(404, "no such channel").retryable
(True, False)
>>> [backoff(n) for n in (1, 2, 3, 8, 20)]
[5.0, 10.0, 20.0, 300.0, 300.0]
>>> parse_retry_after("86400", now=0.0), parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now=0.0)
(300.0, 30.0)
"""

from __future__ import annotations

import email.utils
import http.client
import math
import re
import socket
import urllib.error
import urllib.request
from datetime import UTC
from typing import Any, Literal, Protocol

import msgspec

from driftwarden.alerts.model import Alert
from driftwarden.alerts.redact import redact


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
    return DeliveryResult(ok=False, retryable=retryable, detail=redact(f"HTTP {status}: {detail}")[:500], retry_after=retry_after)


RETRYABLE_ERRORS = (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError)


def error_result(exc: BaseException) -> DeliveryResult:
    """Timeouts and connection errors are retryable; other exceptions are permanent (the
    detail is redacted: exception texts quote URLs, and a webhook URL is a secret)."""
    detail = redact(f"{type(exc).__name__}: {exc}")[:500]
    return DeliveryResult(ok=False, retryable=isinstance(exc, RETRYABLE_ERRORS), detail=detail)


BACKOFF_BASE = 5.0
BACKOFF_MAX = 300.0
RETRY_AFTER_MAX = BACKOFF_MAX  # one 429 must not hold a receiver (and its queue) for longer
_DELTA_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


def parse_retry_after(value: str | None, now: float, cap: float = RETRY_AFTER_MAX) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, at most ``cap``; None when absent or unusable.

    Both forms of RFC 9110: delta-seconds (``"30"``) and an HTTP-date, taken relative to
    ``now`` (a date in the past means 0; a date without a zone is GMT). Negative numbers and
    garbage are ignored (None): the caller falls back to its own backoff.
    """
    if value is None:
        return None
    if (m := _DELTA_SECONDS.fullmatch(value)) is not None:
        seconds = float(m.group(1))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # asctime form or "-0000": HTTP-dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, when.timestamp() - now)
    return min(cap, seconds) if math.isfinite(seconds) else None


def backoff(attempts: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff after ``attempts`` failed attempts: base, 2*base, 4*base ... capped."""
    return min(cap, base * 2.0 ** max(0, attempts - 1))


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Wait before the next attempt after ``attempts`` failures: the backoff, or longer if the
    server asked for it, but never past :data:`RETRY_AFTER_MAX`.

    >>> retry_delay(1, None), retry_delay(1, 30.0), retry_delay(1, 86400.0), retry_delay(9, 2.0)
    (5.0, 30.0, 300.0, 300.0)
    """
    asked = min(RETRY_AFTER_MAX, retry_after) if retry_after is not None and retry_after > 0 else 0.0
    return max(asked, backoff(attempts))


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float, now: float,
              detail: str = "") -> DeliveryResult:
    """POST ``body`` and judge the answer (2xx ok, 408/429/5xx and timeouts retried, the rest permanent).

    ``now`` dates a ``Retry-After`` given as an HTTP date; ``detail`` stands in for an empty answer.
    """
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read(500).decode("utf-8", "replace")
        exc.close()
        return http_result(exc.code, text, retry_after=parse_retry_after(exc.headers.get("Retry-After"), now))
    except Exception as exc:
        return error_result(exc)
    return http_result(status, text[:200] or detail)
