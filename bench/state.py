"""What state that follows its partition costs (``state.backend: kafka``): changelog bytes, restore time.

    python bench/state.py [--models 8] [--events 4000] [--partitions 4] [--repeats 3]
                          [--checkpoint-interval 5s]

Starts the test broker (or uses DRIFTWARDEN_TEST_BOOTSTRAP), produces ``--events`` predictions
and their outcomes for each of ``--models`` models (keyed by model, ``--partitions`` partitions),
then, per repeat, with a fresh consumer group each time:

* **sqlite** (the baseline): `driftwarden run`'s loop (``App.run``) with ``state.backend: sqlite``
  reads everything; messages/s from the loop's start (group join and assignment included) to the
  last message processed;
* **kafka**: the same with ``state.backend: kafka``; messages/s, then the changelog topic is read
  back: records and bytes (JSON values as written, before the producer's zstd compression; and
  the partitions' size on the broker's disk when the broker is ours), per model record and per
  1,000 events read;
* **restore**: a second instance with a fresh state directory (no shared disk) joins the same
  group after the first one left, and restores every model from the changelog before its first
  batch (``KafkaState.restore``: read the changelog partitions to their end, load each model,
  claim a new epoch, seek); seconds per model restored, from the daemon's ``restored partitions``
  log lines.

Prints each run, then medians, the ratio kafka / sqlite of messages/s (same run, interleaved)
and the peak RSS of this process. The bytes depend on how often a model's state is written: once
per checkpoint (``state.checkpoint_interval``) for each model that saw events since the last one,
so a figure per 1,000 events holds for the rate of the run; the bytes per model record do not
depend on it.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from driftwarden.daemon.app import App  # noqa: E402
from driftwarden.daemon.cli import single_threaded_numerics  # noqa: E402
from driftwarden.daemon.config import Config, parse_config  # noqa: E402
from driftwarden.daemon.kafka_io import open_dead_letters, open_source  # noqa: E402
from driftwarden.daemon.simulate import FEATURES, Scenario, messages, write_reference  # noqa: E402
from tests.broker.kafka import KafkaBroker, kafka_broker  # noqa: E402


def _config(bootstrap: str, topics: dict[str, str], workdir: Path, group: str, models: list[str], backend: str,
            checkpoint_interval: str) -> Config:
    state = workdir / f"state-{uuid.uuid4().hex[:8]}"  # every instance its own directory
    return parse_config({
        "kafka": {"bootstrap_servers": bootstrap, "group_id": group, "predictions_topic": topics["predictions"],
                  "outcomes_topic": topics["outcomes"], "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms",
                  "session_timeout": "6s"},
        "state": {"path": str(state / "dw.db"), "checkpoint_interval": checkpoint_interval, "backend": backend},
        "http": {"enabled": False},
        "reports": {"directory": str(state / "reports")},
        "models": [{"id": m, "task": "binary", "reference": "reference.parquet",
                    "features": {f: {"type": t} for f, t in FEATURES.items()}} for m in models],
    }, base_dir=str(workdir))


class Running:
    """An App running `driftwarden run`'s loop in a thread, with the daemon's source."""

    def __init__(self, config: Config) -> None:
        self.dead = open_dead_letters(config.kafka)
        self.app = App(config, self.dead, producer=self.dead.producer)
        self.source = open_source(config.kafka, stored_offsets=self.app.stored_offsets, on_revoke=self.app.save,
                                  on_assign=self.app.assigned, on_revoked=self.app.revoked)
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.app.run(self.source)
        except BaseException as exc:
            self.error = exc

    def wait(self, done: Callable[[App], bool], timeout: float = 600.0) -> float:
        """Seconds from the start until ``done(app)``."""
        while not done(self.app):
            if self.error is not None:
                raise self.error
            if time.perf_counter() - self.started > timeout:
                state = self.app.kafka_state
                held = "" if state is None else (f"; owns {sorted(state.ownership.owned_models())}, partitions "
                                                 f"{sorted(state.ownership.partitions)}, restores {state.restore_seconds}")
                raise TimeoutError(f"not done in {timeout:.0f} s: {self.app.totals}{held}")
            time.sleep(0.05)
        return time.perf_counter() - self.started

    def stop(self) -> None:
        self.app.stop_event.set()
        self.thread.join(timeout=120)
        self.dead.close()
        if self.error is not None:
            raise self.error


def consume_all(config: Config, total: int) -> tuple[float, Running]:
    """Messages/s of a run reading ``total`` messages, from its first processed batch to its last
    (the group's first assignment on fresh topics can take seconds: not the state backend's cost)."""
    run = Running(config)
    first: list[tuple[float, int]] = []

    def done(app: App) -> bool:
        seen = app.totals.predictions + app.totals.outcomes
        if seen and not first:
            first.append((time.perf_counter(), seen))
        return seen >= total

    run.wait(done)
    started, seen = first[0]
    assert seen < total, "everything came in one batch: use more --events"
    return (total - seen) / (time.perf_counter() - started), run


class Restores(logging.Handler):
    """The restores the daemon logs: ``restored partitions [...] (N models, ...) in X s``."""

    PATTERN = re.compile(r"restored partitions .* \((\d+) models, .* in ([\d.]+) s")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self.PATTERN.match(record.getMessage())
        if match:
            self.seen.append((int(match.group(1)), float(match.group(2))))


def changelog_records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=64 << 20, fetch_max_bytes=64 << 20)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[bytes, bytes | None]] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in batch)
        return out
    finally:
        consumer.close()


def disk_bytes(broker: KafkaBroker | None, topic: str) -> int | None:
    if broker is None:
        return None
    return sum(f.stat().st_size for d in (broker.workdir / "data").glob(f"{topic}-*") for f in d.glob("*.log"))


def one_repeat(bootstrap: str, broker: KafkaBroker | None, topics: dict[str, str], work: Path, models: list[str],
               total: int, interval: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rate, run = consume_all(_config(bootstrap, topics, work, f"bench-sqlite-{uuid.uuid4().hex[:6]}", models, "sqlite",
                                    interval), total)
    run.stop()
    out["sqlite"] = rate
    group = f"bench-kafka-{uuid.uuid4().hex[:6]}"
    rate, run = consume_all(_config(bootstrap, topics, work, group, models, "kafka", interval), total)
    assert run.app.kafka_state is not None
    changelog = run.app.kafka_state.topic
    run.stop()  # leaves the group: its partitions are checkpointed and released
    out["kafka"] = rate
    records = changelog_records(bootstrap, changelog)
    model_values = [len(v) for k, v in records if v is not None and k.startswith(b"model/")]
    out["records"] = len(model_values)
    out["bytes"] = sum(len(v) for _, v in records if v is not None)
    out["per_record"] = statistics.median(model_values)
    out["per_1000"] = out["bytes"] / (total / 1000)
    out["disk"] = disk_bytes(broker, changelog)
    # a second instance, nothing on its disk, restores every model from the changelog
    restores = Restores()
    logger = logging.getLogger("driftwarden.daemon.kafka_state")
    logger.addHandler(restores)
    logger.setLevel(logging.INFO)
    restorer = Running(_config(bootstrap, topics, work, group, models, "kafka", interval))
    try:
        restorer.wait(lambda app: sum(n for n, _ in restores.seen) >= len(models), timeout=300)
    finally:
        restorer.stop()
        logger.removeHandler(restores)
    out["restores"] = restores.seen  # (models, seconds) of each restore (a rebalance restores again)
    out["restore"] = sum(s for _, s in restores.seen)
    out["restored"] = sum(n for n, _ in restores.seen)
    out["per_model"] = out["restore"] / out["restored"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--events", type=int, default=4000, help="predictions per model (outcomes come on top)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint-interval", default="5s")
    args = parser.parse_args()
    single_threaded_numerics()
    with kafka_broker() as (bootstrap, broker), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_reference(work / "reference.parquet", Scenario())
        models = [f"model-{i}" for i in range(args.models)]
        topics = {k: f"bench-state-{k}-{uuid.uuid4().hex[:6]}" for k in ("predictions", "outcomes", "dlq")}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topics["predictions"], args.partitions, 1),
                             NewTopic(topics["outcomes"], args.partitions, 1), NewTopic(topics["dlq"], 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
        total = 0
        for i, m in enumerate(models):
            for topic, key, value in messages(Scenario(model_id=m, events=args.events, label_delay=300, seed=i)):
                producer.send(topics[topic], key=key, value=value)
                total += 1
        producer.flush()
        producer.close()
        print(f"produced {total:,} messages: {args.models} models x {args.events:,} predictions + outcomes, "
              f"{args.partitions} partitions; state.checkpoint_interval {args.checkpoint_interval}")
        runs = []
        for i in range(args.repeats):
            r = one_repeat(bootstrap, broker, topics, work, models, total, args.checkpoint_interval)
            runs.append(r)
            disk = f", {r['disk'] / 1e6:.2f} MB on disk" if r["disk"] is not None else ""
            print(f"run {i + 1}: sqlite {r['sqlite']:,.0f} msg/s, kafka {r['kafka']:,.0f} msg/s; changelog "
                  f"{r['records']} model records, {r['bytes'] / 1e6:.2f} MB as written{disk} "
                  f"({r['per_record'] / 1e3:.0f} kB per model record, {r['per_1000'] / 1e3:.1f} kB per 1,000 events); "
                  f"restores (models, s) {r['restores']}: {r['per_model'] * 1e3:.0f} ms per model")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"medians of {len(runs)} runs: sqlite {med('sqlite'):,.0f} msg/s, kafka {med('kafka'):,.0f} msg/s "
          f"(kafka / sqlite {statistics.median(r['kafka'] / r['sqlite'] for r in runs):.2f}); "
          f"changelog {med('per_record') / 1e3:.0f} kB per model record, {med('per_1000') / 1e3:.1f} kB per 1,000 events; "
          f"restore {med('per_model') * 1e3:.0f} ms per model")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (this process, all runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
