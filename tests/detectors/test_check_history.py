"""CheckHistory keeps what the deques of lists kept: the last ``maxlen`` evaluations per check, in order."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.check_history import GROW, ROW, CheckHistory

evaluation = st.tuples(st.sampled_from(["a/x/1", "b/y/2", "c/z/3"]), st.floats(0, 2e9),
                       st.floats(allow_nan=False, allow_infinity=False, width=64), st.floats(-1e3, 1e3), st.booleans())


def _f32(x: float) -> float:
    """What the ring shows of a statistic: its float32, to 7 significant digits."""
    with np.errstate(over="ignore"):
        return float(f"{np.float32(x):.7g}")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 23), st.lists(evaluation, max_size=90))  # chunks of 1-5 rows, the last one partial
def test_the_ring_equals_a_deque_of_lists(maxlen: int, evaluations: list[tuple[str, float, float, float, bool]]) -> None:
    h = CheckHistory(maxlen)
    kept: dict[str, deque[list[Any]]] = {}
    for key, end, stat, thr, bad in evaluations:
        h.append(key, end, stat, thr, bad)
        kept.setdefault(key, deque(maxlen=maxlen)).append([end, _f32(stat), _f32(thr), bad])
    want = {k: list(v) for k, v in kept.items()}
    assert h.entries() == want
    again = CheckHistory(maxlen)
    again.load(json.loads(json.dumps(h.entries())))
    assert again.entries() == want and len(again) == len(want)
    stored = CheckHistory(maxlen)
    stored.load(h.state())
    assert stored.entries() == want and stored.state() == h.state()
    shorter = CheckHistory(max(1, maxlen - 2))  # a smaller maxlen keeps the latest
    shorter.load(want)
    assert shorter.entries() == {k: v[-shorter.maxlen :] for k, v in want.items()}


def test_nan_statistics_survive() -> None:
    h = CheckHistory(3)
    h.append("k", 1.0, float("nan"), 0.5, False)
    (row,) = h.entries()["k"]
    assert row[0] == 1.0 and row[1] != row[1] and row[3] is False


def test_statistics_keep_7_digits_and_event_times_all_of_theirs() -> None:
    h = CheckHistory(3)
    h.append("k", 1_764_720_000.123456, 0.123456789, 1e300, True)
    assert h.entries()["k"] == [[1_764_720_000.123456, 0.1234568, float("inf"), True]]


def test_memory_follows_the_evaluations_kept() -> None:
    """A check takes a fifth of its ring at a time: 110 checks seen twice hold a fifth of their full rings."""
    h = CheckHistory(50)
    full = 110 * 50 * ROW.itemsize
    for end in range(2):
        for i in range(110):
            h.append(f"k{i}", float(end), float(i), 1.0, False)
    assert h.nbytes() < full / 3
    for end in range(2, 60):
        for i in range(110):
            h.append(f"k{i}", float(end), float(i), 1.0, False)
    assert full <= h.nbytes() < 1.3 * full  # every ring whole now; the pool's room and the tables on top
    assert h.rows("k7") == [[float(end), 7.0, 1.0, False] for end in range(10, 60)]


def test_checks_share_one_pool_grown_by_GROW_checks() -> None:
    """A new check takes the next row of the tables, grown by GROW rows, the earlier rows kept."""
    h = CheckHistory(2)
    for i in range(GROW + 1):
        for end in range(3):
            h.append(f"k{i}", float(end), float(i), 1.0, end == 2)
    assert len(h._counts) == 2 * GROW
    assert h.entries()["k0"] == [[1.0, 0.0, 1.0, False], [2.0, 0.0, 1.0, True]]
    assert h.entries()[f"k{GROW}"] == [[1.0, float(GROW), 1.0, False], [2.0, float(GROW), 1.0, True]]
