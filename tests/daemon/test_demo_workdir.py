"""`driftwarden demo --workdir DIR` never deletes what the demo did not create (issue 10, item 10)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from driftwarden.daemon.demo import MARKER, prepare_workdir, run_demo


def test_a_directory_the_demo_did_not_make_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    problem = prepare_workdir(tmp_path)
    assert problem is not None and "not made by driftwarden demo" in problem and "nothing was deleted" in problem
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert run_demo(None, str(tmp_path), events=3000, out=io.StringIO()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_a_file_as_workdir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert "is a file" in (prepare_workdir(tmp_path / "f") or "")


def test_a_rerun_removes_only_what_the_demo_made(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    assert run_demo(None, str(work), events=3000, out=io.StringIO()) == 0
    made = set(json.loads((work / MARKER).read_text()))
    assert {"alerts.jsonl", "state", "churn_reference.parquet"} <= made
    (work / "notes.txt").write_text("mine")  # the user's file, put there after the first run
    (work / "state" / "extra.txt").write_text("inside a demo directory: the demo's to remove")
    assert run_demo(None, str(work), events=3000, out=io.StringIO()) == 0
    assert (work / "notes.txt").read_text() == "mine"
    assert not (work / "state" / "extra.txt").exists()
    assert "notes.txt" not in json.loads((work / MARKER).read_text())
