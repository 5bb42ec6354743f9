"""The real App and Kafka source in a thread, wired as ``driftwarden run`` wires them.

Stopped as SIGTERM stops the daemon (``stop_event``); ``stop_all`` is for fixtures, so that a
failing test leaves no consumer running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from driftwarden.alerts.notify import Notifier
from driftwarden.daemon.app import App
from driftwarden.daemon.config import load_config
from driftwarden.daemon.kafka_io import Source, open_dead_letters, open_source


class AppThread:
    """``prepare(app)`` runs before the source joins the group (e.g. to record what the app ingests)."""

    def __init__(self, config_path: Path, notifiers: dict[str, Notifier] | None = None,
                 prepare: Callable[[App], None] | None = None) -> None:
        config = load_config(config_path)
        self.dead_letters = open_dead_letters(config.kafka)
        self.app = App(config, self.dead_letters, producer=self.dead_letters.producer, notifiers=notifiers)
        if prepare is not None:
            prepare(self.app)
        self.source: Source = open_source(config.kafka, stored_offsets=self.app.stored_offsets, on_revoke=self.app.save,
                                          on_assign=self.app.assigned, on_revoked=self.app.revoked)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.app.run(self.source)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self.app.stop_event.set()
        self.thread.join(timeout=60)
        self.dead_letters.close()
        assert not self.thread.is_alive(), "the daemon thread did not stop"
        if self.error is not None:
            raise self.error


def stop_all(started: Iterable[AppThread]) -> None:
    """Stop whatever still runs (a fixture's teardown: the test may have failed half-way)."""
    for t in started:
        if t.thread.is_alive():
            t.app.stop_event.set()
            t.thread.join(timeout=60)
            t.dead_letters.close()
