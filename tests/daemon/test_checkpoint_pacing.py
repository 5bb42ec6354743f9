"""Periodic checkpoints are paced: the next one waits at least CHECKPOINT_PAUSE_FACTOR times the last one's duration."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwarden.daemon.app import CHECKPOINT_PAUSE_FACTOR, App
from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages


class SlowCheckpoints:
    """The app's real checkpoint; each commit advances the fake clock by ``took`` seconds (a slow disk)."""

    def __init__(self, app: App, now: list[float]) -> None:
        self.commit, self.now, self.took, self.commits = app.checkpoint.commit, now, 0.0, 0
        app.checkpoint.commit = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.commit(*args, **kwargs)
        self.now[0] += self.took
        self.commits += 1


def test_a_slow_checkpoint_stretches_the_interval_and_a_fast_one_restores_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = [START]
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["state"]["checkpoint_interval"] = "5s"
    app = demo_app(tmp_path, data, clock=lambda: now[0])
    interval = 5.0
    slow = SlowCheckpoints(app, now)
    feed = ([Message(t, 0, i, k, v)] for i, (t, k, v) in enumerate(messages(Scenario())))

    def step(seconds: float) -> int:
        """``seconds`` of wall time later, one event and the loop's timers; the commits so far."""
        now[0] += seconds
        app.handle(next(feed))
        app.housekeeping()
        return slow.commits

    sample = app.metrics.registry.get_sample_value
    try:
        assert step(interval) == 1  # the interval elapsed: a checkpoint
        slow.took = 3.0
        with caplog.at_level(logging.INFO, logger="driftwarden"):
            assert step(interval) == 2  # this one takes 3 s
        stretched = CHECKPOINT_PAUSE_FACTOR * 3.0
        assert stretched > interval
        assert [r.getMessage() for r in caplog.records if "waits" in r.getMessage()] == [
            f"checkpoint of 1 models took 3.00 s: the next one waits {stretched:.1f} s "
            f"({CHECKPOINT_PAUSE_FACTOR:g} x its duration), not state.checkpoint_interval {interval:.1f} s"]
        assert sample("driftwarden_checkpoint_seconds_count") == 2
        assert sample("driftwarden_checkpoint_seconds_sum") == 3.0
        slow.took = 0.0
        assert step(interval) == 2  # the interval is not enough now
        assert step(stretched - interval - 0.5) == 2
        assert step(0.5) == 3  # 4 x 3 s after the slow one ended
        assert step(interval - 0.5) == 3  # that one was fast: the interval again
        assert step(0.5) == 4
        # saves outside the timer (shutdown, revocation) are never held back
        slow.took = 10.0
        app.save()
        app.save()
        assert slow.commits == 6
        assert all(step(interval) == 6 for _ in itertools.repeat(None, 7))  # 7 x 5 s < 4 x 10 s
        assert step(interval) == 7
    finally:
        app.close()


class Unreachable:
    """A state changelog whose flush times out (the broker is away), as KafkaState.save raises then;
    with ``error`` None, one Kafka takes again (nothing to write)."""

    def __init__(self, error: Exception | None) -> None:
        self.error, self.saves = error, 0

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.saves += 1
        if self.error is not None:
            raise self.error

    def cache_offsets(self) -> dict[Any, int]:
        return {}

    def take_written(self) -> list[Any]:
        return []

    def status(self) -> dict[str, Any]:
        return {}


def test_a_changelog_kafka_does_not_take_defers_the_checkpoint_instead_of_stopping_the_daemon(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A revocation during a broker outage saves (state.backend: kafka): its changelog flush timed out, the
    error left the rebalance callback and `driftwarden run` exited 2 (the chaos run, 3 instances). A
    transient error now defers the checkpoint as pending dead letters do: nothing is committed."""
    from kafka.errors import KafkaTimeoutError, UnsupportedVersionError

    app = demo_app(tmp_path, yaml.safe_load(DEMO_CONFIG.read_text()))
    commits = SlowCheckpoints(app, [START])
    for i, (t, k, v) in enumerate(itertools.islice(messages(Scenario()), 200)):
        app.handle([Message(t, 0, i, k, v)])
    app.kafka_state = Unreachable(KafkaTimeoutError("Timeout waiting for future"))  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="driftwarden"):
        app.save()
        app.save()
    assert commits.commits == 0 and app.kafka_state.saves == 2  # type: ignore[attr-defined]
    deferred = "checkpoint deferred, the state changelog is not written: Kafka unreachable (KafkaTimeoutError"
    assert caplog.text.count(deferred) == 1  # once an outage, not at every try (README: broker outages)
    caplog.clear()
    app.kafka_state = Unreachable(None)  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="driftwarden"):
        app.save()
    assert commits.commits == 1 and "state changelog is not written: Kafka reachable again" in caplog.text
    commits.commits = 0
    app.kafka_state = Unreachable(UnsupportedVersionError("no"))  # type: ignore[assignment]
    with pytest.raises(UnsupportedVersionError):  # not an outage: it stops the daemon, as before
        app.save()
    app.kafka_state = None
    app.save()
    assert commits.commits == 1
    app.close()
