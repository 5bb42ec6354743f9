"""Segments of a model's traffic and their performance against the reference's same segment.

A segment is one value of one segment column (``plan=pro``). :class:`Slicer`
maps a column's values to segment codes fixed by the reference (categorical:
the ``max_categories`` most frequent reference categories, the rest pooled as
``(other)``, plus ``(missing)``; numeric: reference quantile bins). The root-cause
report slices by these too (``alerts/reports/segments.py``); the performance
detector tests them.

:func:`segment_tests` asks, per segment, one one-sided question: is the share of
correct predictions lower than that segment's reference share? An exact binomial
test (``scipy.stats.binom``) against the reference share (the whole reference's
share when the reference segment has fewer than ``min_reference`` labelled rows),
then Holm's step-down adjustment across all segments tested together, so the chance
that any healthy segment is named stays below ``alpha``. A second one-sided test asks
whether the segment fell further than the rest of its column's traffic (so that a fault
of the whole model, which lowers every segment, names none); a segment is blamed when
both adjusted p-values are below ``alpha``.

>>> lo, hi = wilson_interval(np.array([45]), np.array([50]))
>>> round(float(lo[0]), 3), round(float(hi[0]), 3)
(0.786, 0.957)
>>> holm(np.array([0.01, 0.04, 0.03, 0.005])).tolist()
[0.03, 0.06, 0.06, 0.02]
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, norm

from driftwarden.detectors.binning import CategoricalBinning, NumericBinning, missing_mask
from driftwarden.detectors.spec import ModelSpec

MISSING = "(missing)"
OTHER = "(other)"
#: default segment columns: categorical features with at most this many reference categories
MAX_DEFAULT_CATEGORIES = 12


def wilson_interval(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, vectorized (n > 0); always contains ``successes / n``."""
    z = float(norm.ppf(0.5 + confidence / 2))
    n = np.asarray(n, dtype=np.float64)
    p = np.asarray(successes, dtype=np.float64) / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval contains p; float rounding can put a bound a hair on the wrong side
    # (10 of 10: the upper bound came out as 1 - 1.1e-16)
    return np.clip(np.minimum(centre - half, p), 0, 1), np.clip(np.maximum(centre + half, p), 0, 1)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


class Slicer:
    """Group codes and labels of one feature, fixed by the reference."""

    def __init__(self, name: str, reference: np.ndarray, numeric: bool, bins: int, max_categories: int) -> None:
        self.name, self.numeric = name, numeric
        if numeric:
            self.binning = NumericBinning.from_reference(np.asarray(reference, dtype=np.float64), bins)
            e = [f"{x:.4g}" for x in self.binning.edges]
            if not e:
                self.labels = ["(all)"]
            else:
                self.labels = [f"<= {e[0]}", *[f"({a}, {b}]" for a, b in itertools.pairwise(e)], f"> {e[-1]}"]
        else:
            self.cats = CategoricalBinning.from_reference(reference, max_categories)
            self.index = {c: i for i, c in enumerate(self.cats.categories)}
            self.labels = [*self.cats.categories, OTHER]
            # a reference category's code; None: missing
            self._known: dict[str | None, int] = {None: len(self.labels)}
            self._known.update(self.index)
        self.labels.append(MISSING)

    @property
    def size(self) -> int:
        return len(self.labels)

    def codes(self, values: np.ndarray) -> np.ndarray:
        missing = len(self.labels) - 1
        if self.numeric:
            v = np.asarray(values, dtype=np.float64)
            codes = np.searchsorted(self.binning.edges, np.nan_to_num(v), side="left")
            return np.where(np.isnan(v), missing, codes)
        try:
            found = list(map(self._known.get, values.tolist()))
        except TypeError:  # an unhashable value: the text path below
            found = [None]
        if None not in found:  # every value a reference category or missing: one dict lookup each, no sort
            return np.array(found, dtype=np.int64)
        miss = missing_mask(values)
        uniq, inverse = np.unique(np.where(miss, "", values).astype(str), return_inverse=True)
        table = np.array([self.index.get(u, missing - 1) for u in uniq], dtype=np.int64)
        return np.where(miss, missing, table[inverse.ravel()])


def default_segment_columns(spec: ModelSpec, reference: dict[str, np.ndarray],
                            max_categories: int = MAX_DEFAULT_CATEGORIES) -> list[str]:
    """``monitoring.segments`` if set, else the categorical features with few reference categories."""
    if spec.monitoring.segments is not None:
        return list(spec.monitoring.segments)
    out = []
    for name, f in spec.features.items():
        if f.type != "categorical" or name not in reference:
            continue
        values = reference[name]
        present = values[~missing_mask(values)]
        if 1 < len(np.unique(present.astype(str))) <= max_categories:
            out.append(name)
    return out


def slicers_for(columns: list[str], spec: ModelSpec, reference: dict[str, np.ndarray], bins: int = 4,
                max_categories: int = 20) -> list[Slicer]:
    """One :class:`Slicer` per segment column present in the reference."""
    out = []
    for name in columns:
        if name not in reference:
            continue
        numeric = name in spec.features and spec.features[name].type == "numeric"
        out.append(Slicer(name, reference[name], numeric, bins, max_categories))
    return out


@dataclass(frozen=True)
class SegmentTest:
    """One segment's correct share now and in the reference, and its tests (Holm-adjusted p-values).

    ``adjusted``: is the segment below its reference share? ``contrast_adjusted``: did it fall
    further than the rest of its column's traffic fell below theirs? A segment is to blame
    (:meth:`blamed`) when both hold: a fault of the whole model lowers every segment alike,
    and names none.
    """

    column: str
    value: str
    n: int
    correct: int
    reference_n: int
    reference_rate: float
    p_value: float
    contrast_p: float
    adjusted: float = 1.0
    contrast_adjusted: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.column}={self.value}"

    @property
    def rate(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    def blamed(self, alpha: float) -> bool:
        return self.adjusted < alpha and self.contrast_adjusted < alpha


class SegmentBaseline:
    """The reference's correct share per segment of each segment column.

    >>> rng = np.random.default_rng(0)
    >>> plan = rng.choice(["basic", "pro"], 20_000).astype(object)
    >>> correct = rng.random(20_000) < 0.85
    >>> from driftwarden.detectors.spec import FeatureSpec
    >>> spec = ModelSpec(task="binary", features={"plan": FeatureSpec("categorical")})
    >>> base = SegmentBaseline(spec, {"plan": plan}, correct, ["plan"])
    >>> cur_plan = rng.choice(["basic", "pro"], 2000).astype(object)
    >>> cur_ok = rng.random(2000) < np.where(cur_plan == "pro", 0.6, 0.85)
    >>> [(t.label, t.blamed(0.05)) for t in base.tests(base.codes({"plan": cur_plan}), cur_ok)]
    [('plan=pro', True), ('plan=basic', False)]
    """

    def __init__(self, spec: ModelSpec, features: dict[str, np.ndarray], correct: np.ndarray,
                 columns: list[str], min_reference: int = 200, min_rows: int = 30) -> None:
        self.slicers = slicers_for(columns, spec, features)
        self.min_rows = min_rows
        ok = np.asarray(correct, dtype=np.float64)
        self.overall = float(ok.mean()) if ok.size else float("nan")
        self.n: dict[str, np.ndarray] = {}
        self.rate: dict[str, np.ndarray] = {}
        for s in self.slicers:
            codes = s.codes(features[s.name])
            n = np.bincount(codes, minlength=s.size)
            hits = np.bincount(codes, weights=ok, minlength=s.size)
            rate = np.divide(hits, n, out=np.full(s.size, self.overall), where=n > 0)
            self.n[s.name] = n
            self.rate[s.name] = np.where(n >= min_reference, rate, self.overall)

    @property
    def columns(self) -> list[str]:
        return [s.name for s in self.slicers]

    def codes(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Segment codes per column of the rows in ``features`` (columns absent from it are skipped)."""
        return {s.name: s.codes(features[s.name]) for s in self.slicers if s.name in features}

    def tests(self, codes: dict[str, np.ndarray], correct: np.ndarray, alpha: float = 0.05) -> list[SegmentTest]:
        """Every segment with at least ``min_rows`` rows, blamed ones first, then by significance.

        Drop test: P(X <= correct) for X ~ Binomial(n, reference share). Contrast test: the
        segment's drop below its reference share minus the drop of the rest of its column
        (rows of the other segments, against their reference shares), one-sided z-test.
        Holm's adjustment runs across all segments of all columns, for each test.
        """
        ok = np.asarray(correct, dtype=np.float64)
        rows: list[SegmentTest] = []
        for s in self.slicers:
            if s.name not in codes:
                continue
            known = codes[s.name] >= 0  # -1: the column was absent from the event's batch
            n = np.bincount(codes[s.name][known], minlength=s.size)
            hits = np.bincount(codes[s.name][known], weights=ok[known], minlength=s.size).round().astype(np.int64)
            expected = n * self.rate[s.name]  # correct predictions if every segment held its reference share
            for code in np.flatnonzero(n >= self.min_rows).tolist():
                ref = float(self.rate[s.name][code])
                p = float(binom.cdf(hits[code], n[code], ref))  # few correct is the bad side
                rest_n = int(n.sum() - n[code])
                contrast = 1.0
                if rest_n > 0:
                    rate, rest_rate = hits[code] / n[code], (hits.sum() - hits[code]) / rest_n
                    drop = ref - rate
                    rest_drop = (expected.sum() - expected[code]) / rest_n - rest_rate
                    var = rate * (1 - rate) / n[code] + rest_rate * (1 - rest_rate) / rest_n
                    if var > 0:
                        contrast = float(norm.sf((drop - rest_drop) / math.sqrt(var)))
                    else:  # every row right (or wrong) on both sides: the drops alone decide
                        contrast = 0.0 if drop > rest_drop else 1.0
                rows.append(SegmentTest(s.name, s.labels[code], int(n[code]), int(hits[code]),
                                        int(self.n[s.name][code]), ref, p, contrast))
        adjusted = holm(np.array([r.p_value for r in rows]))
        contrast_adjusted = holm(np.array([r.contrast_p for r in rows]))
        out = [dataclasses.replace(r, adjusted=float(a), contrast_adjusted=float(c))
               for r, a, c in zip(rows, adjusted, contrast_adjusted, strict=True)]
        out.sort(key=lambda t: (not t.blamed(alpha), t.contrast_adjusted, t.adjusted, t.label))
        return out
