"""What the two Kafka sources share (daemon/kafka_io.py: kafka-python; daemon/kafka_confluent.py:
librdkafka): the checkpoint hooks, the commit bookkeeping, and the poll through the record queues.

A client class says how to fetch, what is assigned, what the broker's high watermark of a
partition is, and how to pause and resume partitions; this class does the rest the same way
for both, so that the Kafka tests run against both clients test one behaviour.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from driftwarden.daemon.kafka_outage import Outage
from driftwarden.daemon.kafka_settings import KafkaSettings, parse_duration
from driftwarden.daemon.polled import Polled, RecordReader
from driftwarden.daemon.record_queues import RecordQueues

Offsets = dict[tuple[str, int], int]
TopicPartition = tuple[str, int]
# polls' worth of records a partition may queue before it is paused (confluent-kafka) or what is over
# goes on regardless (kafka-python). One poll's worth paused confluent-kafka's partitions in turn
# during a catch-up, and each resume waited on a fetch: 8-30 ms, 13 empty polls of 40 replaying 100k
# predictions and their outcomes (poll time 0.23-0.35 of 1.3-1.46 s); 4: 0.12 s, 9 empty.
QUEUED_POLLS = 4


class SourceBase(abc.ABC):
    """One consumer-group member over the prediction and outcome topics, either client.

    ``stored_offsets`` returns the checkpoint's offsets (sought on every assignment);
    ``on_revoke`` must checkpoint before partitions move away. ``poll`` hands on the
    records of every partition in step of their timestamps (daemon/record_queues.py);
    ``commit`` takes next-offsets of assigned partitions and keeps what the group did
    not take in ``uncommitted`` for the next ``commit`` or ``lag``.
    """

    def __init__(self, settings: KafkaSettings, stored_offsets: Callable[[], Offsets],
                 on_revoke: Callable[[], None], reader: RecordReader, pauses: bool = True) -> None:
        self.settings = settings
        self.stored_offsets = stored_offsets
        self.on_revoke = on_revoke
        self.outage = Outage("consumer")
        self._unacknowledged: Offsets = {}
        self._timeout = parse_duration(settings.poll_timeout)
        # a partition QUEUED_POLLS polls' worth ahead is paused (``pauses``; else what is over that goes on
        # regardless); a lagging one holds the others back at most a poll timeout
        self.pauses = pauses
        queued = QUEUED_POLLS * settings.max_poll_records
        self.queues = RecordQueues(reader, capacity=queued, max_idle=self._timeout, limit=queued)
        self._paused: set[TopicPartition] = set()
        self._assignments = 0  # bumped by every assignment (from the client's callback)
        self._assignments_seen = 0
        self._stale: set[TopicPartition] = set()  # queued records read before a seek, to drop
        self._stale_lock = threading.Lock()  # kafka-python calls back on its IO thread
        self._asked_ends: dict[tuple[int, TopicPartition], int | None] = {}  # (assignment, partition) -> end

    # what each client provides
    @abc.abstractmethod
    def _fetch(self, timeout: float) -> Iterable[tuple[str, int, list[Any]]]:
        """Records fetched within ``timeout`` seconds, as (topic, partition, records in offset order)."""

    @abc.abstractmethod
    def _assigned(self) -> set[TopicPartition]: ...

    def assigned(self) -> set[TopicPartition]:
        """The partitions this member holds now."""
        return self._assigned()

    @abc.abstractmethod
    def _high_watermark(self, key: TopicPartition) -> int | None:
        """The broker's end offset of ``key`` as the last fetch said (None if unknown); no broker call."""

    @abc.abstractmethod
    def _ask_end(self, key: TopicPartition) -> int | None:
        """The broker's end offset of ``key``, asked with a short timeout (None if it did not answer)."""

    @abc.abstractmethod
    def _pause(self, pause: set[TopicPartition], resume: set[TopicPartition]) -> None: ...

    @abc.abstractmethod
    def _commit_unacknowledged(self) -> bool: ...

    @abc.abstractmethod
    def _seek(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Read these assigned partitions from these offsets next (the consume loop's thread).

        What waits in their record queues was read from the old position: it is dropped."""
        assigned = self._assigned()
        moved = {key: offset for key, offset in offsets.items() if key in assigned}
        if moved:
            self.queues.keep(assigned - set(moved))
            self._seek(moved)

    def _assignment_changed(self, moved: Iterable[TopicPartition]) -> None:
        """Called by the client's assignment callback (any thread). ``moved``: partitions whose position
        the assignment set anew (sought to the checkpoint, or to the group's offset): what is queued of
        them was read before, and goes. A partition that kept its position keeps its queue."""
        with self._stale_lock:
            self._stale.update(moved)
            self._assignments += 1

    @property
    def problem(self) -> str | None:
        """Why the consumer cannot reach Kafka right now (for readiness), or None."""
        return self.outage.problem

    def poll(self) -> Polled:
        """The next records, in step across partitions; empty when none came within ``poll_timeout``."""
        fetched = self._fetch(0.0 if self._queued_ready() else self._timeout)
        assigned = self._assigned()
        if self._assignments != self._assignments_seen:
            with self._stale_lock:
                stale, self._stale = self._stale, set()
                self._assignments_seen = self._assignments
            self.queues.keep(assigned - stale)  # new positions: what waits was read before them
            self._asked_ends.clear()
            if self.pauses:
                self._pause(set(), assigned)  # pauses are decided again below
            self._paused = set()
        else:
            self.queues.keep(assigned)
        for topic, partition, records in fetched:
            self.queues.add(topic, partition, records)
        polled = self.queues.take(self._lagging(assigned))
        if self.pauses:
            full = self.queues.full() & assigned
            paused = self._paused & assigned
            if full != paused:
                self._pause(full - paused, paused - full)
            self._paused = full
        return polled

    def _queued_ready(self) -> bool:
        """Records wait that could go on now (no partition to wait for): the next fetch must not block."""
        assigned = self._assigned()
        return any(self.queues.queued(k) for k in assigned) and not self._lagging(assigned)

    def _lagging(self, assigned: set[TopicPartition]) -> list[TopicPartition]:
        """Assigned partitions with nothing queued that the broker has more records of than were fetched."""
        out = []
        for key in assigned:
            if self.queues.queued(key):
                continue
            high = self._high_watermark(key)
            fetched_to = self.queues.fetched_to(key)
            if high is None and fetched_to is None:
                # the clients learn a high watermark from a fetch of that partition, and hand over one
                # partition's fetch at a time: ask the broker, once per assignment
                asked = (self._assignments, key)
                if asked not in self._asked_ends:
                    self._asked_ends[asked] = self._ask_end(key)
                high = self._asked_ends[asked]
            if high is None or high <= 0:
                continue
            if fetched_to is None or high > fetched_to:  # none fetched yet of a partition that has records: behind
                out.append(key)
        return out

    def buffered(self) -> dict[TopicPartition, int]:
        """Records fetched but not yet handed on, per partition (part of the lag)."""
        return {key: self.queues.queued(key) for key in self._assigned()}

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit next-offsets to the group (step 3 of the checkpoint order); never raises.

        Offsets Kafka did not take (outage, or a rebalance under way) stay in the checkpoint
        and are retried with the next ``commit`` or ``lag`` (``uncommitted`` says which).
        """
        assigned = self._committable()
        for key, offset in offsets.items():
            if key in assigned:
                self._unacknowledged[key] = offset
        self._commit_unacknowledged()

    def _committable(self) -> set[TopicPartition]:
        return self._assigned()

    @property
    def uncommitted(self) -> Offsets:
        """Offsets handed to ``commit`` that the group has not taken yet."""
        return dict(self._unacknowledged)
