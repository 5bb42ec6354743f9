"""Numeric drift of one column against its reference: KS, Wasserstein, PSI, JS, Hellinger.

The reference is kept as a sorted sample (capped: an evenly spaced subsample
of the sorted values, which preserves its quantiles) plus quantile bins and
their counts over the full reference. A window is its raw values (bounded by
the window size) and its bin counts, both updated per micro-batch.

* KS: the exact two-sample statistic sup |F_ref - F_win| and the asymptotic
  p-value ``kstwo.sf(D, round(m n / (m + n)))`` -- identical to
  ``scipy.stats.ks_2samp(..., method="asymp")``. The supremum is found by branch
  and bound: both ECDFs are evaluated exactly at ``KS_CUTS`` (512) reference quantiles;
  between two cuts, monotonicity bounds the gap, and only the cells whose bound
  beats the best exact value are walked point by point (compiled with numba when it is
  installed, else in numpy; the same result bit for bit: :mod:`detectors.ks_exact`).
* Wasserstein-1: exact, via the integral of the reference CDF (prefix sums),
  divided by the reference standard deviation (by 1 if the reference is constant).
  It costs a search of every window value in the reference, so the drift suite
  asks for it only where it is the effect size or the subject drifted.
* PSI, Jensen-Shannon, Hellinger on the reference-quantile bins (see binning);
  the window's bin counts come from its sorted values at evaluation time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.stats import kstwobign

from driftwarden.detectors.base import check_params, decode_array, encode_array, register, run_bounds
from driftwarden.detectors.binning import NumericBinning, hellinger, jensen_shannon, psi
from driftwarden.detectors.compact_array import compact
from driftwarden.detectors.ks_exact import ks_sorted
from driftwarden.detectors.kstwo import kstwo_sf


def _ecdf_positions(ref: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of reference values <= and < each sorted window value (one searchsorted + tie fix)."""
    right = np.searchsorted(ref, w, side="right")
    last = np.maximum(right - 1, 0)
    ties = (right > 0) & (ref[last] == w)
    if not ties.any():
        return right, right
    left = right.copy()
    left[ties] = np.searchsorted(ref, w[ties], side="left")
    return right, left


def _ks_from_positions(m: int, w: np.ndarray, right: np.ndarray, left: np.ndarray) -> float:
    n = w.size
    if n > 1 and bool(np.any(w[1:] == w[:-1])):
        win_right, win_left = run_bounds(w)
    else:
        win_right, win_left = np.arange(1, n + 1), np.arange(n)
    return float(max(np.max(np.abs(right / m - win_right / n)), np.max(np.abs(left / m - win_left / n))))


def ks_statistic(ref_sorted: np.ndarray, window: np.ndarray) -> float:
    """Two-sample KS statistic with a presorted reference (ties handled like scipy).

    The supremum of |F_ref - F_win| is reached at a window point or just
    before one, so the two reference counts at each sorted window value suffice.

    >>> round(ks_statistic(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])), 6)
    0.333333
    """
    w = np.sort(window)
    right, left = _ecdf_positions(ref_sorted, w)
    return _ks_from_positions(ref_sorted.size, w, right, left)


def ks_bounded(ref: NumericReference, w: np.ndarray) -> float:
    """Exact two-sample KS statistic of the sorted, NaN-free window ``w`` against ``ref``.

    Branch and bound over the reference's ``KS_CUTS`` quantiles (numba or numpy: see
    :mod:`detectors.ks_exact`); equal to a search of every window value.

    >>> r = NumericReference(np.arange(100.0))
    >>> ks_bounded(r, np.sort(np.arange(100.0) + 30)) == ks_statistic(r.sorted, np.arange(100.0) + 30)
    True
    """
    if w.size == 0 or ref.size == 0:
        return 0.0  # as result() reports an empty window
    return float(ks_sorted(ref.sorted, ref.cut_values, ref.cut_at_or_below, ref.cut_below, np.ascontiguousarray(w)))


def ks_pvalue(d: float | np.ndarray, m: int | np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Asymptotic two-sided p-values, as ``scipy.stats.ks_2samp(method="asymp")`` (vectorized).

    ``kstwo.sf(D, round(m n / (m + n)))`` through :func:`detectors.kstwo.kstwo_sf`
    (scipy's branches, vectorized). One deviation: where scipy's DMTW branch
    overflows to 0 for a tiny statistic (sqrt(en) D < 1, where the true value
    exceeds 0.26) the limiting Kolmogorov distribution is used, so a window
    nearly identical to its reference cannot get p = 0.

    >>> ks_pvalue(np.array([0.00025, 0.005]), 1_000_000, 97_585).round(4).tolist()
    [1.0, 0.0234]
    """
    big = np.maximum(np.asarray(m, dtype=np.float64), np.asarray(n, dtype=np.float64))
    small = np.minimum(np.asarray(m, dtype=np.float64), np.asarray(n, dtype=np.float64))
    en = np.round(big * small / (big + small))
    d_arr = np.asarray(d, dtype=np.float64)
    ok = en >= 1  # 1 vs 1 value: no evidence (scipy divides by zero there)
    out = np.ones(np.broadcast(d_arr, en).shape)
    if ok.any():
        d_ok, en_ok = np.broadcast_to(d_arr, out.shape)[ok], np.broadcast_to(en, out.shape)[ok]
        p = np.clip(kstwo_sf(d_ok, en_ok), 0.0, 1.0)
        overflow = (p == 0.0) & (np.sqrt(en_ok) * d_ok < 1.0)
        if overflow.any():
            p[overflow] = kstwobign.sf(np.sqrt(en_ok[overflow]) * d_ok[overflow])
        out[ok] = p
    return out


def reference_prefix(ref_sorted: np.ndarray) -> np.ndarray:
    """``prefix[k]`` = G(ref[k]), the integral of the reference ECDF up to each sorted point."""
    m = ref_sorted.size
    steps = (np.arange(1, m) / m) * np.diff(ref_sorted)
    return np.concatenate(([0.0], np.cumsum(steps)))


def _g(ref: np.ndarray, prefix: np.ndarray, x: np.ndarray, j: np.ndarray) -> np.ndarray:
    """G(x) given j = count of reference values <= x (piecewise linear ECDF integral)."""
    jj = np.maximum(j - 1, 0)
    return np.where(j == 0, 0.0, prefix[jj] + (j / ref.size) * (x - ref[jj]))


def _wasserstein_from_positions(ref: np.ndarray, prefix: np.ndarray, ref_right: np.ndarray, w: np.ndarray,
                                right: np.ndarray) -> float:
    m, n = ref.size, w.size
    total = float(_g(ref, prefix, w[:1], right[:1])[0])  # (-inf, w0): F_win = 0
    if n > 1:
        a, b, ja, jb = w[:-1], w[1:], right[:-1], right[1:]
        i1 = np.arange(1, n, dtype=np.int64)
        c = i1 / n
        k = -((-i1 * m) // n)  # ceil(c * m) in exact integers: F_ref crosses c at ref[k - 1]
        cross = ref[k - 1]
        xs = np.clip(cross, a, b)
        jx = np.where(cross < a, ja, np.where(cross > b, jb, ref_right[k - 1]))
        ga, gb, gx = _g(ref, prefix, a, ja), _g(ref, prefix, b, jb), _g(ref, prefix, xs, jx)
        total += float(np.sum(c * (xs - a) - (gx - ga) + (gb - gx) - c * (b - xs)))
    last = float(w[-1])
    end = max(float(ref[-1]), last)
    g = _g(ref, prefix, np.array([end, last]), np.array([m, right[-1]]))
    total += (end - last) - float(g[0] - g[1])
    return max(total, 0.0)


def wasserstein(ref_sorted: np.ndarray, prefix: np.ndarray, window: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between the reference sample and ``window``.

    On each interval between sorted window points the window ECDF is a constant
    c and the reference ECDF crosses c at a known reference point, so the
    integral of |F_ref - F_win| is a sum of closed forms (O(n log m)).

    >>> r = np.array([0.0, 1.0, 2.0])
    >>> wasserstein(r, reference_prefix(r), np.array([1.0, 2.0, 3.0]))
    1.0
    """
    w = np.sort(window)
    ref_right = np.searchsorted(ref_sorted, ref_sorted, side="right")
    right = np.searchsorted(ref_sorted, w, side="right")
    return _wasserstein_from_positions(ref_sorted, prefix, ref_right, w, right)


KS_CUTS = 512  # reference quantiles where ks_bounded evaluates both ECDFs exactly (at most)
KS_CELL = 16  # reference values per cut at least
# The sorted sample kept per numeric subject: an evenly spaced subsample of the sorted reference
# beyond it. Its ECDF is within 1 / REFERENCE_SAMPLE_SIZE of the full reference's everywhere, so
# the KS statistic is within that of the full reference's (0.0005; the reference's own sampling
# error is ~1 / sqrt(its rows): 0.01 for 10,000 rows); p-values use the full reference's count.
REFERENCE_SAMPLE_SIZE = 2_000
_EMPTY = np.empty(0, dtype=np.float64)
_EMPTY.flags.writeable = False


class NumericReference:
    """What is kept of a numeric reference column (bounded by ``sample_size``).

    Kept per subject: the sorted sample and the KS cut points (each in the fewest bytes that give
    back every value exactly: :func:`detectors.compact_array.compact`), the bins and their counts,
    and a few moments. What only the
    Wasserstein distance needs (``prefix``, ``right``: two more arrays of the sample's
    length) is derived from the sample when asked for, not kept: it is asked for only for
    drifted subjects or where Wasserstein is the effect size, and keeping it tripled the
    memory of a reference (1,000 models x 21 subjects x 50,000 values: 8.4 GB each).

    >>> r = NumericReference(np.array([3.0, 1.0, 2.0, 2.0, np.nan]))
    >>> r.sorted.tolist(), r.sorted.dtype.name, r.right.tolist(), r.size
    ([1.0, 2.0, 2.0, 3.0], 'float64', [1, 3, 3, 4], 4)
    """

    def __init__(self, values: np.ndarray, bins: int = 10, sample_size: int = REFERENCE_SAMPLE_SIZE) -> None:
        finite = np.sort(values[np.isfinite(values)])
        self.n_values = int(finite.size)  # the reference's values: the m of the KS p-value
        # bins and counts from the one sort: quantiles and counts depend on the values, not their
        # order; but which of -0.0 and 0.0 (equal) becomes an edge does, so such columns bin as before
        if np.signbit(values[values == 0.0]).any():
            self.binning = NumericBinning.from_reference(values, bins)
            self.counts = self.binning.counts(values)
        else:
            self.binning = NumericBinning.from_sorted(finite, bins)
            infinite = values[np.isinf(values)]
            self.counts = self.binning.counts_sorted(finite, int((infinite < 0).sum()), int((infinite > 0).sum()))
        if finite.size > sample_size:
            finite = finite[np.linspace(0, finite.size - 1, sample_size).round().astype(np.int64)]
        self._sorted = compact(finite)
        # KS branch and bound: distinct reference quantiles and the reference counts <= and < each
        # (cells of at least CELL values: on a small sample 512 cuts cost as much memory as the sample)
        cuts = min(KS_CUTS, max(2, finite.size // KS_CELL))
        picks = np.linspace(0, finite.size - 1, min(cuts, finite.size)).round().astype(np.int64)
        self._cut_values = compact(np.unique(finite[picks]))
        # the kernel takes int64: widened per call
        counts_type = np.uint16 if finite.size < 2**16 else np.int32 if finite.size < 2**31 else np.int64
        self._cut_at_or_below = np.searchsorted(finite, self.cut_values, side="right").astype(counts_type)
        self._cut_below = np.searchsorted(finite, self.cut_values, side="left").astype(counts_type)
        present = values[~np.isnan(values)]
        self.std = float(present.std()) if present.size else 0.0
        self.mean = float(present.mean()) if present.size else 0.0
        self.min = float(present.min()) if present.size else float("nan")
        self.max = float(present.max()) if present.size else float("nan")
        self.missing_rate = float(np.isnan(values).mean()) if values.size else 0.0

    @property
    def sorted(self) -> np.ndarray:
        """The sorted sample as float64 (the values that were kept, exactly)."""
        return self._sorted.values()

    @property
    def cut_values(self) -> np.ndarray:
        return self._cut_values.values()

    @property
    def cut_at_or_below(self) -> np.ndarray:
        return self._cut_at_or_below.astype(np.int64, copy=False)

    @property
    def cut_below(self) -> np.ndarray:
        return self._cut_below.astype(np.int64, copy=False)

    @property
    def prefix(self) -> np.ndarray:
        """G at each sorted reference value (see :func:`reference_prefix`), derived on demand."""
        s = self.sorted
        return reference_prefix(s) if s.size else np.zeros(0)

    @property
    def right(self) -> np.ndarray:
        """Per sorted reference value, the count of reference values <= it (the end of its run of ties)."""
        s = self.sorted
        return run_bounds(s)[0] if s.size else np.zeros(0, np.int64)

    @property
    def size(self) -> int:
        return int(self._sorted.size)

    def nbytes(self) -> int:
        """Bytes of the arrays kept (the bench's per-object figure)."""
        return self._sorted.nbytes + self._cut_values.nbytes + sum(
            a.nbytes for a in (self._cut_at_or_below, self._cut_below, self.binning.edges, self.counts))


@register("numeric_drift")
class NumericDriftTest:
    """Streaming window of one numeric column, tested against a reference.

    ``update`` accumulates at most ``window_size`` values; ``result()`` gives all
    statistics of the current window; ``reset()`` starts the next window.

    >>> rng = np.random.default_rng(7)
    >>> t = NumericDriftTest(NumericReference(rng.normal(size=5000)), window_size=1000)
    >>> t.update(rng.normal(0.5, 1.0, size=1000))
    >>> r = t.result()
    >>> r["ks_p"] < 1e-20, round(r["psi"], 3), round(r["wasserstein"], 2)
    (True, 0.278, 0.53)
    """

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {"window_size": (1, 10_000_000)}

    def __init__(self, reference: NumericReference, window_size: int = 5000) -> None:
        check_params(type(self).__name__, self.param_ranges, {"window_size": window_size})
        self.reference = reference
        self.window_size = window_size
        # allocated by update, grown by doubling up to window_size and dropped by reset: a model's
        # windows are filled and evaluated at once when its prediction window closes, so between
        # windows (nearly always) a test holds no buffer (1,000 models x 21 subjects x 5,000
        # float64 preallocated were 840 MB)
        self._values = _EMPTY
        self._n = 0  # values stored (including NaN)

    def update(self, values: np.ndarray) -> None:
        room = self.window_size - self._n
        if values.size > room:
            raise ValueError(f"window overflow: {values.size} values for {room} free slots")
        end = self._n + values.size
        if end > self._values.size:
            grown = np.empty(min(self.window_size, max(end, 2 * self._values.size)), dtype=np.float64)
            grown[: self._n] = self._values[: self._n]
            self._values = grown
        self._values[self._n : end] = values
        self._n = end

    def reset(self) -> None:
        self._n = 0
        self._values = _EMPTY

    @property
    def window(self) -> np.ndarray:
        return self._values[: self._n]

    def sorted_window(self) -> np.ndarray:
        """The window's non-missing values, sorted."""
        return np.sort(self.window[~np.isnan(self.window)])

    @property
    def counts(self) -> np.ndarray:
        """The window's counts per reference bin."""
        return self.bin_counts(self.sorted_window())

    def bin_counts(self, w: np.ndarray) -> np.ndarray:
        """Bin counts of the sorted non-NaN window ``w`` (bin i is (edge[i-1], edge[i]], as binning.counts)."""
        bounds = np.empty(self.reference.binning.edges.size + 2, dtype=np.int64)
        bounds[0], bounds[-1] = 0, w.size
        bounds[1:-1] = np.searchsorted(w, self.reference.binning.edges, side="right")
        return bounds[1:] - bounds[:-1]  # np.diff's prepend/append machinery cost more than the search

    def result(self, with_pvalue: bool = True, with_wasserstein: bool = True) -> dict[str, float]:
        """All statistics of the current window; ``n`` is the non-missing count.

        ``with_pvalue=False`` leaves ``ks_p`` NaN for a caller that computes the
        p-values of many columns in one vectorized :func:`ks_pvalue` call;
        ``with_wasserstein=False`` leaves out ``wasserstein`` (a search of every
        window value in the reference: the most expensive statistic here).
        """
        ref = self.reference
        w = self.sorted_window()
        n = int(w.size)
        out: dict[str, float]
        if n == 0 or ref.size == 0:
            out = {"n": n, "ks": 0.0, "ks_p": 1.0, "wasserstein": 0.0, "psi": 0.0, "jensen_shannon": 0.0,
                   "hellinger": 0.0}
            if not with_wasserstein:
                del out["wasserstein"]
            return out
        d = ks_bounded(ref, w)
        counts = self.bin_counts(w)
        out = {
            "n": n,
            "ks": d,
            "ks_p": float(ks_pvalue(d, ref.n_values, n)) if with_pvalue else float("nan"),
            "psi": psi(ref.counts, counts),
            "jensen_shannon": jensen_shannon(ref.counts, counts),
            "hellinger": hellinger(ref.counts, counts),
        }
        if with_wasserstein:
            out["wasserstein"] = self.wasserstein(w)
        return out

    def wasserstein(self, w: np.ndarray | None = None) -> float:
        """Wasserstein-1 of the window (``w``: its sorted non-NaN values, if at hand) over the reference std."""
        ref = self.reference
        if w is None:
            w = self.sorted_window()
        if w.size == 0 or ref.size == 0:
            return 0.0
        sample = ref.sorted
        right = np.searchsorted(sample, w, side="right")
        scale = ref.std if ref.std > 0 else 1.0
        ref_right = run_bounds(sample)[0]
        return _wasserstein_from_positions(sample, reference_prefix(sample), ref_right, w, right) / scale

    def state(self) -> dict[str, Any]:
        return {"window_size": self.window_size, "values": encode_array(self.window)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.reset()
        self.update(decode_array(state["values"]))

    @classmethod
    def from_state(cls, reference: NumericReference, state: dict[str, Any]) -> NumericDriftTest:
        test = cls(reference, state["window_size"])
        test.load_state(state)
        return test
