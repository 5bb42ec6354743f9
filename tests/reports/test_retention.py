from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from driftwarden.alerts.reports.builder import build_report, write_report
from driftwarden.alerts.reports.retention import purge_reports
from driftwarden.detectors.batch import OutcomeBatch
from tests.reports.conftest import churn_spec, stream

DAY = 86_400.0
T0 = 1_800_000_000.0


def test_old_reports_are_archived_then_purged(reference: OutcomeBatch, tmp_path: Path,
                                              traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(windows=1))
    assert run.window is not None
    written = []
    for t in (T0, T0 + 5 * DAY):
        report = build_report(model_id="churn/../x", spec=run.spec, reference=reference, current=run.window,
                              now=t, with_plots=False)
        written.append(write_report(report, tmp_path, t))
    old, new = written

    result = purge_reports(tmp_path, retention_seconds=3 * DAY, now=T0 + 5.5 * DAY)
    assert not old.directory.exists() and new.html.exists()
    assert len(result.archived) == 1 and not result.purged
    old_archive = result.archived[0]
    assert old_archive.is_file() and old_archive.is_relative_to(tmp_path / "archive")

    assert purge_reports(tmp_path, 3 * DAY, now=T0 + 5.9 * DAY).archived == []  # idempotent
    result = purge_reports(tmp_path, retention_seconds=3 * DAY, now=T0 + 6.5 * DAY)  # archive kept 3 more days
    assert result.purged == [old_archive] and not old_archive.exists() and not result.archived
    result = purge_reports(tmp_path, retention_seconds=3 * DAY, now=T0 + 9 * DAY)
    assert not result.purged and len(result.archived) == 1 and not new.directory.exists()
    result = purge_reports(tmp_path, retention_seconds=3 * DAY, now=T0 + 12 * DAY)
    assert len(result.purged) == 1
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
