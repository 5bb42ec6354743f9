"""Twelve models in one daemon on the real broker: each keeps its own clock (issue 15).

Their streams share two topics of 4 partitions (keyed by model, so models share
partitions), cover different spans of event time (minutes to 3.5 days) and carry
drift in two models only. The daemon reads everything from the start, as after a
restart or with a new group. Each model's alerts must be those of the same daemon
monitoring that model alone (fed in production order, in-process), no traffic alert
may fire, and the drift alerts must reach the receiver (not be held by a false
traffic alert, the default inhibition).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.demo import DEMO_CONFIG
from driftwarden.daemon.kafka_io import KafkaDeadLetters, KafkaSource
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import Scenario, messages, write_reference
from tests.servers import RecordingServer, webhook_receiver

pytestmark = pytest.mark.kafka

EVENTS = 2500
# model -> Scenario arguments and traffic bucket (a slow model needs longer buckets to count anything)
MODELS: dict[str, dict[str, Any]] = {
    "days": {"rate": 0.008, "label_delay": 30, "bucket": 21600},  # 3.6 days of event time
    "hours": {"rate": 0.1, "label_delay": 100, "bucket": 1800},
    "hour": {"rate": 1.0, "bucket": 300},
    "shifted": {"rate": 20.0, "covariate_shift_at": 1000, "seed": 3},
    "concept": {"rate": 5.0, "concept_drift_at": 1200, "seed": 4},
    **{f"calm{i}": {"rate": 10.0 * (i + 1), "seed": 10 + i} for i in range(7)},
}


def _scenario(model_id: str) -> Scenario:
    args = {k: v for k, v in MODELS[model_id].items() if k != "bucket"}
    return Scenario(model_id=model_id, events=EVENTS, label_delay=args.pop("label_delay", 200), **args)


def _config(tmp_path: Path, ids: list[str], kafka: dict[str, Any], receiver_url: str) -> dict[str, Any]:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    template = data["models"][0]
    reference = tmp_path / "reference.parquet"
    if not reference.exists():
        write_reference(reference, Scenario())
    data["models"] = [
        {**template, "id": m, "reference": str(reference),
         "monitoring": {"window_size": 500, "traffic": {"bucket_seconds": MODELS[m].get("bucket", 300)}}}
        for m in ids
    ]
    data["kafka"] = kafka
    data["state"] = {"path": str(tmp_path / f"state-{uuid.uuid4().hex[:6]}" / "dw.db"), "checkpoint_interval": "1s"}
    data["http"] = {"enabled": False}
    data["reports"] = {"directory": str(tmp_path / "reports")}
    data["alerting"] = {
        "group_wait": "0s", "group_interval": "1s",
        "receivers": {"hook": {"type": "webhook", "url": receiver_url}},
        "route": {"receiver": "hook"},
    }
    return data


class Recorded:
    """Per model: every finding (but staleness, which states the age at the tick) and every
    alert that starts firing: (kind, detector, subject, starts_at)."""

    def __init__(self) -> None:
        self.findings: dict[str, list[tuple[Any, ...]]] = {}
        self.firing: dict[str, set[tuple[Any, ...]]] = {}


def _record(app: App) -> Recorded:
    recorded = Recorded()
    firing, seen = recorded.firing, recorded.findings
    ingest = app.alerts.ingest

    def recording(model_id: str, labels: Any, findings: Any, now: float) -> Any:
        seen.setdefault(model_id, []).extend(
            (f.kind, f.detector, f.subject, f.window_end, round(f.statistic, 9), f.degraded)
            for f in findings if f.detector != "staleness")
        changed = ingest(model_id, labels, findings, now)
        firing.setdefault(model_id, set()).update(
            (a.labels.get("kind"), a.labels.get("detector"), a.labels.get("subject"), a.starts_at)
            for a in changed if a.state == "firing")
        return changed

    app.alerts.ingest = recording  # type: ignore[method-assign]
    return recorded


def _alone(tmp_path: Path, model_id: str, receiver_url: str) -> Recorded:
    """The same daemon monitoring only ``model_id``, fed its messages in production order."""
    config = parse_config(_config(tmp_path, [model_id], {}, receiver_url), base_dir=str(tmp_path))
    app = App(config, dead_letters=None)  # type: ignore[arg-type]
    recorded = _record(app)
    offsets = {"predictions": 0, "outcomes": 0}
    poll: list[Message] = []
    try:
        for topic, key, value in messages(_scenario(model_id), chunk=1000):
            poll.append(Message(topic, 0, offsets[topic], key, value))
            offsets[topic] += 1
            if len(poll) == 1000:
                app.handle(poll)
                app.housekeeping()
                poll = []
        app.handle(poll)
        app.housekeeping()
    finally:
        app.close()
    return recorded


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    server = webhook_receiver()
    try:
        yield server
    finally:
        server.close()


def test_twelve_models_alerts_equal_each_model_alone(tmp_path: Path, kafka_bootstrap: str,
                                                      receiver: RecordingServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{suffix}" for k in ("predictions", "outcomes", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topics["predictions"], 4, 1), NewTopic(topics["outcomes"], 4, 1),
                             NewTopic(topics["dlq"], 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks=1)
    produced = {"predictions": 0, "outcomes": 0}
    try:
        for model_id in MODELS:  # model after model: the consumer reads them in whatever order it fetches
            for topic, key, value in messages(_scenario(model_id), chunk=1000):
                producer.send(topics[topic], key=key, value=value)
                produced[topic] += 1
        producer.flush()
    finally:
        producer.close()

    kafka = {"bootstrap_servers": kafka_bootstrap, "group_id": f"dw-{suffix}", "predictions_topic": topics["predictions"],
             "outcomes_topic": topics["outcomes"], "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms",
             "session_timeout": "6s", "max_poll_records": 2000}
    config = parse_config(_config(tmp_path, list(MODELS), kafka, receiver.url + "/hook"), base_dir=str(tmp_path))
    dead_letters = KafkaDeadLetters(config.kafka)
    app = App(config, dead_letters, producer=dead_letters.producer)
    recorded = _record(app)
    firing = recorded.firing
    source = KafkaSource(config.kafka, stored_offsets=app.checkpoint.offsets, on_revoke=app.save)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            app.run(source)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not errors and (
                app.totals.predictions < produced["predictions"] or app.totals.outcomes < produced["outcomes"]):
            time.sleep(0.2)
        time.sleep(2.0)  # housekeeping and delivery rounds after the last batch
    finally:
        app.stop_event.set()
        thread.join(timeout=60)
        dead_letters.close()
    assert not errors, errors
    assert not thread.is_alive()
    assert (app.totals.predictions, app.totals.outcomes) == (produced["predictions"], produced["outcomes"])

    for model_id in MODELS:
        alone = _alone(tmp_path, model_id, receiver.url + "/hook")
        assert sorted(recorded.findings[model_id]) == sorted(alone.findings[model_id]), model_id
        assert firing.get(model_id, set()) == alone.firing.get(model_id, set()), model_id
    kinds = {(m, a[0]) for m, alerts in firing.items() for a in alerts}
    assert not [k for k in kinds if k[1] == "traffic"], kinds  # no staleness, no rate alert: there is no traffic fault
    assert ("shifted", "data_drift") in kinds
    assert ("concept", "performance") in kinds or ("concept", "concept_drift") in kinds
    assert not [k for k in kinds if k[0] not in ("shifted", "concept") and k[1].endswith("drift")], kinds

    notified = [alert for r in receiver.requests for alert in msgspec.json.decode(r.body).get("alerts", [])]
    drift_notified = {(a["labels"]["model"], a["labels"]["kind"]) for a in notified if a["state"] == "firing"}
    assert ("shifted", "data_drift") in drift_notified, drift_notified  # not held by a false traffic alert


def test_catch_up_over_days_raises_no_traffic_alert(tmp_path: Path, kafka_bootstrap: str,
                                                    receiver: RecordingServer) -> None:
    """A new group reads 2.3 days of both topics from the start; outcomes come 3.6 h of event time
    after their predictions (so the outcomes partition, read faster, runs hours ahead). No traffic
    fault is in the stream, so no traffic alert may fire (issue 10, item 4), with default traffic settings."""
    suffix = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{suffix}" for k in ("predictions", "outcomes", "dlq")}
    scenario = Scenario(model_id="longrun", events=20_000, rate=0.1, label_delay=1300, seed=21)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks=1)
    produced = {"predictions": 0, "outcomes": 0}
    try:
        for topic, key, value in messages(scenario, chunk=5000):
            producer.send(topics[topic], key=key, value=value)
            produced[topic] += 1
        producer.flush()
    finally:
        producer.close()
    data = _config(tmp_path, [], {"bootstrap_servers": kafka_bootstrap, "group_id": f"dw-{suffix}",
                                  "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                                  "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms", "session_timeout": "6s"},
                   receiver.url + "/hook")
    template = yaml.safe_load(DEMO_CONFIG.read_text())["models"][0]
    data["models"] = [{**template, "id": "longrun", "reference": str(tmp_path / "reference.parquet"),
                       "monitoring": {"window_size": 2000}}]
    write_reference(tmp_path / "reference.parquet", Scenario())
    config = parse_config(data, base_dir=str(tmp_path))
    dead_letters = KafkaDeadLetters(config.kafka)
    app = App(config, dead_letters, producer=dead_letters.producer)
    recorded = _record(app)
    source = KafkaSource(config.kafka, stored_offsets=app.checkpoint.offsets, on_revoke=app.save)
    thread = threading.Thread(target=app.run, args=(source,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
                app.totals.predictions < produced["predictions"] or app.totals.outcomes < produced["outcomes"]):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        app.stop_event.set()
        thread.join(timeout=60)
        dead_letters.close()
    assert (app.totals.predictions, app.totals.outcomes) == (produced["predictions"], produced["outcomes"])
    traffic = [f for f in recorded.findings["longrun"] if f[0] == "traffic"]
    assert len(traffic) > 600  # the rate of every 5-minute bucket of the 2.3 days was judged
    assert not [f for f in traffic if f[-1]], [f for f in traffic if f[-1]][:5]
    assert not [a for a in recorded.firing.get("longrun", set()) if a[0] == "traffic"]
    assert receiver.requests == []  # nothing to tell anyone
