"""Through a real broker, both clients: with the record queues between client and daemon
(daemon/record_queues.py: waiting, pausing, dropping what a reassignment made stale), a backlog of
two topics is handed on every record once, in offset order."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.kafka_io import open_source
from tests.kafka_topics import topic_pair

pytestmark = pytest.mark.kafka
EVENTS = 20_000
POLL = 500  # max_poll_records (confluent-kafka pauses a partition past QUEUED_POLLS of them queued)


def test_a_backlog_of_two_topics_is_handed_on_once_in_order(kafka_bootstrap: str, kafka_client: str) -> None:
    predictions, outcomes = topic_pair(kafka_bootstrap)
    suffix = predictions.removeprefix("predictions-")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, batch_size=256 * 1024)
    start = int(time.time() * 1000) - 10 * EVENTS
    try:  # event i of both topics at the same record time, 10 ms apart; each topic written in one go
        for topic in (predictions, outcomes):
            for i in range(EVENTS):
                producer.send(topic, key=b"m", value=str(i).encode(), timestamp_ms=start + 10 * i)
        producer.flush()
    finally:
        producer.close()

    settings = KafkaSettings(
        client=kafka_client, bootstrap_servers=kafka_bootstrap, group_id=f"step-{suffix}", predictions_topic=predictions,
        outcomes_topic=outcomes, dead_letter_topic=f"dlq-{suffix}", poll_timeout="200ms", session_timeout="6s",
        max_poll_records=POLL,
    )
    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
    seen: dict[str, list[int]] = {predictions: [], outcomes: []}
    try:
        deadline = time.monotonic() + 120
        while sum(map(len, seen.values())) < 2 * EVENTS and time.monotonic() < deadline:
            polled = source.poll()
            for m in polled:
                assert m.offset == int(m.value or b"-1")
                seen[m.topic].append(m.offset)
    finally:
        source.close()
    assert seen == {predictions: list(range(EVENTS)), outcomes: list(range(EVENTS))}  # all, once, in order
    # How far one topic may still run ahead is bounded by what the client fetched of it before the
    # other topic's records came (max.partition.fetch.bytes: all 20,000 of these small records here):
    # the queues hold a topic back until the other's records arrive or a poll timeout passes.


def test_a_topic_of_small_records_does_not_run_ahead_of_one_of_large_records(
        kafka_bootstrap: str, kafka_client: str) -> None:
    """Outcomes are small and predictions large: a fetch (max.partition.fetch.bytes) holds many more of
    them, and a client that kept fetching both handed on the outcomes far ahead of their predictions
    (the join held every one of them as an early outcome). The full queue's partition is paused, so the
    other topic's records come before more of it: at every poll the two topics' records handed on so
    far stay within a few polls of each other (they share their record times)."""
    predictions, outcomes = topic_pair(kafka_bootstrap)
    suffix = predictions.removeprefix("predictions-")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, batch_size=256 * 1024)
    start = int(time.time() * 1000) - 10 * EVENTS
    large = b"x" * 600
    try:
        for i in range(EVENTS):
            producer.send(predictions, key=b"m", value=b"%d %s" % (i, large), timestamp_ms=start + 10 * i)
            producer.send(outcomes, key=b"m", value=b"%d" % i, timestamp_ms=start + 10 * i)
        producer.flush()
    finally:
        producer.close()

    settings = KafkaSettings(
        client=kafka_client, bootstrap_servers=kafka_bootstrap, group_id=f"sizes-{suffix}",
        predictions_topic=predictions, outcomes_topic=outcomes, dead_letter_topic=f"dlq-{suffix}",
        poll_timeout="1s", session_timeout="6s", max_poll_records=POLL,
    )
    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
    handed = {predictions: 0, outcomes: 0}
    lead = []  # outcomes handed on minus predictions handed on, after each poll
    try:
        deadline = time.monotonic() + 120
        while sum(handed.values()) < 2 * EVENTS and time.monotonic() < deadline:
            polled = source.poll()
            for run in polled.runs:
                handed[run.topic] += len(run.records)
            if polled:
                lead.append(handed[outcomes] - handed[predictions])
    finally:
        source.close()
    assert handed == {predictions: EVENTS, outcomes: EVENTS}
    # a lagging partition holds the others back for a poll timeout (1 s here), so what one topic may run
    # ahead is about a queue's worth (QUEUED_POLLS polls); unpaused, the outcomes ran ahead by ~15,000
    assert max(map(abs, lead)) <= 4 * POLL * 2, f"one topic ran ahead of the other by {max(map(abs, lead))}"
