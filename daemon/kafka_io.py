"""Kafka edges: the consuming source (consumer group, rebalance, seek to checkpoint)
and the dead-letter producer. Everything Kafka-specific lives here.

Both ride out broker outages (daemon/kafka_outage.py): construction waits for a broker,
``poll``/``lag``/``commit`` and dead-letter ``send`` never raise on a transient error, and
``problem`` says what is wrong for readiness probes. Every codec Kafka has (gzip, snappy,
lz4, zstd) is consumed and can be produced: their libraries are dependencies.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.net.compat import KafkaNetClient
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from driftwarden.alerts.redact import register_secret
from driftwarden.daemon import kafka_records
from driftwarden.daemon.kafka_outage import DeadLettersPending, Outage, connect_with_backoff, is_transient
from driftwarden.daemon.kafka_settings import KafkaSettings, parse_duration
from driftwarden.daemon.message import Message
from driftwarden.daemon.polled import Polled, RecordReader
from driftwarden.daemon.source_base import Offsets, SourceBase

log = logging.getLogger(__name__)
T = TypeVar("T")
AssignHook = Callable[[list[tuple[str, int]], int], None]  # (partitions, group generation)
RevokeHook = Callable[[list[tuple[str, int]]], None]
Compression = Literal["gzip", "snappy", "lz4", "zstd"]

# How long one broker call may block the consume loop: normally, and while an outage is known
# (then each call is only a probe of whether the brokers are back).
CALL_TIMEOUT_MS = 10_000
PROBE_TIMEOUT_MS = 1_000
# While the member (re)joins its group a poll waits this long at least. kafka-python 3.0.12 sends a new
# JoinGroup when the previous join finished between two polls, its result unread (``join_group_async``
# replaces a done ``_join_task``): with joins slower than the poll timeout (the daemon polls with 0
# while records wait; CI load makes a join take longer than 200 ms) the member never joined.
JOIN_POLL_SECONDS = 2.0


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumer, producer and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
        "client_id": "driftwarden",
        # a constructor gives up on an absent broker after this (connect_with_backoff retries it):
        # short, so that a SIGTERM while waiting is honoured within seconds
        "bootstrap_timeout_ms": 10_000,
        # after an outage, reconnect within 10 s of the broker's return (kafka-python's default: 30 s)
        "reconnect_backoff_max_ms": 10_000,
    }
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        password = sasl_password(settings)
        if password is not None:
            options["sasl_plain_password"] = password
    if settings.ssl_cafile:
        options["ssl_cafile"] = settings.ssl_cafile
    return options


def sasl_password(settings: KafkaSettings) -> str | None:
    """The SASL password from ``kafka.sasl_password_env`` (registered as a secret), or None if none is named."""
    if not settings.sasl_password_env:
        return None
    password = os.environ.get(settings.sasl_password_env)
    if password is None:
        raise RuntimeError(f"kafka.sasl_password_env: environment variable {settings.sasl_password_env} is not set")
    register_secret(password)  # never in a log line, a status or a stored error
    return password


def build_client(cls: Callable[..., T], **options: Any) -> T:
    """``cls(**options)`` (a kafka-python consumer, producer or admin client) that leaves nothing behind if it fails.

    kafka-python 3.0.12's constructors bootstrap eagerly; when the brokers are unreachable they
    raise but leave their network client's IO thread running. Retried for hours while waiting
    for a broker, that would pile up threads: close it.
    """
    made: list[KafkaNetClient] = []

    def client(**kwargs: Any) -> KafkaNetClient:
        made.append(KafkaNetClient(**kwargs))
        return made[-1]

    try:
        return cls(kafka_client=client, **options)
    except BaseException:
        for net_client in made:
            net_client.close()
        raise


class TopicUnavailable(RuntimeError):
    """A topic the daemon writes to does not exist and could not be created."""


def ensure_topic(
    settings: KafkaSettings, topic: str, partitions: int = 1, stop_event: threading.Event | None = None
) -> None:
    """Create ``topic`` if the cluster lacks it (so bad input never blocks on a missing dead-letter topic).

    Waits for an unreachable cluster (see ``connect_with_backoff``) until ``stop_event`` is set.
    """
    connect_with_backoff(lambda: _ensure_topic_once(settings, topic, partitions), f"topic {topic}", stop_event)


def _ensure_topic_once(settings: KafkaSettings, topic: str, partitions: int) -> None:
    admin = build_client(KafkaAdminClient, **client_options(settings))
    try:
        if topic in set(admin.list_topics()):
            return
        try:
            admin.create_topics([NewTopic(topic, partitions, -1)])  # -1: the broker's default replication
            log.info("created topic %s", topic)
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            if is_transient(exc):
                raise
            raise TopicUnavailable(
                f"topic {topic!r} does not exist and could not be created ({exc}); "
                "create it, or let driftwarden's principal create topics"
            ) from exc
    finally:
        admin.close()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            hook, args = revocation(self.source, revoked)
            hook(*args)

    def on_partitions_assigned(self, assigned: Any) -> None:
        hook, args = assignment(self.source, assigned)
        if hook is not None:
            hook(*args)
        sought(self.source, assigned, self.source.stored_offsets())


# awaits ``hook(*args)`` on kafka-python's event loop: (hook, *args) -> a coroutine of its result
Awaiting = Callable[..., Awaitable[Any]]


def async_listener(source: KafkaSource, awaiting: Awaiting) -> Any:
    """kafka-python's rebalance listener as coroutines (``AsyncConsumerRebalanceListener``): its hooks are
    awaited, so the IO thread's event loop, which also sends the heartbeats, goes on while the daemon
    checkpoints the models it releases (a blocking callback longer than ``kafka.session_timeout`` gets the
    member expelled from the group)."""
    from kafka import AsyncConsumerRebalanceListener

    class Listener(AsyncConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: Any) -> None:
            if revoked:
                hook, args = revocation(source, revoked)
                await awaiting(hook, *args)

        async def on_partitions_assigned(self, assigned: Any) -> None:
            hook, args = assignment(source, assigned)
            if hook is not None:
                await awaiting(hook, *args)
            sought(source, assigned, await awaiting(source.stored_offsets))

    return Listener()


def revocation(source: KafkaSource, revoked: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The hook a revocation calls, and its arguments (logged)."""
    log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))
    if source.on_revoked is not None:
        return source.on_revoked, ([(tp.topic, tp.partition) for tp in revoked],)
    return source.on_revoke, ()


def assignment(source: KafkaSource, assigned: Any) -> tuple[Callable[..., Any] | None, tuple[Any, ...]]:
    """The hook an assignment calls first, if any (restored by the loop before the first batch: it seeks then)."""
    log.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))
    return source.on_assign, ([(tp.topic, tp.partition) for tp in assigned], source.generation())


def sought(source: KafkaSource, assigned: Any, stored: Offsets) -> None:
    """Seek the assigned partitions the checkpoint has offsets of (not the group's offset)."""
    moved = []
    for tp in assigned:
        offset = stored.get((tp.topic, tp.partition))
        if offset is not None:
            source.consumer.seek(tp, offset)
            moved.append((tp.topic, tp.partition))
    # kafka-python keeps the position of a partition assigned before and after a rebalance
    source._assignment_changed(moved)


# kafka-python's ConsumerRecord: offset, key, value and timestamp (ms) are attributes
KAFKA_PYTHON_RECORD = RecordReader(operator.attrgetter("offset"), operator.attrgetter("key"),
                                   operator.attrgetter("value"), operator.attrgetter("timestamp"))


def _unblock_parked(consumer: KafkaConsumer) -> None:
    """Let kafka-python hand on a resumed partition's parked records (and so fetch it again).

    kafka-python 3.0.12 (``Fetcher._fetched_records``) parks the records of a partition paused
    while they were being handed on, and puts them back in line once it is resumed, but only
    ``if self._next_partition_records is None``: the partition handed on last stays there,
    drained (falsy) but not None, so a resumed partition's parked records never come back and
    ``_fetchable_partitions`` leaves it out of every fetch: it is never read again. A drained
    ``PartitionRecords`` and None mean the same everywhere else in the fetcher, so the drained
    one is dropped here before each poll. Private attributes: a kafka-python without them is
    left alone (and ``tests/test_kafka_record_queues.py`` says if pausing stops working).
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if not getattr(fetcher, "_paused_partition_records", None):
        return
    current = getattr(fetcher, "_next_partition_records", None)
    if current is not None and not current:
        fetcher._next_partition_records = None  # type: ignore[union-attr]


class KafkaSource(SourceBase):
    """Consumes the prediction and outcome topics as one consumer-group member (kafka-python).

    ``stored_offsets`` returns the checkpoint's offsets (seeked to on every
    assignment); ``on_revoke`` must checkpoint before partitions move away.
    kafka-python (3.x) calls both on its IO thread, where blocking consumer
    calls are refused: they must touch only local state (the SQLite
    checkpoint), never commit to Kafka; the main loop commits the group's
    offsets at its next checkpoint.

    Outages: the constructor waits for a broker (until ``stop_event`` is set).
    Afterwards kafka-python reconnects by itself: ``poll`` returns nothing while
    the brokers are away (it keeps the assignment and positions), and when they
    return the consumer rejoins the group; a new assignment seeks to the
    checkpoint again. ``commit`` and ``lag`` catch the brokers' timeouts, set
    ``problem`` and log once per outage; the offsets stay in the checkpoint and
    the next commit carries them.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stored_offsets: Callable[[], Offsets],
        on_revoke: Callable[[], None],
        stop_event: threading.Event | None = None,
        on_assign: AssignHook | None = None,
        on_revoked: RevokeHook | None = None,
    ) -> None:
        super().__init__(settings, stored_offsets, on_revoke, KAFKA_PYTHON_RECORD)
        self.on_assign = on_assign
        self.on_revoked = on_revoked
        self.consumer = connect_with_backoff(lambda: self._consumer(settings), "consumer", stop_event)
        self.consumer.subscribe(
            topics=[settings.predictions_topic, settings.outcomes_topic], listener=self._listener()
        )

    def _listener(self) -> Any:
        """The rebalance listener: kafka-python calls it on its IO thread. A source that can await its hooks
        there (``_awaiting``: the consumer process's) lets that thread's event loop go on (heartbeats); it needs
        kafka-python's loop (``consumer._net``, private), else the hooks block the IO thread."""
        net = getattr(self.consumer, "_net", None)
        awaiting = self._awaiting(net) if net is not None and hasattr(net, "wait_read") else None
        return _Listener(self) if awaiting is None else async_listener(self, awaiting)

    def _awaiting(self, net: Any) -> Awaiting | None:
        """How the listener awaits a hook on kafka-python's event loop; None: the hooks block its IO thread
        (in the daemon's process: keep ``kafka.session_timeout`` above a revocation's time)."""
        return None

    @staticmethod
    def _consumer(settings: KafkaSettings) -> KafkaConsumer:
        kafka_records.install()  # aiokafka's compiled record reader (daemon/kafka_records.py)
        return build_client(
            KafkaConsumer,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.auto_offset_reset,
            max_poll_records=settings.max_poll_records,
            session_timeout_ms=int(parse_duration(settings.session_timeout) * 1000),
            heartbeat_interval_ms=max(300, int(parse_duration(settings.session_timeout) * 1000) // 4),
            # a topic created after we joined (or not yet in the first metadata answer) is picked
            # up, and the group rebalanced onto it, at the next refresh rather than after 5 minutes
            metadata_max_age_ms=10_000,
            # bigger fetches, fewer round trips: 132k -> 153k messages/s consumed here (CRC checks kept)
            max_partition_fetch_bytes=8 << 20,
            fetch_max_bytes=64 << 20,
            fetch_max_wait_ms=int(parse_duration(settings.fetch_max_wait) * 1000),
            **client_options(settings),
        )

    def generation(self) -> int:
        """The consumer group's generation this member joined (-1 while unknown)."""
        coordinator = getattr(self.consumer, "_coordinator", None)
        generation = getattr(coordinator, "_generation", None)
        return int(getattr(generation, "generation_id", -1))

    def _seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        for (t, p), o in offsets.items():
            try:
                self.consumer.seek(TopicPartition(t, p), o)
            except ValueError:  # revoked meanwhile (the IO thread rebalances): its next owner restores it
                log.info("%s[%d] moved away before the seek to %d", t, p, o)

    def _call_timeout_ms(self) -> int:
        return PROBE_TIMEOUT_MS if self.outage.since is not None else CALL_TIMEOUT_MS

    def _fetch(self, timeout: float) -> list[tuple[str, int, list[Any]]]:
        started = time.monotonic()
        if self._joining():
            timeout = max(timeout, JOIN_POLL_SECONDS)
        _unblock_parked(self.consumer)
        try:
            records = self.consumer.poll(timeout_ms=int(timeout * 1000))
        except KafkaError as exc:
            if not is_transient(exc):
                raise
            self.outage.failed(exc)
            return []
        # records alone do not end an outage (they may have been fetched before it): commit and lag do
        if not records and timeout and not self.consumer.assignment():
            # without partitions kafka-python returns at once: don't spin a core while waiting
            time.sleep(max(0.0, min(0.2, timeout - (time.monotonic() - started))))
        return [(tp.topic, tp.partition, batch) for tp, batch in records.items()]

    def _joining(self) -> bool:
        """The member is to (re)join its group: the next poll must last long enough to read the join."""
        need_rejoin = getattr(getattr(self.consumer, "_coordinator", None), "need_rejoin", None)
        return bool(need_rejoin is not None and need_rejoin())

    def _assigned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def _high_watermark(self, key: tuple[str, int]) -> int | None:
        try:
            return self.consumer.highwater(TopicPartition(*key))
        except (KafkaError, AssertionError, KeyError):  # no longer assigned
            return None

    def _ask_end(self, key: tuple[str, int]) -> int | None:
        tp = TopicPartition(*key)
        try:
            return self.consumer.end_offsets([tp], timeout_ms=PROBE_TIMEOUT_MS).get(tp)
        except KafkaError:
            return None

    def _pause(self, pause: set[tuple[str, int]], resume: set[tuple[str, int]]) -> None:
        """Stop fetching ``pause`` (its queue is full), fetch ``resume`` again. kafka-python parks what it
        fetched of a paused partition and hands it on once resumed (see :func:`_unblock_parked`).

        A partition revoked meanwhile (kafka-python rebalances on its IO thread) is not in the consumer's
        assignment any more (its ``pause`` raises KeyError): there is nothing to pause or resume."""
        for keys, change in ((pause, self.consumer.pause), (resume, self.consumer.resume)):
            for key in keys:
                try:
                    change(TopicPartition(*key))
                except KeyError:
                    log.debug("%s[%d] moved away before its %s", key[0], key[1], change.__name__)

    def _commit_unacknowledged(self) -> bool:
        assigned = self._assigned()
        to_commit = {key: o for key, o in self._unacknowledged.items() if key in assigned}
        if not to_commit:
            self._unacknowledged.clear()
            return True
        try:
            self.consumer.commit({TopicPartition(*key): OffsetAndMetadata(o, "", -1) for key, o in to_commit.items()},
                                 timeout_ms=self._call_timeout_ms())
        except KafkaError as exc:
            if is_transient(exc):
                self.outage.failed(exc)
            else:  # e.g. CommitFailedError: the group rebalanced; the new assignment seeks to the checkpoint
                log.warning("offset commit not taken (%s); the checkpoint keeps the offsets", exc)
            return False
        self.outage.recovered()
        for key, o in to_commit.items():
            if self._unacknowledged.get(key) == o:
                del self._unacknowledged[key]
        return True

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages behind the end of each assigned partition (fetched but not handed on count); {} when the
        brokers cannot say.

        Also the periodic probe of an outage: retries offsets a failed ``commit`` left behind.
        """
        assignment = list(self.consumer.assignment())
        if not assignment:
            return {}
        try:
            if self._unacknowledged and not self._commit_unacknowledged():
                return {}
            ends = self.consumer.end_offsets(assignment, timeout_ms=self._call_timeout_ms())
            queued = self.buffered()
            behind = {
                (tp.topic, tp.partition): max(0, ends[tp] - self.consumer.position(tp, timeout_ms=PROBE_TIMEOUT_MS)
                                              + queued.get((tp.topic, tp.partition), 0))
                for tp in assignment
            }
        except KafkaError as exc:
            if not is_transient(exc):
                raise
            self.outage.failed(exc)
            return {}
        self.outage.recovered()
        return behind

    def close(self) -> None:
        # bounded: leaving the group during an outage must not hold up the exit
        self.consumer.close(autocommit=False, timeout_ms=CALL_TIMEOUT_MS)


@dataclass(frozen=True)
class _DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class KafkaDeadLetters:
    """Sends rejected messages, original bytes untouched (a null value stays null), the reason in headers.

    Nothing is dropped during an outage: the producer never expires a record
    (kafka-python retries it, idempotently, until the broker takes it); a send
    that cannot even be buffered waits in a backlog here; a record the producer
    failed is sent again. ``flush`` raises ``DeadLettersPending`` until every
    dead letter is acknowledged: the caller must then skip the checkpoint (its
    offsets would claim these dead letters are written) and try again later.

    ``compression_type`` applies to everything this producer sends (the alert
    topic receiver shares it).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stop_event: threading.Event | None = None,
        compression_type: Compression | None = None,
        flush_timeout: float = CALL_TIMEOUT_MS / 1000,
    ) -> None:
        self.topic = settings.dead_letter_topic
        self.flush_timeout = flush_timeout
        self.outage = Outage("dead-letter producer")
        self._backlog: list[_DeadLetter] = []  # not yet handed to the producer, in order
        self._sent: list[tuple[_DeadLetter, FutureRecordMetadata]] = []  # handed over, not yet acknowledged
        ensure_topic(settings, self.topic, stop_event=stop_event)
        self.producer = connect_with_backoff(
            lambda: build_client(
                KafkaProducer,
                linger_ms=50,
                acks="all",
                compression_type=compression_type,
                # never give up on a record (kafka-python's default expires it after 2 minutes,
                # i.e. drops it in a longer outage): it waits in the buffer until the broker is back
                delivery_timeout_ms=2**31 - 1,
                # a send blocks the consume loop at most this long (metadata unknown, buffer full)
                max_block_ms=CALL_TIMEOUT_MS,
                **client_options(settings),
            ),
            "dead-letter producer",
            stop_event,
        )
        # learn the topic's partitions now, so that a send during an outage is buffered
        # instead of waiting for metadata
        connect_with_backoff(lambda: self.producer.partitions_for(self.topic), f"topic {self.topic}", stop_event)

    @property
    def problem(self) -> str | None:
        """Why dead letters cannot be written right now (for readiness), or None."""
        return self.outage.problem

    @property
    def pending(self) -> int:
        """Dead letters sent but not yet acknowledged by Kafka."""
        return len(self._backlog) + len(self._sent)

    def send(self, message: Message, reason: str) -> None:
        headers = [
            ("driftwarden.reason", reason.encode()),
            ("driftwarden.topic", message.topic.encode()),
            ("driftwarden.partition", str(message.partition).encode()),
            ("driftwarden.offset", str(message.offset).encode()),
        ]
        letter = _DeadLetter(message.key, message.value, headers)
        if self._backlog:  # keep the order: nothing overtakes what waits
            self._backlog.append(letter)
        else:
            self._hand_over(letter)

    def _hand_over(self, letter: _DeadLetter) -> bool:
        # kafka-python refuses a record with neither key nor value; a null value alone is kept
        value = letter.value if letter.value is not None or letter.key is not None else b""
        try:
            future = self.producer.send(self.topic, value=value, key=letter.key, headers=letter.headers)
        except KafkaError as exc:  # metadata unknown or buffer full for max_block_ms
            if not is_transient(exc):
                raise
            self.outage.failed(exc)
            self._backlog.insert(0, letter)  # back at the front: it was the oldest waiting
            return False
        self._sent.append((letter, future))
        return True

    def flush(self) -> None:
        """Wait (up to ``flush_timeout``) until every dead letter is acknowledged.

        Raises ``DeadLettersPending`` otherwise; they stay buffered and are retried by the
        next ``send``/``flush``. Only after a flush that returns may the checkpoint commit.
        """
        if not self.pending:
            return  # nothing to wait for (and no answer from Kafka to learn from)
        while self._backlog:
            letter = self._backlog.pop(0)
            if not self._hand_over(letter):
                break
        try:
            self.producer.flush(timeout=self.flush_timeout)
        except KafkaError as exc:
            if not is_transient(exc):
                raise
            self.outage.failed(exc)
        failed = [(letter, f) for letter, f in self._sent if f.is_done and f.failed()]
        self._sent = [(letter, f) for letter, f in self._sent if not f.is_done]
        for letter, future in failed:  # e.g. in flight when the producer's epoch was bumped
            log.warning("dead letter not written (%s); sending it again", future.exception)
            self._backlog.append(letter)
        if self._backlog or self._sent:
            raise DeadLettersPending(
                f"{self.pending} dead letter(s) not yet acknowledged by Kafka"
                + (f" ({self.outage.problem})" if self.outage.problem else "")
            )
        self.outage.recovered()

    def close(self, timeout: float = CALL_TIMEOUT_MS / 1000) -> None:
        """Close the producer, waiting at most ``timeout`` for what it still holds.

        What it could not write is not lost: the checkpoint was not committed past it.
        """
        self.producer.close(timeout=timeout)


@runtime_checkable
class Source(Protocol):
    """What the daemon's loop needs of a consumer (KafkaSource, ConfluentSource, ProcessSource)."""

    @property
    def problem(self) -> str | None: ...
    @property
    def uncommitted(self) -> Offsets: ...
    def poll(self) -> Polled: ...
    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def lag(self) -> dict[tuple[str, int], int]: ...
    def assigned(self) -> set[tuple[str, int]]: ...
    def close(self) -> None: ...


@runtime_checkable
class DeadLetterSink(Protocol):
    """What the daemon needs of a dead-letter producer (KafkaDeadLetters, ConfluentDeadLetters)."""

    producer: Any  # for the alerts topic receiver: send(topic, key=, value=) -> future with get(timeout)

    @property
    def problem(self) -> str | None: ...
    @property
    def pending(self) -> int: ...
    def send(self, message: Message, reason: str) -> None: ...
    def flush(self) -> None: ...
    def close(self, timeout: float = ...) -> None: ...


def _confluent() -> Any:
    from driftwarden.daemon.config import ConfigError  # not at the top: the consumer process imports this module

    try:
        from driftwarden.daemon import kafka_confluent
    except ImportError as exc:
        raise ConfigError("kafka.client", [
            f"kafka.client: confluent-kafka is not installed ({exc}): pip install 'driftwarden[confluent]'"
        ]) from exc
    return kafka_confluent


def open_dead_letters(
    settings: KafkaSettings,
    stop_event: threading.Event | None = None,
    compression_type: Compression | None = None,
    flush_timeout: float = CALL_TIMEOUT_MS / 1000,
) -> DeadLetterSink:
    """The dead-letter producer of the configured ``kafka.client``; waits for a broker until ``stop_event``."""
    cls = _confluent().ConfluentDeadLetters if settings.client == "confluent-kafka" else KafkaDeadLetters
    return cls(settings, stop_event=stop_event, compression_type=compression_type, flush_timeout=flush_timeout)


def open_source(
    settings: KafkaSettings,
    stored_offsets: Callable[[], Offsets],
    on_revoke: Callable[[], None],
    stop_event: threading.Event | None = None,
    on_assign: AssignHook | None = None,
    on_revoked: RevokeHook | None = None,
) -> Source:
    """The consumer of the configured ``kafka.client``; waits for a broker until ``stop_event``.

    ``on_assign``/``on_revoked`` (state that follows its partition) are told which partitions
    moved; ``on_revoked`` is then called instead of ``on_revoke``.
    """
    if settings.client == "confluent-kafka":
        return _confluent().ConfluentSource(settings, stored_offsets, on_revoke, stop_event=stop_event,
                                            on_assign=on_assign, on_revoked=on_revoked)
    if settings.consumer_process:
        from driftwarden.daemon.consumer_process import ProcessSource

        return ProcessSource(settings, stored_offsets, on_revoke, stop_event=stop_event, on_assign=on_assign,
                             on_revoked=on_revoked)
    return KafkaSource(settings, stored_offsets, on_revoke, stop_event=stop_event, on_assign=on_assign,
                       on_revoked=on_revoked)
