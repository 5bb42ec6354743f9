"""The Kafka edges on librdkafka (confluent-kafka): ``kafka.client: confluent-kafka``.

The same contract as daemon/kafka_io.py's kafka-python classes, kept by running the same
integration and outage tests against both:

* ``ConfluentSource``: one consumer-group member over the prediction and outcome topics;
  an assignment seeks to the checkpoint's offsets (set on the partitions handed to
  ``assign()`` in the rebalance callback); a revocation (or loss) checkpoints first;
  ``commit`` commits next-offsets of assigned partitions only, never raises, and keeps what
  the group did not take in ``uncommitted`` for the next ``commit``/``lag``.
* ``ConfluentDeadLetters``: the original bytes (a null value stays null) with the
  ``driftwarden.*`` headers; nothing is dropped (records never expire; a full queue waits in
  a backlog here; a failed record is sent again); ``flush`` raises ``DeadLettersPending``
  until Kafka acknowledged every one.

librdkafka reconnects by itself; what its error callback reports (brokers down, transport
errors) is the ``problem`` readiness shows, until a commit or an offset query succeeds again.
Every codec is built into librdkafka.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftwarden.daemon.kafka_io import CALL_TIMEOUT_MS, PROBE_TIMEOUT_MS, Compression, Offsets, TopicUnavailable, sasl_password
from driftwarden.daemon.kafka_outage import DeadLettersPending, KafkaUnavailable, Outage, connect_with_backoff
from driftwarden.daemon.kafka_settings import KafkaSettings, parse_duration
from driftwarden.daemon.pipeline import Message as DaemonMessage
from driftwarden.daemon.polled import RecordReader
from driftwarden.daemon.source_base import SourceBase

log = logging.getLogger(__name__)
CALL_TIMEOUT = CALL_TIMEOUT_MS / 1000
PROBE_TIMEOUT = PROBE_TIMEOUT_MS / 1000

# librdkafka's codes for "the brokers are away" (besides what KafkaError.retriable() says)
_UNREACHABLE = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._RESOLVE,
    KafkaError._WAIT_COORD, KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._TIMED_OUT_QUEUE,
}


class _LibrdkafkaLog:
    """librdkafka's own log lines, all at DEBUG (a refused connection is logged at ERROR, per attempt):
    what matters reaches the error callback, and the outage is logged once by ``Outage``."""

    _log = logging.getLogger("librdkafka")

    def log(self, _level: int, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)


class LibrdkafkaError(KafkaUnavailable):
    """A librdkafka error, with its verdict on whether a broker coming back cures it (``retriable``)."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(f"{error.name()}: {error.str()}")
        self.code = error.code()
        self.retriable = error.code() in _UNREACHABLE or (error.retriable() and not error.fatal())


def _raised(exc: KafkaException) -> LibrdkafkaError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else KafkaError(KafkaError._FAIL, str(exc))
    return LibrdkafkaError(error)


def confluent_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumer, producer and admin client (librdkafka's names).

    >>> confluent_options(KafkaSettings(bootstrap_servers="a:9093,b:9093", security_protocol="SASL_SSL",
    ...     sasl_mechanism="SCRAM-SHA-512", sasl_username="dw", ssl_cafile="/etc/ca.pem"))["sasl.mechanism"]
    'SCRAM-SHA-512'
    """
    options: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol.lower(),
        "client.id": "driftwarden",
        # after an outage, reconnect within 10 s of the broker's return, as the kafka-python client does
        "reconnect.backoff.max.ms": 10_000,
        "log.connection.close": False,  # an idle connection closed by the broker is not news
    }
    if settings.sasl_mechanism:
        options["sasl.mechanism"] = settings.sasl_mechanism
        if settings.sasl_username is not None:
            options["sasl.username"] = settings.sasl_username
        password = sasl_password(settings)
        if password is not None:
            options["sasl.password"] = password
    if settings.ssl_cafile:
        options["ssl.ca.location"] = settings.ssl_cafile
    return options


def ensure_topic(settings: KafkaSettings, topic: str, partitions: int = 1, stop_event: threading.Event | None = None) -> None:
    """Create ``topic`` if the cluster lacks it; waits for an unreachable cluster until ``stop_event``."""
    config: dict[str, Any] = {**confluent_options(settings), "logger": _LibrdkafkaLog()}
    admin = AdminClient(config)
    connect_with_backoff(lambda: _ensure_topic_once(admin, topic, partitions), f"topic {topic}", stop_event)


def _ensure_topic_once(admin: AdminClient, topic: str, partitions: int) -> None:
    try:
        if topic in admin.list_topics(timeout=CALL_TIMEOUT).topics:
            return
        future = admin.create_topics([NewTopic(topic, partitions, -1)], request_timeout=CALL_TIMEOUT)[topic]
        future.result(timeout=CALL_TIMEOUT)  # -1: the broker's default replication
        log.info("created topic %s", topic)
    except KafkaException as exc:
        error = _raised(exc)
        if error.code == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        if error.retriable:
            raise error from exc
        raise TopicUnavailable(
            f"topic {topic!r} does not exist and could not be created ({error}); "
            "create it, or let driftwarden's principal create topics"
        ) from exc


class _Errors:
    """librdkafka's error callback: brokers away -> the outage; anything else logged once per kind."""

    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self._logged: set[int] = set()

    def __call__(self, error: KafkaError) -> None:
        failure = LibrdkafkaError(error)
        if failure.retriable:
            self.outage.failed(failure)
        elif error.code() not in self._logged:
            self._logged.add(error.code())
            log.warning("%s: %s", self.outage.what, failure)


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """The source's consumer settings (librdkafka's names), but for the error callback."""
    session_ms = int(parse_duration(settings.session_timeout) * 1000)
    return {
        **confluent_options(settings),
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.auto_offset_reset,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(300, session_ms // 4),
        # a topic created after we joined is picked up, and the group rebalanced onto it, within 10 s
        "topic.metadata.refresh.interval.ms": 10_000,
        "enable.partition.eof": False,
        "max.partition.fetch.bytes": 8 << 20,  # as the kafka-python source: fewer, bigger fetches
        # past queued.min.messages (100,000) queued of a partition, librdkafka postpones its next fetch of
        # it by this (1 s by default), paused or not: replaying a backlog, a partition the record queues
        # had paused came back up to a second after its resume while the loop waited on it, a poll
        # timeout at a time (100k predictions + outcomes: 1.6-1.7 of 4 s in empty polls; 0.5-0.7 now)
        "fetch.queue.backoff.ms": 50,
        "fetch.wait.max.ms": int(parse_duration(settings.fetch_max_wait) * 1000),  # see KafkaSettings
        "logger": _LibrdkafkaLog(),
    }


def _timestamp(record: Any) -> int:
    return int(record.timestamp()[1])


# librdkafka's Message: offset, key and value are methods (the unbound ones map over a list in C)
CONFLUENT_RECORD = RecordReader(cast(Callable[[Any], int], Message.offset), Message.key, Message.value, _timestamp)


class ConfluentSource(SourceBase):
    """Consumes the prediction and outcome topics as one consumer-group member (librdkafka).

    ``stored_offsets`` returns the checkpoint's offsets, sought on every assignment;
    ``on_revoke`` checkpoints before partitions move away. librdkafka calls both from
    ``poll`` on the loop's own thread.

    Commits are asynchronous (a synchronous commit waits for the group coordinator, i.e.
    for the whole outage) and then confirmed by reading the group's offsets back with a
    bounded timeout: what is confirmed leaves ``uncommitted``, the rest is committed again.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stored_offsets: Callable[[], Offsets],
        on_revoke: Callable[[], None],
        stop_event: threading.Event | None = None,
        on_assign: Callable[[list[tuple[str, int]], int], None] | None = None,
        on_revoked: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        super().__init__(settings, stored_offsets, on_revoke, CONFLUENT_RECORD)
        self.on_assign = on_assign
        self.on_revoked = on_revoked
        self._consume_problem: str | None = None
        self._logged: set[int] = set()
        self._lost: set[tuple[str, int]] = set()  # taken away by an expired session, not by a rebalance
        self._batch = settings.max_poll_records
        self.consumer = Consumer({**consumer_config(settings), "error_cb": _Errors(self.outage)})
        try:  # the constructor does not connect: wait here for a broker, as the kafka-python source does
            connect_with_backoff(self._probe, "consumer", stop_event)
            self.consumer.subscribe(
                [settings.predictions_topic, settings.outcomes_topic],
                on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost,
            )
        except BaseException:
            self.consumer.close()
            raise

    def _probe(self) -> None:
        try:
            self.consumer.list_topics(timeout=CALL_TIMEOUT)
        except KafkaException as exc:
            raise _raised(exc) from exc

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in partitions))
        if self.on_assign is not None:  # restored by the loop before the first batch (it seeks then)
            self.on_assign([(tp.topic, tp.partition) for tp in partitions], -1)  # librdkafka does not tell the generation
        stored = self.stored_offsets()
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                tp.offset = offset  # resume from the checkpoint, not the group offset
        self._lost.clear()  # offsets of lost partitions not given back are dropped at the next commit
        consumer.assign(partitions)
        # librdkafka starts every assigned partition at the checkpoint's or the group's offset
        self._assignment_changed((tp.topic, tp.partition) for tp in partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """librdkafka drops the assignment when its session expires (a broker outage longer than
        ``session.timeout``): checkpoint as for a revocation, but keep the offsets not yet committed
        (kafka-python keeps its assignment through an outage); the next assignment decides."""
        log.warning("partitions lost (the group session expired): %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self._lost |= {(tp.topic, tp.partition) for tp in partitions}
        self._revoked(partitions)
        consumer.unassign()
        self._assignment_changed(())

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in partitions))
            self._revoked(partitions)
        consumer.unassign()
        self._assignment_changed(())

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        if self.on_revoked is not None:
            self.on_revoked([(tp.topic, tp.partition) for tp in partitions])
        else:
            self.on_revoke()

    def _seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        for (t, p), o in offsets.items():
            self.consumer.seek(TopicPartition(t, p, o))

    @property
    def problem(self) -> str | None:
        """Why the consumer cannot reach or read Kafka right now (for readiness), or None."""
        return self.outage.problem or self._consume_problem

    def _call_timeout(self) -> float:
        return PROBE_TIMEOUT if self.outage.since is not None else CALL_TIMEOUT

    def _fetch(self, timeout: float) -> list[tuple[str, int, list[Any]]]:
        records: list[Any] = self.consumer.consume(num_messages=self._batch, timeout=timeout)
        if not records:
            return []
        if any(map(Message.error, records)):
            self._record_errors(records)
            records = [r for r in records if r.error() is None]
        else:
            self._consume_problem = None
        # one run per partition (librdkafka gives each partition's records in offset order), found in C:
        # no Python code per record
        runs: dict[tuple[str | None, int | None], list[Any]] = {}
        start = 0
        for key, group in itertools.groupby(zip(map(Message.topic, records), map(Message.partition, records), strict=True)):
            end = start + len(list(group))
            runs.setdefault(key, []).extend(records[start:end])
            start = end
        return [(topic, partition, run) for (topic, partition), run in runs.items()
                if topic is not None and partition is not None]  # a record without either is an error's

    def _record_errors(self, records: list[Any]) -> None:
        for r in records:
            error = r.error()
            if error is None or error.code() == KafkaError._PARTITION_EOF:
                continue
            failure = LibrdkafkaError(error)
            self._consume_problem = f"consumer: {r.topic()}[{r.partition()}]: {failure}"
            if error.code() not in self._logged:
                self._logged.add(error.code())
                log.warning("%s", self._consume_problem)

    def _assigned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def _high_watermark(self, key: tuple[str, int]) -> int | None:
        return self._end(key, cached=True)  # what librdkafka last heard from the broker

    def _ask_end(self, key: tuple[str, int]) -> int | None:
        return self._end(key, timeout=PROBE_TIMEOUT)  # asks the broker

    def _end(self, key: tuple[str, int], **how: Any) -> int | None:
        """The partition's high watermark (``how``: get_watermark_offsets' cached/timeout), None if unknown."""
        try:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(*key), **how)
        except KafkaException:
            return None
        return int(high) if high >= 0 else None

    def _pause(self, pause: set[tuple[str, int]], resume: set[tuple[str, int]]) -> None:
        try:
            if pause:
                self.consumer.pause([TopicPartition(*key) for key in pause])
            if resume:
                self.consumer.resume([TopicPartition(*key) for key in resume])
        except KafkaException as exc:  # e.g. no longer assigned: the next assignment starts unpaused
            log.debug("pause/resume not taken: %s", _raised(exc))

    def _committable(self) -> set[tuple[str, int]]:
        return self._assigned() | self._lost

    def _commit_unacknowledged(self) -> bool:
        assigned = self._assigned()
        for key in [key for key in self._unacknowledged if key not in assigned and key not in self._lost]:
            del self._unacknowledged[key]  # moved to another member: its new owner seeks its own checkpoint
        to_commit = {key: o for key, o in self._unacknowledged.items() if key in assigned}
        if not to_commit:
            return not self._unacknowledged
        partitions = [TopicPartition(t, p, o) for (t, p), o in to_commit.items()]
        try:
            self.consumer.commit(offsets=partitions, asynchronous=True)
            # read back (bounded): the coordinator answers in order, so this sees the commit or a timeout
            confirmed = self.consumer.committed([TopicPartition(t, p) for t, p in to_commit], timeout=self._call_timeout())
        except KafkaException as exc:
            failure = _raised(exc)
            if failure.retriable:
                self.outage.failed(failure)
            else:  # e.g. the group rebalanced: the new assignment seeks to the checkpoint
                log.warning("offset commit not taken (%s); the checkpoint keeps the offsets", failure)
            return False
        self.outage.recovered()
        for tp in confirmed:
            key = (tp.topic, tp.partition)
            if tp.error is None and self._unacknowledged.get(key) == tp.offset == to_commit[key]:
                del self._unacknowledged[key]
        return not any(key in self._unacknowledged for key in to_commit)

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each assigned partition (fetched but not handed on count); {} when the
        brokers cannot say.

        The ends come from librdkafka's cache (refreshed by every fetch) unless an outage is
        known: then they are asked of the brokers, as the probe of whether they are back.
        Also retries offsets a failed ``commit`` left behind.
        """
        assignment = self.consumer.assignment()
        if not assignment:
            return {}
        if self._unacknowledged and not self._commit_unacknowledged():
            return {}
        queued = self.buffered()
        try:
            positions = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.position(assignment)}
            behind = {}
            for tp in assignment:
                position = positions.get((tp.topic, tp.partition), -1)
                if position < 0:
                    continue  # nothing consumed yet: no position to measure from
                ends = None
                if self.outage.since is None:
                    ends = self.consumer.get_watermark_offsets(tp, cached=True)
                if ends is None or ends[1] < 0:
                    ends = self.consumer.get_watermark_offsets(tp, timeout=self._call_timeout())
                if ends is None:
                    raise LibrdkafkaError(KafkaError(KafkaError._TIMED_OUT, "watermark offsets timed out"))
                behind[(tp.topic, tp.partition)] = max(0, ends[1] - position + queued.get((tp.topic, tp.partition), 0))
        except KafkaException as exc:
            self.outage.failed(_raised(exc))
            return {}
        except LibrdkafkaError as exc:
            self.outage.failed(exc)
            return {}
        if self.outage.since is not None and len(behind) == len(assignment):
            self.outage.recovered()
        return behind

    def close(self) -> None:
        self.consumer.close()  # leaves the group; librdkafka bounds it by its own timeouts


class _Letter:
    """One dead letter and, once handed to the producer, its delivery report."""

    __slots__ = ("delivered", "error", "headers", "key", "value")

    def __init__(self, key: bytes | None, value: bytes | None, headers: list[tuple[str, str | bytes | None]]) -> None:
        self.key = key
        self.value = value
        self.headers = headers
        self.delivered = False
        self.error: KafkaError | None = None

    def report(self, error: KafkaError | None, _message: Any) -> None:  # called from poll/flush (any thread)
        self.error = error
        self.delivered = True


class TopicProducer:
    """``send(topic, key=, value=)`` -> a future with ``get(timeout)``: the alerts topic receiver's producer."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> _Delivery:
        delivery = _Delivery(self._producer)
        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=delivery.report)
        except BufferError as exc:
            raise DeliveryTimeout(f"producer queue full: {exc}") from exc
        except KafkaException as exc:
            raise _raised(exc) from exc
        return delivery


class DeliveryTimeout(KafkaUnavailable):
    """Kafka did not acknowledge a record in time (it may still: the caller retries)."""

    retriable = True


class _Delivery:
    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.done = False
        self.error: KafkaError | None = None

    def report(self, error: KafkaError | None, _message: Any) -> None:
        self.error = error
        self.done = True

    def get(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.done and time.monotonic() < deadline:
            self._producer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
        if not self.done:
            raise DeliveryTimeout(f"not acknowledged within {timeout:.0f} s")
        if self.error is not None:
            raise LibrdkafkaError(self.error)


class ConfluentDeadLetters:
    """Sends rejected messages, original bytes untouched (a null value stays null), the reason in headers.

    Records never expire (``message.timeout.ms`` 0) and are written idempotently; a produce
    that cannot even be queued waits in a backlog here; a record librdkafka failed is sent
    again. ``flush`` raises ``DeadLettersPending`` until every dead letter is acknowledged.
    ``compression_type`` applies to everything this producer sends (the alert topic
    receiver shares it through ``producer``).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stop_event: threading.Event | None = None,
        compression_type: Compression | None = None,
        flush_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.topic = settings.dead_letter_topic
        self.flush_timeout = flush_timeout
        self.outage = Outage("dead-letter producer")
        self._backlog: list[_Letter] = []  # not yet handed to the producer, in order
        self._sent: list[_Letter] = []  # handed over, not yet acknowledged
        ensure_topic(settings, self.topic, stop_event=stop_event)
        self._producer = Producer({
            **confluent_options(settings),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 50,
            "compression.type": compression_type or "none",
            "message.timeout.ms": 0,  # never give up on a record: it waits until the broker is back
            "error_cb": _Errors(self.outage),
            "logger": _LibrdkafkaLog(),
        })
        self.producer = TopicProducer(self._producer)
        try:  # learn the topic's partitions now (and wait for a broker), as the kafka-python producer does
            connect_with_backoff(self._probe, f"topic {self.topic}", stop_event)
        except BaseException:
            self._producer.close()
            raise

    def _probe(self) -> None:
        try:
            self._producer.list_topics(self.topic, timeout=CALL_TIMEOUT)
        except KafkaException as exc:
            raise _raised(exc) from exc

    @property
    def problem(self) -> str | None:
        """Why dead letters cannot be written right now (for readiness), or None."""
        return self.outage.problem

    @property
    def pending(self) -> int:
        """Dead letters sent but not yet acknowledged by Kafka."""
        return len(self._backlog) + len(self._sent)

    def send(self, message: DaemonMessage, reason: str) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("driftwarden.reason", reason.encode()),
            ("driftwarden.topic", message.topic.encode()),
            ("driftwarden.partition", str(message.partition).encode()),
            ("driftwarden.offset", str(message.offset).encode()),
        ]
        letter = _Letter(message.key, message.value, headers)
        if self._backlog:  # keep the order: nothing overtakes what waits
            self._backlog.append(letter)
        else:
            self._hand_over(letter)
        self._producer.poll(0)  # serve delivery reports

    def _hand_over(self, letter: _Letter) -> bool:
        # as the kafka-python sink: a record with neither key nor value carries b""; a null value alone is kept
        value = letter.value if letter.value is not None or letter.key is not None else b""
        letter.delivered, letter.error = False, None
        try:
            self._producer.produce(self.topic, value=value, key=letter.key, headers=letter.headers,
                                   on_delivery=letter.report)
        except BufferError as exc:  # the local queue is full (a long outage): wait here
            self.outage.failed(exc)
            self._backlog.insert(0, letter)
            return False
        except KafkaException as exc:
            failure = _raised(exc)
            if not failure.retriable:
                raise failure from exc
            self.outage.failed(failure)
            self._backlog.insert(0, letter)
            return False
        self._sent.append(letter)
        return True

    def flush(self) -> None:
        """Wait (up to ``flush_timeout``) until every dead letter is acknowledged.

        Raises ``DeadLettersPending`` otherwise; they stay queued and are retried by the
        next ``send``/``flush``. Only after a flush that returns may the checkpoint commit.
        """
        if not self.pending:
            return
        while self._backlog:
            if not self._hand_over(self._backlog.pop(0)):
                break
        self._producer.flush(self.flush_timeout)
        failed = [letter for letter in self._sent if letter.delivered and letter.error is not None]
        self._sent = [letter for letter in self._sent if not letter.delivered]
        for letter in failed:
            log.warning("dead letter not written (%s); sending it again", letter.error)
            self._backlog.append(letter)
        if self._backlog or self._sent:
            raise DeadLettersPending(
                f"{self.pending} dead letter(s) not yet acknowledged by Kafka"
                + (f" ({self.outage.problem})" if self.outage.problem else "")
            )
        self.outage.recovered()

    def close(self, timeout: float = CALL_TIMEOUT) -> None:
        """Close the producer, waiting at most ``timeout`` for what it still holds.

        What it could not write is dropped from its queue (``close`` would wait for it without
        end), not lost: the checkpoint was not committed past it.
        """
        if self._producer.flush(timeout):
            self._producer.purge(in_queue=True, in_flight=True)
            self._producer.flush(0)
        self._producer.close()
