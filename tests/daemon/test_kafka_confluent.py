"""The confluent-kafka backend's pieces that need no broker: option mapping, error verdicts, the
choice of client. Its behaviour against a broker is proven by the Kafka tests, run for both clients."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import msgspec
import pytest

from driftwarden.alerts.redact import known_secrets
from driftwarden.daemon.config import ConfigError, KafkaSettings, parse_config
from driftwarden.daemon.kafka_outage import is_transient

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError  # noqa: E402

from driftwarden.daemon.kafka_confluent import LibrdkafkaError, confluent_options  # noqa: E402


def test_security_settings_map_to_librdkafka_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_TEST_KAFKA_PASSWORD", "s3cret-confluent")
    settings = KafkaSettings(
        bootstrap_servers="k1:9093,k2:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
        sasl_username="driftwarden", sasl_password_env="DW_TEST_KAFKA_PASSWORD", ssl_cafile="/etc/kafka/ca.pem",
    )
    options = confluent_options(settings)
    assert {k: options[k] for k in ("bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.username",
                                    "sasl.password", "ssl.ca.location")} == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "driftwarden", "sasl.password": "s3cret-confluent", "ssl.ca.location": "/etc/kafka/ca.pem",
    }
    assert "s3cret-confluent" in known_secrets()  # redacted from logs and stored errors
    # librdkafka takes them (but the CA file, which it reads at once: none here)
    confluent_kafka.Producer({k: v for k, v in options.items() if k != "ssl.ca.location"}).flush(0)


def test_plaintext_has_no_security_options_and_a_missing_password_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    options = confluent_options(KafkaSettings())
    assert options["security.protocol"] == "plaintext"
    assert not [k for k in options if k.startswith(("sasl.", "ssl."))]
    monkeypatch.delenv("DW_TEST_ABSENT", raising=False)
    with pytest.raises(RuntimeError, match=r"kafka\.sasl_password_env: environment variable DW_TEST_ABSENT is not set"):
        confluent_options(KafkaSettings(sasl_mechanism="PLAIN", sasl_username="u", sasl_password_env="DW_TEST_ABSENT"))


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (KafkaError._TRANSPORT, True),
        (KafkaError._ALL_BROKERS_DOWN, True),
        (KafkaError._TIMED_OUT, True),
        (KafkaError.COORDINATOR_NOT_AVAILABLE, True),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
        (KafkaError.SASL_AUTHENTICATION_FAILED, False),
        (KafkaError.INVALID_REPLICATION_FACTOR, False),
    ],
)
def test_librdkafka_errors_are_outages_only_when_a_broker_coming_back_cures_them(code: int, transient: bool) -> None:
    error = LibrdkafkaError(KafkaError(code))
    assert error.retriable is transient
    assert is_transient(error) is transient


def test_the_client_is_chosen_by_config_and_a_missing_library_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "r.parquet").write_bytes(b"")
    models = [{"id": "m", "task": "binary", "reference": "r.parquet", "features": {"x": {"type": "numeric"}}}]
    assert parse_config({"models": models}, base_dir=str(tmp_path)).kafka.client == "kafka-python"
    settings = parse_config({"models": models, "kafka": {"client": "confluent-kafka"}}, base_dir=str(tmp_path)).kafka
    assert settings.client == "confluent-kafka"
    with pytest.raises(ConfigError, match=r"kafka\.client"):
        parse_config({"models": models, "kafka": {"client": "librdkafka"}}, base_dir=str(tmp_path))

    import driftwarden.daemon as daemon
    from driftwarden.daemon import kafka_io

    monkeypatch.setitem(sys.modules, "driftwarden.daemon.kafka_confluent", None)  # as if confluent-kafka were not installed
    monkeypatch.delattr(daemon, "kafka_confluent")
    stop = threading.Event()
    stop.set()  # were it imported after all, no waiting for a broker
    with pytest.raises(ConfigError, match=r"pip install 'driftwarden\[confluent\]'"):
        kafka_io.open_source(settings, stored_offsets=dict, on_revoke=lambda: None, stop_event=stop)


def test_the_broker_holds_an_empty_fetch_for_kafka_fetch_max_wait() -> None:
    # one fetch at a time per broker: during a catch-up, each fetch of the backlog also waited this long
    # on the caught-up topic (librdkafka's default 500 ms; bench/kafka_run.py measures the difference)
    from driftwarden.daemon.kafka_confluent import consumer_config

    assert consumer_config(KafkaSettings())["fetch.wait.max.ms"] == 100
    settings = msgspec.convert({"fetch_max_wait": "1s"}, KafkaSettings)  # as the config file gives it
    assert consumer_config(settings)["fetch.wait.max.ms"] == 1000
