"""Memory and start-up of many models in one process: per-model bytes, RSS over time, start-up.

    python bench/models.py [--models 1000] [--features 20] [--events 10000000]
                           [--reference-rows 10000] [--window-size 5000] [--breakdown-models 50]
                           [--allocator] [--startup-workers N]

Every figure comes from a fresh child process (RSS is per process), run one after the other:

* baseline: 1 model of ``--features`` numeric features, started the way ``driftwarden run``
  starts (config load, reference load, detector construction, checkpoint restore, KS kernel
  compiled, BLAS single-threaded), then fed enough events to close two windows;
* N models: the same for ``--models`` models, each with its own reference file (distinct
  values: nothing is shared by accident), then ``--events`` events through ``App.handle`` and
  ``App.housekeeping`` (decode, route, join, detectors, alerts, metrics, checkpoints), keyed by
  model and spread uniformly over the models; every outcome follows its prediction 2,000
  events later. RSS is printed every 1M events;
* breakdown: ``--breakdown-models`` models under tracemalloc (slow), fed until every model
  closed a window, its live allocations grouped by component (references, windows, join, alert
  state, metrics, other detector state) from the driftwarden frame that made them.

``--allocator`` prints, for 1 and N models at the end of the run, where the heap is: pymalloc's
arenas, its blocks in use and its free blocks in used pools (``sys._debugmallocstats``), glibc's
allocated, free and mmapped bytes (``mallinfo2``): RSS that live data does not explain is one of
the free figures.

Start-up is timed three times per N: a first start (no checkpoint), a restart from the checkpoint
the first one wrote (the restore is what ``driftwarden run`` does after a deploy), both with the
start-up workers the daemon would use (``--startup-workers`` overrides), and the same restart
with every detector built in the daemon's process (what the workers save). Per-model
bytes are (RSS(N) - RSS(1)) / (N - 1) after the same events per model. All times on a shared
2-core machine: noisy; ratios are to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.figures import figure  # noqa: E402

BATCH = 5000  # messages per poll (kafka.max_poll_records' default)
LABEL_DELAY = 2000  # an outcome comes this many events after its prediction
MiB = 1024 * 1024


def rss() -> int:
    """Resident set size of this process now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_trimmed() -> int:
    """RSS after glibc's ``malloc_trim(0)`` returned the free heap pages to the system (what is
    left is live data, or fragments of it)."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss()


def peak_rss() -> int:
    """Peak RSS of this process since it started, or since :func:`reset_peak` (Linux's VmHWM)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> None:
    """Start :func:`peak_rss` again from the current RSS (Linux >= 4.0: ``5`` to clear_refs)."""
    import contextlib

    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def allocator() -> dict[str, int]:
    """Where the heap is, in bytes: pymalloc's (``sys._debugmallocstats``: its arenas, the blocks in use
    and the free blocks of used pools) and glibc's (``mallinfo2``: allocated, free in the heap, mmapped)."""
    out: dict[str, int] = {}
    with tempfile.TemporaryFile("w+") as dump:  # it writes to the C stderr
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(dump.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        dump.seek(0)
        for line in dump:
            name, _, value = line.partition("=")
            key = {"# arenas allocated current": "pymalloc arenas (1 MiB each)",
                   "# bytes in allocated blocks": "pymalloc blocks in use",
                   "# bytes in available blocks": "pymalloc free blocks in used pools"}.get(name.strip())
            if key:
                out[key] = int(value.strip().replace(",", "")) << (20 if "arenas" in key else 0)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out.update({"glibc allocated": info.uordblks, "glibc free in the heap": info.fordblks,
                    "glibc mmapped": info.hblkhd})
    return out


# ------------------------------------------------------------------ synthetic models
def feature_names(k: int) -> list[str]:
    return [f"f{i:02d}" for i in range(k)]


def draw(rng: np.random.Generator, n: int, k: int, model: int | np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """Features (n x k; each model its own location and scale, ``model`` per row or one for all),
    score, true label; no drift."""
    m = np.broadcast_to(np.asarray(model), (n,))
    loc = 10.0 + (m % 97)
    scale = 1.0 + (m % 13) / 10
    cols = []
    for i in range(k):
        kind = i % 4
        if kind == 0:
            cols.append(loc + 3 * scale * rng.standard_normal(n))
        elif kind == 1:
            cols.append(np.exp(np.log(loc) / 2 + 0.6 * rng.standard_normal(n)))
        elif kind == 2:
            cols.append(rng.integers(0, 12, n).astype(np.float64))  # discrete: ties
        else:
            cols.append(scale * rng.standard_exponential(n))
    x = np.round(np.column_stack(cols), 3)
    logit = (x[:, 0] - loc) / (3 * scale) + ((x[:, 3] - scale) / scale if k > 3 else 0.0)
    score = np.round(1 / (1 + np.exp(-logit)), 4)
    y = (rng.random(n) < score).astype(np.int64)
    return x, score, y


def write_references(workdir: Path, models: int, k: int, rows: int) -> list[str]:
    names = feature_names(k)
    paths = []
    for m in range(models):
        rng = np.random.default_rng(1000 + m)
        x, score, y = draw(rng, rows, k, m)
        cols = {n: x[:, i] for i, n in enumerate(names)}
        cols.update(score=score, prediction=(score > 0.5).astype(np.int64), outcome=y)
        path = workdir / "refs" / f"m{m:04d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), path)
        paths.append(str(path))
    return paths


def config_dict(workdir: Path, paths: list[str], k: int, window: int) -> dict[str, Any]:
    return {
        "state": {"path": str(workdir / "state" / "dw.db"), "checkpoint_interval": "5s"},
        "http": {"enabled": False},
        "models": [{"id": f"m{m:04d}", "task": "binary", "reference": p,
                    "features": {n: {"type": "numeric"} for n in feature_names(k)},
                    "monitoring": {"window_size": window}} for m, p in enumerate(paths)],
    }


class Traffic:
    """Keyed prediction and outcome messages, in polls of BATCH, generated as they are consumed."""

    def __init__(self, models: int, k: int, seed: int = 5) -> None:
        self.models, self.k, self.names = models, k, feature_names(k)
        self.rng = np.random.default_rng(seed)
        self.enc = msgspec.json.Encoder()
        self.i = 0
        self.waiting: deque[tuple[int, bytes, bytes]] = deque()  # (due index, key, outcome bytes)

    def poll(self, predictions: int) -> list[Any]:
        from driftwarden.daemon.pipeline import Message

        ids = self.rng.integers(0, self.models, predictions)
        x, score, y = draw(self.rng, predictions, self.k, ids)
        out: list[Any] = []
        for j in range(predictions):
            i, m = self.i + j, int(ids[j])
            key = b"m%04d" % m
            pid = str(i)
            t = 1.75e9 + i * 0.001
            out.append(Message("predictions", 0, i, key, self.enc.encode({
                "model_id": key.decode(), "prediction_id": pid, "timestamp": t,
                "features": dict(zip(self.names, x[j].tolist(), strict=True)),
                "prediction": int(score[j] > 0.5), "score": float(score[j])})))
            self.waiting.append((i + LABEL_DELAY, key, self.enc.encode({
                "model_id": key.decode(), "prediction_id": pid, "timestamp": t + 2.0, "outcome": int(y[j])})))
        self.i += predictions
        while self.waiting and self.waiting[0][0] < self.i:
            due, key, value = self.waiting.popleft()
            out.append(Message("outcomes", 0, due, key, value))
        return out


# ------------------------------------------------------------------ tracemalloc by component
def _class_ranges(path: Path) -> dict[str, tuple[int, int]]:
    tree = ast.parse(path.read_text())
    return {n.name: (n.lineno, n.end_lineno or n.lineno) for n in tree.body if isinstance(n, ast.ClassDef)}


def component_of(frames: Any, windows_lines: tuple[int, int]) -> str:
    """The component a live allocation belongs to, from the innermost driftwarden frame that explains it."""
    for fr in reversed(frames):  # innermost last in tracemalloc's most_recent_first=False order
        f = fr.filename.replace("\\", "/")
        if "prometheus_client" in f or f.endswith(("daemon/metrics.py", "daemon/check_metrics.py")):
            return "metrics"
        if "/alerts/" in f:
            return "alert state"
        if f.endswith(("daemon/join.py", "daemon/held.py")):
            return "join"
        if f.endswith(("detectors/window.py",)):
            return "windows"
        if f.endswith("detectors/numeric.py"):
            return "windows" if windows_lines[0] <= fr.lineno <= windows_lines[1] else "references"
        if f.endswith(("detectors/categorical.py", "detectors/binning.py", "daemon/reference.py",
                       "detectors/drift.py")):
            return "references"
        if "/detectors/" in f:
            return "other detector state"
    return "other"


def breakdown(app: Any) -> dict[str, int]:
    from driftwarden.detectors import numeric

    lines = _class_ranges(Path(numeric.__file__))["NumericDriftTest"]
    snap = tracemalloc.take_snapshot()
    out: dict[str, int] = defaultdict(int)
    for stat in snap.statistics("traceback"):
        out[component_of(list(stat.traceback),
                         lines)] += stat.size
    return dict(out)


def _arrays(obj: Any) -> int:
    """Bytes of the numpy arrays in a dict of columns (object columns: their pointers)."""
    return sum(v.nbytes for v in obj.values()) if obj else 0


def object_bytes(app: Any) -> dict[str, int]:
    """Per-object sizes summed over the models: what each part of a monitor holds in arrays."""
    from driftwarden.detectors.categorical import CategoricalDriftTest
    from driftwarden.detectors.numeric import NumericDriftTest

    out: dict[str, int] = defaultdict(int)
    for runtime in app.models.values():
        mon = runtime.monitor
        for test in (mon.drift.tests.values() if mon.drift is not None else ()):
            if isinstance(test, NumericDriftTest):
                out["drift references (numeric)"] += test.reference.nbytes()
                out["drift test buffers"] += test._values.nbytes
            elif isinstance(test, CategoricalDriftTest):
                out["drift references (categorical)"] += test.reference.counts.nbytes
        out["open windows (prediction + outcome, in memory)"] += mon.pred_window.nbytes() + mon.outcome_window.nbytes()
        out["last evaluated windows (in memory)"] += mon.last_store.nbytes()
        out["concept detector replay buffer"] += mon.concept._buffer.nbytes if mon.concept is not None else 0
        out["check history"] += mon.history.nbytes()
    # with fewer than SPILL_FROM models the windows stay in memory: no directory
    files = app.windows_dir.iterdir() if app.windows_dir.is_dir() else ()
    out["window files on disk (not memory)"] = sum(p.stat().st_size for p in files)
    out["join: waiting predictions"] = app.join.pending_count
    out["Prometheus series (all models)"] = sum(len(m.samples) for m in app.metrics.registry.collect())
    return dict(out)


# ------------------------------------------------------------------ one child run
def child(args: argparse.Namespace) -> dict[str, Any]:
    from driftwarden.daemon.cli import single_threaded_numerics

    single_threaded_numerics()  # as `driftwarden run`
    from driftwarden.daemon.app import App, prepare_loop
    from driftwarden.daemon.config import load_config
    from driftwarden.daemon.reference import load_reference
    from driftwarden.detectors.monitor import ModelMonitor

    class NoDeadLetters:
        def send(self, message: Any, reason: str) -> None:
            raise AssertionError(f"dead letter in the bench: {reason}")

    workdir = Path(args.workdir)
    paths = write_references(workdir, args.models, args.features, args.reference_rows)
    cfg_path = workdir / "driftwarden.yaml"
    cfg_path.write_text(json.dumps(config_dict(workdir, paths, args.features, args.window_size)))
    res: dict[str, Any] = {"models": args.models}
    if args.tracemalloc:
        tracemalloc.start(8)
    res["rss_imports"] = rss()

    import driftwarden.daemon.app as app_module

    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
        return call

    # App's own start-up, its parts timed where they run in the daemon's process: with start-up workers
    # (daemon/startup.py) the references and detectors are built in those, and "workers" is the wait for them
    import driftwarden.daemon.startup as startup

    startup.load_reference = timed("references", load_reference)
    startup.ModelMonitor = timed("detectors", ModelMonitor)
    built_monitors = app_module.built_monitors

    def waited(jobs: Any, workers: int) -> Any:
        spent["workers_used"] = workers
        results = built_monitors(jobs, workers)
        while True:
            t = time.perf_counter()
            try:
                blob = next(results)
            except StopIteration:
                return
            finally:
                spent["workers"] += time.perf_counter() - t
            yield blob

    app_module.built_monitors = waited
    ModelMonitor.load_state = timed("restore", ModelMonitor.load_state)  # type: ignore[method-assign]
    from driftwarden.daemon.checkpoint import Checkpoint
    Checkpoint.monitor_state = timed("checkpoint_read", Checkpoint.monitor_state)  # type: ignore[method-assign]

    def start(workers: int | None = args.startup_workers) -> tuple[Any, dict[str, float]]:
        spent.clear()
        t0 = time.perf_counter()
        config = load_config(cfg_path)
        config = msgspec.structs.replace(config, state=msgspec.structs.replace(config.state, startup_workers=workers))
        t1 = time.perf_counter()
        app = App(config, NoDeadLetters())
        t2 = time.perf_counter()
        return app, {"config": t1 - t0, "app": t2 - t1, **spent}

    app, first = start()
    res["startup_first"] = first
    res["rss_started"] = rss()
    built = (f"{int(first['workers_used'])} start-up workers" if first.get("workers_used") else
             f"detector construction {first.get('detectors', 0):.1f} s, reference load {first.get('references', 0):.1f} s")
    print(f"  {args.models} models: started in {first['config'] + first['app']:.1f} s ({built}), "
          f"RSS {res['rss_started'] / MiB:,.0f} MiB", file=sys.stderr, flush=True)
    prepare_loop()  # as App.run before its loop: the KS kernel compiled, start-up's objects frozen
    traffic = Traffic(args.models, args.features)
    fed = 0
    per_window = args.window_size * args.models
    warm = 2 * per_window + LABEL_DELAY if not args.tracemalloc else per_window + 2 * LABEL_DELAY
    rss_over_time: list[tuple[int, int]] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    target = warm if args.tracemalloc or args.models == 1 else max(warm, args.events)
    next_mark = 1_000_000
    while fed < target:
        batch = traffic.poll(min(BATCH, target - fed))
        app.handle(batch)
        app.housekeeping(None)
        fed += sum(1 for m in batch if m.topic == "predictions")
        if fed >= warm and "rss_warm" not in res:
            app.save(None)
            res["rss_warm"], res["events_warm"] = rss(), fed
            res["rss_warm_trimmed"] = rss_trimmed()
            res["objects"] = object_bytes(app)
            if args.tracemalloc:
                res["breakdown"] = breakdown(app)
        if fed >= next_mark:
            rss_over_time.append((fed, rss()))
            print(f"  {args.models} models: {fed:,} events, RSS {rss() / MiB:,.0f} MiB, "
                  f"{fed / (time.perf_counter() - t0):,.0f} events/s", file=sys.stderr, flush=True)
            next_mark += 1_000_000
    res["events"] = fed
    res["events_per_s"] = fed / (time.perf_counter() - t0)
    res["events_per_cpu_s"] = fed / (time.process_time() - cpu0)  # the machine is shared: CPU time is the steadier
    res["rss_over_time"] = rss_over_time
    app.save(None)
    res["rss_end"] = rss()
    res["peak_rss"] = peak_rss()
    if args.allocator:
        res["allocator"] = allocator()  # start-up and the run (the restart below is a process of its own in production)
    app.close()
    if not args.tracemalloc:
        del app  # a restart is a new process: the first App's memory is not the second's
        gc.collect()
        rss_trimmed()
        reset_peak()
        app2, again = start()  # a restart: the same config, the checkpoint just written
        res["startup_restart"] = again
        res["peak_rss_restart"] = peak_rss()
        app2.close()
        if args.models > 1:  # the same restart with every detector built in this process: what the workers save
            del app2
            gc.collect()
            app3, here = start(0)
            res["startup_restart_here"] = here
            app3.close()
    return res


def run_child(args: argparse.Namespace, models: int, tracemalloc_run: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dw-models-") as tmp:
        cmd = [sys.executable, __file__, "--child", "--workdir", tmp, "--models", str(models),
               "--features", str(args.features), "--events", str(args.events),
               "--reference-rows", str(args.reference_rows), "--window-size", str(args.window_size)]
        if args.startup_workers is not None:
            cmd += ["--startup-workers", str(args.startup_workers)]
        if tracemalloc_run:
            cmd.append("--tracemalloc")
        if args.allocator:
            cmd.append("--allocator")
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--events", type=int, default=10_000_000, help="prediction events for the N-model run")
    ap.add_argument("--reference-rows", type=int, default=10_000)
    ap.add_argument("--window-size", type=int, default=5000)
    ap.add_argument("--breakdown-models", type=int, default=10, help="models in the tracemalloc run (0: skip)")
    ap.add_argument("--allocator", action="store_true",
                    help="print where the heap is at the end of each run (pymalloc's arenas, glibc's heap)")
    ap.add_argument("--startup-workers", type=int, default=None,
                    help="state.startup_workers of the runs (default: the daemon's choice)")
    ap.add_argument("--json", type=Path, help="write the figures and their baselines here (bench/run_all.py)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    print(f"bench/models.py: {args.models} models x {args.features} numeric features (+ score, prediction), "
          f"window {args.window_size}, references of {args.reference_rows:,} rows each, {args.events:,} events")
    base = run_child(args, 1)
    if args.breakdown_models:
        n = max(args.breakdown_models, 2)
        one, small = run_child(args, 1, tracemalloc_run=True), run_child(args, n, tracemalloc_run=True)
        parts = {c: (small["breakdown"].get(c, 0) - one["breakdown"].get(c, 0)) / (n - 1)
                 for c in {*small["breakdown"], *one["breakdown"]}}
        total = sum(parts.values())
        print(f"\ntracemalloc, live allocations of {n} models minus those of 1 model, over {n - 1}, after every "
              f"model closed a window: {total / 1024:,.0f} KiB per model")
        for comp, size in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {comp:22s} {size / 1024:10,.1f} KiB per model  ({size / total:6.1%})")
    big = run_child(args, args.models)
    print(f"\nper-object sizes after two windows per model ({args.models} models), per model:")
    for what, size in big["objects"].items():
        print(f"  {what:44s} {size:12,}" if what.startswith(("join", "Prometheus")) else
              f"  {what:44s} {size / args.models / 1024:10,.1f} KiB")
    per_model = (big["rss_warm"] - base["rss_warm"]) / max(args.models - 1, 1)
    print(f"\nRSS after start-up: 1 model {base['rss_started'] / MiB:,.0f} MiB, {args.models} models "
          f"{big['rss_started'] / MiB:,.0f} MiB ({big['rss_started'] / base['rss_started']:.2f}x)")
    print(f"RSS after two windows per model: 1 model {base['rss_warm'] / MiB:,.0f} MiB, {args.models} models "
          f"{big['rss_warm'] / MiB:,.0f} MiB ({big['rss_warm'] / base['rss_warm']:.2f}x); "
          f"per model {per_model / 1024:,.0f} KiB")
    trimmed = (big["rss_warm_trimmed"] - base["rss_warm_trimmed"]) / max(args.models - 1, 1)
    print(f"  the same after malloc_trim(0): 1 model {base['rss_warm_trimmed'] / MiB:,.0f} MiB, {args.models} models "
          f"{big['rss_warm_trimmed'] / MiB:,.0f} MiB; per model {trimmed / 1024:,.0f} KiB")
    print("RSS over time (N models):")
    first = big["rss_over_time"][0][1] if big["rss_over_time"] else big["rss_warm"]
    for events, value in big["rss_over_time"]:
        print(f"  {events:>12,} events  {value / MiB:8,.0f} MiB  ({value / first:.3f}x the first mark)")
    for label, key in (("first start", "startup_first"), ("restart", "startup_restart"),
                       ("restart, detectors built in the daemon's process", "startup_restart_here")):
        b, s = base.get(key, base["startup_restart"]), big[key]
        print(f"start-up, {label}: 1 model {b['config'] + b['app']:.2f} s, {args.models} models "
              f"{s['config'] + s['app']:.2f} s (config load {s['config']:.2f} s, App {s['app']:.2f} s)")
        workers = int(s.get("workers_used", 0))
        built = (f"waiting for {workers} start-up workers {s.get('workers', 0):.2f} s" if workers else
                 f"reference load {s.get('references', 0):.2f} s, detector construction "
                 f"{s.get('detectors', 0):.2f} s")
        print(f"  of which for {args.models} models: {built}, checkpoint read {s.get('checkpoint_read', 0):.2f} s, "
              f"restore {s.get('restore', 0):.2f} s")
    print(f"throughput: 1 model {base['events_per_s']:,.0f} events/s, {args.models} models "
          f"{big['events_per_s']:,.0f} events/s; per CPU second: 1 model {base['events_per_cpu_s']:,.0f}, "
          f"{args.models} models {big['events_per_cpu_s']:,.0f} events")
    print(f"peak RSS (start-up and run): 1 model {base['peak_rss'] / MiB:,.0f} MiB, {args.models} models "
          f"{big['peak_rss'] / MiB:,.0f} MiB ({big['peak_rss'] / base['peak_rss']:.2f}x); restart from the "
          f"checkpoint (the first App dropped): {args.models} models {big['peak_rss_restart'] / MiB:,.0f} MiB")
    if args.allocator:
        print(f"the heap at the end of the run (MiB): {'':28s} 1 model  {args.models} models")
        for key in big["allocator"]:
            print(f"  {key:40s} {base['allocator'].get(key, 0) / MiB:10,.1f} {big['allocator'][key] / MiB:10,.1f}")
    if args.json is not None:
        write_figures(args, base, big, per_model)



def write_figures(args: argparse.Namespace, base: dict[str, Any], big: dict[str, Any], per_model: float) -> None:
    n = args.models
    command = (f"bench/models.py --models {n} --features {args.features} --events {args.events} "
               f"--window-size {args.window_size} --reference-rows {args.reference_rows}")
    start = {k: big[k]["config"] + big[k]["app"] for k in ("startup_first", "startup_restart")}
    figures = [
        figure(f"{n} models x {args.features} features in one process, RSS after two windows each ({command})",
               big["rss_warm"] / MiB, "MiB", "1 model, same start-up and windows", base["rss_warm"] / MiB),
        figure("RSS per model (N models minus 1, over N - 1)", per_model / 1024, "KiB"),
        figure(f"start-up of {n} models (config, references, detectors)", start["startup_first"], "s",
               "1 model", base["startup_first"]["config"] + base["startup_first"]["app"]),
        figure(f"restart of {n} models from their checkpoint", start["startup_restart"], "s",
               "their first start", start["startup_first"]),
        figure(f"restart of {n} models, detectors built by {int(big['startup_restart'].get('workers_used', 0))} "
               "start-up workers", start["startup_restart"], "s", "built in the daemon's process",
               big["startup_restart_here"]["config"] + big["startup_restart_here"]["app"]),
        figure(f"{n} models: App.handle + housekeeping, keyed events spread over the models", big["events_per_s"],
               "events/s", "1 model", base["events_per_s"]),
        figure(f"peak RSS, {n} models", big["peak_rss"] / MiB, "MiB"),
    ]
    marks = big["rss_over_time"]
    if len(marks) >= 2:
        figures.insert(1, figure(f"RSS of {n} models at {marks[-1][0]:,} events", marks[-1][1] / MiB, "MiB",
                                 f"at {marks[0][0]:,} events", marks[0][1] / MiB))
    args.json.write_text(json.dumps({"bench": "models", "command": command, "figures": figures}, indent=1))


if __name__ == "__main__":
    main()
