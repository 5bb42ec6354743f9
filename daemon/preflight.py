"""Preflight: every check ``driftwarden run`` needs before it touches Kafka, offline.

``check-config`` and ``run`` call :func:`preflight` on a loaded :class:`Config` (the
schema was validated by :func:`daemon.config.load_config`). It finds what would
otherwise surface as a traceback, or as a daemon monitoring garbage:

* each model's reference, loaded as the daemon loads it (a reference rebuilt
  into the checkpoint wins over the configured file) and handed to the detectors:
  unreadable, a directory, 0 rows, a declared feature or ``prediction`` missing,
  text in a numeric feature, anything :class:`ModelMonitor` refuses;
* ``state.path`` and ``reports.directory``: their directories can be created and
  written (a throw-away SQLite file is opened in the state directory); an existing
  state or alert database opens for writing. Whatever the probe created (the file,
  missing directories) is removed again: preflight leaves the disk as it found it;
* ``join.ttl`` > 0, ``join.max_pending`` >= 1, ``http.port`` in 1..65535, ``http.host``
  resolves, and with ``bind_http`` (``run`` only) the port is free;
* ``kafka.bootstrap_servers`` entries are ``host:port`` and each host resolves
  (local resolver only: no broker is contacted);
* every ``*_env`` secret named in the config is set in the environment.

Each problem is one line: the YAML path, what is wrong, what to do.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftwarden.daemon.columns import numeric_column
from driftwarden.daemon.config import Config, ConfigError, ModelConfig, parse_duration
from driftwarden.daemon.reference import ReferenceError, read_table, table_to_batch
from driftwarden.detectors.monitor import ModelMonitor

WILDCARD_HOSTS = ("", "0.0.0.0", "::")


class PreflightError(ConfigError):
    """The config parses, but the files, settings or environment it names would not let ``run`` start."""


def preflight(config: Config, source: str, *, bind_http: bool = False, environ: Mapping[str, str] | None = None,
              build_detectors: bool = True) -> None:
    """Raise :class:`PreflightError` listing every problem; return quietly when ``run`` can start.

    ``build_detectors=False``: each model's reference is read and checked, but its detectors are not
    built (``run`` with start-up workers: the App builds them once, and says which model refused).
    """
    found = problems(config, bind_http=bind_http, environ=os.environ if environ is None else environ,
                     build_detectors=build_detectors)
    if found:
        raise PreflightError(source, found)


def problems(config: Config, *, bind_http: bool, environ: Mapping[str, str], build_detectors: bool = True) -> list[str]:
    found = settings_problems(config) + secret_problems(config, environ) + storage_problems(config)
    if bind_http and config.http.enabled and not any(p.startswith("http.") for p in found):
        found += port_in_use(config.http.host, config.http.port)
    rebuilt = rebuilt_references(config)
    for i, model in enumerate(config.models):
        found += reference_problems(config, i, model, rebuilt.get(model.id), build_detectors)
    return [" ".join(p.splitlines()) for p in found]  # one line each, whatever a library's message held


# ------------------------------------------------------------------ settings
def settings_problems(config: Config) -> list[str]:
    found = []
    if parse_duration(config.join.ttl) <= 0:
        found.append(f"join.ttl: must be > 0, got {config.join.ttl!r} (how long a prediction waits for its outcome)")
    for name in ("future_tolerance", "idle_after"):
        value = getattr(config.event_time, name)
        if parse_duration(value) <= 0:
            found.append(f"event_time.{name}: must be > 0, got {value!r}")
    if config.join.max_pending < 1:
        found.append(f"join.max_pending: must be >= 1, got {config.join.max_pending}")
    if not 1 <= config.http.port <= 65535:
        found.append(f"http.port: must be in 1..65535, got {config.http.port}")
    elif config.http.enabled and config.http.host not in WILDCARD_HOSTS:
        error = resolve_error(config.http.host)
        if error:
            found.append(f"http.host: {config.http.host!r} does not resolve ({error}): use an address of this host")
    servers = [s.strip() for s in config.kafka.bootstrap_servers.split(",")]
    if not any(servers):
        found.append("kafka.bootstrap_servers: empty: list the brokers as host:port[,host:port...]")
    for server in filter(None, servers):
        found += [f"kafka.bootstrap_servers: {server!r}: {p}" for p in broker_problems(server)]
    return found


def broker_problems(server: str) -> list[str]:
    """``host:port`` with a valid port and a host the local resolver knows (``[::1]:9092`` for IPv6)."""
    host, sep, port = server.rpartition(":")
    if not sep or not host:
        return [f"not host:port: add the port, e.g. {server}:9092"]
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return [f"port {port!r} is not in 1..65535"]
    error = resolve_error(host)
    return [f"host {host!r} does not resolve ({error}): fix the name or the resolver (DNS, /etc/hosts)"] if error else []


def resolve_error(host: str) -> str | None:
    """Why the local resolver cannot resolve ``host``, or None when it can."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except UnicodeError:  # refused before any lookup, e.g. kafka..internal
        return "not a valid host name: a label is empty or longer than 63 characters"
    except OSError as exc:  # socket.gaierror
        return str(exc.strerror or exc)
    return None


def port_in_use(host: str, port: int) -> list[str]:
    """Bind and close the HTTP port as the daemon's server will bind it (IPv4, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return [f"http.port: cannot listen on {host}:{port} ({exc.strerror or exc}): "
                    "stop what holds the port or choose another http.port"]
    return []


def secret_problems(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Every ``*_env`` named in the config must be set (and non-empty), as the notifiers require."""
    named: list[tuple[str, str | None]] = [("kafka.sasl_password_env", config.kafka.sasl_password_env)]
    for name, receiver in config.alerting.receivers.items():
        for field in ("token_env", "url_env", "secret_env"):
            named.append((f"alerting.receivers.{name}.{field}", getattr(receiver, field, None)))
    return [f"{path}: environment variable {var} is not set: export it before starting (secrets never go in the YAML)"
            for path, var in named if var and not environ.get(var)]


# ------------------------------------------------------------------ state and reports
def storage_problems(config: Config) -> list[str]:
    found = []
    state = config.resolve(config.state.path)
    if state.is_dir():
        found.append(f"state.path: {state} is a directory: name a file in it, e.g. {state / 'driftwarden.db'}")
    else:
        error = probe_directory(state.parent, _probe_sqlite)
        if error:
            found.append(f"state.path: {state}: {error}")
        for db in (state, state.with_name(state.stem + "-alerts.db")):  # the checkpoint and the alert outbox
            if not error and db.is_file():
                error = sqlite_error(db)
                if error:
                    found.append(f"state.path: {db} cannot be written as a SQLite database ({error}): "
                                 "fix its permissions, or move it away if it is not driftwarden's")
    reports = config.resolve(config.reports.directory)
    if reports.exists() and not reports.is_dir():
        found.append(f"reports.directory: {reports} is a file: name a directory")
    else:
        error = probe_directory(reports, _probe_file)
        if error:
            found.append(f"reports.directory: {reports}: {error}")
    return found


def probe_directory(directory: Path, probe: Callable[[Path], None]) -> str | None:
    """Create ``directory`` if missing, run ``probe`` on a fresh temporary file in it, then undo both.

    Returns what is wrong (and what to do) or None.
    """
    missing = []
    parent = directory
    while not parent.exists():
        missing.append(parent)
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, not a directory: choose a path whose directories can be created"
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        fd, name = tempfile.mkstemp(prefix=".driftwarden-preflight-", dir=directory)
        os.close(fd)
        try:
            probe(Path(name))
        finally:
            os.unlink(name)
    except (OSError, sqlite3.Error) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot create or write files in {directory} ({detail}): fix the permissions or choose another path"
    finally:
        for d in reversed(created):
            d.rmdir()
    return None


def _probe_file(path: Path) -> None:
    path.write_bytes(b"driftwarden")


def _probe_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE probe (x)")
        db.commit()
    finally:
        db.close()


def sqlite_error(path: Path) -> str | None:
    """Why an existing SQLite file cannot be opened for writing (a write lock is taken and released)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=2.0, isolation_level=None)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        db.close()
    return None


def rebuilt_references(config: Config) -> dict[str, str]:
    """Model id -> a rebuilt reference recorded in the checkpoint (``run`` prefers it to the configured file)."""
    state = config.resolve(config.state.path)
    if not state.is_file():
        return {}
    try:
        db = sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'models'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return {}  # not a checkpoint (yet): storage_problems says what is wrong with the file
    models: dict[str, Any] = json.loads(row[0]) if row else {}
    return {m: str(meta["reference_path"]) for m, meta in models.items()
            if isinstance(meta, dict) and meta.get("reference_path")}


# ------------------------------------------------------------------ references
def reference_problems(config: Config, i: int, model: ModelConfig, rebuilt: str | None, build: bool = True) -> list[str]:
    """Load the reference as the daemon does and (``build``) build the model's detectors on it."""
    where = f"models[{i}].reference"
    path = Path(rebuilt) if rebuilt else config.resolve(model.reference)
    shown = f"{path} (the rebuilt reference recorded in {config.resolve(config.state.path)})" if rebuilt else str(path)
    if path.is_dir():
        return [f"{where}: {shown} is a directory: name one CSV, Parquet or JSONL file"]
    if not path.exists():
        return [f"{where}: file not found: {shown}"]
    try:
        table = read_table(path)
    except ReferenceError as exc:
        return [f"{where}: {exc} (fix or replace the file: CSV, Parquet or JSONL with the model's columns)"]
    columns = table.column_names
    listed = ", ".join(columns) or "none"
    found = [f"{where}: {shown} has no column {name!r} declared in models[{i}].features (columns: {listed})"
             for name in model.features if name not in columns]
    if "prediction" not in columns:
        found.append(f"{where}: {shown} has no 'prediction' column (the model's output for each row; columns: {listed})")
    if table.num_rows == 0:
        found.append(f"{where}: {shown} has 0 rows: the detectors compare live traffic against its rows")
    for name, feature in model.features.items():
        if feature.type != "numeric" or name not in columns:
            continue
        values = table.column(name).to_pylist()
        if table.num_rows and table.column(name).null_count == table.num_rows:
            found.append(f"{where}: {shown} column {name!r} is empty in all {table.num_rows} rows: "
                         f"the drift tests of models[{i}].features.{name} need its reference values")
            continue
        _, bad = numeric_column(values)
        if bad:
            found.append(f"{where}: {shown} column {name!r} has {bad} value(s) that are not numbers, e.g. "
                         f"{_worst(values)!r}, but models[{i}].features.{name} is numeric: "
                         "fix the file or declare the feature categorical")
    if found or not build:
        return found
    try:
        ModelMonitor(model.id, model.spec(), table_to_batch(table, model.spec(), source=str(path)))
    except Exception as exc:  # whatever the detectors refuse must be a line here, not a traceback in `run`
        return [detector_problem(i, shown, exc)]
    return []


def detector_problem(i: int, shown: str, exc: Exception) -> str:
    """The line for a model (``models[i]``, its reference ``shown``) whose detectors refuse to start."""
    where = f"models[{i}].reference"
    if isinstance(exc, ReferenceError):
        return f"{where}: {exc}"
    if isinstance(exc, ValueError):
        if str(exc).startswith("monitoring."):  # a setting the detectors refuse for this model
            setting, _, why = str(exc).partition(" ")
            return f"models[{i}].{setting.rstrip(':')}: {why}"
        return f"{where}: the detectors cannot start on {shown}: {exc}"
    return f"{where}: the detectors cannot start on {shown}: {type(exc).__name__}: {exc}"


def _worst(values: list[Any]) -> Any:
    """The first value that is no number even as text (else the first text or bool): the example to show."""
    wrong = [v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, int | float))]
    for v in wrong:
        try:
            float(v)
        except (TypeError, ValueError):
            return v
    return wrong[0]
