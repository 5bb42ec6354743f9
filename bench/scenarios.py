"""Detection scenarios through the daemon's real path: how soon, what named, how noisy.

    python bench/scenarios.py [--quick] [--only NAME[,NAME]] [--jobs 2] [--json out.json] [--batch 500] [--verbose]

Each scenario of :func:`driftwarden.daemon.scenarios.catalogue` (one fault each, plus two
no-drift streams of >= 1M predictions) runs in-process like ``driftwarden demo``: the config a
user would write (declared features with their bounds, the reference file, no ``monitoring``
block: every detector at its default), its encoded messages handed to ``App.handle`` in
poll-sized batches (``--batch`` messages) with the events' own time as the clock, alerts routed
to a capturing receiver, reports written to a temporary directory. The only setting that is not
a default is ``state.checkpoint_interval`` (1h: on the events' clock the default 5 s would
checkpoint ~1 MB of state after every batch; detection does not depend on it).

Per scenario it prints:

* ``detected``: an alert fired at or after the onset;
* ``delay``: predictions fed from the onset until the first alert fired (counted at the end of
  the batch in which it fired: at most ``--batch`` messages late); for performance faults also
  the labelled outcomes of predictions after the onset fed by then;
* ``first alert``: its kind/detector, subject and ``segment``/version labels;
* ``fired``: alerts that fired after the onset (noise: one fault should make one);
* ``notif``: notifications announcing firing alerts after the onset, and in how many groups;
* ``FA``: alerts that fired before the onset or on a no-drift stream, and per 1M predictions of
  that no-drift traffic; the summary line sums every scenario's no-drift traffic;
* wall and CPU seconds of the whole scenario (generating its messages, the reference, the App,
  reports), the daemon's rate in messages (predictions and outcomes) per CPU second spent in
  ``App.handle`` and ``housekeeping`` (CPU time: on a shared machine wall time mostly measures
  the neighbours), and the worker's peak RSS.

Scenarios run in a pool of ``--jobs`` processes (one process per scenario); the figures are
noisy on a shared machine, the detection columns are not (seeded, deterministic).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from driftwarden.alerts.notify import DeliveryResult, Notification
from driftwarden.daemon.app import App, prepare_loop
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.demo import DeadLetterFile
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.scenarios import (
    BOUNDS,
    FEATURES,
    PERFORMANCE_FAULTS,
    Stream,
    catalogue,
    event_times,
    messages,
    write_reference,
)
from driftwarden.detectors.findings import Finding

RECEIVER = "oncall"


def user_config(stream: Stream, reference: str = "reference.parquet") -> dict[str, Any]:
    """What the model's owner writes: the features with their bounds, the reference; defaults elsewhere."""
    features: dict[str, dict[str, Any]] = {}
    for name, kind in FEATURES.items():
        spec: dict[str, Any] = {"type": kind}
        low, high = BOUNDS.get(name, (None, None))
        if low is not None:
            spec["min"] = low
        if high is not None:
            spec["max"] = high
        features[name] = spec
    return {
        "models": [{"id": stream.model_id, "task": "binary", "reference": reference, "features": features}],
        "state": {"path": "state/driftwarden.db", "checkpoint_interval": "1h"},
        "reports": {"directory": "reports"},
        "alerting": {"receivers": {RECEIVER: {"type": "log"}}, "route": {"receiver": RECEIVER}},
    }


@dataclass
class Fired:
    """One alert's firing transition, where the stream was when it happened."""

    predictions: int  # predictions fed when it fired
    outcomes_after_onset: int  # outcomes of predictions at or after the onset fed by then
    kind: str
    detector: str
    subject: str
    severity: str
    labels: dict[str, str]

    def named(self, base_version: str) -> str:
        extra = [f"segment={self.labels['segment']}"] if self.labels.get("segment") else []
        version = self.labels.get("version") or self.labels.get("model_version")
        if version and version != base_version:
            extra.append(f"version={version}")
        return f"{self.kind}/{self.detector} {self.subject}" + (f" [{' '.join(extra)}]" if extra else "")


@dataclass
class Position:
    predictions: int = 0
    outcomes_after_onset: int = 0


class CapturingReceiver:
    """The on-call receiver: keeps every notification it is handed."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []

    def notify(self, notification: Notification) -> DeliveryResult:
        self.notifications.append(notification)
        return DeliveryResult(ok=True)


@dataclass
class Row:
    name: str
    fault: str | None
    events: int
    onset: int | None
    detected: bool
    delay: int | None
    delay_labels: int | None
    first: str
    fired_after: int
    notifications: int
    groups: int
    false_alarms: int
    clean_predictions: int
    seconds: float
    cpu_seconds: float
    messages_per_cpu_s: float
    peak_rss_mb: float
    false_alarm_names: list[str] = field(default_factory=list)
    fired_names: list[str] = field(default_factory=list)  # every alert that fired after the onset
    told_names: list[str] = field(default_factory=list)  # every notification counted in ``notif``

    @property
    def fa_per_million(self) -> float:
        return self.false_alarms / self.clean_predictions * 1e6 if self.clean_predictions else 0.0


def run_stream(stream: Stream, directory: Path, batch_size: int = 500, reports: bool = True) -> Row:
    """Feed ``stream`` through an in-process App; the row of figures.

    ``reports=False`` renders no root-cause report when an alert fires (~10 s each: for tests).
    """
    write_reference(directory / "reference.parquet", stream)
    config = parse_config(user_config(stream), base_dir=str(directory))
    receiver = CapturingReceiver()
    pos = Position()
    now = [float(event_times(stream, np.array([0]))[0])]
    app = App(config, DeadLetterFile(directory / "dead-letters.jsonl"), clock=lambda: now[0],
              notifiers={RECEIVER: receiver})
    if not reports:
        app.pipeline.on_degraded = None
    fired: list[Fired] = []
    inner = app.alerts.ingest

    def ingest(model_id: str, labels: Any, findings: list[Finding], at: float) -> Any:
        changed = inner(model_id, labels, findings, at)
        for a in changed:
            if a.state == "firing":
                lab = dict(a.labels)
                fired.append(Fired(pos.predictions, pos.outcomes_after_onset, lab.get("kind", ""),
                                   lab.get("detector", ""), lab.get("subject", ""), a.severity, lab))
        return changed

    setattr(app.alerts, "ingest", ingest)  # noqa: B010 (observe the firing transitions, change nothing)
    onset = stream.onset if stream.onset is not None else stream.events
    key = stream.model_id.encode()
    offsets = {"predictions": 0, "outcomes": 0}
    batch: list[Message] = []
    prepare_loop()
    started, cpu_started = time.perf_counter(), time.process_time()
    in_daemon = [0.0]  # CPU seconds inside App.handle and housekeeping

    def handle() -> None:
        now[0] = float(event_times(stream, np.array([max(pos.predictions - 1, 0)]))[0])
        cpu = time.process_time()
        app.handle(batch)
        app.housekeeping()
        in_daemon[0] += time.process_time() - cpu
        batch.clear()

    for topic, value, index in messages(stream):
        batch.append(Message(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
        if topic == "predictions":
            pos.predictions = index + 1
        elif index >= onset:
            pos.outcomes_after_onset += 1
        if len(batch) >= batch_size:
            handle()
    if batch:
        handle()
    end = now[0] + 900  # let group_wait and group_interval run out, as the demo does
    now[0] = end
    app.reports.drain()
    app.pipeline.finish(end)
    app.alerts.deliver(end)
    app.close()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    total = sum(offsets.values())

    onset_time = float(event_times(stream, np.array([onset]))[0]) if stream.onset is not None else np.inf
    after = [f for f in fired if f.predictions > onset]
    before = [f for f in fired if f.predictions <= onset]
    told = [n for n in receiver.notifications if n.type == "alerts" and n.new and n.created_at >= onset_time]
    first = after[0] if after else None
    return Row(
        name=stream.name, fault=stream.fault, events=stream.events, onset=stream.onset,
        detected=first is not None and stream.fault is not None,
        delay=first.predictions - onset if first and stream.fault else None,
        delay_labels=first.outcomes_after_onset if first and stream.fault in PERFORMANCE_FAULTS else None,
        first=first.named(stream.model_version) if first and stream.fault else "-",
        fired_after=len(after) if stream.fault else 0,
        notifications=len(told) if stream.fault else 0,
        groups=len({n.group_key for n in told}) if stream.fault else 0,
        false_alarms=len(before) + (len(after) if stream.fault is None else 0),
        clean_predictions=onset if stream.fault is not None else stream.events,
        seconds=seconds, cpu_seconds=cpu_seconds, messages_per_cpu_s=total / max(in_daemon[0], 1e-9),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        false_alarm_names=[f"{f.named(stream.model_version)} @{f.predictions}" for f in
                           (before if stream.fault else fired)],
        fired_names=[f"{f.named(stream.model_version)} ({f.severity}) @+{f.predictions - onset}" for f in after]
        if stream.fault else [],
        told_names=[_told(n, onset_time) for n in told] if stream.fault else [],
    )


def _told(n: Notification, onset_time: float) -> str:
    """One notification: when (event seconds after the onset), which group, why, its lead alert, what is new."""
    group = n.group_key.rsplit("@", 1)[-1]
    lead = n.firing_alerts()[0] if n.firing_alerts() else None
    named = f"{lead.labels.get('kind', '')} {lead.labels.get('subject', '')} ({lead.severity})" if lead else "-"
    new = ", ".join(sorted({a.labels.get("kind", "") + " " + a.labels.get("subject", "") + f" ({a.severity})"
                            for a in n.alerts if a.instance in set(n.new)}))
    return f"+{n.created_at - onset_time:.0f}s group @{group} {n.thread_role} {n.reason}: leads {named}; new {new}"


def _run_one(args: tuple[Stream, int]) -> Row:
    stream, batch_size = args
    with tempfile.TemporaryDirectory(prefix=f"scenario-{stream.name}-") as tmp:
        return run_stream(stream, Path(tmp), batch_size)


def run_suite(streams: list[Stream], jobs: int = 1, batch_size: int = 500) -> list[Row]:
    """Each stream in its own worker process (so that its peak RSS is its own), longest first."""
    order = sorted(range(len(streams)), key=lambda i: -streams[i].events)
    with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
        done = pool.map(_run_one, [(streams[i], batch_size) for i in order], chunksize=1)
    rows = dict(zip(order, done, strict=True))
    return [rows[i] for i in range(len(streams))]


def table(rows: list[Row], verbose: bool = False) -> str:
    out = io.StringIO()
    head = (f"{'scenario':<16}{'detected':>9}{'delay':>9}{'labels':>8}  {'first alert':<44}{'fired':>6}"
            f"{'notif':>6}{'groups':>7}{'FA':>4}{'FA/1M':>8}{'wall s':>8}{'cpu s':>7}{'msg/s':>9}{'RSS MB':>8}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        detected = ("yes" if r.detected else "NO") if r.fault else "-"
        print(f"{r.name:<16}{detected:>9}{_n(r.delay):>9}{_n(r.delay_labels):>8}  {r.first[:43]:<44}"
              f"{r.fired_after if r.fault else '-':>6}{r.notifications if r.fault else '-':>6}"
              f"{r.groups if r.fault else '-':>7}{r.false_alarms:>4}{r.fa_per_million:>8.2f}{r.seconds:>8.1f}"
              f"{r.cpu_seconds:>7.1f}{r.messages_per_cpu_s:>9,.0f}{r.peak_rss_mb:>8.0f}", file=out)
    clean = sum(r.clean_predictions for r in rows)
    alarms = sum(r.false_alarms for r in rows)
    faults = [r for r in rows if r.fault]
    print(f"\ndetected {sum(r.detected for r in faults)}/{len(faults)} faults; false alarms: {alarms} in "
          f"{clean:,} no-drift predictions = {alarms / clean * 1e6 if clean else 0:.2f} per 1M", file=out)
    for r in rows:
        for name in r.false_alarm_names:
            print(f"  false alarm in {r.name}: {name}", file=out)
    for r in rows if verbose else []:
        for name in r.fired_names:
            print(f"  fired in {r.name}: {name}", file=out)
        for name in r.told_names:
            print(f"  told in {r.name}: {name}", file=out)
    return out.getvalue()


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short streams (60k faults, 200k no-drift)")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500, help="messages per App.handle call (a poll)")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--verbose", action="store_true", help="also list every alert that fired after an onset")
    args = parser.parse_args(argv)
    suite = catalogue(quick=args.quick)
    names = args.only.split(",") if args.only else list(suite)
    unknown = [n for n in names if n not in suite]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)} (known: {', '.join(suite)})")
    started = time.perf_counter()
    rows = run_suite([suite[n] for n in names], args.jobs, args.batch)
    print(table(rows, args.verbose), end="")
    print(f"total wall time {time.perf_counter() - started:.0f}s with --jobs {args.jobs} --batch {args.batch}"
          f"{' --quick' if args.quick else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps([{**asdict(r), "fa_per_million": r.fa_per_million} for r in rows],
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
