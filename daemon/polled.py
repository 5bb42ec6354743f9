"""One poll's records as per-partition runs: the columns the pipeline reads, a ``Message`` only when asked.

A Kafka source used to build one ``Message`` per record (five calls into the client's
record and a dataclass per message, ~1 us each with confluent-kafka) although the
pipeline only reads the keys and values of each topic, and the loop only the last
offset of each partition. A ``Polled`` keeps the client's records as they came, one
``Run`` per topic-partition, with their keys and values taken in one ``map`` each;
a ``Message`` is made for the few records that need one (a dead letter).

>>> from driftwarden.daemon.message import Message
>>> polled = Polled.of_messages([Message("p", 0, 7, b"k", b"a"), Message("o", 0, 3, b"k", b"x"),
...                              Message("p", 0, 8, b"k", b"b")])
>>> len(polled), polled.next_offsets()  # one run per topic
(3, {('p', 0): 9, ('o', 0): 4})
>>> predictions, outcomes = polled.split("p")
>>> predictions.value_column(), outcomes.value_column(), predictions[1]
([b'a', b'b'], [b'x'], Message(topic='p', partition=0, offset=8, key=b'k', value=b'b'))
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from driftwarden.daemon.message import Message


@dataclass(frozen=True, slots=True)
class RecordReader:
    """How to read one client library's record: its offset, key, value and timestamp (ms)."""

    offset: Callable[[Any], int]
    key: Callable[[Any], bytes | None]
    value: Callable[[Any], bytes | None]
    timestamp: Callable[[Any], int]


MESSAGE_READER = RecordReader(operator.attrgetter("offset"), operator.attrgetter("key"),
                              operator.attrgetter("value"), lambda m: 0)


@dataclass(slots=True)
class Run:
    """Records of one topic-partition in offset order; or, with ``partition`` None, ``Message`` objects
    of one topic in the order they came (any partitions)."""

    topic: str
    partition: int | None
    records: Sequence[Any]
    reader: RecordReader

    def key_column(self) -> list[bytes | None]:
        return list(map(self.reader.key, self.records))

    def value_column(self) -> list[bytes | None]:
        return list(map(self.reader.value, self.records))

    def message(self, i: int) -> Message:
        record = self.records[i]
        if isinstance(record, Message):
            return record
        r = self.reader
        assert self.partition is not None
        return Message(self.topic, self.partition, r.offset(record), r.key(record), r.value(record))

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """The offset after the last record of each topic-partition of the run."""
        if self.partition is None:  # a partition's messages come in order
            return {(m.topic, m.partition): m.offset + 1 for m in self.records}
        return {(self.topic, self.partition): self.reader.offset(self.records[-1]) + 1}


class Polled(Sequence[Message]):
    """The records of one poll as runs; iterating or indexing gives ``Message`` objects."""

    __slots__ = ("_starts", "runs")

    def __init__(self, runs: Iterable[Run] = ()) -> None:
        self.runs = [run for run in runs if run.records]
        self._starts = list(itertools.accumulate((len(run.records) for run in self.runs), initial=0))

    @classmethod
    def of_messages(cls, messages: Iterable[Message]) -> Polled:
        """``Message`` objects (the demo's source, tests) as one run per topic, in the order they came."""
        if isinstance(messages, Polled):
            return messages
        by_topic: dict[str, list[Message]] = {}
        for m in messages:
            by_topic.setdefault(m.topic, []).append(m)
        return cls(Run(topic, None, group, MESSAGE_READER) for topic, group in by_topic.items())

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> list[Message]: ...
    def __getitem__(self, index: int | slice) -> Message | list[Message]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        r = bisect.bisect_right(self._starts, index) - 1
        return self.runs[r].message(index - self._starts[r])

    def __iter__(self) -> Iterator[Message]:
        for run in self.runs:
            yield from map(run.message, range(len(run.records)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Polled({[(run.topic, run.partition, len(run.records)) for run in self.runs]})"

    def key_column(self) -> list[bytes | None]:
        """Every record's key, in order."""
        return list(itertools.chain.from_iterable(map(Run.key_column, self.runs)))

    def value_column(self) -> list[bytes | None]:
        """Every record's value, in order."""
        return list(itertools.chain.from_iterable(map(Run.value_column, self.runs)))

    def split(self, topic: str) -> tuple[Polled, Polled]:
        """The runs of ``topic``, and the others."""
        return Polled(r for r in self.runs if r.topic == topic), Polled(r for r in self.runs if r.topic != topic)

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """The offset after the last record of each topic-partition."""
        out: dict[tuple[str, int], int] = {}
        for run in self.runs:
            for key, last in run.next_offsets().items():
                if last > out.get(key, -1):
                    out[key] = last
        return out
