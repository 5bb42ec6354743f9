"""A report that cannot be drawn or written: error bars never negative, no half-written folder."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from driftwarden.alerts.reports import plots
from driftwarden.alerts.reports.builder import build_report, write_report
from driftwarden.alerts.reports.history import Point
from driftwarden.alerts.reports.report import Report, Segment
from driftwarden.alerts.reports.retention import purge_reports
from driftwarden.alerts.reports.segments import wilson_interval
from driftwarden.detectors.batch import OutcomeBatch
from tests.reports.conftest import churn_spec, stream

NOW = 1_800_000_000.0
OLD_UPPER_10_OF_10 = 1.0 - 1.1102230246251565e-16  # what wilson_interval gave for 10 of 10 before the fix


def segment(value: float, low: float, high: float, reference: float = 0.8, label: str = "plan=pro") -> Segment:
    return Segment(features=["plan"], values=[label.split("=")[1]], metric="accuracy", n=10, value=value, ci_low=low,
                   ci_high=high, reference_n=100, reference_value=reference, change=value - reference,
                   worse_by_at_least=0.0)


def test_wilson_interval_always_contains_the_proportion() -> None:
    n = np.arange(1, 3001)
    for successes in (n, np.zeros_like(n), n // 3, n - 1):
        lo, hi = wilson_interval(successes, n)
        p = successes / n
        assert np.all(lo <= p) and np.all(p <= hi) and np.all(lo >= 0) and np.all(hi <= 1)
    lo, hi = wilson_interval(np.array([10]), np.array([10]))
    assert hi[0] == 1.0  # was 1 - 1.1e-16: the upper error bar came out negative


def test_error_bars_are_clipped_and_nan_draws_no_bar() -> None:
    segs = [segment(1.0, 0.7225, OLD_UPPER_10_OF_10), segment(0.5, 0.5 + 1e-12, 0.6), segment(0.4, math.nan, 0.5)]
    values, err = plots.segment_errors(segs)
    assert values.tolist() == [1.0, 0.5, 0.4]
    assert err[0].tolist() == pytest.approx([0.2775, 0.0, 0.0]) and err[1].tolist() == pytest.approx([0.0, 0.1, 0.1])
    assert (err >= 0).all()


def test_segments_chart_draws_the_input_that_failed_a_report() -> None:
    # before the fix: ValueError: 'xerr' must not contain negative values
    segs = [segment(1.0, 0.7225, OLD_UPPER_10_OF_10), segment(math.nan, math.nan, math.nan, label="plan=free"),
            segment(0.6, 0.4, 0.8, reference=math.nan, label="plan=basic")]
    uri = plots.segments_chart(segs)
    assert uri.startswith("data:image/png;base64,") and len(uri) > 1000


@pytest.fixture
def report(reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch]) -> Report:
    run = stream(churn_spec(), reference, traffic(windows=1))
    assert run.window is not None
    return build_report(model_id="churn", spec=run.spec, reference=reference, current=run.window,
                        outcomes=run.outcomes, snapshot=run.monitor.snapshot(), detector_state=run.monitor.state(),
                        now=NOW, with_plots=False)


def test_a_report_that_fails_half_way_leaves_no_folder(report: Report, tmp_path: Path) -> None:
    # the replay bundle is written first, then the HTML page cannot format a NaN time
    # (before: a folder holding only the bundle was left behind)
    report.window["start"] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        write_report(report, tmp_path, NOW)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert [p.name for p in (tmp_path / "churn").iterdir()] == []


def test_a_written_report_is_complete_and_rewriting_replaces_it(report: Report, tmp_path: Path) -> None:
    files = write_report(report, tmp_path, NOW)
    assert sorted(p.name for p in files.directory.iterdir()) == sorted(
        ["report.html", "report.json", "summary.md", f"{report.report_id}.replay.tar.gz"])
    assert [p.name for p in (tmp_path / "churn").iterdir()] == [report.report_id]  # no staging folder left
    files.directory.joinpath("stale.txt").write_text("from an earlier run")
    again = write_report(report, tmp_path, NOW)
    assert again.directory == files.directory and not (files.directory / "stale.txt").exists()
    assert again.json.is_file() and [p.name for p in (tmp_path / "churn").iterdir()] == [report.report_id]


def test_retention_removes_a_writer_s_leftovers_but_not_a_report_in_progress(report: Report, tmp_path: Path) -> None:
    files = write_report(report, tmp_path, NOW)
    leftover = tmp_path / "churn" / f".{report.report_id}.0123abcd.partial"
    leftover.mkdir()
    (leftover / "x.replay.tar.gz").write_bytes(b"half")
    mtime = leftover.stat().st_mtime
    assert purge_reports(tmp_path, retention_seconds=30 * 86400, now=mtime + 60).archived == []
    assert leftover.exists()  # a minute old: may be a report being written
    result = purge_reports(tmp_path, retention_seconds=30 * 86400, now=mtime + 3601)
    assert not leftover.exists() and result.archived == [] and files.html.is_file()


@pytest.mark.parametrize("far_off", [4e11, -1e12, 1e15, math.nan, 3e8])
def test_timeline_leaves_out_points_dated_far_off(far_off: float) -> None:
    # before the fix, years past 9999 or before 1 raised "Date ordinal ... converts to ..." (CI's chaos run,
    # hostile timestamps) and the report lost its plots; a point in 1979 stretched the axis over decades
    points = [Point(NOW + 60 * i, 0.1 * i, 1.0, i > 5) for i in range(10)]
    uri = plots.timeline("drift", {"age": [*points, Point(far_off, 0.5, 1.0, True)]}, NOW + 300, "statistic",
                         band=([NOW, far_off], [0.1, 0.2], [0.3, 0.4]))
    assert uri.startswith("data:image/png;base64,")
    lo, hi = plots.time_range([p.window_end for p in points] + [far_off]) or (0.0, 0.0)
    assert lo <= NOW and hi >= NOW + 540 and not lo <= far_off <= hi
    assert hi - lo < 30 * 86_400


def test_time_range_of_nothing_plottable_is_none() -> None:
    assert plots.time_range([math.nan, 1e20]) is None
    assert plots.timeline("drift", {"age": [Point(math.nan, 0.5, 1.0, True)]}, None, "statistic").startswith("data:")
