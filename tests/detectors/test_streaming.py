"""Streaming == batch for the window-accumulating detectors: quality counts, traffic buckets, KPI aggregates.

Each property feeds the same events in an arbitrary batch split (with a JSON state
round trip at an arbitrary batch boundary, as a checkpoint/restart would) and
compares with one batch, the way ``test_exact`` compares with scipy and river.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.kpi import KpiMonitor
from driftwarden.detectors.quality import MAX_TRACKED_KEYS, QualityMonitor
from driftwarden.detectors.settings import KpiSettings, TrafficSettings
from driftwarden.detectors.spec import FeatureSpec
from driftwarden.detectors.traffic import TrafficMonitor
from driftwarden.detectors.window import ColumnWindow

sizes = st.lists(st.integers(1, 40), min_size=1, max_size=10)


def _bounds(n: int, batch_sizes: list[int]) -> list[tuple[int, int]]:
    """``[0, n)`` cut into consecutive batches of the given sizes (the last one takes the rest)."""
    cuts = [int(c) for c in np.cumsum([0, *batch_sizes]) if c < n] + [n]
    return list(itertools.pairwise(cuts))


def _json(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, allow_nan=False))


# ------------------------------------------------------------------------------------------ quality
FEATURES = {"x": FeatureSpec("numeric", min=0.0), "c": FeatureSpec("categorical")}
REFERENCE = {"x": np.linspace(0.0, 10.0, 500), "c": np.array(["a", "b"] * 250, dtype=object)}
KEYS = ["x", "c", *(f"k{i}" for i in range(MAX_TRACKED_KEYS + 30))]  # more keys than are tracked
counters = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), st.integers(0, 40), max_size=10),
    st.builds(lambda a, b, c: {k: c for k in KEYS[min(a, b):max(a, b)]},  # a run of keys: reaches the cap
              st.integers(0, len(KEYS)), st.integers(0, len(KEYS)), st.integers(1, 9)))
rows = st.lists(st.tuples(st.one_of(st.floats(-3, 12), st.just(np.nan)), st.sampled_from(["a", "b", "z", None])),
                max_size=40)
quality_batch = st.tuples(rows, counters, counters, counters)


def _columns(batch_rows: list[tuple[float, str | None]]) -> dict[str, np.ndarray]:
    c = np.empty(len(batch_rows), dtype=object)
    c[:] = [r[1] for r in batch_rows]
    return {"x": np.array([r[0] for r in batch_rows], dtype=np.float64), "c": c}


def _merged(dicts: list[dict[str, int]]) -> dict[str, int]:
    """One batch's counters: the sums, keys in order of first appearance (which keys fit the cap)."""
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _primed_quality() -> QualityMonitor:
    q = QualityMonitor(FEATURES, REFERENCE)
    q.add_counters({}, {}, {"old": 50})
    q.evaluate({"x": np.ones(100), "c": np.array(["a"] * 100, dtype=object)}, 100, 0.0)  # flags "old"
    return q


@settings(max_examples=150, deadline=None)
@given(st.lists(quality_batch, min_size=1, max_size=8), st.integers(0, 8))
def test_quality_counts_of_any_split_equal_one_batch(batches: list[tuple], cut: int) -> None:
    cut = 1 + cut % max(len(batches) - 1, 1)  # a boundary between two batches
    streamed, window = _primed_quality(), ColumnWindow(10_000)
    for i, (batch_rows, type_errors, missing_keys, undeclared) in enumerate(batches):
        if i == cut:  # checkpoint and restart between two batches
            restored, window_state = _primed_quality(), _json(window.state())
            restored.load_state(_json(streamed.state()))
            streamed, window = restored, ColumnWindow(10_000)
            window.load_state(window_state)
        window.add(_columns(batch_rows))
        streamed.add_counters(type_errors, missing_keys, undeclared)
    n = sum(len(b[0]) for b in batches)
    got = streamed.evaluate(window.take(), n, 1.0)

    whole = _primed_quality()
    whole.add_counters(*(_merged([b[i] for b in batches]) for i in (1, 2, 3)))
    expected = whole.evaluate(_columns([r for b in batches for r in b[0]]), n, 1.0)
    assert [f.to_dict() for f in got] == [f.to_dict() for f in expected]
    assert streamed.state() == whole.state()


# ------------------------------------------------------------------------------------------ traffic
TRAFFIC = TrafficSettings(bucket_seconds=60.0, baseline_buckets=6, min_baseline_buckets=2, drop_ratio=0.5,
                          spike_ratio=2.0, stale_after_seconds=120.0, label_delay_seconds=30.0, min_label_coverage=0.5)
T0 = 1.7e9  # epoch seconds


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 400), st.sampled_from([2, 0, -1]), sizes, st.integers(0, 2**32 - 1), st.floats(0, 1500),
       st.integers(0, 10))
def test_traffic_counts_of_any_split_equal_one_batch(n: int, decimals: int, batch_sizes: list[int], seed: int,
                                                     now: float, cut: int) -> None:
    """Events in any order, within and across batches; outcomes after their predictions.

    Before the first evaluation no event is late, whichever batch brought the earliest bucket.
    """
    rng = np.random.default_rng(seed)
    t = T0 + np.round(rng.uniform(0, 900, n), decimals)  # rounding: ties and events on bucket edges
    labelled = rng.random(t.size) < 0.6
    batches = [(rng.permutation(t[a:b]), rng.permutation(t[a:b][labelled[a:b]])) for a, b in _bounds(t.size, batch_sizes)]
    cut = 1 + cut % max(len(batches) - 1, 1)
    streamed = TrafficMonitor(TRAFFIC)
    for i, (predictions, outcomes) in enumerate(batches):
        if i == cut:
            restored = TrafficMonitor(TRAFFIC)
            restored.load_state(_json(streamed.state()))
            streamed = restored
        streamed.observe_predictions(predictions)
        streamed.observe_outcomes(outcomes)
    whole = TrafficMonitor(TRAFFIC)
    whole.observe_predictions(t)
    whole.observe_outcomes(t[labelled])
    assert streamed.state() == whole.state()
    for at in (T0 + now, T0 + now + 600.0):
        assert [f.to_dict() for f in streamed.tick(at)] == [f.to_dict() for f in whole.tick(at)]
    assert streamed.state() == whole.state()


# ------------------------------------------------------------------------------------------ KPIs
KPIS = [KpiSettings("revenue"),
        KpiSettings("basket", field="revenue", aggregate="sum", direction="both"),
        KpiSettings("conversion", aggregate="rate", direction="increase")]
KPI_MONITOR = KpiMonitor(KPIS, {"revenue": np.random.default_rng(0).normal(10, 2, 2000),
                                "conversion": (np.random.default_rng(1).random(2000) < 0.3).astype(float)}, window=500)
kpi_values = st.lists(st.tuples(st.one_of(st.floats(-50, 50), st.just(np.nan)),
                                st.one_of(st.sampled_from([0.0, 1.0, 2.5, -1.0]), st.just(np.nan))),
                      min_size=1, max_size=300)


def _batch_kpis(revenue: np.ndarray, conversion: np.ndarray) -> dict[str, tuple[float, int]]:
    """The aggregates computed directly on the whole window: (statistic, non-missing n)."""
    r, c = revenue[~np.isnan(revenue)], conversion[~np.isnan(conversion)]
    out = {}
    if r.size:
        out["revenue"] = (float(np.sum(r)) / r.size, r.size)
        out["basket"] = (float(np.sum(r)) / r.size, r.size)  # a sum is judged per outcome: sum / n
    if c.size:
        out["conversion"] = (float(np.mean(c > 0)), c.size)
    return out


@settings(max_examples=150, deadline=None)
@given(kpi_values, sizes, st.integers(0, 10))
def test_kpi_aggregates_of_any_split_equal_the_batch_computation(values: list[tuple[float, float]],
                                                                 batch_sizes: list[int], cut: int) -> None:
    """The monitor's outcome window filled in any split (and restored) gives the KPIs of the whole window."""
    revenue = np.array([v[0] for v in values])
    conversion = np.array([v[1] for v in values])
    window = ColumnWindow(len(values))
    bounds = _bounds(len(values), batch_sizes)
    cut = 1 + cut % max(len(bounds) - 1, 1)
    for i, (a, b) in enumerate(bounds):
        if i == cut:
            restored = ColumnWindow(len(values))
            restored.load_state(_json(window.state()))
            window = restored
        window.add({"revenue": revenue[a:b], "conversion": conversion[a:b]})
    got = KPI_MONITOR.evaluate(window.take(), 0.0)
    assert [f.to_dict() for f in got] == [f.to_dict() for f in KPI_MONITOR.evaluate(
        {"revenue": revenue, "conversion": conversion}, 0.0)]
    expected = _batch_kpis(revenue, conversion)
    assert {f.subject for f in got} == set(expected)
    for f in got:
        value, n = expected[f.subject]
        assert f.statistic == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert f.window_size == n
        if f.detector == "sum":  # the window's total travels with the per-outcome statistic
            assert f.details["sum"] == pytest.approx(value * n, rel=1e-9, abs=1e-9)
