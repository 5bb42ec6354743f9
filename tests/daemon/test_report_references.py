"""Reports reuse a loaded reference table, but keep only the few used last (not one per model for ever)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import driftwarden.daemon.report_cmd as report_cmd
from driftwarden.daemon.demo import demo_app


def test_reference_tables_for_reports_are_kept_least_recently_used(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_cmd, "REFERENCES_KEPT", 2)
    app = demo_app(tmp_path)
    runtime = app.pipeline.models["churn"]
    configured = str(app.config.resolve(runtime.config.reference))
    copies = []
    for i in range(3):
        copies.append(str(tmp_path / f"ref{i}.parquet"))
        shutil.copy(configured, copies[-1])
    hook = app.reports
    loaded = []
    for path in (copies[0], copies[1], copies[0], copies[2]):
        runtime.reference_path = path
        loaded.append(hook.reference(runtime))
    assert loaded[2] is loaded[0]  # reused while kept
    assert list(hook._references) == [copies[0], copies[2]]  # copies[1] was the least recently used
    assert len(loaded[3]) == len(loaded[0])
    app.close()
