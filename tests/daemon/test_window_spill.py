"""The last evaluated windows live in files of the state directory: same rows, none in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.demo import demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import Scenario, messages
from driftwarden.daemon.window_spill import SpilledRows, SpilledWindows
from driftwarden.detectors.last_windows import InMemoryWindows
from driftwarden.detectors.window import ColumnWindow


@settings(max_examples=50, deadline=None)
@given(floats=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=30),
       labels=st.lists(st.sampled_from(["a", "b", None, "é"]), min_size=0, max_size=30))
def test_a_spilled_window_reads_back_bit_for_bit(tmp_path_factory: pytest.TempPathFactory, floats: list[float],
                                                 labels: list[str | None]) -> None:
    directory = tmp_path_factory.mktemp("spill")
    store = SpilledWindows(directory, "odd/model id")
    obj = np.empty(len(labels), dtype=object)
    obj[:] = labels
    cols = {"t": np.array(floats, dtype=np.float64), "y": obj, "n": np.arange(len(labels), dtype=np.int64)}
    store.put("outcome", cols)
    back = store.get("outcome")
    assert back is not None and list(back) == list(cols)
    for k, v in cols.items():
        assert back[k].dtype == v.dtype
        assert back[k].tobytes() == v.tobytes() if v.dtype.kind != "O" else back[k].tolist() == v.tolist()
    assert store.get("prediction") is None
    assert [p.name for p in directory.iterdir()] == ["odd%2Fmodel%20id.outcome.pickle"]  # one flat file
    store.clear()
    assert store.get("outcome") is None



_DTYPES = {"f8": np.float64, "i8": np.int64, "f4": np.float32, "b": np.bool_, "o": object}


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(st.tuples(st.integers(1, 40), st.lists(st.sampled_from(sorted(_DTYPES)), min_size=1, max_size=6)),
                      min_size=1, max_size=5), seed=st.integers(0, 2**32 - 1))
def test_spilled_rows_read_back_bit_for_bit_in_their_column_order(tmp_path_factory: pytest.TempPathFactory,
                                                                  parts: list[tuple[int, list[str]]], seed: int) -> None:
    """A part's numeric columns go to the file as one array per dtype: read back, each part has its own
    column names in their order, dtypes and bytes (NaN payloads, None and text in object columns)."""
    rng = np.random.default_rng(seed)
    rows = SpilledRows(tmp_path_factory.mktemp("rows"), "m", "prediction")
    written = []
    for n, kinds in parts:
        cols: dict[str, np.ndarray] = {}
        for i, kind in enumerate(kinds):
            name = f"{kind}{i}" if i % 2 else f"c{len(kinds) - i}"  # names not in dtype order
            if kind == "o":
                values = np.empty(n, dtype=object)
                values[:] = rng.choice(np.array(["a", "é", None], dtype=object), n)
            else:
                values = (rng.normal(size=n) * 100).astype(_DTYPES[kind])
                if kind.startswith("f"):
                    values[::3] = np.nan
            cols[name] = values
        rows.append(cols)
        written.append(cols)
    back = rows.read()
    assert [list(p) for p in back] == [list(p) for p in written]
    for got, want in zip(back, written, strict=True):
        for k, v in want.items():
            assert got[k].dtype == v.dtype and len(got[k]) == len(v)
            assert got[k].tolist() == v.tolist() if v.dtype.kind == "O" else got[k].tobytes() == v.tobytes()
    rows.clear()
    assert rows.read() == []

def _stream() -> list[Message]:
    return [Message(t, 0, i, k, v) for i, (t, k, v) in
            enumerate(messages(Scenario(events=5000, label_delay=50, covariate_shift_at=2500)))]


def test_with_many_models_the_daemon_keeps_its_windows_on_disk_with_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Findings, checkpointed state and the report's rows as when every window stayed in memory;
    with many models (here: from 1) the last windows and the open windows' earlier rows are on disk."""
    import json

    import driftwarden.daemon.app as app_module

    stream = _stream()
    kept = demo_app(tmp_path / "b")
    monkeypatch.setattr(app_module, "SPILL_FROM", 1)
    spilled = demo_app(tmp_path / "a")
    monitor = kept.pipeline.models["churn"].monitor
    assert isinstance(monitor.last_store, InMemoryWindows)  # one model of one (SPILL_FROM 100): in memory
    findings = []
    for app in (spilled, kept):
        result = []
        for i in range(0, len(stream), 700):
            result.append(app.handle(stream[i : i + 700]))
        app.pipeline.flush(app.clock())  # the events still waiting to be run (as a checkpoint does first)
        findings.append(result)
    on_disk = spilled.pipeline.models["churn"].monitor
    assert isinstance(on_disk.last_store, SpilledWindows) and on_disk.last_store.nbytes() == 0
    assert monitor.last_store.nbytes() > 100_000  # what the files now hold instead
    files = sorted(p.name for p in on_disk.last_store.directory.iterdir())
    assert files == ["churn.open-outcome.pickle", "churn.open-prediction.pickle",
                     "churn.outcome.pickle", "churn.prediction.pickle",
                     "churn.prediction_block.pickle"]  # the last degraded block (the shift): a replay's rows
    assert [s.to_json() for s in on_disk.replay_steps()] == [s.to_json() for s in monitor.replay_steps()]
    assert on_disk.replay_steps()
    assert not list(kept.windows_dir.glob("*"))
    assert on_disk.pred_window.nbytes() < monitor.pred_window.nbytes()
    assert json.dumps(on_disk.state(), allow_nan=True) == json.dumps(monitor.state(), allow_nan=True)
    for a, b in zip(on_disk.last_windows(), monitor.last_windows(), strict=True):
        assert a is not None and b is not None
        assert a.timestamps.tolist() == b.timestamps.tolist() and len(a) > 0
        assert sorted(a.features) == sorted(b.features)
        for name in a.features:
            assert np.array_equal(a.features[name], b.features[name], equal_nan=a.features[name].dtype.kind == "f")
    assert repr([r.findings for r in findings[0]]) == repr([r.findings for r in findings[1]])
    saved = on_disk.state()
    spilled.save()
    spilled.close()
    kept.close()
    # a restart: the last windows are not part of the checkpoint (the report uses the open ones), as before
    again = demo_app(tmp_path / "a")
    assert again.pipeline.models["churn"].monitor.last_windows() == (None, None)
    assert not [p for p in again.windows_dir.iterdir() if ".open-" not in p.name]  # the restored open rows may spill
    restored = again.pipeline.models["churn"].monitor.state()
    assert restored["pred_window"] == saved["pred_window"] and restored["outcome_window"] == saved["outcome_window"]
    again.close()
    # a restart with few models: windows in memory, and the files of the many-model run gone
    monkeypatch.setattr(app_module, "SPILL_FROM", 100)
    few = demo_app(tmp_path / "a")
    assert isinstance(few.pipeline.models["churn"].monitor.last_store, InMemoryWindows)
    assert not few.windows_dir.exists()
    few.close()


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 120), min_size=1, max_size=40))
def test_an_open_window_holds_only_the_rows_since_its_last_spill(tmp_path_factory: pytest.TempPathFactory,
                                                                  sizes: list[int]) -> None:
    """Right after a spill a window holds no buffer; before the next its buffers are at most twice its
    rows (they were a full spill's rows for good: ~200 KB a model for the prediction and outcome windows);
    the rows read back are the rows added, in order."""
    spilled = ColumnWindow(2000, SpilledRows(tmp_path_factory.mktemp("rows"), "m", "prediction"), 100)
    kept, start = ColumnWindow(2000), 0
    for n in sizes:
        n = min(n, spilled.room)
        if not n:
            break
        cols = {"t": np.arange(start, start + n, dtype=np.float64), "x": np.full(n, start % 7, dtype=np.int64)}
        spilled.add(cols)
        kept.add(cols)
        start += n
        in_memory = len(spilled) - spilled._spilled
        assert spilled.nbytes() <= max(2 * in_memory, 16) * 16  # two 8-byte columns
    want, got = kept.take(), spilled.take()
    assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)


def test_a_put_over_a_window_leaves_one_file_and_reads_the_new_rows(tmp_path: Path) -> None:
    """The old file is moved aside before the new one goes in (no rename over a file), then removed."""
    store = SpilledWindows(tmp_path, "m")
    store.put("prediction", {"t": np.array([1.0])})
    store.put("prediction", {"t": np.array([2.0, 3.0])})
    back = store.get("prediction")
    assert back is not None and back["t"].tolist() == [2.0, 3.0]
    assert [p.name for p in tmp_path.iterdir()] == ["m.prediction.pickle"]
    (tmp_path / "m.prediction.pickle").rename(tmp_path / "m.prediction.old")  # as a put leaves it for a moment
    back = store.get("prediction")
    assert back is not None and back["t"].tolist() == [2.0, 3.0]
    store.clear()
    assert list(tmp_path.iterdir()) == []
