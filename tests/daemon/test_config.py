from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import yaml

from driftwarden.alerts.settings import AlertingSettings, duration_fields
from driftwarden.daemon.cli import main
from driftwarden.daemon.config import Config, ConfigError, duration_paths, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: object) -> Path:
    (tmp_path / "ref.csv").write_text("age,plan,prediction,score,outcome\n41,pro,1,0.8,1\n")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def model(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "churn", "task": "binary", "reference": "ref.csv",
        "features": {"age": {"type": "numeric"}, "plan": {"type": "categorical"}},
    }
    base.update(over)
    return base


def problems(tmp_path: Path, data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    return info.value.problems


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"models": [model()]}))
    assert config.kafka.predictions_topic == "predictions"
    assert config.models[0].monitoring.window_size > 0
    assert config.resolve("ref.csv") == tmp_path / "ref.csv"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # wrong type of a nested feature field: the path names the feature
        ({"features": {"age": {"type": "numberish"}}}, "models[0].features.age.type: invalid enum value 'numberish'"),
        # unknown keys are errors, with the allowed ones listed
        ({"featurs": {}}, "models[0].featurs: unknown key"),
        ({"features": {"age": {"type": "numeric", "mn": 0}}}, "models[0].features.age.mn: unknown key"),
        # required keys
        ({"task": None}, "models[0].task: "),
        # cross-field checks in plain sentences
        (
            {"features": {"age": {"type": "numeric", "min": 5, "max": 1}}},
            "models[0].features.age: min 5.0 is greater than max 1.0",
        ),
        ({"reference": "missing.parquet"}, "models[0].reference: file not found"),
        ({"monitoring": {"window_size": "big"}}, "models[0].monitoring.window_size: expected `int`, got `str`"),
        # value ranges of the detectors' settings
        ({"monitoring": {"drift": {"alpha": 2}}}, "models[0].monitoring.drift.alpha: 2.0 is outside the allowed range [0, 1]"),
        ({"monitoring": {"quality": {"max_unseen_rate": 1.5}}},
         "models[0].monitoring.quality.max_unseen_rate: 1.5 is outside the allowed range [0, 1]"),
    ],
)
def test_errors_name_the_yaml_path(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    found = problems(tmp_path, {"models": [model(**change)]})
    assert any(p.startswith(expected) for p in found), found


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, {"models": [model(), model()], "kafka": {"poll_timeout": "soon"}})
    assert any(p.startswith("kafka.poll_timeout: not a duration") for p in found)
    assert any("duplicate model id 'churn'" in p for p in found)


def test_cross_field_errors_of_a_section_name_their_field(tmp_path: Path) -> None:
    found = problems(tmp_path, {"models": [model()], "alerting": {"group_wait": "soon"}})
    assert any(p.startswith("alerting.group_wait: invalid duration 'soon'") for p in found), found


def test_alerting_errors_are_located(tmp_path: Path) -> None:
    found = problems(tmp_path, {"models": [model()], "alerting": {"route": {"receiver": "nowhere"}}})
    assert any(p.startswith("alerting:") and "nowhere" in p for p in found), found


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, {"models": [model()]})
    assert main(["check-config", str(good)]) == 0
    bad = write(tmp_path, {"models": [model(features={"age": {"type": "numeric", "bogus": 1}})]})
    assert main(["check-config", str(bad)]) == 1
    assert "models[0].features.age.bogus: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["driftwarden.yaml", "demo.yaml", "compose.yaml"])
def test_shipped_configs_parse(name: str) -> None:
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    assert data["models"]


def test_excluded_check_kinds_are_validated_by_name(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"models": [model()], "http": {"exclude_check_kinds": ["quality"]}}))
    assert config.http.exclude_check_kinds == ["quality"]
    found = problems(tmp_path, {"models": [model()], "http": {"exclude_check_kinds": ["quality", "qualty"]}})
    assert any(p.startswith("http.exclude_check_kinds[1]: invalid enum value 'qualty'") for p in found), found


def test_every_duration_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    """Every field declared a Duration, found by its type (no list to keep up): not when a client is
    built from it, minutes later or after a broker outage."""
    paths = duration_paths(msgspec.convert({"models": []}, Config))
    assert {"kafka.poll_timeout", "kafka.session_timeout", "kafka.fetch_max_wait", "state.checkpoint_interval",
            "join.ttl", "event_time.idle_after", "coalesce.max_wait", "reports.retention"} <= set(paths)
    for path in paths:
        section, key = path.split(".")
        found = problems(tmp_path, {"models": [model()], section: {key: "soon"}})
        assert any(p.startswith(f"{path}: not a duration") for p in found), (path, found)
    for key in duration_fields(AlertingSettings):  # the alerting block's, as its structs read them
        found = problems(tmp_path, {"models": [model()], "alerting": {key: "soon"}})
        assert any(p.startswith(f"alerting.{key}: invalid duration 'soon'") for p in found), (key, found)
