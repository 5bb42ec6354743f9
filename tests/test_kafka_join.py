"""Through a real broker: a consumer that polls with a short timeout (or none, as the daemon does
while records wait) still joins its group and gets its records.

kafka-python 3.0.12 sends a new JoinGroup when the previous join finished between two polls
(``join_group_async`` replaces a done ``_join_task`` without reading it): with joins slower than the
poll timeout the member never joined (a probe: 5 ms and 0 ms polls, nothing in 20 s). The source
polls long enough for a join while one is due (``JOIN_POLL_SECONDS`` in daemon/kafka_io.py).
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.kafka_io import open_source
from tests.kafka_topics import topic_pair

pytestmark = pytest.mark.kafka
EVENTS = 10


@pytest.mark.parametrize("poll_timeout", ["0ms", "5ms"])
@pytest.mark.parametrize("consumer_process", [False, True], ids=["in-process", "consumer-process"])
def test_a_short_poll_timeout_still_joins_the_group(kafka_bootstrap: str, poll_timeout: str,
                                                    consumer_process: bool) -> None:
    predictions, outcomes = topic_pair(kafka_bootstrap)
    suffix = predictions.removeprefix("predictions-")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for topic in (predictions, outcomes):
            for i in range(EVENTS):
                producer.send(topic, key=b"m", value=str(i).encode())
        producer.flush()
    finally:
        producer.close()

    settings = KafkaSettings(
        client="kafka-python", consumer_process=consumer_process, bootstrap_servers=kafka_bootstrap,
        group_id=f"join-{suffix}", predictions_topic=predictions, outcomes_topic=outcomes,
        dead_letter_topic=f"dlq-{suffix}", poll_timeout=poll_timeout, session_timeout="6s",
    )
    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
    seen = 0
    try:
        deadline = time.monotonic() + 30
        while seen < 2 * EVENTS and time.monotonic() < deadline:
            seen += len(source.poll())
            time.sleep(0.001)
    finally:
        source.close()
    assert seen == 2 * EVENTS
