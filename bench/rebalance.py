"""A second replica joins a daemon of many models (``state.backend: kafka``), the way a user scales out.

    python bench/rebalance.py [--models 200] [--features 20] [--events 200000] [--partitions 6]
                              [--client kafka-python] [--settle 20]

Starts the test broker (or uses DRIFTWARDEN_TEST_BOOTSTRAP), writes one reference per model
(bench/models.py's synthetic models), produces ``--events`` predictions keyed by model and their
outcomes, starts replica A (``driftwarden run -c <config>``, its own process and state directory)
and lets it read the backlog; then starts replica B in the same consumer group and reads both
daemons' logs until no partition has moved for ``--settle`` seconds:

* each revocation: partitions and models handed over, and the seconds the rebalance callback took
  (the daemon's ``released partitions ... in X s``; kafka-python holds its heartbeats meanwhile);
* each restore: models restored, how many of them were this member's own, handed over and given
  back (not built again), and its seconds (``restored partitions ... in X s``);
* the rebalances each replica went through, members evicted (``UnknownMemberId``), and kafka-python's
  warnings about slow rebalance listeners;
* from B's start until the last restore: the scale-out as the group sees it.

Both daemons are stopped by SIGTERM (then by PID whatever happens), and the broker when started here.
Exit 1 on an ERROR line or a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import models as synthetic  # noqa: E402  (bench/models.py)
from fleet import MiB, fleet_arguments, healthy, produce, rss_of, scrape  # noqa: E402  (bench/fleet.py)
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from tests.broker.kafka import free_port, kafka_broker  # noqa: E402

# (earlier versions logged neither the seconds of a revocation nor the models given back: "released
# partitions [..] (models [..])"; their callback's seconds are read from the child's "partitions revoked")
RELEASED = re.compile(r"released partitions \[[^\]]*\] \((?:(\d+) models|models \[(.*)\])")
RESTORED = re.compile(r"restored partitions \[[^\]]*\] \((\d+) models, (?:(\d+) of them [^,]*, )?"
                      r"(?:(\d+) into the detectors built at start-up, )?.* in ([\d.]+) s")
SLOW_LISTENER = re.compile(r"Rebalance listener _?Listener\.(\w+) for group \S+ took ([\d.]+)s")


class Replica:
    def __init__(self, name: str, work: Path, config: dict, bootstrap: str) -> None:
        self.name, self.port = name, free_port()
        home = work / name
        home.mkdir()
        config = json.loads(json.dumps(config))
        config["http"] = {"enabled": True, "host": "127.0.0.1", "port": self.port}
        config["state"]["path"] = str(home / "state" / "dw.db")
        self.config, self.log_path = home / "driftwarden.yaml", home / "daemon.log"
        self.config.write_text(json.dumps(config))
        self.started = time.time()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([str(Path(sys.executable).parent / "driftwarden"), "run", "-c", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=home)

    def lines(self, since: float = 0.0) -> list[tuple[float, str]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            if at >= since:
                out.append((at, line[24:]))
        return out

    def wait_healthy(self) -> float:
        while not healthy(self.port):
            if self.proc.poll() is not None:
                raise SystemExit(f"replica {self.name} exited with {self.proc.returncode}:\n"
                                 + self.log_path.read_text()[-3000:])
            time.sleep(0.5)
        return time.time() - self.started

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()


def moves(replica: Replica, since: float) -> list[float]:
    """When partitions were assigned or revoked (the child's log lines, in the daemon's log)."""
    return [at for at, text in replica.lines(since) if "partitions assigned" in text or "partitions revoked" in text]


def restoring(replica: Replica) -> bool:
    """An assignment the daemon has not restored yet (its restore runs before the partitions' first batch)."""
    assigned = [at for at, text in replica.lines() if "partitions assigned: [(" in text]
    restored = [at for at, text in replica.lines() if "restored partitions" in text]
    return bool(assigned) and (not restored or restored[-1] < assigned[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    fleet_arguments(ap, events=200_000)
    ap.add_argument("--settle", type=float, default=20.0, help="no partition moved for this long: settled")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--logs", type=Path, default=None, help="copy both daemons' logs here")
    args = ap.parse_args()
    with kafka_broker() as (bootstrap, _), tempfile.TemporaryDirectory(prefix="dw-rebalance-") as tmp:
        work = Path(tmp)
        run = uuid.uuid4().hex[:6]
        topics = {k: f"rebalance-{k}-{run}" for k in ("predictions", "outcomes", "dlq")}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topics["predictions"], args.partitions, 1),
                             NewTopic(topics["outcomes"], args.partitions, 1), NewTopic(topics["dlq"], 1, 1)])
        admin.close()
        paths = synthetic.write_references(work, args.models, args.features, args.reference_rows)
        total = produce(bootstrap, topics, args.models, args.features, args.events)
        print(f"{args.models} models x {args.features} features; produced {total:,} messages over "
              f"{args.partitions} partitions", flush=True)
        config = synthetic.config_dict(work, paths, args.features, args.window_size)
        config["state"]["backend"] = "kafka"
        config["kafka"] = {"client": args.client, "bootstrap_servers": bootstrap, "group_id": f"rebalance-{run}",
                           "predictions_topic": topics["predictions"], "outcomes_topic": topics["outcomes"],
                           "dead_letter_topic": topics["dlq"]}
        replicas: list[Replica] = []
        codes: dict[str, int] = {}
        stopping = float("inf")
        try:
            a = Replica("a", work, config, bootstrap)
            replicas.append(a)
            print(f"A: /healthz after {a.wait_healthy():.1f} s", flush=True)
            counted = 0.0
            while counted < total:
                if time.time() - a.started > args.timeout:
                    raise SystemExit(f"A read {counted:,.0f} of {total:,} messages in {args.timeout:.0f} s")
                time.sleep(2.0)
                counted = scrape(a.port)[3]
            print(f"A: read the backlog ({total:,} messages) {time.time() - a.started:.0f} s after its start, "
                  f"RSS {rss_of(a.proc.pid) / MiB:,.0f} MiB", flush=True)
            time.sleep(6.0)  # a checkpoint or two: every model's state in the changelog
            b = Replica("b", work, config, bootstrap)
            replicas.append(b)
            joined = b.started
            print(f"B: /healthz after {b.wait_healthy():.1f} s", flush=True)
            while not any("partitions assigned: [(" in text for _, text in b.lines(joined)):  # B in the group
                if time.time() - joined > args.timeout:
                    raise SystemExit(f"B got no partition in {args.timeout:.0f} s")
                time.sleep(1.0)
            while True:
                last = max([joined, *moves(a, joined), *moves(b, joined)])
                if time.time() - last >= args.settle and not any(map(restoring, replicas)):
                    break
                if time.time() - joined > args.timeout:
                    print(f"not settled after {args.timeout:.0f} s", flush=True)
                    break
                time.sleep(1.0)
            rss = {r.name: rss_of(r.proc.pid) for r in replicas}
            stopping = time.time()
        finally:
            for r in replicas:
                codes[r.name] = r.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for r in replicas:
                    shutil.copy(r.log_path, args.logs / f"{r.name}.log")
        print(f"\nB joined A ({args.models} models, {args.partitions} partitions, {args.client}):")
        finished = joined
        for r in replicas:  # from B's start until they are told to stop (their last hand-over is not counted)
            lines = [(at, text) for at, text in r.lines(joined) if at < stopping]
            released, revoked_at = [], None
            for at, t in lines:
                if "partitions revoked" in t:
                    revoked_at = at
                elif (m := RELEASED.search(t)) and revoked_at is not None:
                    models = int(m.group(1)) if m.group(1) else len(m.group(2).split(","))
                    released.append((models, round(at - revoked_at, 2)))
            restored = [(at, int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), float(m.group(4)))
                        for at, t in lines if (m := RESTORED.search(t))]
            slow = [(m.group(1), float(m.group(2))) for _, t in lines if (m := SLOW_LISTENER.search(t))]
            evicted = sum(1 for _, t in lines if "UnknownMemberId" in t)
            assigned = sum(1 for _, t in lines if "partitions assigned" in t)
            finished = max([finished, *(at for at, *_ in restored)])
            print(f"  {r.name.upper()}: {assigned} assignments; revocations (models, s) {released or 'none'}; "
                  f"restores (models, of them its own given back, into those built at start-up, s) "
                  f"{[x[1:] for x in restored] or 'none'}")
            print(f"     kafka-python's slow listener warnings {slow or 'none'}; UnknownMemberId lines {evicted}; "
                  f"RSS at the end {rss[r.name] / MiB:,.0f} MiB")
        print(f"  from B's start to the last restore: {finished - joined:.1f} s")
        errors = [f"{r.name}: {text}" for r in replicas for _, text in r.lines() if text.split(" ", 1)[0] == "ERROR"]
        print(f"  exit codes {codes}; ERROR lines {len(errors)}" + "".join(f"\n    {e[:200]}" for e in errors[:5]))
        return 0 if set(codes.values()) == {0} and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
