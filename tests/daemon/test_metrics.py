"""/metrics: per-check gauges, alert state, performance, labels, bounded subjects, no ``_created`` series."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.daemon.check_metrics import MAX_OPEN_SUBJECTS
from driftwarden.daemon.metrics import Metrics
from driftwarden.detectors.findings import Finding

AGE = {"model": "churn", "kind": "data_drift", "detector": "psi", "subject": "age"}


def served(metrics: Metrics) -> dict[str, float]:
    """Every sample line of the exposition: 'name{labels}' -> value."""
    out = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def test_no_created_series_and_timestamps_in_seconds() -> None:
    m = Metrics()
    m.events.labels(topic="predictions", model="churn").inc(3)
    m.checkpoints.inc()
    m.last_checkpoint.set(1_700_000_000.0)
    with m.batch_seconds.time():
        pass
    m.observe_findings("churn", [Finding("data_drift", "psi", "age", 0.3, 0.2, True, 1.0, 10)])
    names = {series.split("{")[0] for series in served(m)}
    assert not [n for n in names if n.endswith("_created")]
    assert {"driftwarden_events_total", "driftwarden_checkpoints_total", "driftwarden_batch_seconds_count",
            "driftwarden_last_checkpoint_timestamp_seconds"} <= names


def test_a_degraded_finding_sets_its_check_gauges_and_the_alert_follows_the_lifecycle() -> None:
    m = Metrics()
    sample = m.registry.get_sample_value
    lc = AlertLifecycle(for_windows=2)

    def evaluate(t: float, bad: bool) -> None:
        f = Finding("data_drift", "psi", "age", 0.42 if bad else 0.05, 0.2, bad, t, 2000,
                    p_value=1e-9 if bad else 0.6, severity="critical" if bad else "warning")
        m.observe_findings("churn", [f], lc.update("churn", {}, [f], now=t + 1))

    evaluate(100.0, True)  # pending: the series exist, not firing
    assert [sample(f"driftwarden_check_{n}", AGE) for n in ("statistic", "threshold", "degraded", "p_value")] == [
        0.42, 0.2, 1.0, 1e-9]
    assert sample("driftwarden_check_last_evaluation_timestamp_seconds", AGE) == 100.0
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "critical"}) == 0.0
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "warning"}) == 0.0  # critical holds the warning

    evaluate(160.0, True)  # second degraded window: both levels fire
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "critical"}) == 1.0
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "warning"}) == 1.0

    evaluate(220.0, False)  # healthy: gauges follow, alerts resolve
    assert [sample(f"driftwarden_check_{n}", AGE) for n in ("statistic", "degraded", "p_value")] == [0.05, 0.0, 0.6]
    assert sample("driftwarden_check_last_evaluation_timestamp_seconds", AGE) == 220.0
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "critical"}) == 0.0
    lc.drop_resolved()  # the lifecycle forgets them: the series stay at 0 while the check is exported
    m.observe_state(lc.alerts.values(), {"churn": 7})
    assert sample("driftwarden_alert_firing", {**AGE, "severity": "warning"}) == 0.0
    assert sample("driftwarden_pending_joins", {"model": "churn"}) == 7.0


def test_the_alert_state_comes_from_the_lifecycle_also_without_a_finding() -> None:
    m = Metrics()
    lc = AlertLifecycle(for_windows=1, resolve_timeout=600.0)
    f = Finding("traffic", "event_rate", "predictions", 0.0, 1.5, True, 1000.0, 0, severity="critical")
    m.observe_findings("churn", [f], lc.update("churn", {}, [f], now=1000.0))
    labels = {"model": "churn", "kind": "traffic", "detector": "event_rate", "subject": "predictions"}
    assert m.registry.get_sample_value("driftwarden_alert_firing", {**labels, "severity": "critical"}) == 1.0
    lc.expire(1700.0)  # not evaluated for resolve_timeout: resolved by the timer, not by a finding
    m.observe_state(lc.alerts.values(), {})
    assert m.registry.get_sample_value("driftwarden_alert_firing", {**labels, "severity": "critical"}) == 0.0


def test_a_check_without_p_value_loses_its_p_value_series() -> None:
    m = Metrics()
    m.observe_findings("churn", [Finding("data_drift", "psi", "age", 0.3, 0.2, True, 1.0, 10, p_value=0.01)])
    m.observe_findings("churn", [Finding("data_drift", "psi", "age", 0.1, 0.2, False, 2.0, 10)])
    assert m.registry.get_sample_value("driftwarden_check_p_value", AGE) is None
    assert m.registry.get_sample_value("driftwarden_check_statistic", AGE) == 0.1


def test_estimated_and_realized_performance_label_coverage_and_lag() -> None:
    m = Metrics()
    m.observe_findings("churn", [
        Finding("estimated_performance", "accuracy", "accuracy", 0.81, 0.7, False, 600.0, 2000,
                details={"source": "estimated"}),
        Finding("estimated_performance", "accuracy", "accuracy", 0.64, 0.7, True, 300.0, 2000,
                details={"source": "realized", "coverage": 0.95}),
        Finding("traffic", "label_coverage", "outcomes", 0.875, 0.5, False, 300.0, 6000),
        Finding("traffic", "label_lag", "outcomes", 25.0, 3600.0, False, 600.0, 2000, details={"p90": 40.5}),
    ])
    sample = m.registry.get_sample_value
    assert sample("driftwarden_performance", {"model": "churn", "metric": "accuracy", "source": "estimated"}) == 0.81
    assert sample("driftwarden_performance", {"model": "churn", "metric": "accuracy", "source": "realized"}) == 0.64
    # the check itself shows its last evaluation (the realized value, under the estimate's key)
    check = {"model": "churn", "kind": "estimated_performance", "detector": "accuracy", "subject": "accuracy"}
    assert sample("driftwarden_check_statistic", check) == 0.64
    assert sample("driftwarden_check_degraded", check) == 1.0
    assert sample("driftwarden_label_coverage_ratio", {"model": "churn"}) == 0.875
    assert sample("driftwarden_label_lag_seconds", {"model": "churn", "quantile": "0.5"}) == 25.0
    assert sample("driftwarden_label_lag_seconds", {"model": "churn", "quantile": "0.9"}) == 40.5


def test_a_sequential_estimate_shows_its_block_value_not_its_cusum() -> None:
    m = Metrics()
    m.observe_findings("churn", [Finding("estimated_performance", "f1", "f1", 12.5, 10.2, True, 600.0, 500,
                                         details={"sequential": True, "value": 0.58})])
    labels = {"model": "churn", "metric": "f1", "source": "estimated"}
    assert m.registry.get_sample_value("driftwarden_performance", labels) == 0.58


def undeclared(key: str, t: float, bad: bool) -> Finding:
    return Finding("quality", "undeclared_key_rate", key, 0.5 if bad else 0.001, 0.01, bad, t, 100)


def open_subjects(m: Metrics, model: str = "churn") -> set[str]:
    prefix = f'driftwarden_check_statistic{{detector="undeclared_key_rate",kind="quality",model="{model}",subject="'
    return {s[len(prefix):-2] for s in served(m) if s.startswith(prefix)}


def test_undeclared_keys_are_capped_per_model_degraded_ones_first() -> None:
    m = Metrics()
    lc = AlertLifecycle(for_windows=1)
    first = [undeclared(f"k{i:02d}", 10.0 + i, False) for i in range(MAX_OPEN_SUBJECTS)]
    m.observe_findings("churn", first)
    assert open_subjects(m) == {f"k{i:02d}" for i in range(MAX_OPEN_SUBJECTS)}

    m.observe_findings("churn", [undeclared("late_healthy", 100.0, False)])  # full: a healthy newcomer is not exported
    assert "late_healthy" not in open_subjects(m)
    bad = [undeclared(f"bad{i}", 100.0, True) for i in range(3)]  # degraded ones replace the oldest healthy ones
    m.observe_findings("churn", bad, lc.update("churn", {}, bad, now=100.0))
    assert open_subjects(m) == {*(f"k{i:02d}" for i in range(3, MAX_OPEN_SUBJECTS)), "bad0", "bad1", "bad2"}
    assert m.registry.get_sample_value("driftwarden_check_subjects_dropped_total", {"model": "churn"}) == 4.0
    labels = {"model": "churn", "kind": "quality", "detector": "undeclared_key_rate", "subject": "bad1"}
    assert m.registry.get_sample_value("driftwarden_alert_firing", {**labels, "severity": "warning"}) == 1.0

    # a flood of keys never grows the series count past the cap (nor touches other models or checks)
    m.observe_findings("other", [undeclared("x", 1.0, True)])
    m.observe_findings("churn", [Finding("data_drift", "psi", "age", 0.1, 0.2, False, 200.0, 10)])
    for t in range(200):
        flood = [undeclared(f"flood{t}_{i}", 300.0 + t, True) for i in range(5)]
        m.observe_findings("churn", flood, lc.update("churn", {}, flood, now=300.0 + t))
    assert len(open_subjects(m)) == MAX_OPEN_SUBJECTS
    assert open_subjects(m, "other") == {"x"}
    assert m.registry.get_sample_value("driftwarden_check_statistic", AGE) == 0.1
    firing = [s for s in served(m) if s.startswith("driftwarden_alert_firing{") and 'model="churn"' in s]
    assert len(firing) <= 2 * MAX_OPEN_SUBJECTS


def test_a_check_evicted_and_evaluated_again_exports_its_new_values() -> None:
    """A check's series are looked up once and kept: one removed past the cap must come back live."""
    m = Metrics()
    m.observe_findings("churn", [undeclared(f"k{i:02d}", 10.0 + i, False) for i in range(MAX_OPEN_SUBJECTS)])
    m.observe_findings("churn", [undeclared("bad", 100.0, True)])  # evicts k00, the oldest healthy one
    assert "k00" not in open_subjects(m)
    for t, degraded in ((200.0, True), (201.0, False)):  # k00 again (replacing the oldest healthy), then updated
        m.observe_findings("churn", [undeclared("k00", t, degraded)])
        labels = {"model": "churn", "kind": "quality", "detector": "undeclared_key_rate", "subject": "k00"}
        assert m.registry.get_sample_value("driftwarden_check_last_evaluation_timestamp_seconds", labels) == t
        assert m.registry.get_sample_value("driftwarden_check_degraded", labels) == float(degraded)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["churn", "fraud"]), st.sampled_from(["age", "plan", "score"]),
                          st.floats(-1e6, 1e6), st.booleans(), st.one_of(st.none(), st.floats(0, 1)),
                          st.floats(0, 2e9)), max_size=40))
def test_the_check_collector_serves_what_labelled_gauges_served(evaluations: list[tuple[str, str, float, bool,
                                                                                        float | None, float]]) -> None:
    """The per-check series come from one dict at scrape time: the same exposition as one
    labelled Gauge child per series (the storage they replaced), p-value series removed alike."""
    from prometheus_client import CollectorRegistry, Gauge

    m = Metrics()
    old = CollectorRegistry()
    labels = ("model", "kind", "detector", "subject")
    gauges = {n: Gauge(f"driftwarden_check_{n}", "", labels, registry=old)
              for n in ("statistic", "threshold", "degraded", "p_value", "last_evaluation_timestamp_seconds")}
    for model, subject, stat, bad, p, end in evaluations:
        f = Finding("data_drift", "psi", subject, stat, 0.2, bad, end, 10, p_value=p)
        m.observe_findings(model, [f])
        key = (model, "data_drift", "psi", subject)
        for name, value in (("statistic", stat), ("threshold", 0.2), ("degraded", float(bad)),
                            ("last_evaluation_timestamp_seconds", end)):
            gauges[name].labels(*key).set(value)
        if p is not None:
            gauges["p_value"].labels(*key).set(p)
        elif key in gauges["p_value"]._metrics:
            gauges["p_value"].remove(*key)
    want = {(s.name, tuple(sorted(s.labels.items())), s.value) for fam in old.collect() for s in fam.samples}
    got = {(s.name, tuple(sorted(s.labels.items())), s.value) for fam in m.registry.collect()
           if fam.name.startswith("driftwarden_check_") and fam.name != "driftwarden_check_subjects_dropped"
           for s in fam.samples}
    assert got == want


def _lines_by_family(text: str) -> dict[str, list[str]]:
    """The exposition's lines grouped by family (from its # HELP line), each family's lines in order."""
    out: dict[str, list[str]] = {}
    family = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            family = line.split(" ")[2]
        out.setdefault(family, []).append(line)
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), st.sampled_from(["data_drift", "quality"]), st.text(max_size=12),
                          st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                          st.one_of(st.none(), st.floats(0, 1)), st.floats(0, 2e9)), max_size=30))
def test_the_served_text_is_what_generate_latest_writes(evaluations: list[tuple[str, str, str, float, bool,
                                                                                   float | None, float]]) -> None:
    """``Metrics.exposition`` writes the per-check series from label text made once per check:
    line for line what prometheus_client's ``generate_latest`` writes for the same registry (labels
    with quotes, backslashes, newlines and any unicode; NaN, infinities, 1e+06 floats), each family whole."""
    m = Metrics()
    m.events.labels(topic="predictions", model="churn").inc(3)
    for model, kind, subject, stat, bad, p, end in evaluations:
        m.observe_findings(model, [Finding(kind, "psi", subject, stat, 0.2, bad, end, 10, p_value=p)])
    assert _lines_by_family(m.exposition().decode()) == _lines_by_family(generate_latest(m.registry).decode())


def test_metrics_are_served_gzip_compressed_when_asked(tmp_path: Path) -> None:
    import gzip
    import urllib.request

    from driftwarden.daemon.http_server import HttpServer

    m = Metrics()
    for i in range(200):
        m.observe_findings(f"model-{i}", [Finding("data_drift", "cusum", f"f{j:02d}", 0.1, 1.0, False, 1.7e9, 500)
                                          for j in range(20)])
    server = HttpServer("127.0.0.1", 0, m, tmp_path, lambda: {"ok": True})
    server.start()
    try:
        url = "http://{}:{}/metrics".format(*server.address)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            packed = r.read()
        with urllib.request.urlopen(url) as r:
            assert r.headers["Content-Encoding"] is None
            plain = r.read()
    finally:
        server.stop()
    assert gzip.decompress(packed) == plain == m.exposition()
    assert len(packed) < len(plain) / 5


def test_excluded_kinds_get_no_check_series_but_keep_their_alerts_and_gauges() -> None:
    m = Metrics(exclude_check_kinds=["quality", "estimated_performance"])
    lc = AlertLifecycle(for_windows=1)
    found = [Finding("quality", "missing_rate", "age", 0.4, 0.05, True, 100.0, 500, severity="critical"),
             Finding("data_drift", "psi", "age", 0.1, 0.2, False, 100.0, 500),
             Finding("estimated_performance", "f1", "f1", 0.7, 0.6, False, 100.0, 500)]
    m.observe_findings("churn", found, lc.update("churn", {}, found, now=101.0))
    names = {series.split("{")[0] + ("" if "kind=" not in series else series.split('kind="')[1].split('"')[0])
             for series in served(m)}
    assert "driftwarden_check_statisticdata_drift" in names
    assert not {"driftwarden_check_statisticquality", "driftwarden_check_statisticestimated_performance"} & names
    assert m.registry.get_sample_value("driftwarden_alert_firing", {
        "model": "churn", "kind": "quality", "detector": "missing_rate", "subject": "age", "severity": "critical"}) == 1.0
    assert m.registry.get_sample_value("driftwarden_performance",
                                       {"model": "churn", "metric": "f1", "source": "estimated"}) == 0.7


def test_a_model_handed_over_loses_its_gauges_and_keeps_its_counters() -> None:
    """``state.backend: kafka``: the member a model left stops exporting its gauges (the owner exports them)."""
    m = Metrics()
    lc = AlertLifecycle(for_windows=1)
    for model in ("churn", "fraud"):
        findings = [Finding("data_drift", "psi", "age", 0.42, 0.2, True, 100.0, 2000, p_value=1e-9),
                    Finding("estimated_performance", "accuracy", "accuracy", 0.81, 0.7, False, 600.0, 2000,
                            details={"source": "estimated"}),
                    Finding("traffic", "label_coverage", "outcomes", 0.875, 0.5, False, 300.0, 6000),
                    Finding("traffic", "label_lag", "outcomes", 25.0, 3600.0, False, 600.0, 2000, details={"p90": 40.5})]
        m.observe_findings(model, findings, lc.update(model, {}, findings, now=700.0))
        m.events.labels(topic="predictions", model=model).inc(7)
        m.degraded.labels(model=model, kind="data_drift", detector="psi").inc()
    m.observe_state(lc.alerts.values(), {"churn": 3, "fraud": 4})
    before = served(m)
    for name in ("driftwarden_alert_firing", "driftwarden_check_statistic", "driftwarden_performance",
                 "driftwarden_label_coverage_ratio", "driftwarden_label_lag_seconds", "driftwarden_pending_joins"):
        assert any(s.startswith(name + "{") and 'model="churn"' in s for s in before), name

    m.forget_models({"churn"})
    after = served(m)
    kept = {s for s in after if 'model="churn"' in s}
    assert kept == {s for s in before if 'model="churn"' in s and s.split("{")[0].endswith("_total")}
    assert kept, "its counters stay"
    assert {s: v for s, v in after.items() if 'model="churn"' not in s} == \
        {s: v for s, v in before.items() if 'model="churn"' not in s}, "the other model's series are untouched"
