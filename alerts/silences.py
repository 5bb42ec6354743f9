"""Silences: static ones from config, run-time ones in SQLite (:class:`SilenceStore`), and
recurring mute windows. The :class:`Silencer` stage drops alerts any of them matches.

>>> store = SilenceStore(":memory:")
>>> sid = store.add(['model="churn"'], starts=100, ends=200, comment="retraining", created_by="ana")
>>> [s.comment for s in store.list(now=150)], store.silenced_by({"model": "churn"}, now=150) == [sid]
(['retraining'], True)
>>> store.expire(sid, now=160), store.silenced_by({"model": "churn"}, now=170)
(True, [])
>>> store.close()
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from driftwarden.alerts.matchers import matches, parse_matchers
from driftwarden.alerts.model import Alert
from driftwarden.alerts.mute import MuteSchedule, parse_clock, parse_time, parse_weekdays
from driftwarden.alerts.settings import MuteWindow, StaticSilence

__all__ = ["Silence", "SilenceStore", "Silencer", "parse_clock", "parse_time", "parse_weekdays"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
    comment TEXT NOT NULL, created_by TEXT NOT NULL)"""


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    comment: str
    created_by: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def silences(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and matches(parse_matchers(self.matchers), labels)


class SilenceStore:
    """Run-time silences, persisted in SQLite (use the outbox's file, or ``":memory:"``)."""

    def __init__(self, path: str = ":memory:"):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(_SCHEMA)

    def add(self, matchers: Sequence[str], starts: float, ends: float, comment: str, created_by: str) -> str:
        """Store a silence; returns its id. ValueError for bad matchers or an empty time range."""
        parse_matchers(matchers)
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends <= starts:
            raise ValueError("a silence must end after it starts")
        sid = uuid.uuid4().hex[:12]
        with self._lock:
            self._db.execute(
                "INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
                (sid, json.dumps(list(matchers)), starts, ends, comment, created_by),
            )
        return sid

    def list(self, now: float) -> builtins.list[Silence]:
        """Silences that are active or not yet started at ``now`` (expired ones are omitted)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM silences WHERE ends_at > ? ORDER BY starts_at, id", (now,)).fetchall()
        return [Silence(r[0], tuple(json.loads(r[1])), r[2], r[3], r[4], r[5]) for r in rows]

    def expire(self, silence_id: str, now: float) -> bool:
        """End a silence at ``now``; False if unknown or already over."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE silences SET ends_at = ?, starts_at = MIN(starts_at, ?) WHERE id = ? AND ends_at > ?",
                (now, now, silence_id, now),
            )
        return cur.rowcount == 1

    def silenced_by(self, labels: Mapping[str, str], now: float) -> builtins.list[str]:
        return [s.id for s in self.list(now) if s.silences(labels, now)]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Silencer:
    """Stage that drops alerts matched by an active silence or mute window."""

    def __init__(self, store: SilenceStore, static: Sequence[StaticSilence] = (), mute_windows: Sequence[MuteWindow] = ()):
        self.store = store
        self.static = [
            Silence(f"config-{i}", tuple(s.matchers), parse_time(s.starts_at), parse_time(s.ends_at), s.comment, s.created_by)
            for i, s in enumerate(static)
        ]
        self.windows = [MuteSchedule(w) for w in mute_windows]

    def silenced(self, labels: Mapping[str, str], now: float, runtime: Sequence[Silence] = ()) -> bool:
        return any(s.silences(labels, now) for s in (*self.static, *runtime)) or any(w.mutes(labels, now) for w in self.windows)

    def __call__(self, alerts: Sequence[Alert], now: float) -> list[Alert]:
        runtime = self.store.list(now)
        return [a for a in alerts if not self.silenced(a.labels, now, runtime)]
