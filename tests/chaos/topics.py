"""What the broker holds, asked by the chaos and consumer-group runs to know when a run is done."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition


def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """``topic[partition]`` -> its end offset, for every partition of ``topics``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return {f"{tp.topic}[{tp.partition}]": o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
