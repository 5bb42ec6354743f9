"""Multivariate drift: PCA reconstruction error of the numeric features.

Fit (on the even rows of at most 50k reference rows; the odd rows are held out
for the threshold, because in-sample reconstruction error is biased low and
made a 10M-event no-drift stream alarm in ~30 % of windows): standardize each feature with the
reference mean/std (std 0 -> 1), impute missing values with 0 (the mean),
keep the fewest principal components explaining ``variance_explained`` of
the variance, capped at d - 1 so that some structure is left to break. A
row's error is its mean squared reconstruction residual; a window's
statistic is the mean over its rows. Threshold: mean -/+ ``k`` standard
deviations of that mean, i.e. ``k`` x the held-out rows' standard deviation /
sqrt(window size). A change of correlation moves rows off the
reference's principal subspace even when every marginal is unchanged.

Sequentially (``drift.method: sequential``), :meth:`PcaDrift.block_test` gives
each block's two-sided p-value of that same z (block mean against the
baseline, its standard error for the block's size) for a CUSUM, and
:meth:`PcaDrift.change_effect` the effect size over the change window: the
relative change of the mean reconstruction error, |mean / baseline - 1|, with
the floor :data:`CHANGE_FLOOR` (see :mod:`detectors.sequential`).

What a degraded window blames (``details``, summary): each feature's share of the window's
excess error (``contribution.<name>``): a row's squared residual splits exactly over the
features as ``|r|**2 = sum_j z_j * r_j`` (``r = M z``, ``M = I - P'P``; the "partial
decomposition" contribution of Alcala & Qin 2009), averaged over the window minus the same
over the held-out reference, over the sum of the positive excesses. A shift of one feature
lands on that feature, where the squared residual ``r_j**2`` smears it over the features that
share its components (the demo's age/monthly_spend shift was put on support_tickets). And
the pair of features whose correlation changed most from the reference (``pair``,
``pair_corr_reference``, ``pair_corr_window``). ``blames`` names the pair when its correlation
moved by at least ``PAIR_CHANGE`` (``income, debt (corr 0.80 -> 0.02)``), else the features
with the largest shares.

>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(20_000, 1))
>>> ref = np.hstack([z, z + 0.3 * rng.normal(size=(20_000, 1))])
>>> pca = PcaDrift(ref, window=1000)
>>> a = rng.normal(size=(1000, 1))
>>> pca.evaluate(np.hstack([a, a + 0.3 * rng.normal(size=(1000, 1))]), 0.0).degraded
False
>>> pca.evaluate(np.hstack([a, -a]), 0.0).degraded  # same marginals, correlation flipped
True
>>> pca = PcaDrift(ref, window=1000, names=["income", "debt"])
>>> pca.evaluate(np.hstack([a, rng.normal(size=(1000, 1))]), 0.0).details["blames"]
'income, debt (corr 0.96 -> -0.01)'
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtr

from driftwarden.detectors.base import check_params, register
from driftwarden.detectors.calibration import Calibration
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.performance import Baseline, evaluate_against
from driftwarden.detectors.sequential import CusumAlarm, sequential_finding, z_score
from driftwarden.detectors.thresholds import StdThreshold

MAX_FIT_ROWS = 50_000
CHANGE_FLOOR = 0.1  # relative change of the mean reconstruction error over a sequential change window
PAIR_CHANGE = 0.2  # a correlation that moved this much is named as the cause
MAX_BLAMED = 3


@register("multivariate_pca")
class PcaDrift:
    """PCA reconstruction-error drift over a matrix of numeric features (rows = events)."""

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "window": (1, 1e9), "variance_explained": (1e-9, 1.0), "k": (1e-9, 100.0)}

    def __init__(self, reference: np.ndarray, window: int = 5000, variance_explained: float = 0.9,
                 k: float = 3.0, critical_factor: float = 2.0, names: list[str] | None = None) -> None:
        check_params(type(self).__name__, self.param_ranges,
                     {"window": window, "variance_explained": variance_explained, "k": k})
        x = np.asarray(reference, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError("PcaDrift needs a 2-D reference with at least 2 features")
        self.names = list(names) if names is not None else [f"x{i}" for i in range(x.shape[1])]
        if len(self.names) != x.shape[1]:
            raise ValueError(f"PcaDrift got {len(self.names)} names for {x.shape[1]} features")
        if x.shape[0] > MAX_FIT_ROWS:
            x = x[np.linspace(0, x.shape[0] - 1, MAX_FIT_ROWS).round().astype(np.int64)]
        self.mean = np.nanmean(x, axis=0) if np.isfinite(x).any() else np.zeros(x.shape[1])
        self.mean = np.where(np.isfinite(self.mean), self.mean, 0.0)
        std = np.sqrt(np.nanmean((x - self.mean) ** 2, axis=0))
        self.std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        fit, held_out = (x[0::2], x[1::2]) if x.shape[0] >= 40 else (x, x)
        z = self._standardize(fit)
        _, sing, vt = np.linalg.svd(z, full_matrices=False)
        var = sing**2
        ratio = np.cumsum(var) / var.sum() if var.sum() > 0 else np.ones_like(var)
        n_comp = int(np.searchsorted(ratio, variance_explained - 1e-12) + 1)
        self.components = vt[: min(n_comp, x.shape[1] - 1)]
        self.k = k
        self.critical_factor = critical_factor
        # A window's statistic is a mean of independent row errors: its spread is the rows'
        # spread / sqrt(n), estimated from every held-out row (ten chunk means gave a noisy
        # spread that made ~1.4% of no-drift windows alarm).
        # the held-out rows standardized and their residuals once, for all three (what row_errors,
        # feature_contributions and _correlation(_standardize(.)) of them give: the same operations)
        z = self._standardize(held_out)
        r = self._residuals_of(z)
        errors = np.mean(r**2, axis=1)
        self.feature_errors = np.asarray((z * r).mean(axis=0))
        self.correlation = _correlation(z)
        spread = float(errors.std(ddof=1)) if errors.size >= 2 else None
        self.baseline = Baseline.of(float(errors.mean()), spread, chunk=1, rows=int(errors.size))
        whole = errors[~np.isnan(held_out).any(axis=1)]  # the sequential test's rows: complete ones
        self.complete_baseline = (Baseline.of(float(whole.mean()), float(whole.std(ddof=1)), chunk=1, rows=int(whole.size))
                                  if whole.size >= 2 else self.baseline)
        self.calibration: Calibration | None = None
        self.alarm: CusumAlarm | None = None
        self._pool: list[float] = [0.0, 0]

    def _standardize(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return np.where(np.isnan(z), 0.0, z)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """Per row and feature: the standardized value minus its reconstruction."""
        return self._residuals_of(self._standardize(np.asarray(x, dtype=np.float64)))

    def _residuals_of(self, z: np.ndarray) -> np.ndarray:
        return z - (z @ self.components.T) @ self.components

    def row_errors(self, x: np.ndarray) -> np.ndarray:
        return np.mean(self.residuals(x) ** 2, axis=1)

    def feature_contributions(self, x: np.ndarray) -> np.ndarray:
        """Mean of ``z_j * r_j`` per feature over the rows of ``x`` (they sum to d x the window error)."""
        z = self._standardize(np.asarray(x, dtype=np.float64))
        return np.asarray((z * self.residuals(x)).mean(axis=0))

    def contributions(self, x: np.ndarray) -> dict[str, float]:
        """Each feature's share of the window's excess contribution over the reference's
        (shares of the positive excesses; they sum to 1 unless no feature exceeds: all 0)."""
        excess = np.maximum(self.feature_contributions(x) - self.feature_errors, 0.0)
        total = float(excess.sum())
        return {n: (float(e) / total if total > 0 else 0.0) for n, e in zip(self.names, excess, strict=True)}

    def changed_pair(self, x: np.ndarray) -> tuple[str, str, float, float]:
        """(feature, feature, reference correlation, window correlation) of the pair that moved most."""
        window = _correlation(self._standardize(np.asarray(x, dtype=np.float64)))
        diff = np.abs(window - self.correlation)
        diff[np.tril_indices_from(diff)] = -1.0
        i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
        return self.names[i], self.names[j], float(self.correlation[i, j]), float(window[i, j])

    def blame(self, x: np.ndarray) -> dict[str, Any]:
        """What a window blames (see the module docstring), as finding details."""
        shares = self.contributions(x)
        a, b, before, after = self.changed_pair(x)
        top = [n for n, v in sorted(shares.items(), key=lambda kv: -kv[1]) if v > 0][:MAX_BLAMED]
        if abs(after - before) >= PAIR_CHANGE:
            blames = f"{a}, {b} (corr {before:.2f} -> {after:.2f})"
        else:
            blames = ", ".join(f"{n} ({shares[n]:.0%})" for n in top) or "no single feature"
        details: dict[str, Any] = {"blames": blames, "pair": f"{a}~{b}", "pair_corr_reference": round(before, 4),
                                   "pair_corr_window": round(after, 4)}
        details.update({f"contribution.{n}": round(shares[n], 4) for n in top})
        return details

    def window_error(self, x: np.ndarray) -> float:
        """Mean of :meth:`row_errors` without forming the residual.

        The components are orthonormal, so the squared residual of a row is its
        squared norm minus that of its projection: one product instead of two.

        >>> rng = np.random.default_rng(0); pca = PcaDrift(rng.normal(size=(500, 4)))
        >>> x = rng.normal(size=(200, 4))
        >>> bool(np.isclose(pca.window_error(x), pca.row_errors(x).mean(), rtol=1e-12))
        True
        """
        z = self._standardize(np.asarray(x, dtype=np.float64))
        if z.size == 0:
            return float("nan")
        projected = z @ self.components.T
        return float((np.einsum("ij,ij->", z, z) - np.einsum("ij,ij->", projected, projected)) / z.size)

    def block_test(self, x: np.ndarray) -> tuple[float, float]:
        """(two-sided p-value, mean reconstruction error) of one block's complete rows.

        >>> rng = np.random.default_rng(1); pca = PcaDrift(rng.normal(size=(4000, 3)))
        >>> p, err = pca.block_test(rng.normal(size=(500, 3)))
        >>> bool(p > 0.01), bool(pca.block_test(rng.normal(size=(500, 3)) * 2)[0] < 1e-9)
        (True, True)
        """
        x = np.asarray(x, dtype=np.float64)
        x = x[~np.isnan(x).any(axis=1)]  # complete rows: a burst of nulls is data quality's finding
        value = self.window_error(x)
        std = self.complete_baseline.std_for(int(x.shape[0]))
        if x.shape[0] < 2 or not np.isfinite(value) or not std:
            return 1.0, value
        z = abs(value - self.complete_baseline.value) / std
        return float(2 * ndtr(-z)), value

    def arm(self, calibration: Calibration) -> None:
        """Start the sequential test (a CUSUM on :meth:`block_test`'s p-values) with ``calibration``'s threshold."""
        self.calibration = calibration
        self.alarm = CusumAlarm(calibration.h, calibration.k)
        self._pool = [0.0, 0]  # the change window's sum of row errors and rows

    def evaluate_block(self, x: np.ndarray, window_end: float) -> Finding:
        """The sequential finding after one block of rows (needs :meth:`arm`)."""
        if self.alarm is None or self.calibration is None:
            raise RuntimeError("PcaDrift.evaluate_block needs arm(calibration) first")
        p, err = self.block_test(x)
        n = int(np.sum(~np.isnan(np.asarray(x, dtype=np.float64)).any(axis=1)))
        if self.alarm.starts_run:
            self._pool = [0.0, 0]
        if np.isfinite(err):
            self._pool = [self._pool[0] + err * n, int(self._pool[1]) + n]
        z = float(z_score(np.array(p)))
        self.alarm.step(z)
        rows = int(self._pool[1])
        effect = self.change_effect(self._pool[0] / rows) if rows else 0.0
        self.alarm.decide(effect, CHANGE_FLOOR)
        f = sequential_finding(
            kind="multivariate_drift", subject="features", alarm=self.alarm, calibration=self.calibration, z=z,
            p=p, test="PCA error z", effect=effect, floor=CHANGE_FLOOR, effect_label="relative PCA error change",
            window_end=window_end, block_events=n, change_events=rows, critical_factor=self.critical_factor,
            extra={"block_error": err, "baseline_error": self.complete_baseline.value})
        return self._blamed(f, x)

    def _blamed(self, f: Finding, x: np.ndarray) -> Finding:
        """A degraded finding names the features (or the pair) its rows blame."""
        complete = np.asarray(x, dtype=np.float64)
        complete = complete[~np.isnan(complete).any(axis=1)]
        if not f.degraded or complete.shape[0] < 2:
            return f
        blame = self.blame(complete)
        f.details.update(blame)
        return dataclasses.replace(f, summary=f"{f.summary}; blames: {blame['blames']}")

    def sequential_state(self) -> dict[str, Any]:
        return {} if self.alarm is None else {**self.alarm.state(), "pool": list(self._pool)}

    def load_sequential_state(self, state: dict[str, Any]) -> None:
        if self.alarm is not None and state:
            self.alarm.load_state(state)
            self._pool = [float(state["pool"][0]), int(state["pool"][1])]

    def change_effect(self, mean_error: float) -> float:
        """|mean / baseline - 1| of a change window's mean reconstruction error (complete rows)."""
        base = self.complete_baseline.value
        return abs(mean_error / base - 1.0) if base > 0 else float("inf") if mean_error > 0 else 0.0

    def evaluate(self, x: np.ndarray, window_end: float) -> Finding:
        value = self.window_error(x)
        f = evaluate_against(kind="multivariate_drift", detector="pca_reconstruction", subject="features",
                             value=value, baseline=self.baseline, n=int(x.shape[0]),
                             strategy=StdThreshold(self.k), direction="both", rng=(0.0, np.inf),
                             window_end=window_end, critical_factor=self.critical_factor,
                             label="PCA reconstruction error")
        assert f is not None
        return self._blamed(f, x)

    def state(self) -> dict[str, Any]:
        """Stateless between windows: the fit is a pure function of the reference."""
        return {"components": int(self.components.shape[0])}


def _correlation(z: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``z`` (a constant column correlates 0 with all)."""
    centred = z - z.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    norm = np.where(norm > 0, norm, np.inf)
    return np.asarray((centred.T @ centred) / np.outer(norm, norm))
