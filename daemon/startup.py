"""Many models' detectors built on several cores at start-up, in worker processes.

Building a model's detectors from its reference (sorted and binned columns, the CBPE
calibration, the metrics' spread over subsamples of the reference, the PCA) is numpy work of
~65 ms a model of 20 features: 65 s of one core for 1,000 models, at every start, while the
events wait. The monitor it makes pickles in ~1.4 ms and loads in ~1.2 ms (~170 kB), so
with many models worker processes build them and the daemon's process loads each as it
comes, in the config's order, and restores it from the checkpoint meanwhile.

Workers are spawned (no fork of a process that may hold threads and locks) and bounded: each
is a Python with numpy, scipy and pyarrow imported (~240 MB of RSS, ~120 MB of it its own,
the rest libraries it shares with the daemon), and they all exit once the models are built.
CUSUM thresholds travel both ways: a worker starts with those the daemon knows and returns
those it solved, for the daemon's threshold file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import pickle
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from driftwarden.daemon.reference import load_reference
from driftwarden.daemon.window_spill import WindowFiles
from driftwarden.detectors.cusum import remember_thresholds, solved_thresholds
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.spec import ModelSpec

log = logging.getLogger(__name__)

PARALLEL_FROM = 16  # models: with fewer, a worker's own start (~1-2 s of imports) costs more than it saves
MAX_WORKERS = 4  # each worker holds ~120 MB of its own while the models are built: bounded whatever the cores

Thresholds = list[tuple[float, float, float, float]]


@dataclass(frozen=True)
class MonitorJob:
    """What a worker needs to build one model's monitor as :meth:`App.build_runtime` would."""

    model_id: str
    spec: ModelSpec
    reference: str  # the path of the reference it is built from
    windows_dir: Path
    spill: bool  # many models: their windows in files (daemon.window_spill)

    def build(self) -> ModelMonitor:
        return ModelMonitor(self.model_id, self.spec, load_reference(self.reference, self.spec),
                            WindowFiles(self.windows_dir, self.model_id, self.spill))


def start_workers(models: int, configured: int | None = None, cores: int | None = None) -> int:
    """Worker processes for a start-up of ``models`` models: ``configured`` (``state.startup_workers``)
    if set, else none (build here) below PARALLEL_FROM models or on one core, else one a core up
    to MAX_WORKERS."""
    if configured is not None:
        return configured if models > 1 else 0
    if cores is None:
        cores = available_cores()
    return min(MAX_WORKERS, cores) if models >= PARALLEL_FROM and cores > 1 else 0


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: those it may run on, bounded by its cgroup's CPU quota (a
    container limited to 2 CPUs on a 64-core node gets 2, as a JVM counts them).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "cpu.max").write_text("150000 100000")
    ...     min(available_cores(Path(d)), 2)
    2
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            fields = (cgroup / quota_file).read_text().split()
            quota, period = fields[0], fields[1] if period_file is None else (cgroup / period_file).read_text()
            if quota not in ("max", "-1") and int(quota) > 0:
                return max(1, min(cores, math.ceil(int(quota) / int(period))))
        except (OSError, ValueError, IndexError):
            continue
    return cores


def built_monitors(jobs: Sequence[MonitorJob], workers: int) -> Generator[bytes | None, None, None]:
    """Each job's monitor pickled, in the jobs' order, built by ``workers`` processes; None for a job
    to be built where it is used (no workers, or none to be had). A job that fails raises its error
    here, at its turn. Workers that cannot start (no ``/dev/shm`` for their semaphores, a process
    limit) or die (the OOM killer) leave their jobs to the daemon's process, with a warning."""
    if workers <= 0:
        yield from (None for _ in jobs)
        return
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(solved_thresholds(),))
    except (OSError, ImportError, NotImplementedError) as exc:
        log.warning("start-up workers cannot start (%s); the detectors are built in the daemon's process", exc)
        yield from (None for _ in jobs)
        return
    done = 0
    try:
        for blob, solved in pool.map(_build, jobs, chunksize=1):
            remember_thresholds(solved)
            done += 1
            yield blob
    except BrokenProcessPool as exc:
        log.warning("a start-up worker died (%s); the detectors of %d models are built in the daemon's "
                    "process", exc, len(jobs) - done)
        yield from (None for _ in jobs[done:])
    finally:  # also when the caller stops early (an error): the jobs not started are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(thresholds: Thresholds) -> None:
    threadpool_limits(limits=1, user_api="blas")  # as the daemon (cli.single_threaded_numerics): a worker a core
    remember_thresholds(thresholds)
    # short of memory, the kernel kills a worker before the daemon (whose models it then builds itself)
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def _build(job: MonitorJob) -> tuple[bytes, Thresholds]:
    """In a worker: the job's monitor pickled, and the CUSUM thresholds solved for it."""
    known = len(solved_thresholds())
    # protocol 4: an array loads as one array of its own; protocol 5 makes each a view of the loaded
    # buffer through two more array objects (~100 KB a model of ~190 arrays, in the daemon's RSS)
    blob = pickle.dumps(job.build(), protocol=4)
    return blob, solved_thresholds()[known:]
