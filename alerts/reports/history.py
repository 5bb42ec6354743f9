"""Recent evaluations per check, as time series: onset detection and drift/performance alignment.

Source: the monitor's ``snapshot()["evaluations"]`` (``"kind/detector/subject"`` ->
``[{window_end, statistic, threshold, degraded}, ...]``) merged with any
:class:`~detectors.findings.Finding` list (deduplicated by key and window end).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftwarden.detectors.findings import Finding
from driftwarden.detectors.metrics import METRICS


@dataclass(frozen=True, slots=True)
class Point:
    window_end: float
    statistic: float
    threshold: float
    degraded: bool


Series = dict[str, list[Point]]


def key_of(f: Finding) -> str:
    return "/".join(f.key)


def build_series(snapshot: Mapping[str, Any] | None, findings: Iterable[Finding]) -> Series:
    """Per-key points sorted by window end (snapshot and findings merged)."""
    merged: dict[str, dict[float, Point]] = {}
    evaluations = (snapshot or {}).get("evaluations") or {}
    for key, points in evaluations.items():
        for p in points:
            pt = Point(float(p["window_end"]), float(p["statistic"]), float(p["threshold"]), bool(p["degraded"]))
            merged.setdefault(str(key), {})[pt.window_end] = pt
    for f in findings:
        merged.setdefault(key_of(f), {})[f.window_end] = Point(f.window_end, f.statistic, f.threshold, f.degraded)
    return {k: [v[t] for t in sorted(v)] for k, v in merged.items()}


def onset(series: Series, triggering: Iterable[Finding]) -> tuple[float | None, float | None]:
    """(first degraded window end of the current degraded run, last healthy window end before it).

    The earliest over the triggering checks; without history, the triggering windows themselves.
    A check that estimates its change point (``details["change_time"]``, the CUSUM's) starts there,
    and its last healthy time is as far before it as its first degraded verdict came after it.
    A sequential drift check (``details["sequential"]``: a point per block, its CUSUM ``S``) starts
    at the first block of its change window (``details["change_window_blocks"]`` blocks up to the
    finding's; the alarm itself comes blocks after the change); it was surely healthy at the last
    block before that with ``S`` at 0 (Page's change-point estimate), else the block before.
    """
    first: float | None = None
    healthy: float | None = None
    for f in triggering:
        points = [p for p in series.get(key_of(f), []) if p.window_end <= f.window_end] or [
            Point(f.window_end, f.statistic, f.threshold, f.degraded)
        ]
        i = len(points) - 1
        while i > 0 and points[i - 1].degraded:
            i -= 1
        start = points[i].window_end
        before = points[i - 1].window_end if i > 0 else None
        change = f.details.get("change_time")
        if isinstance(change, float) and change < start:  # a sequential check estimates its change point
            # ... give or take its detection lag: the estimate is uncertain by about as much
            start, before = change, change - (start - change)
        elif f.details.get("sequential") is True:
            start, before = change_window_start(points, f) or (start, before)
        if first is None or start < first:
            first, healthy = start, before
    return first, healthy


def change_window_start(points: list[Point], f: Finding) -> tuple[float, float | None] | None:
    """(end of the first block of ``f``'s change window, end of the last block before it with ``S`` at 0,
    else of the block before it) from the check's points (one per block, the last one ``f``'s); None
    when they do not reach back that far.

    >>> from driftwarden.detectors.findings import Finding
    >>> pts = [Point(t, s, 10.0, s >= 10) for t, s in ((1, 0.0), (2, 4.0), (3, 7.5), (4, 12.0))]
    >>> f = Finding("data_drift", "cusum", "age", 12.0, 10.0, True, 4, 500, details={"change_window_blocks": 2})
    >>> change_window_start(pts, f), change_window_start(pts[1:], f)
    ((3, 1), (3, 2))
    """
    blocks = f.details.get("change_window_blocks")
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1 or not points \
            or points[-1].window_end != f.window_end:
        return None
    first = len(points) - blocks
    if first < 0:
        return None
    zero = next((p.window_end for p in reversed(points[:first]) if p.statistic <= 0), None)
    return points[first].window_end, zero if zero is not None else points[first - 1].window_end if first > 0 else None


def run_start(points: list[Point], until: float) -> float | None:
    """Window end at which the degraded run holding the last point at or before ``until`` began
    (None when that point is healthy or there is none).

    >>> pts = [Point(t, 0.0, 0.2, bad) for t, bad in ((1, False), (2, True), (3, True), (4, False))]
    >>> run_start(pts, 3.5), run_start(pts, 4), run_start(pts, 0)
    (2, None, None)
    """
    upto = [p for p in points if p.window_end <= until]
    if not upto or not upto[-1].degraded:
        return None
    i = len(upto) - 1
    while i > 0 and upto[i - 1].degraded:
        i -= 1
    return upto[i].window_end


def estimated_and_realized(snapshot: Mapping[str, Any] | None, metric: str,
                           outcome_windows: bool = True) -> dict[str, list[Point]]:
    """``metric`` as CBPE estimated it and as realized, per window (for one plot).

    The monitor's evaluations keep, under the estimate's key, the estimate of a window first and
    its realized value (once labels covered it) second; in sequential mode the snapshot's
    ``estimate_pairs`` give each estimated block's realized value over the labels of its own
    predictions (``detectors/estimate_pairs.py``); ``performance/<metric>`` adds the
    realized metric of the outcome windows (unless ``outcome_windows`` is false: a sequential check's
    points there are its evidence, S / h, not the metric).
    """
    evaluations = (snapshot or {}).get("evaluations") or {}
    estimated: dict[float, Point] = {}
    realized: dict[float, Point] = {}
    for p in evaluations.get(f"estimated_performance/{metric}/{metric}") or []:
        pt = Point(float(p["window_end"]), float(p["statistic"]), float(p["threshold"]), bool(p["degraded"]))
        (realized if pt.window_end in estimated else estimated)[pt.window_end] = pt
    for pair in (snapshot or {}).get("estimate_pairs") or []:  # sequential: each estimate block's own labels
        value = (pair.get("realized") or {}).get(metric)
        if value is not None:
            end = float(pair["window_end"])
            realized[end] = Point(end, float(value), math.nan, False)  # the estimate's line draws the bound
    windows = [Point(float(p["window_end"]), float(p["statistic"]), float(p["threshold"]), bool(p["degraded"]))
               for p in (evaluations.get(f"performance/{metric}/{metric}") or [] if outcome_windows else [])]
    lines = {"estimated (CBPE)": [estimated[t] for t in sorted(estimated)],
             "realized, same windows": [realized[t] for t in sorted(realized)],
             "realized, outcome windows": sorted(windows, key=lambda p: p.window_end)}
    return {k: v for k, v in lines.items() if v} if estimated else {}


def performance_key(series: Series, triggering: Iterable[Finding]) -> str | None:
    """The performance check to correlate with: the triggering one, else the first realized metric."""
    for f in triggering:
        if f.kind in ("performance", "estimated_performance") and f.detector in METRICS:
            return key_of(f)
    for kind in ("performance", "estimated_performance"):
        for key in sorted(series):
            if key.startswith(kind + "/") and key.split("/")[1] in METRICS:
                return key
    return None


def badness(key: str, points: list[Point], evidence: bool = False) -> np.ndarray:
    """Performance values oriented so that larger means worse (``evidence``: the points are a CUSUM's S / h)."""
    metric = METRICS[key.split("/")[1]]
    values = np.array([p.statistic for p in points])
    return values if evidence or metric.direction == "increase" else -values


def aligned_correlation(drift: list[Point], perf_key: str, perf: list[Point],
                        evidence: bool = False) -> tuple[float | None, int]:
    """Pearson r between a feature's drift and the performance degradation over recent windows.

    Each performance window is paired with the latest drift window that ended at or before it.
    Needs 3 pairs and variation on both sides; returns (r or None, pairs used).
    """
    if not drift or not perf:
        return None, 0
    ends = np.array([p.window_end for p in drift])
    stats = np.array([p.statistic for p in drift])
    bad = badness(perf_key, perf, evidence)
    xs, ys = [], []
    for p, b in zip(perf, bad, strict=True):
        i = int(np.searchsorted(ends, p.window_end, side="right")) - 1
        if i >= 0 and math.isfinite(stats[i]) and math.isfinite(b):
            xs.append(stats[i])
            ys.append(b)
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None, len(xs)
    return float(np.corrcoef(xs, ys)[0, 1]), len(xs)
