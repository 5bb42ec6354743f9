"""The checkpoint's state format: zstd + MessagePack carries what JSON did; JSON checkpoints of earlier versions restore.

``data/checkpoint_v1_json.db.gz`` was written by the version before MessagePack (states as JSON
text, history as lists): the demo config with ``window_size: 500``, 3,500 scenario events in
batches of 500 (``App.handle`` + ``App.housekeeping``), ``App.save``, then ``VACUUM``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import yaml

from driftwarden.daemon.checkpoint import Checkpoint, decode_state, encode_state
from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.join import JoinChanges
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages
from driftwarden.detectors.base import decode_array, encode_array
from driftwarden.detectors.check_history import CheckHistory

OLD = Path(__file__).parent / "data" / "checkpoint_v1_json.db.gz"
EVENTS_IN_OLD = 3500


class Near:
    """A float equal to those within a relative 1e-12 of it (NaN equals NaN)."""

    def __init__(self, x: float) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Near) and (repr(self.x) == repr(other.x) or math.isclose(self.x, other.x, rel_tol=1e-12))

    def __repr__(self) -> str:
        return f"~{self.x!r}"


def canon(x: Any, near: bool = False) -> Any:
    """A value with its types spelled out and floats by repr (NaN equals NaN, 1 is not 1.0, "1" is not 1),
    or ``near``: floats within a relative 1e-12."""
    if isinstance(x, float):
        return ("float", Near(x) if near else repr(x))
    if isinstance(x, dict):
        return {(type(k).__name__, k): canon(v, near) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [canon(v, near) for v in x]
    return (type(x).__name__, x)


def old_round_trip(state: dict[str, Any]) -> Any:
    """What the JSON text of earlier versions gave back."""
    return json.loads(json.dumps(state, separators=(",", ":"), allow_nan=True))


def test_messagepack_gives_back_what_json_gave_nan_infinities_and_empty_arrays_included() -> None:
    state = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "zero": -0.0, "big": 2**62, "tiny": 5e-324,
             "numpy float": np.float64(0.25), "none": None, "flag": True, "text": "é\u2028", "empty": [],
             "nested": [[1.5, math.nan], {"k": []}, ()], "empty dict": {},
             "array": encode_array(np.array([1.0, math.nan, -math.inf])), "empty array": encode_array(np.empty(0)),
             "empty int array": encode_array(np.empty((0, 3), dtype=np.int64))}
    stored = encode_state(state)
    assert isinstance(stored, bytes) and stored[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    back = decode_state(stored)
    assert canon(back) == canon(old_round_trip(state))
    assert canon(decode_state(msgspec.msgpack.encode(state, enc_hook=float))) == canon(back)  # MessagePack alone
    assert decode_array(back["array"]).tobytes() == np.array([1.0, math.nan, -math.inf]).tobytes()
    assert decode_array(back["empty int array"]).shape == (0, 3)
    assert canon(decode_state(json.dumps(state, allow_nan=True))) == canon(back)  # the old text, read as before
    with pytest.raises(TypeError, match="int64"):  # what JSON refused, MessagePack refuses
        encode_state({"n": np.int64(3)})


def test_a_json_state_row_of_an_earlier_version_is_read(tmp_path: Path) -> None:
    cp = Checkpoint(tmp_path / "dw.db")
    cp.commit({}, {"new": {"x": math.inf}}, JoinChanges(), {})
    cp.close()
    db = sqlite3.connect(tmp_path / "dw.db")  # what the earlier version's commit wrote: JSON text
    db.execute("INSERT INTO monitors VALUES (?, ?)", ("old", json.dumps({"x": math.nan, "y": [-math.inf]},
                                                                     separators=(",", ":"), allow_nan=True)))
    db.commit()
    assert [type(v).__name__ for (v,) in db.execute("SELECT state FROM monitors ORDER BY model_id")] == ["bytes", "str"]
    db.close()
    cp = Checkpoint(tmp_path / "dw.db")
    old = cp.monitor_state("old")
    assert old is not None and math.isnan(old["x"]) and old["y"] == [-math.inf]
    assert cp.monitor_states()["new"] == {"x": math.inf}
    cp.close()


def test_the_history_state_is_exact_and_reads_the_lists_of_earlier_versions() -> None:
    h = CheckHistory(3)
    for i in range(5):  # the ring wrapped for "a"
        h.append("a/psi/x", float(i), 1 / 3 + i, math.nan if i == 4 else 0.2, i % 2 == 0)
    h.append("b/ks/y", 9.0, math.inf, 1e39, False)
    h.append("c/ks/z", 1.0, 0.5, 0.5, True)
    state = old_round_trip(h.state())
    g = CheckHistory(3)
    g.load(state)
    assert canon(g.entries()) == canon(h.entries())
    assert all(g.stored(k).tobytes() == h.stored(k).tobytes() for k in ("a/psi/x", "b/ks/y", "c/ks/z"))
    small = CheckHistory(2)  # a shorter history in the config: the newest rows
    small.load(state)
    assert [r[0] for r in small.rows("a/psi/x")] == [3.0, 4.0]
    old = CheckHistory(3)
    old.load(old_round_trip(h.entries()))  # the lists earlier checkpoints held
    assert canon(old.entries()) == canon(h.entries())
    empty = CheckHistory(3)
    empty.load(CheckHistory(3).state())
    assert len(empty) == 0


def _demo(tmp_path: Path) -> Any:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["models"][0]["monitoring"]["window_size"] = 500
    return demo_app(tmp_path, data, clock=lambda: START + 86_400)


def comparable(monitor: Any) -> Any:
    """A monitor's state as JSON gave it back, the history as shown: the earlier versions' history held the
    statistics to 7 digits (float32 needs up to 9), so a restored history equals the uninterrupted one as shown.
    Floats within a relative 1e-12: the old checkpoint was written on another machine, and BLAS's sums (the
    PCA's reconstruction errors) differ in their last bits between CPUs (AVX-512 or not): 127.91938729070604
    there, ...615 here."""
    state = old_round_trip(monitor.state())
    state["history"] = monitor.history.entries()
    return canon(state, near=True)


def _feed(app: Any, batch: list[Message]) -> None:
    for i in range(0, len(batch), 500):
        app.handle(batch[i:i + 500])
        app.housekeeping()


def test_a_json_checkpoint_of_the_earlier_version_restores_and_goes_on_as_if_never_stopped(tmp_path: Path) -> None:
    events = [Message(t, 0, i, k, v) for i, (t, k, v) in
              enumerate(itertools.islice(messages(Scenario()), EVENTS_IN_OLD + 3000))]
    (tmp_path / "old" / "state").mkdir(parents=True)
    (tmp_path / "old" / "state" / "driftwarden.db").write_bytes(gzip.decompress(OLD.read_bytes()))
    restored = _demo(tmp_path / "old")
    through = _demo(tmp_path / "through")  # the same events, never stopped
    try:
        _feed(through, events[:EVENTS_IN_OLD])
        assert restored.offsets == through.offsets == {("predictions", 0): 3499, ("outcomes", 0): 3500}
        assert restored.join.pending_count == through.join.pending_count == 500
        mine, theirs = restored.models["churn"].monitor, through.models["churn"].monitor
        assert comparable(mine) == comparable(theirs)
        state = mine.state()  # categorical features, KPIs: stored as JSON gave it back (str keys stay str)
        assert canon(decode_state(encode_state(state))) == canon(old_round_trip(state))
        _feed(restored, events[EVENTS_IN_OLD:])
        _feed(through, events[EVENTS_IN_OLD:])
        assert len(mine.history) > 10 and comparable(mine) == comparable(theirs)
        restored.save()
        restored.close()
        again = _demo(tmp_path / "old")  # and the checkpoint it writes now (MessagePack) restores as well
        assert canon(old_round_trip(again.models["churn"].monitor.state())) == canon(old_round_trip(mine.state()))
        again.close()
    finally:
        through.close()
