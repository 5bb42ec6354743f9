"""Log lines: text or one JSON object per line, from the CLI flag or the config's logging section."""

from __future__ import annotations

import argparse
import json
import logging
import re

import pytest

from driftwarden.daemon.cli import apply_logging
from driftwarden.daemon.config import ConfigError, LoggingSettings, parse_config
from driftwarden.daemon.logs import StderrHandler, configure_logging, rfc3339

MODEL = {"id": "churn", "task": "binary", "reference": "ref.csv", "features": {"age": {"type": "numeric"}}}


@pytest.fixture(autouse=True)
def restore_root() -> object:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_extra_fields_and_a_one_line_exception(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    log = logging.getLogger("driftwarden.test")
    log.debug("not at info")
    log.warning("dead-lettered %d message(s)", 2, extra={"model": "churn", "topic": "predictions", "partition": 0,
                                                          "offset": 41})
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        log.exception("batch failed", extra={"model": "churn"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {"ts": first["ts"], "level": "warning", "logger": "driftwarden.test",
                     "message": "dead-lettered 2 message(s)", "model": "churn", "topic": "predictions",
                     "partition": 0, "offset": 41}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert second["level"] == "error" and second["model"] == "churn"
    assert second["exception"].startswith("Traceback") and second["exception"].endswith("RuntimeError: boom\nsecond line")


def test_rfc3339_is_utc_with_milliseconds() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_764_478_800.9996) == "2025-11-30T05:00:00.999Z"  # truncated, never rounded into the next second


def test_text_is_the_default_and_verbose_means_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(verbose=True)
    logging.getLogger("driftwarden.test").debug("details %s", "here")
    assert re.fullmatch(r"\S+ \S+ DEBUG driftwarden.test: details here\n", capsys.readouterr().err)


def test_reconfiguring_replaces_only_our_handler() -> None:
    configure_logging("text")
    configure_logging("json")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, StderrHandler)]
    assert len(ours) == 1


@pytest.mark.parametrize(("flag", "verbose", "section", "expected_format", "expected_level"), [
    (None, False, {}, "text", logging.INFO),
    (None, False, {"format": "json", "level": "warning"}, "json", logging.WARNING),
    ("text", False, {"format": "json"}, "text", logging.INFO),  # the flag wins
    ("json", True, {"level": "error"}, "json", logging.DEBUG),  # -v wins
])
def test_the_config_section_under_the_flags(capsys: pytest.CaptureFixture[str], flag: str | None, verbose: bool,
                                            section: dict[str, str], expected_format: str, expected_level: int) -> None:
    config = parse_config({"models": [MODEL], "logging": section}, check_files=False)
    apply_logging(argparse.Namespace(log_format=flag, verbose=verbose), config)
    assert logging.getLogger().level == expected_level
    logging.getLogger("driftwarden.test").error("x")
    assert capsys.readouterr().err.startswith("{") == (expected_format == "json")


def test_the_logging_section_is_strict() -> None:
    assert parse_config({"models": [MODEL]}, check_files=False).logging == LoggingSettings("text", "info")
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [MODEL], "logging": {"format": "xml", "colour": True}}, check_files=False)
    text = str(err.value)
    assert "logging.format" in text and "logging.colour: unknown key" in text


def test_file_checks_are_skipped_only_when_asked() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\].reference: file not found"):
        parse_config({"models": [MODEL]})
    assert parse_config({"models": [MODEL]}, check_files=False).models[0].reference == "ref.csv"
