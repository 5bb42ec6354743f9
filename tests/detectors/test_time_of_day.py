"""Drift against the reference's same time of day (detectors/time_of_day.py, DriftSuite.evaluate_block).

A reference of whole days in which ``age`` follows the day (+-0.4 sd, lowest at midnight):
a night's blocks that look like the reference's nights are not drift; a real shift at night
is; a reference without timestamps or shorter than a day changes nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, chi2_contingency, rankdata

from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.binning import CategoricalBinning, NumericBinning
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.sequential import CusumAlarm
from driftwarden.detectors.time_of_day import DAY, DailyProfile, DaySlots, cycle_p, day_slots, holm, independence_p
from tests.detectors.conftest import feed_predictions, make_spec

AMPLITUDE = 0.4  # of age's sd
T0 = 1_796_169_600.0  # 2026-12-01T00:00:00Z, a midnight


def cycling(rng: np.random.Generator, n: int, t0: float, rate: float, shift: float = 0.0,
            shift_from: float = np.inf) -> OutcomeBatch:
    """``n`` rows from ``t0`` at ``rate`` per second; age's mean follows the day; ``shift`` sd after ``shift_from``."""
    t = t0 + np.arange(n) / rate
    wave = -np.cos(2 * np.pi * (t - T0) / DAY)  # -1 at midnight, +1 at noon
    age = rng.normal(40 + 10 * AMPLITUDE * wave + 10 * shift * (t >= shift_from), 10, n)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.3, 0.1]).astype(object)
    score = 1 / (1 + np.exp(-rng.normal(0, 1, n)))  # does not depend on age: steady
    y = np.where(score > 0.5, "1", "0").astype(object)
    return OutcomeBatch(timestamps=t + 100.0, prediction_timestamps=t, y_true=y, y_pred=y, score=score,
                        features={"age": age, "income": income, "plan": plan})


def without_timestamps(ref: OutcomeBatch) -> OutcomeBatch:
    zeros = np.zeros(len(ref))
    return OutcomeBatch(zeros, zeros, ref.y_true, ref.y_pred, ref.score, ref.features)


feed = feed_predictions


def keyed(findings: list[Finding]) -> list[tuple]:
    """Comparable findings in (time, key) order (a poll's findings of different windows interleave by split)."""
    findings = sorted(findings, key=lambda f: (f.window_end, f.kind, f.detector, f.subject))
    return [(f.kind, f.detector, f.subject, f.statistic, f.threshold, f.degraded, f.window_end, f.p_value,
             json.dumps(f.details, sort_keys=True)) for f in findings]


SPEC = make_spec(5000, expected_rate=1.0)  # one calibration for every reference below
REF = cycling(np.random.default_rng(7), 40_000, T0, 40_000 / DAY)  # one whole day
NIGHT = cycling(np.random.default_rng(8), 21_600, T0 + 7 * DAY - 3 * 3600, 1.0)  # 21:00 to 03:00, a week on


def age_findings(mon: ModelMonitor, data: OutcomeBatch) -> list[Finding]:
    return [f for f in feed(mon, data) if f.kind == "data_drift" and f.subject == "age"]


def test_independence_test_equals_scipy_and_holm_by_hand() -> None:
    table = np.array([[120, 80, 50], [100, 100, 50], [90, 80, 80]])
    assert independence_p(table) == pytest.approx(chi2_contingency(table, correction=False)[1], rel=1e-12)
    assert independence_p(np.array([[5, 5], [0, 0]])) == 1.0  # one row left: nothing to test
    # Holm: sorted p times (m, m-1, ...), running maximum: 0.004*4, 0.01*3, 0.02*2, 0.3*1
    assert holm(np.array([0.3, 0.01, 0.004, 0.02])).tolist() == pytest.approx([0.3, 0.03, 0.016, 0.04])


def test_cycle_test_is_n_minus_one_r_squared_of_the_mid_ranks_on_cos_and_sin() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        table = rng.integers(5, 60, size=(6, 4))
        centres = np.sort(rng.uniform(0, DAY, 6))
        slot = np.repeat(np.arange(6), table.sum(axis=1))
        y = rankdata(np.concatenate([np.repeat(np.arange(4), row) for row in table]))
        angle = 2 * np.pi * centres[slot] / DAY
        x = np.column_stack([np.ones(y.size), np.cos(angle), np.sin(angle)])
        residual = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        r2 = 1 - residual @ residual / np.sum((y - y.mean()) ** 2)
        assert cycle_p(table, centres) == pytest.approx(chi2.sf((y.size - 1) * r2, 2), rel=1e-9)


def test_slot_counts_are_the_binnings_counts_of_each_slots_rows() -> None:
    rng = np.random.default_rng(3)
    values = np.where(rng.random(3_000) < 0.1, np.nan, rng.normal(size=3_000).round(1))
    labels = rng.choice(np.array(["a", "b", None], dtype=object), 3_000)
    slot = rng.integers(0, 5, 3_000)
    by_slot = np.argsort(slot, kind="stable")
    bounds = np.searchsorted(slot[by_slot], np.arange(6))
    for column, binning in ((values, NumericBinning.from_reference(values, 10)),
                            (labels, CategoricalBinning.from_reference(labels, 10))):
        expected = np.vstack([binning.counts(column[slot == s]) for s in range(5)])
        assert DailyProfile.of(by_slot, bounds, column, binning).slot_counts.tolist() == expected.tolist()


def test_a_mixture_of_slots_is_judged_with_its_effective_size() -> None:
    counts = np.array([[300, 100], [100, 100], [0, 0]])
    p = DailyProfile(counts)
    assert p.expected(np.array([0.0, 1.0, 0.0])).tolist() == [100.0, 100.0]  # one slot: its rows exactly
    w = np.array([0.25, 0.75, 0.0])
    m_eff = 1 / (0.25**2 / 400 + 0.75**2 / 200)
    mix = 0.25 * np.array([0.75, 0.25]) + 0.75 * np.array([0.5, 0.5])
    assert p.expected(w) == pytest.approx(mix * m_eff)


def test_slots_need_timestamps_over_a_day() -> None:
    slots, why = day_slots(REF.prediction_timestamps)
    assert why == "the reference spans 24.0 h"
    assert isinstance(slots, DaySlots) and slots.n == 24
    counts = np.bincount(slots.of(REF.prediction_timestamps), minlength=24)
    assert counts.min() >= 40_000 // 24 - 1 and counts.max() <= 40_000 // 24 + 2  # equal counts
    assert day_slots(np.zeros(50_000))[0] is None
    assert day_slots(T0 + np.arange(50_000.0))[1] == "the reference spans 13.9 h of timestamps, less than 23 h"


def test_only_the_feature_that_follows_the_day_is_judged_by_the_hour() -> None:
    mon = ModelMonitor("m", SPEC, REF)
    assert mon.drift is not None and list(mon.drift.daily) == ["age"]
    assert "same time of day" in mon.drift.daily_note and "age" in mon.drift.daily_note


def test_a_night_that_looks_like_the_references_nights_is_not_drift() -> None:
    age = age_findings(ModelMonitor("m", SPEC, REF), NIGHT)
    assert len(age) == 43 and not any(f.degraded for f in age), [f.summary for f in age if f.degraded][:2]
    assert all(f.details["reference"] == "same time of day" and f.details["test"] == "chi2" for f in age)
    z = np.array([f.details["z"] for f in age])
    assert -0.6 < z.mean() < 0.4, z.mean()  # standard normal block scores at night, as by day
    # against the whole day, the same night alarms (what this replaces)
    whole_day = age_findings(ModelMonitor("m", SPEC, without_timestamps(REF)), NIGHT)
    assert any(f.degraded for f in whole_day) and whole_day[0].details["test"] == "KS"


def test_a_real_shift_at_night_fires_within_two_thousand_predictions() -> None:
    change = T0 + 7 * DAY + 2 * 3600  # 02:00
    night = cycling(np.random.default_rng(8), 21_600, T0 + 7 * DAY - 3 * 3600, 1.0, shift=0.5, shift_from=change)
    age = age_findings(ModelMonitor("m", SPEC, REF), night)
    fired = [f.window_end for f in age if f.degraded]
    assert fired and fired[0] > change and fired[0] - change <= 2000, fired[:1]
    first = next(f for f in age if f.degraded)
    assert first.details["effect"] >= 0.1 and first.details["reference"] == "same time of day"


@pytest.mark.parametrize("shorter", ["no timestamps", "20 hours"])
def test_a_reference_without_timestamps_or_shorter_than_a_day_is_judged_as_before(shorter: str) -> None:
    rows = REF if shorter == "no timestamps" else cycling(np.random.default_rng(7), 40_000, T0, 2.0 / 3.6)  # 20 h
    plain = without_timestamps(rows)
    stamped = plain if shorter == "no timestamps" else rows
    a, b = ModelMonitor("m", SPEC, stamped if shorter != "no timestamps" else plain), ModelMonitor("m", SPEC, plain)
    assert a.drift is not None and not a.drift.daily and "whole reference" in a.drift.daily_note
    assert keyed(feed(a, NIGHT)) == keyed(feed(b, NIGHT))


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 5_999), max_size=8))
def test_streaming_equals_batch_against_the_same_hours(cuts: list[int]) -> None:
    data = cycling(np.random.default_rng(9), 6_000, T0 + 5 * DAY + 3600, 0.5, shift=0.5, shift_from=T0 + 5 * DAY + 3 * 3600)
    whole = feed(ModelMonitor("m", SPEC, REF), data)
    assert keyed(feed(ModelMonitor("m", SPEC, REF), data, cuts)) == keyed(whole)
    assert any(f.degraded and f.subject == "age" for f in whole)


def test_state_round_trip_keeps_the_change_windows_reference() -> None:
    change = T0 + 7 * DAY + 2 * 3600
    night = cycling(np.random.default_rng(8), 21_600, T0 + 7 * DAY - 3 * 3600, 1.0, shift=0.3, shift_from=change)
    live = ModelMonitor("m", SPEC, REF)
    feed(live, night, [5 * 3600 + 1_250])
    state = json.loads(json.dumps(live.state(), allow_nan=False))
    assert sum(state["sequential"]["drift"]["age"]["pooled_reference"]) > 0
    rebuilt = ModelMonitor("m", SPEC, REF)
    rebuilt.load_state(state)
    more = cycling(np.random.default_rng(10), 3_000, night.prediction_timestamps[-1] + 1, 1.0, shift=0.3)
    assert keyed(feed(live, more)) == keyed(feed(rebuilt, more))


def test_block_scores_are_standard_normal_at_every_hour() -> None:
    """The calibration's premise (z ~ N(0, 1) or conservative) holds for the time-of-day test too."""
    day = cycling(np.random.default_rng(11), 86_400, T0 + 9 * DAY, 1.0)
    z = np.array([f.details["z"] for f in age_findings(ModelMonitor("m", SPEC, REF), day)])
    assert z.size == 172 and -0.3 < z.mean() < 0.15 and 0.8 < z.std() < 1.2, (z.mean(), z.std())
    alarm = CusumAlarm(ModelMonitor("m", SPEC, REF).calibration.h)  # type: ignore[union-attr]
    # no alarm; S does climb higher than against the whole day: a slot's blocks share its ~1,700 reference rows
    assert max(alarm.step(float(v)) for v in z) < alarm.h
