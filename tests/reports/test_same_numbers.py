"""A sequential check's alert, its Slack, log and Alertmanager lines and its report quote the metric
(PSI over the change window, accuracy since the change) and, apart and labelled, the CUSUM evidence:
the same numbers everywhere, never the CUSUM's S as if it were the metric (issue 13)."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np

from driftwarden.alerts.alertmanager import postable_alert
from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.alerts.log_receiver import alert_line as log_line
from driftwarden.alerts.model import Alert
from driftwarden.alerts.quote import quote
from driftwarden.alerts.reports.builder import build_report
from driftwarden.alerts.reports.html import render
from driftwarden.alerts.reports.summary import render_markdown
from driftwarden.alerts.slack_blocks import alert_line as slack_line
from driftwarden.daemon.simulate import START
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.findings import Finding
from tests.reports.conftest import WINDOW, Run, churn_spec, stream

NOW = 1_800_000_000.0


def fired(run: Run) -> tuple[list[Alert], list[Finding]]:
    """Every finding of the run through one lifecycle; the alerts as they fired and the findings that fired them."""
    lc = AlertLifecycle(for_windows=2)
    alerts: list[Alert] = []
    firing: list[Finding] = []
    for f in run.findings:
        for a in lc.update("churn", {"model_version": "1.0.0"}, [f], now=f.window_end):
            if a.state == "firing" and a.fingerprint not in {x.fingerprint for x in alerts}:
                alerts.append(a)
                firing.append(f)
    return alerts, firing


def everywhere(alert: Alert, finding: Finding, run: Run) -> list[str]:
    """The texts a user reads: Slack line, log line, Alertmanager description, report summary and page."""
    report = build_report(model_id="churn", spec=run.spec, reference=run.reference, current=run.window,  # type: ignore[arg-type]
                          outcomes=run.outcomes, triggering=[finding], recent=run.findings,
                          snapshot=run.monitor.snapshot(), now=NOW, with_plots=False)
    return [slack_line(alert, NOW), log_line(alert)[0], postable_alert(alert, NOW, 60)["annotations"]["description"],
            render_markdown(report), html.unescape(render(report))]


def test_sequential_drift_alerts_quote_the_psi_of_the_change_window_and_the_cusum_apart(
        reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(windows=4, covariate_shift_at=WINDOW))
    alerts, findings = fired(run)
    drift = {a.labels["subject"]: (a, f) for a, f in zip(alerts, findings, strict=True) if a.labels["kind"] == "data_drift"}
    assert {"age", "monthly_spend"} <= set(drift)
    for alert, finding in drift.values():
        assert finding.detector == "cusum" and finding.details["sequential"] is True
        # the metric: the effect over the change window against its floor; the evidence: S against h
        assert alert.values["statistic"] == finding.details["effect"] != finding.statistic
        assert alert.values["threshold"] == finding.details["effect_floor"]
        assert alert.values["window_size"] == finding.details["change_window_events"]
        assert (alert.values["evidence"], alert.values["evidence_threshold"]) == (finding.statistic, finding.threshold)
        assert alert.values["statistic"] >= alert.values["threshold"]  # type: ignore[operator]
        assert alert.values["evidence"] >= alert.values["evidence_threshold"]  # type: ignore[operator]
        q = quote(finding)
        metric, evidence = q.metric_text(), q.evidence_text()
        assert (alert.annotations["metric"], alert.annotations["evidence"]) == (metric, evidence)
        assert metric.startswith(f"PSI {q.value:.3g} over the {int(finding.details['change_window_events']):,} values "
                                 "since the change (floor 0.1)")
        assert evidence.startswith(f"CUSUM S {finding.statistic:.3g} above h {finding.threshold:.3g} (block KS p=")
        assert "budget: 1 false alarm per " in evidence
        for text in everywhere(alert, finding, run):
            assert metric in text and evidence in text, text
            assert f"= {finding.statistic:.3g}" not in text and f"cusum {finding.statistic:.3g}" not in text


def test_sequential_accuracy_alert_quotes_accuracy_since_the_change_against_the_reference(
        reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch]) -> None:
    run = stream(churn_spec(), reference, traffic(windows=4, concept_drift_at=2 * WINDOW))
    alerts, findings = fired(run)
    (alert, finding), = [(a, f) for a, f in zip(alerts, findings, strict=True)
                         if a.labels["kind"] == "performance" and a.labels["detector"] == "accuracy"]
    d = finding.details
    assert finding.statistic > 1.0 and finding.threshold == 1.0  # the verdict: S / h of the leading CUSUM
    assert alert.values["statistic"] == d["accuracy_since_change"] < d["baseline"] == alert.values["threshold"]
    assert 0.0 <= alert.values["statistic"] <= 1.0  # type: ignore[operator]
    assert (alert.values["evidence"], alert.values["evidence_threshold"]) == (d["cusum"], d["cusum_threshold"])
    metric, evidence = alert.annotations["metric"], alert.annotations["evidence"]
    assert metric == (f"accuracy {d['accuracy_since_change']:.3g} over the {finding.window_size:,} outcomes since the "
                      f"change (reference {d['baseline']:.3g})")
    assert evidence.startswith("CUSUM") and f"S {d['cusum']:.3g} above h {d['cusum_threshold']:.3g}" in evidence
    assert "false alarms per 1M outcomes" in evidence
    for text in everywhere(alert, finding, run):
        assert metric in text and evidence in text, text
        assert f"accuracy = {finding.statistic:.3g}" not in text


def test_a_sequential_alert_resolves_only_once_its_cusum_is_below_h() -> None:
    """Healthy verdicts (the detector's) while S is still at or past the h the alert fired on do not resolve it;
    the resolution quotes the CUSUM that cleared it."""
    def block(t: float, s: float, alarmed: bool, effect: float = 0.4) -> Finding:
        return Finding("data_drift", "cusum", "age", s, 10.0, alarmed, t, 500, p_value=0.01, details={
            "sequential": True, "effect": effect, "effect_metric": "PSI", "effect_floor": 0.1,
            "change_window_events": 1500, "test": "KS"})

    lc = AlertLifecycle(for_windows=2)
    (a,) = lc.update("churn", {}, [block(0.0, 12.0, True)], now=0.0)
    assert a.state == "firing"  # sequential: the evidence of several blocks is in already
    assert lc.update("churn", {}, [block(25.0, 10.0, False)], now=25.0) == []  # S = h: not clear
    (resolved,) = lc.update("churn", {}, [block(50.0, 9.5, False, effect=0.3)], now=50.0)
    assert resolved.state == "resolved" and resolved.values["evidence"] == 9.5
    assert resolved.annotations["resolved_by"] == "CUSUM S 9.5 vs threshold 10 in the window ending 1970-01-01 00:00:50 UTC"
    assert resolved.annotations["metric"] == "PSI 0.3 over the 1,500 values since the change (floor 0.1)"


def test_a_sequential_accuracy_report_plots_its_cusum_as_evidence_not_as_accuracy(
        reference: OutcomeBatch, traffic: Callable[..., OutcomeBatch]) -> None:
    """The demo's accuracy report plotted the CUSUM's S / h (0 to 2) as 'accuracy per outcome window' and as the
    'realized' line against CBPE's estimated accuracy."""
    run = stream(churn_spec(), reference, traffic(windows=4, concept_drift_at=2 * WINDOW))
    acc = next(f for f in run.findings if f.kind == "performance" and f.detector == "accuracy" and f.degraded)
    report = build_report(model_id="churn", spec=run.spec, reference=run.reference, current=run.window,  # type: ignore[arg-type]
                          outcomes=run.outcomes, triggering=[acc], recent=run.findings,
                          snapshot=run.monitor.snapshot(), now=NOW, with_plots=False)
    t = report.timelines
    assert t["performance_key"] == "performance/accuracy/accuracy" and t["performance_is_evidence"] is True
    assert max(p["statistic"] for p in t["performance"]) > 1.0  # S / h: evidence, kept apart from accuracy
    lines = t["estimated_and_realized"]
    # CBPE's estimate is itself a CUSUM verdict per block now: its history is the block's estimate
    # (not S) against the reference accuracy, paired with the realized accuracy of each block's own
    # predictions (detectors/estimate_pairs.py): CBPE, blind to the new relation, stays up; the truth falls
    assert "realized, outcome windows" not in lines and "estimated (CBPE)" in lines
    estimated = {p["window_end"]: p["statistic"] for p in lines["estimated (CBPE)"]}
    realized = {p["window_end"]: p["statistic"] for p in lines["realized, same windows"]}
    assert realized and set(realized) <= set(estimated)
    onset = START + 2 * WINDOW / 20
    before = [realized[t] - estimated[t] for t in realized if t < onset]
    after = [realized[t] - estimated[t] for t in realized if t > onset + 60]
    assert before and after
    assert abs(float(np.mean(before))) < 0.05 and float(np.mean(after)) < -0.15, (before, after)
    assert all(0.0 <= p["statistic"] <= 1.0 for points in lines.values() for p in points)
    baseline = {round(p["threshold"], 9) for p in lines["estimated (CBPE)"]}  # the reference's, one value
    assert len(baseline) == 1 and abs(next(iter(baseline)) - float(acc.details["baseline"])) < 0.01
