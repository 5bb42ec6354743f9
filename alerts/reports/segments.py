"""Worst segments: slices of the joined outcomes where the metric dropped most against the reference.

Slices are single features and pairs of features. Categorical features slice by
category (the ``max_categories`` most frequent reference categories, the rest
pooled as ``(other)``, plus ``(missing)``); numeric features by reference
quantile bins (quartiles by default). The metric is accuracy for classifiers,
with a Wilson score interval, and the mean absolute error for regression, with
a normal interval. Each slice is compared with the same slice of the reference
(or, when the reference slice has too few labelled rows, the whole reference).
The slicing and the interval are the detectors' (``detectors/segments.py``), which
also test segments for the performance alert's ``segment`` label.

Ranking is conservative: by how much worse the slice is *at least* at the
interval's confidence (the interval bound nearest the reference), so that a
12-row slice with a wild value does not outrank a 500-row slice with a solid drop.

>>> lo, hi = wilson_interval(np.array([45]), np.array([50]))
>>> round(float(lo[0]), 3), round(float(hi[0]), 3)
(0.786, 0.957)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from driftwarden.alerts.reports.report import Segment
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.binning import missing_mask
from driftwarden.detectors.segments import MISSING, OTHER, Slicer, wilson_interval
from driftwarden.detectors.spec import ModelSpec

__all__ = ["MISSING", "OTHER", "Slicer", "wilson_interval", "worst_segments"]


def _labelled(batch: OutcomeBatch) -> np.ndarray:
    y = batch.y_true
    return ~np.isnan(y.astype(np.float64)) if y.dtype.kind == "f" else ~missing_mask(y)


def _per_row(batch: OutcomeBatch, regression: bool) -> np.ndarray:
    """Per-row metric contribution: 1/0 correct for classifiers, absolute error for regression."""
    if regression:
        return np.abs(np.asarray(batch.y_true, np.float64) - np.asarray(batch.y_pred, np.float64))
    return (batch.y_true.astype(str) == batch.y_pred.astype(str)).astype(np.float64)


def _stats(codes: np.ndarray, size: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.bincount(codes, minlength=size)
    s = np.bincount(codes, weights=values, minlength=size)
    s2 = np.bincount(codes, weights=values * values, minlength=size)
    return n, s, s2


def worst_segments(
    spec: ModelSpec,
    reference: OutcomeBatch,
    outcomes: OutcomeBatch,
    *,
    top: int = 10,
    min_rows: int = 30,
    bins: int = 4,
    max_categories: int = 20,
    pairs: bool = True,
    confidence: float = 0.95,
) -> tuple[str, list[Segment]]:
    """(metric name, the ``top`` worst slices) of ``outcomes`` vs ``reference``."""
    regression = spec.task == "regression"
    metric = "mae" if regression else "accuracy"
    cur_ok, ref_ok = _labelled(outcomes), _labelled(reference)
    if reference.y_true.dtype.kind == "f" and not regression:
        ref_ok = np.zeros(len(reference), dtype=bool)
    cur_v = _per_row(outcomes, regression)[cur_ok]
    ref_v = _per_row(reference, regression)[ref_ok] if ref_ok.any() else np.empty(0)
    overall_ref = float(ref_v.mean()) if ref_v.size else float(cur_v.mean()) if cur_v.size else np.nan
    if cur_v.size == 0:
        return metric, []
    slicers = [
        Slicer(
            n,
            reference.features.get(n, np.empty(0, dtype=object if f.type != "numeric" else float)),
            f.type == "numeric",
            bins,
            max_categories,
        )
        for n, f in spec.features.items()
        if n in outcomes.features
    ]
    cur_codes = {s.name: s.codes(outcomes.features[s.name][cur_ok]) for s in slicers}
    ref_codes = {
        s.name: s.codes(reference.features[s.name][ref_ok])
        if s.name in reference.features
        else np.zeros(int(ref_ok.sum()), dtype=np.int64)
        for s in slicers
    }
    combos: list[tuple[Slicer, ...]] = [(s,) for s in slicers]
    if pairs:
        combos += list(itertools.combinations(slicers, 2))
    z = float(norm.ppf(0.5 + confidence / 2))
    found: list[Segment] = []
    for combo in combos:
        size = int(np.prod([s.size for s in combo]))
        code_c = np.zeros(cur_v.size, dtype=np.int64)
        code_r = np.zeros(ref_v.size, dtype=np.int64)
        for s in combo:
            code_c = code_c * s.size + cur_codes[s.name]
            code_r = code_r * s.size + ref_codes[s.name]
        n, sm, s2 = _stats(code_c, size, cur_v)
        rn, rs, _ = _stats(code_r, size, ref_v)
        for code in np.flatnonzero(n >= min_rows):
            value = sm[code] / n[code]
            if regression:
                sd = np.sqrt(max(s2[code] / n[code] - value * value, 0.0) * n[code] / max(n[code] - 1, 1))
                lo, hi = value - z * sd / np.sqrt(n[code]), value + z * sd / np.sqrt(n[code])
            else:
                lo_a, hi_a = wilson_interval(sm[code : code + 1], n[code : code + 1], confidence)
                lo, hi = float(lo_a[0]), float(hi_a[0])
            ref_value = rs[code] / rn[code] if rn[code] >= min_rows else overall_ref
            worse = (lo - ref_value) if regression else (ref_value - hi)
            found.append(
                Segment(
                    features=[s.name for s in combo],
                    values=_labels(combo, int(code)),
                    metric=metric,
                    n=int(n[code]),
                    value=float(value),
                    ci_low=float(lo),
                    ci_high=float(hi),
                    reference_n=int(rn[code]),
                    reference_value=float(ref_value),
                    change=float(value - ref_value),
                    worse_by_at_least=float(worse),
                )
            )
    found.sort(key=lambda s: (-s.worse_by_at_least, -s.n, s.label))
    return metric, _distinct(found, top)


def _labels(combo: Sequence[Slicer], code: int) -> list[str]:
    labels = []
    for s in reversed(combo):
        labels.append(s.labels[code % s.size])
        code //= s.size
    return labels[::-1]


def _distinct(found: list[Segment], top: int) -> list[Segment]:
    """The worst ``top``, skipping a pair whose rows are (nearly) those of a listed single slice."""
    out: list[Segment] = []
    for seg in found:
        if len(out) >= top:
            break
        if len(seg.features) == 2 and any(
            len(o.features) == 1 and o.features[0] in seg.features and o.values[0] in seg.values and seg.n >= 0.95 * o.n
            for o in out
        ):
            continue
        out.append(seg)
    return out
