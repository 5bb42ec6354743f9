"""A model's typed predictions wait in held form (daemon/coalesce.py): results are those of the events.

Each run feeds the same polls twice: as the daemon does (typed predictions held as they arrive)
and with the held form turned off (every prediction waits as its decoded event and is turned into
columns at its model's turn, as before the held form). The findings, counts, metrics and what the
join holds must be the same, through null numeric features, categorical features, a new model
version, events without a version, epoch-second timestamps, multiclass class scores, a checkpoint
and restart while events wait, and a model whose typed events meet untyped ones in its buffer.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.events import event_time
from driftwarden.daemon.held import HeldPrediction
from driftwarden.daemon.join import decode_prediction, encode_event
from driftwarden.daemon.pipeline import Message, Pipeline
from driftwarden.daemon.scenarios import FEATURES, Stream, write_reference
from tests.daemon.test_coalesce import _NoDeadLetters, counts, observe, traffic

STREAMS = [Stream("nulls", 3_000, fault="nulls", onset=1_000, seed=31, label_delay=30.0, model_id="nulls"),
           Stream("version", 3_000, fault="new_version", onset=1_200, seed=32, label_delay=30.0, model_id="version"),
           Stream("category", 3_000, fault="new_category", onset=1_000, seed=33, label_delay=30.0,
                  model_id="no-version"),
           Stream("epoch", 3_000, seed=34, label_delay=30.0, model_id="epoch"),
           Stream("mixed", 3_000, fault="shift", onset=1_000, seed=35, label_delay=30.0, model_id="mixed")]
CLASSES = ["cat", "dog", "fox"]


def _rewrite(msgs: list[tuple[Message, float]]) -> list[tuple[Message, float]]:
    """Vary the scenario traffic: "no-version" sends no model_version, "epoch" epoch-second timestamps,
    and every 41st prediction of "mixed" an undeclared feature (the contract decoder reads it)."""
    out, n = [], 0
    for m, now in msgs:
        key = m.key.decode() if m.key else ""
        if key in ("no-version", "epoch", "mixed"):
            event = json.loads(m.value or b"")
            if key == "no-version":
                event.pop("model_version", None)
            elif key == "epoch":
                event["timestamp"] = datetime.fromisoformat(event["timestamp"]).timestamp()
            elif m.topic == "predictions":
                n += 1
                if n % 41 == 0:
                    event["features"]["colour"] = "red"
            m = Message(m.topic, m.partition, m.offset, m.key, json.dumps(event).encode())
        out.append((m, now))
    return out


def _multiclass_traffic(n: int = 3_000, seed: int = 5) -> list[tuple[Message, float]]:
    """A multiclass model's typed predictions (class scores, a categorical and a sometimes-null numeric
    feature), each outcome 20 s after its prediction."""
    rng = np.random.default_rng(seed)
    out: list[tuple[Message, float]] = []
    t0, due, offsets = 1.8e9, [], {"predictions": 0, "outcomes": 0}

    def send(topic: str, event: dict[str, Any], now: float) -> None:
        out.append((Message(topic, 0, offsets[topic], b"animals", json.dumps(event).encode()), now))
        offsets[topic] += 1

    for i in range(n):
        t = t0 + i * 0.5
        while due and due[0][0] <= t:
            send("outcomes", due.pop(0)[1], t)
        truth = int(rng.integers(0, 3))
        x = truth + rng.normal(0, 0.8 if i < n // 2 else 2.0)
        p = np.exp(-((x - np.arange(3)) ** 2))
        p = (p / p.sum()).round(4)
        send("predictions", {"model_id": "animals", "prediction_id": f"a{i}", "timestamp": t,
                             "features": {"x": None if rng.random() < 0.05 else float(x),
                                          "colour": str(rng.choice(["red", "blue"]))},
                             "prediction": CLASSES[int(p.argmax())], "score": dict(zip(CLASSES, p.tolist(), strict=True)),
                             **({"model_version": "v1"} if i % 3 else {})}, t)
        due.append((t + 20.0, {"model_id": "animals", "prediction_id": f"a{i}", "timestamp": t + 20.0,
                               "outcome": CLASSES[truth]}))
    for _, event in due:
        send("outcomes", event, out[-1][1])
    return out


def _multiclass_reference(path: Path) -> None:
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 3, 10_000)
    x = truth + rng.normal(0, 0.8, 10_000)
    p = np.exp(-((x[:, None] - np.arange(3)[None, :]) ** 2))
    p = p / p.sum(axis=1, keepdims=True)
    table = {"x": x, "colour": rng.choice(["red", "blue"], 10_000), "prediction": np.array(CLASSES)[p.argmax(axis=1)],
             "outcome": np.array(CLASSES)[truth], **{f"score_{c}": p[:, j] for j, c in enumerate(CLASSES)}}
    pq.write_table(pa.table(table), path)


def make_app(directory: Path, clock: list[float], streams: list[Stream], multiclass: bool) -> App:
    models: list[dict[str, Any]] = []
    for s in streams:
        if not (directory / f"{s.model_id}.parquet").exists():
            write_reference(directory / f"{s.model_id}.parquet", s, rows=20_000)
        models.append({"id": s.model_id, "task": "binary", "reference": f"{s.model_id}.parquet",
                       "features": {name: {"type": kind} for name, kind in FEATURES.items()},
                       "monitoring": {"window_size": 1000}})
    if multiclass:
        if not (directory / "animals.parquet").exists():
            _multiclass_reference(directory / "animals.parquet")
        models.append({"id": "animals", "task": "multiclass", "reference": "animals.parquet",
                       "features": {"x": {"type": "numeric"}, "colour": {"type": "categorical"}},
                       "monitoring": {"window_size": 500}})
    config = parse_config({
        "models": models,
        "state": {"path": "state/driftwarden.db", "checkpoint_interval": "1h"},
        "alerting": {"receivers": {"oncall": {"type": "log"}}, "route": {"receiver": "oncall"}},
        "coalesce": {"max_wait": "50s"},
    }, base_dir=str(directory))
    app = App(config, _NoDeadLetters(), clock=lambda: clock[0])
    app.pipeline.on_degraded = None
    return app


def joined(app: App, exact: set[str]) -> dict[str, list[Any]]:
    """What the join holds per model: each prediction's contract JSON (as a checkpoint writes it) for the
    models in ``exact``, else its values with the event time as epoch seconds."""
    out: dict[str, list[Any]] = {}
    for model_id, held in app.join._predictions.items():
        rows: list[Any] = []
        for pid, event in held.items():
            blob = encode_event(event)
            if model_id in exact:
                rows.append((pid, blob))
            else:
                e = decode_prediction(blob)
                rows.append((pid, event_time(e.timestamp), e.features, e.prediction, e.score, e.model_version))
        out[model_id] = rows
    return out


def metered(app: App) -> dict[str, Any]:
    m = app.metrics
    return {"decode": [m.decode_path.labels(path=p)._value.get() for p in ("typed", "contract")],
            "versions": {mid: r.model_version for mid, r in app.models.items()},
            "expired": {mid: m.join_expired.labels(model=mid)._value.get() for mid in app.models},
            "totals": (app.totals.predictions, app.totals.outcomes)}


def run(directory: Path, msgs: list[tuple[Message, float]], streams: list[Stream], multiclass: bool, poll: int,
        restart_at: int) -> tuple[Any, ...]:
    clock = [msgs[0][1]]
    seen: dict[str, list[Any]] = {}
    app = make_app(directory, clock, streams, multiclass)
    observe(app, seen)
    before, held_seen, states = None, 0, []
    for n, start in enumerate(range(0, len(msgs), poll)):
        batch = msgs[start:start + poll]
        clock[0] = batch[-1][1]
        app.handle([m for m, _ in batch])
        held_seen += sum(isinstance(p, HeldPrediction) for w in app.pipeline.buffers._models.values()
                         for p in w.predictions)
        if n == restart_at:
            states.append((joined(app, {"nulls", "version", "no-version", "epoch", "animals"}), metered(app)))
            app.save()
            before = counts(app)
            app.close()
            app = make_app(directory, clock, streams, multiclass)
            observe(app, seen)
    app.pipeline.finish(clock[0] + 900)
    states.append((joined(app, {"nulls", "version", "no-version", "epoch", "animals"}), metered(app)))
    result = counts(app, before)
    app.close()
    return seen, result, states, held_seen


@pytest.mark.parametrize(("poll", "multiclass"), [(37, False), (500, True)])
def test_held_waiting_predictions_give_the_results_of_the_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 poll: int, multiclass: bool) -> None:
    streams = STREAMS if not multiclass else STREAMS[:2]
    msgs = _rewrite(traffic(streams, seed=7))
    if multiclass:  # the animals' polls between the others'
        extra = _multiclass_traffic()
        msgs = sorted(msgs + extra, key=lambda mn: mn[1])
    restart_at = len(msgs) // poll // 2
    held = run(tmp_path / "held", msgs, streams, multiclass, poll, restart_at)
    with monkeypatch.context() as patch:  # as before: every prediction waits as its decoded event
        patch.setattr(Pipeline, "_held", lambda self, model_id, events, outcomes: None)
        events = run(tmp_path / "events", msgs, streams, multiclass, poll, restart_at)
    seen, result, states, held_seen = held
    assert held_seen > 1000 and events[3] == 0  # predictions did wait in held form, and only in the first run
    assert sum(f[3] for rows in seen.values() for f in rows) > 0  # faults were found: verdicts compared
    assert all(c[0] > 1_000 for c in result.values())  # outcomes were joined and labelled
    assert result == events[1]
    assert sorted(seen) == sorted(events[0])
    for model_id in seen:
        assert seen[model_id] == events[0][model_id], model_id
    assert len(states) == len(events[2]) == 2
    for (join_held, metrics_held), (join_events, metrics_events) in zip(states, events[2], strict=True):
        assert metrics_held == metrics_events
        assert join_held.keys() == join_events.keys()
        for model_id in join_held:
            assert join_held[model_id] == join_events[model_id], model_id
    if not multiclass:
        assert metrics_held["decode"][1] > 0  # "mixed" sent untyped events
        assert metrics_held["versions"]["version"] == "2.0.0" and metrics_held["versions"]["no-version"] is None
