"""What the consume loop's preparation leaves behind: a compiled KS kernel, frozen start-up objects,
and a young generation collected rarely (App.handle allocates ~10^5 short-lived containers a poll)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwarden.daemon.app import GC_YOUNG_THRESHOLD, prepare_loop
from driftwarden.daemon.demo import demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import Scenario, messages


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_after_prepare_loop_a_poll_runs_with_few_collections(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    stream = [Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(messages(Scenario(events=6000, label_delay=50)))]
    prepare_loop()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD and gc.get_freeze_count() > 0
    before = gc.get_stats()[0]["collections"]
    for i in range(0, len(stream), 4000):
        app.handle(stream[i:i + 4000])
    young = gc.get_stats()[0]["collections"] - before
    app.close()
    assert young <= 10  # Python's default threshold (700) collected 72 times here
