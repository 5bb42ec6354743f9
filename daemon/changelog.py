"""The state changelog: a compacted Kafka topic holding each model's state, keyed by model.

With ``state.backend: kafka`` a model's state follows its partition from one group member
to the next, as a Kafka Streams task's store does. The changelog has as many partitions as
the source topics; partition ``p`` holds the state of the models whose events are in
partition ``p`` of ``predictions`` and ``outcomes`` (which must be co-partitioned), so a
member restores exactly the changelog partitions of what it was assigned.

Records (MessagePack values, zstd-compressed by the producer; :func:`decode` reads the JSON
values of earlier versions too):

- ``model/<model_id>@<epoch>``: one model's state and the source offsets it reflects;
- ``partition@<epoch>``: the partition's offsets (everything below them was processed, also
  events of no model: dead letters are not sent twice) and its owner.

``epoch`` is the partition's ownership epoch: each new owner claims ``max + 1`` before it
processes anything (it writes every restored model and the marker again under its epoch,
then tombstones the older keys). A fenced owner that did not notice yet still writes under
its old epoch; :func:`resolve` ignores any record written after a marker of a newer epoch,
so its late writes never win a restore. Keys carry the epoch so that compaction can never
replace the new owner's record of a model by a stale owner's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import kafka.errors
import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from driftwarden.daemon.checkpoint import STATE_ENCODER
from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.kafka_io import build_client, client_options

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 64 << 20  # a model's detector state is ~0.5-1 MB before compression
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(MAX_RECORD_BYTES),
    "min.cleanable.dirty.ratio": "0.1",
    "segment.ms": str(6 * 3600 * 1000),  # the active segment is never compacted: roll it
    # ... also by size: every checkpoint writes each busy model's state (up to ~0.8 MB), and a restore
    # reads what compaction left: the broker's 1 GiB default would leave up to 1 GiB a partition to read
    "segment.bytes": str(2 * MAX_RECORD_BYTES),
}
_MARKER = "partition@"
_MODEL = "model/"


class ChangelogError(RuntimeError):
    """The changelog or the source topics are not usable as they are; the message says what to change."""


class StateRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One changelog value. ``offsets``: next offsets of the source partitions it reflects."""

    kind: str  # "model" or "partition"
    partition: int
    epoch: int
    generation: int = -1  # the consumer group's generation when written (-1: the client does not say)
    member: str = ""
    written_at: float = 0.0
    offsets: dict[str, int] = msgspec.field(default_factory=dict)
    model_id: str | None = None
    version: int = 0  # how many times this model's state was written (by any owner)
    state: dict[str, Any] | None = None

    def key(self) -> str:
        return f"{_MODEL}{self.model_id}@{self.epoch}" if self.kind == "model" else f"{_MARKER}{self.epoch}"


_decoder = msgspec.msgpack.Decoder(StateRecord)


def encode(record: StateRecord) -> bytes:
    """MessagePack, as the SQLite checkpoint stores a model's state (NaN and infinities kept as float64):
    ~10x faster than the JSON text (json.dumps, allow_nan) of earlier versions."""
    return STATE_ENCODER.encode(record)


def decode(value: bytes) -> StateRecord:
    """A record: MessagePack (a map: never starts with ``{``), or the JSON text earlier versions wrote."""
    if value[:1] == b"{":
        return msgspec.convert(json.loads(value), StateRecord)
    return _decoder.decode(value)


@dataclass
class PartitionState:
    """What a changelog partition says after :func:`resolve`."""

    partition: int
    models: dict[str, StateRecord] = field(default_factory=dict)
    marker: StateRecord | None = None
    epoch: int = 0  # the highest epoch seen (a new owner claims epoch + 1)
    stale: int = 0  # records ignored: written by an older epoch after a newer owner's claim
    unreadable: int = 0  # records ignored: they do not decode (not written by driftwarden, or corrupted)
    keys: set[str] = field(default_factory=set)  # live keys (for tombstones after a claim)


def resolve(partition: int, records: Iterable[tuple[str, bytes | None]]) -> PartitionState:
    """The state of a changelog partition from its records, in log order (key, value or None).

    >>> a = StateRecord(kind="model", partition=0, epoch=1, model_id="churn", version=3, state={"n": 1})
    >>> claim = StateRecord(kind="partition", partition=0, epoch=2)
    >>> b = StateRecord(kind="model", partition=0, epoch=2, model_id="churn", version=4, state={"n": 1})
    >>> late = StateRecord(kind="model", partition=0, epoch=1, model_id="churn", version=9, state={"n": 7})
    >>> got = resolve(0, [(r.key(), encode(r)) for r in (a, claim, b, late)])
    >>> got.models["churn"].version, got.epoch, got.stale
    (4, 2, 1)
    """
    resolver = Resolver(partition)
    for key, value in records:
        resolver.add(key, value)
    return resolver.done()


class Resolver:
    """:func:`resolve` one record at a time: a restore holds the partition's newest records, not its log
    (which holds every checkpoint's version of every model until the broker compacts it)."""

    def __init__(self, partition: int) -> None:
        self.out = PartitionState(partition)
        self.newest_marker = -1

    def add(self, key: str, value: bytes | None) -> None:
        out = self.out
        if value is None:
            out.keys.discard(key)
            return
        out.keys.add(key)  # (an unreadable record's key too: the next claim tombstones it)
        try:
            record = decode(value)
        except (ValueError, msgspec.DecodeError) as exc:  # a foreign or corrupted record: the others still count
            out.unreadable += 1
            log.error("changelog partition %d: the record under key %r does not decode (%s: %s); ignored",
                      out.partition, key, type(exc).__name__, str(exc)[:200])
            return
        out.epoch = max(out.epoch, record.epoch)
        if record.epoch < self.newest_marker:
            out.stale += 1
            return
        if record.kind == "partition":
            self.newest_marker = record.epoch
            if out.marker is None or record.epoch >= out.marker.epoch:
                out.marker = record
            return
        assert record.model_id is not None
        held = out.models.get(record.model_id)
        if held is None or record.epoch >= held.epoch:
            out.models[record.model_id] = record

    def done(self) -> PartitionState:
        out = self.out
        # tombstoned keys: a model whose only record was tombstoned keeps nothing
        out.models = {m: r for m, r in out.models.items() if r.key() in out.keys}
        if out.marker is not None and out.marker.key() not in out.keys:
            out.marker = None
        return out


def source_partitions(settings: KafkaSettings) -> int:
    """The partition count shared by the predictions and outcomes topics (co-partitioned by model).

    Raises ChangelogError when a topic is missing or their counts differ: partition ``p`` of
    both must hold the same models, or a model's outcomes would be read by another member.
    """
    admin = build_client(KafkaAdminClient, **client_options(settings))
    try:
        counts = _partition_counts(admin, [settings.predictions_topic, settings.outcomes_topic])
    finally:
        admin.close()
    predictions, outcomes = counts.get(settings.predictions_topic), counts.get(settings.outcomes_topic)
    if predictions is None or outcomes is None:
        missing = [t for t, n in ((settings.predictions_topic, predictions), (settings.outcomes_topic, outcomes)) if n is None]
        raise ChangelogError(f"state.backend kafka: topic(s) {', '.join(missing)} do not exist; create them with the "
                             "same partition count (events keyed by model id)")
    if predictions != outcomes:
        raise ChangelogError(
            f"state.backend kafka: {settings.predictions_topic} has {predictions} partitions but "
            f"{settings.outcomes_topic} has {outcomes}; a model's state follows its partition, so both topics must "
            "have the same partition count (and be keyed by model id)")
    return predictions


def _partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partition counts of the topics that exist; a broker that cannot tell yet raises (retriable)."""
    described = admin.describe_topics(topics)
    for t in described:
        error = kafka.errors.for_code(t.get("error_code") or 0)
        if error is not kafka.errors.NoError and error.retriable and error is not UnknownTopicOrPartitionError:
            raise error(f"describe {t.get('name')}")  # e.g. a leader not elected yet after a broker restart
    return {t["name"]: len(t["partitions"]) for t in described if t.get("partitions") and not t.get("error_code")}


def ensure_changelog(settings: KafkaSettings, topic: str, partitions: int) -> None:
    """Create the compacted changelog topic if missing; refuse one that cannot serve (wrong policy or count)."""
    admin = build_client(KafkaAdminClient, **client_options(settings))
    try:
        if topic not in set(admin.list_topics()):
            try:
                admin.create_topics([NewTopic(topic, partitions, -1, topic_configs=TOPIC_CONFIG)])
                log.info("created changelog topic %s (%d partitions, compacted)", topic, partitions)
            except TopicAlreadyExistsError:
                pass
        have = _partition_counts(admin, [topic]).get(topic)
        if have is not None and have != partitions:
            raise ChangelogError(f"state.changelog_topic {topic!r} has {have} partitions, the source topics {partitions}: "
                                 "delete it (or name another) so that it is created with the same count")
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})],
                                         config_filter="all")
        policy = (configs.get("topic", {}).get(topic, {}).get("cleanup.policy") or {}).get("value")
        if policy is not None and "compact" not in policy:
            raise ChangelogError(f"state.changelog_topic {topic!r} has cleanup.policy={policy}; it must be compact "
                                 "(kafka-configs --alter --add-config cleanup.policy=compact)")
    finally:
        admin.close()


class Changelog:
    """Writes and reads the changelog topic (kafka-python, whichever ``kafka.client`` consumes)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.bytes_written = 0
        self.producer = build_client(
            KafkaProducer,
            acks="all",
            compression_type="zstd",
            linger_ms=5,
            max_request_size=MAX_RECORD_BYTES,
            delivery_timeout_ms=2**31 - 1,
            **client_options(settings),
        )

    def write(self, records: Iterable[StateRecord]) -> None:
        for record in records:
            value = encode(record)
            self.bytes_written += len(value)
            self.producer.send(self.topic, key=record.key().encode(), value=value, partition=record.partition)

    def tombstone(self, partition: int, keys: Iterable[str]) -> None:
        for key in keys:
            self.producer.send(self.topic, key=key.encode(), value=None, partition=partition)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until Kafka took everything written (then a checkpoint may commit the offsets)."""
        self.producer.flush(timeout=timeout)

    def read(self, partitions: Iterable[int], timeout: float = 60.0) -> dict[int, PartitionState]:
        """Read changelog partitions from the beginning to their current end."""
        return read_changelog(self.settings, self.topic, partitions, timeout)

    def close(self) -> None:
        self.producer.close(timeout=10)


def offsets_key(topic: str, partition: int) -> str:
    return f"{topic}[{partition}]"


def read_changelog(settings: KafkaSettings, topic: str, partitions: Iterable[int] | None = None,
                   timeout: float = 60.0) -> dict[int, PartitionState]:
    """Read changelog partitions (all of them: None) from the beginning to their current end."""
    consumer = build_client(
        KafkaConsumer, group_id=None, enable_auto_commit=False, max_partition_fetch_bytes=MAX_RECORD_BYTES,
        fetch_max_bytes=MAX_RECORD_BYTES, **client_options(settings),
    )
    try:
        if partitions is None:
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        wanted = [TopicPartition(topic, p) for p in partitions]
        resolvers = {tp.partition: Resolver(tp.partition) for tp in wanted}
        if not wanted:
            return {}
        consumer.assign(wanted)
        ends = consumer.end_offsets(wanted)
        consumer.seek_to_beginning(*wanted)
        todo = {tp for tp in wanted if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise ChangelogError(f"reading {topic}: no record for {timeout:.0f} s; "
                                     f"partitions {sorted(tp.partition for tp in todo)} not read to their end")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                resolver = resolvers[tp.partition]
                for r in batch:
                    if r.offset < ends[tp]:
                        resolver.add(r.key.decode(), r.value)
                deadline = time.monotonic() + timeout  # a long log is read as long as it comes
            todo = {tp for tp in todo if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close(autocommit=False)
    return {p: resolver.done() for p, resolver in resolvers.items()}


def group_status(settings: KafkaSettings, topic: str, timeout: float = 20.0) -> dict[str, Any]:
    """Who owns each partition and its models, by the changelog: owner, epoch, generation, versions, offsets
    and each model's labelled events as its last record says."""
    out: dict[str, Any] = {}
    for p, st in sorted(read_changelog(settings, topic, None, timeout).items()):
        marker = st.marker
        out[str(p)] = {
            "owner": marker.member if marker else None,
            "epoch": marker.epoch if marker else st.epoch,
            "generation": marker.generation if marker else None,
            "released": bool(marker and marker.state and marker.state.get("released")),
            "written_at": marker.written_at if marker else None,
            "offsets": marker.offsets if marker else {},
            "ignored_stale_records": st.stale,
            "unreadable_records": st.unreadable,
            "models": {m: {"version": r.version, "epoch": r.epoch, "owner": r.member, "offsets": r.offsets,
                           "written_at": r.written_at,
                           "labelled_samples": ((r.state or {}).get("meta") or {}).get("labelled_samples")}
                       for m, r in sorted(st.models.items())},
        }
    return out
