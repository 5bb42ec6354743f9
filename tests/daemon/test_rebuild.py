"""Retrained model shows up -> its labelled traffic becomes the reference -> drift alerts stop."""

from __future__ import annotations

from pathlib import Path

import yaml

from driftwarden.daemon.app import App
from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.reference import load_reference
from driftwarden.daemon.simulate import START, Scenario, messages


def feed(app: App, scenario: Scenario, offsets: dict[str, int]) -> list[str]:
    """Replay a scenario through the app; the degraded drift subjects seen per window."""
    batch: list[Message] = []
    drifted: list[str] = []
    for topic, key, value in messages(scenario, chunk=2000):
        batch.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
        if len(batch) == 2000:
            result = app.handle(batch)
            app.housekeeping()
            drifted += [f.subject for fs in result.findings.values() for f in fs
                        if f.degraded and f.kind == "data_drift"]
            batch = []
    if batch:
        app.handle(batch)
        app.housekeeping()
    return drifted


def test_new_version_rebuilds_the_reference_and_resolves_old_alerts(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["models"][0]["rebuild_reference"] = {"on_new_version": True, "rows": 3000}
    data["alerting"]["for_windows"] = 1
    offsets = {"predictions": 0, "outcomes": 0}
    pause = [0.0]
    # the replay's wall clock: as many seconds past the start as the predictions fed took in event time
    app = demo_app(tmp_path, data, clock=lambda: START + offsets["predictions"] / Scenario().rate + pause[0])

    # version 1 meets a shifted world: age and monthly_spend drift, alerts fire
    v1 = feed(app, Scenario(events=8000, covariate_shift_at=0, label_delay=200, seed=11), offsets)
    assert {"age", "monthly_spend"} <= set(v1)
    firing = [a for a in app.alerts.lifecycle.alerts.values() if a.state == "firing"]
    assert any(a.labels.get("subject") == "age" for a in firing)
    pause[0] += 600  # ten quiet minutes before the next version: group_interval runs out, the group is notified
    app.housekeeping()

    # version 2, retrained on the shifted world, takes over: its labelled events become the reference
    v2 = Scenario(events=6000, covariate_shift_at=0, label_delay=200, seed=12, model_version="2.0.0")
    feed(app, v2, offsets)
    runtime = app.models["churn"]
    assert runtime.reference_path is not None and Path(runtime.reference_path).is_file()
    reference = load_reference(runtime.reference_path, runtime.spec)
    assert len(reference) == 3000 and set(reference.model_version) == {"2.0.0"}
    assert float(reference.features["age"].mean()) > 50  # the shifted world (the original mean is 42)
    # against the new reference, the same world is no drift
    later = Scenario(events=8000, covariate_shift_at=0, label_delay=200, seed=13, model_version="2.0.0")
    assert feed(app, later, offsets) == []
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert any('"1.0.0"' in line and '"data_drift"' in line for line in lines)  # version 1 was alerted
    notified = [line for line in lines if '"2.0.0"' in line and '"data_drift"' in line and '"firing"' in line]
    assert notified == []  # drift was held while the new reference was collected
    still_firing = [a for a in app.alerts.lifecycle.alerts.values()
                    if a.state == "firing" and a.labels.get("kind") == "data_drift"]
    assert still_firing == []

    # the rebuilt reference survives a restart
    app.save()
    app.close()
    restarted = demo_app(tmp_path, data)  # the same config and state file
    assert restarted.models["churn"].reference_path == runtime.reference_path
    restarted.close()
