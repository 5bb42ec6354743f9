from __future__ import annotations

import copy
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.realized import RealizedTracker, _Window


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


def _add_window_per_row(tracker: RealizedTracker, t0: float, t1: float, n: int) -> list[Finding]:
    """add_window as it was written before it was vectorized: one row at a time (the reference)."""
    window = _Window(float(t0), float(t1), int(n))
    tracker.windows.append(window)
    del tracker.windows[: max(0, len(tracker.windows) - tracker.max_windows)]
    early, tracker._early = tracker._early, []
    for row in early:
        if row[0] > window.t1:
            tracker._early.append(row)
        elif row[0] >= window.t0 and len(window.y_true) < window.needed(tracker.min_coverage):
            window.y_true.append(row[1])
            window.y_pred.append(row[2])
            window.score.append(row[3])
            window.last_label = max(window.last_label, row[4])
    if len(window.y_true) >= window.needed(tracker.min_coverage):
        tracker.windows.remove(window)
        return tracker._realized(window)
    return []


_TEMPLATE = _tracker(np.random.default_rng(0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.floats(0, 1), st.integers(0, 60)), max_size=60),
       st.integers(0, 30), st.integers(1, 40), st.integers(1, 30), st.sampled_from([0.3, 0.9, 1.0]))
def test_add_window_matches_the_per_row_loop(rows: list[tuple[int, bool, float, int]], t0: int, span: int,
                                             n: int, coverage: float) -> None:
    fast, slow = (copy.deepcopy(_TEMPLATE) for _ in range(2))
    fast.min_coverage = slow.min_coverage = coverage
    early = [(float(t), "1" if y else "0", "1" if s > 0.5 else "0", s, float(t + lag)) for t, y, s, lag in rows]
    fast._early, slow._early = list(early), list(early)
    got, expected = fast.add_window(t0, t0 + span, n), _add_window_per_row(slow, t0, t0 + span, n)
    assert [(f.detector, f.statistic, f.window_end, f.degraded) for f in got] == [
        (f.detector, f.statistic, f.window_end, f.degraded) for f in expected]
    assert fast._early == slow._early
    assert [(w.t0, w.y_true, w.y_pred, w.score, w.last_label) for w in fast.windows] == [
        (w.t0, w.y_true, w.y_pred, w.score, w.last_label) for w in slow.windows]
