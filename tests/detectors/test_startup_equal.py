"""Start-up computations made cheaper give exactly what the code before them gave (old versions copied here)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.binning import NumericBinning
from driftwarden.detectors.numeric import NumericReference

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0]


def _column(seed: int, n: int, levels: int, specials: float) -> np.ndarray:
    """``n`` values of ``levels`` distinct numbers (few: ties), a share ``specials`` of NaN, +-inf, zeros."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n) * levels) / max(levels, 1)
    pick = rng.random(n) < specials
    x[pick] = rng.choice(SPECIALS, int(pick.sum()))
    return x


def _old_numeric_binning(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """NumericBinning.from_reference(values, bins) and its counts(values), as NumericReference did."""
    b = NumericBinning.from_reference(values, bins)
    return b.edges, b.counts(values)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), levels=st.sampled_from([1, 3, 10, 1000]),
       specials=st.sampled_from([0.0, 0.01, 0.5, 1.0]), bins=st.integers(2, 20),
       sample=st.sampled_from([10, 2000]))
def test_numeric_reference_bins_and_counts_from_the_one_sort_equal_the_old(
        seed: int, n: int, levels: int, specials: float, bins: int, sample: int) -> None:
    values = _column(seed, n, levels, specials)
    with np.errstate(invalid="ignore"):  # the std of a column with infinities (as before)
        ref = NumericReference(values, bins, sample)
    edges, counts = _old_numeric_binning(values, bins)
    assert ref.binning.edges.tobytes() == edges.tobytes()  # bit for bit (signed zeros too)
    assert ref.counts.dtype == counts.dtype and ref.counts.tolist() == counts.tolist()
