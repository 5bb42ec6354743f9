"""Every compression codec Kafka has, consumed by KafkaSource and produced by the dead-letter producer."""

from __future__ import annotations

import time
import uuid

import kafka.codec
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.config import KafkaSettings
from driftwarden.daemon.kafka_io import Compression, open_dead_letters, open_source
from driftwarden.daemon.pipeline import Message

CODECS: list[Compression] = ["gzip", "snappy", "lz4", "zstd"]


def test_kafka_python_finds_a_library_for_every_codec() -> None:
    assert kafka.codec.has_gzip()
    assert kafka.codec.has_snappy(), "python-snappy is a dependency: pip install python-snappy"
    assert kafka.codec.has_lz4(), "lz4 is a dependency: pip install lz4"
    assert kafka.codec.has_zstd(), "zstandard is a dependency: pip install zstandard"


def _payload(codec: str, i: int) -> bytes:
    # compressible and distinct: a codec that mangled or dropped one record shows
    return f'{{"model_id": "m", "codec": "{codec}", "i": {i}, "pad": "{"x" * (i % 300)}"}}'.encode()


@pytest.mark.kafka
def test_compressed_topics_are_consumed_and_dead_letters_compressed(kafka_bootstrap: str, kafka_client: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    predictions, outcomes, dlq = f"predictions-{suffix}", f"outcomes-{suffix}", f"dlq-{suffix}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in (predictions, outcomes)])
    finally:
        admin.close()
    per_codec = 200
    expected: list[tuple[bytes, bytes]] = []
    for codec in CODECS:  # one producer per codec, all into one partition: batches of every codec in a row
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type=codec, linger_ms=20)
        try:
            for i in range(per_codec):
                expected.append((codec.encode(), _payload(codec, i)))
                producer.send(predictions, key=codec.encode(), value=_payload(codec, i))
            producer.flush()
        finally:
            producer.close()

    settings = KafkaSettings(
        client=kafka_client, bootstrap_servers=kafka_bootstrap, group_id=f"codecs-{suffix}", predictions_topic=predictions,
        outcomes_topic=outcomes, dead_letter_topic=dlq, poll_timeout="200ms", session_timeout="6s",
    )
    source = open_source(settings, stored_offsets=dict, on_revoke=lambda: None)
    got: list[Message] = []
    try:
        deadline = time.monotonic() + 60
        while len(got) < len(expected) and time.monotonic() < deadline:
            got.extend(source.poll())
    finally:
        source.close()
    assert [(m.key, m.value) for m in got] == expected
    assert [m.offset for m in got] == list(range(len(expected)))

    for codec in CODECS:  # each codec's producer writes the dead letters (one topic per codec)
        letters = open_dead_letters(
            KafkaSettings(client=kafka_client, bootstrap_servers=kafka_bootstrap, dead_letter_topic=f"{dlq}-{codec}"),
            compression_type=codec,
        )
        try:
            sent = [m for m in got if m.key == codec.encode()]
            for m in sent:
                letters.send(m, f"test {codec}")
            letters.flush()
            assert letters.pending == 0
        finally:
            letters.close()
        assert _read_all(kafka_bootstrap, f"{dlq}-{codec}", len(sent)) == [
            (m.key, m.value, f"test {codec}".encode(), str(m.offset).encode()) for m in sent
        ]


def _read_all(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes | None, bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    h = dict(r.headers)
                    out.append((r.key, r.value, h["driftwarden.reason"], h["driftwarden.offset"]))
    finally:
        consumer.close()
    return out


@pytest.mark.kafka
def test_a_tombstone_is_dead_lettered_with_a_null_value(kafka_bootstrap: str, kafka_client: str) -> None:
    topic = f"dlq-tombstone-{uuid.uuid4().hex[:8]}"
    letters = open_dead_letters(KafkaSettings(client=kafka_client, bootstrap_servers=kafka_bootstrap, dead_letter_topic=topic))
    try:
        letters.send(Message("predictions", 0, 7, b"churn", None), "null value")
        letters.send(Message("predictions", 0, 8, b"churn", b""), "empty value")
        letters.flush()
    finally:
        letters.close()
    assert _read_all(kafka_bootstrap, topic, 2) == [
        (b"churn", None, b"null value", b"7"),
        (b"churn", b"", b"empty value", b"8"),
    ]
