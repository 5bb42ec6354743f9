"""End to end through a real Kafka broker: events -> daemon -> Slack API stand-in and CI webhook."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.alerts.webhook import verify_signature
from driftwarden.daemon.simulate import Scenario, write_reference
from driftwarden.daemon.simulate_kafka import produce_scenario
from tests.app_thread import AppThread
from tests.servers import RecordingServer, slack_api, webhook_receiver

pytestmark = pytest.mark.kafka
CI_SECRET = "test-ci-secret"


@pytest.fixture
def slack() -> Iterator[RecordingServer]:
    server = slack_api()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ci() -> Iterator[RecordingServer]:
    server = webhook_receiver()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def topics(kafka_bootstrap: str) -> dict[str, str]:
    """Fresh topic names per test, created up front (1 partition each)."""
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{suffix}" for k in ("predictions", "outcomes", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(n, 1, 1) for n in names.values()])
    finally:
        admin.close()
    return names


def write_config(
    tmp_path: Path, bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer,
    client: str = "kafka-python",
) -> Path:
    write_reference(tmp_path / "reference.parquet", Scenario())
    config = {
        "kafka": {
            "client": client,
            "bootstrap_servers": bootstrap,
            "group_id": f"driftwarden-{topics['predictions']}",
            "predictions_topic": topics["predictions"],
            "outcomes_topic": topics["outcomes"],
            "dead_letter_topic": topics["dlq"],
            "poll_timeout": "200ms",
            "session_timeout": "6s",
        },
        "state": {"path": str(tmp_path / "state" / "driftwarden.db"), "checkpoint_interval": "1s"},
        "http": {"enabled": False},
        "reports": {"directory": str(tmp_path / "reports")},
        "models": [
            {
                "id": "churn",
                "task": "binary",
                "reference": "reference.parquet",
                "labels": {"team": "growth"},
                "features": {
                    "age": {"type": "numeric"},
                    "tenure_days": {"type": "numeric"},
                    "monthly_spend": {"type": "numeric"},
                    "support_tickets": {"type": "numeric"},
                    "plan": {"type": "categorical"},
                    "country": {"type": "categorical"},
                },
                "monitoring": {"window_size": 1000},
            }
        ],
        "alerting": {
            "group_wait": "0s",
            "group_interval": "1s",
            "for_windows": 1,
            "receivers": {
                "oncall": {"type": "slack", "channel": "C0DRIFT", "base_url": slack.url + "/api/"},
                "ci": {"type": "webhook", "url": ci.url + "/retrain", "secret_env": "DRIFTWARDEN_CI_SECRET"},
            },
            "route": {"receiver": "oncall"},
            "retraining": {"churn": {"receiver": "ci", "min_new_labels": 0}},
        },
    }
    path = tmp_path / "driftwarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("DRIFTWARDEN_CI_SECRET", CI_SECRET)


class DaemonThread(AppThread):
    """The real App + KafkaSource in a thread; stopped like SIGTERM does (stop_event)."""

    def wait_consumed(self, predictions: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.app.totals.predictions < predictions:
            if self.error is not None:
                raise self.error
            time.sleep(0.1)
        assert self.app.totals.predictions >= predictions, self.app.totals


def test_drifted_model_alerts_slack_and_requests_retraining(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer,
    app_threads: list[DaemonThread], kafka_client: str,
) -> None:
    config = write_config(tmp_path, kafka_bootstrap, topics, slack, ci, kafka_client)
    scenario = Scenario(events=8000, covariate_shift_at=3000, label_delay=200)
    produce_scenario(kafka_bootstrap, scenario, topics["predictions"], topics["outcomes"])
    daemon = DaemonThread(config)
    app_threads.append(daemon)
    def mentions_shifted_feature(r: Any) -> bool:
        if not r.path.endswith("chat.postMessage"):
            return False
        blocks = json.dumps(r.form()["blocks"])
        return "`age`" in blocks or "`monthly_spend`" in blocks

    posts = slack.wait_for(lambda rs: any(mentions_shifted_feature(r) for r in rs), timeout=120)
    requests = ci.wait_for(lambda rs: len(rs) >= 1, timeout=60)
    # the root-cause report follows in the thread, linked where the daemon serves it
    with_report = slack.wait_for(lambda rs: any(b"/reports/churn/" in r.body for r in rs), timeout=60)
    daemon.stop()
    report_post = next(r for r in with_report if b"/reports/churn/" in r.body)
    link = re.search(r"http://127\.0\.0\.1:9108/reports/(churn/[^\"|>]+/report\.html)", report_post.body.decode())
    assert link, report_post.body[:2000]
    assert (tmp_path / "reports" / link.group(1)).is_file()

    post = next(r for r in posts if mentions_shifted_feature(r))
    assert post.headers["authorization"] == "Bearer xoxb-test-token"
    message = post.form()
    assert message["channel"] == "C0DRIFT"
    blocks = json.loads(message["blocks"]) if isinstance(message["blocks"], str) else message["blocks"]
    text = json.dumps(blocks)
    assert "churn" in text and "data_drift" in text

    retrain = requests[0]
    assert retrain.path == "/retrain"
    assert verify_signature(
        CI_SECRET,
        retrain.headers["x-driftwarden-timestamp"],
        retrain.body,
        retrain.headers["x-driftwarden-signature"],
        now=time.time(),
    )
    body = retrain.json()
    assert body["model"] == "churn" and body["idempotency_key"] and body["evidence"]


def test_model_without_drift_stays_quiet(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer,
    app_threads: list[DaemonThread], kafka_client: str,
) -> None:
    config = write_config(tmp_path, kafka_bootstrap, topics, slack, ci, kafka_client)
    produce_scenario(kafka_bootstrap, Scenario(events=6000, label_delay=200), topics["predictions"], topics["outcomes"])
    daemon = DaemonThread(config)
    app_threads.append(daemon)
    daemon.wait_consumed(6000)
    time.sleep(2)  # let group_wait (0s) / delivery pass: a wrongly queued alert would be sent by now
    daemon.stop()
    assert daemon.app.totals.outcomes > 5000
    lag = daemon.app.metrics.registry.get_sample_value(
        "driftwarden_consumer_lag", {"topic": topics["predictions"], "partition": "0"})
    assert lag == 0  # measured against the brokers' end offsets once everything was read
    assert slack.requests == []
    assert ci.requests == []


def test_malformed_events_go_to_dead_letter_topic_and_good_ones_flow(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer,
    app_threads: list[DaemonThread], kafka_client: str,
) -> None:
    config = write_config(tmp_path, kafka_bootstrap, topics, slack, ci, kafka_client)
    scenario = Scenario(events=3000, malformed_every=100, label_delay=100)
    produce_scenario(kafka_bootstrap, scenario, topics["predictions"], topics["outcomes"])
    daemon = DaemonThread(config)
    app_threads.append(daemon)
    daemon.wait_consumed(3000 - 30)
    daemon.stop()
    assert daemon.app.totals.dead_lettered == 30

    consumer = KafkaConsumer(
        topics["dlq"], bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=5000, group_id=None,
    )
    try:
        dead = list(consumer)
    finally:
        consumer.close()
    assert len(dead) == 30
    headers = dict(dead[0].headers)
    assert headers["driftwarden.topic"].decode() == topics["predictions"]
    assert headers["driftwarden.reason"].decode() == "contract violation: Expected `str`, got `int` - at `$.prediction_id`"
    assert dead[0].value.startswith(b'{"model_id": "churn", "prediction_id": 17')
    assert int(headers["driftwarden.offset"]) == 99


def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}}") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_sigterm_commits_and_a_restarted_daemon_resumes_from_committed_offsets(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer, kafka_client: str,
) -> None:
    config_path = write_config(tmp_path, kafka_bootstrap, topics, slack, ci, kafka_client)
    config = yaml.safe_load(config_path.read_text())
    group = config["kafka"]["group_id"]
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token", "DRIFTWARDEN_CI_SECRET": CI_SECRET}

    def run_until(predictions: int) -> tuple[int, str]:
        from tests.broker.kafka import free_port

        port = free_port()
        config["http"] = {"enabled": True, "host": "127.0.0.1", "port": port}
        config_path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen([sys.executable, "-m", "driftwarden.daemon.cli", "run", "-c", str(config_path)], env=env)
        try:
            import urllib.request

            deadline = time.monotonic() + 90
            text = ""
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                        text = resp.read().decode()
                except OSError:
                    text = ""
                if _metric(text, "driftwarden_events_total", model="churn", topic="predictions") >= predictions:
                    break
                assert proc.poll() is None, "daemon exited early"
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=60), text
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    first = Scenario(events=2000, label_delay=100, seed=1)
    produce_scenario(kafka_bootstrap, first, topics["predictions"], topics["outcomes"])
    code, text = run_until(2000)
    assert code == 0
    assert _metric(text, "driftwarden_events_total", model="churn", topic="predictions") == 2000
    committed = _committed(kafka_bootstrap, group, topics["predictions"])
    assert committed == 2000

    second = Scenario(events=1500, label_delay=100, seed=2)
    produce_scenario(kafka_bootstrap, second, topics["predictions"], topics["outcomes"])
    code, text = run_until(1500)
    assert code == 0
    # the restarted daemon saw only the new events: nothing lost, nothing counted twice
    assert _metric(text, "driftwarden_events_total", model="churn", topic="predictions") == 1500
    assert _committed(kafka_bootstrap, group, topics["predictions"]) == 3500


def test_alerts_topic_receiver_publishes_alert_events(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], slack: RecordingServer, ci: RecordingServer,
    app_threads: list[DaemonThread], kafka_client: str,
) -> None:
    config_path = write_config(tmp_path, kafka_bootstrap, topics, slack, ci, kafka_client)
    config = yaml.safe_load(config_path.read_text())
    alerts_topic = topics["dlq"].replace("dlq", "alerts")
    config["alerting"]["receivers"]["audit"] = {"type": "kafka", "topic": alerts_topic}
    config["alerting"]["route"] = {"receiver": "audit"}
    config["alerting"]["retraining"] = {}
    config_path.write_text(yaml.safe_dump(config))
    produce_scenario(kafka_bootstrap, Scenario(events=6000, covariate_shift_at=2000, label_delay=200),
                     topics["predictions"], topics["outcomes"])
    daemon = DaemonThread(config_path)
    app_threads.append(daemon)
    consumer = KafkaConsumer(alerts_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=1000)
    records: list[Any] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(
            "age" in {a["labels"].get("subject") for a in json.loads(r.value)["alerts"]} for r in records
        ):
            records.extend(consumer)
    finally:
        consumer.close()
        daemon.stop()
    assert records, "no alert event on the alerts topic"
    event = json.loads(records[0].value)
    assert event["version"] == 1 and event["group_labels"] == {"model": "churn"}
    assert records[0].key and event["idempotency_key"]
    assert slack.requests == []  # routed to the topic only


def test_two_instances_in_one_group_share_the_models_by_partition(
    tmp_path: Path, kafka_bootstrap: str, slack: RecordingServer, ci: RecordingServer, app_threads: list[DaemonThread],
    kafka_client: str,
) -> None:
    """Partitions are keyed by model: each instance owns the models of its partitions."""
    suffix = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{suffix}" for k in ("predictions", "outcomes", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topics["predictions"], 2, 1), NewTopic(topics["outcomes"], 2, 1),
                             NewTopic(topics["dlq"], 1, 1)])
    finally:
        admin.close()
    models = ("churn", "churn-eu")  # murmur2 puts them in partitions 1 and 0 of 2
    instances = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        path = write_config(tmp_path / name, kafka_bootstrap, topics, slack, ci, kafka_client)
        config = yaml.safe_load(path.read_text())
        second = dict(config["models"][0], id=models[1])
        config["models"] = [config["models"][0], second]
        path.write_text(yaml.safe_dump(config))
        instances.append(DaemonThread(path))
        app_threads.append(instances[-1])

    def assigned(d: DaemonThread) -> int:
        return len(d.source.assigned())

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [assigned(d) for d in instances] != [2, 2]:
        time.sleep(0.2)
    assert [assigned(d) for d in instances] == [2, 2], "the group did not split the partitions"

    for seed, model in enumerate(models):
        produce_scenario(kafka_bootstrap, Scenario(model_id=model, events=1500, label_delay=100, seed=seed),
                         topics["predictions"], topics["outcomes"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(d.app.totals.predictions for d in instances) < 3000:
        time.sleep(0.2)
    for d in instances:
        d.stop()
    seen = [{m: d.app.metrics.registry.get_sample_value(
        "driftwarden_events_total", {"topic": "predictions", "model": m}) or 0.0 for m in models} for d in instances]
    assert sorted(tuple(sorted(s.values())) for s in seen) == [(0.0, 1500.0), (0.0, 1500.0)], seen
    assert {m for s in seen for m, n in s.items() if n} == set(models)  # each model owned by exactly one instance
