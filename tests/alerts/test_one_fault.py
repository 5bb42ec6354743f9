"""One fault, one notification group led by its most likely cause; a critical supersedes its
warning; realized performance supersedes the estimate (issue 13). Exact inputs through the
lifecycle, grouping, stages and dedup, with a recording notifier."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.alerts.notify import Notification
from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from driftwarden.detectors.findings import Finding
from tests.alerts.conftest import T0, Recorder, settings


def f(kind: str, subject: str, statistic: float, t: float, *, threshold: float = 0.2, degraded: bool = True,
      severity: str = "warning", detector: str = "psi", **details: Any) -> Finding:
    return Finding(kind, detector, subject, statistic, threshold, degraded, t, 2000,  # type: ignore[arg-type]
                   severity=severity, details=details)  # type: ignore[arg-type]


@pytest.fixture
def pipe() -> Iterator[tuple[AlertPipeline, Recorder]]:
    box = Outbox()
    rec = Recorder()
    try:
        yield AlertPipeline(settings(for_windows=1, group_wait="30s", group_interval="5m"), box, {"log": rec}), rec
    finally:
        box.close()


def tick(pipe: AlertPipeline, t: float) -> None:
    """Flush every 10 s from the last ingest (``t`` - 30 s) to ``t``: group_wait runs out at ``t``."""
    for step in (t - 30, t - 20, t - 10, t):
        pipe.flush(step)
        pipe.deliver(step)


def lines(n: Notification) -> list[tuple[str, str, str, str]]:
    return [(a.labels["kind"], a.labels["subject"], a.severity, a.state) for a in n.alerts]


def covariate_shift(t: float) -> list[Finding]:
    """The demo's covariate shift: two features (critical), the score it moves, the joint distribution."""
    return [
        f("prediction_drift", "score", 0.2619, t),
        f("multivariate_drift", "features", 0.2913, t, threshold=0.2858, detector="pca_reconstruction"),
        f("data_drift", "monthly_spend", 1.303, t, severity="critical"),
        f("data_drift", "age", 1.428, t, severity="critical"),
    ]


def test_a_fault_is_one_group_led_by_its_cause_and_a_later_fault_is_another(pipe: tuple[AlertPipeline, Recorder]) -> None:
    p, rec = pipe
    p.ingest("churn", {}, covariate_shift(T0), now=T0)
    tick(p, T0 + 30)
    (first,) = rec.sent
    # one line per check (the warnings held by their criticals are not shown), the cause first:
    # age (data drift, critical, furthest past 0.2), monthly_spend, the joint distribution, then the score
    assert lines(first) == [("data_drift", "age", "critical", "firing"),
                            ("data_drift", "monthly_spend", "critical", "firing"),
                            ("multivariate_drift", "features", "warning", "firing"),
                            ("prediction_drift", "score", "warning", "firing")]
    assert first.group_key == 'root:log:{model="churn"}@20251130T050000Z' and first.thread_role == "root"
    # 5 minutes later the score drifts again in the same fault: same group (a reply), nothing new to say
    p.ingest("churn", {}, covariate_shift(T0 + 300), now=T0 + 300)
    tick(p, T0 + 330)
    assert len(rec.sent) == 1
    # 17 minutes later realized performance falls: another fault, its own group and thread, led by it
    t = T0 + 17 * 60
    p.ingest("churn", {}, [*covariate_shift(t),
                           f("performance", "accuracy", 0.48, t, threshold=0.70, severity="critical", detector="accuracy"),
                           f("estimated_performance", "accuracy", 0.61, t, threshold=0.70, detector="accuracy")],
             now=t)
    tick(p, t + 30)
    second = rec.sent[-1]
    assert second.group_key == 'root:log:{model="churn"}@20251130T051700Z'
    assert (second.reason, second.thread_role) == ("first_notification", "root")
    assert lines(second) == [("performance", "accuracy", "critical", "firing")]  # the estimate gives way
    assert second.alerts[0].annotations["estimate"] == "estimated_performance accuracy 0.61 (warning)"


def test_a_critical_supersedes_its_warning_one_line_through_escalation_and_resolution(
        pipe: tuple[AlertPipeline, Recorder]) -> None:
    """The warning and the critical of one check never both notify: the escalation joins the fault's
    list quietly, superseding the warning; the fault's end is told once, as the critical."""
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "age", 0.3, T0)], now=T0)
    tick(p, T0 + 30)
    p.ingest("churn", {}, [f("data_drift", "age", 0.9, T0 + 60, severity="critical")], now=T0 + 60)
    tick(p, T0 + 330)
    assert [n.reason for n in rec.sent] == ["first_notification"]
    (group,) = p.groups.groups.values()
    critical = [a for a in group.alerts.values() if a.severity == "critical" and a.state == "firing"]
    assert len(critical) == 1
    p.ingest("churn", {}, [f("data_drift", "age", 0.01, T0 + 400, degraded=False)], now=T0 + 400)
    tick(p, T0 + 630)
    assert [(n.reason, lines(n)) for n in rec.sent] == [
        ("first_notification", [("data_drift", "age", "warning", "firing")]),
        ("resolved", [("data_drift", "age", "critical", "resolved")]),  # one resolution, not two
    ]
    assert len({n.thread_key for n in rec.sent}) == 1


def test_critical_and_warning_of_one_window_notify_once(pipe: tuple[AlertPipeline, Recorder]) -> None:
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "age", 0.9, T0, severity="critical")], now=T0)
    tick(p, T0 + 30)
    assert [lines(n) for n in rec.sent] == [[("data_drift", "age", "critical", "firing")]]


def test_a_warning_that_outlives_its_critical_is_shown_again(pipe: tuple[AlertPipeline, Recorder]) -> None:
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "age", 0.9, T0, severity="critical")], now=T0)
    tick(p, T0 + 30)
    p.ingest("churn", {}, [f("data_drift", "age", 0.3, T0 + 60)], now=T0 + 60)
    tick(p, T0 + 330)
    assert lines(rec.sent[-1]) == [("data_drift", "age", "warning", "firing"), ("data_drift", "age", "critical", "resolved")]


def estimate(t: float, value: float, *, realized: bool = False, known_at: float | None = None) -> Finding:
    details: dict[str, Any] = {"source": "realized"} if realized else {}
    return Finding("estimated_performance", "accuracy", "accuracy", value, 0.70, value < 0.70, t, 2000,
                   details=details, known_at=known_at)


def test_estimated_performance_gives_way_to_realized_values_for_the_same_windows() -> None:
    lc = AlertLifecycle(for_windows=2)
    lc.update("churn", {}, [estimate(T0, 0.62)], now=T0)
    (fired,) = lc.update("churn", {}, [estimate(T0 + 100, 0.61)], now=T0 + 100)
    assert fired.values["statistic"] == 0.61
    # the labels of the first window are in: realized 0.55, the alert now quotes it
    assert lc.update("churn", {}, [estimate(T0, 0.55, realized=True, known_at=T0 + 150)], now=T0 + 150) == []
    (alert,) = lc.alerts.values()
    assert (alert.values["statistic"], alert.annotations["estimate"]) == (0.55, "0.61 (estimated)")
    # an estimate of a window whose realized value is in is not evaluated again
    assert lc.update("churn", {}, [estimate(T0, 0.90)], now=T0 + 160) == []
    # the realized value of the second window is healthy: resolved by it
    (resolved,) = lc.update("churn", {}, [estimate(T0 + 100, 0.81, realized=True, known_at=T0 + 250)], now=T0 + 250)
    assert resolved.state == "resolved" and resolved.values["statistic"] == 0.81
    assert resolved.annotations["resolved_by"].startswith("realized 0.81 vs threshold 0.7 ")


def test_slack_names_the_cause_first_and_lists_the_rest_under_it(pipe: tuple[AlertPipeline, Recorder]) -> None:
    from driftwarden.alerts.slack_blocks import render

    p, rec = pipe
    p.ingest("churn", {"model_version": "1.0.0"}, covariate_shift(T0), now=T0)
    tick(p, T0 + 30)
    head, blocks = render(rec.sent[0], T0 + 30)
    assert head == ":red_circle: [FIRING:4] churn 1.0.0 · critical · data_drift on age"
    texts = [b["text"]["text"] if "text" in b else b["elements"][0]["text"] for b in blocks]
    assert texts[1].startswith(":red_circle: *data_drift* `psi` on `age`: psi 1.43 over 2,000 events (threshold 0.2), "
                               "ending 05:00 UTC")
    assert texts[2] == "Also in this fault (3 alerts):"
    assert [t.split("`")[3] for t in texts[3:6]] == ["monthly_spend", "features", "score"]


def test_drift_opening_with_a_new_model_version_names_the_version() -> None:
    lc = AlertLifecycle(for_windows=2)
    for i in range(3):
        lc.update("churn", {"model_version": "1.0"}, [f("prediction_drift", "score", 0.01, T0 + 100 * i, degraded=False)],
                  now=T0 + 100 * i)
    t = T0 + 300
    for i in range(2):  # the new version's scores: the score drifts from its first window on
        lc.update("churn", {"model_version": "2.0"}, [f("prediction_drift", "score", 0.9, t + 100 * i)], now=t + 100 * i)
    (alert,) = lc.alerts.values()
    assert alert.state == "firing"
    assert (alert.labels["version"], alert.annotations["version_change"]) == ("2.0", "1.0 -> 2.0")
    # a drift that opens long after the change is not put on the version
    for i in range(2, 6):
        lc.update("churn", {"model_version": "2.0"}, [f("data_drift", "age", 0.01 if i < 5 else 0.5, t + 100 * i,
                                                        degraded=i == 5)], now=t + 100 * i)
    age = next(a for a in lc.alerts.values() if a.labels["subject"] == "age")
    assert "version" not in age.labels and "version_change" not in age.annotations
    # the label stays with the alert across its later windows and the state round trip
    again = AlertLifecycle(for_windows=2)
    again.load_state(lc.state())
    again.update("churn", {"model_version": "2.0"}, [f("prediction_drift", "score", 0.8, t + 700)], now=t + 700)
    assert next(a for a in again.alerts.values() if a.labels["subject"] == "score").labels["version"] == "2.0"


def test_a_check_that_fires_again_rejoins_its_fault(pipe: tuple[AlertPipeline, Recorder]) -> None:
    """The demo's multivariate alert resolved at 00:33 and fired again at 00:36, while the
    covariate shift's group was still open: it belongs there, not to the 00:35 performance fault."""
    p, rec = pipe
    p.ingest("churn", {}, covariate_shift(T0), now=T0)
    tick(p, T0 + 30)
    p.ingest("churn", {}, [f("multivariate_drift", "features", 0.28, T0 + 800, threshold=0.2858, degraded=False,
                             detector="pca_reconstruction")], now=T0 + 800)
    tick(p, T0 + 830)
    t = T0 + 1000
    p.ingest("churn", {}, [f("performance", "accuracy", 0.48, t, threshold=0.70, severity="critical", detector="accuracy"),
                           f("multivariate_drift", "features", 0.30, t + 60, threshold=0.2858,
                             detector="pca_reconstruction")], now=t + 60)
    tick(p, t + 400)
    by_group: dict[str, list[list[tuple[str, str, str, str]]]] = {}
    for n in rec.sent:
        by_group.setdefault(n.group_key, []).append(lines(n))
    assert by_group['root:log:{model="churn"}@20251130T051640Z'] == [[("performance", "accuracy", "critical", "firing")]]
    first = by_group['root:log:{model="churn"}@20251130T050000Z']
    assert ("multivariate_drift", "features", "warning", "resolved") in first[1]
    # it fires again in its fault: its topic was told, so no notification of its own (a flapping
    # check is not news), but the fault's group holds it
    assert len(first) == 2
    group = p.groups.groups['root:log:{model="churn"}@20251130T050000Z']
    assert [a.labels["kind"] for a in group.alerts.values() if a.state == "firing"].count("multivariate_drift") == 1


def test_a_group_saved_before_incidents_keeps_its_alerts_after_an_upgrade(pipe: tuple[AlertPipeline, Recorder]) -> None:
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "age", 0.5, T0)], now=T0)
    tick(p, T0 + 30)
    state = p.state()
    for g in state["groups"]:  # as written by the version before incidents
        state["nflog"][g["base"]] = state["nflog"].pop(g["key"])
        g["key"] = g["base"]
        for name in ("base", "started_at", "fingerprints"):
            del g[name]
    p.load_state(state)
    p.ingest("churn", {}, [f("data_drift", "age", 0.6, T0 + 60), f("data_drift", "plan", 0.5, T0 + 60)], now=T0 + 60)
    tick(p, T0 + 330)
    assert [(n.group_key, n.reason, [a.labels["subject"] for a in n.alerts]) for n in rec.sent[1:]] == [
        ('root:log:{model="churn"}', "new_alerts", ["age", "plan"])]


def perf(metric: str, value: float, t: float, *, kind: str = "performance", severity: str = "warning",
         detector: str | None = None) -> Finding:
    return f(kind, metric, value, t, threshold=0.70, severity=severity, detector=detector or metric)


def test_checks_that_repeat_a_told_fault_join_its_list_without_a_notification_of_their_own(
        pipe: tuple[AlertPipeline, Recorder]) -> None:
    """Accuracy fell (told); F1, ROC AUC and ADWIN then say the same: no message each. A cause found
    later (income drifted) is news: a reply in the same thread; F1 turning critical is not."""
    p, rec = pipe
    p.ingest("churn", {}, [perf("accuracy", 0.60, T0, detector="accuracy")], now=T0)
    tick(p, T0 + 30)
    p.ingest("churn", {}, [perf("f1", 0.55, T0 + 60), perf("roc_auc", 0.62, T0 + 60),
                           f("concept_drift", "error", 0.4, T0 + 120, detector="adwin")], now=T0 + 120)
    tick(p, T0 + 400)
    assert [n.reason for n in rec.sent] == ["first_notification"]
    p.ingest("churn", {}, [f("data_drift", "income", 0.9, T0 + 450, detector="cusum")], now=T0 + 450)
    tick(p, T0 + 700)
    p.ingest("churn", {}, [perf("f1", 0.40, T0 + 750, severity="critical")], now=T0 + 750)
    tick(p, T0 + 1000)
    assert [(n.reason, n.thread_role) for n in rec.sent] == [("first_notification", "root"), ("new_alerts", "reply")]
    assert lines(rec.sent[1])[0] == ("data_drift", "income", "warning", "firing")  # the cause leads
    assert len({n.group_key for n in rec.sent}) == 1
    # the quiet ones resolving is no news either; the fault ending is
    p.ingest("churn", {}, [f("concept_drift", "error", 0.0, T0 + 1100, detector="adwin", degraded=False)], now=T0 + 1100)
    tick(p, T0 + 1400)
    assert len(rec.sent) == 2


def test_realized_values_an_hour_after_the_estimate_join_its_fault_quietly(pipe: tuple[AlertPipeline, Recorder]) -> None:
    p, rec = pipe
    p.ingest("churn", {}, [perf("f1", 0.61, T0, kind="estimated_performance")], now=T0)
    tick(p, T0 + 30)
    t = T0 + 3600  # the labels come in an hour later: realized F1 confirms the estimate
    p.ingest("churn", {}, [perf("f1", 0.58, t)], now=t)
    tick(p, t + 330)
    assert [n.reason for n in rec.sent] == ["first_notification"]
    (group,) = p.groups.groups.values()
    assert sorted(a.labels["kind"] for a in group.alerts.values()) == ["estimated_performance", "performance"]


def test_two_unrelated_faults_in_two_features_at_different_times_are_each_told(
        pipe: tuple[AlertPipeline, Recorder]) -> None:
    """The first still fires when the second starts 20 minutes later: another group, its own first message."""
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "age", 0.5, T0)], now=T0)
    tick(p, T0 + 30)
    t = T0 + 20 * 60
    p.ingest("churn", {}, [f("data_drift", "age", 0.5, t), f("data_drift", "income", 0.6, t)], now=t)
    tick(p, t + 30)
    assert [(n.reason, n.thread_role, lines(n)[0][1]) for n in rec.sent] == [
        ("first_notification", "root", "age"), ("first_notification", "root", "income")]
    assert len({n.group_key for n in rec.sent}) == 2


def test_a_new_category_told_as_drift_is_not_told_again_as_an_unseen_category_rate(
        pipe: tuple[AlertPipeline, Recorder]) -> None:
    """The drift CUSUM names region first; the windowed unseen-category check says the same of region
    15 minutes later: it joins the fault's list without a message (the scenario suite's new_category
    sent two)."""
    p, rec = pipe
    p.ingest("churn", {}, [f("data_drift", "region", 0.9, T0, severity="critical", detector="cusum")], now=T0)
    tick(p, T0 + 30)
    t = T0 + 900
    p.ingest("churn", {}, [f("quality", "region", 0.12, t, severity="critical", detector="unseen_category_rate")],
             now=t)
    tick(p, t + 330)
    assert [n.reason for n in rec.sent] == ["first_notification"]
    (group,) = p.groups.groups.values()
    assert {a.labels["kind"] for a in group.alerts.values()} == {"data_drift", "quality"}
