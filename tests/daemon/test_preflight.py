"""Broken configs: check-config names the YAML path, `run` exits 2 in preflight without a traceback.

Every case is a config and its files written here; none needs a broker (kafka points at
127.0.0.1:9, where nothing listens: `run` must stop before it tries).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from driftwarden.daemon.checkpoint import Checkpoint
from driftwarden.daemon.cli import main
from driftwarden.daemon.config import load_config
from driftwarden.daemon.demo import DEMO_CONFIG
from driftwarden.daemon.join import JoinChanges
from driftwarden.daemon.preflight import PreflightError, preflight, probe_directory
from driftwarden.daemon.simulate import Scenario, write_reference

ROOT = Path(__file__).resolve().parents[2]
UNSET = "DRIFTWARDEN_TEST_UNSET_SECRET"  # never set: the secret checks must name it


def reference_rows(n: int = 200) -> dict[str, list[Any]]:
    return {
        "age": [20 + i % 50 for i in range(n)],
        "plan": [("basic", "pro")[i % 2] for i in range(n)],
        "prediction": [i % 2 for i in range(n)],
        "score": [0.2 + 0.6 * (i % 2) for i in range(n)],
        "outcome": [(i // 3) % 2 for i in range(n)],
    }


def write_csv(path: Path, columns: dict[str, list[Any]]) -> None:
    names = list(columns)
    rows = zip(*columns.values(), strict=True)
    path.write_text(",".join(names) + "\n" + "".join(",".join("" if v is None else str(v) for v in r) + "\n" for r in rows))


def base_config() -> dict[str, Any]:
    return {
        "models": [{"id": "churn", "task": "binary", "reference": "ref.csv",
                    "features": {"age": {"type": "numeric"}, "plan": {"type": "categorical"}}}],
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
        "state": {"path": "state/driftwarden.db"},
        "reports": {"directory": "reports"},
        "http": {"enabled": False},
        "alerting": {"receivers": {"console": {"type": "log"}}, "route": {"receiver": "console"}},
    }


Case = tuple[str, Callable[[Path, dict[str, Any]], None], str, str]


def _model(c: dict[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = c["models"][0]
    return model


def _without(column: str) -> Callable[[Path, dict[str, Any]], None]:
    def setup(d: Path, c: dict[str, Any]) -> None:
        cols = reference_rows()
        del cols[column]
        write_csv(d / "ref.csv", cols)
    return setup


def _garbage_parquet(d: Path, c: dict[str, Any]) -> None:
    (d / "ref.parquet").write_bytes(b"PAR1 this is not parquet")
    _model(c)["reference"] = "ref.parquet"


def _directory_reference(d: Path, c: dict[str, Any]) -> None:
    pq.write_table(pa.table(reference_rows()), d / "ref.parquet")  # a readable file beside it is not the one named
    (d / "refs.parquet").mkdir()
    _model(c)["reference"] = "refs.parquet"


def _empty_reference(d: Path, c: dict[str, Any]) -> None:
    write_csv(d / "ref.csv", {k: [] for k in reference_rows()})


def _text_in_numeric(d: Path, c: dict[str, Any]) -> None:
    cols = reference_rows()
    cols["age"][7] = "forty"
    write_csv(d / "ref.csv", cols)


def _empty_numeric(d: Path, c: dict[str, Any]) -> None:
    cols = reference_rows()
    cols["age"] = [None] * len(cols["age"])
    write_csv(d / "ref.csv", cols)


def _set(path: str, value: Any) -> Callable[[Path, dict[str, Any]], None]:
    def setup(d: Path, c: dict[str, Any]) -> None:
        section, key = path.split(".")
        c.setdefault(section, {})[key] = value
    return setup


def _state_under_file(d: Path, c: dict[str, Any]) -> None:
    (d / "var").write_text("a file where a directory should be\n")
    c["state"]["path"] = "var/state/driftwarden.db"


def _state_is_garbage(d: Path, c: dict[str, Any]) -> None:
    (d / "state").mkdir()
    (d / "state" / "driftwarden.db").write_bytes(b"not a database" * 100)


def _rebuilt_reference_gone(d: Path, c: dict[str, Any]) -> None:
    checkpoint = Checkpoint(d / "state" / "driftwarden.db")
    checkpoint.commit({}, {}, JoinChanges(), {"models": {"churn": {"reference_path": str(d / "rebuilt.parquet")}}})
    checkpoint.close()


def _receiver(name: str, spec: dict[str, Any]) -> Callable[[Path, dict[str, Any]], None]:
    def setup(d: Path, c: dict[str, Any]) -> None:
        c["alerting"] = {"receivers": {name: spec}, "route": {"receiver": name}}
    return setup


def _reports_under_file(d: Path, c: dict[str, Any]) -> None:
    c["reports"]["directory"] = "ref.csv/reports"


def _regression_with_ddm(d: Path, c: dict[str, Any]) -> None:
    _model(c).update(task="regression", monitoring={"concept": {"detector": "ddm"}})


def _undeclared_key(d: Path, c: dict[str, Any]) -> None:
    _model(c)["featurs"] = {}


# name, setup, the YAML path the problem line starts with, a word that line must hold
CASES: list[Case] = [
    ("feature missing from the reference", lambda d, c: _model(c)["features"].update(income={"type": "numeric"}),
     "models[0].reference", "'income'"),
    ("no prediction column", _without("prediction"), "models[0].reference", "'prediction'"),
    ("garbage parquet", _garbage_parquet, "models[0].reference", "cannot read"),
    ("reference is a directory", _directory_reference, "models[0].reference", "is a directory"),
    ("empty reference (0 rows)", _empty_reference, "models[0].reference", "0 rows"),
    ("text in a numeric reference column", _text_in_numeric, "models[0].reference", "'forty'"),
    ("numeric reference column all empty", _empty_numeric, "models[0].reference", "'age' is empty"),
    ("reference file missing", lambda d, c: _model(c).update(reference="nope.csv"), "models[0].reference", "not found"),
    ("rebuilt reference in the state is gone", _rebuilt_reference_gone, "models[0].reference", "rebuilt.parquet"),
    ("state path under a regular file", _state_under_file, "state.path", "is a file"),
    ("state path is a directory", lambda d, c: (d / "state" / "driftwarden.db").mkdir(parents=True),
     "state.path", "is a directory"),
    ("state file is not a database", _state_is_garbage, "state.path", "SQLite"),
    ("reports directory under a file", _reports_under_file, "reports.directory", "is a file"),
    ("reports directory is a file", lambda d, c: c["reports"].update(directory="ref.csv"), "reports.directory", "file"),
    ("join.ttl: 0", _set("join.ttl", 0), "join.ttl", "> 0"),
    ("join.max_pending: -1", _set("join.max_pending", -1), "join.max_pending", ">= 1"),
    ("http.port: 99999", _set("http.port", 99999), "http.port", "1..65535"),
    ("http.host unresolvable", lambda d, c: c["http"].update(enabled=True, host="web..internal"), "http.host",
     "not a valid host name"),
    ("kafka host unresolvable", _set("kafka.bootstrap_servers", "127.0.0.1:9,kafka..internal:9092"),
     "kafka.bootstrap_servers", "kafka..internal"),
    ("kafka port out of range", _set("kafka.bootstrap_servers", "127.0.0.1:99999"), "kafka.bootstrap_servers", "99999"),
    ("kafka entry without a port", _set("kafka.bootstrap_servers", "127.0.0.1"), "kafka.bootstrap_servers", "host:port"),
    ("kafka SASL password env unset", _set("kafka.sasl_password_env", UNSET), "kafka.sasl_password_env", UNSET),
    ("slack token env unset", _receiver("slack", {"type": "slack", "channel": "C1", "token_env": UNSET}),
     "alerting.receivers.slack.token_env", UNSET),
    ("slack webhook url env unset", _receiver("hook", {"type": "slack_webhook", "url_env": UNSET}),
     "alerting.receivers.hook.url_env", UNSET),
    ("CI webhook secret env unset", _receiver("ci", {"type": "webhook", "url": "http://127.0.0.1:9/ci", "secret_env": UNSET}),
     "alerting.receivers.ci.secret_env", UNSET),
    ("regression model with a classifier-only concept detector", _regression_with_ddm,
     "models[0].monitoring.concept.detector", "ddm"),
    ("unknown key (schema)", _undeclared_key, "models[0].featurs", "unknown key"),
]


def build(directory: Path, setup: Callable[[Path, dict[str, Any]], None]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "ref.csv", reference_rows())
    config = base_config()
    setup(directory, config)
    path = directory / "driftwarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def problem_lines(err: str) -> list[str]:
    return [line.strip()[2:] for line in err.splitlines() if line.startswith("  - ")]


def test_the_base_config_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build(tmp_path, lambda d, c: None)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driftwarden.yaml", "ref.csv"]  # nothing left behind


@pytest.mark.parametrize(("name", "setup", "path", "word"), CASES, ids=[c[0] for c in CASES])
def test_check_config_names_the_yaml_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, setup: Callable[..., None], path: str, word: str
) -> None:
    config = build(tmp_path, setup)
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    lines = problem_lines(err)
    assert any(line.startswith(path + ":") and word in line for line in lines), err
    assert "Traceback" not in err


def test_an_unresolvable_broker_name_is_looked_up_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A well-formed name the resolver does not know (the resolver answers here, no DNS query leaves)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    config = build(tmp_path, _set("kafka.bootstrap_servers", "127.0.0.1:9092,broker-1.invalid:9092"))
    assert main(["check-config", str(config)]) == 1
    lines = problem_lines(capsys.readouterr().err)
    assert lines == ["kafka.bootstrap_servers: 'broker-1.invalid:9092': host 'broker-1.invalid' does not resolve "
                     "(Name or service not known): fix the name or the resolver (DNS, /etc/hosts)"]
    assert asked == ["127.0.0.1", "broker-1.invalid"]


def test_problem_lines_read_as_documented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def setup(d: Path, c: dict[str, Any]) -> None:
        _model(c)["features"]["income"] = {"type": "numeric"}
        c["join"] = {"ttl": 0}

    config = build(tmp_path, setup)
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"{config}: 2 problem(s)"
    assert problem_lines(err) == [
        "join.ttl: must be > 0, got 0.0 (how long a prediction waits for its outcome)",
        f"models[0].reference: {tmp_path / 'ref.csv'} has no column 'income' declared in models[0].features "
        "(columns: age, plan, prediction, score, outcome)",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def setup(d: Path, c: dict[str, Any]) -> None:
        _empty_reference(d, c)
        c.update(join={"max_pending": 0}, http={"port": 0})

    config = build(tmp_path, setup)
    with pytest.raises(PreflightError) as info:
        preflight(load_config(config), str(config), environ={})
    paths = [p.split(":")[0] for p in info.value.problems]
    assert paths == ["join.max_pending", "http.port", "models[0].reference"]


def test_secrets_are_read_from_the_given_environment(tmp_path: Path) -> None:
    config = load_config(build(tmp_path, _receiver("slack", {"type": "slack", "channel": "C1", "token_env": UNSET})))
    preflight(config, "c.yaml", environ={UNSET: "xoxb-1"})  # set: no problem
    with pytest.raises(PreflightError, match=UNSET):
        preflight(config, "c.yaml", environ={UNSET: ""})  # empty counts as unset, as the notifiers read it


def test_probe_leaves_the_disk_as_it_found_it(tmp_path: Path) -> None:
    assert probe_directory(tmp_path / "a" / "b" / "c", lambda p: p.write_text("x")) is None
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    error = probe_directory(tmp_path / "f" / "b", lambda p: None)
    assert error is not None and error.startswith(f"{tmp_path / 'f'} is a file")


def test_shipped_demo_config_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    write_reference(tmp_path / data["models"][0]["reference"], Scenario())  # as daemon.demo.demo_app does
    (tmp_path / "demo.yaml").write_text(DEMO_CONFIG.read_text())
    assert main(["check-config", str(tmp_path / "demo.yaml")]) == 0, capsys.readouterr().err
    assert "ok (1 model(s): churn)" in capsys.readouterr().out


# ------------------------------------------------------------------ `driftwarden run`, as a process
def run_daemon(config: Path, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    proc = subprocess.Popen([sys.executable, "-m", "driftwarden.daemon.cli", "run", "-c", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()  # by this PID only
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def run_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Every case through `driftwarden run`, two processes at a time (each imports the whole daemon)."""
    root = tmp_path_factory.mktemp("run")
    configs = {name: build(root / f"case{i}", setup) for i, (name, setup, _, _) in enumerate(CASES)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_daemon, path) for name, path in configs.items()}
        yield {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize(("name", "path"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_run_exits_2_in_preflight(run_results: dict[str, subprocess.CompletedProcess[str]], name: str, path: str) -> None:
    result = run_results[name]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert any(line.startswith(path + ":") for line in problem_lines(result.stderr)), result.stderr


def test_run_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = build(tmp_path, lambda d, c: c["http"].update(enabled=True, port=port))
        assert main(["check-config", str(config)]) == 0  # check-config may run beside the daemon it checks
        started = time.monotonic()
        result = run_daemon(config)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert problem_lines(result.stderr) == [
        f"http.port: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "stop what holds the port or choose another http.port"]
    assert time.monotonic() - started < 60
