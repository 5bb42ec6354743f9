"""Prometheus metrics of one daemon instance (own registry: several apps can live in one test process).

The daemon's own work (events, dead letters, batches, checkpoints, lag) is counted here; what
it monitors (per-check gauges, alert state, performance, labels) is in :mod:`daemon.check_metrics`.
Counters serve no ``_created`` series: they doubled the series count for a value no one graphs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from driftwarden.alerts.model import Alert
from driftwarden.daemon.check_metrics import CheckGauges, drop_series
from driftwarden.detectors.findings import Finding

disable_created_metrics()  # process-wide in prometheus-client: the daemon's registries are the only ones


class Metrics:
    def __init__(self, exclude_check_kinds: Iterable[str] = ()) -> None:
        """``exclude_check_kinds``: kinds of checks that get no per-check series (``http.exclude_check_kinds``)."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("driftwarden_events", "Decoded events by topic and model", ["topic", "model"], registry=r)
        self.decode_path = Counter(
            "driftwarden_predictions_decoded", "Prediction events by decoder: typed (keyed by model id, fits the "
            "model's declared features) or contract (the general decoder)", ["path"], registry=r,
        )
        self.ignored = Counter("driftwarden_events_ignored", "Valid events not monitored", ["reason"], registry=r)
        self.dead_letters = Counter("driftwarden_dead_letters", "Messages sent to the dead-letter topic", ["topic"], registry=r)
        self.joined = Counter("driftwarden_outcomes_joined", "Outcomes matched to their prediction", ["model"], registry=r)
        self.join_expired = Counter(
            "driftwarden_predictions_expired", "Predictions whose outcome never came within the TTL", ["model"], registry=r
        )
        self.pending_joins = Gauge("driftwarden_join_pending_predictions", "Predictions waiting for their outcome, "
                                   "all models of this instance (join.max_pending bounds it)", registry=r)
        self.model_pending_joins = Gauge("driftwarden_pending_joins", "Predictions of the model waiting for their "
                                         "outcome", ["model"], registry=r)
        self.degraded = Counter(
            "driftwarden_degraded_findings", "Evaluations that found degradation", ["model", "kind", "detector"], registry=r
        )
        self.batch_seconds = Histogram(
            "driftwarden_batch_seconds", "Processing time of one polled batch", registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
        )
        self.model_errors = Counter(
            "driftwarden_model_errors", "Batches a model's detectors failed on (logged with the traceback)",
            ["model", "stage"], registry=r,
        )
        self.checkpoints = Counter("driftwarden_checkpoints", "Checkpoints committed", registry=r)
        self.checkpoint_seconds = Histogram(
            "driftwarden_checkpoint_seconds", "Duration of one checkpoint (the next periodic one waits at least 4 "
            "times as long)", registry=r, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.lag = Gauge(
            "driftwarden_consumer_lag", "Messages behind the end of the partition", ["topic", "partition"], registry=r
        )
        self.last_checkpoint = Gauge("driftwarden_last_checkpoint_timestamp_seconds", "Wall time of the last checkpoint",
                                     registry=r)
        self.checks = CheckGauges(r, exclude_kinds=exclude_check_kinds)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (what ``/metrics`` serves)."""
        return self.checks.series.exposition(self.registry)

    def observe_findings(self, model: str, findings: Sequence[Finding], changed: Iterable[Alert] = ()) -> None:
        """One evaluation of ``model``: its checks' gauges, and the alerts whose state it changed."""
        self.checks.observe(model, findings, changed)

    def forget_models(self, models: Collection[str]) -> None:
        """Models handed over to another member (``state.backend: kafka``): their gauges go from this
        instance's ``/metrics``, so that one series per model is exported by the group, the owner's.
        Counters stay: what this instance counted is still true, and ``rate()`` of a series that stops is 0."""
        self.checks.forget(models)
        drop_series(self.model_pending_joins, models)

    def observe_state(self, alerts: Iterable[Alert], pending_joins: Mapping[str, int]) -> None:
        """The alert lifecycle's alerts (all of them) and each model's waiting predictions."""
        self.checks.observe_alerts(alerts)
        for model, pending in pending_joins.items():
            self.model_pending_joins.labels(model=model).set(pending)
