"""``state.backend: kafka``: each model's state follows its partition through the changelog.

Commit order of a checkpoint (as :mod:`daemon.checkpoint`, with one step more):

1. flush outputs (dead letters),
2. write the changed models' records and each partition's marker to the changelog, flush,
3. the SQLite cache (for ``driftwarden status``) and the group's offsets (for lag dashboards).

On assignment, before the first batch of a partition is processed: read its changelog
partition to the end, load its models, claim the partition under a new epoch, seek the source
partitions back to the oldest offset still needed and let :class:`daemon.ownership.CatchUp`
put the waiting predictions back into the join. On revocation: fence the partition's models
(no notification of theirs leaves from here any more), checkpoint them with their undelivered
notifications, then forget them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kafka.errors import KafkaError

from driftwarden.daemon.changelog import (
    Changelog,
    ChangelogError,
    StateRecord,
    ensure_changelog,
    offsets_key,
    source_partitions,
)
from driftwarden.daemon.checkpoint import UnreadableState, encode_state, monitor_state, state_compressor
from driftwarden.daemon.columns import prediction_columns
from driftwarden.daemon.events import OutcomeEvent
from driftwarden.daemon.join import decode_outcome, decode_prediction, encode_event
from driftwarden.daemon.kafka_outage import connect_with_backoff, is_transient
from driftwarden.daemon.model_state import alert_shares, merge_alert_shares, without_models
from driftwarden.daemon.ownership import CatchUp, Ownership, PredictionId, Resume
from driftwarden.daemon.pipeline import Message

if TYPE_CHECKING:
    from driftwarden.daemon.app import App
    from driftwarden.detectors.monitor import ModelMonitor

log = logging.getLogger(__name__)
TopicPartition = tuple[str, int]


class KafkaState:
    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.config.kafka
        self.predictions_topic, self.outcomes_topic = settings.predictions_topic, settings.outcomes_topic
        self.topic = app.config.state.changelog(settings.group_id)
        # a daemon (re)started while the brokers are down waits for them, as the consumer does
        self.partition_count = connect_with_backoff(  # refuses topics that are not co-partitioned
            lambda: source_partitions(settings), "source topics", app.stop_event)
        connect_with_backoff(lambda: ensure_changelog(settings, self.topic, self.partition_count),
                             f"changelog topic {self.topic}", app.stop_event)
        self.changelog = connect_with_backoff(lambda: Changelog(settings, self.topic), "changelog producer",
                                              app.stop_event)
        self.ownership = Ownership()
        self.catch_up = CatchUp(self.predictions_topic)
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pid = PredictionId()
        self.versions: dict[str, int] = {}  # model -> how many times its state was written
        self.floors: dict[TopicPartition, int] = {}  # restored marker: everything below was processed
        self.model_floors: dict[str, dict[TopicPartition, int]] = {}  # model -> offsets its restored state reflects
        self.offset_of: dict[str, dict[str, int]] = defaultdict(dict)  # model -> prediction id -> offset
        self._held_back: dict[int, list[Message]] = defaultdict(list)  # outcomes waiting for a predictions catch-up
        self._placed: dict[str, list[tuple[int, str]]] = {}  # model -> waiting predictions its record held, and where
        # a restored model's detector state as its record held it (stored: zstd-compressed MessagePack), until
        # the model's first write: then it is written as is if no event ran since. Nothing else is kept of the
        # detectors' written state (up to ~0.8 MB a model of 20 features): a write of a model with no event
        # since its last one (a revocation's) makes it again from the detectors
        self._restored: dict[str, bytes] = {}
        self._compressor = state_compressor()
        self._digests: dict[str, str] = {}
        self._written: dict[str, bytes] = {}  # for the SQLite cache (App.save takes them)
        self._records: dict[str, StateRecord] = {}  # the last record written (or restored) per model, without detectors
        self._markers: dict[int, dict[str, int]] = {}  # partition -> marker offsets last written
        self.restore_seconds: list[float] = []
        # models handed over by this member: their detectors, and which record they were handed over in
        self._parked: dict[str, tuple[ModelMonitor, tuple[Any, ...]]] = {}
        self.reused = 0  # models restored from their parked detectors, not built again
        self.unused_reused = 0  # models restored into the detectors built at start-up, not built again
        app.outbox.fence(set())  # nothing is ours until it is assigned and restored

    # -- rebalance callbacks (the consumer's thread; App holds its lock for revocations) ----------
    def assigned(self, partitions: Iterable[TopicPartition], generation: int = -1) -> None:
        tps = set(partitions)
        numbers = {p for _, p in tps}
        for p in sorted(numbers):
            if {(self.predictions_topic, p), (self.outcomes_topic, p)} - tps:
                log.error("partition %d of %s and %s was not assigned to one member (use the range assignor): "
                          "a model's outcomes would be read away from its predictions", p, self.predictions_topic,
                          self.outcomes_topic)
        self.ownership.assigned(numbers, generation)

    @property
    def restoring(self) -> bool:
        return self.ownership.restoring

    def revoked(self, partitions: Iterable[TopicPartition] | None) -> None:
        started = time.monotonic()
        numbers = set(self.ownership.partitions) if partitions is None else {p for _, p in partitions}
        numbers &= self.ownership.partitions
        if not numbers:
            self.ownership.revoked(numbers if partitions is None else {p for _, p in partitions})
            return
        leaving = {m for m, p in self.ownership.partition_of.items() if p in numbers}
        self.app.outbox.fence(self.ownership.owned_models() - leaving)  # first: nothing of theirs goes out now
        self.save(force=leaving, released=numbers)
        self.app.checkpoint.forget_offsets([(t, p) for p in numbers for t in (self.predictions_topic, self.outcomes_topic)])
        for m in leaving:
            self.app.outbox.hand_over(m)  # they travel in the record just written
        self._forget(leaving)
        self.ownership.revoked(numbers)
        tps = [(t, p) for p in numbers for t in (self.predictions_topic, self.outcomes_topic)]
        self.catch_up.stop(tps)
        for tp in tps:
            self.app.offsets.pop(tp, None)
            self.floors.pop(tp, None)
        for p in numbers:
            self._held_back.pop(p, None)
            self._markers.pop(p, None)
        log.info("released partitions %s (%d models: %s) in %.2f s", sorted(numbers), len(leaving),
                 _some(sorted(leaving)), time.monotonic() - started)

    def _forget(self, models: set[str]) -> None:
        """The models handed over leave this member's join, alerts and books. Their detectors stay as
        handed over, parked: building fresh ones (~65 ms a model of 20 features) would hold the rebalance
        callback for half a minute at 500 models, and an eager rebalance revokes every partition to give
        most of them back. Their runtime gets a new clock (no ticks while not ours) and no meta, and
        builds fresh detectors if an event of theirs comes here anyway (App.parked_runtime)."""
        app = self.app
        whole = without_models(app.alerts.state(), models)
        waiting = app.pipeline.waiting_state()
        for m in models:
            waiting.pop(m, None)
            app.join.drop(m)
            monitor = app.pipeline.models[m].monitor
            record = self._records.get(m)
            if record is not None and record.member == self.member:  # the state it holds, written just now
                self._parked[m] = (monitor, _identity(record))
            app.pipeline.models[m] = app.parked_runtime(m, monitor)
            for store in (self.offset_of, self.model_floors, self._restored, self._digests, self._records, self._placed):
                store.pop(m, None)
        app.metrics.forget_models(models)
        app.alerts.load_state(whole)
        app.pipeline._waiting.clear()
        app.pipeline.load_waiting(waiting)

    # -- restore (the consume loop's thread) --------------------------------------------------
    def restore(self, source: Any) -> set[TopicPartition]:
        """Restore every partition assigned since the last call; the source partitions sought."""
        todo = self.ownership.take_assigned()
        if not todo:
            return set()
        started, reused_before, unused_before = time.monotonic(), self.reused, self.unused_reused
        try:
            states = self.changelog.read(sorted(todo))
        except (KafkaError, ChangelogError) as exc:  # the broker went away between the assignment and its restore
            if isinstance(exc, KafkaError) and not is_transient(exc):
                raise
            self.ownership.retry(todo)
            log.warning("state.backend kafka: reading the changelog of partitions %s failed (%s: %s); "
                        "their restore is tried again at the next poll", sorted(todo), type(exc).__name__, exc)
            return set()
        app = self.app
        incoming: dict[str, dict[str, Any]] = {}  # the restored models' alert shares
        waiting = app.pipeline.waiting_state()
        seeks: dict[TopicPartition, int] = {}
        claims: list[StateRecord] = []
        for p, st in sorted(states.items()):
            epoch = st.epoch + 1
            clean = st.marker is not None and bool(st.marker.state and st.marker.state.get("released"))
            marker_offsets = st.marker.offsets if st.marker is not None else {}
            resumes = {tp: Resume(floor=marker_offsets.get(offsets_key(*tp), 0))
                       for tp in ((self.predictions_topic, p), (self.outcomes_topic, p))}
            for m, record in sorted(st.models.items()):
                if m not in app.pipeline.models:
                    log.warning("changelog partition %d holds model %s, which the config does not name: ignored", p, m)
                    continue
                state = record.state or {}
                incoming[m] = state["alerts"]
                waiting.pop(m, None)
                if state.get("waiting_findings"):
                    waiting[m] = state["waiting_findings"]
                self._load_model(m, record, clean)
                log.info("model %s: restored state version %d of %s (epoch %d): %d labelled, offsets %s, "
                         "%d predictions waiting from offset %s, %d early outcomes", m, record.version,
                         record.member or "?", record.epoch, state["meta"].get("labelled_samples", 0), record.offsets,
                         len(state["join"]["waiting"]), state["join"]["waiting_from"], len(state["join"]["outcomes"]))
                self.ownership.partition_of[m] = p
                for tp, resume in resumes.items():
                    resume.models[m] = record.offsets.get(offsets_key(*tp), 0)
                joined = state["join"]
                resumes[(self.predictions_topic, p)].waiting[m] = set(joined["waiting"])
                if joined["waiting_from"] is not None:
                    seek = seeks.get((self.predictions_topic, p), resumes[(self.predictions_topic, p)].floor)
                    seeks[(self.predictions_topic, p)] = min(seek, joined["waiting_from"])
                claims.append(StateRecord(**{**_fields(record), "epoch": epoch, "member": self.member,
                                             "generation": self.ownership.generation, "written_at": time.time()}))
                self._records[m] = claims[-1]
            for tp, resume in resumes.items():
                if st.marker is None and not resume.models:
                    continue  # never checkpointed: the group's committed offset (or auto_offset_reset) applies
                start = min([seeks.get(tp, resume.floor), resume.floor, *resume.models.values()])
                seeks[tp] = start
                self.floors[tp] = resume.floor
                app.offsets[tp] = start
                if resume.end > start:
                    self.catch_up.start(tp, resume)
            self.ownership.epochs[p] = epoch
            self.ownership.partitions.add(p)
            marker = StateRecord(kind="partition", partition=p, epoch=epoch, generation=self.ownership.generation,
                                 member=self.member, written_at=time.time(), offsets=dict(marker_offsets))
            claims.append(marker)
            self._markers[p] = dict(marker_offsets)
        self.app.checkpoint.forget_offsets([(t, p) for p in states for t in (self.predictions_topic, self.outcomes_topic)])
        app.alerts.load_state(merge_alert_shares(without_models(app.alerts.state(), incoming), incoming))
        app.pipeline._waiting.clear()
        app.pipeline.load_waiting(waiting)
        # claim: every restored model again under the new epoch, then the marker; then the older keys go
        self.changelog.write(claims)
        self.changelog.flush()
        for claim in claims:  # written: the member keeps them without the detectors (self._restored has those)
            if claim.state is not None and "monitor" in claim.state:
                claim.state = {k: v for k, v in claim.state.items() if k != "monitor"}
        for p, st in states.items():
            self.changelog.tombstone(p, st.keys - {c.key() for c in claims if c.partition == p})
        self.changelog.flush()
        app.outbox.fence(self.ownership.owned_models())
        epochs = {p: self.ownership.epochs[p] for p in states}
        models = sum(len(st.models) for st in states.values())
        reused, unused = self.reused - reused_before, self.unused_reused - unused_before
        if seeks:  # last: a revocation may be answered while the consumer process is asked (consumer_process.py)
            source.seek(seeks)
        elapsed = time.monotonic() - started
        self.restore_seconds.append(elapsed)
        log.info("restored partitions %s (%d models, %d of them as this member handed them over, %d into the "
                 "detectors built at start-up, epochs %s) in %.2f s; reading again from %s", sorted(states), models,
                 reused, unused, epochs, elapsed,
                 {f"{t}[{p}]": o for (t, p), o in sorted(seeks.items())})
        return set(seeks)

    def _load_model(self, m: str, record: StateRecord, clean: bool) -> None:
        app = self.app
        state = record.state or {}
        monitor, parked = self._parked.pop(m, (None, None))
        unreadable = False
        if parked is not None and parked == _identity(record) and not app.pipeline.touched(m):
            # back to the member that handed it over, unchanged since: its detectors are that record's state
            runtime = app.build_runtime(m, None, state["meta"], state["clock"], monitor=monitor)
            self.reused += 1
        else:
            current = app.pipeline.models.get(m)
            # the detectors built at start-up, untouched: the state loads into them (a build from the
            # reference costs ~70 ms a model of 20 features); a rebuilt reference is built from its file
            unused = current.monitor if current is not None and current.pristine and \
                not state["meta"].get("reference_path") else None
            try:
                detectors: dict[str, Any] | None = monitor_state(state["monitor"])
            except UnreadableState as exc:  # the rest of the record holds: its join, alerts, offsets
                detectors, unreadable = None, True
                log.error("model %s: the detector state in its changelog record does not decode (%s); its detectors "
                          "and windows start afresh", m, exc)
            runtime = app.build_runtime(m, detectors, state["meta"], state["clock"], monitor=unused)
            self.unused_reused += unused is not None
        app.pipeline.models[m] = runtime
        joined = state["join"]
        outcomes: list[OutcomeEvent] = [decode_outcome(o.encode()) for o in joined["outcomes"]]
        held = [(int(i), decode_prediction(blob.encode())) for i, blob in joined.get("held", ())]
        app.join.adopt(m, [event for _, event in held], outcomes, joined["queue"])
        if held:  # back in their places once the catch-up has put the others back (admit)
            self._placed[m] = [(i, event.prediction_id) for i, event in held]
        app.outbox.take_over(m, state["outbox"], clean)
        self.versions[m] = record.version
        self.model_floors[m] = {(t, record.partition): o for t in (self.predictions_topic, self.outcomes_topic)
                                if (o := record.offsets.get(offsets_key(t, record.partition))) is not None}
        self._records[m] = record
        self._restored.pop(m, None)
        if unreadable:  # the record's state is not theirs: the next checkpoint writes them as they are
            return
        if isinstance(state["monitor"], dict):  # a record of an earlier version: held as this one stores it
            state["monitor"] = encode_state(state["monitor"], self._compressor)
        self._restored[m] = state["monitor"]

    def admit(self, batch: list[Message], source: Any) -> list[Message]:
        """The records of this batch to process: restore what was assigned, skip and re-join what it holds."""
        restored = self.restore(source) if self.ownership.restoring else set()
        owned = self.ownership.partitions
        # records in hand of a partition just sought are read again from where it was sought
        batch = [m for m in batch if m.partition in owned and (m.topic, m.partition) not in restored]
        rejoin, live = self.catch_up.split(batch, self._pid)
        if rejoin:
            self._rejoin(rejoin)
        out: list[Message] = []
        for p in list(self._held_back):
            if (self.predictions_topic, p) not in self.catch_up.resume:
                out.extend(self._held_back.pop(p))
        for model in list(self._placed):
            if (self.predictions_topic, self.ownership.partition_of.get(model, -1)) not in self.catch_up.resume:
                self.app.join.place(model, self._placed.pop(model))
        for m in live:
            if m.key is None:
                out.append(m)
                continue
            model = m.key.decode("utf-8", "replace")
            if m.topic == self.predictions_topic:
                pid, model_id = self._pid.ids(m.value)
                # the catch-up reads a model's partition again for the predictions keyed by it: only
                # those can come back from the topic (the others travel in the record, see _light_state)
                if pid is not None and model_id == model and model in self.app.pipeline.models:
                    self.offset_of[model][pid] = m.offset
            elif (self.predictions_topic, m.partition) in self.catch_up.resume:
                self._held_back[m.partition].append(m)  # its prediction may not be back in the join yet
                continue
            if model not in self.app.pipeline.models:  # a key of no configured model (hostile, or another team's)
                out.append(m)
                continue
            if not self.ownership.note(model, m.partition) and (model, m.partition) not in self.ownership.misplaced:
                self.ownership.misplaced.add((model, m.partition))
                log.warning("model %s has events in partition %d and %d: key its events by model id", model,
                            self.ownership.partition_of[model], m.partition)
            out.append(m)
        return out

    def _rejoin(self, messages: list[Message]) -> None:
        """Predictions read again that were waiting for their outcome: back into the join, detectors untouched."""
        pipeline = self.app.pipeline
        events, _ = pipeline.typed.decode_predictions([m.key for m in messages], [m.value for m in messages])
        pipeline.typed.take_counts()  # not decoded for the pipeline: not counted again
        by_model: dict[str, list[Any]] = defaultdict(list)
        for index, event in events:
            by_model[event.model_id].append((messages[index].offset, event))
        for model_id, pairs in by_model.items():
            runtime = pipeline.models.get(model_id)
            if runtime is None:
                continue
            _, held = prediction_columns([e for _, e in pairs], runtime.spec, pipeline.typed)
            self.app.join.hold(model_id, held)
            resume = self.catch_up.resume.get((self.predictions_topic, self.ownership.partition_of.get(model_id, -1)))
            for offset, event in pairs:
                self.offset_of[model_id][event.prediction_id] = offset
                if resume is not None:
                    resume.waiting.get(model_id, set()).discard(event.prediction_id)

    # -- checkpoint ---------------------------------------------------------------------------
    def save(self, force: set[str] | None = None, released: set[int] | None = None) -> None:
        """Write the owned models whose state changed (and ``force``), and the partitions' markers; flush."""
        app = self.app
        force = force or set()
        released = set(released or ())
        if app.stop_event.is_set():
            released |= self.ownership.partitions  # a clean stop hands everything over
            force |= self.ownership.owned_models()
        touched = app.pipeline.take_touched()
        for m in touched & self._parked.keys():  # events of a model not ours ran here: no longer its record
            del self._parked[m]
        owned = sorted(self.ownership.owned_models())
        shares = alert_shares(app.alerts.state(), owned)
        waiting = app.pipeline.waiting_state()
        written, markers = 0, []
        now = time.time()
        for m in owned:
            p = self.ownership.partition_of[m]
            light = self._light_state(m, shares[m], waiting)
            digest = hashlib.sha256(json.dumps(light, sort_keys=True, default=str).encode()).hexdigest()
            if m not in touched and m not in force and digest == self._digests.get(m) and m in self._records:
                continue
            blob = self._restored.pop(m, None)
            if blob is None or m in touched:
                blob = self._written[m] = encode_state(app.models[m].monitor.state(), self._compressor)
            self._digests[m] = digest
            self.versions[m] = self.versions.get(m, 0) + 1
            offsets = {offsets_key(*tp): max(app.offsets.get(tp, 0), self.model_floors.get(m, {}).get(tp, 0))
                       for tp in ((self.predictions_topic, p), (self.outcomes_topic, p))
                       if tp in app.offsets or tp in self.model_floors.get(m, {})}
            record = StateRecord(kind="model", partition=p, epoch=self.ownership.epochs[p],
                                 generation=self.ownership.generation, member=self.member, written_at=now,
                                 offsets=offsets, model_id=m, version=self.versions[m],
                                 state={**light, "monitor": blob})
            self.changelog.write([record])  # one at a time: the producer's buffer bounds what waits to be sent
            written += 1
            record.state = light  # kept without its detectors
            self._records[m] = record
            if m in force:
                log.info("model %s: handing over state version %d (epoch %d): %d labelled, offsets %s, "
                         "%d predictions waiting from offset %s, %d early outcomes, %d outcomes held back",
                         m, record.version, record.epoch, light["meta"]["labelled_samples"], offsets,
                         len(light["join"]["waiting"]), light["join"]["waiting_from"], len(light["join"]["outcomes"]),
                         len(self._held_back.get(p, ())))
        for p in sorted(self.ownership.partitions):
            offsets = {offsets_key(*tp): o for tp, o in self._partition_offsets(p).items()}
            if offsets == self._markers.get(p) and p not in released and not written:
                continue
            self._markers[p] = offsets
            markers.append(StateRecord(kind="partition", partition=p, epoch=self.ownership.epochs[p],
                                       generation=self.ownership.generation, member=self.member, written_at=now,
                                       offsets=offsets, state={"released": p in released}))
        if written or markers:
            self.changelog.write(markers)  # after the models' records (a marker says they are written)
            self.changelog.flush()

    def _light_state(self, m: str, alerts: dict[str, Any], waiting: dict[str, Any]) -> dict[str, Any]:
        """Everything of a model's record but the detectors' state."""
        app = self.app
        runtime = app.models[m]
        outcomes, queue = app.join.early_outcomes(m)
        waiting_ids = app.join.waiting_ids(m)
        p = self.ownership.partition_of[m]
        resume = self.catch_up.resume.get((self.predictions_topic, p))
        not_yet_back = sorted(resume.waiting.get(m, ())) if resume is not None else []
        known = self.offset_of.get(m, {})
        if len(known) > 2 * len(waiting_ids) + 1000:  # forget the offsets of predictions no longer waiting
            self.offset_of[m] = known = {pid: known[pid] for pid in waiting_ids if pid in known}
        # the predictions topic is the log of the waiting predictions read from the model's partition
        # under its key; any other (keyless, keyed by another model) is written here, with its place
        rereadable = [pid for pid in waiting_ids if pid in known]
        written = [] if len(rereadable) == len(waiting_ids) else \
            [(i, pid) for i, pid in enumerate(waiting_ids) if pid not in known]
        waiting_from: int | None = min(known[pid] for pid in rereadable) if rereadable else None
        if not_yet_back:  # a checkpoint during the catch-up: those are still to be read again
            previous = self._records.get(m)
            held_from = previous.state["join"]["waiting_from"] if previous is not None and previous.state else None
            waiting_from = held_from if waiting_from is None else min(waiting_from, held_from or waiting_from)
        return {
            "meta": {"model_version": runtime.model_version, "labelled_samples": runtime.labelled_samples,
                     "reference_path": runtime.reference_path},
            "clock": runtime.clock.state(),
            "alerts": alerts,
            "waiting_findings": waiting.get(m, []),
            "join": {"waiting": [*not_yet_back, *rereadable], "waiting_from": waiting_from,
                     "held": [[i, encode_event(app.join.held(m, pid)).decode()] for i, pid in written],
                     "outcomes": [encode_event(o).decode() for o in outcomes], "queue": queue},
            "outbox": app.outbox.open_entries(m),
        }

    def _partition_offsets(self, p: int) -> dict[TopicPartition, int]:
        out = {}
        for tp in ((self.predictions_topic, p), (self.outcomes_topic, p)):
            if tp in self.app.offsets or tp in self.floors:
                out[tp] = max(self.app.offsets.get(tp, 0), self.floors.get(tp, 0))
        return out

    def cache_offsets(self) -> dict[TopicPartition, int]:
        """The owned partitions' offsets (for the SQLite cache and the group's committed offsets)."""
        return {tp: o for p in self.ownership.partitions for tp, o in self._partition_offsets(p).items()}

    def take_written(self) -> dict[str, bytes]:
        written, self._written = self._written, {}
        return written

    def status(self) -> dict[str, Any]:
        """Who owns what, for ``driftwarden status`` (kept in the SQLite cache)."""
        return {
            "member": self.member, "generation": self.ownership.generation, "changelog": self.topic,
            "partitions": {str(p): self.ownership.epochs.get(p) for p in sorted(self.ownership.partitions)},
            "models": {m: {"partition": r.partition, "epoch": r.epoch, "version": r.version, "offsets": r.offsets,
                           "written_at": r.written_at}
                       for m, r in sorted(self._records.items()) if self.ownership.owns(m)},
        }

    def close(self) -> None:
        self.changelog.close()


def _some(names: list[str], shown: int = 10) -> str:
    """A log line's list of models: the first ``shown`` and how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _identity(record: StateRecord) -> tuple[Any, ...]:
    """Which write of a model's state this record is (its state aside)."""
    return record.model_id, record.member, record.epoch, record.version, record.written_at


def _fields(record: StateRecord) -> dict[str, Any]:
    return {f: getattr(record, f) for f in record.__struct_fields__}
