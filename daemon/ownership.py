"""Which partitions (and so which models) this instance owns, and the catch-up after a restore.

A model lives in one partition ``p`` of the co-partitioned source topics (its events are keyed
by its id). The rebalance callbacks note assignments and revocations here (from the consumer's
thread); the consume loop restores what was assigned before it processes any of it.

After a restore the source partitions are sought back to the lowest offset anyone still needs:
the offset of the oldest prediction still waiting for its outcome (the predictions topic is
the log of the join's waiting predictions: they are not written to the changelog again).
:class:`CatchUp` then sorts the re-read records: below a model's restored offsets its waiting
predictions go back into the join (the detectors saw them already) and everything else is
dropped; from there on, records are processed as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from driftwarden.daemon.pipeline import Message

TopicPartition = tuple[str, int]


@dataclass
class Resume:
    """How one restored source partition is read again: skip what its state already holds."""

    floor: int  # everything below was processed by the previous owner (the partition marker's offset)
    models: dict[str, int] = field(default_factory=dict)  # model -> its state reflects offsets below this
    waiting: dict[str, set[str]] = field(default_factory=dict)  # model -> prediction ids still waiting

    @property
    def end(self) -> int:
        """From here on, nothing is skipped."""
        return max([self.floor, *self.models.values()])


class CatchUp:
    """Sorts re-read records after a restore into "back into the join", "skip" and "process"."""

    def __init__(self, predictions_topic: str) -> None:
        self.predictions_topic = predictions_topic
        self.resume: dict[TopicPartition, Resume] = {}

    def start(self, tp: TopicPartition, resume: Resume) -> None:
        self.resume[tp] = resume

    def stop(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.resume.pop(tp, None)

    def split(self, batch: Sequence[Message], waiting_id: PredictionId) -> tuple[list[Message], list[Message]]:
        """(records to put back into the join unprocessed, records to process)."""
        if not self.resume:
            return [], list(batch)
        rejoin: list[Message] = []
        live: list[Message] = []
        for m in batch:
            resume = self.resume.get((m.topic, m.partition))
            if resume is None:
                live.append(m)
                continue
            model = m.key.decode("utf-8", "replace") if m.key is not None else None
            upto = resume.models.get(model, resume.floor) if model is not None else resume.floor
            if m.offset >= upto:
                live.append(m)
            elif m.topic == self.predictions_topic and model in resume.waiting:
                pid = waiting_id(m.value)
                if pid is not None and pid in resume.waiting[model]:
                    rejoin.append(m)
        for tp in {(m.topic, m.partition) for m in batch}:
            resume = self.resume.get(tp)
            last = max(m.offset for m in batch if (m.topic, m.partition) == tp)
            if resume is not None and last + 1 >= resume.end:
                del self.resume[tp]  # caught up
        return rejoin, live


class PredictionId:
    """Reads only ``prediction_id`` from an event's JSON (the rest is skipped by the decoder)."""

    def __init__(self) -> None:
        import msgspec

        class _Id(msgspec.Struct):
            prediction_id: str | int | None = None
            model_id: str | None = None

        self._decode = msgspec.json.Decoder(_Id).decode
        self._error = msgspec.DecodeError

    def __call__(self, value: bytes | None) -> str | None:
        return self.ids(value)[0]

    def ids(self, value: bytes | None) -> tuple[str | None, str | None]:
        """(prediction id, model id) of an event's JSON; None for what it lacks or cannot be read."""
        if value is None:
            return None, None
        try:
            ids = self._decode(value)
        except (self._error, UnicodeDecodeError, RecursionError):  # RecursionError: nesting no decoder recurses into
            return None, None
        return (None if ids.prediction_id is None else str(ids.prediction_id)), ids.model_id


class Ownership:
    """Partitions assigned to this instance, the models seen in each, and each partition's epoch.

    ``assigned``/``revoked`` come from the consumer's rebalance callbacks (any thread);
    ``take_assigned`` is called by the consume loop, which restores those partitions first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._to_restore: set[int] = set()
        self.partitions: set[int] = set()  # restored and owned
        self.epochs: dict[int, int] = {}
        self.partition_of: dict[str, int] = {}  # model -> partition its events come from
        self.generation = -1
        self.misplaced: set[tuple[str, int]] = set()  # (model, partition) seen outside its partition: logged once

    def assigned(self, partitions: Iterable[int], generation: int = -1) -> None:
        with self._lock:
            self._to_restore |= set(partitions) - self.partitions
            self.generation = generation

    def revoked(self, partitions: Iterable[int]) -> set[str]:
        """Forget ``partitions``; the models that lived there (no longer ours)."""
        gone = set(partitions)
        with self._lock:
            self._to_restore -= gone
            self.partitions -= gone
            for p in gone:
                self.epochs.pop(p, None)
            return {m for m, p in self.partition_of.items() if p in gone}

    def take_assigned(self) -> set[int]:
        with self._lock:
            todo, self._to_restore = self._to_restore, set()
            return todo

    def retry(self, partitions: Iterable[int]) -> None:
        """Partitions whose restore failed (the broker away): the next ``take_assigned`` gives them again."""
        with self._lock:
            self._to_restore |= set(partitions) - self.partitions

    @property
    def restoring(self) -> bool:
        with self._lock:
            return bool(self._to_restore)

    def owns(self, model_id: str) -> bool:
        p = self.partition_of.get(model_id)
        return p is not None and p in self.partitions

    def owned_models(self) -> set[str]:
        return {m for m, p in self.partition_of.items() if p in self.partitions}

    def note(self, model_id: str, partition: int) -> bool:
        """Record where ``model_id``'s events come from; False when it was seen in another partition."""
        held = self.partition_of.setdefault(model_id, partition)
        return held == partition
