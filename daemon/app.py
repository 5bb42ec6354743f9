"""Assembles the daemon: config -> monitors, join, alerts, checkpoint -> the consume loop."""

from __future__ import annotations

import gc
import logging
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from driftwarden.alerts.notify import Notifier
from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.receivers import build_notifiers
from driftwarden.alerts.silences import SilenceStore
from driftwarden.daemon.checkpoint import Checkpoint, UnreadableState
from driftwarden.daemon.clock import ModelClock
from driftwarden.daemon.config import Config, parse_duration
from driftwarden.daemon.heap import release_free_heap
from driftwarden.daemon.join import JoinChanges, OutcomeJoin
from driftwarden.daemon.kafka_outage import DeadLettersPending, Outage, is_transient
from driftwarden.daemon.kafka_state import KafkaState
from driftwarden.daemon.metrics import Metrics
from driftwarden.daemon.pipeline import BatchResult, DeadLetters, Message, ModelRuntime, Pipeline
from driftwarden.daemon.polled import Polled
from driftwarden.daemon.preflight import detector_problem
from driftwarden.daemon.report_cmd import ReportHook
from driftwarden.daemon.startup import MonitorJob, built_monitors, start_workers
from driftwarden.daemon.threshold_cache import load_thresholds, save_thresholds, threshold_file
from driftwarden.daemon.window_spill import SPILL_FROM, spill_directory
from driftwarden.detectors.cusum import solved_thresholds
from driftwarden.detectors.ks_exact import warm_up as ks_warm_up
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.window import StoredRowsError, WindowRows

log = logging.getLogger("driftwarden")
Offsets = dict[tuple[str, int], int]
GC_YOUNG_THRESHOLD = 50_000  # allocations between collections of the youngest generation (see prepare_loop)
#: the next periodic checkpoint waits at least this many times the last one's duration (Flink's minimum pause
#: between checkpoints): checkpoints take at most 1 / (1 + 4) = 20 % of the loop's time, however many models
CHECKPOINT_PAUSE_FACTOR = 4.0


def outbox_path(config: Config) -> Path:
    """The alert outbox and run-time silences live in one SQLite file next to the checkpoint."""
    state_path = config.resolve(config.state.path)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    return state_path.with_name(state_path.stem + "-alerts.db")


class Source(Protocol):
    def poll(self) -> Sequence[Message]: ...
    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def close(self) -> None: ...


def _fresh_windows(model_id: str, exc: StoredRowsError | UnreadableState) -> None:
    what = "stored window rows are inconsistent" if isinstance(exc, StoredRowsError) else "saved state cannot be read"
    log.error("model %s: the checkpoint's %s (%s); its detectors and windows start afresh", model_id, what, exc)


def _stored_state(model_id: str, monitor: ModelMonitor) -> tuple[str, dict[str, Any], WindowRows]:
    """A model's state as a checkpoint stores it: its open windows' rows apart, only the new ones."""
    rows = WindowRows()
    return model_id, monitor.state(rows), rows


def prepare_loop() -> None:
    """What start-up finishes before the consume loop (also the benchmarks' loops).

    Compile the KS kernel now, not in the first window's evaluation (0.7 s). Then keep
    what start-up built (~140k objects of numpy, scipy, river, kafka, ...) out of
    collections: Python's full collections walk every tracked object, and without
    this they walked the libraries' modules and functions again and again while the
    consumer allocated its records: 0.6 s of a 6.9 s run through the broker
    (measured with cProfile).

    And collect the young generation every :data:`GC_YOUNG_THRESHOLD` allocations, not
    Python's 700: a poll of 5,000 messages allocates ~10^5 tuples, lists and dicts, almost
    all freed by their reference counts soon after, and at 700 the collector ran ~2,000
    times over 100k predictions + outcomes, 8-17 % of App.handle's CPU time; at 50,000,
    2-6 % (load 2-10; ``bench/kafka_run.py``'s batches, gc.callbacks, alternated). Only
    cyclic garbage waits longer for it: at most one threshold's worth of objects.
    """
    ks_warm_up()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class ModelBuildError(Exception):
    """A model's detectors refused to start: the message is preflight's line for it (its YAML path first)."""


class App:
    """One daemon instance. ``clock`` is the only place time is read."""

    def __init__(
        self,
        config: Config,
        dead_letters: DeadLetters,
        *,
        clock: Callable[[], float] = time.time,
        notifiers: Mapping[str, Notifier] | None = None,
        producer: Any = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.stop_event = stop_event or threading.Event()  # also ends a wait for Kafka in start-up (StoppedWaiting)
        self.clock = clock
        self.metrics = Metrics(config.http.exclude_check_kinds)
        self.dead_letters = dead_letters
        state_path = config.resolve(config.state.path)
        self.checkpoint = Checkpoint(state_path)
        self.windows_dir = spill_directory(state_path)
        # with many models their windows live in files (daemon.window_spill); with fewer, in memory, and
        # files an earlier run with many models left are removed (no run reads another's)
        self._spill = len(config.models) >= SPILL_FROM
        if not self._spill:
            shutil.rmtree(self.windows_dir, ignore_errors=True)
        self.reports_dir = config.resolve(config.reports.directory)
        self._idle_after = parse_duration(config.event_time.idle_after)
        self._future_tolerance = parse_duration(config.event_time.future_tolerance)
        kafka_state = config.state.backend == "kafka"  # then state comes from the changelog, on assignment
        runtime_meta = {} if kafka_state else self.checkpoint.meta("models") or {}
        clocks = {} if kafka_state else self.checkpoint.meta("clocks") or {}
        thresholds = threshold_file(state_path)  # CUSUM thresholds an earlier run solved
        known = load_thresholds(thresholds)
        jobs = [self._monitor_job(mc.id, runtime_meta.get(mc.id, {})) for mc in config.models]
        workers, started = start_workers(len(jobs), config.state.startup_workers), time.monotonic()
        if workers:
            log.info("building the detectors of %d models in %d start-up workers", len(jobs), workers)
        models: dict[str, ModelRuntime] = {}
        blobs = built_monitors(jobs, workers)
        for i, job in enumerate(jobs):
            try:  # the build alone: a checkpoint that cannot be read is not the reference's fault
                built = next(blobs)  # a worker's build error is raised here
                fresh: Callable[[], ModelMonitor] = job.build if built is None else partial(pickle.loads, built)
                monitor = fresh()
            except Exception as exc:  # the model's detectors refused to start (here or in a worker)
                blobs.close()
                self.checkpoint.close()
                raise ModelBuildError(detector_problem(i, job.reference, exc)) from exc
            models[job.model_id] = self.build_runtime(
                job.model_id, None if kafka_state else self._checkpointed(job.model_id),
                runtime_meta.get(job.model_id, {}), clocks.get(job.model_id), monitor=monitor, fresh=fresh)
            models[job.model_id].pristine = kafka_state  # its state comes with its partition (KafkaState)
        if len(jobs) > 1:
            log.info("%d models ready in %.1f s", len(jobs), time.monotonic() - started)
        if len(solved_thresholds()) > known:
            save_thresholds(thresholds)
        self.join = OutcomeJoin(parse_duration(config.join.ttl), config.join.max_pending)
        if not kafka_state:
            self.join.restore(*self.checkpoint.pending())
        self.outbox = Outbox(str(outbox_path(config)))
        self.silences = SilenceStore(str(outbox_path(config)))
        if notifiers is None:
            notifiers = build_notifiers(config.alerting, producer=producer, reports_url=config.reports_url())
        self.alerts = AlertPipeline(config.alerting, self.outbox, notifiers, silences=self.silences)
        alert_state = None if kafka_state else self.checkpoint.meta("alerts")
        if alert_state:
            self.alerts.load_state(alert_state)
        self.reports = ReportHook(config, self.alerts)
        self.pipeline = Pipeline(config, models, self.join, self.alerts, dead_letters, self.metrics,
                                 on_degraded=self.reports)
        self.pipeline.load_waiting({} if kafka_state else self.checkpoint.meta("waiting_findings") or {})
        self.offsets: Offsets = {} if kafka_state else self.checkpoint.offsets()
        self._checkpoint_every = parse_duration(config.state.checkpoint_interval)
        self._checkpoint_pause = self._checkpoint_every  # the interval, or longer after a slow checkpoint
        self._last_checkpoint = clock()
        self._last_lag = float("-inf")
        self._dirty = False
        self.last_progress = clock()
        self._lock = threading.RLock()  # rebalance callbacks may come from the consumer's thread
        self._delivery: threading.Thread | None = None
        self._source: Source | None = None
        self._dead_lettered = 0
        self._delivering = threading.Lock()  # held by a delivery round; a revocation waits for it
        self.kafka_state: KafkaState | None = None
        self._changelog_outage = Outage("checkpoint deferred, the state changelog is not written")
        if kafka_state:
            try:  # waits for an unreachable cluster until stop_event
                self.kafka_state = KafkaState(self)
            except BaseException:
                self.close()
                raise
            self.pipeline.exports = self.kafka_state.ownership.owns  # the gauges of the models it owns, only

    def _checkpointed(self, model_id: str) -> dict[str, Any] | None:
        """A model's checkpointed monitor state; None (a fresh start, logged) if its stored rows have a gap,
        or it does not decode: one model's unreadable state does not keep the others from starting."""
        try:
            return self.checkpoint.monitor_state(model_id)
        except (StoredRowsError, UnreadableState) as exc:
            _fresh_windows(model_id, exc)
            return None

    def _monitor_job(self, model_id: str, meta: Mapping[str, Any]) -> MonitorJob:
        """How a model's monitor is built: from its reference (a rebuilt one wins over the configured one)."""
        mc = self.config.model(model_id)
        return MonitorJob(mc.id, mc.spec(), str(meta.get("reference_path") or self.config.resolve(mc.reference)),
                          self.windows_dir, spill=self._spill)

    def build_runtime(self, model_id: str, monitor_state: dict[str, Any] | None = None,
                      meta: Mapping[str, Any] | None = None, clock_state: dict[str, Any] | None = None,
                      monitor: ModelMonitor | None = None,
                      fresh: Callable[[], ModelMonitor] | None = None) -> ModelRuntime:
        """A model's runtime from its saved state (or fresh, without one). ``monitor``: built already, and
        ``fresh`` builds another (a start-up worker's pickle loaded again, :mod:`daemon.startup`); else
        both are built here."""
        mc = self.config.model(model_id)
        meta = meta or {}
        spec = mc.spec()
        reference_path = meta.get("reference_path")
        fresh = fresh or self._monitor_job(model_id, meta).build
        monitor = monitor or fresh()
        if monitor_state is not None:
            try:
                monitor.load_state(monitor_state)
            except StoredRowsError as exc:
                monitor = fresh()
                _fresh_windows(mc.id, exc)
            except (ValueError, KeyError, TypeError) as exc:  # e.g. window_size or features changed
                monitor = fresh()
                log.warning("model %s: checkpointed detector state does not fit the current config (%s); "
                            "its windows start afresh", mc.id, exc)
        if monitor.drift is not None and monitor.drift.daily_note:  # which subjects follow the day, and why
            log.log(logging.INFO if monitor.drift.daily else logging.DEBUG, "model %s: drift: %s", mc.id,
                    monitor.drift.daily_note)
        runtime = ModelRuntime(mc, spec, monitor, reference_path=reference_path,
                               clock=ModelClock(self._idle_after, self._future_tolerance))
        if clock_state is not None:
            runtime.clock.load_state(clock_state, self.clock())
        runtime.model_version = meta.get("model_version")
        runtime.labelled_samples = int(meta.get("labelled_samples", 0))
        return runtime

    def parked_runtime(self, model_id: str, monitor: ModelMonitor) -> ModelRuntime:
        """A model this member handed over (``state.backend: kafka``): its detectors as they left, no clock
        (no ticks while not ours), no meta; an event of it that comes here anyway (keyed by another
        model, or by none) runs on fresh detectors, as it would at another member that never had it."""
        fresh = self._monitor_job(model_id, {}).build
        runtime = self.build_runtime(model_id, monitor=monitor, fresh=fresh)
        runtime.build_fresh = fresh
        return runtime

    def stored_offsets(self) -> Offsets:
        """Offsets an assignment seeks to: the SQLite checkpoint's (with the changelog, the restore seeks)."""
        return {} if self.kafka_state is not None else self.checkpoint.offsets()

    def assigned(self, partitions: Iterable[tuple[str, int]], generation: int = -1) -> None:
        """Rebalance callback (any thread): these partitions are restored before their first batch."""
        if self.kafka_state is not None:
            self.kafka_state.assigned(partitions, generation)

    def revoked(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Rebalance callback (any thread): checkpoint before the partitions move away; then fence their models."""
        if self.kafka_state is None:
            self.save()
            return
        with self._delivering, self._lock:  # no notification of theirs is in flight while they leave
            self.pipeline.flush(self.clock())  # their waiting events go into the state handed over
            self.kafka_state.revoked(partitions)

    @property
    def totals(self) -> BatchResult:
        """Since the start: predictions and outcomes run through their model's path (not those still
        waiting in its buffer), messages dead-lettered."""
        ran = self.pipeline.ran
        return BatchResult(predictions=ran.predictions, outcomes=ran.outcomes, dead_lettered=self._dead_lettered)

    @property
    def models(self) -> dict[str, ModelRuntime]:
        return self.pipeline.models

    def handle(self, messages: Iterable[Message]) -> BatchResult:
        """Process one polled batch (a source's ``Polled``, or messages) and remember the offsets it reached."""
        batch = Polled.of_messages(messages)
        with self._lock:
            if self.kafka_state is not None:  # restore what was assigned; skip what restored state holds
                batch = Polled.of_messages(self.kafka_state.admit(list(batch), self._source))
            return self._handle(batch)

    def _handle(self, batch: Polled) -> BatchResult:
        now = self.clock()
        with self.metrics.batch_seconds.time():
            result = self.pipeline.process(batch, now)
        for tp, offset in batch.next_offsets().items():
            if offset > self.offsets.get(tp, -1):
                self.offsets[tp] = offset
        self._dirty = self._dirty or bool(batch)
        self._dead_lettered += result.dead_lettered
        self.last_progress = now
        return result

    def run_waiting(self) -> None:
        """Run every model's waiting events now (any thread): before what reads a model's live state."""
        with self._lock:
            self.pipeline.flush(self.clock())

    def housekeeping(self, source: Source | None = None) -> None:
        """Timers: detector ticks, alert grouping, delivery from the outbox, periodic checkpoint."""
        with self._lock:
            if self.kafka_state is not None and self.kafka_state.restoring:
                self.kafka_state.restore(self._source or source)
            now = self.clock()
            self.reports.drain()  # finished reports join their alerts before the timers flush them
            self.pipeline.tick(now)
            if self.pipeline.released_by_tick:  # outcomes that waited in order were labelled: checkpoint
                self._dirty, self.pipeline.released_by_tick = True, False
            if self._delivery is None:
                with self._delivering:
                    self.alerts.deliver(now)
            if self._dirty and now - self._last_checkpoint >= self._checkpoint_pause:
                self.save(source)
        lag = getattr(source, "lag", None)
        if lag is not None and now - self._last_lag >= self._checkpoint_every:
            self._last_lag = now
            for (topic, partition), behind in lag().items():  # asks the brokers: outside the lock
                self.metrics.lag.labels(topic=topic, partition=str(partition)).set(behind)

    def save(self, source: Source | None = None) -> None:
        """Checkpoint (see daemon/checkpoint.py for the commit order)."""
        with self._lock:
            self._save(source)

    def _save(self, source: Source | None) -> None:
        self.pipeline.flush(self.clock())  # 0. the events waiting to be run: the offsets claim them
        flush = getattr(self.dead_letters, "flush", None)
        if flush is not None:
            try:
                flush()  # 1. outputs
            except DeadLettersPending as exc:  # the broker is away: no checkpoint may claim their offsets
                log.debug("checkpoint deferred: %s", exc)
                return
        started = self.clock()
        # the join's delta since the last checkpoint, taken in both backends (with the kafka backend the
        # predictions topic holds the waiting events: the delta is dropped, not left to grow)
        join_changes = self.join.take_changes()
        if self.kafka_state is not None:
            try:
                self.kafka_state.save()  # 2a. the changed models' state to the changelog, flushed
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # the broker is away (the flush timed out): no checkpoint may claim offsets past the records
                # Kafka holds; each record holds its own offsets, so the last one Kafka took restores as it was.
                # Logged once an outage, as the consumer's and the dead letters' are
                self._changelog_outage.failed(exc)
                return
            self._changelog_outage.recovered()
        self.checkpoint.commit(  # 2. state + offsets, one transaction
            self.offsets if self.kafka_state is None else self.kafka_state.cache_offsets(),
            # only models that saw events since the last checkpoint, their open windows' new rows only
            (_stored_state(m, self.models[m].monitor) for m in self.pipeline.take_touched())
            if self.kafka_state is None else self.kafka_state.take_written(),
            join_changes if self.kafka_state is None else JoinChanges(),
            {
                "alerts": self.alerts.state(),
                "clocks": {m: r.clock.state() for m, r in self.models.items()},
                "waiting_findings": self.pipeline.waiting_state(),
                **({"ownership": self.kafka_state.status()} if self.kafka_state is not None else {}),
                "models": {
                    m: {"model_version": r.model_version, "labelled_samples": r.labelled_samples,
                        "reference_path": r.reference_path}
                    for m, r in self.models.items()
                },
            },
        )
        if source is not None:
            source.commit(self.offsets if self.kafka_state is None else self.kafka_state.cache_offsets())  # 3. the group's
        self._last_checkpoint = self.clock()
        self._dirty = False
        release_free_heap()  # the windows evaluated since the last checkpoint left free pages behind
        self.metrics.checkpoints.inc()
        self.metrics.last_checkpoint.set(self._last_checkpoint)
        self._pace(self._last_checkpoint - started)

    def _pace(self, took: float) -> None:
        """The pause before the next periodic checkpoint: the interval, or :data:`CHECKPOINT_PAUSE_FACTOR` times
        this one's duration when that is longer (a checkpoint of many models must not take the loop's time)."""
        self.metrics.checkpoint_seconds.observe(took)
        pause = max(self._checkpoint_every, CHECKPOINT_PAUSE_FACTOR * took)
        if pause > self._checkpoint_every:
            log.log(logging.INFO if self._checkpoint_pause == self._checkpoint_every else logging.DEBUG,
                    "checkpoint of %d models took %.2f s: the next one waits %.1f s (%g x its duration), "
                    "not state.checkpoint_interval %.1f s", len(self.models), took, pause, CHECKPOINT_PAUSE_FACTOR,
                    self._checkpoint_every)
        elif self._checkpoint_pause > self._checkpoint_every:
            log.info("checkpoint took %.2f s: back to state.checkpoint_interval %.1f s", took, self._checkpoint_every)
        self._checkpoint_pause = pause

    def _deliver_loop(self, interval: float) -> None:
        """Slack and CI calls, off the consume loop: an endpoint that hangs must not stall consumption."""
        while not self.stop_event.wait(interval):
            try:
                with self._delivering:
                    self.alerts.deliver(self.clock())
            except Exception:  # the outbox keeps the entries; the next round retries
                log.exception("alert delivery round failed")

    def run(self, source: Source, delivery_interval: float = 0.5) -> None:
        """Consume until ``stop_event`` is set; then finish the batch in hand, checkpoint, close.

        Notifications are delivered from the outbox by a background thread (the outbox and
        the notifiers are the only things it touches).
        """
        self._source = source
        self._delivery = threading.Thread(target=self._deliver_loop, args=(delivery_interval,),
                                          name="driftwarden-delivery", daemon=True)
        self._delivery.start()
        self.reports.start_background()  # a firing alert's report renders off the consume loop
        prepare_loop()
        try:
            while not self.stop_event.is_set():
                messages = source.poll()
                if messages:
                    self.handle(messages)
                else:
                    self.last_progress = self.clock()
                self.housekeeping(source)
            with self._lock:  # reports being rendered join their alerts before the last checkpoint and flush
                self.reports.stop_background(timeout=20.0)
            self.save(source)
            self._delivery.join(timeout=30)
            self._delivery = None
            self.alerts.flush(self.clock())
            self.alerts.deliver(self.clock(), limit=10)  # bounded: the rest waits in the outbox
        finally:
            self.stop_event.set()
            self.reports.stop_background(timeout=0.0)  # after an error: no waiting for a report
            source.close()
            self.close()
        log.info(
            "stopped: %d predictions, %d outcomes, %d dead-lettered",
            self.totals.predictions, self.totals.outcomes, self.totals.dead_lettered,
        )

    def health(self) -> dict[str, Any]:
        """Ready when the loop made progress in the last minute and Kafka answers (else the reasons)."""
        age = self.clock() - self.last_progress
        problems = [p for p in (getattr(self._source, "problem", None), getattr(self.dead_letters, "problem", None)) if p]
        return {"ok": age < 60 and not problems, "seconds_since_progress": round(age, 3),
                "kafka_problems": problems, "models": sorted(self.models)}

    def close(self) -> None:
        self.run_waiting()  # what was consumed is counted, even without a last checkpoint
        if self.kafka_state is not None:
            self.kafka_state.close()
        self.checkpoint.close()
        self.outbox.close()
        self.silences.close()

    @property
    def state_dir(self) -> Path:
        return self.config.resolve(self.config.state.path).parent
