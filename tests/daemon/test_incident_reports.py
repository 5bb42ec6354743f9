"""One report per incident: checks that fire in one notification group share one report, rewritten
in place as they join; a fault in another feature 20 minutes later gets its own (issue 13: the
demo wrote 4 reports for 2 faults)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from driftwarden.daemon.demo import demo_app
from driftwarden.daemon.pipeline import Message
from driftwarden.daemon.report_cmd import replay_steps_of
from driftwarden.daemon.simulate import START, Scenario, messages
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.replay_steps import ReplayStep


def drift(subject: str, t: float) -> Finding:
    return Finding("data_drift", "cusum", subject, 14.0, 9.8, True, t, 500, severity="critical",
                   details={"sequential": True, "effect": 0.9, "effect_floor": 0.1})


def test_checks_of_one_incident_share_one_report_and_another_fault_gets_its_own(tmp_path: Path) -> None:
    now = [START]
    app = demo_app(tmp_path, clock=lambda: now[0])
    try:
        scenario = Scenario()
        batch = [Message(topic, 0, i, key, value) for i, (topic, key, value) in
                 enumerate(itertools.islice(messages(scenario), 3000))]
        now[0] = START + 1500 / scenario.rate
        app.handle(batch)  # healthy rows in the monitor's windows: what the reports read
        runtime = app.pipeline.models["churn"]
        t = now[0]

        def fire(subject: str, at: float) -> None:
            found = [drift(subject, at)]
            changed = app.alerts.ingest("churn", runtime.labels(), found, at)
            assert [a.state for a in changed if a.labels["subject"] == subject][-1] == "firing"
            app.reports(runtime, found, found, at)
            app.alerts.flush(at)

        fire("age", t)
        fire("monthly_spend", t + 60)  # the same fault, a minute later: the same report, rewritten
        reports = sorted(p.parent.name for p in (tmp_path / "reports").glob("*/*/report.html"))
        assert len(reports) == 1
        links = {a.labels["subject"]: a.annotations.get("report_link") for a in app.alerts.lifecycle.alerts.values()}
        assert links["age"] == links["monthly_spend"] and links["age"] is not None and reports[0] in links["age"]
        explained = (tmp_path / "reports" / "churn" / reports[0] / "summary.md").read_text()
        assert "monthly_spend" in explained and "age" in explained
        fire("tenure_days", t + 20 * 60)  # another input 20 minutes later: another incident, another report
        assert len(list((tmp_path / "reports").glob("*/*/report.html"))) == 2
    finally:
        app.close()


def test_a_rewritten_report_keeps_the_replay_steps_of_its_earlier_findings() -> None:
    """An incident's report is rewritten as checks join: its bundle still carries the blocks its earlier
    findings ended with (the monitor has moved on), then the newest block of each kind, at most ``keep``."""
    def step(kind: str, end: float) -> ReplayStep:
        return ReplayStep(kind, end, {}, {"t": np.array([end])})  # type: ignore[arg-type]

    first, later, newest = step("prediction_block", 100.0), step("prediction_block", 200.0), \
        step("prediction_block", 300.0)
    outcome = step("outcome_block", 250.0)
    triggering, recent = [drift("age", 100.0)], [drift("monthly_spend", 300.0)]
    chosen = replay_steps_of(triggering, recent, [first, later, outcome, newest])
    assert [(s.kind, s.end) for s in chosen] == [("prediction_block", 100.0), ("outcome_block", 250.0),
                                                 ("prediction_block", 300.0)]  # 200: no finding ends there
    again = replay_steps_of(triggering, recent, [first, newest, step("prediction_block", 300.0)])
    assert [s.end for s in again] == [100.0, 300.0]  # the same block twice: once
    # over ``keep``: the blocks of the triggering findings first, then of the recent ones, then the newest
    assert [s.end for s in replay_steps_of(triggering, recent, [first, outcome, newest], keep=2)] == [100.0, 300.0]
    assert [s.end for s in replay_steps_of(triggering, recent, [first, outcome, newest], keep=1)] == [100.0]
