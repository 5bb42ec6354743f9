"""Throughput through a real Kafka broker, per client: the client alone vs. `driftwarden run`'s loop.

    python bench/kafka_run.py [--events 100000] [--repeats 3] [--clients kafka-python,kafka-python-inline,confluent-kafka]
                              [--profile confluent-kafka] [--json figures.json] [--idle SECONDS]

Starts the test broker (or uses DRIFTWARDEN_TEST_BOOTSTRAP), produces the synthetic churn
traffic (predictions + outcomes) once, then, ``--repeats`` times and for each client in turn,
consumes all of it from the beginning with a fresh consumer group:

* raw: the client library alone with the daemon's consumer settings, counting records (for
  kafka-python that includes aiokafka's compiled record reader where it can be used,
  daemon/kafka_records.py; ``stock`` is kafka-python's own record loop, measured beside it);
* decode (once per run): the same messages, in the same batches, through the decoders alone
  (typed predictions by key, outcomes): the floor of the daemon's own work;
* in-process (once per run): the same messages handed to App.handle without a broker, the
  ceiling any client can reach;
* end-to-end: the real App (decode, join, detectors, alerts, checkpoints) fed by the daemon's
  source for that client (``kafka.client``); kafka-python's consumer runs in a process of its own
  (daemon/consumer_process.py), ``kafka-python-inline`` in the daemon's (``kafka.consumer_process:
  false``), measured beside it. Each run says where its loop's time went: seconds in the source's
  polls (and how many handed on nothing), seconds in App.handle.

Prints each run, then per client the medians and the ratio end-to-end / raw (both measured in
the same run, interleaved, so a busy machine slows both alike). ``--profile CLIENT`` runs one
more end-to-end pass under cProfile and prints where the time went. ``--json PATH`` writes the
figures with their baselines for bench/run_all.py. ``--idle SECONDS`` then runs each client's
loop on empty topics and prints what waiting costs: CPU of the daemon's process and of
kafka-python's consumer process, and that process's RSS.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from bench.figures import figure  # noqa: E402
from bench.fleet import rss_of  # noqa: E402
from driftwarden.daemon import kafka_records  # noqa: E402
from driftwarden.daemon.app import App, prepare_loop  # noqa: E402
from driftwarden.daemon.cli import single_threaded_numerics  # noqa: E402
from driftwarden.daemon.config import Config, parse_config  # noqa: E402
from driftwarden.daemon.events import decode_outcomes  # noqa: E402
from driftwarden.daemon.kafka_io import KafkaSource, open_dead_letters, open_source  # noqa: E402
from driftwarden.daemon.pipeline import Message  # noqa: E402
from driftwarden.daemon.polled import MESSAGE_READER, Polled, Run  # noqa: E402
from driftwarden.daemon.simulate import FEATURES, Scenario, messages, write_reference  # noqa: E402
from driftwarden.daemon.simulate_kafka import produce_scenario  # noqa: E402
from driftwarden.daemon.typed_events import TypedDecoders  # noqa: E402
from tests.broker.kafka import kafka_broker  # noqa: E402

# kafka-python-inline: kafka-python with its consumer in the daemon's process (kafka.consumer_process: false)
CLIENTS = ("kafka-python", "kafka-python-inline", "confluent-kafka")


def _config(bootstrap: str, topics: dict[str, str], workdir: Path, client: str) -> Config:
    run = uuid.uuid4().hex[:8]
    inline = client == "kafka-python-inline"
    return parse_config({
        "kafka": {"client": "kafka-python" if inline else client, "consumer_process": not inline,
                  "bootstrap_servers": bootstrap, "group_id": f"bench-{run}",
                  "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                  "dead_letter_topic": topics["dlq"], "poll_timeout": "200ms"},
        "state": {"path": str(workdir / f"state-{run}" / "dw.db"), "checkpoint_interval": "5s"},
        "http": {"enabled": False},
        "models": [{"id": "churn", "task": "binary", "reference": "reference.parquet",
                    "features": {f: {"type": t} for f, t in FEATURES.items()}}],
    }, base_dir=str(workdir))


STALL_SECONDS = 120.0  # no record for this long: the run is reported as stalled, not waited for forever


class Stalled(Exception):
    """A run whose consumer handed on nothing for STALL_SECONDS (the figure is left out, and said)."""


def _timed(poll: Callable[[], int], total: int) -> float:
    """Messages/s from the first non-empty batch until ``total`` were seen."""
    started, seen = None, 0
    progress = time.monotonic()
    while seen < total:
        n = poll()
        if n and started is None:
            started = time.perf_counter()
        seen += n
        if n:
            progress = time.monotonic()
        elif time.monotonic() - progress > STALL_SECONDS:
            raise Stalled(f"nothing for {STALL_SECONDS:.0f} s after {seen:,} of {total:,} messages")
    assert started is not None
    return seen / (time.perf_counter() - started)


def _attempt(what: str, measure: Callable[[], float]) -> float:
    """``measure()``, or NaN (printed) when its consumer stalled."""
    try:
        return measure()
    except Stalled as exc:
        print(f"{what}: STALLED ({exc}); left out of the medians", flush=True)
        return math.nan


def raw_rate(config: Config, total: int, stock: bool = False) -> float:
    """The floor: the client library alone, with the daemon's consumer settings, no Message objects.

    ``stock``: kafka-python with its own record loop (without aiokafka's reader, daemon/kafka_records.py).
    """
    settings = config.kafka
    topics = [settings.predictions_topic, settings.outcomes_topic]
    if settings.client == "confluent-kafka":
        from confluent_kafka import Consumer

        from driftwarden.daemon.kafka_confluent import consumer_config

        consumer = Consumer(consumer_config(settings))
        consumer.subscribe(topics)
        timeout, batch = 0.2, settings.max_poll_records
        try:
            return _timed(lambda: sum(1 for r in consumer.consume(batch, timeout) if r.error() is None), total)
        finally:
            consumer.close()
    kp = KafkaSource._consumer(settings)
    if stock:
        kafka_records.uninstall()
    kp.subscribe(topics=topics)
    try:
        return _timed(lambda: sum(len(b) for b in kp.poll(timeout_ms=200).values()), total)
    finally:
        kp.close(autocommit=False)
        if stock:
            kafka_records.install()


def end_to_end_rate(config: Config, total: int, split: dict[str, float] | None = None) -> float:
    """`driftwarden run`'s loop (App.run without its delivery thread), fed by the configured client.

    ``split``: filled with the seconds the loop spent in the source's polls and in App.handle, and
    the polls that handed on nothing, once records came (where a run loses to the in-process rate).
    """
    dead = open_dead_letters(config.kafka)
    app = App(config, dead, producer=dead.producer)
    source = open_source(config.kafka, stored_offsets=app.checkpoint.offsets, on_revoke=app.save)
    prepare_loop()  # as App.run does
    spent = split if split is not None else {}
    spent.update(poll=0.0, handle=0.0, polls=0, empty=0)
    counting = False

    def step() -> int:
        nonlocal counting
        started = time.perf_counter()
        messages = source.poll()
        polled = time.perf_counter()
        if messages:
            app.handle(messages)
        if counting or messages:
            counting = True
            spent["poll"] += polled - started
            spent["handle"] += time.perf_counter() - polled
            spent["polls"] += 1
            spent["empty"] += not messages
        app.housekeeping(source)
        return len(messages)

    try:
        rate = _timed(step, total)
        app.save(source)
        return rate
    finally:
        source.close()
        app.close()
        dead.close()


def _batches(config: Config, scenario: Scenario) -> list[Polled]:
    """The scenario's messages in production order, in poll-sized batches of one run per topic (as a source gives)."""
    topics = {"predictions": config.kafka.predictions_topic, "outcomes": config.kafka.outcomes_topic}
    next_offset = dict.fromkeys(topics.values(), 0)
    batch: list[Message] = []
    for name, key, value in messages(scenario):
        topic = topics[name]
        batch.append(Message(topic, 0, next_offset[topic], key, value))
        next_offset[topic] += 1
    size = config.kafka.max_poll_records
    out = []
    for i in range(0, len(batch), size):
        chunk = batch[i:i + size]
        out.append(Polled(Run(t, 0, [m for m in chunk if m.topic == t], MESSAGE_READER) for t in topics.values()))
    return out


class _GcTime:
    """Seconds spent in Python's cyclic garbage collector while entered (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start

    def __enter__(self) -> _GcTime:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


def in_process_rate(config: Config, scenario: Scenario) -> tuple[float, float]:
    """The ceiling without a broker: the same messages (production order) handed to App.handle in polls' batches.

    Returns messages/s and the share of that time spent in the cyclic garbage collector.
    """
    batches = _batches(config, scenario)
    dead = _Discard()
    app = App(config, dead)
    prepare_loop()
    try:
        with _GcTime() as collecting:
            started = time.perf_counter()
            for b in batches:
                app.handle(b)
                app.housekeeping(None)
            elapsed = time.perf_counter() - started
        return sum(map(len, batches)) / elapsed, collecting.seconds / elapsed
    finally:
        app.close()


def decode_rate(config: Config, scenario: Scenario) -> float:
    """The floor of the daemon's own work: the same batches through the decoders alone (messages/s)."""
    batches = _batches(config, scenario)
    typed = TypedDecoders({m.id: m.spec() for m in config.models})
    started = time.perf_counter()
    for b in batches:
        predictions, outcomes = b.split(config.kafka.predictions_topic)
        typed.decode_predictions(predictions.key_column(), predictions.value_column())
        decode_outcomes(outcomes.value_column())
    return sum(map(len, batches)) / (time.perf_counter() - started)


class _Discard:
    def send(self, message: Message, reason: str) -> None:
        pass


def profile(config: Config, total: int, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    end_to_end_rate(config, total)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cost(config: Config, seconds: float) -> dict[str, float]:
    """`driftwarden run`'s loop on topics with nothing to read: CPU (share of one core) of the daemon's
    process and of its consumer process (kafka-python's), and the consumer process's RSS.

    The loop is the one :func:`end_to_end_rate` times; it runs until it was assigned its partitions
    (and a few polls more), then ``seconds`` are measured.
    """
    dead = open_dead_letters(config.kafka)
    app = App(config, dead, producer=dead.producer)
    source = open_source(config.kafka, stored_offsets=app.checkpoint.offsets, on_revoke=app.save)
    prepare_loop()
    child = getattr(getattr(source, "process", None), "pid", None)

    def step() -> None:
        if source.poll():
            raise AssertionError("the idle topics had a record")
        app.housekeeping(source)

    try:
        settle = time.monotonic() + 60
        while not source.assigned() and time.monotonic() < settle:
            step()
        for _ in range(5):
            step()
        own = time.process_time()
        theirs = _cpu_seconds(child) if child else 0.0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            step()
        elapsed = time.monotonic() - started
        out = {"daemon_cpu": (time.process_time() - own) / elapsed}
        if child:
            out["consumer_cpu"] = (_cpu_seconds(child) - theirs) / elapsed
            out["consumer_rss_mib"] = rss_of(child) / 2**20
        return out
    finally:
        source.close()
        app.close()
        dead.close()


def _median(rates: list[float]) -> float:
    """Median of the runs that did not stall (NaN if all did)."""
    done = [r for r in rates if not math.isnan(r)]
    return statistics.median(done) if done else math.nan



def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000, help="predictions (outcomes come on top)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--profile", choices=CLIENTS, help="one more end-to-end run of this client under cProfile")
    parser.add_argument("--json", type=Path, help="write the figures and their baselines here (bench/run_all.py)")
    parser.add_argument("--idle", type=float, default=0.0, metavar="SECONDS",
                        help="then, per client, the loop on empty topics for this long: its CPU and the consumer "
                             "process's RSS")
    args = parser.parse_args()
    clients = [c for c in args.clients.split(",") if c]
    with kafka_broker() as (bootstrap, _), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario = Scenario(events=args.events, label_delay=500)
        write_reference(work / "reference.parquet", scenario)
        topics = {k: f"bench-{k}-{uuid.uuid4().hex[:6]}" for k in ("predictions", "outcomes", "dlq")}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()])
        admin.close()
        t0 = time.perf_counter()
        total = produce_scenario(bootstrap, scenario, topics["predictions"], topics["outcomes"])
        print(f"produced {total:,} messages ({args.events:,} predictions + outcomes) "
              f"in {time.perf_counter() - t0:.1f}s")
        inproc: list[float] = []
        decoded: list[float] = []
        raw: dict[str, list[float]] = {c: [] for c in clients}
        # kafka-python's own record loop, when the daemon's kafka-python reads records with aiokafka's reader
        reader = kafka_records.available()
        stock: dict[str, list[float]] = {c: [] for c in clients if reader and c.startswith("kafka-python")}
        e2e: dict[str, list[float]] = {c: [] for c in clients}
        for i in range(args.repeats):
            decoded.append(decode_rate(_config(bootstrap, topics, work, clients[0]), scenario))
            rate, gc_share = in_process_rate(_config(bootstrap, topics, work, clients[0]), scenario)
            inproc.append(rate)
            print(f"run {i + 1} {'no broker':>19}: in-process {inproc[-1]:>10,.0f}/s (App.handle alone, "
                  f"{gc_share:.0%} of it in the cyclic GC); decode alone {decoded[-1]:>10,.0f}/s")
            for client in clients:  # interleaved: a noisy neighbour slows both figures of a run alike
                raw[client].append(_attempt(f"{client} raw",
                                            partial(raw_rate, _config(bootstrap, topics, work, client), total)))
                split: dict[str, float] = {}
                e2e[client].append(_attempt(f"{client} end-to-end", partial(
                    end_to_end_rate, _config(bootstrap, topics, work, client), total, split)))
                if client in stock:
                    stock[client].append(_attempt(f"{client} raw, stock", partial(
                        raw_rate, _config(bootstrap, topics, work, client), total, stock=True)))
                    print(f"run {i + 1} {client:>19}: raw with kafka-python's own record loop "
                          f"{stock[client][-1]:>10,.0f}/s  (end-to-end / that: {e2e[client][-1] / stock[client][-1]:.2f}x)")
                print(f"run {i + 1} {client:>19}: raw {raw[client][-1]:>10,.0f}/s  "
                      f"end-to-end {e2e[client][-1]:>10,.0f}/s  ({e2e[client][-1] / raw[client][-1]:.2f}x; "
                      f"polls {split['poll']:.2f} s, {split['empty']:.0f} of {split['polls']:.0f} empty; "
                      f"App.handle {split['handle']:.2f} s)")
        print(f"\nmedians of {args.repeats} runs, {total:,} messages each (messages/s):")
        med_in, med_dec = statistics.median(inproc), statistics.median(decoded)
        print(f"{'in-process':>19}  {med_dec:>10,.0f}  {med_in:>10,.0f}  {med_in / med_dec:.2f}x  "
              "(decode alone vs App.handle, no broker)")
        print(f"{'client':>19}  {'raw':>10}  {'end-to-end':>10}  ratio")
        results: dict[str, Any] = {}
        for client in clients:
            r, e = _median(raw[client]), _median(e2e[client])
            if math.isnan(r) or math.isnan(e):
                print(f"{client:>19}  stalled in every run: no figure")
                continue
            results[client] = (r, e)
            print(f"{client:>19}  {r:>10,.0f}  {e:>10,.0f}  {e / r:.2f}x")
        if "confluent-kafka" in results:
            r, e = results["confluent-kafka"]
            target = min(0.8 * r, 200_000)
            print(f"confluent-kafka target: end-to-end >= min(0.8 x raw, 200,000) = {target:,.0f}/s: "
                  f"{'met' if e >= target else 'NOT met'}")
        if "kafka-python" in results:
            r, e = results["kafka-python"]
            print(f"kafka-python target: end-to-end >= 0.8 x raw = {0.8 * r:,.0f}/s: {'met' if e >= 0.8 * r else 'NOT met'}")
        stock_medians = {c: m for c, rates in stock.items() if c in results and not math.isnan(m := _median(rates))}
        for client, m in stock_medians.items():
            r, e = results[client]
            print(f"{client} with kafka-python's own record loop (no aiokafka reader): raw {m:,.0f}/s; end-to-end "
                  f"{e:,.0f}/s is {e / m:.2f}x of it (the reader makes the client alone {r / m:.2f}x as fast)")
        if "kafka-python" in results and "kafka-python-inline" in results:
            e, inline = results["kafka-python"][1], results["kafka-python-inline"][1]
            print(f"kafka-python, consumer process vs in the daemon's process: {e:,.0f} vs {inline:,.0f}/s ({e / inline:.2f}x)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:,.0f} MiB")
        if args.json:
            command = f"bench/kafka_run.py --events {args.events} --repeats {args.repeats}"
            figures = [figure(f"App.handle, no broker ({command}, 6 features)", med_in, "messages/s",
                              "decode alone, same batches", med_dec)]
            for client, (r, e) in results.items():
                figures.append(figure(f"{client}: driftwarden run's loop through the broker", e, "messages/s",
                                      f"{client} consumer alone, daemon's settings", r))
                figures.append(figure(f"{client}: driftwarden run's loop through the broker", e, "messages/s",
                                      "App.handle, no broker (the ceiling)", med_in))
                if client in stock_medians:
                    figures.append(figure(f"{client}: driftwarden run's loop through the broker", e, "messages/s",
                                          "kafka-python consumer alone with its own record loop",
                                          stock_medians[client]))
            if "kafka-python" in results and "kafka-python-inline" in results:
                figures.append(figure("kafka-python, its consumer in a process of its own: the loop", results["kafka-python"][1],
                                      "messages/s", "consumer in the daemon's process (kafka.consumer_process: false)",
                                      results["kafka-python-inline"][1]))
            figures.append(figure("peak RSS of the kafka bench (all runs)", peak, "MiB"))
            args.json.write_text(json.dumps({"bench": "kafka_run", "command": command, "figures": figures}, indent=1))
        if args.idle:
            quiet = {k: f"bench-idle-{k}-{uuid.uuid4().hex[:6]}" for k in ("predictions", "outcomes", "dlq")}
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic(t, 1, 1) for t in quiet.values()])
            admin.close()
            print(f"\nidle: the loop polling empty topics for {args.idle:.0f} s (share of one core; poll_timeout "
                  "200ms, fetch_max_wait as configured):")
            for client in clients:
                cost = idle_cost(_config(bootstrap, quiet, work, client), args.idle)
                child = (f", consumer process {cost['consumer_cpu']:.2%} CPU, {cost['consumer_rss_mib']:.0f} MiB RSS"
                         if "consumer_cpu" in cost else "")
                print(f"{client:>19}: daemon process {cost['daemon_cpu']:.2%} CPU{child}")
        if args.profile:
            print(f"\ncProfile of one end-to-end run ({args.profile}), by own time:")
            print(profile(_config(bootstrap, topics, work, args.profile), total))
    return 0


if __name__ == "__main__":
    single_threaded_numerics()  # as `driftwarden run` does
    raise SystemExit(main())
