"""Report -> bundle -> replay reproduces the report's statistics exactly."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from driftwarden.alerts.reports.builder import build_report, write_report
from driftwarden.alerts.reports.bundle import read_bundle
from driftwarden.daemon.replay import replay, run_replay
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.findings import Finding
from tests.reports.conftest import WINDOW, churn_spec, stream

NOW = 1_800_000_000.0


def test_bundle_round_trip_reproduces_the_findings_exactly(reference: OutcomeBatch, tmp_path: Path,
                                                           traffic: Callable[..., OutcomeBatch]) -> None:
    rows = traffic(windows=4, covariate_shift_at=2 * WINDOW, concept_drift_at=3 * WINDOW)
    rows.features["plan"][-50:] = None  # missing values travel as nulls
    run = stream(churn_spec(), reference, rows)
    assert run.window is not None and run.triggering
    report = build_report(model_id="churn", spec=run.spec, reference=reference, current=run.window,
                          outcomes=run.outcomes, triggering=run.triggering, recent=run.last,
                          snapshot=run.monitor.snapshot(), detector_state=run.monitor.state(), now=NOW,
                          model_version="1.0.0", with_plots=False)
    files = write_report(report, tmp_path, NOW)

    bundle = read_bundle(files.bundle)
    assert bundle.spec == run.spec and bundle.state == run.monitor.state()
    assert bundle.triggering == report.triggering
    for name, values in run.window.features.items():
        assert [str(v) for v in bundle.current.features[name]] == [str(v) for v in values]

    _, rows_out, not_recomputed = replay(files.bundle)
    recomputed = {r.finding.key: r.finding for r in rows_out}
    def windowed(f: Finding) -> bool:  # what one window reproduces
        # a sequential (CUSUM) verdict depends on the blocks before the window: not reproducible from it
        # (the missing rate is checked per block of 500 too: the window's rate is another number)
        return (f.kind != "concept_drift" and f.details.get("source") != "realized" and not f.details.get("sequential")
                and "cusum" not in f.details and f.detector != "missing_rate")

    recorded = {f.key for f in run.last if windowed(f)}
    assert recorded <= set(recomputed)
    for f in run.last:
        if not windowed(f):
            continue
        g = recomputed[f.key]
        assert (g.statistic, g.threshold, g.p_value, g.degraded) == (f.statistic, f.threshold, f.p_value, f.degraded)
    assert {f.kind for f in not_recomputed} <= {"concept_drift", "estimated_performance", "data_drift",
                                                "prediction_drift", "multivariate_drift", "performance"}  # the CUSUMs

    out = io.StringIO()
    code = run_replay(str(files.bundle), "json", out)
    doc = json.loads(out.getvalue())
    assert code == 0
    assert doc["bundle"]["model_id"] == "churn" and doc["bundle"]["versions"]["numpy"]
    age = next(x for x in doc["findings"] if x["kind"] == "data_drift" and x["subject"] == "age")
    # recorded: the CUSUM of age (detector cusum, not recomputable from one window); recomputed: its window test
    assert age["recorded_match"] is None and age["degraded"] is True
    table = io.StringIO()
    assert run_replay(str(files.bundle), "table", table) == 0
    # the windowed findings were compared one by one above; the bundle's recorded (triggering) ones are
    # CUSUM verdicts now that F1/ROC AUC and CBPE are sequential like drift: listed, none differs
    assert "recorded finding(s) reproduced exactly, 0 differ" in table.getvalue()
    assert "DIFFERS" not in table.getvalue()


def test_a_tampered_bundle_is_refused(reference: OutcomeBatch, tmp_path: Path,
                                      traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(windows=1))
    assert run.window is not None
    report = build_report(model_id="m", spec=run.spec, reference=reference, current=run.window, now=NOW,
                          with_plots=False)
    files = write_report(report, tmp_path, NOW)
    with tarfile.open(files.bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members["spec.json"] = members["spec.json"].replace(b'"binary"', b'"regression"')
    bad = tmp_path / "bad.replay.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert run_replay(str(bad), "table", io.StringIO()) == 2
    assert run_replay(str(tmp_path / "missing.tar.gz"), "table", io.StringIO()) == 2


def test_the_sequential_findings_of_the_degraded_blocks_replay_exactly(
        reference: OutcomeBatch, tmp_path: Path, traffic: Callable[..., OutcomeBatch]) -> None:
    """A CUSUM's finding depends on every block before its own: the bundle's replay steps (the last
    degraded block of predictions and of outcomes, with the state before each) reproduce it bit for bit."""
    rows = traffic(windows=4, covariate_shift_at=2 * WINDOW, concept_drift_at=3 * WINDOW)
    run = stream(churn_spec(), reference, rows)
    steps = run.monitor.replay_steps()
    assert {s.kind for s in steps} == {"prediction_block", "outcome_block", "accuracy_batch"}
    end = {s.kind: s.end for s in steps}
    # what the report records: the degraded findings of the last poll (the blocks the steps hold among them)
    degraded = [f for f in run.last if f.degraded]
    sequential = [f for f in degraded if f.window_end == end[
        "accuracy_batch" if "leading" in f.details else "outcome_block" if f.kind == "performance"
        else "prediction_block"]]
    assert {f.kind for f in sequential} >= {"data_drift", "performance"}
    assert any(f.detector == "accuracy" for f in sequential)
    report = build_report(model_id="churn", spec=run.spec, reference=reference, current=run.window,
                          outcomes=run.outcomes, triggering=degraded, now=NOW, with_plots=False, steps=steps)
    files = write_report(report, tmp_path, NOW)
    assert [s.to_json() for s in read_bundle(files.bundle).steps] == [s.to_json() for s in steps]

    _, rows_out, not_recomputed = replay(files.bundle)
    replayed = {(r.finding.key, r.finding.window_end): r for r in rows_out if r.step is not None}
    for f in sequential:
        r = replayed[(f.key, f.window_end)]
        assert r.match is True
        assert r.finding.to_dict() == f.to_dict()  # every number, the summary and the details
    assert not {(f.key, f.window_end) for f in not_recomputed} & set(replayed)
    table = io.StringIO()
    assert run_replay(str(files.bundle), "table", table) == 0
    assert f"{sum(r.match is True for r in rows_out)} recorded finding(s) reproduced exactly, 0 differ" in table.getvalue()
    assert sum(r.match is True for r in rows_out) >= len(sequential)


def test_a_replay_step_that_does_not_fit_the_spec_is_refused_with_its_reason(
        reference: OutcomeBatch, tmp_path: Path, traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(windows=4, concept_drift_at=2 * WINDOW))
    step = next(s for s in run.monitor.replay_steps() if s.kind == "accuracy_batch")
    broken = dataclasses.replace(step, state={**step.state, "cusums": step.state["cusums"][:1]})  # CUSUMs missing
    report = build_report(model_id="churn", spec=run.spec, reference=reference, current=run.window, now=NOW,
                          with_plots=False, steps=[broken])
    files = write_report(report, tmp_path, NOW)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_replay(str(files.bundle), "table", io.StringIO()) == 2
    assert "replay step accuracy_batch" in err.getvalue() and "does not fit the bundle's spec" in err.getvalue()
