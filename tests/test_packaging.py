"""docker-compose.yml parses and points at files that exist; the Kafka version matches the tests'."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.broker.kafka import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_parses_and_references_existing_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "simulate", "driftwarden"} <= set(services)  # + prometheus, grafana: tests/test_deploy_monitoring.py
    assert "driftwarden-data" in compose["volumes"]
    for name in ("simulate", "driftwarden"):
        assert "driftwarden-data:/data" in services[name]["volumes"]
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    for name in ("simulate", "driftwarden"):
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    for volume in services["driftwarden"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./config"):
            assert (ROOT / source).is_file(), source
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in ("daemon", "detectors", "alerts", "config", "pyproject.toml"):
        assert f"COPY {copied}" in dockerfile and (ROOT / copied).exists()


@pytest.mark.parametrize("name", ["driftwarden.yaml", "compose.yaml"])
def test_example_configs_are_valid_apart_from_the_container_paths(tmp_path: Path, name: str) -> None:
    from driftwarden.daemon.config import ConfigError, load_config

    text = (ROOT / "config" / name).read_text()
    (tmp_path / "driftwarden.yaml").write_text(text.replace("/data/", ""))
    from driftwarden.daemon.simulate import Scenario, write_reference

    write_reference(tmp_path / "churn_reference.parquet", Scenario())
    try:
        config = load_config(tmp_path / "driftwarden.yaml")
    except ConfigError as exc:  # pragma: no cover - shows every problem
        raise AssertionError(str(exc)) from exc
    assert config.models[0].id == "churn"


def test_the_documented_example_config_passes_check_config_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh checkout: `driftwarden check-config config/driftwarden.yaml` passes once its secrets are set."""
    from driftwarden.daemon.cli import main

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-example")
    monkeypatch.setenv("DRIFTWARDEN_CI_SECRET", "example")
    assert main(["check-config", str(ROOT / "config" / "driftwarden.yaml")]) == 0
    assert not (ROOT / "var" / "state").exists() or any((ROOT / "var" / "state").iterdir())  # the probe leaves nothing
