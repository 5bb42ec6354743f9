"""From estimated to realized: CBPE's windows get their real numbers as labels arrive.

Every prediction window that CBPE estimated is remembered by its event-time range.
Joined outcomes are assigned to the window that holds their prediction's timestamp;
once a window's labelled share reaches ``min_coverage`` the realized accuracy, F1
and ROC AUC of exactly its first ``ceil(min_coverage * n)`` labels are judged
with the estimate's threshold rule against the realized metric's reference baseline
and reported under the same key (kind ``estimated_performance``, ``details["source"] =
"realized"``), so an alert raised on an estimate is confirmed or cleared by the truth.
At most ``max_windows`` windows wait for labels (oldest dropped: bounded memory).
Labels that come before their prediction's window is estimated (a short label
delay) wait for it, so which labels a window judges does not depend on whether
the outcomes or the predictions were read first.

>>> rng = np.random.default_rng(0)
>>> s = rng.random(20_000); y = np.where(rng.random(20_000) < s, "1", "0").astype(object)
>>> p = np.where(s > 0.5, "1", "0").astype(object)
>>> est = CbpeEstimator(s, y, p, window=1000)
>>> tracker = RealizedTracker(est, {"y_true": y, "y_pred": p, "score": s}, window=1000, min_coverage=0.9)
>>> t = np.arange(1000.0); ws = rng.random(1000); wp = np.where(ws > 0.5, "1", "0").astype(object)
>>> tracker.add_window(t[0], t[-1], 1000)  # no label came early for it
[]
>>> wy = np.where(rng.random(1000) < ws, "1", "0").astype(object)
>>> tracker.observe(t[:500], wy[:500], wp[:500], ws[:500])  # half labelled: not yet
[]
>>> [(f.detector, f.details["source"], f.degraded) for f in tracker.observe(t[500:], wy[500:], wp[500:], ws[500:])]
[('accuracy', 'realized', False), ('f1', 'realized', False), ('roc_auc', 'realized', False)]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from driftwarden.detectors.base import check_params, register
from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.metrics import METRICS
from driftwarden.detectors.performance import Baseline, evaluate_against


class _Window:
    def __init__(self, t0: float, t1: float, n: int) -> None:
        self.t0, self.t1, self.n = t0, t1, n
        self.y_true: list[Any] = []
        self.y_pred: list[Any] = []
        self.score: list[float] = []
        self.last_label = -math.inf  # event time of the latest label judged (its outcome's time)

    def needed(self, coverage: float) -> int:
        """Labels judged: exactly the first ``ceil(coverage * n)`` to arrive (independent of batching)."""
        return max(1, math.ceil(coverage * self.n - 1e-9))


@register("cbpe_realized")
class RealizedTracker:
    """Labels matched to CBPE's estimated windows; realized values under the estimate's key."""

    param_ranges: ClassVar[dict[str, tuple[float, float]]] = {"min_coverage": (1e-9, 1.0), "max_windows": (1, 1e6)}

    def __init__(self, estimator: CbpeEstimator, reference: dict[str, np.ndarray], window: int,
                 min_coverage: float = 0.9, max_windows: int = 20) -> None:
        check_params(type(self).__name__, self.param_ranges,
                     {"min_coverage": min_coverage, "max_windows": max_windows})
        self.estimator = estimator
        # Realized values carry the labels' sampling noise, which the estimate's (smooth) spread
        # does not: they are judged against the realized metric's spread over reference chunks.
        self.baselines = {m: Baseline(self._metric(m), reference, window) for m in estimator.metrics}
        self.min_coverage = min_coverage
        self.max_windows = max_windows
        self.windows: list[_Window] = []  # in event-time order
        self.window = window
        # labels of predictions after the last estimated window, in arrival order:
        # (prediction time, y_true, y_pred, score, outcome time)
        self._early: list[tuple[float, Any, Any, float, float]] = []

    def _metric(self, name: str) -> Callable[[dict[str, np.ndarray]], float]:
        fn, pos = METRICS[name].fn, self.estimator.positive
        return lambda c: fn(c["y_true"], c["y_pred"], c["score"], pos)

    def add_window(self, t0: float, t1: float, n: int) -> list[Finding]:
        """A prediction window CBPE just estimated: ``n`` predictions between ``t0`` and ``t1``.

        Labels that arrived before it for its predictions are its first; the realized
        findings if they already cover it.
        """
        window = _Window(float(t0), float(t1), int(n))
        self.windows.append(window)
        del self.windows[: max(0, len(self.windows) - self.max_windows)]
        needed = window.needed(self.min_coverage)
        early = self._early
        self._early = [row for row in early if row[0] > window.t1]  # still ahead of every estimated window
        taken = [row for row in early if window.t0 <= row[0] <= window.t1][:needed]  # the first to arrive
        if taken:
            _, y_true, y_pred, score, label_t = zip(*taken, strict=True)
            window.y_true.extend(y_true)
            window.y_pred.extend(y_pred)
            window.score.extend(score)
            window.last_label = max(window.last_label, *label_t)
        if len(window.y_true) >= needed:
            self.windows.remove(window)
            return self._realized(window)
        return []

    def observe(self, prediction_t: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                score: np.ndarray | None, outcome_t: np.ndarray | None = None) -> list[Finding]:
        """Assign joined outcomes to their windows; realized findings of windows now covered.

        ``outcome_t`` (the outcomes' event times) dates the realized verdicts: a window's
        is known from the time of the label that covered it.
        """
        if score is None or prediction_t.size == 0:
            return []
        if outcome_t is None:
            outcome_t = prediction_t
        last = self.windows[-1].t1 if self.windows else -np.inf
        ahead = np.flatnonzero(prediction_t > last)
        if ahead.size:  # their window is not estimated yet
            self._early.extend(zip(prediction_t[ahead].tolist(), y_true[ahead].tolist(), y_pred[ahead].tolist(),
                                   score[ahead].tolist(), outcome_t[ahead].tolist(), strict=True))
            del self._early[: max(0, len(self._early) - 2 * self.window)]
        if not self.windows:
            return []
        starts = np.array([w.t0 for w in self.windows])
        idx = np.searchsorted(starts, prediction_t, side="right") - 1
        out: list[Finding] = []
        done: list[_Window] = []
        for i in np.unique(idx[idx >= 0]).tolist():
            window = self.windows[i]
            rows = np.flatnonzero((idx == i) & (prediction_t <= window.t1))
            rows = rows[: max(0, window.needed(self.min_coverage) - len(window.y_true))]
            window.y_true.extend(y_true[rows].tolist())
            window.y_pred.extend(y_pred[rows].tolist())
            window.score.extend(score[rows].tolist())
            if rows.size:
                window.last_label = max(window.last_label, float(outcome_t[rows].max()))
            if len(window.y_true) >= window.needed(self.min_coverage):
                out.extend(self._realized(window))
                done.append(window)
        self.windows = [w for w in self.windows if w not in done]
        return out

    def _realized(self, window: _Window) -> list[Finding]:
        est = self.estimator
        yt = np.array(window.y_true, dtype=object)
        yp = np.array(window.y_pred, dtype=object)
        s = np.array(window.score, dtype=np.float64)
        out = []
        for m in est.metrics:
            meta = METRICS[m]
            value = meta.fn(yt, yp, s, est.positive)
            f = evaluate_against(kind="estimated_performance", detector=m, subject=m, value=value,
                                 baseline=self.baselines[m], n=len(yt), strategy=est.threshold,
                                 direction=meta.direction, rng=meta.range, window_end=window.t1,
                                 critical_factor=est.critical_factor, label=f"realized {m}")
            if f is not None:
                if window.last_label > window.t1:
                    f = dataclasses.replace(f, known_at=window.last_label)
                f.details.update(source="realized", coverage=round(len(yt) / max(window.n, 1), 4),
                                 window_start=window.t0)
                out.append(f)
        return out

    def state(self) -> dict[str, Any]:
        return {"windows": [{"t0": w.t0, "t1": w.t1, "n": w.n, "y_true": w.y_true, "y_pred": w.y_pred,
                             "score": w.score, "last_label": w.last_label if math.isfinite(w.last_label) else None}
                            for w in self.windows], "early": [list(r) for r in self._early]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.windows = []
        for d in state.get("windows", []):
            w = _Window(d["t0"], d["t1"], d["n"])
            w.y_true, w.y_pred, w.score = list(d["y_true"]), list(d["y_pred"]), list(d["score"])
            w.last_label = -math.inf if d.get("last_label") is None else float(d["last_label"])
            self.windows.append(w)
        self._early = [(float(r[0]), r[1], r[2], float(r[3]), float(r[4])) for r in state.get("early", [])]
