"""The record queues between a Kafka client and the pipeline, and the ``Polled`` batches they hand on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.polled import Polled, RecordReader, Run
from driftwarden.daemon.record_queues import RecordQueues

# a record here: (offset, timestamp ms, value)
READER = RecordReader(lambda r: r[0], lambda r: b"k", lambda r: r[2], lambda r: r[1])


def records(first: int, stamps: list[int]) -> list[tuple[int, int, bytes]]:
    return [(first + i, t, f"{first + i}@{t}".encode()) for i, t in enumerate(stamps)]


def handed(polled: Polled) -> dict[tuple[str, int], list[int]]:
    out: dict[tuple[str, int], list[int]] = {}
    for m in polled:
        out.setdefault((m.topic, m.partition), []).append(m.offset)
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_topic_read_ahead_waits_for_the_other_to_catch_up_in_time() -> None:
    queues = RecordQueues(READER, capacity=4, max_idle=1.0, clock=Clock())
    queues.add("predictions", 0, records(0, [10, 20, 30, 40, 50, 60]))
    queues.add("outcomes", 0, records(0, [5, 25]))
    assert handed(queues.take(lagging=())) == {("predictions", 0): [0, 1], ("outcomes", 0): [0, 1]}
    assert queues.queued(("predictions", 0)) == 4 and queues.full() == {("predictions", 0)}
    # the outcomes have more at the broker: the predictions wait for them
    assert len(queues.take(lagging=[("outcomes", 0)])) == 0
    queues.add("outcomes", 0, records(2, [35, 70]))
    assert handed(queues.take(lagging=())) == {("predictions", 0): [2, 3, 4, 5], ("outcomes", 0): [2]}
    # the predictions have more at the broker: the outcome dated 70 waits for them
    assert len(queues.take(lagging=[("predictions", 0)])) == 0
    queues.add("predictions", 0, records(6, [65, 80]))
    assert handed(queues.take(lagging=())) == {("predictions", 0): [6], ("outcomes", 0): [3]}
    # the outcomes are caught up (nothing more at the broker): nothing holds the predictions back
    assert handed(queues.take(lagging=())) == {("predictions", 0): [7]}
    assert len(queues.take(lagging=())) == 0 and queues.full() == set()


def test_a_lagging_partition_holds_the_others_back_at_most_max_idle() -> None:
    clock = Clock()
    queues = RecordQueues(READER, capacity=100, max_idle=0.5, clock=clock)
    queues.add("predictions", 0, records(0, [1, 2, 3]))
    assert len(queues.take(lagging=[("outcomes", 0)])) == 0
    clock.now = 0.49
    assert len(queues.take(lagging=[("outcomes", 0)])) == 0
    clock.now = 0.5
    assert handed(queues.take(lagging=[("outcomes", 0)])) == {("predictions", 0): [0, 1, 2]}


def test_past_the_limit_the_oldest_go_on_whatever_the_frontier() -> None:
    """For a client that cannot pause: memory stays bounded while a partition waits."""
    queues = RecordQueues(READER, capacity=2, max_idle=60.0, limit=3, clock=Clock())
    queues.add("predictions", 0, records(0, [1, 2, 3, 4, 5]))
    assert handed(queues.take(lagging=[("outcomes", 0)])) == {("predictions", 0): [0, 1]}
    assert queues.queued(("predictions", 0)) == 3
    queues.add("outcomes", 0, records(0, [1]))
    assert handed(queues.take(lagging=())) == {("outcomes", 0): [0]}  # the frontier: 1
    with pytest.raises(ValueError, match=r"limit must be >= capacity \(2\)"):
        RecordQueues(READER, capacity=2, max_idle=0.0, limit=1)


def test_keep_forgets_revoked_partitions() -> None:
    queues = RecordQueues(READER, capacity=10, max_idle=0.0)
    queues.add("p", 0, records(0, [1, 2]))
    queues.add("p", 1, records(7, [1, 2]))
    queues.keep([("p", 1)])
    assert queues.queued(("p", 0)) == 0 and queues.fetched_to(("p", 0)) is None and queues.fetched_to(("p", 1)) == 9
    assert handed(queues.take(lagging=[("p", 0)])) == {("p", 1): [7, 8]}


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        RecordQueues(READER, capacity=0, max_idle=1.0)
    with pytest.raises(ValueError, match="max_idle must be >= 0"):
        RecordQueues(READER, capacity=1, max_idle=-1.0)


partition_streams = st.dictionaries(
    st.sampled_from([("p", 0), ("p", 1), ("o", 0)]),
    st.lists(st.integers(0, 50), min_size=1, max_size=40).map(sorted),
    min_size=1,
)


@settings(max_examples=200, deadline=None)
@given(streams=partition_streams, chunk=st.integers(1, 7), capacity=st.integers(1, 10), data=st.data())
def test_every_record_is_handed_on_once_in_offset_order_and_in_step(
    streams: dict[tuple[str, int], list[int]], chunk: int, capacity: int, data: st.DataObject,
) -> None:
    """Whatever the clients fetch when: each partition's records go on once each, in offset order, and a
    take never hands on a record later than the newest one queued of any partition that had records."""
    queues = RecordQueues(READER, capacity=capacity, max_idle=0.0)
    pending = {key: records(100, stamps) for key, stamps in streams.items()}
    out: dict[tuple[str, int], list[int]] = {}
    for _ in range(10_000):
        if not any(pending.values()) and not any(queues.queued(k) for k in streams):
            break
        fetchable = [k for k, rest in pending.items() if rest and k not in queues.full()]
        if fetchable:
            key = data.draw(st.sampled_from(fetchable))
            n = data.draw(st.integers(1, chunk))
            queues.add(key[0], key[1], pending[key][:n])
            del pending[key][:n]
        newest = [queues_last for queues_last in (_last_stamp(queues, k) for k in streams) if queues_last is not None]
        lagging = [k for k, rest in pending.items() if rest]
        polled = queues.take(lagging=lagging if fetchable else ())  # nothing fetchable: stop waiting
        if len(polled) and newest:
            assert max(int(m.value.split(b"@")[1]) for m in polled if m.value) <= min(newest)
        for key, offsets in handed(polled).items():
            out.setdefault(key, []).extend(offsets)
    assert out == {key: list(range(100, 100 + len(stamps))) for key, stamps in streams.items()}


def _last_stamp(queues: RecordQueues, key: tuple[str, int]) -> int | None:
    queue: list[Any] = queues._queues.get(key) or []
    return queue[-1][1] if queue else None


def test_polled_reads_columns_and_makes_messages_only_when_asked() -> None:
    made: list[int] = []

    def offset(r: tuple[int, int, bytes]) -> int:
        made.append(r[0])
        return r[0]

    reader = RecordReader(offset, lambda r: b"m", lambda r: r[2], lambda r: r[1])
    polled = Polled([Run("predictions", 0, records(5, [1, 2, 3]), reader), Run("outcomes", 2, records(9, [1]), reader)])
    predictions, outcomes = polled.split("predictions")
    assert predictions.value_column() == [b"5@1", b"6@2", b"7@3"] and outcomes.key_column() == [b"m"]
    assert made == []  # no offset read for the columns
    assert polled.next_offsets() == {("predictions", 0): 8, ("outcomes", 2): 10}
    assert polled[3] == Message("outcomes", 2, 9, b"m", b"9@1") and polled[-4] == Message("predictions", 0, 5, b"m", b"5@1")
    assert polled[1:3] == [Message("predictions", 0, 6, b"m", b"6@2"), Message("predictions", 0, 7, b"m", b"7@3")]
    with pytest.raises(IndexError):
        polled[4]
    assert list(polled) == [polled[i] for i in range(4)] and polled == list(polled) and Polled() == []


def test_polled_of_messages_keeps_the_messages_and_the_last_offset_per_partition() -> None:
    messages = [Message("p", 0, 3, b"a", b"1"), Message("p", 1, 9, b"b", b"2"), Message("p", 0, 4, None, None)]
    polled = Polled.of_messages(messages)
    assert list(polled) == messages and polled[2] is messages[2]
    assert polled.next_offsets() == {("p", 0): 5, ("p", 1): 10}
    assert polled.key_column() == [b"a", b"b", None] and Polled.of_messages(polled) is polled
