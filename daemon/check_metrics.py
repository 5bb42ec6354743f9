"""Per-model, per-check Prometheus gauges: what the daemon monitors, not how it runs.

Every finding sets the gauges of its check ``(model, kind, detector, subject)``: the
statistic, the threshold it was judged against, whether it is degraded, its p-value
(tests that have one) and the event time of the evaluation. The alert lifecycle sets
``driftwarden_alert_firing``; CBPE's estimates and their realized values, label
coverage and label lag get gauges of their own.

Cardinality: subjects are the declared features, ``prediction``/``score``/``error``,
metric and KPI names from the config, and a few fixed names; only the subject of the
``quality``/``undeclared_key_rate`` check is whatever key a producer sends. Those
open subjects are capped at :data:`MAX_OPEN_SUBJECTS` per model: past it a degraded
one replaces the least recently evaluated healthy one, a healthy one is not exported;
both count in ``driftwarden_check_subjects_dropped_total``.

>>> from prometheus_client import CollectorRegistry
>>> from driftwarden.detectors.findings import Finding
>>> r = CollectorRegistry()
>>> checks = CheckGauges(r)
>>> checks.observe("churn", [Finding("data_drift", "psi", "age", 0.31, 0.2, True, 1_700_000_000.0, 500, p_value=0.001)])
>>> labels = {"model": "churn", "kind": "data_drift", "detector": "psi", "subject": "age"}
>>> [r.get_sample_value(f"driftwarden_check_{name}", labels) for name in ("statistic", "threshold", "degraded", "p_value")]
[0.31, 0.2, 1.0, 0.001]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Metric, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from driftwarden.alerts.model import Alert
from driftwarden.detectors.findings import Finding

CheckKey = tuple[str, str, str]  # (kind, detector, subject)
AlertKey = tuple[str, str, str, str, str]  # (model, kind, detector, subject, severity)

# checks whose subject is not bounded by the config: any key a producer sends
OPEN_SUBJECT_CHECKS = frozenset({("quality", "undeclared_key_rate")})
MAX_OPEN_SUBJECTS = 20  # per model
CHECK_LABELS = ("model", "kind", "detector", "subject")


@dataclass(slots=True)
class _Tracked:
    """A check's last evaluation: the values of its five series (no p-value series: ``p_value`` None)."""

    statistic: float
    threshold: float
    degraded: bool
    p_value: float | None
    window_end: float
    labels: str  # the series' label set as the text format writes it: made once, not per scrape


# the per-check series: (name, help, what of _Tracked)
CHECK_SERIES: tuple[tuple[str, str, Callable[[_Tracked], float | None]], ...] = (
    ("driftwarden_check_statistic", "Last evaluated statistic of a check (effect size, rate, metric value...)",
     lambda t: t.statistic),
    ("driftwarden_check_threshold", "Threshold the last statistic was judged against (the breached bound for "
     "two-sided checks)", lambda t: t.threshold),
    ("driftwarden_check_degraded", "1 if the last evaluation of the check found degradation, else 0",
     lambda t: 1.0 if t.degraded else 0.0),
    ("driftwarden_check_p_value", "Corrected p-value of the last evaluation (statistical tests only)",
     lambda t: t.p_value),
    ("driftwarden_check_last_evaluation_timestamp_seconds", "Event time (end of the window) of the check's last "
     "evaluation", lambda t: t.window_end),
)


class CheckSeries(Collector):
    """The per-check gauges, read from one dict of the checks' last evaluations at scrape time.

    A labelled ``Gauge`` child per series and check (a lock, a value object and its label
    tuple: ~2.5 kB a check for the five series, ~330 kB a model of 25 subjects x 5 checks)
    cost more than the numbers; here a check is one small record, the series are built
    when Prometheus scrapes.
    """

    def __init__(self, checks: dict[str, dict[CheckKey, _Tracked]]) -> None:
        self._checks = checks
        self._text_only = threading.local()  # set while text() writes these series for a scrape

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(name, doc, labels=CHECK_LABELS) for name, doc, _ in CHECK_SERIES]

    def _snapshot(self) -> list[tuple[str, list[tuple[CheckKey, _Tracked]]]]:
        return [(model, list(checks.items())) for model, checks in list(self._checks.items())]

    def collect(self) -> Iterator[Metric]:
        if getattr(self._text_only, "on", False):
            return
        snapshot = self._snapshot()
        for name, doc, value in CHECK_SERIES:
            family = GaugeMetricFamily(name, doc, labels=CHECK_LABELS)
            for model, checks in snapshot:
                for key, tracked in checks:
                    v = value(tracked)
                    if v is not None:
                        family.add_metric([model, *key], v)
            yield family

    def exposition(self, registry: CollectorRegistry) -> bytes:
        """``registry`` in Prometheus' text format, as ``generate_latest`` writes it, these series last.

        ``generate_latest`` builds a sample object per series and formats its labels at every
        scrape: for 1,000 models of 110 checks (470k series, 54 MB) 4.2 s of CPU and of the GIL,
        taken from the consume loop; here a check's label text is made once, when it is first
        evaluated: 0.6 s (tests/daemon/test_metrics.py checks it writes,
        line for line, what ``generate_latest`` writes).
        """
        self._text_only.on = True
        try:
            head = generate_latest(registry)
        finally:
            self._text_only.on = False
        snapshot = self._snapshot()
        out = [head.decode("utf-8")]
        for name, doc, value in CHECK_SERIES:
            help_text = doc.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
            for _, checks in snapshot:
                for _, tracked in checks:
                    v = value(tracked)
                    if v is not None:
                        out.append(f"{name}{{{tracked.labels}}} {floatToGoString(v)}\n")
        return "".join(out).encode("utf-8")


_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", '"': '\\"'})


def label_text(labels: Mapping[str, str]) -> str:
    """Label pairs as the text format writes them: sorted by name, values escaped.

    >>> print(label_text({"subject": 'a"b', "model": "m"}))
    model="m",subject="a\\"b"
    """
    return ",".join(f'{k}="{v.translate(_LABEL_ESCAPES)}"' for k, v in sorted(labels.items()))


class CheckGauges:
    def __init__(self, registry: CollectorRegistry, exclude_kinds: Iterable[str] = ()) -> None:
        r = registry
        self._excluded = frozenset(exclude_kinds)
        self._checks: dict[str, dict[CheckKey, _Tracked]] = {}
        self.series = CheckSeries(self._checks)
        r.register(self.series)
        self.dropped = Counter("driftwarden_check_subjects_dropped", "Evaluations of checks on undeclared keys not "
                               f"exported, or that removed another: past {MAX_OPEN_SUBJECTS} such subjects per model",
                               ["model"], registry=r)
        self.alert_firing = Gauge("driftwarden_alert_firing", "1 while the alert of a check fires, 0 while pending or "
                                  "after it resolved (alert lifecycle, before inhibition and silences)",
                                  [*CHECK_LABELS, "severity"], registry=r)
        self.performance = Gauge("driftwarden_performance", "Performance metric of the model's last evaluated window: "
                                 "CBPE's estimate (source=estimated) or, once labels cover an estimated window, its "
                                 "realized value (source=realized)", ["model", "metric", "source"], registry=r)
        self.label_coverage = Gauge("driftwarden_label_coverage_ratio", "Share of a traffic bucket's predictions "
                                    "whose outcome arrived (last bucket past the label delay)", ["model"], registry=r)
        self.label_lag = Gauge("driftwarden_label_lag_seconds", "Delay from prediction to outcome in the last labelled "
                               "batch (event time)", ["model", "quantile"], registry=r)
        self._alerts: dict[AlertKey, float] = {}

    def observe(self, model: str, findings: Sequence[Finding], changed: Iterable[Alert] = ()) -> None:
        """One evaluation's findings of ``model`` and the alerts whose state they changed."""
        checks = self._checks.setdefault(model, {})
        for f in findings:
            if f.kind in self._excluded:
                self._special(model, f)
                continue
            if f.key not in checks and not self._admit(model, checks, f):
                continue
            tracked = checks.get(f.key)
            if tracked is None:
                checks[f.key] = _Tracked(float(f.statistic), float(f.threshold), f.degraded,
                                         None if f.p_value is None else float(f.p_value), float(f.window_end),
                                         label_text(dict(zip(CHECK_LABELS, (model, *f.key), strict=True))))
            else:  # in place: the series keep their order
                tracked.statistic, tracked.threshold, tracked.degraded = (float(f.statistic), float(f.threshold),
                                                                          f.degraded)
                tracked.p_value = None if f.p_value is None else float(f.p_value)
                tracked.window_end = float(f.window_end)
            self._special(model, f)
        self._set_alerts(changed, replace_all=False)

    def observe_alerts(self, alerts: Iterable[Alert]) -> None:
        """Every alert the lifecycle holds now: firing ones 1, the others (and those it forgot) 0."""
        self._set_alerts(alerts, replace_all=True)

    def forget(self, models: Collection[str]) -> None:
        """Stop exporting the gauges of ``models`` (another member monitors them now)."""
        gone = set(models)
        for model in gone:
            self._checks.pop(model, None)
        for gauge in (self.alert_firing, self.performance, self.label_coverage, self.label_lag):
            drop_series(gauge, gone)
        for key in [k for k in self._alerts if k[0] in gone]:
            del self._alerts[key]

    def _special(self, model: str, f: Finding) -> None:
        if f.kind == "estimated_performance":
            # a sequential finding's statistic is its CUSUM: the gauge shows the block's estimate
            value = f.details.get("value") if f.details.get("sequential") else f.statistic
            shown = float(value) if isinstance(value, int | float) else f.statistic
            self.performance.labels(model, f.detector, str(f.details.get("source", "estimated"))).set(shown)
        elif f.kind == "traffic" and f.detector == "label_coverage":
            self.label_coverage.labels(model).set(f.statistic)
        elif f.kind == "traffic" and f.detector == "label_lag":
            self.label_lag.labels(model, "0.5").set(f.statistic)
            p90 = f.details.get("p90")
            if isinstance(p90, int | float):
                self.label_lag.labels(model, "0.9").set(float(p90))

    def _admit(self, model: str, checks: dict[CheckKey, _Tracked], f: Finding) -> bool:
        """Whether a check not exported yet gets its series (always, unless its subject is open-ended)."""
        if f.key[:2] not in OPEN_SUBJECT_CHECKS:
            return True
        open_keys = [k for k in checks if k[:2] in OPEN_SUBJECT_CHECKS]
        if len(open_keys) < MAX_OPEN_SUBJECTS:
            return True
        self.dropped.labels(model).inc()
        if not f.degraded:
            return False  # a healthy newcomer never pushes out a tracked subject
        healthy = [k for k in open_keys if not checks[k].degraded]
        victim = min(healthy or open_keys, key=lambda k: checks[k].window_end)  # oldest first; ties: first tracked
        self._remove(model, checks, victim)
        return True

    def _remove(self, model: str, checks: dict[CheckKey, _Tracked], key: CheckKey) -> None:
        labels = (model, *key)
        del checks[key]
        for alert_key in [a for a in self._alerts if a[:4] == labels]:
            self.alert_firing.remove(*alert_key)
            del self._alerts[alert_key]

    def _set_alerts(self, alerts: Iterable[Alert], replace_all: bool) -> None:
        now: dict[AlertKey, float] = {}
        for a in alerts:
            key = _alert_key(a.labels, a.severity)
            check = key[1:4]
            if check[:2] in OPEN_SUBJECT_CHECKS and check not in self._checks.get(key[0], {}):
                continue  # its check is past the cap: not exported
            now[key] = max(now.get(key, 0.0), 1.0 if a.state == "firing" else 0.0)
        if replace_all:
            now = {**dict.fromkeys(self._alerts, 0.0), **now}
        for key, value in now.items():
            self.alert_firing.labels(*key).set(value)
            self._alerts[key] = value
        self._forget_stale_alerts()

    def _forget_stale_alerts(self) -> None:
        """Series of stopped alerts stay at 0 while their check is exported; those of untracked checks go."""
        for key in [k for k, v in self._alerts.items() if v == 0.0 and k[1:4] not in self._checks.get(k[0], {})]:
            self.alert_firing.remove(*key)
            del self._alerts[key]


def drop_series(gauge: Gauge, models: Collection[str]) -> None:
    """Remove the series of ``models`` from a gauge labelled by ``model`` first: one pass over its
    series for all of them (a revocation forgets many models; a pass per model would be quadratic)."""
    wanted = set(models)
    for metric in gauge.collect():
        for sample in metric.samples:
            if sample.labels.get("model") in wanted:  # (a sample's labels come in the gauge's label order)
                gauge.remove(*sample.labels.values())


def _alert_key(labels: Mapping[str, str], severity: str) -> AlertKey:
    return (labels.get("model", ""), labels.get("kind", ""), labels.get("detector", ""), labels.get("subject", ""),
            severity)
