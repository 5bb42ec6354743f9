"""End-to-end throughput of `driftwarden run`'s loop through a real Kafka broker.

    python bench/kafka_run.py [--events 100000] [--repeats 3]

Starts the test broker (or uses DRIFTWARDEN_TEST_BOOTSTRAP), produces the synthetic churn
traffic (predictions + outcomes) once, then consumes it from the beginning ``--repeats``
times with a fresh consumer group and state each time, through the real App and KafkaSource.
Prints messages/s per run, the median, and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from driftwarden.daemon.app import App, prepare_loop  # noqa: E402
from driftwarden.daemon.cli import single_threaded_numerics  # noqa: E402
from driftwarden.daemon.config import parse_config  # noqa: E402
from driftwarden.daemon.kafka_io import KafkaDeadLetters, KafkaSource  # noqa: E402
from driftwarden.daemon.simulate import FEATURES, Scenario, write_reference  # noqa: E402
from driftwarden.daemon.simulate_kafka import produce_scenario  # noqa: E402
from tests.broker.kafka import KafkaBroker  # noqa: E402


def consume_only(bootstrap: str, topics: dict[str, str], workdir: Path, total: int) -> float:
    """The floor: kafka-python alone, with the daemon's consumer settings, no processing."""
    settings = parse_config({
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-raw-{uuid.uuid4().hex[:8]}",
                  "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                  "poll_timeout": "200ms"},
        "models": [{"id": "churn", "task": "binary", "reference": "reference.parquet",
                    "features": {f: {"type": t} for f, t in FEATURES.items()}}],
    }, base_dir=str(workdir)).kafka
    source = KafkaSource(settings, stored_offsets=dict, on_revoke=lambda: None)
    started, seen = None, 0
    try:
        while seen < total:
            messages = source.poll()
            if messages and started is None:
                started = time.perf_counter()
            seen += len(messages)
        assert started is not None
        return seen / (time.perf_counter() - started)
    finally:
        source.close()


def consume_once(bootstrap: str, topics: dict[str, str], workdir: Path, total: int) -> float:
    config = parse_config({
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{uuid.uuid4().hex[:8]}",
                  "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                  "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms"},
        "state": {"path": str(workdir / f"state-{uuid.uuid4().hex[:8]}" / "dw.db"), "checkpoint_interval": "5s"},
        "http": {"enabled": False},
        "models": [{"id": "churn", "task": "binary", "reference": "reference.parquet",
                    "features": {f: {"type": t} for f, t in FEATURES.items()}}],
    }, base_dir=str(workdir))
    dead = KafkaDeadLetters(config.kafka)
    app = App(config, dead, producer=dead.producer)
    source = KafkaSource(config.kafka, stored_offsets=app.checkpoint.offsets, on_revoke=app.save)
    prepare_loop()  # as App.run does
    started = None
    seen = 0
    try:
        while seen < total:
            messages = source.poll()
            if messages and started is None:
                started = time.perf_counter()
            if messages:
                app.handle(messages)
                seen += len(messages)
            app.housekeeping(source)
        app.save(source)
        assert started is not None
        return seen / (time.perf_counter() - started)
    finally:
        source.close()
        app.close()
        dead.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    broker = None
    bootstrap = os.environ.get("DRIFTWARDEN_TEST_BOOTSTRAP")
    if not bootstrap:
        broker = KafkaBroker()
        broker.start()
        bootstrap = broker.bootstrap
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            scenario = Scenario(events=args.events, label_delay=500)
            write_reference(work / "reference.parquet", scenario)
            topics = {k: f"bench-{k}-{uuid.uuid4().hex[:6]}" for k in ("predictions", "outcomes", "dlq")}
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()])
            admin.close()
            t0 = time.perf_counter()
            total = produce_scenario(bootstrap, scenario, topics["predictions"], topics["outcomes"])
            print(f"produced {total:,} messages ({args.events:,} predictions + outcomes) "
                  f"in {time.perf_counter() - t0:.1f}s")
            raw = [consume_only(bootstrap, topics, work, total) for _ in range(args.repeats)]
            print(f"consumer alone (kafka-python, the daemon's settings): median {statistics.median(raw):,.0f} messages/s")
            rates = []
            for i in range(args.repeats):
                rate = consume_once(bootstrap, topics, work, total)
                rates.append(rate)
                print(f"run {i + 1}: {rate:,.0f} messages/s through decode, join, detectors, alerts, checkpoints")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"median {statistics.median(rates):,.0f} messages/s; peak RSS {peak:,.0f} MiB")
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    single_threaded_numerics()  # as `driftwarden run` does
    raise SystemExit(main())
