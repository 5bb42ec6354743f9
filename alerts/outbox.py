"""Durable outbox: every notification is written here (SQLite) before anyone tries to send it.

Lifecycle of an entry: ``put`` (idempotent on ``key``) -> ``begin_attempt`` (committed *before*
the request goes out, so after a crash we know it may have been sent) -> ``mark_delivered``
(with the remote id, e.g. a Slack ``channel:ts``) or ``mark_retry`` / ``mark_failed``.

>>> box = Outbox(":memory:")
>>> box.put("k1", "slack", {"text": "hi"}, now=10.0)
1
>>> box.put("k1", "slack", {"text": "hi"}, now=11.0) is None   # same key: ignored
True
>>> [e.key for e in box.due(now=10.0)]
['k1']
>>> box.begin_attempt(1, now=10.0); box.mark_delivered(1, now=10.5, result="C1:171.01")
>>> box.due(now=11.0), box.pending_count()
([], 0)
>>> box.close()

Fencing (several instances, ``state.backend: kafka``): an entry belongs to the model it is
about. ``fence(owned)`` limits delivery to the entries of the models this instance owns;
``take_over``/``hand_over`` move a model's entries with its state, so that the instance
owning a model is the only one that sends its notifications:

>>> box = Outbox(":memory:")
>>> box.put("k2", "slack", {"group_labels": {"model": "churn"}}, now=1.0)
1
>>> box.fence(set()); box.due(now=2.0)        # churn is not ours (any more)
[]
>>> moved = box.hand_over("churn"); [e["key"] for e in moved], box.entries()
(['k2'], [])
>>> box.take_over("churn", moved, clean=True); box.fence({"churn"}); [e.key for e in box.due(now=2.0)]
['k2']
>>> box.close()
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwarden.alerts.redact import redact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    payload TEXT NOT NULL,
    thread_key TEXT,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    result TEXT,
    last_error TEXT,
    model TEXT
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (receiver, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_thread ON outbox (thread_key) WHERE delivered_at IS NOT NULL;
"""


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    key: str
    receiver: str
    payload: dict[str, Any]
    thread_key: str | None
    created_at: float
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    failed_at: float | None
    result: str | None
    last_error: str | None


class Outbox:
    """SQLite-backed outbox; ``path`` is a file (durable) or ``":memory:"`` (tests)."""

    def __init__(self, path: str = ":memory:"):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "model" not in columns:  # an outbox written before fencing existed
            self._db.execute("ALTER TABLE outbox ADD COLUMN model TEXT")
        # a model's entries (state.backend kafka: every checkpoint reads each owned model's open ones)
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_model ON outbox (model)")
        self._owned: set[str] | None = None  # None: every entry is ours (one instance)

    def fence(self, owned: Iterable[str] | None) -> None:
        """Deliver only entries of the models in ``owned`` (and those of no model); None: all."""
        with self._lock:
            self._owned = None if owned is None else set(owned)

    def put(self, key: str, receiver: str, payload: Mapping[str, Any], now: float, thread_key: str | None = None) -> int | None:
        """Store a notification; returns its id, or None if ``key`` was already stored."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, receiver, payload, thread_key, created_at, next_attempt_at, model)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, receiver, json.dumps(payload, sort_keys=True), thread_key, now, now, model_of(payload)),
            )
            return cur.lastrowid if cur.rowcount == 1 else None

    def due(self, now: float, limit: int = 100) -> list[OutboxEntry]:
        """Open entries in order, per receiver up to (and including) the first one not yet due:
        a receiver's later entries wait behind an earlier one that is backing off (order is kept)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL ORDER BY id"
            ).fetchall()
            owned = self._owned
        if owned is not None:  # fenced: another instance owns the other models and sends theirs
            rows = [r for r in rows if r[12] is None or r[12] in owned]
        blocked: set[str] = set()
        out: list[OutboxEntry] = []
        for row in rows:
            entry = _entry(row)
            if entry.receiver in blocked:
                continue
            if entry.next_attempt_at > now:
                blocked.add(entry.receiver)
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def get(self, entry_id: int) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM outbox WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self, receiver: str | None = None) -> list[OutboxEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE ? IS NULL OR receiver = ? ORDER BY id", (receiver, receiver)
            ).fetchall()
        return [_entry(r) for r in rows]

    def begin_attempt(self, entry_id: int, now: float) -> None:
        """Durably note that a send is about to start (a later reader knows it may have gone out)."""
        self._exec("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", entry_id)

    def mark_delivered(self, entry_id: int, now: float, result: str | None = None) -> None:
        self._exec("UPDATE outbox SET delivered_at = ?, result = ?, last_error = NULL WHERE id = ?", now, result, entry_id)

    def mark_retry(self, entry_id: int, next_attempt_at: float, error: str) -> None:
        """A retryable failure; ``error`` is stored redacted (see :mod:`alerts.redact`)."""
        self._exec("UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?", next_attempt_at, redact(error), entry_id)

    def mark_failed(self, entry_id: int, now: float, error: str) -> None:
        """Permanent failure: recorded (redacted), never retried."""
        self._exec("UPDATE outbox SET failed_at = ?, last_error = ? WHERE id = ?", now, redact(error), entry_id)

    def thread_result(self, thread_key: str) -> str | None:
        """Remote id of the first delivered entry of a thread (e.g. Slack ``channel:ts``)."""
        with self._lock:
            row = self._db.execute(
                "SELECT result FROM outbox WHERE thread_key = ? AND delivered_at IS NOT NULL"
                " AND result IS NOT NULL ORDER BY id LIMIT 1",
                (thread_key,),
            ).fetchone()
        return row[0] if row else None

    def pending_count(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL").fetchone()
        return int(row[0])

    def purge(self, older_than: float) -> int:
        """Delete delivered/failed entries finished before ``older_than``; returns how many."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE COALESCE(delivered_at, failed_at) < ?", (older_than,))
        return cur.rowcount

    def open_entries(self, model_id: str) -> list[dict[str, Any]]:
        """``model_id``'s entries that travel with its state: those not yet delivered, and the
        delivered thread roots (a reply sent by the next owner needs the root's remote id)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE model = ? AND ((delivered_at IS NULL AND failed_at IS NULL)"
                " OR (thread_key IS NOT NULL AND result IS NOT NULL)) ORDER BY id", (model_id,)
            ).fetchall()
        return [{"key": r[1], "receiver": r[2], "payload": r[3], "thread_key": r[4], "created_at": r[5],
                 "attempts": r[6], "next_attempt_at": r[7], "delivered_at": r[8], "result": r[10]} for r in rows]

    def hand_over(self, model_id: str) -> list[dict[str, Any]]:
        """Give up ``model_id``'s open entries (its new owner sends them): returned and deleted here."""
        moved = self.open_entries(model_id)
        self._exec("DELETE FROM outbox WHERE model = ? AND delivered_at IS NULL AND failed_at IS NULL", model_id)
        return moved

    def take_over(self, model_id: str, entries: Iterable[Mapping[str, Any]], clean: bool) -> None:
        """Hold ``model_id``'s entries as its previous owner left them (its changelog record).

        Entries this file already holds as delivered stay delivered. ``clean``: the previous owner
        handed the model over (every attempt it made is counted); otherwise it may have died after
        sending an entry and before its record said so: the entry is sent as ``possibly_sent``
        (the receiver looks for its idempotency key before posting again).
        """
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM outbox WHERE model = ? AND delivered_at IS NULL AND failed_at IS NULL", (model_id,))
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (key, receiver, payload, thread_key, created_at, attempts,"
                    " next_attempt_at, delivered_at, result, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(e["key"], e["receiver"], e["payload"], e["thread_key"], e["created_at"],
                      e["attempts"] if clean or e["delivered_at"] is not None else max(1, e["attempts"]),
                      e["next_attempt_at"], e["delivered_at"], e["result"], model_id) for e in entries],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, *args: object) -> None:
        with self._lock:
            self._db.execute(sql, args)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    return OutboxEntry(row[0], row[1], row[2], json.loads(row[3]), *row[4:12])


def model_of(payload: Mapping[str, Any]) -> str | None:
    """The model a notification is about (its group's ``model`` label, or the retraining request's)."""
    model = (payload.get("group_labels") or {}).get("model")
    if model is None:
        model = (payload.get("retrain") or {}).get("model")
    return None if model is None else str(model)
