"""Root-cause reports from the daemon: the on-degraded hook and ``driftwarden report --model ID``.

The rows a report is computed on are the monitor's windows: the last *closed*
windows if the monitor keeps them (``ModelMonitor.last_windows()``, returning
``(PredictionBatch | None, OutcomeBatch | None)``: then the replay reproduces the
alert's statistics exactly), else the currently open windows.

In the long-running loop (``App.run``) reports render on a worker thread: the
consume thread only copies what a report reads (windows, snapshot, state: a few
ms), so a firing alert no longer stalls consumption for the 1-2 s of segment
analysis and plots. Finished reports are attached to their alerts by the
consume thread (``ReportHook.drain``), which is the only one touching alerts;
a group already notified then gets the report as a thread reply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from driftwarden.alerts.model import fingerprint
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.alerts.reports.builder import ReportFiles, build_report, write_report
from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.command_errors import CommandError
from driftwarden.daemon.config import Config, load_config, parse_duration
from driftwarden.daemon.pipeline import ModelRuntime
from driftwarden.daemon.reference import load_reference
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor, compare
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.spec import ModelSpec
from driftwarden.detectors.window import StoredRowsError

log = logging.getLogger(__name__)

REFERENCES_KEPT = 4  # reference tables kept for reports (least recently used dropped): not one per model for ever
STEPS_KEPT = 6  # replay steps in a bundle at most (each a block of rows: an incident rewritten many times)


def monitor_windows(monitor: ModelMonitor) -> tuple[PredictionBatch | None, OutcomeBatch | None]:
    """(prediction window rows, joined outcome window rows): the last evaluated windows, or the
    open ones where none was evaluated yet (after a restart: the last ones are not checkpointed)."""
    window, outcomes = monitor.last_windows()
    if window is None or outcomes is None:
        open_window, open_outcomes = monitor.open_windows()
        window = window if window is not None else open_window
        outcomes = outcomes if outcomes is not None else open_outcomes
    return window, outcomes


@dataclass(frozen=True)
class ReportInputs:
    """What a report reads from a live monitor, copied: it can be rendered on another thread."""

    model_id: str
    spec: ModelSpec
    reference: OutcomeBatch
    current: PredictionBatch | OutcomeBatch
    outcomes: OutcomeBatch | None
    snapshot: dict[str, Any]
    detector_state: dict[str, Any]
    triggering: Sequence[Finding]
    recent: Sequence[Finding]
    now: float
    model_version: str | None
    steps: Sequence[ReplayStep] = ()  # ModelMonitor.replay_steps(): its sequential findings replay from them


def report_inputs(*, model_id: str, monitor: ModelMonitor, reference: OutcomeBatch, now: float,
                  triggering: Sequence[Finding] = (), recent: Sequence[Finding] = (),
                  model_version: str | None = None) -> ReportInputs | None:
    """The monitor's side of a report (window rows, snapshot, state); None when it holds no rows yet.

    The window columns are arrays the monitor never writes again; snapshot and state are fresh.
    """
    window, outcomes = monitor_windows(monitor)
    current: PredictionBatch | OutcomeBatch | None = window if window is not None and len(window) else outcomes
    if current is None or not len(current):
        return None
    if outcomes is not None and not outcomes.features:
        outcomes = None if current is not outcomes else outcomes  # no features: no segments
    return ReportInputs(model_id, monitor.spec, reference, current, outcomes if current is not outcomes else None,
                        monitor.snapshot(), monitor.state(), list(triggering), list(recent), now, model_version,
                        monitor.replay_steps())


def render_report(inputs: ReportInputs, reports_dir: Path, base_url: str | None,
                  report_id: str | None = None) -> ReportFiles:
    """Build and write the report: segment analysis, plots, bundle (the slow part, no monitor access).

    ``report_id``: rewrite that report (an incident's report, updated) instead of writing a new one.
    """
    report = build_report(model_id=inputs.model_id, spec=inputs.spec, reference=inputs.reference,
                          current=inputs.current, outcomes=inputs.outcomes, triggering=inputs.triggering,
                          recent=inputs.recent, snapshot=inputs.snapshot, detector_state=inputs.detector_state,
                          now=inputs.now, model_version=inputs.model_version, steps=inputs.steps)
    if report_id is not None:
        report.report_id = report_id
    return write_report(report, reports_dir, inputs.now, base_url)


def generate_report(*, model_id: str, monitor: ModelMonitor, reference: OutcomeBatch, reports_dir: Path,
                    now: float, triggering: Sequence[Finding] = (), recent: Sequence[Finding] = (),
                    model_version: str | None = None, base_url: str | None = None) -> ReportFiles | None:
    """Build and write a report from a live monitor; None when it holds no window rows yet."""
    inputs = report_inputs(model_id=model_id, monitor=monitor, reference=reference, now=now, triggering=triggering,
                           recent=recent, model_version=model_version)
    return None if inputs is None else render_report(inputs, reports_dir, base_url)


def replay_steps_of(triggering: Sequence[Finding], recent: Sequence[Finding], steps: Sequence[ReplayStep],
                    keep: int = STEPS_KEPT) -> list[ReplayStep]:
    """The replay steps a report's bundle carries, ``keep`` at most: the blocks its ``triggering`` findings
    end with (an incident's report, rewritten, keeps those of its earlier findings), then those of its
    ``recent`` degraded findings, then the newest of each kind."""
    unique = sorted({(s.kind, s.end): s for s in steps}.values(), key=lambda s: s.end)  # the later of two equal
    chosen: list[ReplayStep] = []
    newest = list({s.kind: s for s in unique}.values())
    for wanted in ({f.window_end for f in triggering}, {f.window_end for f in recent}, None):
        for s in reversed(unique if wanted is not None else newest):
            if len(chosen) < keep and (wanted is None or s.end in wanted) and s not in chosen:
                chosen.append(s)
    return sorted(chosen, key=lambda s: s.end)


def _latest_per_check(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per check: the latest window's (a batch can close several windows)."""
    latest: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        if f.key not in latest or f.window_end >= latest[f.key].window_end:
            latest[f.key] = f
    return list(latest.values())


@dataclass
class Incident:
    """The report of one incident (one notification group): its id and the checks it explains."""

    report_id: str
    triggering: dict[tuple[str, str, str], Finding]
    steps: tuple[ReplayStep, ...] = ()  # its bundle's replay steps: a rewrite keeps those of its findings


class ReportHook:
    """``Pipeline(on_degraded=ReportHook(config, alerts))``: a report when a check starts failing.

    One report per incident: the checks whose alerts start firing together, or later in the same
    notification group (``AlertPipeline.incident_of``), are explained by one report, which is
    rewritten in place (same folder and link) as checks join, so a fault's thread links one
    report, not one per check. Only its first version is announced as a reply to the group.
    Without a group (no alert pipeline, or no route) a check gets at most one report per
    ``min_interval`` seconds. The report's link and Markdown summary are attached to the alerts.
    """

    def __init__(self, config: Config, alerts: AlertPipeline | None, min_interval: float = 3600.0) -> None:
        self.config = config
        self.alerts = alerts
        self.min_interval = min_interval
        self.reports_dir = config.resolve(config.reports.directory)
        self._references: dict[str, OutcomeBatch] = {}
        self._last: dict[tuple[str, str, str, str], float] = {}
        self._worker: ThreadPoolExecutor | None = None
        self._rendering: list[tuple[Future[ReportFiles], str, list[Finding], bool]] = []
        self.incidents: dict[str, Incident] = {}  # by notification group key, while the group is open

    def reference(self, runtime: ModelRuntime) -> OutcomeBatch:
        path = runtime.reference_path or str(self.config.resolve(runtime.config.reference))
        refs = self._references
        if path in refs:
            refs[path] = refs.pop(path)  # most recently used last
        else:
            refs[path] = load_reference(path, runtime.spec)
            while len(refs) > REFERENCES_KEPT:  # each a whole reference table (~2 MB at 10k rows x 20 features)
                del refs[next(iter(refs))]
        return refs[path]

    def start_background(self) -> None:
        """Render on a worker thread from now on; the caller's loop calls :meth:`drain`."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftwarden-report")

    def stop_background(self, timeout: float = 120.0) -> None:
        """Wait for the reports being rendered (up to ``timeout``), attach them, and go back to rendering inline."""
        if self._worker is None:
            return
        wait_for([future for future, *_ in self._rendering], timeout=timeout)
        self.drain()
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._worker = None
        for _, mid, *_ in self._rendering:
            log.warning("model %s: a root-cause report was still rendering at shutdown; it is dropped", mid)
        self._rendering = []

    def __call__(self, runtime: ModelRuntime, started: list[Finding], degraded: list[Finding], now: float) -> None:
        """``started``: the checks whose alerts just started firing; ``degraded``: all degraded now."""
        mid = runtime.config.id
        started, degraded = _latest_per_check(started), _latest_per_check(degraded)
        new = [f for f in started if now - self._last.get((mid, *f.key), -np.inf) >= self.min_interval]
        if not new:
            return
        by_incident: dict[str | None, list[Finding]] = {}
        for f in new:
            key = self.alerts.incident_of(fingerprint(mid, *f.key), now) if self.alerts is not None else None
            by_incident.setdefault(key, []).append(f)
        if self.alerts is not None:  # closed incidents: their next alert is another incident
            open_groups = self.alerts.groups.groups
            self.incidents = {k: v for k, v in self.incidents.items() if k in open_groups}
        for key, found in by_incident.items():
            incident = self.incidents.get(key) if key is not None else None
            triggering = {**(incident.triggering if incident else {}), **{f.key: f for f in found}}
            self._report(runtime, list(triggering.values()), degraded, found, now,
                         incident.report_id if incident else None, key)

    def _report(self, runtime: ModelRuntime, triggering: list[Finding], degraded: list[Finding], new: list[Finding],
                now: float, report_id: str | None, incident: str | None) -> None:
        """Render (or rewrite, given ``report_id``) the report on ``triggering`` and attach it to their alerts;
        ``new``: the checks that just started firing."""
        mid = runtime.config.id
        try:
            inputs = report_inputs(model_id=mid, monitor=runtime.monitor, reference=self.reference(runtime), now=now,
                                   triggering=triggering, recent=degraded, model_version=runtime.model_version)
        except Exception:  # a report must never stop the pipeline
            log.exception("model %s: root-cause report failed", mid)
            return
        if inputs is None:
            return
        earlier = self.incidents[incident].steps if incident is not None and incident in self.incidents else ()
        inputs = dataclasses.replace(inputs, steps=replay_steps_of(triggering, degraded, [*earlier, *inputs.steps]))
        for f in new:  # one report per check and interval, also while it renders
            self._last[(mid, *f.key)] = now
        announce = report_id is None
        if report_id is None:
            report_id = _report_id(mid, now, triggering)
        if incident is not None:
            self.incidents[incident] = Incident(report_id, {f.key: f for f in triggering}, tuple(inputs.steps))
        if self._worker is not None:
            self._rendering.append((self._worker.submit(render_report, inputs, self.reports_dir,
                                                        self.config.reports_url(), report_id), mid, triggering,
                                    announce))
            return
        try:
            files = render_report(inputs, self.reports_dir, self.config.reports_url(), report_id)
        except Exception:
            self._failed(mid, triggering)
            return
        self._attach(mid, triggering, files, announce)  # every check of the incident: the same numbers

    def drain(self) -> None:
        """Attach the reports the worker has finished (call from the thread that owns the alerts)."""
        rendering, self._rendering = self._rendering, []
        for future, mid, new, announce in rendering:
            if not future.done():
                self._rendering.append((future, mid, new, announce))
            elif future.exception() is not None:
                self._failed(mid, new, future.exception())
            else:
                self._attach(mid, new, future.result(), announce)

    def _failed(self, mid: str, new: list[Finding], exc: BaseException | None = None) -> None:
        log.error("model %s: root-cause report failed", mid, exc_info=exc or True)
        for f in new:  # the next firing of these checks may try again
            self._last.pop((mid, *f.key), None)

    def _attach(self, mid: str, new: list[Finding], files: ReportFiles, announce: bool = True) -> None:
        log.info("model %s: root-cause report %s%s", mid, files.html, "" if announce else " (updated)")
        if self.alerts is not None:
            link = self._link(files)
            summary = files.markdown.read_text(encoding="utf-8")
            for f in new:
                self.alerts.attach_report(fingerprint(mid, f.kind, f.detector, f.subject), link, summary, announce)

    def _link(self, files: ReportFiles) -> str:
        rel = files.html.relative_to(self.reports_dir).as_posix()
        return f"{self.config.reports_url()}/{rel}"


def _report_id(model_id: str, now: float, triggering: Sequence[Finding]) -> str:
    """A new report's id: its time and a digest of what it explains (as ``build_report`` names one)."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    keys = sorted(f.key for f in triggering)
    return f"{stamp}-{hashlib.sha256(f'{model_id}|{now}|{keys}'.encode()).hexdigest()[:8]}"


def terminal_text(markdown: str) -> str:
    """The Markdown summary for a terminal: without the ``&amp; &lt; &gt;`` escapes written for Slack."""
    return markdown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def report_command(config_path: str, model_id: str, now: float | None = None) -> int:
    """``driftwarden report --model ID -c CONFIG``: a report on the model's checkpointed windows now.

    Prints the HTML path and the Markdown summary; exit 0, or 2 (a :class:`CommandError`) when
    the model is unknown, the daemon has not checkpointed yet or no window rows are checkpointed.
    """
    config = load_config(config_path)
    try:
        mc = config.model(model_id)
    except KeyError:
        raise CommandError(f"unknown model {model_id!r}",
                           f"configured in {config_path}: {', '.join(m.id for m in config.models)}") from None
    spec = mc.spec()
    state_path = config.resolve(config.state.path)
    if not state_path.is_file():
        raise CommandError(f"no checkpoint at {state_path}",
                           "run the daemon with this config first, or check state.path")
    checkpoint = Checkpoint(state_path)
    try:
        state: Any = checkpoint.monitor_state(mc.id)  # this model's alone: a fleet's states are ~1 MB each
        meta = (checkpoint.meta("models") or {}).get(mc.id, {})
        reference = load_reference(meta.get("reference_path") or config.resolve(mc.reference), spec)
        monitor = ModelMonitor(mc.id, spec, reference)
        if state is not None:
            monitor.load_state(state)
    except StoredRowsError as exc:
        raise CommandError(f"model {mc.id!r}: {exc}",
                           f"the checkpoint at {state_path} is inconsistent; the daemon starts this model's "
                           "windows afresh at its next start") from None
    finally:
        checkpoint.close()
    window, _ = monitor_windows(monitor)
    found = compare(spec, reference, window) if window is not None and len(window) else []
    files = generate_report(model_id=mc.id, monitor=monitor, reference=reference,
                            reports_dir=config.resolve(config.reports.directory),
                            now=time.time() if now is None else now, triggering=[f for f in found if f.degraded],
                            recent=found, model_version=meta.get("model_version"), base_url=config.reports_url())
    if files is None:
        raise CommandError(f"model {mc.id!r}: no checkpointed window rows yet, nothing to report",
                           "try again once the daemon has consumed events for it")
    print(files.html)
    print(terminal_text(files.markdown.read_text(encoding="utf-8")))
    return 0


def purge_command(config: Config, now: float) -> None:
    """Scheduler job: archive/purge reports per ``reports.retention``."""
    from driftwarden.alerts.reports.retention import purge_reports

    purge_reports(config.resolve(config.reports.directory), parse_duration(config.reports.retention), now)
