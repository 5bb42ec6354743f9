"""A checkpoint of many models holds one model's state at a time, on the way in and out."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.join import JoinChanges


class State(dict[str, Any]):
    """A monitor state that can be watched (plain dicts take no weak references)."""


def test_states_are_serialized_one_at_a_time_and_read_back_one_by_one(tmp_path: Path) -> None:
    cp = Checkpoint(tmp_path / "dw.db")
    alive: list[weakref.ref[State]] = []
    live_when_made: list[int] = []

    def states() -> Iterator[tuple[str, dict[str, Any]]]:
        for i in range(50):
            gc.collect()
            live_when_made.append(sum(r() is not None for r in alive))
            s = State(model=f"m{i}", window=list(range(i, i + 1000)), nan=float("nan"))
            alive.append(weakref.ref(s))
            yield f"m{i}", s

    cp.commit({("predictions", 0): 10}, states(), JoinChanges(), {"clocks": {}})
    assert len(live_when_made) == 50 and max(live_when_made) <= 1  # the one being written, at most
    assert cp.offsets() == {("predictions", 0): 10}
    back = cp.monitor_state("m7")
    assert back is not None and back["window"] == list(range(7, 1007)) and back["nan"] != back["nan"]
    assert cp.monitor_state("unknown") is None
    assert cp.monitor_states()["m49"]["model"] == "m49"  # the whole table, as before
    # a mapping still works, and a failing state rolls the whole transaction back
    cp.commit({("predictions", 0): 11}, {"m0": {"model": "again"}}, JoinChanges(), {})
    assert cp.monitor_state("m0") == {"model": "again"}

    def broken() -> Iterator[tuple[str, dict[str, Any]]]:
        yield "m1", {"model": "half"}
        raise RuntimeError("a monitor failed to serialize")

    with pytest.raises(RuntimeError, match="failed to serialize"):
        cp.commit({("predictions", 0): 12}, broken(), JoinChanges(), {})
    assert cp.offsets() == {("predictions", 0): 11}
    kept = cp.monitor_state("m1")
    assert kept is not None and kept["model"] == "m1"
    cp.close()


def test_a_checkpoint_of_many_states_peaks_at_about_one_state(tmp_path: Path) -> None:
    """tracemalloc's peak while 40 states of ~60 kB of JSON each are written: a few states' worth,
    not 40 (the list of every state's JSON that was built before)."""
    import json
    import tracemalloc

    cp = Checkpoint(tmp_path / "dw.db")
    one = len(json.dumps(State(window=list(range(10_000)))))

    def states() -> Iterator[tuple[str, dict[str, Any]]]:
        for i in range(40):
            yield f"m{i}", State(window=list(range(i, i + 10_000)))

    tracemalloc.start()
    try:
        cp.commit({}, states(), JoinChanges(), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * one * 3, (peak, one)  # a state (list of ints ~ 3x its JSON) and its JSON; 40 would be > 40x
    assert cp.monitor_state("m39") == {"window": list(range(39, 10_039))}
    cp.close()
