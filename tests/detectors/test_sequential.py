"""Sequential drift: CUSUM arithmetic, its calibration, and the monitor's sequential findings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, norm

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.calibration import MIN_PREDICTIONS_PER_FALSE_ALARM, calibrate, siegmund_arl, threshold_for_arl
from driftwarden.detectors.drift import sparse_chi_square_p
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.sequential import Z_MAX, CusumAlarm, z_score
from tests.detectors.conftest import feed_predictions, make_outcomes, make_spec

REF = make_outcomes(np.random.default_rng(7), 20_000)
SEQUENTIAL_KINDS = ("data_drift", "prediction_drift", "multivariate_drift")


def test_cusum_exact_values_on_known_scores() -> None:
    alarm = CusumAlarm(h=3.0, k=0.5)
    path = []
    for z in (1.0, 2.0, -4.0, 0.5, 3.0, 2.5, 9.0, -1.0):
        path.append((alarm.update(z, effect=1.0, floor=0.5), round(alarm.s, 10), alarm.run))
    # S = max(0, S + z - 0.5), capped at 2h = 6; run = blocks since S was last <= h/2 = 1.5
    assert path == [(False, 0.5, 1), (False, 2.0, 1), (False, 0.0, 2), (False, 0.0, 1),
                    (False, 2.5, 1), (True, 4.5, 2), (True, 6.0, 3), (True, 4.5, 4)]


def test_effect_floor_gates_raising_and_the_alarm_holds_while_s_is_past_h() -> None:
    alarm = CusumAlarm(h=3.0, k=0.5)
    assert [alarm.update(4.0, effect=0.05, floor=0.1) for _ in range(3)] == [False, False, False]
    assert alarm.s == 6.0  # evidence piles up, but the change is too small to matter
    assert alarm.update(4.0, effect=0.2, floor=0.1)  # it became relevant
    assert alarm.update(-2.0, effect=0.01, floor=0.1)  # S = 3.5 >= h: held, whatever the effect
    assert not alarm.update(-2.0, effect=0.5, floor=0.1)  # S = 1.0 < h: cleared
    assert not alarm.update(2.5, effect=0.05, floor=0.1)  # S = 3.0 again, effect below the floor


def test_z_score_is_the_normal_quantile_clipped() -> None:
    p = np.array([0.5, 0.05, 0.001, 1e-12, 1e-300, 0.0, 0.9, 1.0])
    expected = np.clip(norm.isf(p), -Z_MAX, Z_MAX)
    assert np.allclose(z_score(p), expected, rtol=1e-12, atol=0)


def test_siegmund_matches_published_arl_values() -> None:
    # Brook and Evans (1972) / Montgomery's table: k = 0.5, h = 4 -> ARL0 336, ARL(1 sd) 8.38; h = 5 -> 930, 10.4
    assert siegmund_arl(4.0, 0.5) == pytest.approx(336, rel=0.01)
    assert siegmund_arl(4.0, 0.5, mu=1.0) == pytest.approx(8.38, rel=0.01)
    assert siegmund_arl(5.0, 0.5) == pytest.approx(930, rel=0.01)
    assert siegmund_arl(5.0, 0.5, mu=1.0) == pytest.approx(10.4, rel=0.02)
    assert threshold_for_arl(siegmund_arl(7.25)) == pytest.approx(7.25, abs=1e-8)


def _run_lengths(h: float, k: float, runs: int, seed: int, mu: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.zeros(runs)
    length = np.zeros(runs, dtype=np.int64)
    live = np.ones(runs, dtype=bool)
    step = 0
    while live.any():
        step += 1
        s[live] = np.maximum(0.0, s[live] + rng.normal(mu, 1.0, int(live.sum())) - k)
        done = live & (s >= h)
        length[done] = step
        live &= ~done
    return length


@pytest.mark.parametrize("arl", [150.0, 600.0])
def test_calibrated_threshold_meets_its_arl_by_simulation(arl: float) -> None:
    h = threshold_for_arl(arl)
    lengths = _run_lengths(h, 0.5, 3000, seed=int(arl))
    standard_error = lengths.std() / np.sqrt(lengths.size)
    assert abs(lengths.mean() - arl) < 4 * standard_error + 0.02 * arl, (lengths.mean(), arl)


def test_calibration_reads_the_budget_at_the_models_traffic() -> None:
    c = calibrate(budget=1.0, block=500, subjects=10, rate=100.0)
    assert c.predictions_per_false_alarm == pytest.approx(100.0 * 30 * 86_400)
    assert c.arl_per_subject == pytest.approx(100.0 * 30 * 86_400 / 500 * 10)
    assert siegmund_arl(c.h) == pytest.approx(c.arl_per_subject, rel=1e-9)
    twice = calibrate(budget=2.0, block=500, subjects=10, rate=100.0)
    assert twice.h < c.h and twice.predictions_per_false_alarm == pytest.approx(c.predictions_per_false_alarm / 2)
    slow = calibrate(budget=1.0, block=500, subjects=10, rate=0.01)  # 26k predictions a month
    unknown = calibrate(budget=1.0, block=500, subjects=10)
    assert slow.predictions_per_false_alarm == unknown.predictions_per_false_alarm == MIN_PREDICTIONS_PER_FALSE_ALARM
    assert (slow.rate_source, unknown.rate_source) == ("configured", "unknown")
    with pytest.raises(ValueError, match="false_alarm_budget"):
        calibrate(budget=0.0, block=500, subjects=3)


def test_sparse_chi_square_merges_rare_bins_like_scipy_on_the_merged_table() -> None:
    ref = np.array([6000, 3000, 500, 12, 8, 4, 0])
    cur = np.array([290, 160, 30, 3, 0, 1, 16])
    p = sparse_chi_square_p(ref, cur)
    # rare at 500: expected 0.6, 0.4, 0.2 -> one bin; the unseen bin (reference 0) stays apart
    merged = np.array([[6000, 3000, 500, 24, 0], [290, 160, 30, 4, 16]])
    assert p == pytest.approx(chi2_contingency(merged, correction=False)[1], rel=1e-9)
    assert sparse_chi_square_p(ref[:3], cur[:3]) == pytest.approx(
        chi2_contingency(np.vstack([ref[:3], cur[:3]]), correction=False)[1], rel=1e-9)


def _stream(rng: np.random.Generator, n: int, t0: float, shift: float = 0.0) -> OutcomeBatch:
    return make_outcomes(rng, n, shift=shift, t0=t0)


def _keyed(findings: list[Finding]) -> list[tuple]:
    """Comparable findings, in (time, key) order: a poll's findings of different windows interleave by split."""
    findings = sorted(findings, key=lambda f: (f.window_end, f.kind, f.detector, f.subject))
    return [(f.kind, f.detector, f.subject, f.statistic, f.threshold, f.degraded, f.window_end, f.window_size,
             f.p_value, json.dumps(f.details, sort_keys=True)) for f in findings]


_split_feed = feed_predictions


def _concat(a: OutcomeBatch, b: OutcomeBatch) -> OutcomeBatch:
    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return OutcomeBatch(np.concatenate([a.timestamps, b.timestamps]),
                        np.concatenate([a.prediction_timestamps, b.prediction_timestamps]),
                        np.concatenate([a.y_true, b.y_true]), np.concatenate([a.y_pred, b.y_pred]),
                        cat(a.score, b.score), {k: np.concatenate([a.features[k], b.features[k]]) for k in a.features})


DATA = _concat(_stream(np.random.default_rng(3), 2600, 0.0), _stream(np.random.default_rng(4), 2400, 2600.0, 0.4))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 4999), max_size=12))
def test_streaming_equals_batch_for_any_split(cuts: list[int]) -> None:
    spec = make_spec(5000)
    whole = _split_feed(ModelMonitor("m", spec, REF), DATA, [])
    parts = _split_feed(ModelMonitor("m", spec, REF), DATA, cuts)
    assert _keyed(parts) == _keyed(whole)
    assert any(f.degraded and f.kind == "data_drift" for f in whole)  # the invariant is not about silence


def test_state_round_trip_mid_change_gives_identical_next_findings() -> None:
    spec = make_spec(5000)
    live = ModelMonitor("m", spec, REF)
    _split_feed(live, DATA, [2800, 3170])  # stops in the middle of a block, with the CUSUMs rising
    state = json.loads(json.dumps(live.state(), allow_nan=False))
    assert any(v["s"] > 0 for v in state["sequential"]["drift"].values())
    rebuilt = ModelMonitor("m", spec, REF)
    rebuilt.load_state(state)
    more = _stream(np.random.default_rng(5), 2000, 5000.0, 0.4)
    assert _keyed(_split_feed(live, more, [])) == _keyed(_split_feed(rebuilt, more, [777]))


def _fired(mon: ModelMonitor, data: OutcomeBatch, change_at: float) -> list[tuple[int, str]]:
    """(predictions after the change, alert key) of every alert that went firing, with for_windows 2."""
    lc = AlertLifecycle(for_windows=2)
    out = []
    for a in range(0, len(data), 1000):
        b = min(a + 1000, len(data))
        found = [f for f in _split_feed(mon, _slice(data, a, b), [])
                 if f.kind in SEQUENTIAL_KINDS or f.detector == "missing_rate"]
        for alert in lc.update("m", {}, found, now=float(data.prediction_timestamps[b - 1])):
            if alert.state == "firing":
                when = int((alert.last_degraded_at or 0.0) - change_at) + 1
                labels = alert.labels
                out.append((when, f"{labels['kind']}/{labels['detector']}/{labels['subject']}"))
    return out


def _slice(o: OutcomeBatch, a: int, b: int) -> OutcomeBatch:
    return OutcomeBatch(o.timestamps[a:b], o.prediction_timestamps[a:b], o.y_true[a:b], o.y_pred[a:b],
                        None if o.score is None else o.score[a:b], {k: v[a:b] for k, v in o.features.items()})


def test_a_half_sd_jump_and_a_burst_of_nulls_fire_within_two_thousand_predictions() -> None:
    rng = np.random.default_rng(21)
    before, after = _stream(rng, 10_000, 0.0), _stream(rng, 4000, 10_000.0, shift=0.5)  # age +0.5 sd
    after.features["income"] = np.where(rng.random(4000) < 0.3, np.nan, after.features["income"])
    mon = ModelMonitor("m", make_spec(5000), REF)
    fired = _fired(mon, _concat(before, after), 10_000.0)
    assert all(delay > 0 for delay, _ in fired), fired  # nothing before the change
    first = {}
    for delay, key in fired:
        first.setdefault(key, delay)
    age = [d for k, d in first.items() if "data_drift" in k and k.endswith("age")]
    nulls = [d for k, d in first.items() if "missing_rate" in k and k.endswith("income")]
    assert age and age[0] <= 2000, first
    assert nulls and nulls[0] <= 2000, first


def test_no_drift_stream_raises_no_sequential_alarm() -> None:
    rng = np.random.default_rng(99)
    data = _stream(rng, 100_000, 0.0)
    mon = ModelMonitor("m", make_spec(5000), REF)
    found = _split_feed(mon, data, list(range(1000, 100_000, 1000)))
    seq = [f for f in found if f.kind in SEQUENTIAL_KINDS]
    assert len(seq) == 200 * 6  # age, income, plan, prediction, score, PCA per block
    assert not any(f.degraded for f in seq), [f.summary for f in seq if f.degraded][:3]
    z = np.array([f.details["z"] for f in seq if f.subject == "age"])
    # under no drift the block scores are standard normal (or conservative): the calibration's premise
    assert -0.25 < z.mean() < 0.1 and 0.8 < z.std() < 1.15, (z.mean(), z.std())


def test_a_small_persistent_shift_piles_up_evidence_but_stays_under_the_effect_floor() -> None:
    rng = np.random.default_rng(5)
    data = _stream(rng, 60_000, 0.0, shift=0.12)  # age +0.12 sd: PSI about 0.015, far under 0.1
    mon = ModelMonitor("m", make_spec(5000), REF)
    age = [f for f in _split_feed(mon, data, []) if f.kind == "data_drift" and f.subject == "age"]
    assert max(f.statistic / f.threshold for f in age) >= 1.0  # the CUSUM crossed h ...
    assert not any(f.degraded for f in age)  # ... yet no alarm: the change window's PSI is under the floor
    last = age[-1]
    assert last.details["effect"] < last.details["effect_floor"] == 0.1


def test_a_correlation_change_is_caught_by_the_pca_cusum_within_ten_thousand() -> None:
    from driftwarden.detectors.settings import MonitorSettings
    from driftwarden.detectors.spec import FeatureSpec, ModelSpec

    rng = np.random.default_rng(11)

    def rows(n: int, rho: float) -> dict[str, np.ndarray]:
        a, b = rng.normal(size=n), rng.normal(size=n)
        return {"x": a, "y": rho * a + np.sqrt(1 - rho**2) * b, "z": rng.normal(size=n)}

    spec = ModelSpec("binary", {k: FeatureSpec("numeric") for k in "xyz"}, monitoring=MonitorSettings())
    labels = np.full(20_000, "0", dtype=object)
    mon = ModelMonitor("m", spec, OutcomeBatch(np.zeros(20_000), np.zeros(20_000), labels, labels,
                                                features=rows(20_000, 0.8)))
    found: list[Finding] = []
    for i, rho in enumerate([0.8] * 10 + [0.0] * 10):
        found += mon.observe_predictions(PredictionBatch(np.arange(i * 1000.0, (i + 1) * 1000.0), rows(1000, rho),
                                                         labels[:1000]))
    pca = [f for f in found if f.kind == "multivariate_drift"]
    assert {f.detector for f in pca} == {"cusum"} and len(pca) == 40
    first = next(f for f in pca if f.degraded)
    assert 10_000 <= first.window_end < 20_000 and first.statistic >= first.threshold
    assert not any(f.degraded for f in found if f.kind == "data_drift")  # the marginals did not move


def test_a_sequential_finding_fires_at_once_and_resolves_only_under_its_threshold() -> None:
    def finding(t: float, s: float, degraded: bool) -> Finding:
        return Finding("data_drift", "cusum", "age", s, 10.0, degraded, t, 500, details={"sequential": True})

    lc = AlertLifecycle(for_windows=2)
    assert [a.state for a in lc.update("m", {}, [finding(1.0, 12.0, True)], now=1.0)] == ["firing"]
    assert lc.update("m", {}, [finding(2.0, 11.0, True)], now=2.0) == []
    assert [a.state for a in lc.update("m", {}, [finding(3.0, 9.0, False)], now=3.0)] == ["resolved"]
    plain = AlertLifecycle(for_windows=2)
    window = Finding("data_drift", "psi", "age", 0.3, 0.2, True, 1.0, 5000)
    assert [a.state for a in plain.update("m", {}, [window], now=1.0)] == ["pending"]


def test_block_ks_pvalues_follow_scipy() -> None:
    from scipy.stats import ks_2samp

    from driftwarden.detectors.drift import ks_block_pvalue
    from driftwarden.detectors.numeric import ks_statistic

    rng = np.random.default_rng(8)
    ref = np.sort(rng.normal(size=20_000))
    for shift in (0.0, 0.05, 0.1, 0.2, 0.3):
        block = rng.normal(shift, 1.0, 500)
        d = ks_statistic(ref, block)
        ours = float(ks_block_pvalue(np.array([d]), np.array([ref.size]), np.array([block.size]))[0])
        exact = ks_2samp(ref, block).pvalue
        assert z_score(np.array([ours]))[0] == pytest.approx(z_score(np.array([exact]))[0], abs=0.05), (shift, ours, exact)


def test_settings_refuse_a_block_no_evaluation_would_test() -> None:
    from driftwarden.detectors.settings import DriftSettings, MonitorSettings

    with pytest.raises(ValueError, match=r"monitoring\.block: 50 is below min_events 100"):
        MonitorSettings(block=50).validate()
    MonitorSettings(block=50, drift=DriftSettings(method="window")).validate()  # blocks unused there
