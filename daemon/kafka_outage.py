"""Riding out a Kafka outage: what counts as one, how it is logged and reported, how to wait.

A broker that is down, restarting or unreachable is an outage, not a fault of the daemon:
the Kafka edges (daemon/kafka_io.py) catch its errors, keep what they hold (offsets stay in the
SQLite checkpoint, dead letters stay buffered) and report the outage through ``problem`` for
readiness probes. An ``Outage`` logs once when it starts and once when it ends, not per call.

>>> from kafka.errors import KafkaTimeoutError
>>> outage = Outage("consumer", clock=lambda: 0.0)
>>> outage.problem is None
True
>>> outage.failed(KafkaTimeoutError("commit timed out"))
>>> outage.problem
'consumer: Kafka unreachable since 1970-01-01T00:00:00Z: KafkaTimeoutError: commit timed out'
>>> outage.recovered()
>>> outage.problem is None
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import kafka.errors
from kafka.errors import KafkaError

log = logging.getLogger(__name__)
T = TypeVar("T")

# kafka-python 2.x raised NoBrokersAvailable from its constructors; 3.x raises
# KafkaTimeoutError("Unable to bootstrap from ...") (a retriable KafkaError).
_NO_BROKERS: tuple[type[Exception], ...] = tuple(
    e for e in [getattr(kafka.errors, "NoBrokersAvailable", None)] if isinstance(e, type)
)


class KafkaUnavailable(RuntimeError):
    """Root of the Kafka edges' own errors: the brokers cannot take or give what was asked, yet."""


class DeadLettersPending(KafkaUnavailable):
    """Dead letters are not yet acknowledged by Kafka (they stay buffered and are retried).

    The checkpoint must not be committed after this: its offsets would claim that these
    messages' dead letters are written. Skip the checkpoint; the next one retries the flush.
    """


class StoppedWaiting(KafkaUnavailable):
    """A stop was requested while waiting for Kafka to come up: exit without having connected."""


def is_transient(exc: BaseException) -> bool:
    """An error that a broker coming back cures (timeouts, connection loss, leader moves).

    Either client's: kafka-python's retriable errors, or librdkafka's (confluent-kafka raises
    ``KafkaException(KafkaError)``; see daemon/kafka_confluent.py).
    """
    if isinstance(exc, _NO_BROKERS):
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return bool(getattr(exc, "retriable", False))  # LibrdkafkaError carries librdkafka's verdict


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Outage:
    """Whether one Kafka client currently cannot reach the brokers, since when and why."""

    def __init__(self, what: str, clock: Callable[[], float] = time.time) -> None:
        self.what = what
        self.clock = clock
        self.since: float | None = None
        self.reason: str | None = None

    @property
    def problem(self) -> str | None:
        if self.since is None:
            return None
        return f"{self.what}: Kafka unreachable since {_utc(self.since)}: {self.reason}"

    def failed(self, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, KafkaError) else f"{type(exc).__name__}: {exc}"
        if self.since is None:
            self.since = self.clock()
            log.warning("%s: Kafka unreachable (%s); keeping offsets and dead letters, retrying", self.what, reason)
        else:
            log.debug("%s: still unreachable: %s", self.what, reason)
        self.reason = reason

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("%s: Kafka reachable again after %.0f s", self.what, self.clock() - self.since)
        self.since = None
        self.reason = None


def connect_with_backoff(
    factory: Callable[[], T],
    what: str,
    stop_event: threading.Event | None = None,
    *,
    first_wait: float = 0.5,
    max_wait: float = 30.0,
) -> T:
    """``factory()``, retried while Kafka is unreachable: waits double from ``first_wait`` up to ``max_wait``.

    Each wait is logged with its reason. Gives up only when ``stop_event`` is set (raises
    ``StoppedWaiting``); errors that a broker coming back would not cure are raised at once.
    """
    stop = stop_event or threading.Event()
    wait = first_wait
    while True:
        if stop.is_set():
            raise StoppedWaiting(f"{what}: stop requested while waiting for Kafka")
        try:
            return factory()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("%s: cannot reach Kafka (%s); retrying in %.1f s", what, exc, wait)
        if stop.wait(wait):
            raise StoppedWaiting(f"{what}: stop requested while waiting for Kafka")
        wait = min(max_wait, wait * 2)

