"""What a periodic checkpoint costs per model: seconds (CPU and wall) and bytes, and where the time goes.

    python bench/checkpoint.py [--models 200] [--events 600000] [--window-size 1000] [--repeats 5]
                               [--between 10000] [--root DIR]

Feeds ``--events`` predictions (and their outcomes) of ``--models`` models of 20 numeric
features through ``App.handle`` (``bench/models.py``'s traffic; no checkpoint while feeding),
checkpoints once, then ``--repeats`` times feeds ``--between`` more events (what comes in
between two periodic checkpoints), marks every model touched and times ``App.save``: CPU
seconds (``time.process_time``: the machine is shared) and wall seconds, the bytes it wrote
(the models' states, and the open windows' rows it added) and the bytes stored. Then the
two parts of a model's whole state alone (what a report or the changelog takes): making it
(``ModelMonitor.state``) and encoding it. Medians, per model.

``--root`` runs another checkout's code (its ``bench/models.py`` and package) for an A/B:
``/work/main/.venv/bin/python bench/checkpoint.py --root /work/main``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--events", type=int, default=600_000)
    ap.add_argument("--window-size", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--between", type=int, default=10_000,
                    help="events fed before each timed checkpoint (what came in since the last one)")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    root = Path(args.root)
    sys.path[:0] = [str(root), str(root / "bench")]
    import models as bench_models  # the root's bench/models.py

    from driftwarden.daemon.app import App, prepare_loop
    from driftwarden.daemon.cli import single_threaded_numerics
    from driftwarden.daemon.config import load_config

    single_threaded_numerics()
    try:
        from driftwarden.daemon.checkpoint import encode_state
    except ImportError:  # the JSON text of earlier versions
        def encode_state(state: dict[str, Any]) -> bytes:
            return json.dumps(state, separators=(",", ":"), allow_nan=True).encode()

    class NoDeadLetters:
        def send(self, message: Any, reason: str) -> None:
            raise AssertionError(reason)

    n = args.models
    work = Path(tempfile.mkdtemp(prefix="dw-checkpoint-"))
    paths = bench_models.write_references(work, n, 20, 10_000)
    (work / "driftwarden.yaml").write_text(json.dumps(bench_models.config_dict(work, paths, 20, args.window_size)))
    app = App(load_config(work / "driftwarden.yaml"), NoDeadLetters())
    prepare_loop()
    app._checkpoint_every = float("inf")  # no checkpoint while feeding: the saves below are the ones timed
    traffic, fed = bench_models.Traffic(n, 20), 0
    while fed < args.events:
        app.handle(traffic.poll(bench_models.BATCH))
        app.housekeeping(None)
        fed += bench_models.BATCH
    db = sqlite3.connect(app.checkpoint.path)

    def stored_bytes() -> tuple[int, int]:
        """Bytes of the models' states, and of their open windows' rows stored apart (window_rows, if any)."""
        states = db.execute("SELECT SUM(LENGTH(state)) FROM monitors").fetchone()[0] or 0
        try:
            rows = db.execute("SELECT SUM(LENGTH(rows)) FROM window_rows").fetchone()[0] or 0
        except sqlite3.OperationalError:  # a version that stores the windows whole, in the states
            rows = 0
        return states, rows

    app.save(None)  # the first checkpoint writes every window whole, in any version: not the periodic cost
    cpu, wall, size, written = [], [], [], []
    for _ in range(args.repeats):
        between = 0
        while between < args.between:  # what came since the last checkpoint
            app.handle(traffic.poll(bench_models.BATCH))
            between += bench_models.BATCH
        app.pipeline.flush(app.clock())  # the models run what waits (App.save would, inside the timing)
        app.pipeline._touched = set(app.models)  # every model saw events since the last checkpoint
        before = stored_bytes()
        t, w = time.process_time(), time.perf_counter()
        app.save(None)
        cpu.append((time.process_time() - t) / n)
        wall.append((time.perf_counter() - w) / n)
        after = stored_bytes()
        size.append(sum(after) / n)
        written.append((after[0] + max(0, after[1] - before[1])) / n)  # states rewritten, rows added
    monitors = [r.monitor for r in app.models.values()]
    make, encode = [], []
    for _ in range(args.repeats):
        t = time.process_time()
        states = [m.state() for m in monitors]
        make.append((time.process_time() - t) / n)
        t = time.process_time()
        for s in states:
            encode_state(s)
        encode.append((time.process_time() - t) / n)
        del states
    t = time.process_time()
    for m in app.models:
        app.checkpoint.monitor_state(m)
    read = (time.process_time() - t) / n
    med = statistics.median
    print(f"{root}: {n} models, {fed:,} events, {args.between:,} between checkpoints: App.save "
          f"{med(cpu) * 1e3:.2f} ms CPU ({med(wall) * 1e3:.2f} ms wall) a model, ~{med(written) / 1024:.0f} KiB "
          f"written of {med(size) / 1024:.0f} KiB stored; the whole state(): {med(make) * 1e3:.2f} ms, "
          f"encode {med(encode) * 1e3:.2f} ms; read back {read * 1e3:.2f} ms")
    app.close()


if __name__ == "__main__":
    main()
