"""The per-batch path of an event: decode -> route by model -> join -> detectors -> alerts.

Independent of where messages come from (Kafka or the demo's in-process
source) and of the clock: the caller passes ``now``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.daemon.clock import ModelClock
from driftwarden.daemon.coalesce import EventBuffers
from driftwarden.daemon.columns import (
    held_batch,
    held_predictions,
    label_column,
    prediction_batch,
    prediction_columns,
    timestamps,
)
from driftwarden.daemon.config import Config, ModelConfig, parse_duration
from driftwarden.daemon.events import (
    OutcomeEvent,
    PredictionEvent,
    Rejected,
    decode_outcomes,
)
from driftwarden.daemon.held import Held, HeldPrediction
from driftwarden.daemon.join import OutcomeJoin, Pair
from driftwarden.daemon.message import Message
from driftwarden.daemon.metrics import Metrics
from driftwarden.daemon.rebuild import ReferenceRebuilder, write_reference
from driftwarden.daemon.typed_events import TypedDecoders
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.spec import ModelSpec

if TYPE_CHECKING:
    from driftwarden.daemon.polled import Polled

log = logging.getLogger(__name__)
# the time-based checks of every model run at most this often (wall seconds), those of the models whose
# events ran at every tick: a round costs ~70 us a model (1,000 models: 70 ms), and ``housekeeping``
# runs after every poll
TICK_EVERY = 1.0
MAX_WAITING_FINDINGS = 20_000  # per model; past it the oldest reach the alerts without waiting for the clock
E = TypeVar("E", PredictionEvent, OutcomeEvent)
_EVENT = operator.itemgetter(1)  # of a decoder's (index, event)
_MODEL_ID = operator.attrgetter("model_id")
_KPIS = operator.attrgetter("kpis")
_PREDICTION, _OUTCOME_EVENT = operator.itemgetter(0), operator.itemgetter(1)  # of a joined pair
_TIMESTAMP = operator.attrgetter("timestamp")
_OUTCOME = operator.attrgetter("outcome")


class DeadLetters(Protocol):
    def send(self, message: Message, reason: str) -> None: ...


@dataclass
class ModelRuntime:
    config: ModelConfig
    spec: ModelSpec
    monitor: ModelMonitor
    model_version: str | None = None
    labelled_samples: int = 0
    reference_path: str | None = None  # a rebuilt reference, when one replaced the configured file
    clock: ModelClock = field(default_factory=ModelClock)  # the model's own event time
    # set while the model is not ours (state.backend kafka): ``monitor`` is as it was handed over, and
    # an event of the model that comes here anyway runs on fresh detectors built by this first
    build_fresh: Callable[[], ModelMonitor] | None = None
    # built from the configured reference at start-up (state.backend kafka), no state and no event since:
    # a restore loads the model's state into these detectors instead of building others
    pristine: bool = False
    rebuild: ReferenceRebuilder = field(init=False)

    def __post_init__(self) -> None:
        self.rebuild = ReferenceRebuilder(self.config.id, self.config.rebuild_reference)

    def labels(self) -> dict[str, str]:
        labels = {"model": self.config.id, **self.config.labels}
        if self.model_version:
            labels["model_version"] = self.model_version
        return labels


@dataclass
class BatchResult:
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    dead_lettered: int = 0
    predictions: int = 0
    outcomes: int = 0


# called when alerts start firing: (model, their findings, every degraded finding, now)
FiringHook = Callable[[ModelRuntime, list[Finding], list[Finding], float], None]


class Pipeline:
    def __init__(
        self,
        config: Config,
        models: Mapping[str, ModelRuntime],
        join: OutcomeJoin,
        alerts: AlertPipeline,
        dead_letters: DeadLetters,
        metrics: Metrics,
        on_degraded: FiringHook | None = None,
    ) -> None:
        self.config = config
        self.models = dict(models)
        self.join = join
        self.alerts = alerts
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.on_degraded = on_degraded
        self.exports: Callable[[str], bool] = lambda model_id: True  # whose gauges this instance exports
        self.typed = TypedDecoders({model_id: runtime.spec for model_id, runtime in self.models.items()})
        self._waiting: dict[str, list[tuple[float, int, Finding]]] = {}  # per model, a heap by decision time
        self._seq = itertools.count()  # arrival order among findings decided at the same time
        self._touched: set[str] = set(self.models)  # models whose state changed since take_touched()
        self.released_by_tick = False  # a tick let outcomes waiting in order go (the caller resets it)
        self._last_round = float("-inf")  # wall time of the last tick that checked every model
        self._ran_since_tick: set[str] = set()  # models whose events ran since the last tick
        self.ran = BatchResult()  # predictions and outcomes run through their model's path, since the start
        settings = config.coalesce
        self.buffers = EventBuffers(parse_duration(settings.max_wait), settings.max_waiting,
                                    {m: settings.events or r.config.monitoring.block for m, r in self.models.items()})

    def process(self, messages: Polled, now: float) -> BatchResult:
        """Decode, dead-letter and route one polled batch now; run the models that are due.

        A model's routed events wait in its buffer (:mod:`daemon.coalesce`) and go through its
        path together, as one bigger poll, when it holds enough of them, when the oldest has
        waited long enough, or when all models together hold too many. ``now`` drives the alert
        lifecycle; the findings returned are those of the models run in this call.
        """
        result = BatchResult()
        pred_msgs, out_msgs = messages.split(self.config.kafka.predictions_topic)

        events, rejected = self.typed.decode_predictions(pred_msgs.key_column(), pred_msgs.value_column())
        typed, contract = self.typed.take_counts()
        self.metrics.decode_path.labels(path="typed").inc(typed)
        self.metrics.decode_path.labels(path="contract").inc(contract)
        self._dead_letter(pred_msgs, rejected, result)
        by_model: dict[str, list[PredictionEvent]] = self._route(events)
        outcome_events, rejected = decode_outcomes(out_msgs.value_column())
        self._dead_letter(out_msgs, rejected, result)
        outcomes_by_model: dict[str, list[OutcomeEvent]] = self._route(outcome_events)
        for model_id in {**by_model, **outcomes_by_model}:
            model_events, model_outcomes = by_model.get(model_id, []), outcomes_by_model.get(model_id, [])
            held = self._held(model_id, model_events, model_outcomes)
            if held is not None:
                self.buffers.add(model_id, held, model_outcomes, now, held=True)
            else:
                self.buffers.add(model_id, model_events, model_outcomes, now)
            result.predictions += len(model_events)
            result.outcomes += len(model_outcomes)
        result.findings = self._run(self.buffers.due(now), now)
        return result

    def flush(self, now: float, models: Iterable[str] | None = None) -> dict[str, list[Finding]]:
        """Run the waiting events of ``models`` (default: every model) through their path now.

        Before anything reads or saves a model's state: a checkpoint, a hand-over, the end of input.
        """
        return self._run(self.buffers.models() if models is None else [m for m in models if m in self.buffers], now)

    def _held(self, model_id: str, events: list[PredictionEvent],
              outcomes: list[OutcomeEvent]) -> list[HeldPrediction] | None:
        """The held form of a model's routed events when all of them are typed (see :mod:`daemon.coalesce`).

        Made now rather than when the model runs: they wait as 394 bytes instead of 909, and the
        work (each event's features read, its numeric values packed) is done once either way.
        Not when they will not wait: with nothing of the model waiting and its count reached
        by this poll, they run now, and the columns made of the events themselves (with their
        held form) cost 0.83x the held form and then its columns (3.2 vs 3.8 ms a 2,750-event poll).
        """
        if not events or not self.buffers.holds(model_id) or self.buffers.runs_at_once(model_id, events, outcomes):
            return None
        model = self.typed.model_of(events)
        return held_predictions(events, model) if model is not None else None

    def _run(self, model_ids: Sequence[str], now: float) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for model_id in model_ids:
            waiting = self.buffers.take(model_id)
            if waiting is not None:
                out[model_id] = self._run_model(model_id, waiting.predictions, waiting.outcomes, now,
                                                held=waiting.held)
        if out:
            self.metrics.pending_joins.set(self.join.pending_count)
        return out

    def _run_model(self, model_id: str, model_events: list[Any], model_outcomes: list[OutcomeEvent],
                   now: float, held: bool = False) -> list[Finding]:
        """One model's waiting events through its path, as one poll: predictions first, then outcomes.

        ``held``: ``model_events`` are held predictions (:meth:`_held`), else prediction events.
        """
        runtime = self.models[model_id]
        if runtime.build_fresh is not None:  # not ours: its handed-over detectors stay as they are
            runtime.monitor, runtime.build_fresh = runtime.build_fresh(), None
        runtime.pristine = False
        findings: list[Finding] = []
        pairs: list[Pair] = []
        if model_events:
            if held:  # the columns prediction_columns makes of the typed events they came from
                batch, joined = held_batch(model_events, runtime.spec), model_events
            else:
                batch, joined = prediction_columns(model_events, runtime.spec, self.typed)
            batch.timestamps = self._observe_time(runtime, "predictions", batch.timestamps, now)
            self._track_version(runtime, model_events, now)
            # held now, not at ingest: a rebuild that completes later in this batch must not let them through
            findings.extend(runtime.rebuild.hold(
                self._guard(model_id, "predictions", runtime.monitor.observe_predictions, batch)))
            pairs.extend(self.join.add_predictions(model_id, joined, runtime.clock.watermark("predictions")))
            self.metrics.events.labels(topic="predictions", model=model_id).inc(len(model_events))
            self.ran.predictions += len(model_events)
        if model_outcomes:
            clock = runtime.clock
            self._observe_time(runtime, "outcomes", timestamps([o.timestamp for o in model_outcomes]), now)
            pairs.extend(self.join.add_outcomes(model_id, model_outcomes, clock.watermark("predictions"),
                                                future_after=now + clock.future_tolerance))
            self.metrics.events.labels(topic="outcomes", model=model_id).inc(len(model_outcomes))
            self.ran.outcomes += len(model_outcomes)
        findings.extend(self._labelled(runtime, pairs, now))
        model_now = runtime.clock.now(now)
        expired = self.join.expire(model_id, model_now) if model_now is not None else 0
        if expired:
            self.metrics.join_expired.labels(model=model_id).inc(expired)
        if model_events or pairs:
            self._touched.add(model_id)
        self._ran_since_tick.add(model_id)
        self._ingest(model_id, findings, now)
        return findings

    def _route(self, events: Sequence[tuple[int, E]]) -> dict[str, list[E]]:
        """Decoded events grouped by model; events of models not in the config are counted, not kept."""
        by_model: dict[str, list[E]] = defaultdict(list)
        decoded = list(map(_EVENT, events))
        ids = set(map(_MODEL_ID, decoded))
        if len(ids) == 1 and (only := next(iter(ids))) in self.models:  # the common poll: one model's events
            by_model[only] = decoded
            return by_model
        unknown = 0
        for event in decoded:
            if event.model_id in self.models:
                by_model[event.model_id].append(event)
            else:
                unknown += 1
        if unknown:
            self.metrics.ignored.labels(reason="unknown_model").inc(unknown)
        return by_model

    def _labelled(self, runtime: ModelRuntime, pairs: list[Pair], now: float) -> list[Finding]:
        """Joined predictions and outcomes through the outcome side's detectors (and a pending rebuild)."""
        if not pairs:
            return []
        runtime.labelled_samples += len(pairs)
        joined = outcome_batch(pairs, runtime.spec, self.typed)
        horizon = now + runtime.clock.future_tolerance  # future-dated events carry a time of the past
        joined.timestamps = np.where(joined.timestamps > horizon, runtime.clock.watermark("outcomes") or now,
                                     joined.timestamps)
        joined.prediction_timestamps = np.where(joined.prediction_timestamps > horizon, joined.timestamps,
                                                joined.prediction_timestamps)
        model_id = runtime.config.id
        found = runtime.rebuild.hold(self._guard(model_id, "outcomes", runtime.monitor.observe_outcomes, joined))
        self._maybe_rebuild(runtime, joined)
        self.metrics.joined.labels(model=model_id).inc(len(pairs))
        return found

    def _observe_time(self, runtime: ModelRuntime, source: str, times: np.ndarray, now: float) -> np.ndarray:
        """Move the model's clock; future-dated events count as a quality finding and get a past time."""
        used = runtime.clock.observe(source, times, now)
        if used is not times:
            future = ModelClock.count_future(times, used)
            runtime.monitor.note_future(future)
            log.warning("model %s: %d %s dated more than %.0f s ahead of the wall clock; their time is not trusted",
                        runtime.config.id, future, source, runtime.clock.future_tolerance)
        return used

    def clocks(self, now: float, models: Iterable[str] | None = None) -> dict[str, float]:
        """Each model's event time at wall time ``now`` (models without events yet have none)."""
        out = {}
        for model_id in self.models if models is None else models:
            t = self.models[model_id].clock.now(now)
            if t is not None:
                out[model_id] = t
        return out

    def _guard(self, model_id: str, stage: str, step: Callable[..., list[Finding]], *args: Any) -> list[Finding]:
        """One model's detector failure must not stop the others, nor become a crash loop on restart."""
        try:
            return step(*args)
        except Exception:
            self.metrics.model_errors.labels(model=model_id, stage=stage).inc()
            log.exception("model %s: detectors failed on %s; its events of this batch are skipped", model_id, stage)
            return []

    def touched(self, model_id: str) -> bool:
        """Whether the model's detector state changed since the last :meth:`take_touched`."""
        return model_id in self._touched

    def take_touched(self) -> set[str]:
        """Models whose detector state changed since the last call (for the checkpoint)."""
        touched, self._touched = self._touched, set()
        return touched

    def tick(self, now: float) -> None:
        """Time-based checks (staleness, traffic) for every model on its own clock, then alert timers.

        Every model is checked at most every :data:`TICK_EVERY` seconds of wall time; in between,
        the models whose events ran since the last tick (a replay moves their event time faster
        than the wall's). The alert timers run at every call. Models whose oldest waiting event waited ``coalesce.max_wait``
        run first, at every call; a model whose events still wait is not checked (they would move
        its clock and fill its traffic counts): its checks run at the first round after they went through.
        """
        self._run(self.buffers.due(now), now)
        if not 0 <= now - self._last_round < TICK_EVERY:
            self._last_round = now
            clocks = self.clocks(now)
        else:  # between rounds: the models whose events ran since their last check
            clocks = self.clocks(now, self._ran_since_tick)
        self._ran_since_tick = set()
        for model_id, event_now in clocks.items():
            if model_id in self.buffers:
                continue
            runtime = self.models[model_id]
            found = []
            if self.join.waiting_in_order(model_id) and runtime.clock.silent("predictions", now):
                # the predictions went silent: outcomes waiting in order for theirs wait no more
                released = self.join.release(model_id, force=True)
                if released:
                    self._touched.add(model_id)
                    self.released_by_tick = True  # labelled events and the join changed: worth a checkpoint
                    found += self._labelled(runtime, released, now)
            found += self._guard(model_id, "tick", runtime.monitor.tick, event_now, runtime.clock.settled(now))
            if found:
                self._touched.add(model_id)
            self._ingest(model_id, found, now)  # also releases what waited for the clock to move
        self.alerts.expire(clocks)
        self.alerts.flush(now)
        self.metrics.observe_state(self.alerts.lifecycle.alerts.values(),
                                   {m: self.join.pending_of(m) for m in self.models if self.exports(m)})

    def _maybe_rebuild(self, runtime: ModelRuntime, joined: OutcomeBatch) -> None:
        version = runtime.rebuild.version
        reference = runtime.rebuild.add(joined)
        if reference is None or version is None:
            return
        directory = self.config.resolve(runtime.config.rebuild_reference.directory)
        try:
            path = write_reference(reference, directory, runtime.config.id, version)
        except OSError as exc:  # the rebuild must survive a restart, so it needs the file
            log.error("model %s: cannot write the rebuilt reference to %s (%s); keeping the current reference",
                      runtime.config.id, directory, exc)
            return
        runtime.monitor = ModelMonitor(runtime.config.id, runtime.spec, reference, runtime.monitor.storage)
        runtime.reference_path = str(path)
        log.info("model %s: reference rebuilt from %d labelled events of version %s: %s",
                 runtime.config.id, len(reference), version, path)

    def _ingest(self, model_id: str, findings: list[Finding], now: float) -> None:
        """Findings wait until the model's clock passes the time they were decided, then reach
        the alert lifecycle in that order: the same order however the consumer interleaved the
        topics (a realized verdict read early does not overtake the estimates before it)."""
        heap = self._waiting.setdefault(model_id, [])
        for f in findings:
            heapq.heappush(heap, (f.decided_at, next(self._seq), f))
        self._release(model_id, now)

    def _release(self, model_id: str, now: float) -> None:
        heap = self._waiting.get(model_id)
        if not heap:
            return
        horizon = self.models[model_id].clock.settled(now)
        ready: list[Finding] = []
        while heap and ((horizon is not None and heap[0][0] <= horizon) or len(heap) > MAX_WAITING_FINDINGS):
            ready.append(heapq.heappop(heap)[2])
        if ready:
            self._apply(model_id, ready, now)

    def finish(self, now: float) -> None:
        """The input ended (a replay, the demo): what waits for the clock goes on now, then alert timers.

        Outcomes waiting in order for their predictions are paired or let go, and every
        waiting finding reaches the alerts in its order; no detector is ticked (the time
        after the end of a replay is not a silence of its traffic).
        """
        self.flush(now)
        for model_id, runtime in self.models.items():
            found = self._labelled(runtime, self.join.release(model_id, force=True), now)
            heap = self._waiting.setdefault(model_id, [])
            for f in found:
                heapq.heappush(heap, (f.decided_at, next(self._seq), f))
            if heap:
                self._apply(model_id, [heapq.heappop(heap)[2] for _ in range(len(heap))], now)
        self.alerts.flush(now)

    def waiting_state(self) -> dict[str, list[list[Any]]]:
        """Findings not yet released to the alerts (checkpointed with the detectors' state)."""
        return {m: [[t, seq, f.to_dict()] for t, seq, f in sorted(heap)] for m, heap in self._waiting.items() if heap}

    def load_waiting(self, state: Mapping[str, list[list[Any]]]) -> None:
        top = -1
        for model_id, rows in state.items():
            if model_id in self.models:
                self._waiting[model_id] = [(float(t), int(seq), Finding.from_dict(d)) for t, seq, d in rows]
                heapq.heapify(self._waiting[model_id])
                top = max([top, *(int(seq) for _, seq, _ in rows)])
        self._seq = itertools.count(top + 1)

    def _apply(self, model_id: str, findings: list[Finding], now: float) -> None:
        runtime = self.models[model_id]
        self.alerts.note_labels(model_id, runtime.labelled_samples, runtime.model_version, now)
        changed = self.alerts.ingest(model_id, runtime.labels(), findings, now)
        if self.exports(model_id):  # (an event of a model another member owns may come here)
            self.metrics.observe_findings(model_id, findings, changed)
        for f in findings:
            if f.degraded:
                self.metrics.degraded.labels(model=model_id, kind=f.kind, detector=f.detector).inc()
        firing = {(a.labels.get("kind"), a.labels.get("detector"), a.labels.get("subject"))
                  for a in changed if a.state == "firing"}
        if firing and self.on_degraded is not None:  # an alert started firing: explain it
            degraded = [f for f in findings if f.degraded]
            self.on_degraded(runtime, [f for f in degraded if f.key in firing] or degraded, degraded, now)

    def _track_version(self, runtime: ModelRuntime, events: Sequence[Held], now: float) -> None:
        latest = events[-1].model_version
        if latest and latest != runtime.model_version:
            if runtime.model_version is not None:
                log.info("model %s: new version %s (was %s)", runtime.config.id, latest, runtime.model_version)
                runtime.rebuild.start(latest)
            runtime.model_version = latest

    def _dead_letter(self, messages: Sequence[Message], rejected: list[Rejected], result: BatchResult) -> None:
        for r in rejected:
            message = messages[r.index]
            self.dead_letters.send(message, r.reason)
            self.metrics.dead_letters.labels(topic=message.topic).inc()
            log.warning("dead-lettered %s[%d] offset %d: %s", message.topic, message.partition, message.offset, r.reason)
        result.dead_lettered += len(rejected)


def outcome_batch(pairs: Sequence[Pair], spec: ModelSpec, typed: TypedDecoders | None = None) -> OutcomeBatch:
    predictions: list[Held] = list(map(_PREDICTION, pairs))
    outcomes: list[OutcomeEvent] = list(map(_OUTCOME_EVENT, pairs))
    kinds = set(map(type, predictions))
    if len(kinds) == 1 and issubclass(next(iter(kinds)), HeldPrediction):
        features = held_batch(predictions, spec)  # type: ignore[arg-type]  # all held, one layout
    else:  # mixed (predictions restored from a checkpoint, or of the contract decoder): as events
        events = [p.to_event() if isinstance(p, HeldPrediction) else p for p in predictions]
        features = prediction_batch(events, spec, typed)
    kpis = kpi_columns(list(map(_KPIS, outcomes)))
    return OutcomeBatch(
        timestamps=timestamps(list(map(_TIMESTAMP, outcomes))),
        prediction_timestamps=features.timestamps,
        y_true=label_column(list(map(_OUTCOME, outcomes)), spec),
        y_pred=features.prediction,
        score=features.score,
        features=features.features,
        kpis=kpis,
        model_version=features.model_version,
        class_scores=features.class_scores,
    )


def kpi_columns(kpis: Sequence[dict[str, float] | None]) -> dict[str, np.ndarray]:
    """One float64 column per KPI name any outcome has (NaN where an outcome lacks it), names sorted.

    >>> {k: v.tolist() for k, v in kpi_columns([{"revenue": 2.0}, None, {"revenue": 1.0, "churned": 1.0}]).items()}
    {'churned': [nan, nan, 1.0], 'revenue': [2.0, nan, 1.0]}
    """
    present = [k for k in kpis if k]
    names = sorted(set().union(*present)) if present else []
    out = {}
    for name in names:
        if len(present) == len(kpis):
            try:  # every outcome has the KPI, the common case: one pass in C
                out[name] = np.fromiter(map(operator.itemgetter(name), present), np.float64, len(present))
                continue
            except KeyError:
                pass
        out[name] = np.array([(k or {}).get(name, np.nan) for k in kpis], dtype=np.float64)
    return out
