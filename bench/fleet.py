"""Many models through a real broker, the way a user runs the daemon: `driftwarden run`, its own process.

    python bench/fleet.py [--models 200] [--features 20] [--events 1000000] [--partitions 6]
                          [--client kafka-python] [--window-size 1000] [--scrape-every 5]
                          [--startup-workers N]

Starts the test broker (or uses DRIFTWARDEN_TEST_BOOTSTRAP), writes one reference per model
(bench/models.py's synthetic models: distinct values per model), produces ``--events``
predictions keyed by model over ``--partitions`` partitions and their outcomes 2,000 events
behind (a backlog, as after downtime), then starts ``driftwarden run -c <config>`` as a child
process and, from outside, as an operator sees it:

* start-up: from the process' start until ``/healthz`` answers;
* catch-up: the backlog's messages over the time from the first consumed event until
  ``driftwarden_events_total`` counts them all (read from ``/metrics``, which is scraped every
  ``--scrape-every`` seconds, gzip asked for as Prometheus does; the time is to a scrape's interval);
* RSS of the daemon's process and its children (the consumer process) every few seconds
  (``/proc/<pid>/status``), its peak and last;
* the scrape: seconds and bytes of ``/metrics`` (compressed and not);
* shutdown: SIGTERM until the process is gone (the last checkpoint included).

The daemon is stopped by its PID whatever happens (and the broker, when started here).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import models as synthetic  # noqa: E402  (bench/models.py)
from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from tests.broker.kafka import free_port, kafka_broker  # noqa: E402

MiB = 1024 * 1024


def produce(bootstrap: str, topics: dict[str, str], models: int, features: int, events: int) -> int:
    """The backlog: keyed predictions (key = model id, so a model's events stay in one partition) and outcomes."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024,
                             compression_type="lz4", acks=1)
    traffic = synthetic.Traffic(models, features)
    sent = fed = 0
    while fed < events:
        batch = traffic.poll(min(synthetic.BATCH, events - fed))
        for m in batch:
            producer.send(topics[m.topic], key=m.key, value=m.value)
        fed += sum(1 for m in batch if m.topic == "predictions")
        sent += len(batch)
    for _, key, value in traffic.waiting:  # the outcomes still due: the whole truth arrives
        producer.send(topics["outcomes"], key=key, value=value)
        sent += 1
    producer.flush()
    producer.close()
    return sent


def rss_of(pid: int) -> int:
    """RSS of the process and its children (kafka-python's consumer process, kafka.consumer_process)."""
    total = 0
    for p in (pid, *_children(pid)):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
        except FileNotFoundError:  # exited meanwhile
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


def scrape(port: int) -> tuple[float, int, int, float]:
    """(seconds, gzipped bytes, text bytes, events counted) of one /metrics scrape."""
    started = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body = r.read()
        packed = r.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - started
    text = gzip.decompress(body) if packed else body
    counted = sum(float(line.rsplit(b" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(b"driftwarden_events_total{"))
    return seconds, len(body), len(text), counted


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def fleet_arguments(ap: argparse.ArgumentParser, events: int) -> None:
    """The synthetic models and their backlog (bench/models.py's), as this bench and bench/rebalance.py take them."""
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--events", type=int, default=events, help="predictions (outcomes come on top)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--client", default="kafka-python", choices=["kafka-python", "confluent-kafka"])
    ap.add_argument("--window-size", type=int, default=1000)
    ap.add_argument("--reference-rows", type=int, default=10_000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    fleet_arguments(ap, events=1_000_000)
    ap.add_argument("--scrape-every", type=float, default=5.0)
    ap.add_argument("--startup-workers", type=int, default=None,
                    help="state.startup_workers (default: the daemon's choice)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up on the catch-up after this many seconds")
    args = ap.parse_args()
    with kafka_broker() as (bootstrap, _), tempfile.TemporaryDirectory(prefix="dw-fleet-") as tmp:
        work = Path(tmp)
        run = uuid.uuid4().hex[:6]
        topics = {k: f"fleet-{k}-{run}" for k in ("predictions", "outcomes", "dlq")}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topics["predictions"], args.partitions, 1),
                             NewTopic(topics["outcomes"], args.partitions, 1), NewTopic(topics["dlq"], 1, 1)])
        admin.close()
        t0 = time.perf_counter()
        paths = synthetic.write_references(work, args.models, args.features, args.reference_rows)
        print(f"{args.models} references of {args.reference_rows:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        total = produce(bootstrap, topics, args.models, args.features, args.events)
        print(f"produced {total:,} messages over {args.partitions} partitions in {time.perf_counter() - t0:.0f} s",
              flush=True)
        port = free_port()
        config = synthetic.config_dict(work, paths, args.features, args.window_size)
        config["http"] = {"enabled": True, "host": "127.0.0.1", "port": port}
        if args.startup_workers is not None:
            config["state"]["startup_workers"] = args.startup_workers
        config["kafka"] = {"client": args.client, "bootstrap_servers": bootstrap, "group_id": f"fleet-{run}",
                           "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                           "dead_letter_topic": topics["dlq"]}
        cfg = work / "driftwarden.yaml"
        cfg.write_text(json.dumps(config))
        started = time.perf_counter()
        with open(work / "daemon.log", "w") as log:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "driftwarden"), "run", "-c", str(cfg)],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=work)
        rss: list[tuple[float, int]] = []
        scrapes: list[tuple[float, int, int]] = []
        try:
            while not healthy(port):
                if proc.poll() is not None:
                    raise SystemExit(f"driftwarden run exited with {proc.returncode}: see its log\n"
                                     + (work / "daemon.log").read_text()[-3000:])
                rss.append((time.perf_counter() - started, rss_of(proc.pid)))
                time.sleep(1.0)
            startup = time.perf_counter() - started
            print(f"driftwarden run (pid {proc.pid}): /healthz answers after {startup:.1f} s, "
                  f"RSS {rss_of(proc.pid) / MiB:,.0f} MiB", flush=True)
            last_scrape = None
            counted = 0.0
            while counted < total:
                now = time.perf_counter()
                rss.append((now - started, rss_of(proc.pid)))
                if last_scrape is None or now - last_scrape >= args.scrape_every:
                    last_scrape = now
                    seconds, packed, text, counted = scrape(port)
                    scrapes.append((seconds, packed, text))
                    print(f"  {now - started:7.0f} s: {counted:>12,.0f} of {total:,} events, RSS "
                          f"{rss[-1][1] / MiB:,.0f} MiB, scrape {seconds:.2f} s ({packed / 1e6:.2f} MB gzipped, "
                          f"{text / 1e6:.1f} MB)", flush=True)
                if proc.poll() is not None:
                    raise SystemExit(f"driftwarden run exited with {proc.returncode} during the catch-up")
                if now - started > args.timeout:
                    print(f"gave up after {args.timeout:.0f} s", flush=True)
                    break
                time.sleep(min(2.0, args.scrape_every))
            done = time.perf_counter()
            stop = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=300)
            stopped = time.perf_counter() - stop
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        healthz_at = started + startup
        rate = counted / (done - healthz_at)
        peak = max(v for _, v in rss)
        print(f"\n{args.models} models x {args.features} features, {args.client}, {args.partitions} partitions:")
        print(f"  start-up until /healthz: {startup:.1f} s")
        print(f"  catch-up: {rate:,.0f} messages/s ({counted:,.0f} of {total:,} counted {done - healthz_at:.0f} s "
              f"after /healthz answered, the group join included; to a scrape's interval)")
        print(f"  RSS: peak {peak / MiB:,.0f} MiB, last {rss[-1][1] / MiB:,.0f} MiB")
        print(f"  /metrics scrape: median {statistics.median(s for s, _, _ in scrapes):.2f} s, "
              f"{scrapes[-1][1] / 1e6:.2f} MB gzipped ({scrapes[-1][2] / 1e6:.1f} MB text)")
        print(f"  SIGTERM to exit: {stopped:.1f} s, exit code {code}")
        lines = (work / "daemon.log").read_text().splitlines()
        for line in lines:  # the daemon's own account of its start-up
            if "start-up workers" in line or "models ready in" in line:
                print(f"  daemon: {line.split(' ', 3)[-1][:160]}")
        errors = [line for line in lines if " ERROR " in line]
        print(f"  ERROR lines in the daemon's log: {len(errors)}" + "".join(f"\n    {e[:200]}" for e in errors[:5]))
        return 0 if code == 0 and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
