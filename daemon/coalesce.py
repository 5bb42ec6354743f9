"""Each model's decoded events wait in its own buffer, to go through the model's path together.

With many models in one process a poll of 5,000 messages gives each model a few events, and the
per-model path (columns, windows, join, outcome side, metrics) costs about the same for 12
events as for 500. So a model's routed events wait here until it holds ``events`` (by default
its ``monitoring.block``), or its oldest has waited ``max_wait`` of wall time, or all models
together hold more than ``max_waiting`` (then the models waiting longest go first, until half
that is left). The pipeline then runs them as one bigger poll: predictions first, then outcomes.

>>> b = EventBuffers(max_wait=5.0, max_waiting=10, events_of={"a": 3, "b": 3})
>>> b.add("a", ["p1"], [], now=0.0); b.add("b", ["p1"], ["o1"], now=1.0)
>>> b.due(now=2.0), b.waiting
([], 3)
>>> b.add("a", ["p2", "p3"], [], now=2.0)  # "a" holds 3: due
>>> b.due(now=2.0)
['a']
>>> b.take("a").predictions, b.waiting
(['p1', 'p2', 'p3'], 2)
>>> b.due(now=6.5)                        # "b" waited 5.5 s
['b']

A model's predictions wait in held form (:class:`~daemon.held.HeldPrediction`, ``held=True``)
when every one of them was decoded typed for it: 394 instead of 909 bytes an event, and no
twenty float objects each to scatter over the heap while 100,000 events wait. Once an untyped
event joins them, all of them wait as events (the held ones made events again), so that the
model's batch takes the contract decoder's path as a mixed batch always did. The same columns
and findings; only what the join keeps of those typed events differs in form: a timestamp sent
as RFC 3339 text comes back as its epoch seconds and a null numeric feature as NaN, so a
checkpoint writes that prediction's ``timestamp`` as a number (restored, the same time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from driftwarden.alerts.settings import Duration


class CoalesceSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``coalesce:`` in the YAML: how long and how many of a model's events wait to go through together."""

    events: int | None = None  # per model; None: the model's monitoring.block
    max_wait: Duration = "5s"
    max_waiting: int = 100_000  # all models together (a typed 20-feature event waits as ~400 bytes)


@dataclass(slots=True)
class Waiting:
    """One model's events not yet through its path, in arrival order."""

    since: float  # wall time the oldest arrived
    predictions: list[Any] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    held: bool = True  # the predictions are held predictions (until an event not in held form joins them)

    def __len__(self) -> int:
        return len(self.predictions) + len(self.outcomes)


class EventBuffers:
    """Per model, events waiting; which models are due (count, age, the total bound)."""

    def __init__(self, max_wait: float, max_waiting: int, events_of: Mapping[str, int]) -> None:
        if max_wait < 0 or max_waiting < 1 or any(n < 1 for n in events_of.values()):
            raise ValueError("max_wait must be >= 0 seconds, max_waiting and every model's events >= 1")
        self.max_wait = max_wait
        self.max_waiting = max_waiting
        self.events_of = dict(events_of)
        self._models: dict[str, Waiting] = {}  # in the order their oldest event arrived
        self._full: list[str] = []  # models that reached their count since the last due()
        self.waiting = 0  # events of all models

    def add(self, model_id: str, predictions: list[Any], outcomes: list[Any], now: float, held: bool = False) -> None:
        """Events of one model; ``held``: the predictions are in held form (see the module doc)."""
        w = self._models.get(model_id)
        if w is None:
            w = self._models[model_id] = Waiting(now)
        if predictions and held != w.held:
            if w.held:  # the first not held: those waiting become events again, all go as events
                w.predictions, w.held = [p.to_event() for p in w.predictions], False
            else:
                predictions = [p.to_event() for p in predictions]
        w.predictions += predictions
        w.outcomes += outcomes
        self.waiting += len(predictions) + len(outcomes)
        if len(w) >= self.events_of[model_id]:
            self._full.append(model_id)

    def due(self, now: float) -> list[str]:
        """Models to run now, each once, in the order their oldest event arrived."""
        due = dict.fromkeys(m for m in self._full if m in self._models)
        self._full.clear()
        for model_id, w in self._models.items():  # oldest first: stop at the first young enough
            if now - w.since < self.max_wait:
                break
            due[model_id] = None
        if self.waiting > self.max_waiting:  # the bound: the longest waiting go until half of it is left
            left = self.waiting - sum(len(self._models[m]) for m in due)
            for model_id, w in self._models.items():
                if left <= self.max_waiting // 2:
                    break
                if model_id not in due:
                    due[model_id] = None
                    left -= len(w)
        order = {m: i for i, m in enumerate(self._models)} if len(due) > 1 else {}
        return sorted(due, key=order.__getitem__) if order else list(due)

    def take(self, model_id: str) -> Waiting | None:
        w = self._models.pop(model_id, None)
        if w is not None:
            self.waiting -= len(w)
        return w

    def holds(self, model_id: str) -> bool:
        """Whether predictions of ``model_id`` added now may wait in held form (no event waits with them)."""
        w = self._models.get(model_id)
        return w is None or w.held

    def runs_at_once(self, model_id: str, predictions: list[Any], outcomes: list[Any]) -> bool:
        """Whether these events of ``model_id`` make it due when added, and none of its events wait.

        >>> b = EventBuffers(max_wait=5.0, max_waiting=10, events_of={"a": 3})
        >>> b.runs_at_once("a", ["p1", "p2"], ["o1"]), b.runs_at_once("a", ["p1"], [])
        (True, False)
        >>> b.add("a", ["p1"], [], now=0.0); b.runs_at_once("a", ["p2", "p3", "p4"], [])
        False
        """
        return model_id not in self._models and len(predictions) + len(outcomes) >= self.events_of[model_id]

    def models(self) -> list[str]:
        """Models with waiting events, oldest first."""
        return list(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models
