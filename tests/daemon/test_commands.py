"""The CLI faces over the same code: demo, compare, replay, silences."""

from __future__ import annotations

import html
import io
import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from driftwarden.alerts.reports.bundle import read_bundle
from driftwarden.daemon.cli import main
from driftwarden.daemon.command_errors import CommandError
from driftwarden.daemon.compare_cmd import run_compare
from driftwarden.daemon.demo import run_demo
from driftwarden.daemon.replay import run_replay
from driftwarden.daemon.simulate import FEATURES, Scenario, generate, write_reference


def test_demo_fires_on_the_injected_faults_and_writes_a_reproducible_report(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(None, str(tmp_path / "demo"), events=30_000, out=out) == 0
    text = out.getvalue()
    assert "[FIRING  ]" in text and "data_drift/cusum on age" in text and "data_drift/cusum on monthly_spend" in text
    assert "performance/accuracy on accuracy" in text  # the concept drift at 2/3
    alerts = [json.loads(line) for line in (tmp_path / "demo" / "alerts.jsonl").read_text().splitlines()]
    assert alerts and all(a["group_labels"]["model"] == "churn" for a in alerts)
    # the same numbers in the alert, its console line and its report: the metric, and a CUSUM's evidence apart
    quoted = [a for n in alerts for a in n["alerts"] if a["annotations"].get("report_summary") and a["state"] == "firing"
              and "estimate" not in a["annotations"]]  # a realized value replacing an estimate is newer than its report
    assert quoted and any(a["annotations"].get("evidence") for a in quoted)
    for a in quoted:
        notes = a["annotations"]
        page = html.unescape((tmp_path / "demo" / "reports" / notes["report_link"].split("/reports/", 1)[1]).read_text())
        assert notes["metric"] in page and notes["metric"] in text
        assert notes.get("evidence", "") in page and notes.get("evidence", "") in text
        assert "cusum" not in notes["metric"].lower()
    bundles = sorted((tmp_path / "demo" / "reports").glob("churn/*/*.replay.tar.gz"))
    assert bundles, text
    for bundle in bundles:
        replayed = io.StringIO()
        assert run_replay(str(bundle), "json", replayed) == 0  # 0: every recorded number reproduced
        found = json.loads(replayed.getvalue())["findings"]
        reproduced = {(f["kind"], f["detector"], f["subject"], f["window_end"]) for f in found
                      if f["recorded_match"] is True and f["replayed_from"] is not None}
        # every sequential finding the report was about (drift CUSUMs, F1/ROC AUC blocks, accuracy verdicts):
        # recomputed from its block and the state before it. ADWIN's change points are not carried
        sequential = [f for f in read_bundle(bundle).triggering if f.kind != "concept_drift"]
        assert sequential and {(*f.key, f.window_end) for f in sequential} <= reproduced


def _write(path: Path, scenario: Scenario, n: int) -> Path:
    cols = generate(scenario, 0, n)
    pq.write_table(pa.table({k: cols[k] for k in (*FEATURES, "prediction", "score", "outcome")}), path)
    return path


def test_compare_flags_shifted_features_only(tmp_path: Path) -> None:
    ref = write_reference(tmp_path / "ref.parquet", Scenario())
    same = _write(tmp_path / "same.parquet", Scenario(seed=3), 4000)
    shifted = _write(tmp_path / "shifted.parquet", Scenario(seed=3, covariate_shift_at=0), 4000)
    out = io.StringIO()
    run_compare(str(ref), str(same), None, None, "json", out)
    assert not [f for f in json.loads(out.getvalue())["findings"] if f["degraded"] and f["kind"] == "data_drift"]
    out = io.StringIO()
    run_compare(str(ref), str(shifted), None, None, "json", out)
    result = json.loads(out.getvalue())
    drifted = {f["subject"] for f in result["findings"] if f["degraded"] and f["kind"] == "data_drift"}
    assert result["drifted"] and drifted == {"age", "monthly_spend"}


def test_silence_commands_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reference(tmp_path / "ref.parquet", Scenario())
    config = {
        "state": {"path": str(tmp_path / "state" / "dw.db")},
        "models": [{"id": "churn", "task": "binary", "reference": "ref.parquet",
                    "features": {"age": {"type": "numeric"}}}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["silence", "-c", str(path), "add", "--model", "churn", "--duration", "2h",
                 "--comment", "maintenance", "--created-by", "ana"]) == 0
    silence_id = capsys.readouterr().out.split()[1].rstrip(":")
    assert main(["silence", "-c", str(path), "list"]) == 0
    listed = capsys.readouterr().out
    assert silence_id in listed and 'model="churn"' in listed and "ana: maintenance" in listed
    assert main(["silence", "-c", str(path), "add", "--matcher", "nonsense", "--duration", "2h", "--comment", "x"]) == 2
    assert "invalid matcher 'nonsense'" in capsys.readouterr().err
    assert main(["silence", "-c", str(path), "add", "--model", "churn", "--duration", "soon", "--comment", "x"]) == 2
    assert "not a duration: 'soon'" in capsys.readouterr().err
    assert main(["silence", "-c", str(path), "expire", silence_id]) == 0
    capsys.readouterr()
    assert main(["silence", "-c", str(path), "list"]) == 0
    assert "no active silences" in capsys.readouterr().out


def test_status_reads_the_state_of_a_demo_run(tmp_path: Path) -> None:
    from driftwarden.daemon.status_cmd import run_status

    assert run_demo(None, str(tmp_path / "demo"), events=30_000, out=io.StringIO()) == 0
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "demo.yaml").read_text())
    data["state"]["path"] = str(tmp_path / "demo" / "state" / "driftwarden.db")
    data["models"][0]["reference"] = str(tmp_path / "demo" / "churn_reference.parquet")
    data["reports"]["directory"] = str(tmp_path / "demo" / "reports")
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(data))
    out = io.StringIO()
    assert run_status(str(config), "json", out) == 0
    status = json.loads(out.getvalue())
    assert status["models"]["churn"]["labelled_samples"] > 25_000
    assert status["offsets"]["predictions[0]"] == 30_000
    firing = {(a["kind"], a["subject"]) for a in status["alerts"] if a["state"] == "firing"}
    assert ("data_drift", "age") in firing and ("performance", "accuracy") in firing
    assert len({(a["model"], a["kind"], a["detector"], a["subject"]) for a in status["alerts"]}) == len(status["alerts"])
    table = io.StringIO()
    run_status(str(config), "table", table)
    assert "model churn: version 1.0.0" in table.getvalue()


def test_a_failing_model_is_isolated_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from driftwarden.daemon.demo import demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import messages

    app = demo_app(tmp_path)

    def broken(batch: object) -> list[object]:
        raise FloatingPointError("a detector bug")

    app.models["churn"].monitor.observe_predictions = broken  # type: ignore[method-assign]
    batch = [Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(messages(Scenario(events=600, label_delay=50)))]
    result = app.handle(batch)  # no exception: the batch is consumed
    assert result.predictions == 600 and result.outcomes > 0
    value = app.metrics.registry.get_sample_value(
        "driftwarden_model_errors_total", {"model": "churn", "stage": "predictions"})
    assert value == 1.0
    assert "detectors failed on predictions" in caplog.text
    app.close()


def test_a_config_change_that_does_not_fit_the_checkpoint_starts_windows_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from driftwarden.daemon.app import App
    from driftwarden.daemon.demo import DEMO_CONFIG, demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import messages

    data = yaml.safe_load(DEMO_CONFIG.read_text())

    def app_with(window: int) -> App:
        data["models"][0]["monitoring"]["window_size"] = window
        return demo_app(tmp_path, data)

    app = app_with(2000)
    app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(messages(Scenario(events=1500, label_delay=50)))])
    app.save()
    app.close()
    smaller = app_with(1000)  # 1500 open rows cannot fit a 1000-row window: no crash loop
    assert "does not fit the current config" in caplog.text
    assert smaller.offsets  # the offsets still resume where the checkpoint left off
    smaller.close()


def test_report_on_demand_explains_the_checkpointed_open_window(tmp_path: Path) -> None:
    """No window has closed yet (or none since a restart): the report covers the open window's rows."""
    from driftwarden.daemon.app import App
    from driftwarden.daemon.config import load_config
    from driftwarden.daemon.demo import DEMO_CONFIG, ConsoleNotifier
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.report_cmd import report_command
    from driftwarden.daemon.simulate import messages

    write_reference(tmp_path / "churn_reference.parquet", Scenario())
    config_path = tmp_path / "demo.yaml"
    config_path.write_text(DEMO_CONFIG.read_text())
    config = load_config(config_path)
    console = ConsoleNotifier(tmp_path / "alerts.jsonl", io.StringIO())
    app = App(config, dead_letters=None, notifiers={n: console for n in config.alerting.receiver_names()})  # type: ignore[arg-type]
    app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(
        messages(Scenario(events=1500, covariate_shift_at=0, label_delay=50)))])  # window_size 2000: still open
    app.save()
    app.close()
    # the sequential drift alarms of those 1500 rows wrote their own report: count the new one
    before = set((tmp_path / "reports").glob("churn/*/report.html"))
    assert report_command(str(config_path), "churn", now=1_796_000_000.0) == 0
    reports = list(set((tmp_path / "reports").glob("churn/*/report.html")) - before)
    assert len(reports) == 1 and "age" in reports[0].read_text()
    db = sqlite3.connect(config.resolve(config.state.path))  # the open window's stored rows lost
    db.execute("DELETE FROM window_rows")
    db.commit()
    db.close()
    with pytest.raises(CommandError, match=r"churn.*stored rows are 0, its state says 1500"):
        report_command(str(config_path), "churn", now=1_796_000_000.0)


def test_events_of_models_not_in_the_config_are_counted_and_skipped(tmp_path: Path) -> None:
    from driftwarden.daemon.demo import demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import messages

    app = demo_app(tmp_path)
    stream = list(messages(Scenario(model_id="unmonitored", events=300, label_delay=50)))
    result = app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(stream)])
    assert result.predictions == 0 and result.dead_lettered == 0
    assert app.metrics.registry.get_sample_value("driftwarden_events_ignored_total", {"reason": "unknown_model"}) == len(stream)
    app.close()


def test_reports_render_off_the_consume_thread_and_join_their_alerts(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """As App.run does: the hook copies what a report reads, a worker renders, drain attaches."""
    import threading

    import driftwarden.daemon.report_cmd as report_cmd
    from driftwarden.daemon.demo import demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import messages

    threads: list[str] = []
    render = report_cmd.render_report

    def recording(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return render(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(report_cmd, "render_report", recording)
    app = demo_app(tmp_path)
    app.reports.start_background()
    stream = [Message(t, 0, i, k, v) for i, (t, k, v) in
              enumerate(messages(Scenario(events=12_000, label_delay=50, covariate_shift_at=4000)))]
    for i in range(0, len(stream), 1000):  # polls: alerts count one evaluation per poll
        app.handle(stream[i : i + 1000])
        app.housekeeping(None)
    app.reports.stop_background()  # waits for the worker, then attaches on this thread
    assert threads and all(name.startswith("driftwarden-report") for name in threads)
    drifting = [a for a in app.alerts.lifecycle.active() if a.state == "firing" and a.labels.get("kind") == "data_drift"]
    assert drifting and all(a.annotations.get("report_link") for a in drifting)
    assert sorted(tmp_path.rglob("report.html"))
    app.close()
