"""Bins fixed by the reference, and the distances between two binned distributions.

Numeric bin rule: edges are the distinct reference quantiles at ``k / bins``
(``k = 1 .. bins-1``, numpy's default linear interpolation); bin ``i`` is
``(edge[i-1], edge[i]]`` with open ends, so every finite value has a bin and
ties (discrete features) merge bins instead of creating empty ones. Missing
values (NaN) are not binned: they are data quality's business.

Categorical bins: the ``max_categories`` most frequent reference categories
(ties by name), then ``"__other__"`` for the remaining reference categories
(present only if any were pooled), then ``"__unseen__"`` for values the
reference never had. ``None`` is missing, not a category. A reference that has not seen
every category (a high-cardinality column: zip codes, merchant ids) will meet unseen
values in a stream that did not change, and its rare categories less often than it holds
them; :func:`good_turing_counts` estimates both (Good-Turing), and the tests expect that
(:class:`~driftwarden.detectors.categorical.CategoricalReference`).

Empty-bin smoothing: only PSI needs it (log of zero). Both distributions get
an additive pseudo-count of ``PSI_PSEUDO_COUNT = 0.5`` per bin (Jeffreys):
``p_i = (c_i + 0.5) / (n + 0.5 * bins)``. Jensen-Shannon, Hellinger and total
variation are finite with empty bins and use raw proportions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

PSI_PSEUDO_COUNT = 0.5
UNSEEN = "__unseen__"
OTHER = "__other__"


def sorted_quantiles(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(a, q)`` (method ``linear``) of an ascending array without NaN, read off it directly.

    numpy partitions a copy of ``a`` to find the order statistics around ``(n - 1) * q``; in a
    sorted array they are where they are. The interpolation is numpy's own ``_lerp``, operation
    for operation (from ``a`` towards ``b``, or back from ``b`` when ``t >= 0.5``), so the doubles
    are numpy's (tested against it).

    >>> sorted_quantiles(np.array([1.0, 2.0, 4.0, 8.0]), np.array([0.25, 0.5, 1.0])).tolist()
    [1.75, 3.0, 8.0]
    """
    n = a.size
    virtual = (n - 1) * q
    below = np.floor(virtual)
    above = below + 1
    top = virtual >= n - 1
    below[top] = -1
    above[top] = -1
    lo, hi = a[below.astype(np.intp)], a[above.astype(np.intp)]
    t = virtual - below
    diff = hi - lo
    out = np.add(lo, diff * t)
    np.subtract(hi, diff * (1 - t), out=out, where=t >= 0.5)
    return out


class NumericBinning:
    """Reference-quantile bins of one numeric column.

    >>> rng = np.random.default_rng(0)
    >>> b = NumericBinning.from_reference(rng.normal(size=1000), bins=4)
    >>> b.n_bins, b.counts(np.array([-5.0, 0.0, 5.0, np.nan])).tolist()
    (4, [1, 0, 1, 1])
    """

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)

    @classmethod
    def from_reference(cls, values: np.ndarray, bins: int) -> NumericBinning:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(np.empty(0))
        qs = np.quantile(finite, np.arange(1, bins) / bins)
        return cls(np.unique(qs))

    @classmethod
    def from_sorted(cls, finite: np.ndarray, bins: int) -> NumericBinning:
        """:meth:`from_reference` of values whose finite ones, sorted, are ``finite`` (the same edges; with
        no -0.0 among them: which of -0.0 and 0.0 becomes an edge depends on their order)."""
        if finite.size == 0:
            return cls(np.empty(0))
        return cls(np.unique(sorted_quantiles(finite, np.arange(1, bins) / bins)))

    @property
    def n_bins(self) -> int:
        return int(self.edges.size + 1)

    def counts_sorted(self, finite: np.ndarray, below: int = 0, above: int = 0) -> np.ndarray:
        """:meth:`counts` of values whose finite ones, sorted, are ``finite``, with ``below`` of them
        -inf and ``above`` +inf: one search per edge instead of one per value (the same integers).

        >>> b = NumericBinning(np.array([0.0, 1.0]))
        >>> b.counts_sorted(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), below=1, above=2).tolist()
        [3, 2, 3]
        """
        at_or_below = np.searchsorted(finite, self.edges, side="right")  # bin i is (edge[i-1], edge[i]]
        out = np.diff(np.concatenate(([0], at_or_below, [finite.size]))).astype(np.int64)
        out[0] += below
        out[-1] += above
        return out

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts per bin of the non-NaN ``values`` (searchsorted + bincount)."""
        finite = values[~np.isnan(values)]
        idx = np.searchsorted(self.edges, finite, side="left")
        return np.bincount(idx, minlength=self.n_bins).astype(np.int64)

    def state(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NumericBinning:
        return cls(np.asarray(state["edges"], dtype=np.float64))


class CategoricalBinning:
    """Reference categories as bins, with ``__other__`` and ``__unseen__`` buckets.

    >>> b = CategoricalBinning.from_reference(np.array(["a", "b", "a", None], dtype=object), 10)
    >>> b.labels, b.counts(np.array(["a", "zz", None, "b"], dtype=object)).tolist()
    (['a', 'b', '__unseen__'], [1, 1, 1])
    """

    def __init__(self, categories: list[str], pooled: list[str]) -> None:
        self.categories = list(categories)
        self.pooled = set(pooled)
        self.labels = [*self.categories, *([OTHER] if self.pooled else []), UNSEEN]
        self._index = {c: i for i, c in enumerate(self.categories)}
        for c in self.pooled:
            self._index[c] = len(self.categories)

    @classmethod
    def from_reference(cls, values: np.ndarray, max_categories: int) -> CategoricalBinning:
        present = values[~missing_mask(values)].astype(str)
        cats, counts = np.unique(present, return_counts=True)
        order = sorted(range(len(cats)), key=lambda i: (-counts[i], str(cats[i])))
        keep = [str(cats[i]) for i in order[:max_categories]]
        pooled = [str(cats[i]) for i in order[max_categories:]]
        return cls(keep, pooled)

    @property
    def n_bins(self) -> int:
        return len(self.labels)

    @property
    def unseen_index(self) -> int:
        return len(self.labels) - 1

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts per bin of the non-missing ``values`` (one dict lookup per distinct value).

        Tallied with a ``Counter`` over the values as Python objects: hashing a
        batch of labels costs a fraction of sorting it as a unicode array.
        """
        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        tally = Counter(values.tolist())
        tally.pop(None, None)  # missing
        out = np.zeros(self.n_bins, dtype=np.int64)
        index, unseen = self._index, self.unseen_index
        for value, count in tally.items():
            out[index.get(value if type(value) is str else str(value), unseen)] += count
        return out

    def bin_indices(self, categories: np.ndarray) -> np.ndarray:
        """The bin of each category name (``__unseen__`` for names the reference lacks)."""
        index, unseen = self._index, self.unseen_index
        return np.fromiter((index.get(str(c), unseen) for c in categories), dtype=np.int64, count=len(categories))

    def unseen_categories(self, values: np.ndarray, limit: int = 20) -> list[str]:
        present = values[~missing_mask(values)].astype(str)
        return [str(u) for u in np.unique(present) if str(u) not in self._index][:limit]

    def state(self) -> dict[str, Any]:
        return {"categories": self.categories, "pooled": sorted(self.pooled)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CategoricalBinning:
        return cls(state["categories"], state["pooled"])


def unseen_share(values: np.ndarray) -> float:
    """Good-Turing estimate of the share of new values that no reference category holds.

    ``n1 / n``: the categories seen exactly once, over the non-missing values (Good 1953,
    "The population frequencies of species"). Zero when every category was seen at least
    twice (a column of a few categories); near one for a column of ids.

    >>> unseen_share(np.array(["a", "a", "b", "c", None, "a", "b"], dtype=object))
    0.16666666666666666
    >>> unseen_share(np.array(["a", "b", "a", "b"], dtype=object))
    0.0
    """
    present = values[~missing_mask(values)]
    if present.size == 0:
        return 0.0
    counts = Counter(present.tolist()).values()
    return sum(1 for c in counts if c == 1) / present.size


MAX_TURING_COUNT = 20  # counts below this are re-estimated by Turing's formula


def good_turing_counts(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-category counts as a new sample of the same size would hold them, and the unseen count.

    A sample over-counts its rare categories: the ``N_1`` categories seen once hold,
    together, not ``N_1`` but about ``2 N_2`` values of a new sample (``N_r``: categories
    seen ``r`` times), and about ``N_1`` new values belong to no category it has
    (Good 1953). So a category seen ``r < MAX_TURING_COUNT`` times counts
    ``r* = (r + 1) N_(r+1) / N_r`` (up to the first ``r`` with ``N_(r+1) = 0``), larger
    counts keep theirs, the seen total is scaled to ``n - N_1``, and the unseen get
    ``N_1``. Without singletons (a column of a few categories) the counts come back as
    they are.

    >>> adjusted, unseen = good_turing_counts(np.array([6, 2, 1, 1]))
    >>> adjusted.round(2).tolist(), unseen
    ([4.8, 1.6, 0.8, 0.8], 2.0)
    >>> good_turing_counts(np.array([30, 20]))[0].tolist()
    [30.0, 20.0]
    """
    adjusted = counts.astype(np.float64)
    n = int(counts.sum())
    freq = np.bincount(counts) if counts.size else np.zeros(1, dtype=np.int64)
    n1 = int(freq[1]) if freq.size > 1 else 0
    if n == 0 or n1 == 0:
        return adjusted, 0.0
    r = 1
    while r < MAX_TURING_COUNT and r + 1 < freq.size and freq[r + 1] > 0:
        adjusted[counts == r] = (r + 1) * freq[r + 1] / freq[r]
        r += 1
    seen = adjusted.sum()
    if seen > 0:
        adjusted *= (n - n1) / seen
    return adjusted, float(n1)


def missing_mask(values: np.ndarray) -> np.ndarray:
    """True where a value is missing: NaN for float columns, ``None`` for object columns."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.equal(values, None)  # type: ignore[call-overload]
    return np.zeros(values.shape, dtype=bool)


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(counts.shape)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors (pseudo-count smoothing, see module doc).

    >>> round(psi(np.array([50, 50]), np.array([90, 10])), 4)
    0.8531
    """
    b = reference.size
    p = (reference + PSI_PSEUDO_COUNT) / (reference.sum() + PSI_PSEUDO_COUNT * b)
    q = (current + PSI_PSEUDO_COUNT) / (current.sum() + PSI_PSEUDO_COUNT * b)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2, in [0, 1]).

    >>> jensen_shannon(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p, q = _proportions(reference), _proportions(current)
    m = (p + q) / 2
    div = 0.5 * (_kl(p, m) + _kl(q, m)) / np.log(2)
    return float(np.sqrt(max(div, 0.0)))


def _kl(p: np.ndarray, m: np.ndarray) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / m[nz])))


def hellinger(reference: np.ndarray, current: np.ndarray) -> float:
    """Hellinger distance in [0, 1].

    >>> hellinger(np.array([3, 1]), np.array([3, 1]))
    0.0
    """
    p, q = _proportions(reference), _proportions(current)
    bc = float(np.sum(np.sqrt(p * q)))
    return float(np.sqrt(max(1.0 - bc, 0.0)))


def total_variation(reference: np.ndarray, current: np.ndarray) -> float:
    """Total variation distance in [0, 1].

    >>> total_variation(np.array([1, 1]), np.array([1, 0]))
    0.5
    """
    p, q = _proportions(reference), _proportions(current)
    return float(0.5 * np.abs(p - q).sum())


def binned_distances(reference: list[np.ndarray], current: list[np.ndarray]) -> dict[str, np.ndarray]:
    """PSI, Jensen-Shannon and Hellinger of many pairs of count vectors in one vectorized pass.

    Equal to :func:`psi`, :func:`jensen_shannon` and :func:`hellinger` pair by
    pair (to rounding); vectors of different lengths are padded with bins that
    contribute nothing. A drift suite of 20 features evaluates them this way:
    on small arrays numpy's per-call overhead, not the arithmetic, is the cost.

    >>> d = binned_distances([np.array([50, 50]), np.array([3, 1, 0])], [np.array([90, 10]), np.array([3, 1, 0])])
    >>> d["psi"].round(4).tolist(), d["hellinger"].round(4).tolist()
    ([0.8531, 0.0], [0.3249, 0.0])
    """
    k = len(reference)
    width = max((r.size for r in reference), default=0)
    ref = np.zeros((k, width))
    cur = np.zeros((k, width))
    used = np.zeros((k, width), dtype=bool)
    for i, (r, c) in enumerate(zip(reference, current, strict=True)):
        ref[i, : r.size], cur[i, : c.size], used[i, : r.size] = r, c, True
    bins = used.sum(axis=1, keepdims=True)
    ref_total, cur_total = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    p = np.where(used, (ref + PSI_PSEUDO_COUNT) / (ref_total + PSI_PSEUDO_COUNT * bins), 1.0)
    q = np.where(used, (cur + PSI_PSEUDO_COUNT) / (cur_total + PSI_PSEUDO_COUNT * bins), 1.0)
    out_psi = np.sum((q - p) * np.log(q / p), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(ref_total > 0, ref / ref_total, 0.0)
        q = np.where(cur_total > 0, cur / cur_total, 0.0)
        mid = (p + q) / 2
        kl_p = np.where(p > 0, p * np.log(p / mid), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / mid), 0.0).sum(axis=1)
    js = np.sqrt(np.maximum(0.5 * (kl_p + kl_q) / np.log(2), 0.0))
    hell = np.sqrt(np.maximum(1.0 - np.sqrt(p * q).sum(axis=1), 0.0))
    return {"psi": out_psi, "jensen_shannon": js, "hellinger": hell}
