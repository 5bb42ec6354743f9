"""Outcome join: match outcome events to the predictions they judge.

Predictions wait for their outcome up to ``ttl`` seconds of event time and at
most ``max_pending`` per daemon (oldest evicted first). Outcomes that arrive
before their prediction (the outcomes partition read ahead) wait the same way.
Every change is recorded so that a checkpoint can persist exactly the delta.

>>> from driftwarden.daemon.events import PredictionEvent, OutcomeEvent
>>> join = OutcomeJoin(ttl=3600, max_pending=10)
>>> p = PredictionEvent("churn", "a1", 100.0, {"age": 41}, 1)
>>> join.add_predictions("churn", [p])
[]
>>> [(x.prediction_id, y.outcome) for x, y in join.add_outcomes("churn", [OutcomeEvent("churn", "a1", 200.0, 0)])]
[('a1', 0)]
>>> join.pending_count
0
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from driftwarden.daemon.events import OutcomeEvent, PredictionEvent, event_time
from driftwarden.daemon.held import Held, HeldPrediction

Key = tuple[str, str]  # (model_id, prediction_id)
Pair = tuple[Held, OutcomeEvent]


@dataclass
class JoinCounters:
    matched: int = 0
    expired_predictions: int = 0
    expired_outcomes: int = 0
    evicted: int = 0
    duplicate_predictions: int = 0


@dataclass
class JoinChanges:
    """What changed since the last checkpoint: rows to upsert, keys to delete.

    An event that came and went between two checkpoints leaves nothing: neither a row to
    write nor a key to delete (most predictions are joined within a checkpoint interval;
    their keys, kept until the checkpoint, were ~2 small objects an event churning the heap,
    and a DELETE each of a row never written). ``fresh`` holds, per table, the keys of rows
    added since the last checkpoint that no earlier checkpoint holds.
    """

    predictions: dict[Key, Held | None] = field(default_factory=dict)
    outcomes: dict[Key, OutcomeEvent | None] = field(default_factory=dict)
    fresh_predictions: set[Key] = field(default_factory=set)
    fresh_outcomes: set[Key] = field(default_factory=set)

    def _table(self, table: str) -> tuple[dict[Key, Any], set[Key]]:
        if table == "predictions":
            return self.predictions, self.fresh_predictions
        return self.outcomes, self.fresh_outcomes

    def upsert_all(self, table: str, model_id: str, stored: Iterable[tuple[str, Any, bool]]) -> None:
        """Each ``(id, event, existed)`` of the model, in order: ``event`` stored under the id
        (``existed``: it replaced one). One call a batch, not one an event."""
        rows, fresh = self._table(table)
        for pid, event, existed in stored:
            key = (model_id, pid)
            if not existed and key not in rows:  # neither stored nor deleted since the last checkpoint: not in it
                fresh.add(key)
            rows[key] = event

    def delete(self, table: str, key: Key) -> None:
        """The row of ``key`` gone: forgotten if no checkpoint holds it, else a key to delete."""
        self.delete_all(table, key[0], (key[1],))

    def delete_all(self, table: str, model_id: str, ids: Iterable[str]) -> None:
        """:meth:`delete` of each of the model's ``ids``: one call a batch, not one an event."""
        rows, fresh = self._table(table)
        for pid in ids:
            key = (model_id, pid)
            if key in fresh:
                fresh.remove(key)
                del rows[key]
            else:
                rows[key] = None


class OutcomeJoin:
    """Waiting predictions and early outcomes, per model.

    Each model has its own stores and expires them on its own clock, so a model's
    joins never depend on the event time of another model sharing the daemon. The
    bound ``max_pending`` is per daemon: past it, the oldest waiting predictions of
    the model holding the most are evicted first (the same for early outcomes).
    """

    def __init__(self, ttl: float, max_pending: int) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.ttl = ttl
        self.max_pending = max_pending
        self._predictions: dict[str, dict[str, Held]] = {}  # model -> prediction id -> held, ~event-time order
        self._outcomes: dict[str, dict[str, OutcomeEvent]] = {}
        # model -> outcome ids waiting in arrival order; an OrderedDict, whose first key is found in
        # O(1) however many were deleted before it (a dict's is not: quadratic over a backlog)
        self._queue: dict[str, OrderedDict[str, None]] = {}
        self._n_predictions = 0
        self._n_outcomes = 0
        self.counters = JoinCounters()
        self._changes = JoinChanges()

    @property
    def pending_count(self) -> int:
        return self._n_predictions

    @property
    def early_outcome_count(self) -> int:
        return self._n_outcomes

    def pending_of(self, model_id: str) -> int:
        return len(self._predictions.get(model_id, ()))

    def add_predictions(self, model_id: str, events: Iterable[Held], release_before: float | None = None) -> list[Pair]:
        """Hold predictions for their outcomes; return the pairs this completes, in outcome order.

        ``release_before`` is the model's predictions watermark (see :meth:`release`).
        """
        pairs: list[Pair] = []
        waiting = self._predictions.setdefault(model_id, {})
        early_store = self._outcomes.get(model_id, {})
        queue = self._queue.get(model_id) or OrderedDict()
        before = len(waiting)
        matched_early: list[str] = []
        stored: list[tuple[str, Held, bool]] = []
        for event in events:
            pid = event.prediction_id
            early = early_store.pop(pid, None) if early_store and pid not in queue else None
            if early is not None:  # an outcome that stopped waiting in order: paired as it comes
                matched_early.append(pid)
                pairs.append((event, early))
                continue
            existed = waiting.pop(pid, None) is not None
            if existed:
                self.counters.duplicate_predictions += 1  # the newest prediction wins
            waiting[pid] = event
            stored.append((pid, event, existed))
        # the change log after the loop, a batch at a time (each table's changes in their order)
        self._changes.upsert_all("predictions", model_id, stored)
        self._changes.delete_all("outcomes", model_id, matched_early)
        self._n_predictions += len(waiting) - before
        self._n_outcomes -= len(matched_early)
        self.counters.matched += len(pairs)
        pairs += self.release(model_id, release_before)
        self._evict()
        return pairs

    def add_outcomes(self, model_id: str, events: Iterable[OutcomeEvent],
                     release_before: float | None = None, future_after: float | None = None) -> list[Pair]:
        """Match outcomes to their waiting predictions; the pairs, in the outcomes' order.

        An outcome whose prediction was not read yet (the outcomes partition ran ahead)
        waits, and so do the outcomes behind it, until its prediction comes or cannot
        come in order any more (:meth:`release`): the detectors see pairs in the order
        of the outcome stream however the consumer interleaves the two topics. An outcome
        dated after ``future_after`` (its clock refuses the time) never holds the others:
        no predictions watermark would ever pass it.
        """
        pairs: list[Pair] = []
        waiting = self._predictions.get(model_id, {})
        early_store = self._outcomes.setdefault(model_id, {})
        queue = self._queue.setdefault(model_id, OrderedDict())
        before = len(early_store)
        matched: list[str] = []
        stored: list[tuple[str, OutcomeEvent, bool]] = []
        for event in events:
            pid = event.prediction_id
            if not queue:
                prediction = waiting.pop(pid, None) if waiting else None
                if prediction is not None:
                    matched.append(pid)
                    pairs.append((prediction, event))
                    continue
            existed = early_store.pop(pid, None) is not None
            early_store[pid] = event
            stored.append((pid, event, existed))
            queue.pop(pid, None)
            if future_after is not None and event_time(event.timestamp) > future_after and pid not in waiting:
                continue  # waits as a plain early outcome
            queue[pid] = None
        self._changes.upsert_all("outcomes", model_id, stored)  # after the loop, as in add_predictions
        self._changes.delete_all("predictions", model_id, matched)
        self._n_predictions -= len(pairs)
        self._n_outcomes += len(early_store) - before
        self.counters.matched += len(pairs)
        pairs += self.release(model_id, release_before)
        self._evict()
        return pairs

    def release(self, model_id: str, release_before: float | None = None, force: bool = False) -> list[Pair]:
        """Pairs of the outcomes waiting in order whose predictions are here, from the front.

        The front outcome stops holding the others back (it waits on as an early outcome,
        paired whenever its prediction comes) once the predictions watermark
        ``release_before`` reached its time (its prediction would have been read by
        now), or with ``force`` (the predictions went silent).
        """
        queue = self._queue.get(model_id)
        if not queue:
            return []
        waiting = self._predictions.get(model_id, {})
        early = self._outcomes.get(model_id, {})
        pairs: list[Pair] = []
        matched: list[str] = []
        while queue:
            pid = next(iter(queue))
            event = early.get(pid)
            if event is None:  # expired or evicted while it waited
                del queue[pid]
                continue
            prediction = waiting.pop(pid, None)
            if prediction is not None:
                del queue[pid], early[pid]
                matched.append(pid)
                pairs.append((prediction, event))
                continue
            if force or (release_before is not None and release_before >= event_time(event.timestamp)):
                del queue[pid]
                continue
            break
        self._changes.delete_all("predictions", model_id, matched)
        self._changes.delete_all("outcomes", model_id, matched)
        self._n_predictions -= len(pairs)
        self._n_outcomes -= len(pairs)
        self.counters.matched += len(pairs)
        return pairs

    def waiting_in_order(self, model_id: str) -> int:
        """Outcomes of ``model_id`` held in order behind one whose prediction has not come."""
        return len(self._queue.get(model_id, ()))

    def expire(self, model_id: str, now: float) -> int:
        """Drop ``model_id``'s waiting events older than ``ttl`` at its event time ``now``; expired predictions.

        Insertion order is (nearly) event-time order, so the walk stops at the first
        waiting event inside the horizon (stragglers go at a later pass): a call
        that expires nothing costs O(1), not a pass over every pending event.
        """
        horizon = now - self.ttl
        expired = 0
        waiting = self._predictions.get(model_id)
        if waiting:
            gone = _expired_keys(waiting, horizon)
            for pid in gone:
                del waiting[pid]
            self._changes.delete_all("predictions", model_id, gone)
            expired = len(gone)
            self._n_predictions -= expired
            self.counters.expired_predictions += expired
        early = self._outcomes.get(model_id)
        if early:
            gone = _expired_keys(early, horizon)
            for pid in gone:
                del early[pid]
            self._changes.delete_all("outcomes", model_id, gone)
            self._n_outcomes -= len(gone)
            self.counters.expired_outcomes += len(gone)
        return expired

    def _evict(self) -> None:
        gone = _evict(self._predictions, self._n_predictions - self.max_pending, self._changes, "predictions")
        gone_early = _evict(self._outcomes, self._n_outcomes - self.max_pending, self._changes, "outcomes")
        self._n_predictions -= gone
        self._n_outcomes -= gone_early
        self.counters.evicted += gone + gone_early

    def take_changes(self) -> JoinChanges:
        """The delta since the last call (for the checkpoint), and start a new one."""
        changes, self._changes = self._changes, JoinChanges()
        return changes

    def waiting_ids(self, model_id: str) -> list[str]:
        """Ids of ``model_id``'s predictions waiting for their outcome, oldest first."""
        return list(self._predictions.get(model_id, ()))

    def early_outcomes(self, model_id: str) -> tuple[list[OutcomeEvent], list[str]]:
        """``model_id``'s outcomes waiting for their prediction, and the ids of those waiting in order."""
        return list(self._outcomes.get(model_id, {}).values()), list(self._queue.get(model_id, ()))

    def drop(self, model_id: str) -> None:
        """Forget ``model_id`` (it moved to another instance); not a change to checkpoint."""
        self._n_predictions -= len(self._predictions.pop(model_id, ()))
        self._n_outcomes -= len(self._outcomes.pop(model_id, ()))
        self._queue.pop(model_id, None)

    def adopt(self, model_id: str, predictions: Sequence[Held], outcomes: Sequence[OutcomeEvent],
              queue: Sequence[str]) -> None:
        """Hold ``model_id``'s waiting events as they were (a restore: nothing is matched, nothing counted).

        ``predictions`` in the order they were read; ``queue`` the outcome ids waiting in order.
        """
        self.drop(model_id)
        waiting = self._predictions[model_id] = {}
        for p in predictions:
            waiting.pop(p.prediction_id, None)
            waiting[p.prediction_id] = p
        self._outcomes[model_id] = {o.prediction_id: o for o in outcomes}
        self._queue[model_id] = OrderedDict((pid, None) for pid in queue if pid in self._outcomes[model_id])
        self._n_predictions += len(waiting)
        self._n_outcomes += len(self._outcomes[model_id])

    def hold(self, model_id: str, predictions: Sequence[Held]) -> None:
        """Append predictions read again after a restore to ``model_id``'s waiting ones (no matching, no counting)."""
        waiting = self._predictions.setdefault(model_id, {})
        before = len(waiting)
        for p in predictions:
            waiting.pop(p.prediction_id, None)
            waiting[p.prediction_id] = p
        self._n_predictions += len(waiting) - before

    def held(self, model_id: str, prediction_id: str) -> Held:
        """The waiting prediction ``prediction_id`` of ``model_id`` (KeyError if it is not waiting)."""
        return self._predictions[model_id][prediction_id]

    def place(self, model_id: str, placed: Sequence[tuple[int, str]]) -> None:
        """Move waiting predictions to the places ``(index, id)`` they had in the waiting order.

        A restore adopts the predictions its record holds before the ones read again from the
        topic; this puts them back where they were (expiry and eviction go oldest first)."""
        waiting = self._predictions.get(model_id)
        pinned = {pid for _, pid in placed if waiting and pid in waiting}
        if not waiting or not pinned:
            return
        order = [pid for pid in waiting if pid not in pinned]
        for index, pid in sorted(placed):
            if pid in pinned:
                order.insert(min(index, len(order)), pid)
        self._predictions[model_id] = {pid: waiting[pid] for pid in order}

    def restore(self, predictions: Sequence[PredictionEvent], outcomes: Sequence[OutcomeEvent]) -> None:
        for p in sorted(predictions, key=lambda e: event_time(e.timestamp)):
            self._predictions.setdefault(p.model_id, {})[p.prediction_id] = p
        for o in sorted(outcomes, key=lambda e: event_time(e.timestamp)):
            self._outcomes.setdefault(o.model_id, {})[o.prediction_id] = o
        self._n_predictions = sum(map(len, self._predictions.values()))
        self._n_outcomes = sum(map(len, self._outcomes.values()))
        self._changes = JoinChanges()


def _evict(stores: dict[str, dict[str, Any]], excess: int, changes: JoinChanges, table: str) -> int:
    """Drop ``excess`` entries, oldest first from the model holding the most; how many went."""
    gone = 0
    while excess > gone:  # one scan per largest model, not per evicted event
        model_id, store = max(stores.items(), key=lambda kv: len(kv[1]))
        for pid in list(itertools.islice(store, excess - gone)):
            del store[pid]
            changes.delete(table, (model_id, pid))
            gone += 1
    return gone


def _expired_keys(store: dict[str, Held] | dict[str, OutcomeEvent], horizon: float) -> list[str]:
    """The leading keys of ``store`` whose event time is before ``horizon``."""
    keys: list[str] = []
    for key, event in store.items():
        if event_time(event.timestamp) >= horizon:
            break
        keys.append(key)
    return keys


_encode = msgspec.json.Encoder().encode
_decode_prediction = msgspec.json.Decoder(PredictionEvent).decode
_decode_outcome = msgspec.json.Decoder(OutcomeEvent).decode


def encode_event(event: Held | OutcomeEvent) -> bytes:
    """Contract JSON of a waiting event (a held prediction is written as the event it came from)."""
    return _encode(event.to_event() if isinstance(event, HeldPrediction) else event)


def decode_prediction(blob: bytes) -> PredictionEvent:
    return _decode_prediction(blob)


def decode_outcome(blob: bytes) -> OutcomeEvent:
    return _decode_outcome(blob)
