"""The facade: windows, findings, state round-trip, batch face, edge cases."""

from __future__ import annotations

import itertools
import json

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor, compare
from driftwarden.detectors.settings import ConceptSettings, DriftSettings, KpiSettings, MonitorSettings
from tests.detectors.conftest import as_predictions, make_outcomes, make_spec

REF = make_outcomes(np.random.default_rng(7), 20_000)
# Tests of one window's verdict pin the per-window drift tests (the default is sequential, over
# blocks: tests/detectors/test_sequential*.py).
WINDOW = DriftSettings(method="window")


def _keyed(findings: list[Finding]) -> list[tuple]:
    return [(f.kind, f.detector, f.subject, round(f.statistic, 12), f.degraded, f.window_end) for f in findings]


def test_no_drift_is_healthy_and_windows_close_on_count(rng: np.random.Generator) -> None:
    mon = ModelMonitor("m", make_spec(1000, drift=WINDOW), REF)
    assert mon.observe_predictions(as_predictions(make_outcomes(rng, 999))) == []
    out = mon.observe_predictions(as_predictions(make_outcomes(rng, 1001, t0=999)))
    drift = [f for f in out if f.kind in ("data_drift", "prediction_drift")]
    assert {f.subject for f in drift} == {"age", "income", "plan", "prediction", "score"}
    assert not any(f.degraded for f in out), [f.summary for f in out if f.degraded]
    assert all(f.window_size == 1000 for f in drift)


def test_shift_is_found_with_summary_and_severity(rng: np.random.Generator) -> None:
    mon = ModelMonitor("m", make_spec(2000, drift=WINDOW), REF)
    out = mon.observe_predictions(as_predictions(make_outcomes(rng, 2000, shift=1.5)))
    age = next(f for f in out if f.subject == "age" and f.kind == "data_drift")
    assert age.degraded and age.severity == "critical" and age.summary.startswith("PSI of age ")
    assert not next(f for f in out if f.subject == "income" and f.kind == "data_drift").degraded
    json.dumps([f.to_dict() for f in out], allow_nan=False)


def test_unseen_category_and_constant_column() -> None:
    spec = make_spec(500, drift=WINDOW)
    ref = make_outcomes(np.random.default_rng(1), 5000)
    ref.features["plan"] = np.full(5000, "pro", dtype=object)  # constant reference column
    mon = ModelMonitor("m", spec, ref)
    cur = make_outcomes(np.random.default_rng(2), 500)
    cur.features["plan"] = np.array(["pro"] * 400 + ["enterprise"] * 100, dtype=object)
    out = mon.observe_predictions(as_predictions(cur))
    plan = next(f for f in out if f.subject == "plan" and f.kind == "data_drift")
    assert plan.degraded and plan.details["unseen_rate"] == 0.2 and "enterprise" in str(plan.details)
    assert all(np.isfinite(f.statistic) for f in out)
    q = next(f for f in out if f.detector == "unseen_category_rate")
    assert q.degraded and q.statistic == 0.2
    cur.features["plan"] = np.full(500, "pro", dtype=object)
    same = [f for f in ModelMonitor("m", spec, ref).observe_predictions(as_predictions(cur)) if f.subject == "plan"]
    assert not any(f.degraded for f in same)


def test_small_windows_are_not_tested(rng: np.random.Generator) -> None:
    spec = make_spec(50)  # below min_events=100
    assert ModelMonitor("m", spec, REF).observe_predictions(as_predictions(make_outcomes(rng, 200))) == []


def test_performance_concept_kpi_on_outcomes(rng: np.random.Generator) -> None:
    spec = make_spec(1000, kpis=[KpiSettings("revenue")])
    mon = ModelMonitor("m", spec, REF)
    good = make_outcomes(rng, 3000)
    out = mon.observe_outcomes(good)
    assert {f.detector for f in out if f.kind == "performance"} == {"accuracy", "f1", "roc_auc"}
    assert not any(f.degraded for f in out if f.kind == "performance")
    acc = [f for f in out if f.detector == "accuracy"]  # sequential: a verdict per 100 outcomes
    assert len(acc) == 30 and all(f.statistic < f.threshold == 1.0 for f in acc)
    f1 = [f for f in out if f.detector == "f1"]  # sequential too: a CUSUM verdict per block of 500 outcomes
    assert len(f1) == 6 and all(f.details["sequential"] and f.statistic < f.threshold for f in f1)
    assert f1[-1].details["baseline"] == pytest.approx(mon.realized_blocks.metrics["f1"].baseline)
    bad = make_outcomes(rng, 3000, t0=3000)
    bad.y_pred = np.where(rng.random(3000) < 0.5, "1", "0").astype(object)
    bad.kpis["revenue"] = bad.kpis["revenue"] - 5
    out = mon.observe_outcomes(bad)
    concept = [f for f in out if f.kind == "concept_drift" and f.degraded and "change_index" in f.details]
    assert len(concept) == 1  # one change -> one change point (later windows: "still above")
    assert any(f.degraded for f in out if f.detector == "accuracy")
    assert any(f.degraded for f in out if f.kind == "kpi")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 900), min_size=1, max_size=8), st.integers(0, 3))
def test_any_batch_split_equals_one_batch(splits: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = make_spec(500)
    data = make_outcomes(rng, 1700, shift=0.3)
    whole = ModelMonitor("m", spec, REF)
    expected = whole.observe_predictions(as_predictions(data)) + whole.observe_outcomes(data)
    parts = ModelMonitor("m", spec, REF)
    got: list[Finding] = []
    bounds = np.cumsum([0, *splits])
    bounds = [int(b) for b in bounds if b < 1700] + [1700]
    for a, b in itertools.pairwise(bounds):
        got += parts.observe_predictions(as_predictions(_slice(data, a, b)))
    for a, b in itertools.pairwise(bounds):
        got += parts.observe_outcomes(_slice(data, a, b))
    assert _keyed(sorted(got, key=_order)) == _keyed(sorted(expected, key=_order))


def _order(f: Finding) -> tuple:
    return (f.window_end, f.kind, f.detector, f.subject)


def _slice(o: OutcomeBatch, a: int, b: int) -> OutcomeBatch:
    return OutcomeBatch(o.timestamps[a:b], o.prediction_timestamps[a:b], o.y_true[a:b], o.y_pred[a:b],
                        None if o.score is None else o.score[a:b], {k: v[a:b] for k, v in o.features.items()},
                        {k: v[a:b] for k, v in o.kpis.items()})


@pytest.mark.parametrize("detector", ["adwin", "ddm", "page_hinkley"])
def test_state_round_trip_gives_identical_next_findings(rng: np.random.Generator, detector: str) -> None:
    spec = make_spec(800, concept=ConceptSettings(detector=detector), kpis=[KpiSettings("revenue")])
    first, second = make_outcomes(rng, 1900, shift=0.2), make_outcomes(rng, 3000, shift=0.8, t0=1900)
    second.y_pred = np.where(rng.random(3000) < 0.3, "1", "0").astype(object)
    live = ModelMonitor("m", spec, REF)
    live.observe_predictions(as_predictions(first))
    live.observe_outcomes(first)
    live.tick(2000.0)
    state = json.loads(json.dumps(live.state(), allow_nan=False))
    rebuilt = ModelMonitor("m", spec, REF)
    rebuilt.load_state(state)
    for mon_out in (live, rebuilt):
        mon_out._probe = (mon_out.observe_predictions(as_predictions(second)) + mon_out.observe_outcomes(second)
                          + mon_out.tick(99_999.0))  # type: ignore[attr-defined]
    assert _keyed(live._probe) == _keyed(rebuilt._probe)  # type: ignore[attr-defined]
    assert live.snapshot() == rebuilt.snapshot()


def test_snapshot_is_json_safe(rng: np.random.Generator) -> None:
    mon = ModelMonitor("m", make_spec(500, drift=WINDOW), REF)
    data = make_outcomes(rng, 1200)
    mon.observe_predictions(as_predictions(data))
    mon.observe_outcomes(data)
    snap = json.loads(json.dumps(mon.snapshot(), allow_nan=False))
    assert snap["current_window"]["size"] == 200
    hist = snap["current_window"]["histograms"]["age"]
    assert sum(hist["current"]) == 200 and len(hist["edges"]) + 1 == len(hist["reference"])
    assert len(snap["evaluations"]["data_drift/psi/age"]) == 2 and snap["performance_timeline"]


def test_compare_is_one_window_of_the_monitor(rng: np.random.Generator) -> None:
    spec = make_spec(1000, drift=WINDOW)
    cur = make_outcomes(rng, 1000, shift=1.0)
    batch = compare(spec, REF, cur)
    windowed = msgspec.structs.replace(spec.monitoring.performance, sequential=False)  # compare: one window
    mon = ModelMonitor("m", msgspec.structs.replace(spec, monitoring=msgspec.structs.replace(
        spec.monitoring, performance=windowed)), REF)
    streamed = mon.observe_predictions(as_predictions(cur)) + mon.observe_outcomes(cur)
    drop = {"concept_drift"}
    assert _keyed([f for f in batch if f.kind not in drop]) == _keyed([f for f in streamed if f.kind not in drop])
    assert compare(spec, REF, PredictionBatch(np.zeros(0), {}, np.zeros(0, dtype=object))) == []


def test_settings_are_strict_and_ranges_checked() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"window_size": 10, "windw": 3}, MonitorSettings)
    with pytest.raises(ValueError, match=r"drift.alpha: .*allowed range"):
        ModelMonitor("m", make_spec(100, drift=msgspec.convert({"drift": {"alpha": 2.0}}, MonitorSettings).drift), REF)
    with pytest.raises(ValueError, match="needs 0/1 errors"):
        spec = msgspec.structs.replace(make_spec(100, concept=ConceptSettings(detector="ddm")), task="regression")
        ModelMonitor("m", spec, REF)


def test_traffic_staleness_and_quality_counters(rng: np.random.Generator) -> None:
    mon = ModelMonitor("m", make_spec(500), REF)
    batch = as_predictions(make_outcomes(rng, 500))
    batch.undeclared_keys["debug"] = 50
    batch.type_errors["age"] = 20
    out = mon.observe_predictions(batch)
    assert next(f for f in out if f.detector == "undeclared_key_rate").degraded
    assert next(f for f in out if f.detector == "type_mismatch_rate" and f.subject == "age").degraded
    stale = [f for f in mon.tick(500.0 + 4000) if f.detector == "staleness"]
    assert stale and stale[0].degraded


def test_no_drift_stream_raises_no_feature_drift() -> None:
    """Small version of bench/detectors.py --no-drift (10M events there): 60 windows, zero findings."""
    rng = np.random.default_rng(99)
    mon = ModelMonitor("m", make_spec(1000), REF)
    degraded = [f for w in range(60)
                for f in mon.observe_predictions(as_predictions(make_outcomes(rng, 1000, t0=w * 1000.0)))
                if f.degraded and f.kind == "data_drift"]
    assert degraded == []


def test_a_correlation_change_no_single_feature_shows_is_caught_by_pca_alone() -> None:
    """Same marginals, flipped correlation: no feature drifts, the multivariate check does."""
    from driftwarden.detectors.spec import FeatureSpec, ModelSpec

    rng = np.random.default_rng(11)

    def window(n: int, sign: float) -> dict[str, np.ndarray]:
        a, b = rng.normal(size=n), rng.normal(size=n)
        return {"x": a, "y": sign * 0.9 * a + np.sqrt(1 - 0.81) * b, "z": rng.normal(size=n)}

    spec = ModelSpec("binary", {k: FeatureSpec("numeric") for k in "xyz"}, monitoring=MonitorSettings(window_size=2000,
                                                                                               drift=WINDOW))
    labels = np.full(20_000, "0", dtype=object)
    mon = ModelMonitor("m", spec, OutcomeBatch(np.zeros(20_000), np.zeros(20_000), labels, labels,
                                                features=window(20_000, 1.0)))
    for sign, expected in ((1.0, False), (-1.0, True)):
        found = mon.observe_predictions(PredictionBatch(np.arange(2000.0), window(2000, sign), labels[:2000]))
        drift = [f for f in found if f.kind == "data_drift"]
        assert len(drift) == 3 and not any(f.degraded for f in drift), [f.summary for f in drift if f.degraded]
        (pca,) = [f for f in found if f.kind == "multivariate_drift"]
        assert pca.degraded is expected, pca.summary


def test_estimated_performance_is_judged_every_block_and_falls_with_the_scores(rng: np.random.Generator) -> None:
    """Sequential: CBPE's estimates are CUSUM verdicts per block of predictions, in the drift budget."""
    spec = make_spec(5000)
    mon = ModelMonitor("m", spec, REF)
    assert mon.realized is None and mon.estimated_blocks is not None
    assert mon.calibration is not None and mon.calibration.subjects == 3 + 2 + 1 + 3  # features, outputs, PCA, CBPE
    healthy = [f for f in mon.observe_predictions(as_predictions(make_outcomes(rng, 2000)))
               if f.kind == "estimated_performance"]
    assert [f.detector for f in healthy] == ["accuracy", "f1", "roc_auc"] * 4
    assert not any(f.degraded for f in healthy) and all(f.details["sequential"] for f in healthy)
    # the model grows unsure: scores pulled towards 0.5, so the estimated accuracy falls
    unsure = make_outcomes(rng, 3000, t0=2000)
    unsure.score = 0.5 + (unsure.score - 0.5) * 0.2
    out = [f for f in mon.observe_predictions(as_predictions(unsure)) if f.kind == "estimated_performance"]
    acc = [f for f in out if f.detector == "accuracy"]
    assert len(acc) == 6 and acc[-1].degraded and acc[-1].statistic >= acc[-1].threshold
    assert acc[-1].details["change_window_value"] < 0.95 * acc[-1].details["baseline"]
