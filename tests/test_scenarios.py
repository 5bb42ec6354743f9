"""The detection scenarios (daemon/scenarios.py) inject what they say, and bench/scenarios.py measures it.

The generator's faults are checked against numpy/scipy computations on the generated columns;
the runner is checked end to end on two short streams (a large fault is found, a clean stream
raises nothing): assertions that hold for the detectors as they are.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftwarden.daemon.scenarios import (
    AGE_SD,
    DAY,
    FAULTS,
    GRADUAL_OVER,
    INCOME_SD,
    NEW_REGION,
    REGION_MIX,
    REGION_MIX_SHIFTED,
    REGIONS,
    START,
    Stream,
    catalogue,
    event_times,
    generate,
    messages,
    reference_table,
)
from driftwarden.detectors.binning import psi

ONSET = 20_000


def _columns(fault: str, events: int = 60_000, **kw: object) -> tuple[dict[str, np.ndarray], np.ndarray]:
    cols = generate(Stream(fault, events, fault=fault, onset=ONSET, **kw))  # type: ignore[arg-type]
    return cols, cols["index"] >= ONSET


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "scenarios.py"
    spec = importlib.util.spec_from_file_location("bench_scenarios", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scenarios"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_suite_has_every_fault_and_two_no_drift_streams_of_a_million() -> None:
    suite = catalogue()
    assert {s.fault for s in suite.values()} == {*FAULTS, None}
    clean = [s for s in suite.values() if s.fault is None]
    assert [s.daily_cycle for s in clean] == [False, True] and all(s.events >= 1_000_000 for s in clean)
    cycle = suite["daily_cycle"]
    assert (event_times(cycle, np.array([cycle.events]))[0] - START) / DAY == pytest.approx(2.0)  # whole days


@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, 20_999), max_size=5), fault=st.sampled_from(FAULTS), cycle=st.booleans())
def test_chunked_generation_equals_the_whole_stream(cuts: list[int], fault: str, cycle: bool) -> None:
    stream = Stream(fault, 21_000, fault=fault, onset=7_000, daily_cycle=cycle, rate=3.0)  # type: ignore[arg-type]
    whole = generate(stream)
    edges = [0, *sorted(set(cuts)), stream.events]
    parts = [generate(stream, a, b - a) for a, b in itertools.pairwise(edges)]
    for name, column in whole.items():
        joined = np.concatenate([p[name] for p in parts])
        assert np.array_equal(joined, column, equal_nan=column.dtype.kind == "f"), name


def test_same_stream_same_bytes() -> None:
    stream = Stream("nulls", 12_000, fault="nulls", onset=1_000)
    assert list(messages(stream)) == list(messages(stream, chunk=3_000))


def test_shift_is_half_a_standard_deviation_of_age() -> None:
    cols, after = _columns("shift")
    before = cols["age"][~after]
    assert before.std() == pytest.approx(AGE_SD, rel=0.03)
    assert (cols["age"][after].mean() - before.mean()) / before.std() == pytest.approx(0.5, abs=0.03)


def test_gradual_shift_reaches_half_a_standard_deviation_over_50k() -> None:
    stream = Stream("gradual", ONSET + GRADUAL_OVER + 20_000, fault="gradual", onset=ONSET)
    cols = generate(stream)
    income, index = cols["income"], cols["index"]
    base = income[index < ONSET].mean()
    end = income[index >= ONSET + GRADUAL_OVER].mean()
    middle = income[(index >= ONSET + GRADUAL_OVER // 2 - 2_000) & (index < ONSET + GRADUAL_OVER // 2 + 2_000)].mean()
    assert (end - base) / INCOME_SD == pytest.approx(0.5, abs=0.04)
    assert (middle - base) / INCOME_SD == pytest.approx(0.25, abs=0.06)
    assert stats.skew(income[index < ONSET]) > 1  # a skewed feature


def test_nulls_take_35_percent_of_tenure() -> None:
    cols, after = _columns("nulls")
    missing = np.isnan(cols["tenure_months"])
    assert missing[~after].sum() == 0
    assert missing[after].mean() == pytest.approx(0.35, abs=0.01)


def test_new_category_takes_12_percent_of_region() -> None:
    cols, after = _columns("new_category")
    assert (cols["region"][~after] == NEW_REGION).sum() == 0
    assert (cols["region"][after] == NEW_REGION).mean() == pytest.approx(0.12, abs=0.01)


def _counts(values: np.ndarray) -> np.ndarray:
    return np.array([(values == r).sum() for r in REGIONS])


def test_region_mix_moves_by_psi_015_by_our_own_psi() -> None:
    exact = psi(np.array(REGION_MIX) * 1e9, np.array(REGION_MIX_SHIFTED) * 1e9)
    assert exact == pytest.approx(0.151, abs=0.001)
    cols, after = _columns("region_mix")
    assert _counts(cols["region"][~after]) / (~after).sum() == pytest.approx(REGION_MIX, abs=0.01)
    assert psi(_counts(cols["region"][~after]), _counts(cols["region"][after])) == pytest.approx(0.15, abs=0.02)


def test_decorrelation_keeps_the_marginals() -> None:
    cols, after = _columns("decorrelate")
    x, y = cols["credit_limit"], cols["balance"]
    assert np.corrcoef(x[~after], y[~after])[0, 1] == pytest.approx(0.8, abs=0.02)
    assert np.corrcoef(x[after], y[after])[0, 1] == pytest.approx(0.0, abs=0.02)
    assert stats.ks_2samp(y[~after], y[after]).pvalue > 0.001


def test_new_version_changes_the_score_distribution_and_the_version_field() -> None:
    cols, after = _columns("new_version")
    assert set(cols["model_version"][~after]) == {"1.0.0"} and set(cols["model_version"][after]) == {"2.0.0"}
    assert stats.ks_2samp(cols["score"][~after], cols["score"][after]).statistic > 0.2


def test_concept_faults_drop_accuracy_with_inputs_unchanged() -> None:
    clean = generate(Stream("clean", 60_000))
    for fault, where in (("concept", None), ("segment_concept", "pro")):
        cols, after = _columns(fault)
        hit = cols["prediction"] == cols["outcome"]
        segment = cols["plan"] == where if where else np.ones(len(hit), dtype=bool)
        assert hit[~after & segment].mean() - hit[after & segment].mean() > 0.15
        if where:  # the rest of the traffic keeps its accuracy
            assert hit[~after & ~segment].mean() == pytest.approx(hit[after & ~segment].mean(), abs=0.02)
        for name in ("age", "balance", "score"):  # same inputs and scores as the clean stream's
            assert stats.ks_2samp(clean[name], cols[name]).pvalue > 0.001


def test_daily_cycle_moves_the_rate_and_session_minutes() -> None:
    stream = Stream("cycle", int(DAY * 2), rate=2.0, daily_cycle=True)
    cols = generate(stream)
    hour = ((cols["timestamp"] - START) % DAY) // 3600
    per_hour = np.bincount(hour.astype(int), minlength=24)
    assert per_hour[14] / per_hour[2] == pytest.approx(1.6 / 0.4, rel=0.05)
    minutes = np.array([cols["session_minutes"][hour == h].mean() for h in (2, 14)])
    assert minutes[1] - minutes[0] == pytest.approx(2 * 0.3 * 6, abs=0.3)
    ref = reference_table(stream, rows=20_000)  # a whole day
    ref_hours = ((event_times(stream.reference(20_000), np.arange(20_000)) - START) % DAY) // 3600
    assert ref.num_rows == 20_000 and len(set(ref_hours.tolist())) == 24


def test_session_shift_moves_session_minutes_by_half_a_standard_deviation() -> None:
    shifted = Stream("s", 30_000, fault="session_shift", onset=ONSET, rate=6.0, daily_cycle=True)
    clean = generate(Stream("c", 30_000, rate=6.0, daily_cycle=True))  # the same seed: the same draws
    cols, after = generate(shifted), np.arange(30_000) >= ONSET
    diff = cols["session_minutes"] - clean["session_minutes"]
    assert np.all(diff[~after] == 0) and np.median(diff[after]) == pytest.approx(0.5 * 6.0)
    suite = catalogue()
    assert [(s.fault, s.daily_cycle) for n, s in suite.items() if n.startswith("cycle_")] == [
        ("session_shift", True), ("region_mix", True)]


def test_only_a_daily_cycle_reference_carries_its_timestamps_over_whole_days() -> None:
    cycle = Stream("cycle", 1_000, rate=6.0, daily_cycle=True)
    stamps = reference_table(cycle, rows=20_000).column("timestamp").to_numpy()
    assert (stamps.max() - stamps.min()) / DAY == pytest.approx(1.0, abs=1e-3)
    assert "timestamp" not in reference_table(Stream("plain", 1_000), rows=2_000).column_names


def test_messages_follow_the_contract_and_outcomes_come_after_their_delay() -> None:
    stream = Stream("nulls", 2_000, fault="nulls", onset=500, label_delay=30.0)
    seen = list(messages(stream))
    predictions = [msgspec.json.decode(v) for t, v, _ in seen if t == "predictions"]
    outcomes = [(msgspec.json.decode(v), i) for t, v, i in seen if t == "outcomes"]
    assert len(predictions) == len(outcomes) == 2_000
    assert set(predictions[0]["features"]) == set(generate(stream, 0, 1)) - {
        "score", "prediction", "outcome", "model_version", "timestamp", "index"}
    assert any(p["features"]["tenure_months"] is None for p in predictions[500:])
    position = {p["prediction_id"]: k for k, p in enumerate(predictions)}
    first = outcomes[0][0]
    assert position[first["prediction_id"]] == 0 and outcomes[0][1] == 0
    assert first["timestamp"].endswith("Z")


def test_runner_detects_a_new_category_and_nothing_on_a_clean_stream(tmp_path: Path) -> None:
    bench = _bench()
    fault = bench.run_stream(Stream("new_category", 16_000, fault="new_category", onset=5_000), tmp_path / "f",
                             reports=False)
    assert fault.detected and fault.false_alarms == 0
    assert 0 < fault.delay <= 11_000 and "region" in fault.first
    assert fault.notifications >= 1 and fault.groups >= 1
    clean = bench.run_stream(Stream("stationary", 15_000, seed=5), tmp_path / "c", reports=False)
    assert not clean.detected and clean.false_alarms == 0 and clean.clean_predictions == 15_000
    assert "detected 1/1 faults; false alarms: 0 in 20,000" in bench.table([fault, clean])


def test_runner_sees_no_drift_in_a_night_of_a_daily_cycle_and_a_shift_of_the_cycling_feature(tmp_path: Path) -> None:
    bench = _bench()  # from midnight: session_minutes at its lowest (it alarmed after 1,000 against the whole day)
    night = bench.run_stream(Stream("daily_cycle", 40_000, rate=6.0, daily_cycle=True, seed=202), tmp_path / "n",
                             reports=False)
    assert night.false_alarms == 0, night.false_alarm_names
    shift = bench.run_stream(Stream("cycle_session_shift", 30_000, fault="session_shift", onset=15_000, rate=6.0,
                                    daily_cycle=True, seed=300), tmp_path / "s", reports=False)
    assert shift.detected and shift.false_alarms == 0 and 0 < shift.delay <= 2_000 and "session_minutes" in shift.first
