"""Several ``driftwarden run`` instances of one consumer group, each with a directory of its own.

The chaos suite runs one or three; ``status`` merges what their checkpoints say, per partition
and per model, the way the group as a whole answers: the furthest offset of each partition, and
each model as its most advanced checkpoint holds it (its labelled events only ever grow), with
every instance's undelivered and failed notifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.chaos.daemon_process import DaemonProcess


class Fleet:
    def __init__(self, daemons: list[DaemonProcess]) -> None:
        assert daemons and len({d.name for d in daemons}) == len(daemons)
        self.daemons = daemons

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.daemons)

    def __len__(self) -> int:
        return len(self.daemons)

    @property
    def kills(self) -> int:
        return sum(len(d.kills) for d in self.daemons)

    @property
    def starts(self) -> int:
        return sum(d.starts for d in self.daemons)

    def start(self) -> None:
        for d in self.daemons:
            d.start()

    def check(self) -> None:
        for d in self.daemons:
            d.check()

    def terminate(self) -> dict[str, int]:
        """SIGTERM each in turn: name -> exit code."""
        return {d.name: d.terminate() for d in self.daemons}

    def stop(self) -> None:
        for d in self.daemons:
            d.stop()

    def tail(self) -> str:
        return "\n".join(f"--- {d.name}\n{d.tail()}" for d in self.daemons)

    def status(self, read: Callable[[DaemonProcess], dict[str, Any]]) -> dict[str, Any]:
        """``read(d)`` of every instance (``status_cmd.collect`` or the ``status`` CLI), merged."""
        return merge_status([read(d) for d in self.daemons])


def merge_status(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    checkpointed = [s for s in statuses if s.get("checkpointed")]
    if not checkpointed:
        return {"checkpointed": False, "offsets": {}, "models": {}, "alerts": [], "undelivered": [], "failed": []}
    offsets: dict[str, int] = {}
    models: dict[str, dict[str, Any]] = {}
    for s in checkpointed:
        for tp, o in s.get("offsets", {}).items():
            offsets[tp] = max(o, offsets.get(tp, o))
        for m, state in s.get("models", {}).items():
            if state.get("labelled_samples", 0) >= models.get(m, {}).get("labelled_samples", -1):
                models[m] = state
    return {
        "checkpointed": True,
        "offsets": offsets,
        "models": models,
        "alerts": [a for s in checkpointed for a in s.get("alerts", [])],
        "undelivered": [e for s in checkpointed for e in s.get("undelivered", [])],
        "failed": [e for s in checkpointed for e in s.get("failed", [])],
    }
