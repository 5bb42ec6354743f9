"""Broker outages: the Kafka edges wait, report, reconnect, and lose or double nothing.

These tests start their own broker (not the session's) and kill it by PID mid-test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.kafka_io import DeadLetterSink, Source, open_dead_letters, open_source
from driftwarden.daemon.kafka_outage import DeadLettersPending, StoppedWaiting
from driftwarden.daemon.pipeline import Message
from tests.broker.kafka import KafkaBroker, free_port

pytestmark = pytest.mark.kafka
OUTAGE_SECONDS = 40.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own (started by the test), stopped by PID whatever happens."""
    own = KafkaBroker(tmp_path / "kafka")
    try:
        yield own
    finally:
        own.stop()


def _settings(bootstrap: str, suffix: str, client: str) -> KafkaSettings:
    return KafkaSettings(
        client=client, bootstrap_servers=bootstrap, group_id=f"outage-{suffix}", predictions_topic=f"predictions-{suffix}",
        outcomes_topic=f"outcomes-{suffix}", dead_letter_topic=f"dlq-{suffix}",
        poll_timeout="200ms", session_timeout="6s",
    )


def _create_topics(bootstrap: str, settings: KafkaSettings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(settings.predictions_topic, 2, 1), NewTopic(settings.outcomes_topic, 1, 1)])
    finally:
        admin.close()


def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    try:
        for i in range(first, first + count):
            producer.send(topic, key=f"model-{i % 2}".encode(), value=f'{{"i": {i}}}'.encode(), partition=i % 2)
        producer.flush()
    finally:
        producer.close()


class Consumed:
    """What the daemon would do with each batch: count it, dead-letter every 10th event, checkpoint."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.offsets: Counter[tuple[str, int, int]] = Counter()
        self.stored: dict[tuple[str, int], int] = {}  # the "SQLite checkpoint": next offsets
        self.letters_sent: list[bytes] = []

    def take(self, batch: list[Message], letters: DeadLetterSink) -> None:
        for m in batch:
            assert m.value is not None
            self.values.append(m.value)
            self.offsets[(m.topic, m.partition, m.offset)] += 1
            self.stored[(m.topic, m.partition)] = m.offset + 1
            if int(m.value[6:-1]) % 10 == 0:
                letters.send(m, "every tenth")
                self.letters_sent.append(m.value)


def _committed(bootstrap: str, group: str, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {(t, p): consumer.committed(TopicPartition(t, p)) for t, p in keys}
    finally:
        consumer.close()


def _read_values(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    end = consumer.end_offsets([tp])[tp]
    out: list[bytes] = []
    try:
        while consumer.position(tp) < end:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(r.value for r in records)
    finally:
        consumer.close()
    return out


def test_an_outage_of_40_seconds_loses_and_doubles_nothing(broker: KafkaBroker, kafka_client: str) -> None:
    broker.start()
    suffix = uuid.uuid4().hex[:8]
    settings = _settings(broker.bootstrap, suffix, kafka_client)
    _create_topics(broker.bootstrap, settings)
    _produce(broker.bootstrap, settings.predictions_topic, 0, 500)
    seen = Consumed()
    source = open_source(settings, stored_offsets=lambda: dict(seen.stored), on_revoke=lambda: None)
    letters = open_dead_letters(settings, flush_timeout=1.0)
    try:
        deadline = time.monotonic() + 60
        while len(seen.values) < 500 and time.monotonic() < deadline:
            seen.take(source.poll(), letters)
        letters.flush()
        source.commit(seen.stored)
        assert len(seen.values) == 500 and source.problem is None and source.uncommitted == {}

        broker.kill()
        down_since = time.monotonic()
        outage_letters = [Message(settings.predictions_topic, 9, 1000 + i, b"k", f"outage {i}".encode()) for i in range(5)]
        flushes_refused = 0
        while time.monotonic() - down_since < OUTAGE_SECONDS:  # nothing here may raise but flush's signal
            assert source.poll() == []
            if outage_letters:
                letter = outage_letters.pop()
                letters.send(letter, "during the outage")
                seen.letters_sent.append(letter.value or b"")
            try:
                letters.flush()
            except DeadLettersPending:
                flushes_refused += 1
            source.commit(seen.stored)
            assert source.lag() == {}
        assert flushes_refused > 0 and letters.pending == 5
        assert source.problem is not None and "Kafka unreachable since" in source.problem
        assert letters.problem is not None
        assert source.uncommitted == {tp: o for tp, o in seen.stored.items()}

        broker.start()  # same ports, same data
        _produce(broker.bootstrap, settings.predictions_topic, 500, 500)
        flushed = committed = False
        deadline = time.monotonic() + 90
        while not (len(seen.values) >= 1000 and flushed and committed) and time.monotonic() < deadline:
            seen.take(source.poll(), letters)
            try:
                letters.flush()
                flushed = True
            except DeadLettersPending:
                flushed = False
            source.commit(seen.stored)
            source.lag()
            committed = source.problem is None and source.uncommitted == {}
        assert flushed and committed, (source.problem, letters.problem, source.uncommitted)
        assert letters.problem is None
        group_offsets = _committed(broker.bootstrap, settings.group_id, list(seen.stored))
    finally:
        source.close()
        letters.close()

    assert sorted(int(v[6:-1]) for v in seen.values) == list(range(1000))  # nothing lost, nothing twice
    assert max(seen.offsets.values()) == 1
    for partition in (0, 1):
        assert sorted(o for (_, p, o) in seen.offsets if p == partition) == list(range(500))
    assert group_offsets == seen.stored
    assert sorted(_read_values(broker.bootstrap, settings.dead_letter_topic)) == sorted(seen.letters_sent)
    assert len(seen.letters_sent) == 100 + 5


def test_started_before_the_broker_it_waits_and_connects(broker: KafkaBroker, kafka_client: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = _settings(broker.bootstrap, suffix, kafka_client)
    built: dict[str, object] = {}

    def build() -> None:
        try:
            built["letters"] = open_dead_letters(settings)
            built["source"] = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
        except BaseException as exc:
            built["error"] = exc

    builder = threading.Thread(target=build)
    builder.start()
    builder.join(timeout=3.0)
    assert builder.is_alive() and not built  # waiting, not failed
    broker.start()
    builder.join(timeout=90)
    assert not builder.is_alive() and "error" not in built, built
    source, letters = built["source"], built["letters"]
    assert isinstance(source, Source) and isinstance(letters, DeadLetterSink)
    try:
        _create_topics(broker.bootstrap, settings)
        _produce(broker.bootstrap, settings.predictions_topic, 0, 50)
        got: list[Message] = []
        deadline = time.monotonic() + 60
        while len(got) < 50 and time.monotonic() < deadline:
            got.extend(source.poll())
        letters.send(got[0], "first")
        letters.flush()
    finally:
        source.close()
        letters.close()
    assert sorted(int((m.value or b"")[6:-1]) for m in got) == list(range(50))
    assert _read_values(broker.bootstrap, settings.dead_letter_topic) == [got[0].value]


def test_a_stop_request_ends_the_wait_for_an_absent_broker(kafka_client: str) -> None:
    settings = _settings(f"127.0.0.1:{free_port()}", "absent", kafka_client)  # nothing listens there
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(StoppedWaiting):
            open_source(settings, stored_offsets=dict, on_revoke=lambda: None, stop_event=stop)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 15  # within one bootstrap attempt (10 s) of the stop


def test_a_daemon_with_kafka_state_started_while_the_broker_is_down_waits_for_it(broker: KafkaBroker,
                                                                                  tmp_path: Path) -> None:
    """``state.backend: kafka`` asks the cluster for its topics at start-up: a broker down then is waited for.

    (A replica restarted during a broker outage exited 2 with "Unable to bootstrap".)
    """
    from driftwarden.daemon.app import App
    from driftwarden.daemon.config import load_config
    from tests.test_kafka_state import make_topics, write_config

    broker.start()
    topics = make_topics(broker.bootstrap)
    config = load_config(write_config(tmp_path / "a", broker.bootstrap, topics, f"outage-{uuid.uuid4().hex[:6]}"))
    broker.kill()
    letters = DeadLetterSink.__new__(DeadLetterSink)  # App only keeps it; nothing is dead-lettered here

    def build(stop: threading.Event, out: dict[str, object]) -> None:
        try:
            out["app"] = App(config, letters, stop_event=stop)
        except BaseException as exc:
            out["error"] = exc

    stopped: dict[str, object] = {}
    stop = threading.Event()
    builder = threading.Thread(target=build, args=(stop, stopped))
    builder.start()
    builder.join(timeout=3.0)
    assert builder.is_alive() and not stopped, stopped  # waiting, not failed
    stop.set()  # SIGTERM while waiting: the daemon exits without having connected
    builder.join(timeout=20)
    assert not builder.is_alive() and isinstance(stopped.get("error"), StoppedWaiting), stopped

    built: dict[str, object] = {}
    builder = threading.Thread(target=build, args=(threading.Event(), built))
    builder.start()
    builder.join(timeout=3.0)
    assert builder.is_alive() and not built, built
    broker.start()
    builder.join(timeout=120)
    assert not builder.is_alive() and "error" not in built, built
    app = built["app"]
    assert isinstance(app, App) and app.kafka_state is not None
    try:
        assert app.kafka_state.partition_count == 2
    finally:
        app.close()
