"""What the memory work changed in storage must not change a result.

ColumnWindow keeps growing buffers instead of each batch's slices; NumericReference keeps its
sorted sample as float32 where that is exact and derives Wasserstein's arrays on demand;
NumericDriftTest allocates its buffer only while a window is evaluated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftwarden.detectors.base import run_bounds
from driftwarden.detectors.numeric import NumericDriftTest, NumericReference, ks_bounded, reference_prefix
from driftwarden.detectors.window import ColumnWindow


def chunked_columns(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The window as it was kept before: each batch's arrays, concatenated when read (first-seen
    dtype decides the fill of a missing column: None for objects, a float64 NaN otherwise)."""
    kinds: dict[str, np.dtype[Any]] = {}
    for chunk in chunks:
        for k, v in chunk.items():
            kinds.setdefault(k, v.dtype)
    out = {}
    for k, dtype in kinds.items():
        parts = []
        for c in chunks:
            n = len(next(iter(c.values())))
            parts.append(c[k] if k in c else np.full(n, None, dtype=object) if dtype.kind == "O" else np.full(n, np.nan))
        out[k] = np.concatenate(parts)
    return out


def _column(kind: str, n: int, data: st.DataObject) -> np.ndarray:
    if kind == "f":
        return np.array(data.draw(st.lists(st.floats(allow_nan=True, width=64), min_size=n, max_size=n)), np.float64)
    if kind == "i":
        return np.array(data.draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), np.int64)
    out = np.empty(n, dtype=object)
    out[:] = data.draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))
    return out


KINDS = {"t": "f", "x": "f", "n": "i", "label": "O"}  # each column's dtype kind


def _chunk(data: st.DataObject, room: int) -> dict[str, np.ndarray]:
    """A batch of 1..room rows: ``t`` and any of the other columns."""
    n = data.draw(st.integers(1, room))
    names = ["t", *data.draw(st.lists(st.sampled_from(["x", "n", "label"]), unique=True))]
    return {k: _column(KINDS[k], n, data) for k in names}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_buffered_window_equals_the_chunked_one(data: st.DataObject) -> None:
    """Any sequence of batches (columns appearing late, missing from some batches, ints
    promoted by floats): the same columns, values, dtypes and order as concatenating batches."""
    capacity = data.draw(st.integers(1, 80))
    window, chunks = ColumnWindow(capacity), []
    while window.room:
        chunk = _chunk(data, window.room)
        window.add(chunk)
        chunks.append(chunk)
        if data.draw(st.booleans()):
            break
    expected, got = chunked_columns(chunks), window.columns()
    assert list(got) == list(expected)
    for k in expected:
        assert got[k].dtype == expected[k].dtype, k
        if expected[k].dtype.kind == "O":
            assert got[k].tolist() == expected[k].tolist()
        else:
            np.testing.assert_array_equal(got[k], expected[k])
    taken = window.take()
    assert len(window) == 0 and window.nbytes() == 0 and window.columns() == {}
    for k in expected:
        assert taken[k].tolist() == got[k].tolist() or np.array_equal(taken[k], got[k], equal_nan=True)


def test_the_window_reads_are_copies_and_take_hands_over_a_full_buffer() -> None:
    w = ColumnWindow(4)
    w.add({"x": np.array([1.0, 2.0])})
    w.columns()["x"][0] = 99.0  # a reader cannot change the window
    assert w.columns()["x"].tolist() == [1.0, 2.0]
    w.add({"x": np.array([3.0, 4.0])})
    assert w.nbytes() == 4 * 8  # grown to the capacity, no further
    assert w.take()["x"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_many_small_batches_cost_their_data_not_an_array_each() -> None:
    w = ColumnWindow(5000)
    cols = {f"f{i}": np.arange(3.0) for i in range(20)}
    for _ in range(1000):
        w.add(cols)
    assert len(w) == 3000 and w.nbytes() == 20 * 4096 * 8  # one buffer per column, doubled to 4,096 rows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=300),
       st.lists(st.floats(-60, 60, allow_nan=False), min_size=2, max_size=200))
@pytest.mark.usefixtures("ks_backend")
def test_a_float32_sample_gives_scipys_results_on_the_values_kept(ref: list[int], win: list[float]) -> None:
    """Quarters are kept in 16-bit codes (exact): KS bit-identical to scipy, Wasserstein
    equal to scipy's, and the arrays Wasserstein derives equal to the ones that used to be kept."""
    r = np.array(ref, dtype=np.float64) / 4  # quarters: 2 decimals
    reference = NumericReference(r)
    assert reference._sorted.data.dtype == np.uint16
    assert reference.sorted.dtype == np.float64 and np.array_equal(reference.sorted, np.sort(r))
    np.testing.assert_array_equal(reference.prefix, reference_prefix(np.sort(r)))
    np.testing.assert_array_equal(reference.right, run_bounds(np.sort(r))[0])
    w = np.array(win)
    assert ks_bounded(reference, np.sort(w)) == stats.ks_2samp(r, w, method="asymp").statistic
    test = NumericDriftTest(reference, window_size=len(w))
    test.update(w)
    scale = reference.std or 1.0
    assert test.result()["wasserstein"] * scale == pytest.approx(stats.wasserstein_distance(r, w), rel=1e-9, abs=1e-9)


def test_values_of_full_precision_keep_the_sample_float64() -> None:
    r = np.array([0.1, np.pi, 1.0, 2.0])  # 0.1 is not a float32, pi has all 17 digits
    reference = NumericReference(r)
    assert reference._sorted.data.dtype == np.float64 and reference.sorted.tolist() == [0.1, 1.0, 2.0, np.pi]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-10**7, 10**7), min_size=2, max_size=300), st.integers(0, 6), st.floats(-1e6, 1e6),
       st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=200))
@pytest.mark.usefixtures("ks_backend")
def test_a_sample_of_decimals_gives_the_statistics_of_its_float64_values(
        codes: list[int], decimals: int, shift: float, win: list[float]) -> None:
    """Values with a few decimals (as data is rounded) are kept as integer codes, decoded bit for bit:
    KS (exact path) equal to scipy's on the float64 values, Wasserstein equal to the float64 sample's."""
    r = np.round(np.array(codes, dtype=np.float64) / 10**decimals + round(shift, decimals), decimals)
    reference = NumericReference(r)
    np.testing.assert_array_equal(reference.sorted, np.sort(r))  # exact, whatever the representation
    assert reference._sorted.nbytes <= np.sort(r).nbytes
    w = np.array(win)
    assert ks_bounded(reference, np.sort(w)) == stats.ks_2samp(r, w, method="asymp").statistic
    test = NumericDriftTest(reference, window_size=len(w))
    test.update(w)
    np.testing.assert_array_equal(reference.prefix, reference_prefix(np.sort(r)))


def test_a_drift_test_holds_a_buffer_only_while_its_window_fills() -> None:
    rng = np.random.default_rng(3)
    reference = NumericReference(rng.normal(size=2000))
    whole, parts = NumericDriftTest(reference, 1000), NumericDriftTest(reference, 1000)
    assert whole._values.nbytes == 0
    values = rng.normal(0.2, 1, 1000)
    whole.update(values)
    for chunk in np.array_split(values, 37):  # grown by doubling, never past the window size
        parts.update(chunk)
        assert parts._values.size <= 1000
    assert parts.result() == whole.result()
    parts.reset()
    assert parts._values.nbytes == 0 and parts.window.size == 0
    with pytest.raises(ValueError, match="window overflow"):
        parts.update(np.zeros(1001))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(10, 300), st.integers(1, 40), st.integers(1, 600),
       st.sampled_from(["normal", "shifted", "ties"]))
def test_a_subsampled_reference_keeps_ks_within_one_over_the_sample_size(seed: int, sample: int, factor: int,
                                                                         n: int, kind: str) -> None:
    """``reference_sample_size`` m: the KS statistic is within 1/m of scipy's on the full reference,
    and its p-value is scipy's formula with the full reference's size (m counts only the memory)."""
    from driftwarden.detectors.numeric import ks_pvalue

    rng = np.random.default_rng(seed)
    full = rng.normal(size=sample + factor * sample // 3 + 1)
    w = rng.normal(0.3 if kind == "shifted" else 0.0, 1.0, size=n)
    if kind == "ties":
        full, w = np.round(full * 2) / 2, np.round(w * 2) / 2
    ref = NumericReference(full, sample_size=sample)
    assert ref.size == sample and ref.n_values == full.size
    test = NumericDriftTest(ref, window_size=n)
    test.update(w)
    got = test.result()
    expected = stats.ks_2samp(full, w, method="asymp")
    assert abs(got["ks"] - expected.statistic) <= 1.0 / sample
    assert got["ks_p"] == float(ks_pvalue(got["ks"], full.size, n))
    if got["ks"] == expected.statistic:
        assert got["ks_p"] == pytest.approx(expected.pvalue, abs=1e-12)


def test_the_default_reference_sample_is_small_and_bounded() -> None:
    from driftwarden.detectors.numeric import REFERENCE_SAMPLE_SIZE
    from driftwarden.detectors.settings import DriftSettings

    assert DriftSettings().reference_sample_size == REFERENCE_SAMPLE_SIZE == 2_000
    ref = NumericReference(np.random.default_rng(1).normal(size=10_000))
    assert ref.size == 2_000 and ref.n_values == 10_000
    assert ref.nbytes() < 2_000 * 8 + 200 * 16 + 1_000  # the sample, ~125 cuts, the bins


class ListSpill:
    """A RowSpill in a list (the daemon's writes pickles to a file): what went out, in order."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.cleared = 0

    def append(self, columns: dict[str, np.ndarray]) -> None:
        self.parts.append(columns)

    def read(self, first: int = 0) -> list[dict[str, np.ndarray]]:
        return self.parts[first:]

    def clear(self) -> None:
        self.parts, self.cleared = [], self.cleared + 1


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_spilling_window_reads_as_the_window_that_kept_every_row(data: st.DataObject) -> None:
    """Rows handed to a spill every ``spill_every`` rows come back aligned as if they had stayed:
    the same columns, dtypes, values and order for columns(), state() and take(); in memory at most
    ``spill_every`` rows (rounded up to a power of two)."""
    capacity = data.draw(st.integers(2, 80))
    every = data.draw(st.integers(1, capacity - 1))
    spill = ListSpill()
    spilling, plain = ColumnWindow(capacity, spill, every), ColumnWindow(capacity)
    while plain.room:
        chunk = _chunk(data, plain.room)
        n = len(chunk["t"])
        spilling.add(chunk)
        plain.add(chunk)
        assert len(spilling) == len(plain) and spilling.room == plain.room
        if spilling.room:
            assert spilling.nbytes() <= max(n, every) * 4 * 16 + 1024
        if data.draw(st.booleans()):
            break
    assert spilling.state() == plain.state()
    got, want = spilling.columns(), plain.columns()
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].tolist() == want[k].tolist() or np.array_equal(got[k], want[k], equal_nan=True)
    restored = ColumnWindow(capacity, ListSpill(), every)
    restored.load_state(plain.state())
    assert restored.state() == plain.state()
    taken = spilling.take()
    assert len(spilling) == 0 and spill.parts == [] and spilling.columns() == {}
    assert {k: v.dtype for k, v in taken.items()} == {k: v.dtype for k, v in plain.take().items()}


def test_a_window_spills_every_block_and_keeps_a_block_in_memory() -> None:
    spill = ListSpill()
    w = ColumnWindow(5000, spill, 500)
    assert spill.cleared == 1  # whatever an earlier run left is not this window's
    cols = {f"f{i}": np.arange(3.0) for i in range(20)}
    for _ in range(1000):
        w.add(cols)
    assert len(w) == 3000 and sum(len(p["f0"]) for p in spill.parts) + w._n == 3000
    assert all(len(p["f0"]) == 501 for p in spill.parts)  # batches of 3: the first count past 500
    assert w.nbytes() <= 20 * 512 * 8
    assert w.take()["f7"].tolist() == [0.0, 1.0, 2.0] * 1000
