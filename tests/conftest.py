from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from driftwarden.daemon.cli import single_threaded_numerics
from tests.broker.kafka import kafka_broker

single_threaded_numerics()  # as the daemon runs (and OpenBLAS threads only slow small products on CI)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka broker for the session: ``DRIFTWARDEN_TEST_BOOTSTRAP`` or one we start (and stop)."""
    with kafka_broker() as (bootstrap, _):
        yield bootstrap


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def kafka_client(request: pytest.FixtureRequest) -> str:
    """``kafka.client``: the Kafka tests run against both clients (the same semantics, proven)."""
    if request.param == "confluent-kafka":
        pytest.importorskip("confluent_kafka", reason="the confluent extra: pip install 'driftwarden[confluent]'")
    return str(request.param)


@pytest.fixture
def app_threads() -> Iterator[list[Any]]:
    """The AppThreads a test starts (``tests/app_thread.py``), stopped even when the test fails."""
    from tests.app_thread import stop_all

    started: list[Any] = []
    try:
        yield started
    finally:
        stop_all(started)
