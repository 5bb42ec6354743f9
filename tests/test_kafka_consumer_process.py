"""kafka-python's consumer in its own process (daemon/consumer_process.py), against a real broker: its
records, logs and callbacks reach the daemon in order; its life ends with the daemon's, whichever way
the daemon goes; a consumer process that dies is an error of the daemon's poll, not a silent stall.

(Every Kafka test with ``kafka_client`` kafka-python runs through it too: it is the default.)"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.consumer_process import ConsumerProcessFailed, ProcessSource
from driftwarden.daemon.kafka_io import Source, open_source
from tests.kafka_topics import topic_pair

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[1]


def _settings(bootstrap: str, topics: tuple[str, str], **overrides: object) -> KafkaSettings:
    fields: dict[str, object] = dict(
        bootstrap_servers=bootstrap, group_id=f"process-{uuid.uuid4().hex[:8]}", predictions_topic=topics[0],
        outcomes_topic=topics[1], dead_letter_topic=f"dlq-{topics[0]}", poll_timeout="200ms", session_timeout="6s",
        max_poll_records=100,
    )
    fields.update(overrides)
    return KafkaSettings(**fields)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by whoever adopted it, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _assigned(source: Source) -> None:
    """Poll until the source holds partitions (its group's first assignment)."""
    deadline = time.monotonic() + 60
    while not source.assigned() and time.monotonic() < deadline:
        source.poll()


def _member(bootstrap: str, topics: tuple[str, str], group: str) -> KafkaConsumer:
    """A second member of ``group`` (it joins at its first poll)."""
    return KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=6000,
                         heartbeat_interval_ms=1500)


def test_records_logs_and_callbacks_come_in_order_and_a_seek_drops_what_was_read_before(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture,
) -> None:
    topics = topic_pair(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for i in range(1000):
            producer.send(topics[0], key=b"m", value=b"%d" % i)
        producer.flush()
    finally:
        producer.close()
    calls: list[str] = []
    caplog.set_level(logging.INFO, logger="driftwarden")
    source = open_source(_settings(kafka_bootstrap, topics), stored_offsets=lambda: calls.append("stored") or {},
                         on_revoke=lambda: calls.append("revoke"))
    assert isinstance(source, ProcessSource)
    try:
        seen: list[int] = []
        deadline = time.monotonic() + 60
        while len(seen) < 300 and time.monotonic() < deadline:
            polled = source.poll()
            seen.extend(m.offset for m in polled)
            assert [int(m.value or b"") for m in polled] == [m.offset for m in polled]
        assert seen == list(range(len(seen))) and len(seen) >= 300
        assert "stored" in calls  # the assignment asked the daemon for its checkpoint's offsets
        assert source.assigned() == {(topics[0], 0), (topics[1], 0)}
        # the child logged its assignment: the record came through the pipe to the daemon's logger
        assert any(r.name == "driftwarden.daemon.kafka_io" and "partitions assigned" in r.getMessage()
                   for r in caplog.records)

        source.seek({(topics[0], 0): 900})  # what the child read ahead of 900 is not handed on
        after: list[int] = []
        deadline = time.monotonic() + 60
        while len(after) < 100 and time.monotonic() < deadline:
            after.extend(m.offset for m in source.poll())
        assert after == list(range(900, 1000))
        assert source.lag() == {(topics[0], 0): 0, (topics[1], 0): 0}
        source.commit({(topics[0], 0): 1000})
        assert source.uncommitted == {} and source.problem is None
    finally:
        source.close()
    assert source.process.poll() is not None  # stopped by close, by its PID if need be


def test_a_second_thread_using_the_source_gets_an_error_not_half_a_message(kafka_bootstrap: str) -> None:
    """The child's pipe takes one reader: a call from another thread while the loop polls is refused
    with an error naming the rule (two readers split a pickle: UnpicklingError, or worse, a wrong
    batch); assigned() stays for any thread, and the source is the other thread's once the loop let go."""
    topics = topic_pair(kafka_bootstrap)
    source = open_source(_settings(kafka_bootstrap, topics, poll_timeout="3s"), stored_offsets=dict,
                         on_revoke=lambda: None)
    assert isinstance(source, ProcessSource)
    try:
        polls: list[int] = []
        loop = threading.Thread(target=lambda: polls.append(len(source.poll())), name="loop")
        loop.start()
        deadline = time.monotonic() + 10
        while source._user is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source._user == loop.ident
        with pytest.raises(RuntimeError, match=r"ProcessSource\.lag called from thread MainThread while another "
                                               r"thread .* it is its loop's alone"):
            source.lag()
        with pytest.raises(RuntimeError, match=r"ProcessSource\.commit called"):
            source.commit({(topics[0], 0): 0})
        source.assigned()
        loop.join(timeout=30)
        assert polls == [0] and source._user is None
        assert source.lag() is not None  # the loop is done with it: this thread may
    finally:
        source.close()


def test_the_consumer_process_goes_when_the_daemon_is_killed(kafka_bootstrap: str, tmp_path: Path) -> None:
    """kill -9 of the daemon: its consumer process exits by itself (it must not hold partitions as an orphan)."""
    topics = topic_pair(kafka_bootstrap)
    script = tmp_path / "daemon.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from driftwarden.daemon.config import KafkaSettings
        from driftwarden.daemon.kafka_io import open_source
        settings = KafkaSettings(bootstrap_servers={kafka_bootstrap!r}, group_id="killed-{topics[0]}",
                                 predictions_topic={topics[0]!r}, outcomes_topic={topics[1]!r}, poll_timeout="200ms")
        source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
        print(source.process.pid, flush=True)
        while True:
            source.poll()
    """))
    daemon = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = None
    try:
        assert daemon.stdout is not None
        child = int(daemon.stdout.readline())
        time.sleep(2)  # polling: it has joined the group
        assert _alive(child)
        daemon.kill()
        daemon.wait(timeout=10)
        assert _wait_gone(child, 15), "the consumer process outlived the daemon"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
        if daemon.stdout is not None:
            daemon.stdout.close()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_consumer_process_that_dies_is_an_error_of_poll(kafka_bootstrap: str) -> None:
    topics = topic_pair(kafka_bootstrap)
    source = open_source(_settings(kafka_bootstrap, topics), stored_offsets=dict, on_revoke=lambda: None)
    assert isinstance(source, ProcessSource)
    try:
        source.poll()
        source.process.send_signal(signal.SIGINT)  # Ctrl-C reaches the whole process group: ignored
        source.process.send_signal(signal.SIGTERM)  # systemd signals every process of the unit: ignored
        time.sleep(0.5)
        assert source.process.poll() is None
        source.poll()
        source.process.kill()
        source.process.wait(timeout=10)
        with pytest.raises(ConsumerProcessFailed, match=r"exited \(code -9\)"):
            for _ in range(20):
                source.poll()
    finally:
        source.close()


def test_a_seek_is_answered_while_a_rebalance_callback_waits_for_the_daemon(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python calls the rebalance callbacks on its IO thread, and the child's poll waits for that
    thread: while a revocation waits for the daemon's answer, the child's loop reads no call. The
    kafka backend's restore ends with a seek: the daemon answers the callback while it waits for the
    seek's answer. (The chaos run's rolling restart hung there: "did not answer seek in 120 s".)"""
    monkeypatch.setattr("driftwarden.daemon.consumer_process.CALL_SECONDS", 20.0)
    topics = topic_pair(kafka_bootstrap)
    calls: list[str] = []
    settings = _settings(kafka_bootstrap, topics)
    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: calls.append("revoke"),
                         on_revoked=lambda parts: calls.append(f"revoked {sorted(parts)}"))
    assert isinstance(source, ProcessSource)
    other = None
    try:
        _assigned(source)
        assert source.assigned() == {(topics[0], 0), (topics[1], 0)}
        # a second member joins: the child's IO thread revokes, then waits in the callback for the daemon,
        # which seeks (no poll) until it has answered it
        other = _member(kafka_bootstrap, topics, settings.group_id)
        joining = threading.Thread(target=lambda: other.poll(timeout_ms=15000), name="other member")
        joining.start()
        deadline = time.monotonic() + 30
        while not calls and time.monotonic() < deadline:
            started = time.monotonic()
            source.seek({(topics[0], 0): 0})
            assert time.monotonic() - started < 10, "the seek waited for the callback that waits for the daemon"
            time.sleep(0.2)
        assert calls == [f"revoked {sorted([(topics[0], 0), (topics[1], 0)])}"]
        joining.join(timeout=30)
        for _ in range(5):
            source.poll()  # the consumer goes on (the range assignor gives one member both partitions 0)
    finally:
        if other is not None:
            other.close()
        source.close()


def test_a_revocation_longer_than_the_session_timeout_keeps_the_member_in_the_group(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture, kafka_client: str,
) -> None:
    """kafka-python 3 calls the rebalance listener on its IO thread, whose event loop also sends the
    heartbeats: a callback that blocks it past ``kafka.session_timeout`` gets the member expelled (its
    JoinGroup then fails with an unknown member id and the group rebalances again), and the daemon's
    revocation checkpoints every model it releases. The consumer process waits for the daemon's answer
    as a coroutine on that loop: the heartbeats go on. librdkafka heartbeats from a thread of its own
    while the callback runs in ``poll`` (an expired session would show as partitions lost)."""
    _a_long_revocation(kafka_bootstrap, caplog, client=kafka_client)


def _a_long_revocation(kafka_bootstrap: str, caplog: pytest.LogCaptureFixture, **settings_: object) -> None:
    """A revocation callback of 9 s with a 6 s session timeout, while a second member joins: one rebalance."""
    caplog.set_level(logging.INFO, logger="kafka.coordinator")
    topics = topic_pair(kafka_bootstrap)
    settings = _settings(kafka_bootstrap, topics, session_timeout="6s", **settings_)
    calls: list[str] = []

    def checkpointing_many_models(parts: list[tuple[str, int]]) -> None:
        calls.append("revoked")
        time.sleep(9.0)

    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None, on_revoked=checkpointing_many_models,
                         on_assign=lambda parts, generation: calls.append(f"assigned {len(parts)}"))
    assert isinstance(source, ProcessSource) == (settings.client == "kafka-python" and settings.consumer_process)
    other = None
    try:
        _assigned(source)
        assert calls[-1:] == ["assigned 2"]  # (a first assignment may come before the topics' metadata: empty)
        calls.clear()
        other = _member(kafka_bootstrap, topics, settings.group_id)
        stop = threading.Event()

        def join() -> None:  # polls (and heartbeats) until told to stop
            while not stop.is_set():
                other.poll(timeout_ms=200)

        joining = threading.Thread(target=join, name="other member")
        joining.start()
        try:
            deadline = time.monotonic() + 60
            while len(calls) < 2 and time.monotonic() < deadline:
                source.poll()
            settled = time.monotonic() + 8  # an expelled member would rebalance again meanwhile
            while time.monotonic() < settled:
                source.poll()
        finally:
            stop.set()
            joining.join(timeout=10)
        expelled = [r.getMessage() for r in caplog.records if any(
            sign in r.getMessage() for sign in ("unknown member id", "session expired", "partitions lost"))]
        assert not expelled, expelled
        assert len(calls) == 2, calls
        # revoked once, then assigned again in the same rebalance (the range assignor gives partition 0 of
        # both topics to one of the two members)
        assert calls[:1] == ["revoked"] and calls[1] in ("assigned 0", "assigned 2"), calls
    finally:
        if other is not None:
            other.close()
        source.close()
