"""Fetched records wait in one queue per partition and go on in step of their timestamps.

Replaying a backlog, both Kafka clients hand over one partition at a time in long runs
(confluent-kafka gave all 100,000 predictions of a backlog, then all the outcomes): the
topic read first runs hours ahead of the other in event time, and the outcome join holds
everything in between. As Kafka Streams does with its record queues, a poll's records
wait here per partition and are handed on only up to the *frontier*, the smallest of the
newest timestamps queued per partition: every partition that has records advances to the
same time. A partition whose queue is full is paused (the client stops fetching it) so
that the client fetches the others; an empty partition that the broker says has more
records (its fetched high watermark is past what was read) holds the others back for at
most ``max_idle`` seconds (Kafka Streams' ``max.task.idle.ms``); an empty partition that
is caught up holds nothing back, so a live daemon's records go on at once.

Timestamps are the records' own (producer or log-append time), read without decoding.
This changes the order in which partitions are read, never what is read: offsets are
counted only for records handed on, so a checkpoint never claims a queued one.

>>> from driftwarden.daemon.polled import RecordReader
>>> reader = RecordReader(lambda r: r[0], lambda r: None, lambda r: r, lambda r: r[1])
>>> queues = RecordQueues(reader, capacity=3, max_idle=1.0, clock=lambda: 0.0)
>>> queues.add("p", 0, [(0, 10), (1, 20), (2, 30), (3, 40)])
>>> queues.add("o", 0, [(0, 15), (1, 25)])
>>> polled = queues.take(lagging=())
>>> [(run.topic, [r[1] for r in run.records]) for run in polled.runs], queues.full()
([('p', [10, 20]), ('o', [15, 25])], set())
>>> queues.take(lagging=[("o", 0)]).runs, queues.queued(("p", 0))
([], 2)
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from driftwarden.daemon.polled import Polled, RecordReader, Run

TopicPartition = tuple[str, int]


class RecordQueues:
    """Per-partition queues of fetched records, handed on aligned by timestamp.

    ``capacity``: records queued per partition before ``full`` asks for it to be paused;
    ``max_idle``: seconds a partition with known lag but nothing queued may hold the others back;
    ``limit``: records a queue may hold at all (for a client that cannot pause): past it, the
    oldest go on whatever the frontier.
    """

    def __init__(self, reader: RecordReader, capacity: int, max_idle: float, limit: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if limit is not None and limit < capacity:
            raise ValueError(f"limit must be >= capacity ({capacity}), got {limit}")
        if max_idle < 0:
            raise ValueError(f"max_idle must be >= 0 seconds, got {max_idle}")
        self.reader = reader
        self.capacity = capacity
        self.limit = limit
        self.max_idle = max_idle
        self.clock = clock
        self._queues: dict[TopicPartition, list[Any]] = {}
        self._next: dict[TopicPartition, int] = {}  # the offset after the last record fetched, per partition
        self._idle_since: float | None = None

    def add(self, topic: str, partition: int, records: list[Any]) -> None:
        """Queue records of one partition, in offset order (as the client gave them)."""
        if not records:
            return
        key = (topic, partition)
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = list(records)
        else:
            queue.extend(records)
        self._next[key] = self.reader.offset(records[-1]) + 1

    def queued(self, key: TopicPartition) -> int:
        """Records of ``key`` fetched but not handed on."""
        return len(self._queues.get(key, ()))

    def fetched_to(self, key: TopicPartition) -> int | None:
        """The offset after the last record fetched of ``key`` (None before the first)."""
        return self._next.get(key)

    def full(self) -> set[TopicPartition]:
        """Partitions to pause: their queues hold ``capacity`` records or more."""
        return {key for key, queue in self._queues.items() if len(queue) >= self.capacity}

    def keep(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget everything of partitions not in ``partitions`` (revoked, or sought elsewhere)."""
        kept = set(partitions)
        for store in (self._queues, self._next):
            for key in [k for k in store if k not in kept]:
                del store[key]

    def take(self, lagging: Collection[TopicPartition]) -> Polled:
        """The queued records up to the frontier; nothing while an empty ``lagging`` partition may still come.

        ``lagging``: assigned partitions the broker has more records of than were fetched.
        """
        heads = {key: queue for key, queue in self._queues.items() if queue}
        if not heads:
            self._idle_since = None
            return Polled()
        stamp = self.reader.timestamp
        frontier: float = min(stamp(queue[-1]) for queue in heads.values())
        if any(key not in heads for key in lagging):
            now = self.clock()
            if self._idle_since is None:
                self._idle_since = now
            if now - self._idle_since < self.max_idle:
                frontier = float("-inf")  # wait for them (but for what is over the limit)
        else:
            self._idle_since = None
        runs = []
        for (topic, partition), queue in heads.items():
            # timestamps within a partition are in order but for producers' clock skew: a cut at
            # the wrong place only changes the order partitions are read in; the partition that
            # set the frontier is always emptied, so every take makes progress
            cut = len(queue) if stamp(queue[-1]) <= frontier else bisect.bisect_right(queue, frontier, key=stamp)
            if self.limit is not None:
                cut = max(cut, len(queue) - self.limit)
            if cut:
                runs.append(Run(topic, partition, queue[:cut], self.reader))
                del queue[:cut]
        return Polled(runs)
