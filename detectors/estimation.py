"""Label-free performance estimation for binary classifiers (CBPE, as in NannyML).

Calibration (on the reference): ``bins`` equal-count score bins, the observed
positive rate per bin, made non-decreasing by pool-adjacent-violators over the
bins (isotonic on binned data). A window's calibrated probabilities ``p`` and
its predicted labels give the expected confusion matrix: TP = sum p over
predicted positives, FP = sum (1 - p) over predicted positives, FN = sum p over
predicted negatives, hence expected accuracy and F1; expected ROC AUC is the
probability-weighted Mann-Whitney sum. Baselines are the same estimates on
the reference (so calibration bias cancels), judged by the threshold strategy.

Estimates are reported per prediction window with kind ``estimated_performance``;
once labels of a window arrive, the realized ``performance`` findings of the
outcome windows are the ones to trust (``details["source"] = "estimated"``).

>>> rng = np.random.default_rng(0)
>>> s = rng.random(20_000); y = np.where(rng.random(20_000) < s, "1", "0").astype(object)
>>> est = CbpeEstimator(s, y, np.where(s > 0.5, "1", "0").astype(object))
>>> round(est.expected(s[:5000], np.where(s[:5000] > 0.5, "1", "0").astype(object))["accuracy"], 2)
0.76
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from driftwarden.detectors.base import check_params, register, run_bounds
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.metrics import METRICS
from driftwarden.detectors.performance import Baseline, evaluate_against
from driftwarden.detectors.thresholds import StdThreshold, Threshold

ESTIMABLE = ("accuracy", "f1", "roc_auc")


def pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the closest non-decreasing sequence.

    >>> pav(np.array([0.1, 0.3, 0.2, 0.5]), np.ones(4)).round(2).tolist()
    [0.1, 0.25, 0.25, 0.5]
    """
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            tw = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / tw if tw else (v1 + v2) / 2, tw, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks])


def expected_auc(ps: np.ndarray, s: np.ndarray) -> float:
    """Expected ROC AUC of calibrated probabilities ``ps`` of the ascending scores ``s``.

    The probability-weighted Mann-Whitney sum: each event is positive with
    probability p and negative with 1 - p; tied scores count one half. p is a
    non-decreasing function of the score (the calibration is monotone), so the
    caller sorts the scores and calibrates them, not events by their scores.

    >>> # pairs (lower, higher): p_high q_low, halved both ways for the tie: 3.06 / (1.6 * 2.4 - 0.52)
    >>> round(expected_auc(np.array([0.1, 0.1, 0.5, 0.9]), np.array([0.2, 0.2, 0.6, 0.8])), 4)
    0.9217
    """
    q = 1.0 - ps
    cq = np.concatenate(([0.0], np.cumsum(q)))
    right, left = run_bounds(s)  # each score's run of ties: O(n), not two searches
    below = cq[left]
    ties = cq[right] - cq[left] - q
    num = float(np.sum(ps * (below + 0.5 * ties)))
    den = float(ps.sum() * q.sum() - np.sum(ps * q))
    return num / den if den > 0 else float("nan")


@register("cbpe")
class CbpeEstimator:
    """Expected accuracy/F1/ROC AUC of a binary classifier from calibrated scores."""

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {"bins": (2, 10_000), "window": (1, 1e9)}

    def __init__(self, score: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, positive: str = "1",
                 bins: int = 20, metrics: list[str] | None = None, window: int = 5000,
                 threshold: Threshold | None = None, critical_factor: float = 2.0) -> None:
        check_params(type(self).__name__, self.param_ranges, {"bins": bins, "window": window})
        self.metrics = list(metrics or ESTIMABLE)
        bad = [m for m in self.metrics if m not in ESTIMABLE]
        if bad:
            raise ValueError(f"CBPE cannot estimate {bad}; allowed: {list(ESTIMABLE)}")
        self.positive = positive
        ok = ~np.isnan(score)
        s, y = score[ok], (y_true[ok] == positive).astype(np.float64)
        edges = np.unique(np.quantile(s, np.arange(1, bins) / bins)) if s.size else np.empty(0)
        idx = np.searchsorted(edges, s, side="left")
        counts = np.bincount(idx, minlength=edges.size + 1)
        pos = np.bincount(idx, weights=y, minlength=edges.size + 1)
        rate = np.divide(pos, counts, out=np.full(counts.shape, 0.5), where=counts > 0)
        self.edges = edges
        self.calibrated = pav(rate, counts.astype(np.float64))
        self.threshold = threshold or StdThreshold(3.0)
        self.critical_factor = critical_factor
        ref = {"score": score[ok], "y_pred": y_pred[ok]}
        # the baselines of all metrics draw the same subsamples: compute each subsample's
        # estimates once (a third of the start-up time otherwise)
        self._memo: dict[bytes, dict[str, float]] = {}
        self.baselines = {m: Baseline(self._metric_fn(m), ref, window) for m in self.metrics}
        self._memo.clear()

    def _metric_fn(self, metric: str) -> Callable[[dict[str, np.ndarray]], float]:
        def fn(c: dict[str, np.ndarray]) -> float:
            key = hashlib.blake2b(c["score"].tobytes(), digest_size=16).digest()
            if key not in self._memo:
                self._memo[key] = self.expected(c["score"], c["y_pred"])
            return self._memo[key][metric]

        return fn

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        return self.calibrated[np.searchsorted(self.edges, score, side="left")]

    def expected(self, score: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        ok = ~np.isnan(score)
        present = score[ok]
        p = self.calibrate(present)
        pred_pos = y_pred[ok] == self.positive
        tp, fp, fn = float(p[pred_pos].sum()), float((1 - p[pred_pos]).sum()), float(p[~pred_pos].sum())
        n = p.size
        ordered = np.sort(present)
        return {"accuracy": (tp + float((1 - p[~pred_pos]).sum())) / n if n else float("nan"),
                "f1": 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) > 0 else float("nan"),
                "roc_auc": expected_auc(self.calibrate(ordered), ordered) if n else float("nan")}

    def evaluate(self, score: np.ndarray, y_pred: np.ndarray, window_end: float) -> list[Finding]:
        values = self.expected(score, y_pred)
        n = int(np.sum(~np.isnan(score)))
        out = []
        for m in self.metrics:
            meta = METRICS[m]
            f = evaluate_against(kind="estimated_performance", detector=m, subject=m, value=values[m],
                                 baseline=self.baselines[m], n=n, strategy=self.threshold,
                                 direction=meta.direction, rng=meta.range, window_end=window_end,
                                 critical_factor=self.critical_factor, label=f"estimated {m}")
            if f is not None:
                f.details["source"] = "estimated"
                out.append(f)
        return out

    def state(self) -> dict[str, Any]:
        """Stateless between windows: calibration is a pure function of the reference."""
        return {"edges": self.edges.tolist(), "calibrated": self.calibrated.tolist()}
