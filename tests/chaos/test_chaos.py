"""The chaos run: `driftwarden run` against a real broker, hostile traffic, outages and kill -9s.

One run (``make chaos``, or ``pytest -m chaos tests/chaos -s``):

- produces 3 models' valid traffic (daemon.simulate, one model with a covariate shift) with
  >= 10,000 hostile messages of every kind in :mod:`tests.chaos.catalogue` spread through it,
  split among four producers, one per codec (gzip, snappy, lz4, zstd);
- kills the broker (SIGKILL) for >= 60 s mid-stream and starts it again on the same ports and data;
- kill -9s the daemon >= 10 times at random moments, restarting it each time;
- holds the Slack and CI stand-ins down (500 and 429 with Retry-After in turn) for >= 2 minutes;
- stops the daemon with SIGTERM (exit 0) once everything is read and delivered.

It runs twice: with one daemon, and with three in one consumer group (each its own state
directory, no shared disk; the kill -9s hit one of them at random, so partitions move between
them all the time). The group's answers are merged from the three (:mod:`tests.chaos.fleet`).

Then it asserts: sent = accepted + dead-lettered + ignored (per kind from the dead-letter topic,
deduplicated by source offset; accepted and ignored counted by a clean audit run of the daemon
over the same topics); labelled events = valid outcomes produced, per model; every
notification delivered exactly once per idempotency key; no traffic or staleness alert; no
exit of the daemon's own. ``CHAOS_SEED`` picks the random moments (printed).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.simulate import FEATURES, Scenario, write_reference
from driftwarden.daemon.status_cmd import collect
from tests.broker.kafka import KafkaBroker, free_port
from tests.chaos.catalogue import KINDS, MODELS, SHIFTED, Produced, mixed_traffic
from tests.chaos.daemon_process import DaemonProcess, metric_sum
from tests.chaos.fleet import Fleet
from tests.chaos.standins import flaky_standins
from tests.chaos.topics import end_offsets
from tests.servers import slack_api, webhook_receiver

pytestmark = [pytest.mark.chaos, pytest.mark.kafka]

CODECS = ("gzip", "snappy", "lz4", "zstd")
VALID_EVENTS = 6000  # predictions per model (and as many outcomes)
PER_KIND = math.ceil(10_000 / len(KINDS))
BROKER_OUTAGE = 62.0  # seconds the broker is dead (before it is started again)
RECEIVER_OUTAGE = 125.0  # seconds Slack and CI answer 500/429
MIN_KILLS = 10
MAX_KILLS = 12  # then the daemon runs on, to catch up and deliver
CI_SECRET = "chaos-ci-secret"
PARTITIONS = 3


def write_config(path: Path, bootstrap: str, topics: dict[str, str], group: str, state: Path, port: int,
                 slack_url: str, ci_url: str, references: Path | None = None, backend: str = "sqlite") -> None:
    """``references``: the directory of ``reference-<model>.parquet`` (default: the config's);
    ``backend``: ``state.backend`` (kafka for several instances: state follows the partition)."""
    models = []
    for m in MODELS:
        models.append({
            "id": m, "task": "binary", "reference": str((references or path.parent) / f"reference-{m}.parquet"),
            "features": {name: {"type": kind} for name, kind in FEATURES.items()},
            "monitoring": {"window_size": 500},
        })
    config = {
        "kafka": {
            "bootstrap_servers": bootstrap, "group_id": group,
            "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
            "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms", "session_timeout": "6s",
            "compression_type": "lz4",  # what the daemon produces (dead letters) is compressed too
        },
        "state": {"path": str(state / "driftwarden.db"), "checkpoint_interval": "1s", "backend": backend},
        "http": {"enabled": True, "host": "127.0.0.1", "port": port},
        "reports": {"directory": str(state / "reports")},
        "models": models,
        "alerting": {
            "group_wait": "0s", "group_interval": "1s", "for_windows": 1,
            "receivers": {
                "oncall": {"type": "slack", "channel": "C0CHAOS", "base_url": slack_url},
                "ci": {"type": "webhook", "url": ci_url, "secret_env": "DRIFTWARDEN_CI_SECRET"},
            },
            "route": {"receiver": "oncall"},
            "retraining": {SHIFTED: {"receiver": "ci", "min_new_labels": 0}},
        },
    }
    path.write_text(yaml.safe_dump(config))


@contextmanager
def own_broker(workdir: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(workdir)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()  # by PID, whatever happened


class Producers:
    """One producer per codec; message i of a chunk round goes to the codec of its chunk."""

    def __init__(self, bootstrap: str) -> None:
        self.producers = {c: KafkaProducer(bootstrap_servers=bootstrap, compression_type=c, linger_ms=10,
                                           acks="all", retries=10) for c in CODECS}
        self.sent_by_codec: Counter[str] = Counter()

    def send(self, chunk: list[Produced], codec: str, topics: dict[str, str],
             where: dict[tuple[str, int, int], Produced]) -> None:
        producer = self.producers[codec]
        futures = [(producer.send(topics[m.topic], key=m.key, value=m.value), m) for m in chunk]
        producer.flush(timeout=60)
        for future, m in futures:
            meta = future.get(timeout=30)
            where[(meta.topic, meta.partition, meta.offset)] = m
        self.sent_by_codec[codec] += len(chunk)

    def close(self) -> None:
        for p in self.producers.values():
            p.close(timeout=10)


class Monkey(threading.Thread):
    """Kill -9s one of the daemons (at random) at random moments and starts it again, until stopped."""

    def __init__(self, fleet: Fleet, rng: random.Random) -> None:
        super().__init__(name="chaos-monkey", daemon=True)
        self.fleet = fleet
        self.rng = rng
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.kill_notes: list[str] = []
        self.phase = "start"

    def run(self) -> None:
        try:
            while not self.stopping.is_set() and self.fleet.kills < MAX_KILLS:
                d = self.rng.choice(self.fleet.daemons)
                started = time.monotonic()
                # a random moment: mostly while it consumes (HTTP answers once Kafka was reached), some in start-up
                ready_by = started + self.rng.uniform(4.0, 25.0)
                while time.monotonic() < ready_by and d.metrics() is None and not self.stopping.is_set():
                    self.fleet.check()
                    time.sleep(0.2)
                if self.stopping.wait(self.rng.uniform(0.5, 6.0)):
                    break
                self.fleet.check()
                d.kill9()
                who = f"{d.name}: " if len(self.fleet) > 1 else ""
                self.kill_notes.append(f"{who}{self.phase} ({time.monotonic() - started:.1f} s after start)")
                d.start()
        except BaseException as exc:
            self.error = exc


def read_dead_letters(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        assert all(consumer.position(tp) >= end[tp] for tp in tps), "dead-letter topic not read to its end"
        return records
    finally:
        consumer.close()


def wait_until(what: str, condition: Callable[[], bool], timeout: float, pump: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pump()
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"not reached in {timeout:.0f} s: {what}")


def status_cli(config: Path, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "driftwarden.daemon.cli", "status", "-c", str(config), "--format", "json"],
                         env=env, capture_output=True, check=True, timeout=120)
    return dict(json.loads(out.stdout))


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("instances", [1, 3])
def test_chaos(tmp_path: Path, instances: int) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "20261203"))
    rng = random.Random(seed)
    began = time.monotonic()
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token", "DRIFTWARDEN_CI_SECRET": CI_SECRET}
    traffic = mixed_traffic(VALID_EVENTS, PER_KIND, seed)
    for m in MODELS:
        write_reference(tmp_path / f"reference-{m}.parquet", Scenario(model_id=m))
    suffix = uuid.uuid4().hex[:6]
    topics = {"predictions": f"predictions-{suffix}", "outcomes": f"outcomes-{suffix}", "dlq": f"dlq-{suffix}"}
    where: dict[tuple[str, int, int], Produced] = {}  # source (topic, partition, offset) -> what we sent there
    timeline: list[str] = []

    def note(text: str) -> None:
        timeline.append(f"{time.monotonic() - began:6.1f} s  {text}")
        print(timeline[-1], flush=True)

    with own_broker(tmp_path / "kafka") as broker, flaky_standins(CI_SECRET) as (outage, slack, ci, slack_url, ci_url):
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            admin.create_topics([NewTopic(topics["predictions"], PARTITIONS, 1), NewTopic(topics["outcomes"], PARTITIONS, 1),
                                 NewTopic(topics["dlq"], 1, 1)])
        finally:
            admin.close()
        daemons = []
        for name in "abc"[:instances]:  # one directory each: config, state, reports, log
            home = tmp_path / name
            home.mkdir()
            config = home / "driftwarden.yaml"
            port = free_port()
            write_config(config, broker.bootstrap, topics, f"chaos-{suffix}", home / "state", port,
                         slack_url, ci_url, references=tmp_path, backend="kafka" if instances > 1 else "sqlite")
            daemons.append(DaemonProcess(config, port, home / "daemon.log", env, name=name))
        fleet = Fleet(daemons)
        monkey = Monkey(fleet, rng)
        outage.down = True
        receivers_down_at = time.monotonic()
        note("Slack and CI stand-ins down (500 / 429 in turn)")
        receivers_up_at: float | None = None

        def pump() -> None:
            nonlocal receivers_up_at
            if monkey.error is not None:
                raise monkey.error
            if outage.down and outage.failing_seconds >= RECEIVER_OUTAGE and \
                    time.monotonic() - receivers_down_at >= RECEIVER_OUTAGE:
                outage.down = False
                receivers_up_at = time.monotonic()
                note(f"Slack and CI stand-ins up again (failing for {outage.failing_seconds:.0f} s)")

        try:
            fleet.start()
            monkey.start()
            note(f"{instances} daemon(s) started; kill -9s at random moments from now on")
            half = int(len(traffic) * 0.45)
            phases = [traffic[:half], traffic[half:]]
            chunk = 600
            broker_down_for = 0.0
            by_codec: Counter[str] = Counter()
            for n, phase in enumerate(phases):
                producers = Producers(broker.bootstrap)
                try:
                    pieces = [phase[i:i + chunk] for i in range(0, len(phase), chunk)]
                    for i, piece in enumerate(pieces):
                        producers.send(piece, CODECS[i % len(CODECS)], topics, where)
                        pump()
                        time.sleep(25.0 / len(pieces))  # the stream spread over ~25 s per phase
                finally:
                    producers.close()
                    by_codec.update(producers.sent_by_codec)
                note(f"phase {n + 1}: {len(phase):,} messages produced ({dict(producers.sent_by_codec)})")
                if n == 0:
                    monkey.phase = "broker down"
                    broker.kill()
                    killed = time.monotonic()
                    note("broker killed (SIGKILL) mid-stream")
                    wait_until("broker outage", lambda k=killed: time.monotonic() - k >= BROKER_OUTAGE,
                               BROKER_OUTAGE + 5, pump)
                    broker.start()
                    broker_down_for = time.monotonic() - killed
                    note(f"broker serving again after {broker_down_for:.0f} s (same ports and data)")
                    monkey.phase = "after the broker outage"
            wait_until(f">= {MIN_KILLS} kill -9s and the stand-ins back up",
                       lambda: not monkey.is_alive() and receivers_up_at is not None, 400, pump)
            monkey.stopping.set()
            monkey.join(timeout=60)
            pump()
            note(f"monkey stopped after {fleet.kills} kill -9s")

            ends = {tp: n for tp, n in end_offsets(broker.bootstrap, [topics["predictions"], topics["outcomes"]]).items() if n}
            quiet_since = [time.monotonic(), 0]

            waiting_for: list[str] = [""]

            def settled() -> bool:
                fleet.check()
                status = fleet.status(lambda d: collect(str(d.config)))
                read = {tp: n for tp, n in status.get("offsets", {}).items() if n}
                if read != ends:
                    waiting_for[0] = f"offsets {sorted((tp, read.get(tp), n) for tp, n in ends.items() if read.get(tp) != n)}"
                    return False
                owned = {name: keys for name, keys in fleet.undelivered()[0].items() if keys}
                if owned:
                    waiting_for[0] = f"undelivered {owned}"
                    return False
                # outcomes behind one whose prediction never came wait (in the outcome stream's order)
                # until the predictions watermark passes it or the predictions have been silent for
                # event_time.idle_after: everything read is not yet everything labelled
                expected = Counter(x.model for x in where.values() if x.kind == "valid" and x.topic == "outcomes")
                short = {m: (status["models"].get(m, {}).get("labelled_samples", 0), expected[m]) for m in MODELS
                         if status["models"].get(m, {}).get("labelled_samples", 0) < expected[m]}
                if short:
                    waiting_for[0] = f"labelled (have, expected) {short}"
                    return False
                attempts = len(slack.state.calls) + len(ci.requests)
                if attempts != quiet_since[1]:
                    quiet_since[:] = [time.monotonic(), attempts]
                return time.monotonic() - quiet_since[0] >= 5.0

            try:
                wait_until("everything read, checkpointed and delivered", settled, 300, pump)
            except AssertionError as e:
                raise AssertionError(f"{e}; still waiting for {waiting_for[0]}\n{fleet.tail()}") from None
            last_metrics = [d.metrics() for d in fleet]
            codes = fleet.terminate()
            note(f"SIGTERM: exit codes {codes}")
            assert set(codes.values()) == {0}, fleet.tail()
        finally:
            monkey.stopping.set()
            fleet.stop()
        status = fleet.status(lambda d: status_cli(d.config, env))
        owned_undelivered, fenced_undelivered = fleet.undelivered()
        dead_letters = read_dead_letters(broker.bootstrap, topics["dlq"])
        audit = audit_run(tmp_path, broker.bootstrap, topics, env)

    # ---- accounting ---------------------------------------------------------------------------
    sent = Counter(m.kind for m in where.values())
    assert len(where) == len(traffic)
    dead_at: Counter[tuple[str, int, int]] = Counter()
    for r in dead_letters:
        h = dict(r.headers)
        dead_at[(h["driftwarden.topic"].decode(), int(h["driftwarden.partition"]), int(h["driftwarden.offset"]))] += 1
    assert set(dead_at) <= set(where), "dead letters of offsets we never produced to"
    dead_by_kind = Counter(where[k].kind for k in dead_at)
    repeats_by_kind: Counter[str] = Counter()  # dead letters sent again for the same source offset (after a kill -9)
    for k, n in dead_at.items():
        repeats_by_kind[where[k].kind] += n - 1
    fate = {k.name: k.fate for k in KINDS} | {"valid": "accept"}
    topic_of = {k.name: k.topic for k in KINDS}

    expected_accepted: Counter[tuple[str, str]] = Counter()  # (topic, model) -> events
    for m in where.values():
        if fate[m.kind] == "accept":
            assert m.model is not None
            expected_accepted[(m.topic, m.model)] += 1
    ignored = sum(n for kind, n in sent.items() if fate[kind] == "ignore")
    rows = []
    for kind in ["valid", *(k.name for k in KINDS)]:
        rows.append((kind, topic_of.get(kind, "both"), fate[kind], sent[kind], dead_by_kind[kind], repeats_by_kind[kind]))
    totals = {f: sum(r[3] for r in rows if r[2] == f) for f in ("accept", "ignore", "dead")}
    audit_accepted = {(t, m): metric_sum(audit, "driftwarden_events_total", topic=t, model=m)
                      for t in ("predictions", "outcomes") for m in MODELS}
    audit_ignored = metric_sum(audit, "driftwarden_events_ignored_total")
    audit_dead = metric_sum(audit, "driftwarden_dead_letters_total")
    valid_outcomes = Counter(m.model for m in where.values() if m.kind == "valid" and m.topic == "outcomes")
    labelled = {m: status["models"][m].get("labelled_samples", 0) for m in MODELS}

    slack_posted, slack_tried = slack.posted_keys(), slack.attempted_keys()
    ci_ok, ci_tried = ci.ok_keys(), ci.attempted_keys()
    texts = slack.texts() + [r.body.decode() for r in ci.requests]
    traffic_alerts = [t for t in texts if "staleness" in t or "traffic" in t]

    summary = [
        f"chaos run, {instances} instance(s), seed {seed}: {time.monotonic() - began:.0f} s",
        f"sent {len(where):,} messages: {sent['valid']:,} valid + {len(where) - sent['valid']:,} hostile of "
        f"{len(KINDS)} kinds; by codec {dict(by_codec)}",
        f"  accept: sent {totals['accept']:,}, audit run counted {int(sum(audit_accepted.values())):,}",
        f"  ignore: sent {totals['ignore']:,}, audit run counted {int(audit_ignored):,}",
        f"  dead:   sent {totals['dead']:,}, dead-letter topic (distinct source offsets) {len(dead_at):,} "
        f"({sum(dead_at.values()):,} records, {sum(repeats_by_kind.values())} repeats after kill -9), "
        f"audit run {int(audit_dead):,}",
        f"labelled events per model {labelled} vs valid outcomes produced {dict(valid_outcomes)}",
        f"daemon kill -9s: {fleet.kills} ({'; '.join(monkey.kill_notes)}); starts {fleet.starts}; final SIGTERM exit 0",
        f"broker down {broker_down_for:.0f} s; Slack/CI failing {outage.failing_seconds:.0f} s: {dict(outage.answered)}",
        f"Slack: {len(slack_tried)} notification keys, {sum(slack_tried.values())} postMessage attempts, "
        f"{sum(slack_posted.values())} stored; CI: {len(ci_tried)} keys, {sum(ci_tried.values())} attempts, "
        f"{sum(ci_ok.values())} 2xx",
        f"final status: {len(status['alerts'])} pending/firing alerts "
        f"({sorted({(a['model'], a['kind']) for a in status['alerts']})}), "
        f"{len(status['undelivered'])} undelivered ({sum(map(len, fenced_undelivered.values()))} of them fenced copies "
        "of models another instance took over), "
        f"{len(status['failed'])} failed",
        "per kind: name | topic | fate | sent | dead-lettered (distinct) | repeated dead letters",
        *(f"  {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]}" for r in rows),
        "timeline:", *timeline,
    ]
    print("\n" + "\n".join(summary), flush=True)
    summary_path = os.environ.get("CHAOS_SUMMARY")
    (Path(f"{summary_path}.{instances}") if summary_path else tmp_path / "summary.txt").write_text("\n".join(summary) + "\n")

    # ---- the assertions -----------------------------------------------------------------------
    assert len(where) - sent["valid"] >= 10_000 and len(KINDS) >= 80
    assert set(by_codec) == set(CODECS) and min(by_codec.values()) > 0.2 * len(where) / len(CODECS)
    assert fleet.kills >= MIN_KILLS and broker_down_for >= 60 and outage.failing_seconds >= 120
    assert all(outage.answered[f"{who} {s}"] > 0 for who in ("slack", "ci") for s in ("500", "429")), outage.answered
    # every message has exactly its fate: dead letters exactly once per source offset (after dedupe)
    wrong = {r[0]: r for r in rows if r[4] != (r[3] if r[2] == "dead" else 0)}
    assert not wrong, wrong
    assert len(dead_at) == totals["dead"] == audit_dead
    assert audit_accepted == {k: float(expected_accepted[k]) for k in audit_accepted}
    assert audit_ignored == ignored == totals["ignore"]
    assert totals["accept"] + totals["ignore"] + totals["dead"] == len(where)
    # nothing lost, nothing doubled through the kills and the outage
    assert labelled == {m: valid_outcomes[m] for m in MODELS}
    assert {tp: n for tp, n in status["offsets"].items() if n} == ends
    assert None not in last_metrics
    # alerts went out: the shifted model's drift on Slack, its retraining request to CI, each exactly once
    assert any(SHIFTED in t and "drift" in t for t in slack.texts()), "no drift alert for the shifted model"
    assert ci_ok and all(json.loads(r.body)["model"] == SHIFTED for r in ci.requests if r.status == 200)
    assert set(slack_posted) == set(slack_tried) and set(slack_posted.values()) == {1}, (slack_tried, slack_posted)
    assert set(ci_ok) == set(ci_tried) and set(ci_ok.values()) == {1}, (ci_tried, ci_ok)
    assert not any(owned_undelivered.values()) and not status["failed"], (owned_undelivered, status["failed"])
    # a fenced copy (left by a kill -9 in the outbox of an instance that lost the model) went out from its new owner
    delivered = set(slack_posted) | set(ci_ok)
    assert not [k for keys in fenced_undelivered.values() for k in keys if k not in delivered], fenced_undelivered
    assert not traffic_alerts, traffic_alerts[:3]
    assert not [a for a in status["alerts"] if a["kind"] == "traffic"], status["alerts"]


def audit_run(tmp_path: Path, bootstrap: str, topics: dict[str, str], env: dict[str, str]) -> dict[Any, float]:
    """A clean daemon run over the same topics (new group, state and dead-letter topic, no faults):
    its counters split what was not dead-lettered into accepted and ignored."""
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    for m in MODELS:
        (audit_dir / f"reference-{m}.parquet").symlink_to(tmp_path / f"reference-{m}.parquet")
    slack, ci = slack_api(), webhook_receiver()
    config = audit_dir / "driftwarden.yaml"
    write_config(config, bootstrap, {**topics, "dlq": topics["dlq"] + "-audit"}, f"audit-{topics['dlq']}",
                 audit_dir / "state", free_port(), slack.url + "/api/", ci.url + "/retrain")
    daemon = DaemonProcess(config, yaml.safe_load(config.read_text())["http"]["port"], audit_dir / "daemon.log", env)
    try:
        daemon.start()
        last: list[Any] = [None]

        def caught_up() -> bool:
            daemon.check()
            samples = daemon.metrics()
            lag = [v for (n, _), v in (samples or {}).items() if n == "driftwarden_consumer_lag"]
            done = len(lag) == 2 * PARTITIONS and not any(lag) and samples == last[0]
            last[0] = samples
            return done

        wait_until("the audit run read everything", caught_up, 300, lambda: None)
        samples = last[0]
        assert daemon.terminate() == 0, daemon.tail()
        return dict(samples)
    finally:
        daemon.stop()
        slack.close()
        ci.close()
