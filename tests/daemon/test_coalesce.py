"""A model's events wait in its buffer and go through its path together (daemon/coalesce.py).

Coalescing must not change what is found: the same messages over several models give the same
findings however they are cut into polls, a checkpoint taken while events wait loses none and
counts none twice, a waiting model runs once its oldest event waited ``coalesce.max_wait``, and
all models together never hold more than ``coalesce.max_waiting`` events after a poll.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftwarden.daemon.app import App
from driftwarden.daemon.config import ConfigError, parse_config
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.scenarios import FEATURES, Stream, event_times, messages, write_reference
from driftwarden.detectors.findings import Finding

STREAMS = [Stream("shift", 4_000, fault="shift", onset=1_500, seed=21, label_delay=30.0, model_id="credit-a"),
           Stream("concept", 4_000, fault="concept", onset=1_500, seed=22, label_delay=30.0,
                  model_id="credit-b"),
           Stream("quiet", 4_000, seed=23, label_delay=30.0, model_id="credit-c")]


class _NoDeadLetters:
    def send(self, message: Message, reason: str) -> None:
        raise AssertionError(f"no dead letter expected: {reason}")


def traffic(streams: list[Stream] = STREAMS, seed: int = 3) -> list[tuple[Message, float]]:
    """The streams' messages interleaved at random (each stream in its own order), each with the
    event time of the latest prediction produced up to it (the fake wall clock)."""
    its: list[Iterator[tuple[str, bytes, int]]] = [messages(s) for s in streams]
    rng = np.random.default_rng(seed)
    offsets = {"predictions": 0, "outcomes": 0}
    out, now = [], float(event_times(streams[0], np.array([0]))[0])
    live = list(range(len(streams)))
    while live:
        i = live[int(rng.integers(len(live)))]
        item = next(its[i], None)
        if item is None:
            live.remove(i)
            continue
        topic, value, index = item
        if topic == "predictions":
            now = max(now, float(event_times(streams[i], np.array([index]))[0]))
        out.append((Message(topic, 0, offsets[topic], streams[i].model_id.encode(), value), now))
        offsets[topic] += 1
    return out


def make_app(directory: Path, clock: list[float], coalesce: dict[str, Any] | None = None,
             streams: list[Stream] = STREAMS) -> App:
    for s in streams:
        if not (directory / f"{s.model_id}.parquet").exists():
            write_reference(directory / f"{s.model_id}.parquet", s, rows=20_000)
    config = parse_config({
        "models": [{"id": s.model_id, "task": "binary", "reference": f"{s.model_id}.parquet",
                    "features": {name: {"type": kind} for name, kind in FEATURES.items()},
                    "monitoring": {"window_size": 1000}} for s in streams],
        "state": {"path": "state/driftwarden.db", "checkpoint_interval": "1h"},
        "alerting": {"receivers": {"oncall": {"type": "log"}}, "route": {"receiver": "oncall"}},
        **({"coalesce": coalesce} if coalesce else {}),
    }, base_dir=str(directory))
    app = App(config, _NoDeadLetters(), clock=lambda: clock[0])
    app.pipeline.on_degraded = None
    return app


def _row(f: Finding) -> tuple[Any, ...]:
    text = json.dumps([f.summary, f.details], sort_keys=True, default=str)
    return (f.kind, f.detector, f.subject, f.degraded, repr(f.statistic), repr(f.threshold), repr(f.window_end),
            repr(f.known_at), f.window_size, hashlib.sha256(text.encode()).hexdigest()[:16])


def observe(app: App, seen: dict[str, list[tuple[Any, ...]]]) -> None:
    """Record every finding the alert lifecycle receives, per model (change nothing)."""
    inner = app.alerts.ingest

    def ingest(model_id: str, labels: Any, findings: list[Finding], at: float) -> Any:
        seen.setdefault(model_id, []).extend(map(_row, findings))
        return inner(model_id, labels, findings, at)

    setattr(app.alerts, "ingest", ingest)  # noqa: B010


def counts(app: App, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per model: labelled samples and predictions waiting for outcomes (the runtime's), events
    consumed and joined (this process's metrics, added to ``before``'s of an earlier process)."""
    out: dict[str, Any] = {}
    for m, r in app.models.items():
        metered = [app.metrics.events.labels(topic=t, model=m)._value.get() for t in ("predictions", "outcomes")]
        metered.append(app.metrics.joined.labels(model=m)._value.get())
        if before is not None:
            metered = [a + b for a, b in zip(metered, before[m][2], strict=True)]
        out[m] = (r.labelled_samples, app.join.pending_of(m), metered)
    return out


def run(directory: Path, poll: int, *, restart_at: int | None = None,
        coalesce: dict[str, Any] | None = None) -> tuple[dict[str, list[Any]], dict[str, Any], int]:
    """Feed :func:`traffic` in polls of ``poll`` messages (``restart_at``: checkpoint after that poll,
    stop, and go on in a new App from the checkpoint); the findings per model, the counts, and the
    events that waited when the checkpoint was taken."""
    msgs = traffic()
    clock = [msgs[0][1]]
    seen: dict[str, list[Any]] = {}
    app = make_app(directory, clock, coalesce)
    observe(app, seen)
    waited, before = 0, None
    for n, start in enumerate(range(0, len(msgs), poll)):
        batch = msgs[start:start + poll]
        clock[0] = batch[-1][1]
        app.handle([m for m, _ in batch])  # no housekeeping: its ticks' traffic checks run once a call
        if n == restart_at:
            waited = app.pipeline.buffers.waiting
            app.save()
            before = counts(app)
            app.close()
            app = make_app(directory, clock, coalesce)
            observe(app, seen)
            consumed = [m for m, _ in msgs[:start + poll]]
            assert app.offsets == {(t, 0): 1 + max(m.offset for m in consumed if m.topic == t)
                                   for t in ("predictions", "outcomes")}  # where the checkpoint resumes
    app.pipeline.finish(clock[0] + 900)
    result = counts(app, before)
    app.close()
    return seen, result, waited


@pytest.fixture(scope="module")
def in_polls_of_5000(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[Any]], dict[str, Any], int]:
    return run(tmp_path_factory.mktemp("big"), 5000)


def test_findings_do_not_depend_on_poll_size(in_polls_of_5000: Any, tmp_path: Path) -> None:
    big_seen, big_counts, _ = in_polls_of_5000
    small_seen, small_counts, _ = run(tmp_path, 7)
    assert sum(f[3] for rows in big_seen.values() for f in rows) > 0  # faults were found: verdicts compared
    assert big_counts == small_counts
    assert all(c[0] > 3_000 for c in big_counts.values())  # most outcomes were joined and labelled
    assert sorted(big_seen) == sorted(small_seen) == sorted(s.model_id for s in STREAMS)
    for model_id in big_seen:
        assert small_seen[model_id] == big_seen[model_id], model_id


def test_a_checkpoint_while_events_wait_loses_none_and_counts_none_twice(in_polls_of_5000: Any,
                                                                         tmp_path: Path) -> None:
    big_seen, big_counts, _ = in_polls_of_5000
    seen, result, waited = run(tmp_path, 7, restart_at=700, coalesce={"max_wait": "50s"})
    assert waited > 100  # the checkpoint was taken while many events waited
    assert result == big_counts
    for model_id in big_seen:
        assert seen[model_id] == big_seen[model_id], model_id


def test_a_waiting_model_runs_when_its_oldest_event_waited_max_wait(tmp_path: Path) -> None:
    msgs = traffic(STREAMS[:1])[:40]
    clock = [msgs[-1][1]]
    app = make_app(tmp_path, clock, {"max_wait": "3s"}, STREAMS[:1])
    runtime = app.models["credit-a"]
    app.handle([m for m, _ in msgs[:20]])
    clock[0] += 2.0
    app.handle([m for m, _ in msgs[20:]])
    app.housekeeping()
    assert app.pipeline.buffers.waiting == 40 and runtime.clock.watermark("predictions") is None
    assert app.totals.predictions == 0  # consumed, not yet run through the model's path
    clock[0] += 0.9  # the oldest waited 2.9 s
    app.housekeeping()
    assert app.pipeline.buffers.waiting == 40
    clock[0] += 0.2  # 3.1 s
    app.housekeeping()
    assert app.pipeline.buffers.waiting == 0
    assert runtime.clock.watermark("predictions") is not None
    assert app.metrics.events.labels(topic="predictions", model="credit-a")._value.get() == 40
    assert app.totals.predictions == 40
    app.close()


def test_the_total_waiting_over_models_stays_under_the_bound(tmp_path: Path) -> None:
    msgs = traffic()[:6000]
    clock = [msgs[0][1]]
    app = make_app(tmp_path, clock, {"max_waiting": 300, "max_wait": "59s"})
    most = 0
    for start in range(0, len(msgs), 50):
        app.handle([m for m, _ in msgs[start:start + 50]])
        most = max(most, app.pipeline.buffers.waiting)
        assert app.pipeline.buffers.waiting <= 300
    assert most > 150  # events did wait, and the bound, not a model's count (500), let them go
    app.run_waiting()  # as before /metrics is read
    assert app.pipeline.buffers.waiting == 0
    assert sum(app.metrics.events.labels(topic=t, model=s.model_id)._value.get()
               for t in ("predictions", "outcomes") for s in STREAMS) == len(msgs)
    app.close()


@pytest.mark.parametrize(("setting", "problem"), [
    ({"events": 0}, "coalesce.events: must be >= 1, got 0"),
    ({"max_waiting": 0}, "coalesce.max_waiting: must be >= 1, got 0"),
    ({"max_wait": "soon"}, "coalesce.max_wait: "),
    ({"max_wait": "2m"}, "coalesce.max_wait: must be >= 0 and shorter than event_time.idle_after (60s), got '2m'"),
    ({"max_wiat": "1s"}, "coalesce.max_wiat"),
])
def test_coalesce_settings_are_validated_with_their_yaml_path(setting: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [{"id": "m", "task": "binary", "reference": "r.parquet",
                                  "features": {"x": {"type": "numeric"}}}], "coalesce": setting}, check_files=False)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
