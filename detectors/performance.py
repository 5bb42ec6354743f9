"""Realized performance per window of joined outcomes, against its reference baseline.

Baseline: the metric on the whole reference. Sampling spread: the metric's
standard deviation over reference chunks of ``c = min(window, n_ref // 10)``
rows, rescaled to a window of ``n`` rows by ``sqrt(c / n)`` (the usual 1/sqrt(n)
law). It gives both the ``std`` threshold strategy and each value's confidence
interval ``value -/+ z * std_n`` (normal approximation, ``z`` from
``performance.confidence``). With fewer than 20 reference rows there is no
spread: the interval is omitted and ``std`` thresholds fall back to ``relative``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtri

from driftwarden.detectors.base import check_params, fmt, register, severity
from driftwarden.detectors.findings import Finding, Kind
from driftwarden.detectors.metrics import DEFAULT_METRICS, METRICS, ClassScores, Metric
from driftwarden.detectors.settings import ThresholdSettings
from driftwarden.detectors.subsample_metrics import binary_metrics_many
from driftwarden.detectors.thresholds import RelativeThreshold, StdThreshold, Threshold, breach, threshold_from_settings

Columns = dict[str, np.ndarray]
MIN_REFERENCE_ROWS = 20


@lru_cache(maxsize=8)
def bootstrap_rows(n: int, chunk: int, draws: int) -> np.ndarray:
    """The rows of :class:`Baseline`'s ``draws`` subsamples of ``chunk`` of ``n`` (seed 0, each sorted), one
    per row: the same for every metric and model whose reference has ``n`` rows, so drawn once (read-only).

    >>> rows = bootstrap_rows(100, 10, 3); rows.shape, bool((np.diff(rows, axis=1) > 0).all())
    ((3, 10), True)
    """
    rng = np.random.default_rng(0)
    rows = np.stack([np.sort(rng.choice(n, chunk, replace=False)) for _ in range(draws)])
    rows.flags.writeable = False
    return rows


class Baseline:
    """Reference value of a window statistic and its standard error for a window of ``n``.

    The spread is measured on ``BOOTSTRAP`` random reference subsamples of ``chunk``
    rows (drawn without replacement with a fixed seed, so it is reproducible; the
    finite-population factor corrects for drawing from a finite reference) and
    scaled as 1/sqrt(n). The comparison is window versus reference, and the
    reference value is itself an estimate: ``std_for(n)`` is the standard error
    of their difference, ``s * sqrt(chunk) * sqrt(1/n + 1/N)`` for ``N`` reference
    rows. (Ten disjoint chunks gave a noisy spread and ignored the reference's own
    error: 21 of 400 healthy windows breached ROC AUC at k=3.)
    """

    BOOTSTRAP = 32  # relative error of the spread ~13% (ten disjoint chunks: ~24%)

    def __init__(self, fn: Callable[[Columns], float], reference: Columns, window: int,
                 draws: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """``draws``, when given, returns what ``fn`` would for every row of an index matrix at once
        (:mod:`detectors.subsample_metrics`): the same subsamples, one numpy call for all of them."""
        n = len(next(iter(reference.values()))) if reference else 0
        self.value = fn(reference) if n else math.nan
        self.rows = n
        self.chunk = min(window, n // 10)
        self.std: float | None = None
        if n >= MIN_REFERENCE_ROWS and self.chunk >= 2:
            rows = bootstrap_rows(n, self.chunk, self.BOOTSTRAP)
            vals = (draws(rows).tolist() if draws is not None
                    else [fn({k: v[idx] for k, v in reference.items()}) for idx in rows])
            finite = [v for v in vals if math.isfinite(v)]
            if len(finite) >= 2:
                fpc = math.sqrt(max(1.0 - self.chunk / n, 1e-9))
                self.std = float(np.std(finite, ddof=1)) / fpc

    @classmethod
    def of(cls, value: float, std: float | None, chunk: int, rows: int) -> Baseline:
        """A baseline whose spread is known otherwise (``std`` for windows of ``chunk`` rows)."""
        b = cls.__new__(cls)
        b.value, b.std, b.chunk, b.rows = value, std, chunk, rows
        return b

    def std_for(self, n: int) -> float | None:
        if self.std is None:
            return None
        reference_term = 1.0 / self.rows if self.rows else 0.0
        return self.std * math.sqrt(self.chunk) * math.sqrt(1.0 / max(n, 1) + reference_term)


def evaluate_against(
    *, kind: Kind, detector: str, subject: str, value: float, baseline: Baseline, n: int,
    strategy: Threshold, direction: str, rng: tuple[float, float], window_end: float,
    critical_factor: float, confidence: float = 0.95, label: str | None = None,
) -> Finding | None:
    """One finding: ``value`` judged by ``strategy`` around ``baseline`` (None if undefined)."""
    if not (math.isfinite(value) and math.isfinite(baseline.value)):
        return None
    std = baseline.std_for(n)
    if isinstance(strategy, StdThreshold) and std is None:
        strategy = RelativeThreshold(0.1)
    bounds = strategy.bounds(baseline.value, std or 0.0, direction, rng)
    degraded, bound = breach(value, bounds)
    if bound is None:
        return None
    details: dict[str, Any] = {"baseline": baseline.value, "n": n, "lower": bounds[0], "upper": bounds[1]}
    if std is not None:
        z = float(ndtri(0.5 + confidence / 2))  # norm.ppf, without scipy.stats' overhead
        details.update(std=std, ci_low=max(value - z * std, rng[0]), ci_high=min(value + z * std, rng[1]),
                       confidence=confidence)
    word = "below" if degraded and bound == bounds[0] else "above" if degraded else "within"
    name = label or detector
    summary = (f"{name} {fmt(value)} {word} bound {fmt(bound)} (baseline {fmt(baseline.value)}, n={n})"
               if degraded else f"{name} {fmt(value)} within bounds (baseline {fmt(baseline.value)}, n={n})")
    sev = severity(value, bound, baseline.value, critical_factor) if degraded else "warning"
    return Finding(kind=kind, detector=detector, subject=subject, statistic=value, threshold=bound,
                   degraded=degraded, window_end=window_end, window_size=n, severity=sev,  # type: ignore[arg-type]
                   summary=summary, details=details)


def scores_of(cols: Columns) -> Any:
    """What score-based metrics get: class probabilities (``p:<class>`` columns) or ``score``."""
    return ClassScores.from_columns(cols) or cols.get("score")


def _metric_fn(metric: Metric, positive: str) -> Callable[[Columns], float]:
    def fn(cols: Columns) -> float:
        return metric.fn(cols["y_true"], cols["y_pred"], scores_of(cols), positive)

    return fn


@register("performance")
class PerformanceMonitor:
    """Realized metrics of one model, judged per window against the reference baseline.

    >>> rng = np.random.default_rng(3)
    >>> def cols(acc, n):
    ...     yt = rng.choice(["0", "1"], size=n).astype(object)
    ...     flip = rng.random(n) > acc
    ...     return {"y_true": yt, "y_pred": np.where(flip, np.where(yt == "1", "0", "1"), yt).astype(object)}
    >>> pm = PerformanceMonitor("binary", cols(0.9, 10_000), window=1000, metrics=["accuracy"])
    >>> [(f.degraded, round(f.statistic, 3)) for f in pm.evaluate(cols(0.8, 1000), 0.0)]
    [(True, 0.801)]
    """

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "window": (1, 1e9), "confidence": (0, 1), "critical_factor": (1, math.inf)}

    def __init__(self, task: str, reference: Columns, window: int, metrics: list[str] | None = None,
                 positive: str = "1", threshold: ThresholdSettings | None = None,
                 thresholds: dict[str, ThresholdSettings] | None = None, confidence: float = 0.95,
                 critical_factor: float = 2.0) -> None:
        check_params(type(self).__name__, self.param_ranges,
                     {"window": window, "confidence": confidence, "critical_factor": critical_factor})
        names = metrics if metrics is not None else DEFAULT_METRICS[task]
        has_score = ("score" in reference and reference["score"].dtype.kind == "f") or any(
            k.startswith("p:") for k in reference)
        for name in names:
            if name not in METRICS or task not in METRICS[name].tasks:
                allowed = [m for m, v in METRICS.items() if task in v.tasks]
                raise ValueError(f"metric {name!r} is not available for task {task!r}; allowed: {allowed}")
        self.metrics = [METRICS[n] for n in names if has_score or not METRICS[n].needs_score]
        self.positive = positive
        self.confidence = confidence
        self.critical_factor = critical_factor
        default = threshold or ThresholdSettings()
        per = thresholds or {}
        self.strategies = {m.name: threshold_from_settings(per.get(m.name, default)) for m in self.metrics}
        # binary: every metric's subsamples at once, exactly the one-subsample values (subsample_metrics)
        many = (binary_metrics_many([m.name for m in self.metrics], positive, reference)
                if task == "binary" and not any(k.startswith("p:") for k in reference) else None)
        shared: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (rows, every metric's values)

        def draws_of(name: str) -> Callable[[np.ndarray], np.ndarray]:
            def draws(rows: np.ndarray) -> np.ndarray:
                if not shared or shared[0][0] is not rows:  # every metric draws the same rows: computed once
                    assert many is not None
                    shared[:] = [(rows, many(reference, rows))]
                return shared[0][1][name]

            return draws

        self.baselines = {m.name: Baseline(_metric_fn(m, positive), reference, window,
                                           draws_of(m.name) if many is not None else None) for m in self.metrics}

    def evaluate(self, window: Columns, window_end: float) -> list[Finding]:
        n = len(window["y_true"])
        out = []
        for m in self.metrics:
            value = m.fn(window["y_true"], window["y_pred"], scores_of(window), self.positive)
            f = evaluate_against(kind="performance", detector=m.name, subject=m.name, value=value,
                                 baseline=self.baselines[m.name], n=n, strategy=self.strategies[m.name],
                                 direction=m.direction, rng=m.range, window_end=window_end,
                                 critical_factor=self.critical_factor, confidence=self.confidence)
            if f is not None:
                out.append(f)
        return out

    def state(self) -> dict[str, Any]:
        """Stateless between windows (the monitor holds the window): only which metrics are judged."""
        return {"metrics": [m.name for m in self.metrics]}

    def timeline_entry(self, findings: list[Finding]) -> dict[str, Any]:
        return {f.detector: {"value": f.statistic, "ci_low": f.details.get("ci_low"),
                             "ci_high": f.details.get("ci_high"), "degraded": f.degraded} for f in findings}
