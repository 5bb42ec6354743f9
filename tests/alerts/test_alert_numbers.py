"""The numbers an alert quotes: those of the window that made it fire, and a resolution only
when its own statistic is back within the threshold it fired on (issue 13)."""

from __future__ import annotations

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.detectors.findings import Finding
from tests.alerts.conftest import T0

BOUND = 0.2858  # the demo's multivariate bound


def pca(t: float, statistic: float, threshold: float = BOUND) -> Finding:
    return Finding("multivariate_drift", "pca_reconstruction", "features", statistic, threshold,
                   statistic > threshold, t, 2000, summary=f"PCA reconstruction error {statistic}")


def test_the_demo_sequence_resolves_with_the_statistic_that_cleared_it() -> None:
    """The demo's multivariate alert said ``resolved ... statistic=0.3053 threshold=0.2858``: the
    resolved alert kept the last degraded window's numbers, not those of the window that cleared it."""
    lc = AlertLifecycle(for_windows=2)
    changed = []
    for i, stat in enumerate([0.2887, 0.2867, 0.2913, 0.3053, 0.2803]):
        changed += lc.update("churn", {}, [pca(T0 + 100 * i, stat)], now=T0 + 100 * i + 30)
    resolved = [a for a in changed if a.state == "resolved"]
    assert len(resolved) == 1
    assert resolved[0].values["statistic"] == 0.2803
    assert resolved[0].values["threshold"] == BOUND
    assert resolved[0].values["statistic"] < resolved[0].values["threshold"]  # type: ignore[operator]
    assert resolved[0].ends_at == T0 + 400
    assert resolved[0].annotations["summary"] == "PCA reconstruction error 0.2803"
    assert resolved[0].annotations["resolved_by"] == "0.2803 vs threshold 0.2858 in the window ending 2025-11-30 05:06:40 UTC"


def test_a_healthy_verdict_past_the_alerts_own_threshold_does_not_resolve_it() -> None:
    """A check whose bound moved (0.2858 -> 0.31) calls 0.30 healthy; the alert fired on 0.2858, so 0.30 is
    still past its threshold: it stays firing until the statistic is back below 0.2858."""
    lc = AlertLifecycle(for_windows=1)
    lc.update("churn", {}, [pca(T0, 0.30)], now=T0)
    assert lc.update("churn", {}, [pca(T0 + 100, 0.30, threshold=0.31)], now=T0 + 100) == []
    (alert,) = lc.alerts.values()
    assert alert.state == "firing" and alert.values["latest_statistic"] == 0.30
    (resolved,) = lc.update("churn", {}, [pca(T0 + 200, 0.28, threshold=0.31)], now=T0 + 200)
    assert (resolved.state, resolved.ends_at, resolved.values["statistic"]) == ("resolved", T0 + 200, 0.28)


def test_a_lower_bound_alert_resolves_only_above_its_bound() -> None:
    """Direction comes from the side the alert fired on: an accuracy alert fired below 0.70."""
    def acc(t: float, value: float, bound: float = 0.70) -> Finding:
        return Finding("performance", "accuracy", "accuracy", value, bound, value < bound, t, 2000)

    lc = AlertLifecycle(for_windows=1)
    lc.update("churn", {}, [acc(T0, 0.48)], now=T0)
    assert lc.update("churn", {}, [acc(T0 + 100, 0.69, bound=0.65)], now=T0 + 100) == []  # still below 0.70
    (resolved,) = lc.update("churn", {}, [acc(T0 + 200, 0.72, bound=0.65)], now=T0 + 200)
    assert resolved.values["statistic"] == 0.72


def test_a_firing_alert_keeps_the_numbers_of_the_window_that_fired_it() -> None:
    """The demo's age alert said PSI 1.428 (a later window) while its report, built from the window
    that fired it, said 1.55: the alert now quotes the firing window; later windows are ``latest_*``."""
    def psi(t: float, value: float) -> Finding:
        return Finding("data_drift", "psi", "age", value, 0.2, True, t, 2000, summary=f"PSI of age {value}")

    lc = AlertLifecycle(for_windows=2)
    lc.update("churn", {}, [psi(T0, 1.5068)], now=T0 + 30)
    (fired,) = lc.update("churn", {}, [psi(T0 + 100, 1.5534)], now=T0 + 130)
    assert fired.state == "firing" and fired.values["statistic"] == 1.5534
    lc.update("churn", {}, [psi(T0 + 200, 1.4283)], now=T0 + 230)
    (alert,) = lc.alerts.values()
    assert alert.values["statistic"] == 1.5534 and alert.values["window_end"] == T0 + 100
    assert alert.annotations["summary"] == "PSI of age 1.5534"
    assert (alert.values["latest_statistic"], alert.values["latest_window_end"]) == (1.4283, T0 + 200)


def test_windows_evaluated_in_the_update_that_fired_move_the_numbers_like_the_report() -> None:
    """The report of a firing is built from the latest window of the update in which it fired."""
    def psi(t: float, value: float) -> Finding:
        return Finding("data_drift", "psi", "age", value, 0.2, True, t, 2000)

    lc = AlertLifecycle(for_windows=2)
    lc.update("churn", {}, [psi(T0, 1.1), psi(T0 + 100, 1.2), psi(T0 + 200, 1.3)], now=T0 + 230)
    (alert,) = lc.alerts.values()
    assert (alert.state, alert.values["statistic"], alert.values["window_end"]) == ("firing", 1.3, T0 + 200)


def test_a_performance_alert_names_its_segment_with_the_segments_numbers_in_slack() -> None:
    from driftwarden.alerts.slack_blocks import alert_line

    f = Finding("performance", "accuracy", "accuracy", 1.98, 1.0, True, T0, 2191, details={
        "leading": "all", "cusum": 28.0, "cusum_threshold": 14.5, "accuracy_since_change": 0.498, "baseline": 0.739,
        "segment": "plan=pro", "segment_accuracy": 0.462, "segment_baseline": 0.754, "segment_n": 493,
        "segment_p_holm": 7.9e-43})
    (alert,) = AlertLifecycle().update("churn", {}, [f], now=T0)
    assert alert.labels["segment"] == "plan=pro"
    lines = alert_line(alert, T0 + 60).splitlines()
    assert lines[1] == "Evidence: CUSUM S 28 above h 14.5"
    assert "Segment: plan=pro: accuracy 0.462 vs reference 0.754 (n=493, Holm p=8e-43)" in lines
