from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from driftwarden.alerts.reports.builder import build_report, write_report
from driftwarden.alerts.reports.report import Report
from driftwarden.alerts.reports.segments import wilson_interval
from driftwarden.daemon.simulate import START
from driftwarden.detectors.batch import OutcomeBatch
from tests.reports.conftest import WINDOW, Run, churn_spec, stream, take

NOW = 1_800_000_000.0


def report_of(run: Run, **kw: Any) -> Report:
    assert run.window is not None
    return build_report(model_id="churn", spec=run.spec, reference=run.reference, current=run.window,
                        outcomes=run.outcomes, triggering=run.triggering, recent=run.findings,
                        snapshot=run.monitor.snapshot(), detector_state=run.monitor.state(), now=NOW, **kw)


def test_covariate_shift_ranks_the_shifted_features_first(reference: OutcomeBatch,
                                                          traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(covariate_shift_at=3 * WINDOW))
    assert any(f.kind == "data_drift" and f.subject == "age" for f in run.triggering)
    report = report_of(run, with_plots=False)
    assert {s.feature for s in report.suspects[:2]} == {"age", "monthly_spend"}
    assert report.suspects[0].drift_source == "finding" and report.suspects[0].drift_degraded
    # the sequential drift alarm came at the second shifted block of 500 (the windowed tests waited for the 4th
    # window); the onset is the first block of its change window: the first shifted block, after the last healthy one
    age = run.monitor.snapshot()["evaluations"]["data_drift/cusum/age"]
    assert next(p["window_end"] for p in age if p["degraded"]) == START + (3 * WINDOW + 1000 - 1) / 20
    assert report.onset == START + (3 * WINDOW + 500 - 1) / 20
    # surely healthy: the last block before the shift at which the CUSUM was 0
    assert report.last_healthy is not None and report.last_healthy <= START + (3 * WINDOW - 1) / 20
    assert next(p["statistic"] for p in age if p["window_end"] == report.last_healthy) == 0.0
    assert all(not s.drift_degraded for s in report.suspects[2:])


def test_a_single_shifted_feature_ranks_first(reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch]) -> None:
    rows = traffic(windows=2)
    rows.features["support_tickets"][WINDOW:] += 2.0
    report = report_of(stream(churn_spec(), reference, rows), with_plots=False)
    assert report.suspects[0].feature == "support_tickets"
    assert report.suspects[0].importance > 0.2  # estimated on the reference: the score depends on it


def test_configured_importance_wins_over_the_estimate(reference: OutcomeBatch,
                                                      traffic: Callable[..., OutcomeBatch]) -> None:
    import msgspec

    spec = churn_spec()
    features = {n: msgspec.structs.replace(f, importance=1.0 if n == "country" else 0.01)
                for n, f in spec.features.items()}
    spec = msgspec.structs.replace(spec, features=features)
    run = stream(spec, reference, traffic(windows=1))
    report = report_of(run, with_plots=False)
    by = {s.feature: s for s in report.suspects}
    assert by["country"].importance == 1.0 and by["country"].importance_source == "config"
    assert by["age"].importance == 0.01


def test_broken_segment_is_the_worst(reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch],
                                     tmp_path: Path) -> None:
    rows = traffic(windows=2)
    broken = (rows.features["plan"] == "pro") & (rows.features["country"] == "DE")
    broken[:WINDOW] = False
    rows.y_true[broken] = np.where(rows.y_true[broken] == "1", "0", "1")
    run = stream(churn_spec(), reference, rows)
    report = report_of(run)
    worst = report.segments[0]
    assert worst.label == "plan=pro & country=DE"
    assert worst.n == int(broken[WINDOW:].sum())
    assert worst.ci_low < worst.value < worst.ci_high and worst.change < -0.3
    assert worst.worse_by_at_least > 0.2
    files = write_report(report, tmp_path, NOW)
    md = files.markdown.read_text()
    assert "for `plan=pro &amp; country=DE`" in md and "accuracy fell" in md
    data = json.loads(files.json.read_text())
    assert data["segments"][0]["values"] == ["pro", "DE"] and data["segments"][0]["n"] == worst.n


def test_new_model_version_at_onset_is_a_lined_up_change(reference: OutcomeBatch,
                                                          traffic: Callable[..., OutcomeBatch]) -> None:
    n = 5 * WINDOW
    versions = np.where(np.arange(n) >= 3 * WINDOW, "2.0.0", "1.0.0").astype(object)
    run = stream(churn_spec(), reference, traffic(versions=versions, concept_drift_at=3 * WINDOW))
    assert any(f.kind == "performance" for f in run.triggering)
    both = _concat_rows(run, 3)
    report = build_report(model_id="churn", spec=run.spec, reference=run.reference, current=both,
                          outcomes=None, triggering=run.triggering, recent=run.findings,
                          snapshot=run.monitor.snapshot(), now=NOW, model_version="2.0.0", with_plots=False)
    version = [c for c in report.changes if c.kind == "model_version"]
    assert len(version) == 1 and version[0].subject == "2.0.0" and version[0].lined_up
    assert report.changes[0] is version[0]


def _concat_rows(run: Run, windows: int) -> OutcomeBatch:
    assert run.rows is not None
    return take(run.rows, len(run.rows) - windows * WINDOW, len(run.rows))


def test_wilson_interval_matches_the_textbook_value() -> None:
    lo, hi = wilson_interval(np.array([0, 10]), np.array([10, 10]))
    assert lo[0] == 0.0 and abs(hi[0] - 0.2775) < 1e-4 and abs(lo[1] - 0.7225) < 1e-4 and abs(hi[1] - 1.0) < 1e-12


def test_generate_report_from_a_live_monitor(reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch],
                                              tmp_path: Path) -> None:
    from driftwarden.daemon.report_cmd import generate_report
    from tests.reports.conftest import prediction_rows

    run = stream(churn_spec(), reference, traffic(windows=1, covariate_shift_at=0))
    assert run.rows is not None
    run.monitor.observe_predictions(prediction_rows(take(run.rows, 0, 500)))  # an open, partial window
    files = generate_report(model_id="churn", monitor=run.monitor, reference=reference, reports_dir=tmp_path,
                            now=NOW, triggering=run.triggering, recent=run.findings)
    assert files is not None and files.bundle.is_file()
    assert "Top suspects:* `age`" in files.markdown.read_text() or "`monthly_spend`" in files.markdown.read_text()
