"""Alert lifecycle: findings in, pending -> firing -> resolved transitions out.

Transitions are driven by findings and measured in event time (``window_end``), so a replay
from a checkpoint reproduces the same alerts with the same ``starts_at``:

- a degraded evaluation opens a *pending* alert (``starts_at`` = its window end);
- it *fires* after ``for_windows`` consecutive degraded evaluations, or, when ``for_seconds``
  is set, once it has been degraded that long (``for_seconds`` replaces ``for_windows``);
  a sequential finding (``details["sequential"]``: a CUSUM, which already required the
  evidence of several blocks) fires at its first degraded evaluation;
- a healthy evaluation drops a pending alert; a firing one *resolves* once it has been
  healthy for ``resolve_after`` seconds (0: at the first healthy evaluation);
- a degraded ``critical`` finding also holds the ``warning`` level of the same check (the
  inhibition stage then hides the warning while the critical fires);
- an alert quotes the numbers of the window that made it fire (``values``; with
  ``window_end``), the windows its root-cause report is built from; later windows only move
  ``latest_statistic``/``latest_window_end``; a resolved alert quotes the window that cleared it;
- those numbers are the metric (``statistic``/``threshold``; ``annotations["metric"]``) and, for
  a sequential check, apart, its evidence (CUSUM ``S``/``h`` as ``evidence``/``evidence_threshold``;
  ``annotations["evidence"]``), as :mod:`alerts.quote` reads them from the finding;
- estimated performance gives way to realized values for the same windows (findings with
  ``details["source"] == "realized"`` under the estimate's key): the alert then quotes the
  realized numbers (``annotations["estimate"]`` keeps the estimate), is resolved by a healthy
  realized value, and estimates of windows whose realized values are in are skipped;
- an alert that opens in one of its check's first ``VERSION_WINDOWS`` evaluations after the
  model's version changed carries the new version as label ``version`` and
  ``annotations["version_change"] = "old -> new"``;
- a finding's ``details["blames"]`` (what the check blames: features, pairs, segments) is the
  alert's ``blames`` annotation;
- a firing alert never resolves while its statistic is on the bad side of the threshold it
  fired on, even if a check (with a moved threshold) calls the window healthy;
- a firing alert whose check has not been evaluated for ``resolve_timeout`` seconds of event
  time (its windows stopped closing: no traffic, no labels) resolves with a note saying so
  (:meth:`AlertLifecycle.expire`; Alertmanager's ``resolve_timeout``).

>>> from driftwarden.detectors.findings import Finding
>>> lc = AlertLifecycle(for_windows=2)
>>> def f(t, bad): return Finding("data_drift", "psi", "age", 0.3 if bad else 0.01, 0.2, bad, t, 500)
>>> [a.state for a in lc.update("churn", {}, [f(60, True)], now=61)]
['pending']
>>> [a.state for a in lc.update("churn", {}, [f(120, True)], now=121)]
['firing']
>>> [(a.state, a.ends_at) for a in lc.update("churn", {}, [f(180, False)], now=181)]
[('resolved', 180.0)]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from driftwarden.alerts.model import SEVERITY_RANK, Alert, alert_from_dict, fingerprint
from driftwarden.alerts.quote import quote
from driftwarden.detectors.findings import Finding

VERSION_WINDOWS = 2  # an alert opening in its check's first evaluations after a version change names it


class AlertLifecycle:
    def __init__(self, for_windows: int = 2, for_seconds: float | None = None, resolve_after: float = 0.0,
                 resolve_timeout: float | None = None):
        if for_windows < 1:
            raise ValueError(f"for_windows must be >= 1, got {for_windows}")
        self.for_windows = for_windows
        self.for_seconds = for_seconds
        self.resolve_after = resolve_after
        self.resolve_timeout = resolve_timeout
        self.alerts: dict[str, Alert] = {}
        self.ended: list[Alert] = []  # resolved instances replaced by a new one before a flush saw them
        self.versions: dict[str, str] = {}
        self.realized_until: dict[str, float] = {}  # fingerprint -> last window with realized values
        self.version_change: dict[str, tuple[str, str]] = {}  # model -> (old, new) of its last change
        self.since_change: dict[str, dict[str, int]] = {}  # model -> fingerprint -> evaluations since

    def update(self, model: str, labels: Mapping[str, str], findings: Sequence[Finding], now: float) -> list[Alert]:
        """Apply one evaluation's findings for ``model``; return copies of alerts that changed state."""
        changed: list[Alert] = []
        version = labels.get("model_version")
        if version:
            changed += self.new_version(model, version, now)
        # one step per evaluation, in the order given: windows of one check that closed in the same
        # poll count one by one, and a window's realized verdict is a step after its estimate
        by_key: dict[tuple[str, str, str], dict[tuple[float, float], list[Finding]]] = {}
        for finding in findings:
            when = (finding.decided_at, finding.window_end)
            by_key.setdefault(finding.key, {}).setdefault(when, []).append(finding)
        for (kind, detector, subject), evaluations in by_key.items():
            fp = fingerprint(model, kind, detector, subject)
            for _, group in sorted(evaluations.items()):
                realized = [f for f in group if _realized(f)]
                if realized:
                    self.realized_until[fp] = max(self.realized_until.get(fp, -math.inf),
                                                  max(f.window_end for f in realized))
                elif max(f.window_end for f in group) <= self.realized_until.get(fp, -math.inf):
                    continue  # an estimate of windows whose realized values are in: they decided
                changed += self._evaluate(model, labels, kind, detector, subject, group, now)
        return changed

    def _evaluate(self, model: str, labels: Mapping[str, str], kind: str, detector: str, subject: str,
                  group: list[Finding], now: float) -> list[Alert]:
        """One evaluation (the findings of one window) of one check."""
        changed: list[Alert] = []
        fp = fingerprint(model, kind, detector, subject)
        since = self.since_change.get(model)
        if since is not None:
            since[fp] = since.get(fp, 0) + 1
        near_change = since is not None and since[fp] <= VERSION_WINDOWS
        worst = max((SEVERITY_RANK.get(f.severity, 1) for f in group if f.degraded), default=0)
        for severity, rank in SEVERITY_RANK.items():
            key = f"{fp}/{severity}"
            if rank > worst and key not in self.alerts:
                continue
            evidence = _evidence(group, rank)
            base = {**labels, "model": model, "severity": severity, "kind": kind, "detector": detector, "subject": subject}
            base.setdefault("model_version", self.versions.get(model, ""))
            if evidence.details.get("segment"):  # the segment a performance finding blames (plan=pro)
                base["segment"] = str(evidence.details["segment"])
            current = self.alerts.get(key)
            if current is not None and current.state != "resolved" and "version" in current.labels:
                base["version"] = current.labels["version"]
            elif near_change and (current is None or current.state == "resolved"):
                base["version"] = self.versions.get(model, "")  # opens in a window of a version change
            alert = self._step(key, fp, severity, base, evidence, rank <= worst, now)
            if alert is not None:
                changed.append(alert.copy())
        return changed

    def _step(
        self, key: str, fp: str, severity: str, labels: dict[str, str], finding: Finding, degraded: bool, now: float
    ) -> Alert | None:
        t = finding.window_end or now
        alert = self.alerts.get(key)
        if alert is not None:
            alert.last_evaluated_at = t
        if not degraded:
            if alert is None or alert.state == "resolved":
                return None
            if alert.state == "pending":
                del self.alerts[key]
                return None
            _note_latest(alert, finding)
            if not finding.degraded and past_threshold(alert, finding):
                alert.clear_since = None  # "healthy" yet past the threshold it fired on: not clear
                return None
            if alert.clear_since is None:
                alert.clear_since = t
            if t - alert.clear_since >= self.resolve_after:
                alert.state, alert.ends_at = "resolved", alert.clear_since
                fired: dict[str, float | None] = {k: alert.values.get(k) for k in ("threshold", "evidence_threshold")
                                                  if k in alert.values}
                alert.values = {**_values(finding), **fired}
                _quote(alert, finding, fired.get("threshold"))
                alert.annotations["resolved_by"] = ("realized " if _realized(finding) else "") + _cleared(alert, finding)
                return alert
            return None
        before = alert.state if alert is not None else None
        if alert is None or alert.state == "resolved":
            if alert is not None:
                self.ended.append(alert)
            alert = Alert(fingerprint=fp, severity=severity, labels=labels, starts_at=t)
            self.alerts[key] = alert
            change = self.version_change.get(labels.get("model", ""))
            if "version" in labels and change is not None:
                alert.annotations["version_change"] = f"{change[0]} -> {change[1]}"
        alert.labels = labels
        alert.last_evaluated_at = t
        alert.degraded_windows += 1
        alert.last_degraded_at = t
        alert.clear_since = None
        # Numbers: those of the window that made the alert fire (the evaluations of the update in
        # which it fired, the windows its report is built from), so that the alert, its message and
        # its report quote the same numbers; later windows only move ``latest_*``.
        realized_now = _realized(finding) and alert.annotations.get("detail.source") != "realized"
        if realized_now and alert.state == "firing":  # the estimate gives way to the realized values
            alert.annotations["estimate"] = f"{alert.values.get('statistic'):.4g} (estimated)"
        if alert.state == "pending" or alert.fired_at == now or realized_now:
            alert.values = _values(finding)
            _quote(alert, finding)
            for name, value in finding.details.items():
                alert.annotations[f"detail.{name}"] = str(value)
            if finding.details.get("blames"):
                alert.annotations["blames"] = str(finding.details["blames"])
        _note_latest(alert, finding)
        if alert.state == "pending" and (finding.details.get("sequential") is True or self._holds(alert)):
            alert.state, alert.fired_at = "firing", now
        return alert if alert.state != before else None

    def expire(self, event_now: float | Mapping[str, float]) -> list[Alert]:
        """Resolve firing alerts whose check went unevaluated for ``resolve_timeout`` (event time).

        ``event_now`` is one time for every model, or each model's own clock (models
        missing from the mapping have no clock yet and expire nothing).
        """
        if self.resolve_timeout is None:
            return []
        changed = []
        for alert in self.alerts.values():
            now = event_now.get(alert.model) if isinstance(event_now, Mapping) else event_now
            if now is None:
                continue
            last = alert.last_evaluated_at or alert.starts_at
            if alert.state == "firing" and now - last >= self.resolve_timeout:
                alert.state, alert.ends_at = "resolved", now
                alert.annotations["resolved_by"] = (
                    f"no evaluation of this check for {now - last:.0f} s (resolve_timeout)"
                )
                changed.append(alert.copy())
        return changed

    def _holds(self, alert: Alert) -> bool:
        if self.for_seconds is not None:
            return (alert.last_degraded_at or alert.starts_at) - alert.starts_at >= self.for_seconds
        return alert.degraded_windows >= self.for_windows

    def new_version(self, model: str, version: str, now: float) -> list[Alert]:
        """Record ``model``'s current version; alerts raised on another version resolve now."""
        old = self.versions.get(model)
        self.versions[model] = version
        if old is None or old == version:
            return []
        self.version_change[model] = (old, version)
        self.since_change[model] = {}
        changed = []
        for key, alert in list(self.alerts.items()):
            if alert.model != model or alert.labels.get("model_version", "") == version:
                continue
            if alert.state == "pending":
                del self.alerts[key]
            elif alert.state == "firing":
                alert.state, alert.ends_at = "resolved", now
                alert.annotations["resolved_by"] = f"model version {version} replaced {old}"
                changed.append(alert.copy())
        return changed

    def annotate(self, fp: str, annotations: Mapping[str, str]) -> list[Alert]:
        found = [a for a in self.alerts.values() if a.fingerprint == fp]
        for alert in found:
            alert.annotations.update(annotations)
        return found

    def active(self) -> list[Alert]:
        """Firing and resolved (not yet dropped) alerts, in a stable order."""
        current = (a for a in self.alerts.values() if a.state != "pending")
        return sorted([*current, *self.ended], key=lambda a: (a.key, a.starts_at))

    def drop_resolved(self) -> None:
        """Forget resolved alerts once the groups hold them."""
        self.ended = []
        for key in [k for k, a in self.alerts.items() if a.state == "resolved"]:
            del self.alerts[key]

    def state(self) -> dict[str, object]:
        return {
            "alerts": [a.to_dict() for a in self.alerts.values()],
            "versions": dict(self.versions),
            "ended": [a.to_dict() for a in self.ended],
            "realized_until": dict(self.realized_until),
            "version_change": {m: list(c) for m, c in self.version_change.items()},
            "since_change": {m: dict(c) for m, c in self.since_change.items()},
        }

    def load_state(self, state: Mapping[str, object]) -> None:
        raw = state.get("alerts", [])
        assert isinstance(raw, list)
        self.alerts = {a.key: a for a in (alert_from_dict(item) for item in raw)}
        ended = state.get("ended", [])
        assert isinstance(ended, list)
        self.ended = [alert_from_dict(item) for item in ended]
        versions = state.get("versions", {})
        assert isinstance(versions, dict)
        self.versions = {str(k): str(v) for k, v in versions.items()}
        realized = state.get("realized_until", {})
        assert isinstance(realized, dict)
        self.realized_until = {str(k): float(v) for k, v in realized.items()}
        changes = state.get("version_change", {})
        since = state.get("since_change", {})
        assert isinstance(changes, dict) and isinstance(since, dict)
        self.version_change = {str(m): (str(c[0]), str(c[1])) for m, c in changes.items()}
        self.since_change = {str(m): {str(k): int(v) for k, v in c.items()} for m, c in since.items()}


def _evidence(group: Sequence[Finding], rank: int) -> Finding:
    """The finding that speaks for severity level ``rank``: the exact level if degraded, else the
    worst degraded one (critical implies warning), else the first (healthy) one."""
    degraded = [f for f in group if f.degraded]
    for f in degraded:
        if SEVERITY_RANK.get(f.severity, 1) == rank:
            return f
    if degraded:
        return max(degraded, key=lambda f: SEVERITY_RANK.get(f.severity, 1))
    return group[0]


def _realized(f: Finding) -> bool:
    """A realized value under an estimate's key (``detectors/realized.py``)."""
    return f.details.get("source") == "realized"


def _values(f: Finding) -> dict[str, float | None]:
    """The alert's numbers: the metric as ``statistic``/``threshold`` (``alerts/quote.py``), a sequential
    check's CUSUM as ``evidence``/``evidence_threshold``."""
    return {**quote(f).values(), "window_end": f.window_end}


def _quote(alert: Alert, f: Finding, bound: float | None = None) -> None:
    """The summary, metric and evidence lines of ``f`` (the texts every rendering prints); ``bound``:
    the threshold the alert fired on, quoted by its resolution."""
    q = quote(f)
    if bound is not None:
        q = dataclasses.replace(q, bound=bound)
    alert.annotations["summary"] = f.summary or _summary(f)
    alert.annotations["metric"] = q.metric_text()
    if q.sequential:
        alert.annotations["evidence"] = q.evidence_text()
    else:
        alert.annotations.pop("evidence", None)


def _note_latest(alert: Alert, f: Finding) -> None:
    q = quote(f)
    alert.values["latest_statistic"] = q.value
    alert.values["latest_window_end"] = f.window_end
    if q.evidence is not None:
        alert.values["latest_evidence"] = q.evidence


def past_threshold(alert: Alert, finding: Finding) -> bool:
    """Whether ``finding`` is on the bad side of the threshold ``alert`` fired on (the side its own
    number was on when it fired): for a sequential check its evidence (CUSUM S against the h it
    fired on), else its statistic.

    >>> from driftwarden.detectors.findings import Finding
    >>> a = Alert(fingerprint="f", severity="warning", labels={}, starts_at=0,
    ...           values={"statistic": 0.31, "threshold": 0.2858})
    >>> def f(x): return Finding("multivariate_drift", "pca", "features", x, 0.31, False, 0.0, 2000)
    >>> past_threshold(a, f(0.3053)), past_threshold(a, f(0.2803))
    (True, False)
    """
    q = quote(finding)
    if "evidence" in alert.values and q.evidence is not None:
        fired, threshold, now = alert.values.get("evidence"), alert.values.get("evidence_threshold"), q.evidence
    else:
        fired, threshold, now = alert.values.get("statistic"), alert.values.get("threshold"), q.value
    if fired is None or threshold is None or not math.isfinite(now):
        return False
    side = 1.0 if fired >= threshold else -1.0
    return (now - threshold) * side >= 0


def _cleared(alert: Alert, f: Finding) -> str:
    """Why ``alert`` resolved: the number that cleared, against the threshold it fired on."""
    q = quote(f)
    if q.evidence is not None and alert.values.get("evidence_threshold") is not None:
        number, threshold = f"CUSUM S {q.evidence:.4g}", alert.values["evidence_threshold"]
    else:
        number, threshold = f"{q.value:.4g}", alert.values.get("threshold")
    bound = f" vs threshold {threshold:.4g}" if threshold is not None else ""
    return f"{number}{bound} in the window ending {_utc(f.window_end)}"


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(f: Finding) -> str:
    p = f" (p={f.p_value:.3g})" if f.p_value is not None else ""
    return (
        f"{f.kind} {f.detector} on {f.subject}: {f.statistic:.4g} vs threshold {f.threshold:.4g}{p} over {f.window_size} events"
    )
