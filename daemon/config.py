"""The daemon's YAML configuration: schema, defaults, strict loading.

Every error names the YAML path of the field and what is wrong with it;
unknown keys are errors (a typo must not silently fall back to a default).
Secrets never live in the YAML: fields ending in ``_env`` name environment
variables that hold them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from driftwarden.alerts.settings import AlertingSettings, Duration, duration_fields
from driftwarden.daemon.clock import EventTimeSettings
from driftwarden.daemon.coalesce import CoalesceSettings
from driftwarden.daemon.kafka_settings import KafkaSettings, parse_duration
from driftwarden.daemon.rebuild import RebuildSettings
from driftwarden.daemon.strict import convert
from driftwarden.detectors.findings import Kind
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec, Task


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists ``path: problem`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class StateSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Where checkpoints (detector state + offsets + pending joins) live."""

    path: str = "var/driftwarden.db"
    checkpoint_interval: Duration = "5s"
    # sqlite: this file alone (one instance). kafka: each model's state also goes to a compacted
    # changelog topic and follows its partition to whichever group member owns it (the file is the cache)
    backend: Literal["sqlite", "kafka"] = "sqlite"
    changelog_topic: str | None = None  # default: "<kafka.group_id>-state"
    # processes that build the models' detectors at start-up (daemon/startup.py); default: with 16 models
    # or more, one a core up to 4; 0: in the daemon's process
    startup_workers: int | None = None

    def changelog(self, group_id: str) -> str:
        return self.changelog_topic or f"{group_id}-state"


class JoinSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Outcome join: how long a prediction waits for its outcome, and how many may wait."""

    ttl: Duration = "7d"
    max_pending: int = 1_000_000


class HttpSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 9108
    enabled: bool = True
    # kinds of checks without per-check series on /metrics (their alerts and reports stay): a default
    # model of 20 features has 111 checks x 4 series, 80 of them quality rates
    exclude_check_kinds: list[Kind] = msgspec.field(default_factory=list)

    def local_url(self, path: str) -> str:
        """The daemon's own URL for ``path`` (a wildcard bind address is reached on 127.0.0.1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}{path}"


class ReportSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    directory: str = "var/reports"
    retention: Duration = "30d"
    base_url: str | None = None  # public link prefix used in Slack messages


class LoggingSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The daemon's own log lines: ``text`` for people, ``json`` (one object per line) for log shippers.

    ``driftwarden --log-format`` and ``-v`` (debug) override these.
    """

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ModelConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One monitored model (an entry of ``models:``)."""

    id: str
    task: Task
    features: dict[str, FeatureSpec]
    reference: str
    positive_label: str = "1"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    monitoring: MonitorSettings = msgspec.field(default_factory=MonitorSettings)
    rebuild_reference: RebuildSettings = msgspec.field(default_factory=RebuildSettings)

    def spec(self) -> ModelSpec:
        return ModelSpec(
            task=self.task,
            features=self.features,
            positive_label=self.positive_label,
            monitoring=self.monitoring,
        )


class Config(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    models: list[ModelConfig]
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    state: StateSettings = msgspec.field(default_factory=StateSettings)
    join: JoinSettings = msgspec.field(default_factory=JoinSettings)
    event_time: EventTimeSettings = msgspec.field(default_factory=EventTimeSettings)
    coalesce: CoalesceSettings = msgspec.field(default_factory=CoalesceSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    reports: ReportSettings = msgspec.field(default_factory=ReportSettings)
    alerting: AlertingSettings = msgspec.field(default_factory=AlertingSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    base_dir: str = "."  # set by the loader: the config file's directory

    def model(self, model_id: str) -> ModelConfig:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(model_id)

    def reports_url(self) -> str:
        """Link prefix for reports in alerts: ``reports.base_url``, else the daemon's own HTTP port."""
        if self.reports.base_url:
            return self.reports.base_url.rstrip("/")
        return self.http.local_url("/reports")

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        p = Path(os.path.expandvars(path)).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


def duration_paths(config: Config) -> list[str]:
    """``section.field`` of every :data:`Duration` field of the config's sections (``alerting``'s are
    checked as they are read, by its own structs)."""
    return [f"{section}.{name}" for section in config.__struct_fields__
            if isinstance(value := getattr(config, section), msgspec.Struct) and section != "alerting"
            for name in duration_fields(type(value))]


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml when PyYAML has it (~10x faster: a config of 1,000
    models). The constructor is the same (SafeConstructor), so is the data; a document libyaml
    refuses is parsed again by the Python parser, so an error reads as it always did."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_config(path: str | os.PathLike[str], *, check_files: bool = True) -> Config:
    """Read and validate a YAML file; raise :class:`ConfigError` listing every problem.

    ``check_files=False`` skips the checks that files the config names exist (the reference
    data sets): for commands that never read them (``status``, ``silence``, ``simulate``).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    return parse_config(data, source=source, base_dir=str(Path(path).resolve().parent), check_files=check_files)


def parse_config(data: Any, source: str = "<config>", base_dir: str = ".", *, check_files: bool = True) -> Config:
    if data is None:
        data = {}
    errors: list[str] = []
    if isinstance(data, dict):
        data = {**data, "base_dir": base_dir}
    config = convert(data, Config, "", errors)
    if config is not None:
        errors.extend(_cross_checks(config, check_files=check_files))
    if errors:
        raise ConfigError(source, errors)
    assert isinstance(config, Config)
    return config


def _cross_checks(config: Config, *, check_files: bool = True) -> list[str]:
    problems: list[str] = []
    for dotted in duration_paths(config):
        section, name = dotted.split(".")
        try:
            parse_duration(getattr(getattr(config, section), name))
        except ValueError as exc:
            problems.append(f"{dotted}: {exc}")
    if not config.models:
        problems.append("models: at least one model is required")
    if config.coalesce.events is not None and config.coalesce.events < 1:
        problems.append(f"coalesce.events: must be >= 1, got {config.coalesce.events}")
    if config.state.startup_workers is not None and config.state.startup_workers < 0:
        problems.append(f"state.startup_workers: must be >= 0 (0: build in the daemon's process), "
                        f"got {config.state.startup_workers}")
    if config.coalesce.max_waiting < 1:
        problems.append(f"coalesce.max_waiting: must be >= 1, got {config.coalesce.max_waiting}")
    try:
        max_wait, idle_after = parse_duration(config.coalesce.max_wait), parse_duration(config.event_time.idle_after)
    except ValueError:
        pass  # reported with the other durations
    else:
        if not 0 <= max_wait < idle_after:  # events held longer would make a flowing source look silent
            problems.append(f"coalesce.max_wait: must be >= 0 and shorter than event_time.idle_after "
                            f"({config.event_time.idle_after}), got {config.coalesce.max_wait!r}")
    if config.state.backend == "kafka" and "model" not in config.alerting.group_by:
        problems.append("alerting.group_by: must include \"model\" with state.backend kafka "
                        "(a group's notifications follow its model to the instance that owns it)")
    seen: dict[str, int] = {}
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        if model.id in seen:
            problems.append(f"{where}.id: duplicate model id {model.id!r} (also models[{seen[model.id]}])")
        seen[model.id] = i
        if not model.features:
            problems.append(f"{where}.features: declare at least one feature")
        for name, feature in model.features.items():
            if feature.min is not None and feature.max is not None and feature.min > feature.max:
                problems.append(f"{where}.features.{name}: min {feature.min} is greater than max {feature.max}")
        if check_files and not config.resolve(model.reference).exists():
            problems.append(f"{where}.reference: file not found: {config.resolve(model.reference)}")
        if model.rebuild_reference.rows < 100:
            problems.append(f"{where}.rebuild_reference.rows: must be >= 100, got {model.rebuild_reference.rows}")
        if model.monitoring.window_size < 10:
            problems.append(f"{where}.monitoring.window_size: must be >= 10, got {model.monitoring.window_size}")
        try:
            model.monitoring.validate()  # value ranges, as the detectors would refuse them at start
        except ValueError as exc:
            problems.append(f"{where}.{exc}")
    return problems
