"""``driftwarden demo``: the daemon's real pipeline on an embedded default.

No Kafka, no Slack: the synthetic churn model's traffic (daemon/simulate.py)
is fed in-process in poll-sized batches through the same :class:`App` that
``driftwarden run`` uses; the clock is the events' own time, so an hour of
traffic replays in seconds. Faults: a covariate shift in ``age`` and
``monthly_spend`` at 1/3 of the stream and a concept drift at 2/3.
Alerts are printed as they fire and written to ``<workdir>/alerts.jsonl``.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from driftwarden.alerts.notify import DeliveryResult, Notification
from driftwarden.alerts.quote import evidence_text, metric_text
from driftwarden.alerts.slack_blocks import segment_text
from driftwarden.daemon.app import App
from driftwarden.daemon.config import parse_config
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages, write_reference

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"


class ConsoleNotifier:
    """Prints each notification as the on-call person would read it; appends it to a JSONL file."""

    def __init__(self, path: Path, out: TextIO = sys.stdout) -> None:
        self.path = path
        self.out = out
        self.count = 0

    def notify(self, notification: Notification) -> DeliveryResult:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(notification.payload(), default=str) + "\n")
        self.count += 1
        if notification.type == "retrain" and notification.retrain is not None:
            print(f"  -> retraining request for {notification.group_labels.get('model')}: "
                  f"{notification.reason}", file=self.out)
            return DeliveryResult(ok=True)
        news = set(notification.new) | set(notification.resolved)
        for alert in notification.alerts:
            if alert.instance not in news:
                continue  # already told: a repeat in the same thread
            nums = metric_text(alert) + (f"\n             evidence: {evidence_text(alert)}" if evidence_text(alert) else "")
            if alert.labels.get("segment"):
                nums += f"\n             segment: {segment_text(alert)}"
            when = datetime.fromtimestamp(alert.starts_at, UTC).strftime("%H:%M")
            state = "RESOLVED" if alert.instance in notification.resolved else alert.state.upper()
            print(
                f"  [{state:8}] since {when} {alert.labels.get('model')} {alert.labels.get('kind')}/"
                f"{alert.labels.get('detector')} on {alert.labels.get('subject')} ({alert.severity}): {nums}",
                file=self.out,
            )
        return DeliveryResult(ok=True)


class DeadLetterFile:
    """The in-process daemon's dead-letter topic: one JSON line per rejected message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def send(self, message: Message, reason: str) -> None:
        self.count += 1
        with self.path.open("a") as f:
            f.write(json.dumps({"topic": message.topic, "partition": message.partition, "offset": message.offset,
                                "reason": reason}) + "\n")


def demo_app(directory: Path, data: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> App:
    """An App on the demo config (or ``data``) with its reference written to ``directory``.

    Alerts go to a :class:`ConsoleNotifier` appending to ``directory/alerts.jsonl`` and printing
    nowhere, dead letters to ``directory/dead-letters.jsonl``: the in-process daemon for tests and benchmarks.
    """
    data = data if data is not None else yaml.safe_load(DEMO_CONFIG.read_text())
    write_reference(directory / data["models"][0]["reference"], Scenario())
    config = parse_config(data, base_dir=str(directory))
    console = ConsoleNotifier(directory / "alerts.jsonl", io.StringIO())
    return App(config, dead_letters=DeadLetterFile(directory / "dead-letters.jsonl"), clock=clock,
               notifiers=dict.fromkeys(config.alerting.receiver_names(), console))


MARKER = ".driftwarden-demo"


def prepare_workdir(work: Path) -> str | None:
    """Make ``work`` ready for a demo run; the problem, if it cannot be.

    Only what an earlier demo run created is removed: a directory the demo did not
    make (no marker file) must be new or empty, else the demo refuses to touch it.
    """
    marker = work / MARKER
    if work.exists() and not work.is_dir():
        return f"--workdir {work} is a file; give a new or empty directory"
    if work.is_dir() and any(work.iterdir()):
        if not marker.is_file():
            return (f"--workdir {work} is not empty and was not made by driftwarden demo; "
                    "give a new or empty directory (nothing was deleted)")
        for name in json.loads(marker.read_text() or "[]"):
            target = work / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists() or target.is_symlink():
                target.unlink()
    work.mkdir(parents=True, exist_ok=True)
    return None


def _record_outputs(work: Path, names: set[str]) -> None:
    """Name in the marker what this run creates at the top of ``work`` (what a later run may remove)."""
    marker = work / MARKER
    known = set(json.loads(marker.read_text() or "[]")) if marker.is_file() else set()
    marker.write_text(json.dumps(sorted((known | names) - {MARKER, ""})))


def _top_level(work: Path, path: Path) -> str:
    """The entry of ``work`` that holds ``path`` ("" when ``path`` lies outside ``work``)."""
    try:
        return path.resolve().relative_to(work).parts[0]
    except (ValueError, IndexError):
        return ""


def run_demo(config_path: str | None, workdir: str, events: int = 60_000, out: TextIO = sys.stdout) -> int:
    work = Path(workdir).resolve()
    problem = prepare_workdir(work)
    if problem:
        print(f"driftwarden demo: {problem}", file=sys.stderr)
        return 2
    before = {p.name for p in work.iterdir()}
    source = Path(config_path) if config_path else DEMO_CONFIG
    scenario = Scenario(events=events, covariate_shift_at=events // 3, concept_drift_at=2 * events // 3)
    data = yaml.safe_load(source.read_text())
    model = data["models"][0]
    write_reference(work / model["reference"], scenario)
    config = parse_config(data, source=str(source), base_dir=str(work))
    _record_outputs(work, {_top_level(work, config.resolve(p)) for p in (
        config.state.path, config.reports.directory, model["reference"], "alerts.jsonl", "dead-letters.jsonl",
        *(m.rebuild_reference.directory for m in config.models))})
    print(f"driftwarden demo: model {model['id']!r}, {events:,} predictions; faults: covariate shift in "
          f"age and monthly_spend at event {scenario.covariate_shift_at:,}, concept drift at "
          f"{scenario.concept_drift_at:,}", file=out)
    alerts_file = work / "alerts.jsonl"
    console = ConsoleNotifier(alerts_file, out)
    notifiers = {name: console for name in config.alerting.receiver_names()}

    offsets = {"predictions": 0, "outcomes": 0}

    def clock() -> float:
        """The replay's wall clock: the time of the latest prediction fed (the events' own time)."""
        return START + offsets["predictions"] / scenario.rate

    app = App(config, DeadLetterFile(work / "dead-letters.jsonl"), clock=clock, notifiers=notifiers)
    started = time.perf_counter()
    batch: list[Message] = []
    topic_names = {"predictions": config.kafka.predictions_topic, "outcomes": config.kafka.outcomes_topic}
    for topic, key, value in messages(scenario):
        batch.append(Message(topic_names[topic], 0, offsets[topic], key, value))
        offsets[topic] += 1
        if len(batch) >= config.kafka.max_poll_records:
            app.handle(batch)
            app.housekeeping()
            batch = []
    if batch:
        app.handle(batch)
    end = clock() + 900  # let group_wait and group_interval run out
    app.clock = lambda: end
    app.reports.drain()
    app.pipeline.finish(end)  # the replay is over: its last findings need not wait for more events
    app.alerts.deliver(end)
    app.save()
    app.close()
    _record_outputs(work, {p.name for p in work.iterdir()} - before)
    elapsed = time.perf_counter() - started
    total = app.totals.predictions + app.totals.outcomes
    print(f"\nprocessed {app.totals.predictions:,} predictions and {app.totals.outcomes:,} outcomes "
          f"in {elapsed:.1f}s ({total / elapsed:,.0f} events/s)", file=out)
    print(f"notifications: {console.count} -> {alerts_file}", file=out)
    print(f"state: {config.resolve(config.state.path)}", file=out)
    reports = sorted(config.resolve(config.reports.directory).glob("*/*/report.html"))
    for html in reports:
        bundle = next(html.parent.glob("*.replay.tar.gz"), None)
        print(f"report: {html}\n        {html.with_name('report.json').name}, {html.with_name('summary.md').name}, "
              f"bundle {bundle.name if bundle else '-'} (driftwarden replay {bundle})", file=out)
    if not reports:
        print("no report was written (no alert fired)", file=out)
    return 0
