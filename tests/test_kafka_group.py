"""Several instances in one consumer group: state follows the partition (issue 11).

Twelve models (two per partition) on predictions/outcomes topics of 6 partitions. Instances are
``driftwarden run`` processes with ``state.backend: kafka``, each with a state directory of its
own (no shared disk), in one consumer group (``kafka.session_timeout`` 10 s, the default).
During the stream: one instance, then three; one of them is kill -9'd while it processes, and
the time until the moved models' next batch is processed elsewhere (the takeover) is measured
on the survivors' ``driftwarden_events_total``;
the killed one comes back; a rolling restart of all three (SIGTERM, start, rejoin, one at a
time); back to one instance, which reads the rest of the stream.

Then, against one instance reading the same topics alone (new group, fresh SQLite state):

- every model's findings (each window's statistic and verdict, recorded by
  ``tests.chaos.recording_daemon``) equal;
- labelled events per model = outcomes produced;
- each notification reached the Slack and CI stand-ins exactly once per idempotency key, and
  every request came from the instance the model's partition was last assigned to at that
  moment (none from a fenced owner: ownership is read from the instances' ``partitions
  assigned/revoked`` log lines).

It runs under ``make chaos`` (minutes; it starts five daemons one after another).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from driftwarden.daemon.simulate import FEATURES, Scenario, messages, write_reference
from driftwarden.daemon.status_cmd import collect
from tests.broker.kafka import free_port
from tests.chaos.daemon_process import DaemonProcess, metric_sum
from tests.chaos.ownership import Span, latest_assignee, owner_at, partition_of, spans
from tests.chaos.recording_daemon import ENV as FINDINGS_ENV
from tests.chaos.recording_daemon import Row, read_findings
from tests.chaos.standins import flaky_standins
from tests.chaos.topics import end_offsets

pytestmark = [pytest.mark.chaos, pytest.mark.kafka]

PARTITIONS = 6
EVENTS = 1200  # predictions per model (each labelled)
WINDOW = 200
# kafka.session_timeout. A member releasing or restoring its partitions does not heartbeat (the
# rebalance callbacks run on the client's IO thread): with 6 s, on a loaded 2-core machine where
# releasing 6 models took ~6 s, members were expelled again and again (a rebalance storm)
SESSION_TIMEOUT_S = 10
CI_SECRET = "group-ci-secret"
NAMES = ("a", "b", "c")


def _model_ids() -> list[str]:
    """Twelve model ids, two per partition under the default partitioner (so every instance owns some)."""
    chosen: list[str] = []
    per: Counter[int] = Counter()
    for i in range(1000):
        name = f"model-{i:02d}"
        p = partition_of(name.encode(), PARTITIONS)
        if per[p] < 2:
            chosen.append(name)
            per[p] += 1
        if len(chosen) == 12:
            return chosen
    raise AssertionError("no twelve ids two per partition")


MODELS = _model_ids()
SHIFTED = (MODELS[0], MODELS[5], MODELS[9])  # covariate shift: drift alerts, retraining requests
CONCEPT = MODELS[3]


def _scenario(i: int, model_id: str) -> Scenario:
    return Scenario(model_id=model_id, events=EVENTS, label_delay=100, rate=5.0 + i, seed=40 + i,
                    covariate_shift_at=EVENTS // 3 if model_id in SHIFTED else None,
                    concept_drift_at=EVENTS // 2 if model_id == CONCEPT else None)


def _stream() -> list[tuple[str, bytes, bytes]]:
    """Every model's messages in its production order, models interleaved."""
    streams = [messages(_scenario(i, m), chunk=1000) for i, m in enumerate(MODELS)]
    out: list[tuple[str, bytes, bytes]] = []
    while streams:
        for s in list(streams):
            try:
                out.append(next(s))
            except StopIteration:
                streams.remove(s)
    return out


def _write_config(path: Path, bootstrap: str, topics: dict[str, str], group: str, port: int, reference: Path,
                  slack_url: str, ci_url: str, backend: str) -> None:
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": group, "predictions_topic": topics["predictions"],
                  "outcomes_topic": topics["outcomes"], "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms",
                  "session_timeout": f"{SESSION_TIMEOUT_S}s", "max_poll_records": 500},
        "state": {"path": str(path.parent / "state" / "driftwarden.db"), "checkpoint_interval": "1s", "backend": backend},
        "http": {"enabled": True, "host": "127.0.0.1", "port": port},
        "logging": {"format": "json"},
        "reports": {"directory": str(path.parent / "reports")},
        "models": [{"id": m, "task": "binary", "reference": str(reference),
                    "features": {name: {"type": kind} for name, kind in FEATURES.items()},
                    "monitoring": {"window_size": WINDOW}} for m in MODELS],
        "alerting": {
            "group_wait": "0s", "group_interval": "1s", "for_windows": 1,
            "receivers": {"oncall": {"type": "slack", "channel": "C0GROUP", "base_url": slack_url},
                          "ci": {"type": "webhook", "url": ci_url, "secret_env": "DRIFTWARDEN_CI_SECRET"}},
            "route": {"receiver": "oncall"},
            "retraining": {m: {"receiver": "ci", "min_new_labels": 0} for m in SHIFTED},
        },
    }
    path.write_text(yaml.safe_dump(config))


def _daemon(tmp_path: Path, name: str, bootstrap: str, topics: dict[str, str], group: str, reference: Path,
            slack_url: str, ci_url: str, backend: str = "kafka") -> DaemonProcess:
    """One instance; ``backend``: ``state.backend`` (kafka: its models' state follows their partitions)."""
    home = tmp_path / name  # its own directory: state, reports, log, findings
    home.mkdir()
    port = free_port()
    _write_config(home / "driftwarden.yaml", bootstrap, topics, group, port, reference, slack_url, ci_url, backend)
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-test-token", "DRIFTWARDEN_CI_SECRET": CI_SECRET,
           FINDINGS_ENV: str(home / "findings.jsonl")}
    return DaemonProcess(home / "driftwarden.yaml", port, home / "daemon.log", env,
                         module="tests.chaos.recording_daemon", name=name)


def _wait(what: str, condition: Callable[[], bool], timeout: float, check: Callable[[], None]) -> float:
    """Poll ``condition`` (every 0.1 s) until true; the seconds it took. ``check`` raises on a dead daemon."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        check()
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not reached in {timeout:.0f} s: {what}")


class Group:
    """The three instances, who owns what, and the topics' end offsets."""

    def __init__(self, daemons: dict[str, DaemonProcess], topics: dict[str, str]) -> None:
        self.daemons = daemons
        self.topics = topics
        self.all_partitions = {(topics[t], p) for t in ("predictions", "outcomes") for p in range(PARTITIONS)}

    def running(self) -> list[DaemonProcess]:
        return [d for d in self.daemons.values() if d.proc is not None and d.proc.poll() is None]

    def check(self) -> None:
        for d in self.running():
            d.check()

    def spans(self) -> list[Span]:
        now = time.time()
        return [s for d in self.daemons.values() for s in spans(d.name, d.log, d.deaths, now)]

    def holding(self, d: DaemonProcess) -> set[tuple[str, int]]:
        """What ``d``'s current process owns now (its last assignment, unless revoked since)."""
        now = time.time()
        current = [s for s in spans(d.name, d.log, d.deaths, now) if s.start == d.starts and s.until >= now - 0.001]
        return set(current[-1].partitions) if current else set()

    def balanced(self, members: list[DaemonProcess]) -> Callable[[], bool]:
        """The group settled on ``members``: each owns something and together everything, once."""
        def settled() -> bool:
            held = [self.holding(d) for d in members]
            return all(held) and sum(len(h) for h in held) == len(self.all_partitions) \
                and set().union(*held) == self.all_partitions
        return settled

    def models_of(self, partitions: set[tuple[str, int]]) -> list[str]:
        return [m for m in MODELS if (self.topics["predictions"], partition_of(m.encode(), PARTITIONS)) in partitions]


def _events(d: DaemonProcess, model_ids: list[str]) -> dict[str, float] | None:
    samples = d.metrics()
    if samples is None:
        return None
    return {m: metric_sum(samples, "driftwarden_events_total", model=m) for m in model_ids}


def _caught_up(d: DaemonProcess, ends: dict[str, int], outcomes: Counter[str]) -> Callable[[], str | None]:
    """What ``d``'s checkpoint still lacks (offsets short of the ends, labels short of the outcomes), or None."""
    def lacking() -> str | None:
        status = collect(str(d.config))
        if not status.get("checkpointed"):
            return "no checkpoint yet"
        offsets = {tp: n for tp, n in status["offsets"].items() if n}
        if offsets != {tp: n for tp, n in ends.items() if n}:
            return f"offsets {offsets} != ends {ends}"
        labelled = {m: status["models"][m].get("labelled_samples", 0) for m in MODELS}
        if labelled != dict(outcomes):
            return f"labelled {labelled} != outcomes produced {dict(outcomes)}"
        if status["undelivered"]:
            return f"{len(status['undelivered'])} notifications undelivered"
        return None
    return lacking


@pytest.fixture
def group_env(tmp_path: Path, kafka_bootstrap: str) -> Iterator[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:8]
    topics = {"predictions": f"predictions-{suffix}", "outcomes": f"outcomes-{suffix}", "dlq": f"dlq-{suffix}"}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topics["predictions"], PARTITIONS, 1), NewTopic(topics["outcomes"], PARTITIONS, 1),
                             NewTopic(topics["dlq"], 1, 1)])
    finally:
        admin.close()
    reference = tmp_path / "reference.parquet"
    write_reference(reference, Scenario())
    yield {"topics": topics, "suffix": suffix, "reference": reference}


@pytest.mark.timeout(900)
def test_three_instances_scale_kill_and_roll_equal_one_instance(tmp_path: Path, kafka_bootstrap: str,
                                                                group_env: dict[str, Any]) -> None:
    topics, suffix, reference = group_env["topics"], group_env["suffix"], group_env["reference"]
    stream = _stream()
    outcomes = Counter(key.decode() for topic, key, _ in stream if topic == "outcomes")
    began = time.monotonic()
    timeline: list[str] = []

    def note(text: str) -> None:
        timeline.append(f"{time.monotonic() - began:6.1f} s  {text}")
        print(timeline[-1], flush=True)

    # the stream in parts, each produced at one step of the run
    cuts = [0.12, 0.24, 0.34, 0.40, 0.50, 0.58, 0.66, 0.74, 1.0]
    parts = [stream[int(len(stream) * a):int(len(stream) * b)] for a, b in zip([0.0, *cuts], cuts, strict=False)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks="all")

    def produce(n: int) -> None:
        for topic, key, value in parts[n]:
            producer.send(topics[topic], key=key, value=value)
        producer.flush()
        note(f"stream part {n + 1}/{len(parts)}: {len(parts[n]):,} messages produced")

    with ExitStack() as stack:
        stack.callback(producer.close)
        _, slack, ci, slack_url, ci_url = stack.enter_context(flaky_standins(CI_SECRET))
        base_slack = slack_url.removesuffix("/api/")
        base_ci = ci_url.removesuffix("/retrain")
        daemons = {n: _daemon(tmp_path, n, kafka_bootstrap, topics, f"group-{suffix}", reference,
                              f"{base_slack}/{n}/api/", f"{base_ci}/{n}/retrain") for n in NAMES}
        for d in daemons.values():
            stack.callback(d.stop)  # whatever happens: no daemon left behind (by PID)
        group = Group(daemons, topics)
        a, b, c = daemons["a"], daemons["b"], daemons["c"]

        # 1 instance
        a.start()
        took = _wait("a owns every partition", group.balanced([a]), 300, group.check)
        note(f"a alone owns all {len(group.all_partitions)} partitions ({took:.1f} s after its start)")
        produce(0)
        # 1 -> 3
        b.start()
        c.start()
        took = _wait("a, b and c share the partitions", group.balanced([a, b, c]), 300, group.check)
        note(f"scaled 1 -> 3: {', '.join(f'{d.name} {sorted(p for _, p in group.holding(d))}' for d in (a, b, c))}")
        produce(1)
        # kill -9 one instance while it processes
        victim = max((a, b, c), key=lambda d: len(group.holding(d)))
        survivors = [d for d in (a, b, c) if d is not victim]
        moved = group.models_of(group.holding(victim))
        before = _events(victim, moved) or {}
        produce(2)
        _wait(f"{victim.name} processes part 3", lambda: sum((_events(victim, moved) or before).values()) > sum(before.values()),
              60, group.check)
        baseline = {m: sum((_events(d, [m]) or {m: 0.0})[m] for d in survivors) for m in moved}
        victim.kill9()
        killed_at = time.monotonic()
        note(f"kill -9 {victim.name} (owned {len(moved)} models: {moved})")
        produce(3)  # the moved models have events waiting for their new owner
        resumed: dict[str, float] = {}

        def all_resumed() -> bool:
            now = time.monotonic()
            counts = {m: 0.0 for m in moved}
            for d in survivors:
                for m, v in (_events(d, moved) or {}).items():
                    counts[m] += v
            for m in moved:
                if m not in resumed and counts[m] > baseline[m]:
                    resumed[m] = now - killed_at
            return len(resumed) == len(moved)

        def survivors_alive() -> None:
            for d in survivors:
                d.check()

        _wait("the survivors process the moved models", all_resumed, 120, survivors_alive)
        takeover = max(resumed.values())
        note(f"takeover after kill -9: first batch of every moved model {takeover:.1f} s after the kill "
             f"(median {statistics.median(resumed.values()):.1f} s; kafka.session_timeout {SESSION_TIMEOUT_S} s)")
        victim.start()
        _wait("the killed instance rejoined", group.balanced([a, b, c]), 300, group.check)
        note(f"{victim.name} back: 3 instances")
        # rolling restart of all three
        for n, d in enumerate((a, b, c)):
            produce(4 + n)
            code = d.terminate()
            assert code == 0, d.tail()
            d.start()
            _wait(f"{d.name} rejoined after its restart", group.balanced([a, b, c]), 300, group.check)
            note(f"rolling restart: {d.name} stopped (exit 0), started, rejoined")
        # 3 -> 1
        for d in (b, c):
            assert d.terminate() == 0, d.tail()
        _wait("a owns every partition again", group.balanced([a]), 300, group.check)
        note("scaled 3 -> 1")
        produce(7)
        produce(8)
        ends = end_offsets(kafka_bootstrap, [topics["predictions"], topics["outcomes"]])
        lacking = _caught_up(a, ends, outcomes)
        reason: list[str | None] = [None]

        def settled() -> bool:
            reason[0] = lacking()
            return reason[0] is None

        try:
            _wait("the last instance read, labelled and delivered everything", settled, 240, group.check)
            note("a caught up")
        except AssertionError:
            note(f"a did not catch up: {reason[0]}")
        group_status = collect(str(a.config))
        assert a.terminate() == 0, a.tail()
        ownership = group.spans()

        slack_calls = list(slack.state.traces)
        slack_posted = slack.posted_keys()
        ci_requests = list(ci.requests)

    # the same events, one instance alone: fresh group and state, stand-ins of its own
    with ExitStack() as stack:
        _, solo_slack, _, solo_slack_url, solo_ci_url = stack.enter_context(flaky_standins(CI_SECRET))
        solo = _daemon(tmp_path, "solo", kafka_bootstrap, {**topics, "dlq": topics["dlq"] + "-solo"}, f"solo-{suffix}",
                       reference, solo_slack_url, solo_ci_url, backend="sqlite")
        stack.callback(solo.stop)
        solo.start()
        solo_lacking = _caught_up(solo, ends, outcomes)
        _wait("the single instance read, labelled and delivered everything", lambda: solo_lacking() is None, 240, solo.check)
        assert solo.terminate() == 0, solo.tail()
        note("single-instance run over the same events done")
        solo_posts = solo_slack.posted_keys()
        solo_per_model = Counter(m.group(1) for t in solo_slack.state.traces if t.method == "chat.postMessage" and t.key
                                 and t.group_key and (m := re.search(r'model="([^"]*)"', t.group_key)))

    # ---- findings: the group's against the single instance's ------------------------------------
    group_findings: dict[str, set[Row]] = {}
    for d in daemons.values():
        for m, rows in read_findings(d.log.parent / "findings.jsonl").items():
            group_findings.setdefault(m, set()).update(rows)
    solo_findings = read_findings(solo.log.parent / "findings.jsonl")
    differ = {}
    for m in MODELS:
        got, want = group_findings.get(m, set()), solo_findings.get(m, set())
        if got != want:
            differ[m] = (f"{len(want - got)} of {len(want)} windows missing, {len(got - want)} not in the single run, "
                         f"e.g. {sorted(want - got)[:2]} / {sorted(got - want)[:2]}")
    labelled = {m: group_status["models"][m].get("labelled_samples", 0) for m in MODELS}

    # ---- notifications: exactly once, from the owner of the moment --------------------------------
    group_posts = [t for t in slack_calls if t.sender in NAMES and t.method == "chat.postMessage" and t.key]
    posts_per_model = Counter(m.group(1) for t in group_posts
                              if t.group_key and (m := re.search(r'model="([^"]*)"', t.group_key)))
    posted_by_key = Counter(t.key for t in group_posts)
    group_ci = [r for r in ci_requests if r.sender in NAMES]
    ci_ok = Counter(r.key for r in group_ci if 200 <= r.status < 300)
    ci_answers = Counter(r.status for r in group_ci)
    fenced = []
    for t in slack_calls:
        if t.sender not in NAMES or not t.group_key or t.method not in ("chat.postMessage", "chat.update"):
            continue
        model = re.search(r'model="([^"]*)"', t.group_key)
        if model is None:
            continue
        tp = (topics["predictions"], partition_of(model.group(1).encode(), PARTITIONS))
        if t.sender != latest_assignee(ownership, tp, t.at):
            fenced.append(f"slack {t.method} for {model.group(1)} from {t.sender} at {t.at:.3f}, "
                          f"owned by {latest_assignee(ownership, tp, t.at)} (owners {owner_at(ownership, tp, t.at)})")
    for r in group_ci:
        model_id = json.loads(r.body)["model"]
        tp = (topics["predictions"], partition_of(model_id.encode(), PARTITIONS))
        if r.sender != latest_assignee(ownership, tp, r.at):
            fenced.append(f"CI request for {model_id} from {r.sender} at {r.at:.3f}, "
                          f"owned by {latest_assignee(ownership, tp, r.at)}")

    summary = [
        f"group run: {len(stream):,} messages of {len(MODELS)} models over {PARTITIONS} partitions, "
        f"{time.monotonic() - began:.0f} s",
        f"takeover after kill -9 (kafka.session_timeout {SESSION_TIMEOUT_S} s): "
        + ", ".join(f"{m} {s:.1f} s" for m, s in sorted(resumed.items())),
        f"findings: {sum(len(v) for v in group_findings.values()):,} distinct windows in the group run, "
        f"{sum(len(v) for v in solo_findings.values()):,} in the single run; {len(differ)} models differ",
        *(f"  {m}: {why}" for m, why in sorted(differ.items())),
        f"labelled per model {labelled} vs outcomes produced {dict(outcomes)}",
        f"Slack: {len(posted_by_key)} keys posted by the group ({sum(posted_by_key.values())} posts), "
        f"{len(solo_posts)} by the single instance; CI: {len(ci_ok)} keys accepted, answers {dict(ci_answers)}",
        "Slack posts per model, group run vs single run: "
        + ", ".join(f"{m} {posts_per_model[m]}/{solo_per_model[m]}" for m in MODELS),
        f"requests from a fenced owner: {len(fenced)}", *(f"  {f}" for f in fenced[:10]),
        "timeline:", *timeline,
    ]
    print("\n" + "\n".join(summary), flush=True)
    (Path(os.environ.get("GROUP_SUMMARY", tmp_path / "summary.txt"))).write_text("\n".join(summary) + "\n")

    assert posted_by_key and ci_ok, "no notification: the shifted models' drift must be alerted"
    assert not differ, differ
    assert labelled == dict(outcomes)
    assert set(posted_by_key.values()) == {1}, {k: n for k, n in posted_by_key.items() if n > 1}
    assert set(slack_posted.values()) == {1}
    assert set(ci_ok.values()) == {1}, {k: n for k, n in ci_ok.items() if n > 1}
    assert not fenced, fenced
    assert takeover < 60
