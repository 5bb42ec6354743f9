"""State that follows its partition (``state.backend: kafka``), through a real broker.

Two in-process instances in one group; a model moves from one to the other mid-stream and
its findings equal those of one instance reading the same events; a fenced owner's outbox
entries are not delivered by it; a changelog record of a stale owner is ignored.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.alerts.notify import DeliveryResult, Notification, Notifier
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.daemon.app import App
from driftwarden.daemon.changelog import ChangelogError, StateRecord, decode, encode
from driftwarden.daemon.checkpoint import STATE_ENCODER, decode_state
from driftwarden.daemon.config import load_config
from driftwarden.daemon.consumer_process import ProcessSource
from driftwarden.daemon.kafka_io import open_dead_letters
from driftwarden.daemon.simulate import Scenario, messages, write_reference
from driftwarden.daemon.status_cmd import run_status
from tests.app_thread import AppThread
from tests.servers import RecordingServer, Request

pytestmark = pytest.mark.kafka
MODELS = ("churn", "churn-eu")  # murmur2 puts them in partitions 1 and 0 of 2
PARTITION_OF = {"churn": 1, "churn-eu": 0}


def make_topics(bootstrap: str, partitions: int = 2, outcomes_partitions: int | None = None) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{suffix}" for k in ("predictions", "outcomes", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(names["predictions"], partitions, 1),
                             NewTopic(names["outcomes"], outcomes_partitions or partitions, 1),
                             NewTopic(names["dlq"], 1, 1)])
    finally:
        admin.close()
    return names


def write_config(directory: Path, bootstrap: str, topics: dict[str, str], group: str, webhook: str = "",
                 client: str = "kafka-python") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_reference(directory / "reference.parquet", Scenario())
    model = {
        "task": "binary", "reference": "reference.parquet",
        "features": {f: {"type": "numeric"} for f in ("age", "tenure_days", "monthly_spend", "support_tickets")}
        | {f: {"type": "categorical"} for f in ("plan", "country")},
        "monitoring": {"window_size": 500},
    }
    receivers: dict[str, Any] = {"hook": {"type": "webhook", "url": webhook or "http://127.0.0.1:9/none"}}
    config = {
        "kafka": {"client": client, "bootstrap_servers": bootstrap, "group_id": group, "predictions_topic": topics["predictions"],
                  "outcomes_topic": topics["outcomes"], "dead_letter_topic": topics["dlq"],
                  "poll_timeout": "200ms", "session_timeout": "6s", "max_poll_records": 700},
        "state": {"path": str(directory / "state.db"), "checkpoint_interval": "1s", "backend": "kafka"},
        "http": {"enabled": False},
        "reports": {"directory": str(directory / "reports")},
        "models": [{**model, "id": m} for m in MODELS],
        "alerting": {"group_wait": "0s", "group_interval": "1s", "for_windows": 1,
                     "receivers": receivers, "route": {"receiver": "hook"}},
    }
    path = directory / "driftwarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def scenario_messages(shifted: tuple[str, ...] = ("churn",)) -> list[tuple[str, bytes | None, bytes]]:
    """Both models' events, interleaved (each half of the list has events of both).

    Every 25th prediction in the 300 messages before the middle is sent without a key (to
    its model's partition, so that its model reads its events in one order in every run):
    its outcome comes after the middle, so it is still waiting when a model moves, and the
    predictions topic cannot give it back under the model's key: it has to travel in the
    model's changelog record."""
    streams = [list(messages(Scenario(model_id=m, events=3000, label_delay=120, seed=seed,
                                      covariate_shift_at=1500 if m in shifted else None)))
               for seed, m in enumerate(MODELS)]
    events: list[tuple[str, bytes | None, bytes]] = [e for pair in zip(*streams, strict=True) for e in pair]
    half = len(events) // 2
    for i in range(half - 300, half):
        topic, _, value = events[i]
        if topic == "predictions" and i % 25 == 0:
            events[i] = (topic, None, value)
    return events


def produce(bootstrap: str, topics: dict[str, str], batch: list[tuple[str, bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    try:
        for topic, key, value in batch:
            # a keyless event goes to its model's partition (the one its key would choose)
            partition = None if key is not None else PARTITION_OF[json.loads(value)["model_id"]]
            producer.send(topics[topic], key=key, value=value, partition=partition)
        producer.flush()
    finally:
        producer.close()


class Instance(AppThread):
    """App + source in a thread, wired as ``driftwarden run`` wires them; records every finding it ingests."""

    def __init__(self, config_path: Path, notifiers: dict[str, Notifier] | None = None) -> None:
        self.findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
        record = self.findings
        ingest = AlertPipeline.ingest

        def recording(app: App) -> None:
            def ingest_recorded(model_id: str, labels: Any, findings: Any, now: float) -> Any:
                record[model_id].extend(f.to_dict() for f in findings)
                return ingest(app.alerts, model_id, labels, findings, now)
            app.alerts.ingest = ingest_recorded  # type: ignore[method-assign]

        super().__init__(config_path, notifiers, prepare=recording)

    @property
    def owned(self) -> set[str]:
        assert self.app.kafka_state is not None
        return self.app.kafka_state.ownership.owned_models()


def wait_for(condition: Any, what: Any, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def describe(i: Instance) -> str:
    state = i.app.kafka_state
    assert state is not None
    return (f"partitions={sorted(state.ownership.partitions)} seen={state.ownership.partition_of} "
            f"error={i.error!r} assignment={sorted(i.source.assigned())}")


def gauges_of(i: Instance, model: str) -> set[str]:
    """Names of the gauges ``i``'s /metrics serves for ``model`` (counters, ``_total``, left out)."""
    with i.app._lock:
        text = i.app.metrics.exposition().decode()
    return {line.split("{")[0] for line in text.splitlines()
            if line and not line.startswith("#") and f'model="{model}"' in line and "_total{" not in line}


def consumed(instances: list[Instance]) -> int:
    return sum(i.app.totals.predictions + i.app.totals.outcomes for i in instances)


def comparable(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings of the windows (traffic checks are ticked on the wall clock: not the same in two runs)."""
    return [f for f in findings if f["kind"] != "traffic"]


def test_a_model_moved_mid_stream_gives_the_single_instance_findings(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance], kafka_client: str
) -> None:
    topics, topics2 = make_topics(kafka_bootstrap), make_topics(kafka_bootstrap)
    events = scenario_messages()
    produce(kafka_bootstrap, topics, events)

    # the reference: one instance reads everything
    alone = Instance(write_config(tmp_path / "alone", kafka_bootstrap, topics, f"ref-{topics['predictions']}"))
    app_threads.append(alone)
    wait_for(lambda: consumed([alone]) >= len(events), "the single instance to read every event")
    alone_labelled = {m: alone.app.models[m].labelled_samples for m in MODELS}
    alone.stop()
    reference = {m: comparable(alone.findings[m]) for m in MODELS}
    assert all(reference[m] for m in MODELS), "the scenario must produce findings"
    assert any(f["degraded"] for f in reference["churn"]), "the shifted model must show drift"

    # the same events, read by A alone up to the middle; then B joins and takes one model's partition
    group = f"moved-{topics2['predictions']}"
    half = len(events) // 2
    first = events[:half]
    assert sum(1 for _, key, _ in first if key is None) >= 5, "keyless predictions must wait across the move"
    produce(kafka_bootstrap, topics2, first)
    a = Instance(write_config(tmp_path / "a", kafka_bootstrap, topics2, group, client=kafka_client))
    app_threads.append(a)
    wait_for(lambda: consumed([a]) >= len(first), "A to read the first half")
    # A's own checkpoint (every 1 s) after its last batch, on its loop's thread: a source is the loop's alone
    # (the consumer process's pipes take one reader), so the test does not call save from here. The join's
    # delta since that checkpoint is taken by it, not left to grow (the changelog topic holds the rows)
    def delta_taken() -> bool:
        with a.app._lock:
            return not a.app._dirty and a.app.join._changes.predictions == {} and a.app.join._changes.outcomes == {}
    wait_for(delta_taken, "A's checkpoint to take the join's delta")
    b = Instance(write_config(tmp_path / "b", kafka_bootstrap, topics2, group, client=kafka_client))
    app_threads.append(b)
    wait_for(lambda: len(a.owned) == 1 and len(b.owned) == 1,
             lambda: f"the group to give each instance one model: {describe(a)} {describe(b)}")
    # the rebalance revoked both partitions of A and gave one back: its parked detectors, not built again
    assert a.app.kafka_state is not None and a.app.kafka_state.reused == 1
    # B loaded the moved model's state into the detectors it built at start-up, not into others built again
    assert b.app.kafka_state is not None and b.app.kafka_state.unused_reused == 1
    produce(kafka_bootstrap, topics2, events[half:])
    wait_for(lambda: consumed([a, b]) >= len(events), "A and B to read the second half")
    moved = next(iter(b.owned))
    moved_labelled = b.app.models[moved].labelled_samples
    # its gauges come from its owner alone: A's /metrics stopped serving them when it handed it over
    assert "driftwarden_check_statistic" in gauges_of(b, moved) and not gauges_of(a, moved)
    assert "driftwarden_check_statistic" in gauges_of(a, next(iter(a.owned)))
    b.stop()
    a.stop()

    # no event counted twice, none lost: every prediction reached the detectors exactly once
    assert a.app.totals.predictions + b.app.totals.predictions == sum(1 for t, _, _ in events if t == "predictions")
    for m in MODELS:
        got = comparable(a.findings[m] + b.findings[m])
        assert got == reference[m], f"model {m} (moved: {m == moved}): findings differ from the single instance"
    assert b.findings[moved], "the moved model must have been evaluated by its new owner"
    # its labelled events: the join survived the move (waiting predictions were read again, not lost)
    labelled = dict(alone_labelled)
    assert moved_labelled == labelled[moved]


def test_different_partition_counts_are_refused_at_start(tmp_path: Path, kafka_bootstrap: str) -> None:
    topics = make_topics(kafka_bootstrap, partitions=2, outcomes_partitions=3)
    config = load_config(write_config(tmp_path, kafka_bootstrap, topics, f"g-{topics['predictions']}"))
    dead_letters = open_dead_letters(config.kafka)
    try:
        with pytest.raises(ChangelogError, match=r"has 2 partitions but .* has 3"):
            App(config, dead_letters)
    finally:
        dead_letters.close()


def _changelog_records(bootstrap: str, topic: str, partition: int) -> list[tuple[str, bytes | None]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        consumer.seek_to_beginning(tp)
        out: list[tuple[str, bytes | None]] = []
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend((r.key.decode(), r.value) for r in batch)
        return out
    finally:
        consumer.close()


class Gated:
    """The real webhook notifier behind a gate, noting which instance sent which idempotency key."""

    def __init__(self, inner: Notifier, gate: threading.Event, sent: list[str]) -> None:
        self.inner, self.gate, self.sent = inner, gate, sent

    def notify(self, n: Notification) -> DeliveryResult:
        if not self.gate.is_set():
            return DeliveryResult(ok=False, retryable=True, detail="held by the test")
        self.sent.append(n.idempotency_key)
        return self.inner.notify(n)


def test_a_fenced_owner_does_not_deliver_the_notifications_of_a_model_it_lost(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance]
) -> None:
    received: list[str] = []

    def accept(req: Request) -> tuple[int, dict[str, str], bytes]:
        received.append(req.headers["idempotency-key"])
        return 202, {}, b"{}"

    server = RecordingServer(accept)
    try:
        topics = make_topics(kafka_bootstrap)
        produce(kafka_bootstrap, topics, scenario_messages(shifted=MODELS))
        group = f"fenced-{topics['predictions']}"
        gate = threading.Event()
        sent: dict[str, list[str]] = {"a": [], "b": []}

        def start(name: str) -> Instance:
            path = write_config(tmp_path / name, kafka_bootstrap, topics, group, webhook=server.url + "/hook")
            notifiers = build_notifiers(load_config(path).alerting)
            instance = Instance(path, {"hook": Gated(notifiers["hook"], gate, sent[name])})
            app_threads.append(instance)
            return instance

        a = start("a")
        wait_for(lambda: all(a.app.outbox.open_entries(m) for m in MODELS),
                 "A to hold notifications of both models (the gate keeps them in its outbox)")
        waiting = {m: {e["key"] for e in a.app.outbox.open_entries(m)} for m in MODELS}
        b = start("b")
        wait_for(lambda: len(a.owned) == 1 and len(b.owned) == 1,
                 lambda: f"the group to give each instance one model: {describe(a)} {describe(b)}")
        moved, kept = next(iter(b.owned)), next(iter(a.owned))
        assert not a.app.outbox.open_entries(moved), "the old owner still holds the moved model's notifications"
        gate.set()
        for i in (a, b):  # retry now, not after the backoff the closed gate caused
            for e in i.app.outbox.entries():
                if e.delivered_at is None:
                    i.app.outbox.mark_retry(e.id, 0.0, "retry now")
        wait_for(lambda: set(received) >= waiting[moved] | waiting[kept], "every held notification at the webhook")
        wait_for(lambda: a.app.outbox.pending_count() == 0 and b.app.outbox.pending_count() == 0, "empty outboxes")
        b.stop()
        a.stop()
    finally:
        server.close()
    counts = Counter(received)
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    assert waiting[moved] <= set(sent["b"]), "the new owner delivers what the old owner had not"
    assert not waiting[moved] & set(sent["a"]), "the fenced owner sent a notification of the model it lost"
    assert waiting[kept] <= set(sent["a"])


def test_a_stale_owners_changelog_record_is_ignored(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance]
) -> None:
    topics = make_topics(kafka_bootstrap)
    events = scenario_messages()
    total = len(events)
    produce(kafka_bootstrap, topics, events)
    group = f"stale-{topics['predictions']}"
    first = Instance(write_config(tmp_path / "first", kafka_bootstrap, topics, group))
    app_threads.append(first)
    wait_for(lambda: consumed([first]) >= total, "the first owner to read every event")
    labelled = first.app.models["churn"].labelled_samples
    first.stop()
    assert labelled > 0
    state = first.app.kafka_state
    assert state is not None
    partition, old_epoch = state.ownership.partition_of["churn"], None
    records = _changelog_records(kafka_bootstrap, state.topic, partition)
    old = [decode(v) for k, v in records if v is not None and k.startswith("model/churn@")][-1]
    old_epoch = old.epoch

    second = Instance(write_config(tmp_path / "second", kafka_bootstrap, topics, group))  # claims old_epoch + 1
    app_threads.append(second)
    wait_for(lambda: "churn" in second.owned, lambda: f"the second owner to restore churn: {describe(second)}")
    second.stop()
    # the first owner, fenced but unaware, writes churn's state late, under its old epoch
    stale = StateRecord(**{**{f: getattr(old, f) for f in old.__struct_fields__}, "version": old.version + 100})
    assert stale.state is not None
    stale.state["meta"]["labelled_samples"] = 123_456
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(state.topic, key=stale.key().encode(), value=encode(stale), partition=partition).get(30)
    finally:
        producer.close()

    third_config = write_config(tmp_path / "third", kafka_bootstrap, topics, group)
    third = Instance(third_config)
    app_threads.append(third)
    wait_for(lambda: "churn" in third.owned, lambda: f"the third owner to restore churn: {describe(third)}")
    wait_for(lambda: third.app.models["churn"].labelled_samples == labelled,
             lambda: f"churn restored from the newer owner's record: {third.app.models['churn'].labelled_samples}")
    assert third.app.kafka_state is not None
    assert third.app.kafka_state.ownership.epochs[partition] == old_epoch + 2
    # driftwarden status: who owns the partition and its models, epochs, versions, offsets
    third.app.save()  # (the periodic checkpoint) the SQLite cache status also reads
    out = io.StringIO()
    assert run_status(str(third_config), "json", out) == 0
    part = json.loads(out.getvalue())["group"]["partitions"][str(partition)]
    assert part["owner"] == third.app.kafka_state.member and part["epoch"] == old_epoch + 2
    assert part["models"]["churn"]["epoch"] == old_epoch + 2
    assert part["models"]["churn"]["offsets"] == {
        f"{topics[t]}[{partition}]": third.app.offsets[(topics[t], partition)] for t in ("predictions", "outcomes")}
    assert part["ignored_stale_records"] == 1
    table = io.StringIO()
    run_status(str(third_config), "table", table)
    assert f"partition {partition}: owned by {third.app.kafka_state.member} (epoch {old_epoch + 2}" in table.getvalue()
    third.stop()


def _read_by_a_first_owner(tmp_path: Path, bootstrap: str, app_threads: list[Instance],
                           name: str) -> tuple[dict[str, str], str, Instance]:
    """The scenario's events, read to their end by one instance of a new group, stopped (it handed over)."""
    topics = make_topics(bootstrap)
    events = scenario_messages()
    produce(bootstrap, topics, events)
    group = f"{name}-{topics['predictions']}"
    first = Instance(write_config(tmp_path / "first", bootstrap, topics, group))
    app_threads.append(first)
    wait_for(lambda: consumed([first]) >= len(events), "the first owner to read every event")
    first.stop()
    return topics, group, first


def _write_raw(bootstrap: str, topic: str, partition: int, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition).get(30)
    finally:
        producer.close()


def _churn_restored_by_a_second_owner(tmp_path: Path, bootstrap: str, app_threads: list[Instance],
                                      topics: dict[str, str], group: str) -> Instance:
    second = Instance(write_config(tmp_path / "second", bootstrap, topics, group))
    app_threads.append(second)
    wait_for(lambda: "churn" in second.owned, lambda: f"the second owner to restore churn: {describe(second)}")
    second.stop()
    return second


def _last_record(bootstrap: str, topic: str, partition: int, model: str) -> StateRecord:
    return [decode(v) for k, v in _changelog_records(bootstrap, topic, partition)
            if v is not None and k.startswith(f"model/{model}@")][-1]


def test_detector_state_travels_as_stored_and_a_record_of_an_earlier_version_still_restores(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance]
) -> None:
    """A record holds the detectors' state as the SQLite checkpoint stores it (zstd-compressed MessagePack).
    Records of earlier versions held it as a map; a new member restores those too, and claims them in the
    new form."""
    topics, group, first = _read_by_a_first_owner(tmp_path, kafka_bootstrap, app_threads, "stored")
    state = first.app.kafka_state
    assert state is not None
    labelled = first.app.models["churn"].labelled_samples
    expected = STATE_ENCODER.encode(first.app.models["churn"].monitor.state())
    partition = state.ownership.partition_of["churn"]
    last = _last_record(kafka_bootstrap, state.topic, partition, "churn")
    assert last.state is not None and isinstance(last.state["monitor"], bytes)
    assert STATE_ENCODER.encode(decode_state(last.state["monitor"])) == expected
    # the same record as an earlier version wrote it (same key: it replaces the one above)
    earlier = StateRecord(**{**{f: getattr(last, f) for f in last.__struct_fields__},
                             "state": {**last.state, "monitor": decode_state(last.state["monitor"])}})
    _write_raw(kafka_bootstrap, state.topic, partition, [(earlier.key().encode(), encode(earlier))])
    second = _churn_restored_by_a_second_owner(tmp_path, kafka_bootstrap, app_threads, topics, group)
    assert second.app.models["churn"].labelled_samples == labelled
    # the detectors hold that state (but their check history: the second member's checks ran since)
    restored = {k: v for k, v in second.app.models["churn"].monitor.state().items() if k != "history"}
    assert STATE_ENCODER.encode(restored) == STATE_ENCODER.encode(
        {k: v for k, v in decode_state(last.state["monitor"]).items() if k != "history"})
    claim = _last_record(kafka_bootstrap, state.topic, partition, "churn")
    assert claim.epoch > last.epoch and claim.state is not None and isinstance(claim.state["monitor"], bytes)


def test_a_record_that_does_not_decode_is_skipped_and_a_detector_state_that_does_not_starts_afresh(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance], caplog: pytest.LogCaptureFixture
) -> None:
    """A foreign or corrupted changelog record would stop every member that gets its partition, in turn;
    now it is ignored (and tombstoned by the next claim). A record whose detector state does not decode
    restores all the rest (the join, alerts, offsets, counts) and starts the detectors afresh."""
    topics, group, first = _read_by_a_first_owner(tmp_path, kafka_bootstrap, app_threads, "unreadable")
    state = first.app.kafka_state
    assert state is not None
    labelled = first.app.models["churn"].labelled_samples
    partition = state.ownership.partition_of["churn"]
    last = _last_record(kafka_bootstrap, state.topic, partition, "churn")
    assert last.state is not None
    damaged = StateRecord(**{**{f: getattr(last, f) for f in last.__struct_fields__},
                             "state": {**last.state, "monitor": last.state["monitor"][:100]}})
    _write_raw(kafka_bootstrap, state.topic, partition,
               [(damaged.key().encode(), encode(damaged)), (b"model/foreign@1", b"\x00not a record")])
    second = _churn_restored_by_a_second_owner(tmp_path, kafka_bootstrap, app_threads, topics, group)
    assert second.app.models["churn"].labelled_samples == labelled  # the record's other parts hold
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("model churn: the detector state in its changelog record does not decode" in e for e in errors), errors
    assert any("'model/foreign@1' does not decode" in e for e in errors), errors
    again = _last_record(kafka_bootstrap, state.topic, partition, "churn")
    assert again.state is not None and decode_state(again.state["monitor"]), "its detectors were written again, whole"
    foreign = [v for k, v in _changelog_records(kafka_bootstrap, state.topic, partition) if k == "model/foreign@1"]
    assert foreign == [b"\x00not a record", None], "the second owner's claim tombstoned it"


def test_a_rebalance_answered_during_the_restores_seek_loses_and_repeats_nothing(
    tmp_path: Path, kafka_bootstrap: str, app_threads: list[Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer process's seek answers the rebalance callbacks that wait for the daemon (its poll waits
    for kafka-python's IO thread, which waits in the callback): a revocation and a new assignment of the
    same partitions can run inside the restore's last step. The restore ends cleanly, the partitions are
    restored again, and every prediction is run once."""
    topics = make_topics(kafka_bootstrap)
    events = scenario_messages()
    half = len(events) // 2
    produce(kafka_bootstrap, topics, events[:half])
    group = f"reentrant-{topics['predictions']}"
    first = Instance(write_config(tmp_path / "first", kafka_bootstrap, topics, group))
    app_threads.append(first)
    wait_for(lambda: consumed([first]) >= half, "the first instance to read the first half")
    first.stop()

    rebalanced: list[list[tuple[str, int]]] = []
    seek = ProcessSource.seek

    def seek_during_a_rebalance(self: ProcessSource, offsets: Any) -> None:
        if not rebalanced:  # the restore's first seek: the child's revocation and assignment wait for us
            held = sorted(self.assigned())
            rebalanced.append(held)
            self._hooks["on_revoked"](held)
            self._hooks["on_assign"](held, -1)
        seek(self, offsets)

    monkeypatch.setattr(ProcessSource, "seek", seek_during_a_rebalance)
    second = Instance(write_config(tmp_path / "second", kafka_bootstrap, topics, group))
    app_threads.append(second)
    produce(kafka_bootstrap, topics, events[half:])
    wait_for(lambda: consumed([first, second]) >= len(events) or second.error is not None,
             lambda: f"the second instance to read the rest: {describe(second)}")
    assert rebalanced, "the restore did not seek"
    assert second.error is None, f"the loop failed: {second.error!r}"
    state = second.app.kafka_state
    assert state is not None and len(state.restore_seconds) >= 2, "the partitions were not restored again"
    # given back to the member that handed them over, unchanged: their parked detectors, not built again
    assert state.reused == len(MODELS)
    labelled = {m: second.app.models[m].labelled_samples for m in MODELS}
    second.stop()
    predictions = sum(1 for t, _, _ in events if t == "predictions")
    assert first.app.totals.predictions + second.app.totals.predictions == predictions
    outcomes = Counter(json.loads(v)["model_id"] for t, _, v in events if t == "outcomes")
    assert labelled == {m: outcomes[m] for m in MODELS}
