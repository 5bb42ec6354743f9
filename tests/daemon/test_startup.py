"""Start-up workers build the same monitors the daemon's process builds (daemon/startup.py)."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftwarden.daemon import startup
from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.simulate import START, Scenario, messages
from driftwarden.daemon.startup import MAX_WORKERS, PARALLEL_FROM, start_workers
from driftwarden.daemon.threshold_cache import threshold_file
from driftwarden.detectors import cusum
from tests.daemon.test_checkpoint_format import canon, old_round_trip


def test_workers_only_for_many_models_on_several_cores() -> None:
    assert start_workers(PARALLEL_FROM - 1, cores=8) == 0
    assert start_workers(PARALLEL_FROM, cores=1) == 0
    assert start_workers(PARALLEL_FROM, cores=2) == 2
    assert start_workers(1000, cores=64) == MAX_WORKERS
    assert start_workers(3, configured=2, cores=1) == 2  # state.startup_workers wins
    assert start_workers(1000, configured=0, cores=8) == 0
    assert start_workers(1, configured=4) == 0  # one model: nothing to spread


def _config(workers: int) -> dict[str, Any]:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    first = data["models"][0]
    first["monitoring"]["window_size"] = 1000
    data["models"] = [first] + [{**copy.deepcopy(first), "id": f"churn{i}"} for i in range(2)]
    data["state"] = {**data.get("state", {}), "startup_workers": workers}
    return data


def _events(model: str) -> list[tuple[str, bytes, bytes]]:
    return list(itertools.islice(messages(Scenario(model_id=model, covariate_shift_at=1000)), 6000))


@pytest.fixture
def no_thresholds_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUSUM thresholds of this process forgotten: each start solves (or reads) its own."""
    monkeypatch.setattr(cusum, "_SOLVED", {})


def test_monitors_built_by_workers_behave_as_those_built_here(tmp_path: Path, no_thresholds_known: None) -> None:
    apps = {workers: demo_app(tmp_path / f"w{workers}", _config(workers), clock=lambda: START + 86_400)
            for workers in (0, 2)}
    try:
        for app in apps.values():
            stream = [m for model in app.models for m in _events(model)]
            app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(stream)])
            app.save()
        here, workers = apps[0], apps[2]
        assert list(workers.models) == list(here.models) == ["churn", "churn0", "churn1"]
        for model in here.models:
            assert canon(old_round_trip(workers.models[model].monitor.state())) == \
                canon(old_round_trip(here.models[model].monitor.state()))
            history = here.models[model].monitor.history.entries()
            assert workers.models[model].monitor.history.entries() == history
            assert any(row[-1] is True for rows in history.values() for row in rows)  # the shift was found
        # the thresholds the workers solved reached the daemon's threshold file
        saved = json.loads(threshold_file(Path(workers.checkpoint.path)).read_text())["thresholds"]
        assert saved and saved == json.loads(threshold_file(Path(here.checkpoint.path)).read_text())["thresholds"]
    finally:
        for app in apps.values():
            app.close()


def test_a_model_a_worker_cannot_build_fails_the_start_as_it_would_here(tmp_path: Path) -> None:
    data = _config(2)
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file")
    data["models"][2]["reference"] = "broken.parquet"
    with pytest.raises(Exception) as in_workers:
        demo_app(tmp_path, data)
    data["state"]["startup_workers"] = 0
    with pytest.raises(Exception) as here:
        demo_app(tmp_path, data)
    assert type(in_workers.value) is type(here.value) and str(in_workers.value) == str(here.value)
    assert "broken.parquet" in str(here.value)


class _DyingPool:
    """A pool whose first job comes back and whose worker then dies (as the OOM killer would)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def map(self, fn: Any, jobs: Any, chunksize: int = 1) -> Any:
        yield fn(jobs[0])
        raise startup.BrokenProcessPool("a process in the process pool was terminated abruptly")

    def shutdown(self, **_kwargs: Any) -> None:
        pass


class _NoPool:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        raise OSError(38, "Function not implemented")  # no /dev/shm for the pool's semaphores


@pytest.mark.parametrize("pool", [_DyingPool, _NoPool])
def test_workers_that_die_or_cannot_start_leave_their_models_to_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, pool: type) -> None:
    monkeypatch.setattr(startup, "ProcessPoolExecutor", pool)
    app = demo_app(tmp_path / "w", _config(2), clock=lambda: START + 86_400)
    here = demo_app(tmp_path / "here", _config(0), clock=lambda: START + 86_400)
    try:
        assert "detectors of 2 models are built" in caplog.text if pool is _DyingPool else \
            "start-up workers cannot start" in caplog.text
        for model in here.models:
            assert canon(old_round_trip(app.models[model].monitor.state())) == \
                canon(old_round_trip(here.models[model].monitor.state()))
    finally:
        app.close()
        here.close()


@pytest.mark.parametrize(("files", "cores"), [
    ({"cpu.max": "200000 100000"}, 2),
    ({"cpu.max": "50000 100000"}, 1),  # half a core: still one
    ({"cpu.max": "max 100000"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ({}, None),
])
def test_a_containers_cpu_quota_bounds_the_cores_counted(tmp_path: Path, files: dict[str, str],
                                                          cores: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert startup.available_cores(tmp_path) == (affinity if cores is None else min(cores, affinity))


def test_the_kernel_kills_a_worker_before_the_daemon_when_memory_runs_out() -> None:
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=startup._start_worker, initargs=([],))
    try:
        adj = pool.submit(functools.partial(Path.read_text, Path("/proc/self/oom_score_adj"))).result()
    finally:
        pool.shutdown()
    assert int(adj) == 1000
    assert int(Path("/proc/self/oom_score_adj").read_text()) < 1000  # the daemon's own is left alone


def test_a_model_whose_detectors_refuse_names_its_yaml_path_as_preflight_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` with start-up workers skips preflight's build of every model's detectors (they were built
    twice: ~65 ms a model each time); App's build then says which model refused, in preflight's words."""
    from driftwarden.daemon import preflight
    from driftwarden.daemon.app import ModelBuildError
    from driftwarden.daemon.config import parse_config

    data = _config(0)
    refused = ValueError("monitoring.concept.detector 'ddm' needs 0/1 errors (a classifier)")
    built = startup.ModelMonitor

    def refuse_the_third(model_id: str, *args: Any) -> Any:
        if model_id == "churn1":
            raise refused
        return built(model_id, *args)

    monkeypatch.setattr(startup, "ModelMonitor", refuse_the_third)
    with pytest.raises(ModelBuildError) as raised:
        demo_app(tmp_path, data)
    assert str(raised.value) == "models[2].monitoring.concept.detector: 'ddm' needs 0/1 errors (a classifier)"
    assert str(raised.value) == preflight.detector_problem(2, "any", refused)

    monkeypatch.setattr(preflight, "ModelMonitor", refuse_the_third)  # preflight builds, unless told not to
    config = parse_config(data, base_dir=str(tmp_path))
    assert str(raised.value) in preflight.problems(config, bind_http=False, environ={})
    assert preflight.problems(config, bind_http=False, environ={}, build_detectors=False) == []


def test_run_says_which_model_refused_in_one_line_and_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`run` with start-up workers: the checks before Kafka do not build the detectors; App's build
    refuses a model and `run` exits 2 with preflight's line for it, no traceback."""
    import driftwarden.daemon.app as app_module
    import driftwarden.daemon.kafka_io as kafka_io
    from driftwarden.daemon import preflight
    from driftwarden.daemon.cli import main
    from driftwarden.daemon.simulate import write_reference

    data = _config(2)
    data["http"] = {"enabled": False}
    data["kafka"] = {"bootstrap_servers": "127.0.0.1:9"}
    write_reference(tmp_path / data["models"][0]["reference"], Scenario())
    (tmp_path / "driftwarden.yaml").write_text(yaml.safe_dump(data))
    built = startup.ModelMonitor

    def refuse_the_third(model_id: str, *args: Any) -> Any:
        if model_id == "churn1":
            raise ValueError("monitoring.concept.detector 'ddm' needs 0/1 errors (a classifier)")
        return built(model_id, *args)

    class NoKafka:
        producer = None

        def close(self) -> None:
            pass

    def built_before_kafka(*_args: Any) -> Any:
        raise ValueError("monitoring.built: twice, once before Kafka")

    monkeypatch.setattr(preflight, "ModelMonitor", built_before_kafka)
    monkeypatch.setattr(startup, "ModelMonitor", refuse_the_third)
    monkeypatch.setattr(app_module, "built_monitors", lambda jobs, workers: (None for _ in jobs))  # built here
    monkeypatch.setattr(kafka_io, "open_dead_letters", lambda *a, **k: NoKafka())
    code = main(["run", "-c", str(tmp_path / "driftwarden.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "models[2].monitoring.concept.detector: 'ddm' needs 0/1 errors (a classifier)" in err
    assert "twice" not in err


def test_a_checkpoint_that_cannot_be_read_is_not_blamed_on_the_reference(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Only the build of a model's detectors becomes preflight's reference line: a saved state that is
    not one is the checkpoint's problem, said as such, and that model starts afresh (the others load)."""
    import sqlite3

    app = demo_app(tmp_path, _config(2))
    app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(_events("churn0")[:600] + _events("churn1")[:600])])
    app.save()
    app.close()
    assert app.models["churn1"].labelled_samples > 0
    db = sqlite3.connect(app.checkpoint.path)
    assert db.execute("UPDATE monitors SET state = ? WHERE model_id = 'churn0'", (b"not a state",)).rowcount == 1
    db.commit()
    db.close()
    restarted = demo_app(tmp_path, _config(2))
    try:
        (said,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert said.startswith("model churn0: the checkpoint's saved state cannot be read") and "reference" not in said
        assert len(restarted.models["churn0"].monitor.pred_window) == 0  # afresh
        assert restarted.models["churn1"].labelled_samples == app.models["churn1"].labelled_samples
    finally:
        restarted.close()
