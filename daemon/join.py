"""Outcome join: match outcome events to the predictions they judge.

Predictions wait for their outcome up to ``ttl`` seconds of event time and at
most ``max_pending`` per daemon (oldest evicted first). Outcomes that arrive
before their prediction (the outcomes partition read ahead) wait the same way.
Every change is recorded so that a checkpoint can persist exactly the delta.

>>> from daemon.events import PredictionEvent, OutcomeEvent
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from daemon.events import OutcomeEvent, PredictionEvent, event_time
from daemon.held import Held, HeldPrediction

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
    """What changed since the last checkpoint: rows to upsert, keys to delete."""

    predictions: dict[Key, Held | None] = field(default_factory=dict)
    outcomes: dict[Key, OutcomeEvent | None] = field(default_factory=dict)


class OutcomeJoin:
    def __init__(self, ttl: float, max_pending: int) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.ttl = ttl
        self.max_pending = max_pending
        self._predictions: dict[Key, Held] = {}  # insertion order ~ event time
        self._outcomes: dict[Key, OutcomeEvent] = {}
        self.counters = JoinCounters()
        self._changes = JoinChanges()

    @property
    def pending_count(self) -> int:
        return len(self._predictions)

    @property
    def early_outcome_count(self) -> int:
        return len(self._outcomes)

    def add_predictions(self, model_id: str, events: Iterable[Held]) -> list[Pair]:
        """Hold predictions for their outcomes; return pairs completed by early outcomes."""
        pairs: list[Pair] = []
        for event in events:
            key = (model_id, event.prediction_id)
            early = self._outcomes.pop(key, None)
            if early is not None:
                self._changes.outcomes[key] = None
                pairs.append((event, early))
                continue
            if self._predictions.pop(key, None) is not None:
                self.counters.duplicate_predictions += 1  # the newest prediction wins
            self._predictions[key] = event
            self._changes.predictions[key] = event
        self._evict()
        self.counters.matched += len(pairs)
        return pairs

    def add_outcomes(self, model_id: str, events: Iterable[OutcomeEvent]) -> list[Pair]:
        pairs: list[Pair] = []
        for event in events:
            key = (model_id, event.prediction_id)
            prediction = self._predictions.pop(key, None)
            if prediction is None:
                self._outcomes.pop(key, None)
                self._outcomes[key] = event
                self._changes.outcomes[key] = event
                continue
            self._changes.predictions[key] = None
            pairs.append((prediction, event))
        self._evict()
        self.counters.matched += len(pairs)
        return pairs

    def expire(self, now: float) -> dict[str, int]:
        """Drop waiting events older than ``ttl`` at ``now``; expired predictions per model.

        Insertion order is (nearly) event-time order, so the walk stops at the first
        waiting event inside the horizon (stragglers go at a later pass): a call
        that expires nothing costs O(1), not a pass over every pending event.
        """
        expired: dict[str, int] = {}
        horizon = now - self.ttl
        for key in _expired_keys(self._predictions, horizon):
            del self._predictions[key]
            self._changes.predictions[key] = None
            expired[key[0]] = expired.get(key[0], 0) + 1
            self.counters.expired_predictions += 1
        for key in _expired_keys(self._outcomes, horizon):
            del self._outcomes[key]
            self._changes.outcomes[key] = None
            self.counters.expired_outcomes += 1
        return expired

    def _evict(self) -> None:
        for store, changes in ((self._predictions, self._changes.predictions), (self._outcomes, self._changes.outcomes)):
            while len(store) > self.max_pending:
                key = next(iter(store))
                del store[key]
                changes[key] = None
                self.counters.evicted += 1

    def take_changes(self) -> JoinChanges:
        """The delta since the last call (for the checkpoint), and start a new one."""
        changes, self._changes = self._changes, JoinChanges()
        return changes

    def restore(self, predictions: Sequence[PredictionEvent], outcomes: Sequence[OutcomeEvent]) -> None:
        for p in predictions:
            self._predictions[(p.model_id, p.prediction_id)] = p
        for o in outcomes:
            self._outcomes[(o.model_id, o.prediction_id)] = o
        self._changes = JoinChanges()


def _expired_keys(store: dict[Key, Held] | dict[Key, OutcomeEvent], horizon: float) -> list[Key]:
    """The leading keys of ``store`` whose event time is before ``horizon``."""
    keys: list[Key] = []
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
