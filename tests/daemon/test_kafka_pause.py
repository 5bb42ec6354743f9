"""kafka-python's source pauses a full partition; one revoked meanwhile (its IO thread rebalances) is
not its to pause any more, and must not fail the poll (kafka-python raises KeyError for it)."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from driftwarden.daemon.kafka_io import KafkaSource


def test_pausing_a_partition_revoked_meanwhile_is_nothing_to_do() -> None:
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 5), group_id=None)  # never connects
    try:
        consumer.assign([TopicPartition("predictions", 0), TopicPartition("outcomes", 0)])
        source = KafkaSource.__new__(KafkaSource)  # the client calls alone, without a broker
        source.consumer = consumer
        source._pause({("predictions", 0), ("predictions", 7)}, set())
        assert consumer.paused() == {TopicPartition("predictions", 0)}
        source._pause({("outcomes", 0)}, {("predictions", 0), ("outcomes", 9)})
        assert consumer.paused() == {TopicPartition("outcomes", 0)}
    finally:
        consumer.close()
