"""Several ``driftwarden run`` instances of one consumer group, each with a directory of its own.

The chaos suite runs one or three; ``status`` merges what their checkpoints say, per partition
and per model, the way the group as a whole answers: the furthest offset of each partition, and
each model as its most advanced checkpoint holds it (its labelled events only ever grow), with
every instance's undelivered and failed notifications.

With ``state.backend: kafka`` an instance's outbox may keep entries of a model it lost to a kill
-9: fenced copies that it never sends (the model's new owner restored them from the changelog).
:meth:`Fleet.undelivered` tells them apart: ``owned`` entries must go out, ``fenced`` ones must
have gone out from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftwarden.alerts.outbox import Outbox, model_of
from driftwarden.daemon.app import outbox_path
from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.config import load_config
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

    def undelivered(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(owned, fenced): per instance, the idempotency keys of its undelivered notifications of
        models it owns (all of them with one SQLite state), and of models it does not own."""
        owned_keys: dict[str, list[str]] = {}
        fenced_keys: dict[str, list[str]] = {}
        for d in self.daemons:
            config = load_config(str(d.config), check_files=False)
            state_path = config.resolve(config.state.path)
            if not state_path.exists():
                continue
            owned: set[str] | None = None
            if config.state.backend == "kafka":
                checkpoint = Checkpoint(state_path)
                try:
                    owned = set((checkpoint.meta("ownership") or {}).get("models") or {})
                finally:
                    checkpoint.close()
            outbox = Outbox(str(outbox_path(config)))
            try:
                waiting = [e for e in outbox.entries() if e.delivered_at is None and e.failed_at is None]
            finally:
                outbox.close()
            for e in waiting:
                model = model_of(e.payload)
                mine = owned is None or model is None or model in owned
                (owned_keys if mine else fenced_keys).setdefault(d.name, []).append(e.key)
        return owned_keys, fenced_keys

    def status(self, read: Callable[[DaemonProcess], dict[str, Any]]) -> dict[str, Any]:
        """``read(d)`` of every instance (``status_cmd.collect`` or the ``status`` CLI), merged."""
        return merge_status([read(d) for d in self.daemons])


def merge_status(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    """With ``state.backend: kafka`` the offsets and labelled counts are also read from the changelog
    (``group``): an instance that released its partitions (SIGTERM) keeps none in its SQLite cache."""
    checkpointed = [s for s in statuses if s.get("checkpointed")]
    if not checkpointed:
        return {"checkpointed": False, "offsets": {}, "models": {}, "alerts": [], "undelivered": [], "failed": []}
    offsets: dict[str, int] = {}
    models: dict[str, dict[str, Any]] = {}
    changelog_offsets = [part.get("offsets") or {} for s in statuses
                         for part in ((s.get("group") or {}).get("partitions") or {}).values()]
    for s in checkpointed:
        for tp, o in [*s.get("offsets", {}).items(), *(kv for marker in changelog_offsets for kv in marker.items())]:
            offsets[tp] = max(o, offsets.get(tp, o))
        for m, state in s.get("models", {}).items():
            if state.get("labelled_samples", 0) >= models.get(m, {}).get("labelled_samples", -1):
                models[m] = state
    # a model whose last owner released it at SIGTERM may be in no instance's cache: its changelog record says
    for s in statuses:
        for part in ((s.get("group") or {}).get("partitions") or {}).values():
            for m, record in (part.get("models") or {}).items():
                labelled = record.get("labelled_samples") or 0
                if labelled > models.get(m, {}).get("labelled_samples", -1):
                    models[m] = {**models.get(m, {}), "labelled_samples": labelled}
    return {
        "checkpointed": True,
        "offsets": offsets,
        "models": models,
        "alerts": [a for s in checkpointed for a in s.get("alerts", [])],
        "undelivered": [e for s in checkpointed for e in s.get("undelivered", [])],
        "failed": [e for s in checkpointed for e in s.get("failed", [])],
    }
