"""Who owned which partition when, read from the daemons' JSON logs (``--log-format json``).

Each ``driftwarden run`` logs ``partitions assigned: [...]`` and ``partitions revoked: [...]``
(kafka-python rebalances eagerly: everything is revoked, then the new set assigned). A process
owns its last assignment until its next revocation or its death (the kill -9 or SIGTERM the test
recorded in :class:`tests.chaos.daemon_process.DaemonProcess`).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kafka.partitioner.default import murmur2

TopicPartition = tuple[str, int]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition kafka-python's (and the Java client's) default partitioner picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Span:
    instance: str
    start: int  # which start of the process (1, 2, ...)
    partitions: frozenset[TopicPartition]
    since: float  # wall clock (epoch s)
    until: float

    def owns(self, tp: TopicPartition, at: float) -> bool:
        return tp in self.partitions and self.since <= at <= self.until


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def spans(instance: str, log: Path, deaths: list[float], now: float) -> list[Span]:
    """Ownership spans of every start of one instance. ``deaths[k]``: wall time start k+1 ended."""
    out: list[Span] = []
    start = 0
    held: tuple[frozenset[TopicPartition], float] | None = None

    def end(at: float) -> None:
        nonlocal held
        if held is not None and held[0]:
            out.append(Span(instance, start, held[0], held[1], at))
        held = None

    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("===== start "):
            if start:
                end(deaths[start - 1] if start - 1 < len(deaths) else now)
            start += 1
            continue
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        message = str(doc.get("message", ""))
        for verb in ("assigned", "revoked"):
            prefix = f"partitions {verb}: "
            if message.startswith(prefix):
                at = _ts(doc["ts"])
                end(at)
                if verb == "assigned":
                    held = (frozenset(ast.literal_eval(message[len(prefix):])), at)
    if start:
        end(deaths[start - 1] if start - 1 < len(deaths) else now)
    return out


def owner_at(all_spans: list[Span], tp: TopicPartition, at: float) -> list[str]:
    return sorted({s.instance for s in all_spans if s.owns(tp, at)})


def latest_assignee(all_spans: list[Span], tp: TopicPartition, at: float) -> str | None:
    """The instance ``tp`` was last assigned to at ``at``: its owner, or while the group rebalances
    its previous owner (still finishing its revocation: checkpoint, hand-over). Anyone else
    sending for ``tp``'s models then is a fenced owner."""
    assigned = [s for s in all_spans if tp in s.partitions and s.since <= at]
    return max(assigned, key=lambda s: s.since).instance if assigned else None
