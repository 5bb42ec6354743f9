"""Sequential performance metrics (detectors/metric_cusum.py): spread, false alarms, detection, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftwarden.detectors.calibration import calibrate, calibrate_outcomes, siegmund_arl
from driftwarden.detectors.cusum import CusumAlarm
from driftwarden.detectors.metric_cusum import BlockMetrics, MetricCusum, block_spread
from driftwarden.detectors.metrics import METRICS

BLOCK = 500


def _labelled(rng: np.random.Generator, n: int, error: float = 0.2, flip_positive: float = 0.0) -> dict[str, np.ndarray]:
    """A calibrated-ish classifier: y_true ~ Bernoulli(score); y_pred = score > 0.5, a share of positives missed."""
    score = rng.beta(2, 3, n)
    y = rng.random(n) < score
    pred = (score > 0.5) & ~(y & (rng.random(n) < flip_positive))
    pred = np.where(rng.random(n) < error - 0.2, ~pred, pred) if error > 0.2 else pred
    lab = np.array(["0", "1"], dtype=object)
    return {"y_true": lab[y.astype(int)], "y_pred": lab[pred.astype(int)], "score": score}


def _metrics(c: dict[str, np.ndarray]) -> dict[str, float]:
    return {m: METRICS[m].fn(c["y_true"], c["y_pred"], c["score"], "1") for m in ("f1", "roc_auc")}


def test_block_spread_of_a_proportion_matches_the_binomial_standard_error() -> None:
    rng = np.random.default_rng(0)
    ref = {"x": (rng.random(40_000) < 0.3).astype(np.float64)}
    value, std = block_spread(lambda c: {"p": float(c["x"].mean())}, ref, BLOCK)["p"]
    assert std is not None
    exact = math.sqrt(value * (1 - value) / BLOCK)  # fpc undone: the infinite-population standard error
    assert abs(std / exact - 1) < 0.1  # 400 draws: ~3.5 % relative error


def test_block_spread_without_enough_reference_rows_has_none() -> None:
    ref = {"x": np.arange(600.0)}
    assert block_spread(lambda c: {"m": float(c["x"].mean())}, ref, BLOCK) == {"m": (299.5, None)}


def test_block_scores_are_at_most_standard_normal_under_no_change() -> None:
    """z of F1 and ROC AUC on healthy blocks: mean <= 0 and sd <= 1, and not wildly non-normal."""
    rng = np.random.default_rng(1)
    reference = _labelled(rng, 50_000)
    spreads = block_spread(_metrics, reference, BLOCK)
    cal = calibrate(1.0, BLOCK, 2)
    for name in ("f1", "roc_auc"):
        value, std = spreads[name]
        assert std is not None
        mc = MetricCusum(name, "performance", baseline=value, std=std, rows=50_000, block=BLOCK,
                         direction="decrease", calibration=cal)
        z = np.array([mc.z(_metrics(_labelled(rng, BLOCK))[name], BLOCK) for _ in range(1500)])
        assert z.mean() < 0.05, name
        assert z.std(ddof=1) < 1.0, name
        # the upper tail (what raises alarms) is no heavier than the normal's
        assert np.mean(z > 2.0) <= 1 - stats.norm.cdf(2.0) + 3 * math.sqrt(0.023 / 1500), name


def test_false_alarm_run_length_meets_siegmund_on_simulated_healthy_blocks() -> None:
    """The CUSUM of healthy F1 block scores, at an h for an ARL of 150 blocks, runs at least that long."""
    rng = np.random.default_rng(2)
    reference = _labelled(rng, 50_000)
    value, std = block_spread(_metrics, reference, BLOCK)["f1"]
    assert std is not None
    h = 3.3
    target = siegmund_arl(h, 0.5)
    assert 140 < target < 170
    mc = MetricCusum("f1", "performance", baseline=value, std=std, rows=50_000, block=BLOCK, direction="decrease",
                     calibration=calibrate(1.0, BLOCK, 1))
    # F1 of 60,000 healthy blocks, from multinomial confusion counts of the same classifier (fast)
    c = _labelled(rng, 400_000)
    t, p = c["y_true"] == "1", c["y_pred"] == "1"
    probs = np.array([np.mean(t & p), np.mean(~t & p), np.mean(t & ~p), np.mean(~t & ~p)])
    counts = rng.multinomial(BLOCK, probs, size=60_000)
    f1 = 2 * counts[:, 0] / (2 * counts[:, 0] + counts[:, 1] + counts[:, 2])
    z = [mc.z(float(v), BLOCK) for v in f1]
    runs, alarm, start = [], CusumAlarm(h), 0
    for i, zi in enumerate(z):
        if alarm.step(zi) >= h:
            runs.append(i + 1 - start)
            alarm, start = CusumAlarm(h), i + 1
    assert len(runs) >= 20
    assert np.mean(runs) >= target


def test_a_ten_percent_f1_drop_alarms_within_four_blocks_and_a_two_percent_one_never() -> None:
    rng = np.random.default_rng(3)
    reference = _labelled(rng, 50_000)
    cal = calibrate_outcomes(0.2, BLOCK, 2)
    bm = BlockMetrics(_metrics, reference, BLOCK, {"f1": "decrease", "roc_auc": "decrease"}, "performance", cal)
    # a 2 % drop with plenty of evidence per block: the CUSUM crosses h, the change is under the 5 % floor
    small = MetricCusum("f1", "performance", baseline=0.8, std=0.01, rows=50_000, block=BLOCK, direction="decrease",
                        calibration=cal)
    assert not any(small.judge(0.8 * 0.98, BLOCK, float(i)).degraded for i in range(400))
    assert small.alarm.s >= small.alarm.h
    first = None
    for i in range(20):
        bad = _labelled(rng, BLOCK, flip_positive=0.3)  # misses 30 % of positives: F1 falls well over 10 %
        fs = bm.observe(bad, np.full(BLOCK, float(i)))
        if first is None and any(f.degraded and f.detector == "f1" for f in fs):
            first = i + 1
    assert first is not None and first <= 4


def test_blocks_are_cut_by_count_however_rows_are_batched() -> None:
    rng = np.random.default_rng(4)
    reference = _labelled(rng, 20_000)
    cal = calibrate_outcomes(0.2, 200, 2)
    rows = _labelled(rng, 1_000, flip_positive=0.2)
    t = np.arange(1_000.0)

    def run(cuts: list[int]) -> list[tuple[float, float, bool]]:
        bm = BlockMetrics(_metrics, reference, 200, {"f1": "decrease", "roc_auc": "decrease"}, "performance", cal)
        out, prev = [], 0
        for cut in [*sorted(cuts), 1_000]:
            fs = bm.observe({k: v[prev:cut] for k, v in rows.items()}, t[prev:cut])
            out += [(f.window_end, f.statistic, f.degraded) for f in fs]
            prev = cut
        return out

    whole = run([])
    assert len(whole) == 10

    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.integers(0, 1_000), max_size=8))
    def same(cuts: list[int]) -> None:
        assert run(cuts) == whole

    same()


def test_state_round_trip_gives_the_same_next_findings() -> None:
    rng = np.random.default_rng(5)
    reference = _labelled(rng, 20_000)
    cal = calibrate_outcomes(0.2, 200, 2)
    make = lambda: BlockMetrics(_metrics, reference, 200, {"f1": "decrease", "roc_auc": "decrease"},  # noqa: E731
                                "performance", cal)
    a = make()
    first = _labelled(rng, 750, flip_positive=0.3)
    a.observe(first, np.arange(750.0))
    b = make()
    b.load_state(a.state())
    nxt = _labelled(rng, 450, flip_positive=0.3)
    fa = a.observe(nxt, np.arange(750.0, 1200.0))
    fb = b.observe(nxt, np.arange(750.0, 1200.0))
    assert [(f.statistic, f.degraded, f.details["change_window_value"]) for f in fa] == \
           [(f.statistic, f.degraded, f.details["change_window_value"]) for f in fb]
    assert len(fa) == 6  # 150 pending + 450: three blocks, two metrics


def test_rejects_a_two_sided_metric_and_a_zero_spread() -> None:
    cal = calibrate(1.0, BLOCK, 1)
    with pytest.raises(ValueError, match="direction"):
        MetricCusum("r", "performance", baseline=0.5, std=0.1, rows=10, block=BLOCK, direction="both", calibration=cal)
    with pytest.raises(ValueError, match="std > 0"):
        MetricCusum("r", "performance", baseline=0.5, std=0.0, rows=10, block=BLOCK, direction="decrease",
                    calibration=cal)


def test_severity_is_critical_at_twice_the_floor_of_relative_effect() -> None:
    cal = calibrate(budget=1.0, block=BLOCK, subjects=1)
    severities = {}
    for value in (0.74, 0.70):  # 7.5 % and 12.5 % worse than 0.8
        mc = MetricCusum("f1", "performance", baseline=0.8, std=0.02, rows=50_000, block=BLOCK,
                         direction="decrease", calibration=cal)
        found = [mc.judge(value, BLOCK, float(i)) for i in range(8)]
        severities[value] = found[-1].severity if found[-1].degraded else None
    assert severities == {0.74: "warning", 0.70: "critical"}
