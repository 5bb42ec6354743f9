"""Grouping, group_wait / group_interval / repeat_interval, end to end through the pipeline
with simulated time (flush every 10 s) and a recording notifier."""

from __future__ import annotations

from typing import Any

import pytest

from driftwarden.alerts.outbox import Outbox
from driftwarden.alerts.pipeline import AlertPipeline
from tests.alerts.conftest import Recorder, finding, settings

Step = tuple[float, str, str, bool]  # (t, model, subject, degraded); subject "perf" is a performance check


def run(overrides: dict[str, Any], steps: list[Step], end: float) -> list[tuple[Any, ...]]:
    cfg = settings(**{"for_windows": 1, **overrides})
    rec = Recorder()
    box = Outbox()
    pipe = AlertPipeline(cfg, box, {"log": rec})
    try:
        t = 0.0
        while t <= end:
            for st, model, subject, bad in steps:
                if st == t:
                    kind = "performance" if subject == "perf" else "data_drift"
                    pipe.ingest(model, {"model_version": "1"}, [finding(subject, bad, t, kind=kind)], now=t)
            pipe.flush(t)
            pipe.deliver(t)
            t += 10
    finally:
        box.close()
    return [
        (
            n.sent_at,
            n.reason,
            n.group_labels.get("model"),
            n.group_labels.get("kind"),
            sorted(a.labels["subject"] for a in n.firing_alerts()),
            sorted(a.labels["subject"] for a in n.alerts if a.instance in n.resolved),
        )
        for n in rec.sent
    ]


CASES = [
    # (settings, steps, end, expected notifications (t, reason, model, kind group label, firing, resolved))
    # a burst within group_wait lands in one message at t=30
    (
        {},
        [(0, "churn", "age", True), (10, "churn", "plan", True)],
        60,
        [(30, "first_notification", "churn", None, ["age", "plan"], [])],
    ),
    # an alert after the first flush waits for group_interval (30 + 300)
    (
        {},
        [(0, "churn", "age", True), (40, "churn", "plan", True)],
        400,
        [(30, "first_notification", "churn", None, ["age"], []), (330, "new_alerts", "churn", None, ["age", "plan"], [])],
    ),
    # two models: two groups, each with its own message
    (
        {},
        [(0, "churn", "age", True), (0, "fraud", "age", True)],
        40,
        [(30, "first_notification", "churn", None, ["age"], []), (30, "first_notification", "fraud", None, ["age"], [])],
    ),
    # group_by model+kind splits drift from performance
    (
        {"group_by": ["model", "kind"]},
        [(0, "churn", "age", True), (0, "churn", "perf", True)],
        40,
        [
            (30, "first_notification", "churn", "data_drift", ["age"], []),
            (30, "first_notification", "churn", "performance", ["perf"], []),
        ],
    ),
    # resolution is notified at the next group_interval tick, then the group is gone
    (
        {},
        [(0, "churn", "age", True), (100, "churn", "age", False)],
        700,
        [(30, "first_notification", "churn", None, ["age"], []), (330, "resolved", "churn", None, [], ["age"])],
    ),
    # one of two resolves: a partial resolution message
    (
        {},
        [(0, "churn", "age", True), (0, "churn", "plan", True), (100, "churn", "age", False)],
        400,
        [(30, "first_notification", "churn", None, ["age", "plan"], []), (330, "resolved", "churn", None, ["plan"], ["age"])],
    ),
    # fired and resolved before group_wait ended: only resolved in the group -> nothing sent
    ({}, [(0, "churn", "age", True), (10, "churn", "age", False)], 100, []),
    # pending only (for_windows 2, one bad window): never notified
    ({"for_windows": 2}, [(0, "churn", "age", True), (10, "churn", "age", False)], 100, []),
    # repeat_interval 1h: reminders at flush ticks once an hour has passed (30 + 12 * 300 = 3630)
    (
        {"repeat_interval": "1h"},
        [(0, "churn", "age", True)],
        3700,
        [(30, "first_notification", "churn", None, ["age"], []), (3630, "repeat_interval_elapsed", "churn", None, ["age"], [])],
    ),
    # group_wait 0: notified at the first flush
    ({"group_wait": 0}, [(0, "churn", "age", True)], 10, [(0, "first_notification", "churn", None, ["age"], [])]),
]


@pytest.mark.parametrize(("overrides", "steps", "end", "expected"), CASES)
def test_grouping(overrides: dict[str, Any], steps: list[Step], end: float, expected: list[tuple[Any, ...]]) -> None:
    assert run(overrides, steps, end) == expected
