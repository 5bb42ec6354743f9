"""Sequential accuracy: the Bernoulli CUSUM, its calibrated threshold, delays, false alarms, segments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.detectors.cusum import BernoulliCusum, alternative_rate, average_run_length, threshold_for
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.performance_cusum import SequentialAccuracy
from driftwarden.detectors.settings import PerformanceSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={"plan": FeatureSpec("categorical"), "country": FeatureSpec("categorical")})


def _rows(rng: np.random.Generator, n: int, error: float = 0.15, pro_error: float | None = None):
    plan = rng.choice(["basic", "pro", "enterprise"], n, p=[0.55, 0.35, 0.10]).astype(object)
    country = rng.choice(list("ABCDE"), n, p=[0.3, 0.2, 0.3, 0.1, 0.1]).astype(object)
    y_true = rng.choice(["0", "1"], n).astype(object)
    p = np.where(plan == "pro", error if pro_error is None else pro_error, error)
    y_pred = np.where(rng.random(n) < p, np.where(y_true == "1", "0", "1"), y_true).astype(object)
    return y_true, y_pred, {"plan": plan, "country": country}


REF = _rows(np.random.default_rng(99), 20_000)


def test_cusum_steps_are_the_log_likelihood_ratios() -> None:
    p1 = alternative_rate(0.1, 2.0)
    assert p1 == pytest.approx(0.2 / 1.1)  # odds 1/9 doubled: 2/9 -> 2/11
    a, c = math.log(p1 / 0.1), math.log((1 - p1) / 0.9)
    cs = BernoulliCusum(0.1, 2.0, h=3.0)
    assert cs.update(np.array([1.0, 1.0, 0.0, 1.0])) == pytest.approx([a, 2 * a, 2 * a + c, 3 * a + c])
    assert cs.update(np.zeros(100))[-1] == 0.0  # held at 0, never below
    held = BernoulliCusum(0.1, 2.0, h=3.0)
    assert held.update(np.ones(10), ceiling=1.0).max() == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300), st.lists(st.integers(1, 50), max_size=8),
       st.sampled_from([math.inf, 1.5]))
def test_vectorized_cusum_equals_the_recursion_for_any_split(errors: list[bool], cuts: list[int],
                                                             ceiling: float) -> None:
    x = np.array(errors, dtype=float)
    whole = BernoulliCusum(0.2, 2.0, h=2.0)
    expected, level = [], 0.0
    for e in x:
        level = min(ceiling, max(0.0, level + (whole.a if e else whole.c)))
        expected.append(level)
    parts = BernoulliCusum(0.2, 2.0, h=2.0)
    got: list[float] = []
    bounds = sorted({0, len(x), *[min(c, len(x)) for c in np.cumsum(cuts).tolist()]})
    for lo, hi in itertools.pairwise(bounds):
        got += parts.update(x[lo:hi], ceiling).tolist()
    assert got == pytest.approx(expected, abs=1e-9)


def test_average_run_length_matches_simulation() -> None:
    """The Markov chain's in-control run length against 1,500 simulated runs (seeded)."""
    p0 = 0.15
    p1 = alternative_rate(p0, 2.0)
    arl = average_run_length(p0, p1, 2.5)
    rng = np.random.default_rng(3)
    runs = []
    for _ in range(1500):
        cs, n = BernoulliCusum(p0, 2.0, 2.5), 0
        while True:
            path = cs.update((rng.random(2000) < p0).astype(float))
            hit = np.flatnonzero(path > 2.5)
            if hit.size:
                runs.append(n + int(hit[0]) + 1)
                break
            n += 2000
    mean, se = float(np.mean(runs)), float(np.std(runs) / np.sqrt(len(runs)))
    assert abs(mean - arl) < 4 * se, (mean, arl, se)


def test_threshold_is_the_smallest_that_meets_the_budget() -> None:
    p1 = alternative_rate(0.15, 2.0)
    h = threshold_for(0.15, p1, 1e6)
    assert average_run_length(0.15, p1, h) >= 1e6 > average_run_length(0.15, p1, round(h - 0.01, 2))


def test_threshold_search_stops_where_the_chain_is_flat() -> None:
    """Two secant points of one discretized chain (same run length): no step to h in the millions
    (a 20-feature model of bench/models.py failed to start with a math domain error)."""
    p0 = 0.3011945607920339
    p1 = alternative_rate(p0, 2.0)
    h = threshold_for(p0, p1, 5e6)
    assert average_run_length(p0, p1, h) >= 5e6 > average_run_length(p0, p1, round(h - 0.01, 2))


def _first_alert(seq: SequentialAccuracy, rows, after: int = 0) -> tuple[int | None, Finding | None]:
    """Outcomes from the change until the lifecycle (default for_windows=2) fires, and the finding."""
    y_true, y_pred, feats = rows
    t = np.arange(len(y_true), dtype=float)
    lc = AlertLifecycle(for_windows=2)
    for f in seq.observe(y_true, y_pred, feats, t):
        fired = [a for a in lc.update("m", {}, [f], now=f.window_end) if a.state == "firing"]
        if fired:
            return int(f.window_end) + 1 - after, f
    return None, None


def test_performance_fault_is_alerted_within_1000_outcomes_and_names_no_segment() -> None:
    rng = np.random.default_rng(1)
    delays = []
    for _ in range(10):
        seq = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
        delay, f = _first_alert(seq, _rows(rng, 3000, error=0.25))  # accuracy 0.85 -> 0.75
        assert delay is not None and f is not None
        delays.append(delay)
    assert max(delays) <= 1000, delays


def test_a_fault_in_one_segment_is_caught_and_named_on_the_alert() -> None:
    rng = np.random.default_rng(2)
    seq = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    assert not any(f.degraded for f in seq.observe(*_rows(rng, 5000)[:2], _rows(rng, 5000)[2], np.arange(5000.0)))
    y_true, y_pred, feats = _rows(rng, 3000, pro_error=0.4)  # pro: accuracy 0.85 -> 0.6; 35% of traffic
    lc = AlertLifecycle(for_windows=2)
    fired = []
    for f in seq.observe(y_true, y_pred, feats, 5000 + np.arange(3000.0)):
        fired += [a for a in lc.update("m", {}, [f], now=f.window_end) if a.state == "firing"]
        if fired:
            assert f.details["segment"] == "plan=pro" and f.details["segment_p_holm"] < 0.05
            assert f.details["segment_baseline"] - f.details["segment_accuracy"] > 0.1
            assert "worst segment plan=pro" in f.summary
            break
    assert fired and fired[0].labels["segment"] == "plan=pro"
    assert fired[0].starts_at - 5000 <= 1000


def test_no_drift_stays_quiet_and_recovery_clears() -> None:
    rng = np.random.default_rng(4)
    seq = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    verdicts = []
    for _ in range(20):  # 200,000 healthy outcomes: expected false alarms 0.2 per million
        verdicts += seq.observe(*_rows(rng, 10_000)[:2], _rows(rng, 10_000)[2], np.arange(10_000.0))
    assert len(verdicts) == 2000 and not any(f.degraded for f in verdicts)
    bad = seq.observe(*_rows(rng, 2000, error=0.4)[:2], _rows(rng, 2000)[2], np.arange(2000.0))
    assert bad[-1].degraded
    healed = seq.observe(*_rows(rng, 5000)[:2], _rows(rng, 5000)[2], np.arange(5000.0))
    assert not healed[-1].degraded and "segment" not in healed[-1].details


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6), st.integers(0, 3))
def test_verdicts_do_not_depend_on_batching(cuts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred, feats = _rows(rng, 1500, pro_error=0.45)
    t = np.arange(1500.0)
    whole = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    expected = [f.to_dict() for f in whole.observe(y_true, y_pred, feats, t)]
    parts = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    got = []
    bounds = sorted({0, 1500, *[min(c, 1500) for c in np.cumsum(cuts).tolist()]})
    for lo, hi in itertools.pairwise(bounds):
        got += [f.to_dict() for f in parts.observe(y_true[lo:hi], y_pred[lo:hi],
                                                   {k: v[lo:hi] for k, v in feats.items()}, t[lo:hi])]
    assert got == expected


def test_state_round_trip_gives_the_same_next_verdicts() -> None:
    rng = np.random.default_rng(6)
    first, second = _rows(rng, 1234, pro_error=0.4), _rows(rng, 1000, pro_error=0.4)
    a = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    a.observe(*first, np.arange(1234.0))
    b = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    b.load_state(a.state())
    t = 1234 + np.arange(1000.0)
    assert [f.to_dict() for f in b.observe(*second, t)] == [f.to_dict() for f in a.observe(*second, t)]


def test_the_recent_outcomes_are_a_byte_an_error_and_hold_no_batch_alive() -> None:
    """The last KEEP outcomes that name a segment: 0/1 errors as bytes (float64: 40 KB a model), in
    arrays claimed at construction (not views of the batch they came with, not grown as outcomes
    come); a checkpoint round trip gives the same verdicts."""
    from driftwarden.detectors.performance_cusum import KEEP

    rng = np.random.default_rng(5)
    seq = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    claimed = {k: v.base for k, v in seq._recent.columns().items()}
    assert all(v.size == KEEP and v.base is None for v in claimed.values())
    yt, yp, feats = _rows(rng, 3 * KEEP, pro_error=0.4)
    seq.observe(yt, yp, feats, np.arange(3.0 * KEEP))
    kept = seq._recent.columns()
    assert kept["errors"].dtype == np.uint8 and kept["errors"].size == KEEP
    assert all(v.base is claimed[k] for k, v in kept.items())  # the same arrays as at construction
    assert kept["times"].tolist() == np.arange(2.0 * KEEP, 3.0 * KEEP).tolist()
    twin = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
    twin.load_state(seq.state())
    yt, yp, feats = _rows(rng, 2000, pro_error=0.4)
    t = 3.0 * KEEP + np.arange(2000.0)
    assert [f.details for f in seq.observe(yt, yp, feats, t)] == [f.details for f in twin.observe(yt, yp, feats, t)]


def test_severity_follows_the_relative_effect_like_every_other_metric() -> None:
    """A degraded verdict is critical exactly when its accuracy is 10 % or more worse than its
    baseline, the rule of F1 and ROC AUC: 0.85 -> 0.65 (24 % worse) ends critical. (The CUSUM's
    own alternative made 0.739 -> 0.498 a warning while F1 was critical in the same fault.)"""
    seen = set()
    for error in (0.35, 0.21):
        rng = np.random.default_rng(5)
        seq = SequentialAccuracy(SPEC, *REF, PerformanceSettings())
        y_true, y_pred, feats = _rows(rng, 6000, error=error)
        verdicts = [f for f in seq.observe(y_true, y_pred, feats, np.arange(6000.0)) if f.degraded]
        assert verdicts, error
        for f in verdicts:
            d = f.details
            value, base = d["accuracy_since_change"], d["baseline"]
            if d["leading"] != "all" and "segment_accuracy" in d:  # a segment's CUSUM leads: its numbers
                value, base = d["segment_accuracy"], d["segment_baseline"]
            assert f.severity == ("critical" if (base - value) / base >= 0.10 else "warning"), (error, d)
            seen.add(f.severity)
        if error == 0.35:
            assert verdicts[-1].severity == "critical"
    assert seen == {"critical", "warning"}
