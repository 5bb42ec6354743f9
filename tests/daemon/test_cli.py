"""The CLI's contract: options everywhere, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from driftwarden.daemon.cli import build_parser, main, package_version
from driftwarden.daemon.simulate import FEATURES, Scenario, generate, write_reference

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, scenario: Scenario, n: int, columns: tuple[str, ...] = (*FEATURES, "prediction", "score",
                                                                                  "outcome")) -> Path:
    cols = generate(scenario, 0, n)
    pq.write_table(pa.table({k: cols[k] for k in columns}), path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    out = {
        "dir": d,
        "ref": write_reference(d / "ref.parquet", Scenario()),
        "same": _write(d / "same.parquet", Scenario(seed=3), 3000),
        "shifted": _write(d / "shifted.parquet", Scenario(seed=3, covariate_shift_at=0), 3000),
        "nopred": _write(d / "nopred.parquet", Scenario(seed=3), 500, FEATURES),
    }
    base = {"state": {"path": str(d / "state" / "dw.db")}, "http": {"enabled": False},
            "reports": {"directory": str(d / "reports")},
            "models": [{"id": "churn", "task": "binary", "reference": "ref.parquet",
                        "features": {"age": {"type": "numeric"}}}]}
    out["config"] = d / "good.yaml"
    out["config"].write_text(yaml.safe_dump(base))
    away = {**base, "models": [{**base["models"][0], "reference": "/nonexistent/ref.parquet"}]}
    out["no_reference"] = d / "no_reference.yaml"  # the reference file lives elsewhere (another host)
    out["no_reference"].write_text(yaml.safe_dump(away))
    return out


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[dict[str, Path]], list[str]]
    code: int
    err: Callable[[dict[str, Path]], str] | None = None  # the exact stderr (one line), when given
    out: str | None = None  # a substring of stdout, when given


CASES = [
    Case("version", lambda f: ["--version"], 0, out=f"driftwarden {package_version()}\n"),
    Case("compare: missing reference file",
         lambda f: ["compare", "--reference", str(f["dir"] / "nope.csv"), "--current", str(f["same"])], 2,
         lambda f: f"driftwarden compare: reference file not found: {f['dir'] / 'nope.csv'} (check the --reference path)"),
    Case("compare: missing current file",
         lambda f: ["compare", "--reference", str(f["ref"]), "--current", str(f["dir"] / "nope.csv")], 2,
         lambda f: f"driftwarden compare: current file not found: {f['dir'] / 'nope.csv'} (check the --current path)"),
    Case("compare: no prediction column",
         lambda f: ["compare", "--reference", str(f["nopred"]), "--current", str(f["same"])], 2,
         lambda f: (f"driftwarden compare: {f['nopred']}: no 'prediction' column (columns: {', '.join(FEATURES)}) "
                    "(add the model's predictions as a column named prediction)")),
    Case("compare: current without prediction column",
         lambda f: ["compare", "--reference", str(f["ref"]), "--current", str(f["nopred"])], 2,
         lambda f: (f"driftwarden compare: {f['nopred']}: missing the 'prediction' column "
                    "(check the file's path, format (.csv, .parquet, .jsonl) and columns)")),
    Case("compare: --model without a config",
         lambda f: ["compare", "--reference", str(f["ref"]), "--current", str(f["same"]), "--model", "churn"], 2,
         lambda f: "driftwarden compare: --model needs -c CONFIG (give the config that declares the model, "
                   "or leave --model out)"),
    Case("compare: unknown model in the config",
         lambda f: ["compare", "-c", str(f["no_reference"]), "--model", "fraud", "--reference", str(f["ref"]),
                    "--current", str(f["same"])], 2,
         lambda f: f"driftwarden compare: no model 'fraud' in {f['no_reference']} (choose one of: churn)"),
    Case("compare: drift fails by default", lambda f: ["compare", "--reference", str(f["ref"]), "--current",
                                                       str(f["shifted"])], 1, out="DRIFTED: data_drift:age"),
    Case("compare: drift with --no-fail-on-drift", lambda f: ["compare", "--no-fail-on-drift", "--reference",
                                                              str(f["ref"]), "--current", str(f["shifted"])], 0,
         out="DRIFTED: data_drift:age"),
    Case("compare: no drift", lambda f: ["compare", "--reference", str(f["ref"]), "--current", str(f["same"]),
                                         "-c", str(f["no_reference"])], 0, out="no drift"),
    Case("compare: a usage error", lambda f: ["compare", "--reference", str(f["ref"])], 2),
    Case("status -v after the verb, reference elsewhere", lambda f: ["status", "-v", "-c", str(f["no_reference"])], 0,
         out="no checkpoint yet"),
    Case("status --verbose before the verb", lambda f: ["--verbose", "status", "-c", str(f["no_reference"])], 0,
         out="no checkpoint yet"),
    Case("status: config missing", lambda f: ["status", "-c", str(f["dir"] / "nope.yaml")], 2),
    Case("silence list, reference elsewhere", lambda f: ["silence", "-c", str(f["no_reference"]), "list"], 0,
         out="no active silences"),
    Case("silence list -c after the action", lambda f: ["silence", "list", "-c", str(f["no_reference"]), "-v"], 0,
         out="no active silences"),
    Case("silence without a config", lambda f: ["silence", "list"], 2,
         lambda f: "driftwarden silence list: no config given (driftwarden silence -c CONFIG ACTION)"),
    Case("silence add: nothing to match",
         lambda f: ["silence", "-c", str(f["no_reference"]), "add", "--duration", "1h", "--comment", "x"], 2,
         lambda f: "driftwarden silence add: nothing to silence (give --model or at least one --matcher, "
                   "e.g. 'kind=\"data_drift\"')"),
    Case("silence add: bad duration",
         lambda f: ["silence", "-c", str(f["no_reference"]), "add", "--model", "churn", "--duration", "soon",
                    "--comment", "x"], 2,
         lambda f: "driftwarden silence add: --duration: not a duration: 'soon' (use e.g. 30s, 5m, 4h, 7d)"),
    Case("silence expire: unknown id", lambda f: ["silence", "-c", str(f["no_reference"]), "expire", "abc"], 2,
         lambda f: "driftwarden silence expire: no active silence abc "
                   "(see the active ones with: driftwarden silence -c CONFIG list)"),
    Case("report: unknown model", lambda f: ["report", "-c", str(f["config"]), "--model", "fraud"], 2,
         lambda f: f"driftwarden report: unknown model 'fraud' (configured in {f['config']}: churn)"),
    Case("report: no checkpoint", lambda f: ["report", "-c", str(f["config"]), "--model", "churn"], 2,
         lambda f: (f"driftwarden report: no checkpoint at {f['dir'] / 'state' / 'dw.db'} "
                    "(run the daemon with this config first, or check state.path)")),
    Case("replay: no such bundle", lambda f: ["replay", str(f["dir"] / "none.replay.tar.gz")], 2),
    Case("check-config -c", lambda f: ["check-config", "-c", str(f["config"])], 0, out="ok (1 model(s): churn)"),
    Case("check-config FILE", lambda f: ["check-config", str(f["config"])], 0, out="ok (1 model(s): churn)"),
    Case("check-config: two different files", lambda f: ["check-config", str(f["config"]), "-c",
                                                         str(f["no_reference"])], 2,
         lambda f: f"driftwarden check-config: two configs given: {f['config']} and -c {f['no_reference']} (give one)"),
    Case("check-config: the reference is missing", lambda f: ["check-config", "-c", str(f["no_reference"])], 1),
    Case("simulate: no broker", lambda f: ["simulate", "--events", "10"], 2,
         lambda f: "driftwarden simulate: no Kafka broker given (give -c CONFIG or --bootstrap-servers HOST:PORT)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verbs(case: Case, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(case.argv(files))
    out, err = capsys.readouterr()
    assert code == case.code, err
    assert "Traceback" not in err
    if case.err is not None:
        assert err == case.err(files) + "\n"
    elif case.code == 2:
        assert err.strip(), "an input problem says what it is"
    if case.out is not None:
        assert case.out in out, out


def test_an_unexpected_error_is_one_line_and_a_traceback_only_with_verbose(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import driftwarden.daemon.status_cmd as status_cmd
    def broken(*_args: object) -> int:
        return 1 // 0

    monkeypatch.setattr(status_cmd, "run_status", broken)
    assert main(["status", "-c", str(files["config"])]) == 3
    err = capsys.readouterr().err
    assert err == ("driftwarden status: unexpected ZeroDivisionError: integer division or modulo by zero "
                   "(a bug: rerun with -v for the traceback and report it)\n")
    assert main(["status", "-c", str(files["config"]), "-v"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "1 // 0" in err and err.endswith("(a bug: rerun with -v for the traceback and report it)\n")


def test_compare_table_has_one_row_per_check_and_names_the_test_behind_the_p_value(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--reference", str(files["ref"]), "--current", str(files["shifted"])]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0].split()
    assert header == ["kind", "subject", "metric", "statistic", "threshold", "test", "p-value", "drifted"]
    rows = [line.split() for line in lines[2:] if line and not line.startswith(("p-values", "model verdict"))]
    keys = [(r[0], r[1], r[2]) for r in rows]
    assert len(keys) == len(set(keys)), keys  # the CBPE realized rows used to repeat the estimates
    tests = {r[1]: r[5] for r in rows if r[0] == "data_drift"}
    assert tests == {"age": "KS", "tenure_days": "KS", "monthly_spend": "KS", "support_tickets": "KS",
                     "plan": "chi2", "country": "chi2"}
    age = next(r for r in rows if r[:2] == ["data_drift", "age"])
    assert age[2] == "psi" and age[7] == "YES"
    assert all(r[5] == "-" for r in rows if r[0] in ("performance", "estimated_performance", "quality"))
    assert main(["compare", "--reference", str(files["ref"]), "--current", str(files["shifted"]),
                 "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["drifted"] is True
    assert len({(f["kind"], f["detector"], f["subject"]) for f in doc["findings"]}) == len(doc["findings"])


def _actions(parser: argparse.ArgumentParser, path: str = "driftwarden") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_option_has_help_and_every_verb_takes_the_common_options() -> None:
    actions = _actions(build_parser())
    assert not [(verb, a.dest) for verb, a in actions if not a.help], "options without help text"
    verbs = {verb for verb, _ in actions if verb != "driftwarden"}
    for verb in verbs:
        dests = {a.dest for v, a in actions if v == verb}
        assert {"verbose", "log_format"} <= dests, verb
        if verb not in ("driftwarden replay", "driftwarden silence"):
            assert "config" in dests, verb


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "output format (default: table)" in text
    assert "--fail-on-drift, --no-fail-on-drift" in text and "exit 0 (default: True)" in text
    assert "(default: None)" not in text
    assert main(["simulate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "prediction events to produce (default: 50000)" in text
    assert "(default: kafka.predictions_topic of -c CONFIG, else predictions)" in text


def test_simulate_takes_broker_and_topics_from_the_config(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import driftwarden.daemon.simulate_kafka as simulate_kafka
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(simulate_kafka, "produce", lambda args: seen.append(args) or 0)
    config = files["dir"] / "kafka.yaml"
    data = yaml.safe_load(files["no_reference"].read_text())
    data["kafka"] = {"bootstrap_servers": "127.0.0.1:1", "predictions_topic": "p1"}
    config.write_text(yaml.safe_dump(data))
    assert main(["simulate", "-c", str(config), "--events", "10", "--outcomes-topic", "o2"]) == 0
    assert (seen[0].bootstrap_servers, seen[0].predictions_topic, seen[0].outcomes_topic) == ("127.0.0.1:1", "p1", "o2")


def test_report_prints_the_summary_unescaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from driftwarden.daemon.report_cmd import terminal_text

    assert terminal_text("`a &lt;b&gt; &amp;lt; c`") == "`a <b> &lt; c`"


# ------------------------------------------------------------------ end to end, as processes
def _process(*argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "driftwarden.daemon.cli", *argv], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()  # this PID only
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_compare_in_ci_exits_1_on_drift_and_2_on_a_missing_file(files: dict[str, Path]) -> None:
    drifted = _process("compare", "--reference", str(files["ref"]), "--current", str(files["shifted"]))
    assert drifted.returncode == 1 and "DRIFTED" in drifted.stdout and drifted.stderr == ""
    missing = _process("compare", "--reference", str(files["ref"]), "--current", "nope.csv")
    assert missing.returncode == 2
    assert missing.stderr == "driftwarden compare: current file not found: nope.csv (check the --current path)\n"


def test_demo_logs_json_lines(tmp_path: Path) -> None:
    result = _process("demo", "-v", "--log-format", "json", "--workdir", str(tmp_path / "demo"), "--events", "10000")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for r in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"]), r
        assert {"level", "logger", "message"} <= set(r)
    assert any(r["logger"] == "driftwarden.daemon.report_cmd" and "root-cause report" in r["message"] for r in records)
