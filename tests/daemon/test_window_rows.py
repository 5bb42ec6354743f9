"""A checkpoint stores a model's open windows as rows appended (window_rows), not whole each time."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import driftwarden.daemon.app as app_module
from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.join import JoinChanges
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages
from driftwarden.daemon.window_spill import SpilledRows
from driftwarden.detectors.window import ColumnWindow, WindowRows
from tests.daemon.test_checkpoint_format import canon, old_round_trip


class Refused(Exception):
    """A checkpoint that fails after the model's state was made (the transaction rolls back)."""


def _rows(n: int, start: int, with_label: bool) -> dict[str, np.ndarray]:
    cols = {"t": np.arange(start, start + n, dtype=np.float64)}
    if with_label:
        label = np.empty(n, dtype=object)
        label[:] = [None if i % 5 == 0 else f"c{i % 3}" for i in range(start, start + n)]
        cols["label"] = label
    return cols


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> bool:
    return list(got) == list(want) and all(
        got[k].dtype == want[k].dtype and got[k].tolist() == want[k].tolist() for k in want)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.one_of(st.tuples(st.just("add"), st.integers(1, 40), st.booleans()),
                              st.sampled_from([("take",), ("save",), ("refused",), ("restore",)])),
                    min_size=1, max_size=40),
       spill=st.booleans())
def test_the_stored_rows_restore_the_window_as_of_the_last_checkpoint_that_committed(
        tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]], spill: bool) -> None:
    """Rows added, windows closed, checkpoints that commit or fail, restores: a restore gives the rows the
    window held at the last committed checkpoint; a failed one leaves its rows to be sent again."""
    directory = tmp_path_factory.mktemp("rows")
    checkpoint = Checkpoint(directory / "dw.db")

    def window() -> ColumnWindow:
        return ColumnWindow(120, SpilledRows(directory, "m", "prediction") if spill else None, 16)

    w, added, committed = window(), 0, {}
    try:
        for op in ops:
            if op[0] == "add":
                n = min(op[1], w.room)
                if n:
                    w.add(_rows(n, added, op[2]))
                    added += n
            elif op[0] == "take":
                w.take()
            elif op[0] in ("save", "refused"):
                rows = WindowRows()
                state = {"version": 1, "pred_window": rows.state("pred_window", w)}

                def states(state: dict[str, Any] = state, rows: WindowRows = rows,
                           refuse: bool = op[0] == "refused") -> Any:
                    yield "m", state, rows
                    if refuse:
                        raise Refused

                try:
                    checkpoint.commit({}, states(), JoinChanges(), {})
                    committed = w.columns()
                except Refused:
                    pass
            else:  # restore: a new window from the checkpoint, and it goes on from there
                stored = checkpoint.monitor_state("m")
                if stored is None:
                    continue
                w = window()
                w.load_state(stored["pred_window"])
                assert _same(w.columns(), committed)
        stored = checkpoint.monitor_state("m")
        if stored is not None:
            again = ColumnWindow(120)
            again.load_state(stored["pred_window"])
            assert _same(again.columns(), committed)
    finally:
        checkpoint.close()


@pytest.mark.parametrize("spill", [False, True])
def test_rows_checkpointed_in_memory_and_spilled_later_are_stored_once(tmp_path: Path, spill: bool) -> None:
    """Rows still in memory at a checkpoint go to the spill later inside a bigger part: the next
    checkpoint stores that part from its first new row on."""
    checkpoint = Checkpoint(tmp_path / "dw.db")
    w = ColumnWindow(100, SpilledRows(tmp_path, "m", "prediction") if spill else None, 16)
    firsts = []
    for n in (10, 20, 7, 30):
        w.add(_rows(n, len(w), True))
        rows = WindowRows()
        checkpoint.commit({}, [("m", {"pred_window": rows.state("pred_window", w)}, rows)], JoinChanges(), {})
        firsts.append([(p.first, p.rows) for p in rows.parts])
    assert firsts == [[(0, 10)], [(10, 20)], [(30, 7)], [(37, 30)]]
    assert rows.parts[0].columns == {}  # written, then dropped: a checkpoint holds one model's rows at a time
    stored = checkpoint.monitor_state("m")
    assert stored is not None
    again = ColumnWindow(100)
    again.load_state(stored["pred_window"])
    assert _same(again.columns(), w.columns()) and len(again) == 67
    checkpoint.close()


def test_a_state_with_rows_missing_is_refused(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "dw.db")
    w = ColumnWindow(100)
    w.add(_rows(10, 0, True))
    rows = WindowRows()
    checkpoint.commit({}, [("m", {"w": 1, "pred_window": rows.state("pred_window", w)}, rows)], JoinChanges(), {})
    w.add(_rows(5, 10, True))
    rows = WindowRows()
    checkpoint.commit({}, [("m", {"w": 2, "pred_window": rows.state("pred_window", w)}, rows)], JoinChanges(), {})
    db = sqlite3.connect(tmp_path / "dw.db")
    assert db.execute("SELECT first_row FROM window_rows ORDER BY first_row").fetchall() == [(0,), (10,)]
    db.execute("DELETE FROM window_rows WHERE first_row = 0")
    db.commit()
    with pytest.raises(ValueError, match="skip from 0 to 10"):
        checkpoint.monitor_state("m")
    db.execute("DELETE FROM window_rows")
    db.commit()
    state = checkpoint.monitor_state("m")
    assert state is not None
    with pytest.raises(ValueError, match="stored rows are 0, its state says 15"):
        ColumnWindow(100).load_state(state["pred_window"])
    checkpoint.close()


def test_a_reader_beside_the_daemon_gets_a_state_and_its_rows_of_one_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``driftwarden report`` reads the file a running daemon writes: a checkpoint committed between
    reading a state and reading its rows is not seen half."""
    writer, reader = Checkpoint(tmp_path / "dw.db"), Checkpoint(tmp_path / "dw.db")
    w = ColumnWindow(100)

    def checkpoint(n: int) -> None:
        w.add(_rows(n, len(w), False))
        rows = WindowRows()
        writer.commit({}, [("m", {"pred_window": rows.state("pred_window", w)}, rows)], JoinChanges(), {})

    checkpoint(10)
    read_rows = reader._with_rows

    def meanwhile(model_id: str, state: dict[str, Any]) -> dict[str, Any]:
        checkpoint(5)  # the daemon commits between the two reads
        return read_rows(model_id, state)

    monkeypatch.setattr(reader, "_with_rows", meanwhile)
    state = reader.monitor_state("m")
    assert state is not None
    window = ColumnWindow(100)
    window.load_state(state["pred_window"])
    assert len(window) == 10
    monkeypatch.undo()
    state = reader.monitor_state("m")
    assert state is not None and state["pred_window"]["stored_rows"] == 15
    writer.close()
    reader.close()


def _state(app: Any) -> Any:
    return canon(old_round_trip(app.models["churn"].monitor.state()))


def _demo(tmp_path: Path) -> Any:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["models"][0]["monitoring"]["window_size"] = 1000
    return demo_app(tmp_path, data, clock=lambda: START + 86_400)


@pytest.mark.parametrize("spill_rows", [False, True])
def test_a_daemon_checkpointing_every_batch_restarts_as_if_never_stopped(
        tmp_path: Path, spill_rows: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints after every batch of 250 events (four a window) store each window's rows once: a
    restart from them, mid-window, gives the uninterrupted run's findings and state."""
    monkeypatch.setattr(app_module, "SPILL_FROM", 1 if spill_rows else 10**9)
    events = [Message(t, 0, i, k, v) for i, (t, k, v) in
              enumerate(itertools.islice(messages(Scenario(covariate_shift_at=2500)), 9000))]
    stopped, through = _demo(tmp_path / "stopped"), _demo(tmp_path / "through")
    cut = 5250  # mid-window: the open windows hold rows of several checkpoints
    try:
        for i in range(0, cut, 250):
            stopped.handle(events[i:i + 250])
            through.handle(events[i:i + 250])
            stopped.save()
            through.save()  # the same coalescing: a checkpoint runs what waits
        db = sqlite3.connect(stopped.checkpoint.path)
        parts = db.execute("SELECT window, COUNT(*), MIN(first_row) FROM window_rows GROUP BY window").fetchall()
        assert {w for w, _, _ in parts} >= {"pred_window", "outcome_window"}
        assert any(n > 1 for _, n, _ in parts)  # appended a checkpoint at a time, not rewritten
        stopped.close()
        restarted = _demo(tmp_path / "stopped")
        assert restarted.offsets == through.offsets
        assert _state(restarted) == _state(through)
        for i in range(cut, len(events), 250):
            restarted.handle(events[i:i + 250])
            through.handle(events[i:i + 250])
            restarted.save()
            through.save()
        history = restarted.models["churn"].monitor.history.entries()
        assert canon(history) == canon(through.models["churn"].monitor.history.entries())
        assert any(row[-1] is True for rows in history.values() for row in rows)  # the shift was found
        assert _state(restarted) == _state(through)
        restarted.close()
    finally:
        through.close()


@pytest.mark.parametrize("lost", ["a part", "every part"])
def test_a_daemon_whose_stored_rows_are_inconsistent_starts_the_model_afresh_and_says_why(
        tmp_path: Path, lost: str, caplog: pytest.LogCaptureFixture) -> None:
    """Rows lost from window_rows (a gap: the read refuses; all of them: the count refuses) do not stop
    the daemon: the model starts afresh, the log names the stored rows (not the config), and the next
    checkpoint rewrites its windows whole, so the one after restarts cleanly."""
    events = [Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(itertools.islice(messages(Scenario()), 2000))]
    app = _demo(tmp_path)
    for i in range(0, 1500, 250):
        app.handle(events[i:i + 250])
        app.save()
    app.close()
    db = sqlite3.connect(app.checkpoint.path)
    (window, parts), = db.execute("SELECT window, COUNT(*) FROM window_rows GROUP BY window "
                                  "ORDER BY COUNT(*) DESC LIMIT 1").fetchall()
    assert parts >= 3
    second = db.execute("SELECT first_row FROM window_rows WHERE window = ? ORDER BY first_row LIMIT 1 OFFSET 1",
                        (window,)).fetchone()[0]
    db.execute("DELETE FROM window_rows WHERE window = ?" + (" AND first_row = ?" if lost == "a part" else ""),
               (window, second) if lost == "a part" else (window,))
    db.commit()
    restarted = _demo(tmp_path)
    (record,) = [r for r in caplog.records if "stored window rows are inconsistent" in r.getMessage()]
    assert record.levelname == "ERROR" and "churn" in record.getMessage()
    assert "does not fit the current config" not in caplog.text
    assert len(getattr(restarted.models["churn"].monitor, window)) == 0  # afresh
    assert restarted.offsets == app.offsets  # the rest of the checkpoint holds
    restarted.handle(events[1500:2000])
    restarted.save()
    restarted.close()
    caplog.clear()
    again = _demo(tmp_path)
    assert "inconsistent" not in caplog.text
    assert len(getattr(again.models["churn"].monitor, window)) == len(getattr(restarted.models["churn"].monitor, window)) > 0
    again.close()


@pytest.mark.parametrize("damage", ["truncated", "not ours"])
def test_a_saved_state_that_does_not_decode_starts_its_model_afresh_not_the_daemon_never(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    """One model's unreadable state (a disk error, a foreign write) used to stop the start-up of every
    model; now that model starts afresh, the log says which and why, and the rest of the checkpoint holds."""
    events = [Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(itertools.islice(messages(Scenario()), 1000))]
    app = _demo(tmp_path)
    app.handle(events)
    app.save()
    app.close()
    db = sqlite3.connect(app.checkpoint.path)
    (stored,) = db.execute("SELECT state FROM monitors WHERE model_id = 'churn'").fetchone()
    db.execute("UPDATE monitors SET state = ? WHERE model_id = 'churn'",
               (stored[:len(stored) // 2] if damage == "truncated" else b"\x93\x01\x02\x03",))
    db.commit()
    restarted = _demo(tmp_path)
    (record,) = [r for r in caplog.records if "saved state cannot be read" in r.getMessage()]
    assert record.levelname == "ERROR" and "churn" in record.getMessage()
    assert len(restarted.models["churn"].monitor.pred_window) == 0  # afresh
    assert restarted.offsets == app.offsets  # the rest of the checkpoint holds
    restarted.handle(events[:250])
    restarted.save()
    restarted.close()
