"""The ``kafka`` block of the config and the duration parser: what a Kafka client needs, without the
rest of the config (its detectors' and reports' settings import numpy and pyarrow). The consumer
process (daemon/consumer_process.py) imports this alone; ``daemon/config.py`` re-exports both."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from driftwarden.alerts.settings import Duration, seconds


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"4h"``, ``"7d"``: the ``alerting`` block's parser
    (:func:`alerts.settings.seconds`), which also takes a bare number written as a string.

    >>> parse_duration("5m"), parse_duration(12), parse_duration("1.5h"), parse_duration("30")
    (300.0, 12.0, 5400.0, 30.0)
    """
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    try:
        return seconds(value)
    except ValueError as exc:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 4h, 7d)") from exc


_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


class KafkaSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # the client library: kafka-python (pure Python, the default) or confluent-kafka (librdkafka,
    # the `confluent` extra: ~5x the consume rate); the same semantics either way
    client: Literal["kafka-python", "confluent-kafka"] = "kafka-python"
    # kafka-python only: its consumer runs in a child process, parsing the next poll on another core
    # while the daemon handles this one (daemon/consumer_process.py); false: in the daemon's process
    consumer_process: bool = True
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "driftwarden"
    predictions_topic: str = "predictions"
    outcomes_topic: str = "outcomes"
    dead_letter_topic: str = "driftwarden-dead-letter"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = 5000
    poll_timeout: Duration = "1s"
    # how long the broker may hold a fetch that found no new records (the clients' default is 500 ms).
    # A client sends one fetch at a time per broker, and leaves out a partition it still has records of:
    # catching up one topic while the other is caught up, each fetch waited this long on the caught-up
    # one, and the backlog with it (100k predictions + outcomes: 1.1-1.4x the loop's rate at 100 ms; bench/README.md)
    fetch_max_wait: Duration = "100ms"
    session_timeout: Duration = "10s"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = None
    ssl_cafile: str | None = None
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None  # of what we produce (dead letters, alerts)
