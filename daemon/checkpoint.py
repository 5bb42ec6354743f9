"""Checkpoints: detector state, pending joins, alert state and offsets, together.

One SQLite file (the embedded default). A checkpoint is one transaction, so
the state on disk always reflects exactly the events up to the stored
offsets. Commit order, as the daemon performs it:

1. flush outputs (dead-letter producer; the alert outbox is durable already),
2. persist state + pending-join delta + offsets in one SQLite transaction,
3. commit the same offsets to the Kafka consumer group (for lag dashboards and
   for an instance that has no local state).

On start the daemon restores the state and seeks each partition to the offset
stored here, so no event is counted twice and none is lost.

A model's state is stored as MessagePack (a BLOB): it carries what the JSON text of
earlier versions carried (NaN and infinities included, which msgspec's JSON would write
as null), and a checkpoint of 100 models of 20 features (~450 kB a model) encoded in
0.39 ms a model instead of 3.7 ms (stdlib json) and read back in 1.2 ms instead of 3.0 ms.
Then zstd (level 1): ~4x fewer bytes (447 -> 114 KiB) for ~1 ms a model, where writing the
bytes was most of a checkpoint's wall time (SQLite's executemany and commit: ~15 ms a model
of ~400 KiB on the shared machine). A state stored as JSON text by an earlier version, or as
MessagePack without zstd, is still read (:func:`decode_state`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from driftwarden.daemon.events import OutcomeEvent, PredictionEvent
from driftwarden.daemon.join import JoinChanges, decode_outcome, decode_prediction, encode_event
from driftwarden.detectors.window import StoredRowsError, WindowRows

TopicPartition = tuple[str, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, next_offset INTEGER,
    PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS monitors (model_id TEXT PRIMARY KEY, state TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS pending_predictions (model_id TEXT, prediction_id TEXT, event BLOB,
    PRIMARY KEY (model_id, prediction_id));
CREATE TABLE IF NOT EXISTS pending_outcomes (model_id TEXT, prediction_id TEXT, event BLOB,
    PRIMARY KEY (model_id, prediction_id));
CREATE TABLE IF NOT EXISTS window_rows (model_id TEXT, window TEXT, first_row INTEGER, rows BLOB,
    PRIMARY KEY (model_id, window, first_row));
"""


def plain_float(value: Any) -> Any:
    """What JSON wrote for the values msgspec does not take: float subclasses (numpy's float64) as floats."""
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"a checkpointed state holds a {type(value).__name__}, which JSON cannot carry either")


# MessagePack of stored states and of the changelog's records (daemon/changelog.py)
STATE_ENCODER = msgspec.msgpack.Encoder(enc_hook=plain_float)
_decoder = msgspec.msgpack.Decoder()


ZSTD_LEVEL = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd frame's first bytes (a MessagePack map starts with 0x80-0x8f, 0xde or 0xdf)


def state_compressor() -> zstandard.ZstdCompressor:
    """A compressor for :func:`encode_state` (one per thread: zstandard's are not thread-safe)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL)


def encode_state(state: Mapping[str, Any], compressor: zstandard.ZstdCompressor | None = None) -> bytes:
    """A model's state as stored: MessagePack (floats as float64: NaN and infinities kept), zstd-compressed."""
    return (compressor or state_compressor()).compress(STATE_ENCODER.encode(state))


def monitor_state(value: Mapping[str, Any] | bytes) -> dict[str, Any]:
    """A detector state as a changelog record holds it: stored (:func:`encode_state`), or a mapping (earlier versions)."""
    return decode_state(value) if isinstance(value, bytes) else dict(value)


class UnreadableState(ValueError):
    """A stored state that does not decode (truncated, corrupted, or not written by driftwarden)."""


def decode_state(stored: bytes | str) -> dict[str, Any]:
    """A stored state: zstd-compressed MessagePack, or the JSON text earlier versions wrote (NaN literals and all)."""
    try:
        if isinstance(stored, str):
            out = json.loads(stored)
        else:
            out = _decoder.decode(zstandard.ZstdDecompressor().decompress(stored) if stored[:4] == _ZSTD_MAGIC
                                  else stored)
    except (ValueError, zstandard.ZstdError, msgspec.DecodeError) as exc:  # json's and UnicodeDecodeError are ValueErrors
        raise UnreadableState(f"{len(stored):,} bytes that do not decode: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, dict):
        raise UnreadableState(f"a stored monitor state is a {type(out).__name__}, not a mapping")
    return out


class OffsetRegression(Exception):
    """A checkpoint tried to move an offset backwards: a bug, never silently accepted."""


class Checkpoint:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        # the consumer may call rebalance callbacks from its own thread; App serializes access
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._compressor = state_compressor()  # commits are serialized by the App

    def close(self) -> None:
        self._db.close()

    def offsets(self) -> dict[TopicPartition, int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
        return {(t, p): o for t, p, o in rows}

    def monitor_states(self) -> dict[str, dict[str, Any]]:
        with self._snapshot():
            return {m: self._with_rows(m, decode_state(s))
                    for m, s in self._db.execute("SELECT model_id, state FROM monitors").fetchall()}

    def monitor_state(self, model_id: str) -> dict[str, Any] | None:
        """One model's saved state: a start-up of many models parses one at a time (each ~1 MB)."""
        with self._snapshot():
            row = self._db.execute("SELECT state FROM monitors WHERE model_id = ?", (model_id,)).fetchone()
            return None if row is None else self._with_rows(model_id, decode_state(row[0]))

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: a state and its windows' rows of the same checkpoint, whatever a daemon
        writing this file commits meanwhile (``driftwarden report`` and ``status`` read beside it)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _with_rows(self, model_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with its open windows' stored rows put back (``parts``, in order; see :class:`WindowRows`)."""
        for name, window in state.items():  # the open windows WindowRows stood in for: their markers
            if isinstance(window, dict) and "stored_rows" in window:
                parts, expected = [], 0
                for first, rows in self._db.execute(
                        "SELECT first_row, rows FROM window_rows WHERE model_id = ? AND window = ? ORDER BY first_row",
                        (model_id, name)):
                    if first != expected:
                        raise StoredRowsError(f"the stored rows of its {name} skip from {expected} to {first}")
                    part = decode_state(rows)
                    parts.append(part["columns"])
                    expected = first + part["rows"]
                window["parts"] = parts
        return state

    def meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def pending(self) -> tuple[list[PredictionEvent], list[OutcomeEvent]]:
        predictions = [decode_prediction(b) for (b,) in self._db.execute("SELECT event FROM pending_predictions")]
        outcomes = [decode_outcome(b) for (b,) in self._db.execute("SELECT event FROM pending_outcomes")]
        return predictions, outcomes

    def pending_counts(self) -> dict[str, int]:
        """Predictions waiting for their outcome, per model."""
        rows = self._db.execute("SELECT model_id, COUNT(*) FROM pending_predictions GROUP BY model_id")
        return {m: int(n) for m, n in rows}

    def forget_offsets(self, partitions: list[TopicPartition]) -> None:
        """Drop cached offsets of ``partitions`` (with the changelog, their restored state says where to read)."""
        self._db.executemany("DELETE FROM offsets WHERE topic = ? AND partition = ?", partitions)

    def commit(
        self,
        offsets: Mapping[TopicPartition, int],
        monitors: Mapping[str, dict[str, Any] | bytes]
        | Iterable[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], WindowRows | None]],
        join: JoinChanges,
        meta: Mapping[str, Any],
    ) -> None:
        """Persist everything in one transaction. ``offsets`` are next offsets to read.

        ``monitors`` may be (model, state) pairs made as they are read: each state is
        serialized and written before the next is made, so a checkpoint of many models
        holds one model's state at a time, not all of them and their JSON at once. A
        state made with :class:`~driftwarden.detectors.window.WindowRows` comes as (model,
        state, rows): its open windows' new rows go to ``window_rows`` and, once this
        transaction committed, the windows know them stored. A state in bytes is stored already
        (:func:`encode_state`: the kafka backend's changelog holds it so).
        """
        stored = self.offsets()
        for tp, offset in offsets.items():
            if offset < stored.get(tp, -1):
                raise OffsetRegression(f"{tp[0]}[{tp[1]}]: offset {offset} < checkpointed {stored[tp]}")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in offsets.items()],
            )
            appended: list[WindowRows] = []
            for m, state, *apart in monitors.items() if isinstance(monitors, Mapping) else monitors:
                blob = state if isinstance(state, bytes) else encode_state(state, self._compressor)  # bytes: as stored
                db.execute("INSERT OR REPLACE INTO monitors VALUES (?, ?)", (m, blob))
                if apart and apart[0] is not None:
                    self._write_rows(m, apart[0])
                    appended.append(apart[0])
                else:  # the whole state: rows stored beside an earlier one are not its
                    db.execute("DELETE FROM window_rows WHERE model_id = ?", (m,))
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v, separators=(",", ":"))) for k, v in meta.items()],
            )
            for table, rows in (("pending_predictions", join.predictions), ("pending_outcomes", join.outcomes)):
                db.executemany(
                    f"DELETE FROM {table} WHERE model_id = ? AND prediction_id = ?",
                    [k for k, v in rows.items() if v is None],
                )
                db.executemany(
                    f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)",
                    [(k[0], k[1], encode_event(v)) for k, v in rows.items() if v is not None],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for window_rows in appended:
            window_rows.stored()

    def _write_rows(self, model_id: str, rows: WindowRows) -> None:
        """The open windows' rows a model's state lacks: appended, or in place of an earlier window's."""
        for part in rows.parts:
            if part.rewrite:
                self._db.execute("DELETE FROM window_rows WHERE model_id = ? AND window = ?", (model_id, part.name))
            if part.rows:
                self._db.execute("INSERT OR REPLACE INTO window_rows VALUES (?, ?, ?, ?)", (
                    model_id, part.name, part.first,
                    encode_state({"rows": part.rows, "columns": part.columns}, self._compressor)))
            # written: the commit keeps only the counts (every model's rows held to the end of a checkpoint
            # after the windows closed: a peak of +420 MiB at 1,000 models)
            part.columns = {}
