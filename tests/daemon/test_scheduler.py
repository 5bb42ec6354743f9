from __future__ import annotations

import time
from pathlib import Path

from driftwarden.alerts.outbox import Outbox
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.scheduler import OUTBOX_KEEP, Maintenance
from driftwarden.daemon.simulate import Scenario, write_reference


def test_maintenance_purges_old_outbox_entries_and_archives_old_reports(tmp_path: Path) -> None:
    write_reference(tmp_path / "ref.parquet", Scenario(), rows=500)
    config = parse_config({
        "reports": {"directory": "reports", "retention": "1d"},
        "models": [{"id": "churn", "task": "binary", "reference": "ref.parquet",
                    "features": {"age": {"type": "numeric"}}}],
    }, base_dir=str(tmp_path))
    old_report = tmp_path / "reports" / "churn" / "20261128T120000Z-aaaaaaaa"
    new_report = tmp_path / "reports" / "churn" / "20261129T120000Z-bbbbbbbb"
    for d in (old_report, new_report):
        d.mkdir(parents=True)
        (d / "report.html").write_text("<html></html>")
    now = 1795996800.0  # 2026-11-30T00:00:00Z
    outbox = Outbox(":memory:")
    done = outbox.put("k-old", "log", {"x": 1}, now - OUTBOX_KEEP - 10)
    pending = outbox.put("k-pending", "log", {"x": 2}, now - OUTBOX_KEEP - 10)
    assert done is not None and pending is not None
    outbox.mark_delivered(done, now - OUTBOX_KEEP - 5)
    counts = Maintenance(config, outbox).run_once(now)
    assert counts == {"reports_archived": 1, "archives_purged": 0, "outbox_purged": 1}
    assert not old_report.exists() and new_report.exists()
    assert [e.key for e in outbox.entries()] == ["k-pending"]  # undelivered work is never purged


def test_scheduler_runs_the_job_in_the_background(tmp_path: Path) -> None:
    write_reference(tmp_path / "ref.parquet", Scenario(), rows=500)
    config = parse_config({"models": [{"id": "m", "task": "binary", "reference": "ref.parquet",
                                       "features": {"age": {"type": "numeric"}}}]}, base_dir=str(tmp_path))
    runs: list[float] = []
    maintenance = Maintenance(config, Outbox(":memory:"), interval=0.05)
    maintenance.run_once = lambda now=None: runs.append(time.time()) or {}  # type: ignore[method-assign]
    maintenance.start()
    try:
        deadline = time.monotonic() + 10
        while not runs and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        maintenance.stop()
    assert runs
