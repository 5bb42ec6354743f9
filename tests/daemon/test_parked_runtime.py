"""A model handed over (``state.backend: kafka``) keeps its detectors, parked: an event of it that comes
to this member anyway (keyed by another model, or by none) runs on fresh detectors, and the parked ones
stay exactly as they were handed over (they are used again if the model comes back unchanged)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.demo import ConsoleNotifier
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import FEATURES, Scenario, messages, write_reference


def _app(tmp_path: Path) -> App:
    write_reference(tmp_path / "reference.parquet", Scenario())
    config = parse_config({
        "state": {"path": str(tmp_path / "state" / "dw.db")},
        "http": {"enabled": False},
        "reports": {"directory": str(tmp_path / "reports")},
        "models": [{"id": "churn", "task": "binary", "reference": "reference.parquet",
                    "features": {f: {"type": t} for f, t in FEATURES.items()}, "monitoring": {"window_size": 500}}],
        "alerting": {"receivers": {"console": {"type": "log"}}, "route": {"receiver": "console"}},
    }, base_dir=str(tmp_path))
    console = ConsoleNotifier(tmp_path / "alerts.jsonl", io.StringIO())
    return App(config, dead_letters=None, notifiers={"console": console})  # type: ignore[arg-type]


def _polls(events: int, seed: int) -> list[list[Message]]:
    offsets = {"predictions": 0, "outcomes": 0}
    out: list[Message] = []
    for topic, key, value in messages(Scenario(model_id="churn", events=events, label_delay=100, seed=seed)):
        out.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
    return [out[i:i + 500] for i in range(0, len(out), 500)]


def test_an_event_of_a_parked_model_runs_on_fresh_detectors_and_leaves_the_parked_ones(tmp_path: Path) -> None:
    app = _app(tmp_path)
    try:
        for poll in _polls(1200, seed=1):
            app.handle(poll)
        app.run_waiting()
        handed_over = app.models["churn"].monitor
        state = json.dumps(handed_over.state(), sort_keys=True, default=str)
        app.pipeline.take_touched()
        app.pipeline.models["churn"] = parked = app.parked_runtime("churn", handed_over)
        assert parked.monitor is handed_over and parked.clock.now(app.clock()) is None  # no clock: no ticks
        app.housekeeping()
        assert not app.pipeline.touched("churn") and json.dumps(handed_over.state(), sort_keys=True, default=str) == state
        for poll in _polls(300, seed=2)[:1]:  # strays: this member does not own the model
            app.handle(poll)
        app.run_waiting()
        assert parked.monitor is not handed_over and parked.build_fresh is None
        assert app.pipeline.touched("churn")  # so the parked detectors are not used again
        assert json.dumps(handed_over.state(), sort_keys=True, default=str) == state
    finally:
        app.close()
