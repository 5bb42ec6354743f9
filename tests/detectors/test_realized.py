from __future__ import annotations

import json

import numpy as np

from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.realized import RealizedTracker


def _labels(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    return np.where(rng.random(p.size) < p, "1", "0").astype(object)


def _tracker(rng: np.random.Generator, **kw: float) -> RealizedTracker:
    s = rng.random(20_000)
    y, p = _labels(rng, s), np.where(s > 0.5, "1", "0").astype(object)
    estimator = CbpeEstimator(s, y, p, window=1000)
    return RealizedTracker(estimator, {"y_true": y, "y_pred": p, "score": s}, 1000, **kw)  # type: ignore[arg-type]


def test_realized_values_confirm_a_real_degradation_and_survive_a_restart() -> None:
    rng = np.random.default_rng(3)
    tracker = _tracker(rng, min_coverage=0.8)
    t = np.arange(1000.0)
    score = rng.random(1000)
    pred = np.where(score > 0.5, "1", "0").astype(object)
    truth = _labels(rng, 1 - score)  # the concept flipped: the scores now point the wrong way
    tracker.add_window(0.0, 999.0, 1000)
    assert tracker.observe(t[:300], truth[:300], pred[:300], score[:300]) == []
    restored = _tracker(np.random.default_rng(3), min_coverage=0.8)
    restored.load_state(json.loads(json.dumps(tracker.state())))
    a = tracker.observe(t[300:], truth[300:], pred[300:], score[300:])
    b = restored.observe(t[300:], truth[300:], pred[300:], score[300:])
    assert [(f.detector, f.statistic, f.degraded) for f in a] == [(f.detector, f.statistic, f.degraded) for f in b]
    by_metric = {f.detector: f for f in a}
    assert by_metric["accuracy"].degraded and by_metric["accuracy"].statistic < 0.4
    assert by_metric["accuracy"].details["source"] == "realized"
    assert by_metric["accuracy"].details["coverage"] == 0.8  # exactly the first 800 labels
    assert tracker.windows == []


def test_windows_waiting_for_labels_are_bounded() -> None:
    tracker = _tracker(np.random.default_rng(1), max_windows=3)
    for i in range(10):
        tracker.add_window(i * 10.0, i * 10.0 + 9, 10)
    assert [w.t0 for w in tracker.windows] == [70.0, 80.0, 90.0]


def test_labels_that_come_before_their_window_is_estimated_count_the_same() -> None:
    """A short label delay: outcomes read before the prediction window closed are not lost."""
    rng = np.random.default_rng(5)
    t = np.arange(1000.0)
    score = rng.random(1000)
    pred = np.where(score > 0.5, "1", "0").astype(object)
    truth = _labels(rng, score)
    late = _tracker(np.random.default_rng(1), min_coverage=0.9)
    late.add_window(0.0, 999.0, 1000)
    expected = late.observe(t, truth, pred, score)
    early = _tracker(np.random.default_rng(1), min_coverage=0.9)
    assert early.observe(t[:600], truth[:600], pred[:600], score[:600]) == []  # no window yet: they wait
    early.load_state(json.loads(json.dumps(early.state())))
    assert early.add_window(0.0, 999.0, 1000) == []
    got = early.observe(t[600:], truth[600:], pred[600:], score[600:])
    assert [(f.detector, f.statistic) for f in got] == [(f.detector, f.statistic) for f in expected] != []
