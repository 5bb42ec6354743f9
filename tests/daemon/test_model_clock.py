"""Every model keeps its own clock: findings and alerts never depend on other models or on interleaving.

The in-process form of issue 15's acceptance test (the broker form is in
tests/test_kafka_models.py): models whose streams cover different spans of event
time, drift in some of them, fed alone and together in random interleavings of
their topics; each model's findings and alert transitions are the same.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.app import App
from driftwarden.daemon.clock import ModelClock
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.demo import DEMO_CONFIG, ConsoleNotifier
from driftwarden.daemon.events import OutcomeEvent, PredictionEvent
from driftwarden.daemon.join import OutcomeJoin
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import Scenario, messages, write_reference

# ------------------------------------------------------------------ the clock


def test_min_over_sources_then_wall_time() -> None:
    c = ModelClock(idle_after=60, future_tolerance=3600)
    c.observe("predictions", np.array([1000.0]), wall=50_000.0)
    c.observe("outcomes", np.array([1000.0 + 3.6 * 3600]), wall=50_000.0)  # outcomes read 3.6 h ahead
    assert c.now(50_000.0) == 1000.0
    assert c.now(50_030.0) == 1030.0  # past the last arrival the wall clock runs


def test_a_source_not_heard_yet_holds_the_clock_for_a_while() -> None:
    """Read from the start, a model's outcomes may come first: the clock must not run ahead on them."""
    c = ModelClock(idle_after=60, future_tolerance=3600)
    c.observe("outcomes", np.array([90_000.0]), wall=100_000.0)
    assert c.now(100_010.0) is None
    c.observe("predictions", np.array([50_000.0]), wall=100_020.0)
    assert c.now(100_020.0) == 50_000.0
    lone = ModelClock(idle_after=60, future_tolerance=3600)  # a model without labels: after idle_after, alone
    lone.observe("predictions", np.array([500.0]), wall=1000.0)
    assert lone.now(1030.0) is None and lone.now(1061.0) == 561.0


def test_a_source_silent_long_before_the_other_does_not_hold_the_clock() -> None:
    c = ModelClock(idle_after=60, future_tolerance=3600)
    c.observe("outcomes", np.array([100.0]), wall=10_000.0)
    c.observe("predictions", np.array([5000.0]), wall=10_500.0)
    assert c.now(10_500.0) == 5000.0


def test_future_events_never_move_the_clock_and_take_the_watermark() -> None:
    c = ModelClock(idle_after=60, future_tolerance=3600)
    used = c.observe("predictions", np.array([100.0, 253402300799.0, 110.0]), wall=1000.0)
    assert used.tolist() == [100.0, 110.0, 110.0] and c.future == 1
    c.observe("outcomes", np.array([105.0]), wall=1000.0)
    assert c.now(1000.0) == 105.0
    assert ModelClock.count_future(np.array([1.0, 9e9]), np.array([1.0, 1.0])) == 1


def test_the_clock_never_runs_backwards_and_restores_its_watermarks() -> None:
    c = ModelClock(idle_after=60, future_tolerance=3600)
    c.observe("predictions", np.array([1000.0]), wall=0.0)
    assert c.now(100.0) == 1100.0
    c.observe("outcomes", np.array([900.0]), wall=100.0)  # a lagging source joins later
    assert c.now(100.0) == 1100.0
    restored = ModelClock(idle_after=60, future_tolerance=3600)
    restored.load_state(c.state(), wall=7.0)
    assert restored.watermark("predictions") == 1000.0 and restored.watermark("outcomes") == 900.0


def test_silence_of_a_source() -> None:
    c = ModelClock(idle_after=60, future_tolerance=3600)
    assert c.silent("predictions", 0.0)
    c.observe("predictions", np.array([1.0]), wall=10.0)
    assert not c.silent("predictions", 70.0) and c.silent("predictions", 70.1)


# ------------------------------------------------------------------ the join's order


def _p(pid: int, ts: float) -> PredictionEvent:
    return PredictionEvent("m", str(pid), ts, {"x": 1.0}, 1)


def _o(pid: int, ts: float) -> OutcomeEvent:
    return OutcomeEvent("m", str(pid), ts, 0)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pairs_come_in_outcome_order_however_the_topics_interleave(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 60))
    delay = data.draw(st.integers(0, 10))
    lost = data.draw(st.sets(st.integers(0, n - 1), max_size=n // 3))  # predictions that never arrive
    predictions = [_p(i, float(i)) for i in range(n) if i not in lost]
    outcomes = sorted((_o(i, float(i + delay)) for i in range(n)), key=lambda o: (o.timestamp, int(o.prediction_id)))
    # one poll after another, each taking a prefix of what is left of each topic
    join = OutcomeJoin(ttl=1e9, max_pending=10_000)
    got: list[str] = []
    watermark: float | None = None
    pi = oi = 0
    while pi < len(predictions) or oi < len(outcomes):
        take_p = data.draw(st.integers(0, len(predictions) - pi))
        take_o = data.draw(st.integers(0 if take_p else 1, len(outcomes) - oi)) if oi < len(outcomes) else 0
        if take_p == 0 and take_o == 0:
            take_p = 1
        polled = predictions[pi : pi + take_p]
        pi += take_p
        if polled:
            watermark = max(watermark or -1.0, max(float(p.timestamp) for p in polled))  # type: ignore[arg-type]
        got += [o.prediction_id for _, o in join.add_predictions("m", polled, watermark)]
        got += [o.prediction_id for _, o in join.add_outcomes("m", outcomes[oi : oi + take_o], watermark)]
        oi += take_o
    got += [o.prediction_id for _, o in join.release("m", force=True)]
    expected = [o.prediction_id for o in outcomes if int(o.prediction_id) not in lost]
    assert got == expected


# ------------------------------------------------------------------ whole models, alone and together

MODELS: dict[str, dict[str, Any]] = {
    # one model's stream spans 3.5 days of event time, the others minutes
    "slow": {"scenario": {"rate": 0.01, "label_delay": 40}, "traffic": {"bucket_seconds": 21600}},
    "shifted": {"scenario": {"rate": 20.0, "covariate_shift_at": 1200, "seed": 3}},
    "concept": {"scenario": {"rate": 5.0, "concept_drift_at": 1500, "seed": 4}},
    "calm": {"scenario": {"rate": 50.0, "seed": 5}},
}
EVENTS = 3000


def _config(tmp_path: Path, ids: list[str]) -> dict[str, Any]:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    template = data["models"][0]
    write_reference(tmp_path / "reference.parquet", Scenario())
    data["models"] = []
    for model_id in ids:
        model = {**template, "id": model_id, "reference": str(tmp_path / "reference.parquet")}
        model["monitoring"] = {"window_size": 500}
        if "traffic" in MODELS[model_id]:
            model["monitoring"]["traffic"] = MODELS[model_id]["traffic"]
        data["models"].append(model)
    data["state"] = {"path": str(tmp_path / f"state-{'-'.join(ids)}" / "dw.db"), "checkpoint_interval": "1h"}
    data["reports"] = {"directory": str(tmp_path / "reports")}
    return data


def _streams() -> dict[tuple[str, str], list[tuple[bytes, bytes]]]:
    """Per (model, topic): the messages in production order (one partition each)."""
    out: dict[tuple[str, str], list[tuple[bytes, bytes]]] = {}
    for model_id, spec in MODELS.items():
        scenario = Scenario(model_id=model_id, events=EVENTS, **spec["scenario"])
        for topic, key, value in messages(scenario, chunk=1000):
            out.setdefault((model_id, topic), []).append((key, value))
    return out


class Recorder:
    """Per model: every finding of the batches, and every alert that started firing."""

    def __init__(self, app: App) -> None:
        self.findings: dict[str, list[tuple[Any, ...]]] = {}
        self.firing: dict[str, list[tuple[Any, ...]]] = {}
        ingest = app.alerts.ingest

        def recording(model_id: str, labels: Any, findings: Any, now: float) -> Any:
            changed = ingest(model_id, labels, findings, now)
            self.findings.setdefault(model_id, []).extend(
                (f.kind, f.detector, f.subject, f.window_end, round(f.statistic, 9), f.degraded)
                for f in findings if f.detector != "staleness")  # staleness states the age at the tick
            self.firing.setdefault(model_id, []).extend(
                (a.labels.get("kind"), a.labels.get("detector"), a.labels.get("subject"), a.starts_at)
                for a in changed if a.state == "firing")
            return changed

        app.alerts.ingest = recording  # type: ignore[method-assign]


def _run(tmp_path: Path, ids: list[str], polls: list[list[Message]]) -> Recorder:
    config = parse_config(_config(tmp_path, ids), base_dir=str(tmp_path))
    console = ConsoleNotifier(tmp_path / "alerts.jsonl", __import__("io").StringIO())
    app = App(config, dead_letters=None, notifiers=dict.fromkeys(config.alerting.receiver_names(), console))  # type: ignore[arg-type]
    recorder = Recorder(app)
    try:
        for poll in polls:
            app.handle(poll)
            app.housekeeping()
    finally:
        app.close()
    return recorder


def _interleave(streams: dict[tuple[str, str], list[tuple[bytes, bytes]]], ids: list[str],
                rng: random.Random | None) -> list[list[Message]]:
    """Polls over the streams of ``ids``: in production order (``rng`` None), or each poll a random
    run of each topic-partition, as a consumer fetching partitions independently would return them."""
    cursors = {k: 0 for k in streams if k[0] in ids}
    partition = {model_id: i for i, model_id in enumerate(MODELS)}
    polls: list[list[Message]] = []
    if rng is None:
        for model_id in ids:  # production order of one model: its messages.messages() sequence
            scenario = Scenario(model_id=model_id, events=EVENTS, **MODELS[model_id]["scenario"])
            offsets = {"predictions": 0, "outcomes": 0}
            poll: list[Message] = []
            for topic, key, value in messages(scenario, chunk=1000):
                poll.append(Message(topic, partition[model_id], offsets[topic], key, value))
                offsets[topic] += 1
                if len(poll) == 500:
                    polls.append(poll)
                    poll = []
            polls.append(poll)
        return polls
    while any(cursors[k] < len(streams[k]) for k in cursors):
        poll = []
        for k in rng.sample(sorted(cursors), len(cursors)):
            take = rng.choice([0, 0, 50, 300, 1200])
            start = cursors[k]
            for offset in range(start, min(start + take, len(streams[k]))):
                key, value = streams[k][offset]
                poll.append(Message(k[1], partition[k[0]], offset, key, value))
            cursors[k] = min(start + take, len(streams[k]))
        if poll:
            polls.append(poll)
    return polls


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recorder]:
    streams = _streams()
    return {m: _run(tmp_path_factory.mktemp(m), [m], _interleave(streams, [m], None)) for m in MODELS}


@pytest.mark.parametrize("seed", [1, 2])
def test_each_model_alone_equals_all_models_together(tmp_path: Path, alone: dict[str, Recorder], seed: int) -> None:
    ids = list(MODELS)
    together = _run(tmp_path, ids, _interleave(_streams(), ids, random.Random(seed)))
    for model_id in ids:
        # the same evaluations and the same alerts; which poll closes a prediction window or an outcome
        # window first depends on the interleaving, so the two sides' findings are compared as sets
        assert sorted(together.findings[model_id]) == sorted(alone[model_id].findings[model_id]), model_id
        assert sorted(together.firing.get(model_id, [])) == sorted(alone[model_id].firing.get(model_id, [])), model_id
    fired = {m: {(k, s) for k, _, s, _ in together.firing.get(m, [])} for m in ids}
    assert not any(kind == "traffic" for m in ids for kind, _ in fired[m])  # no traffic fault, no traffic alert
    assert {("data_drift", "age"), ("data_drift", "monthly_spend")} <= fired["shifted"]
    assert not any(kind.endswith("drift") for kind, _ in fired["calm"] | fired["slow"])
