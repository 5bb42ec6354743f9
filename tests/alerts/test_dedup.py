from __future__ import annotations

import pytest

from driftwarden.alerts.dedup import LastNotification, Reason, decide

R = 14400.0  # repeat_interval


def last(firing: str = "", resolved: str = "", sent_at: float = 0.0) -> LastNotification:
    return LastNotification(frozenset(firing.split()), frozenset(resolved.split()), sent_at)


CASES = [
    # (last notification, firing now, resolved now, now, send_resolved, expected)
    # never notified, something fires: tell them
    (None, "a", "", 0, True, Reason.FIRST),
    # never notified and only resolved alerts: the receiver never heard of them
    (None, "", "a", 0, True, Reason.NOTHING),
    # never notified, nothing at all
    (None, "", "", 0, True, Reason.NOTHING),
    # same firing set within the repeat interval: quiet
    (last("a"), "a", "", 60, True, Reason.NOTHING),
    # a new alert joined the group
    (last("a"), "a b", "", 60, True, Reason.NEW_ALERTS),
    # a replaced instance (same check, new starts_at) is a new alert
    (last("a@1"), "a@2", "", 60, True, Reason.NEW_ALERTS),
    # the previous notification said all resolved (empty firing): a new firing starts over
    (last("", "a"), "b", "", 60, True, Reason.FIRST),
    # one of two resolved, the other still fires
    (last("a b"), "a", "b", 60, True, Reason.RESOLVED),
    # same, but the receiver does not want resolved notifications
    (last("a b"), "a", "b", 60, False, Reason.NOTHING),
    # everything resolved: notify even without send_resolved, so the log forgets them
    (last("a"), "", "a", 60, False, Reason.RESOLVED),
    # a resolved alert that was never notified as firing is no news
    (last("a"), "a", "x", 60, True, Reason.NOTHING),
    # resolution already notified: quiet
    (last("a", "b"), "a", "b", 60, True, Reason.NOTHING),
    # a firing alert got silenced / inhibited (firing set shrank): no message, like Alertmanager
    (last("a b"), "a", "", 60, True, Reason.NOTHING),
    # repeat interval reached exactly
    (last("a", sent_at=0), "a", "", R, True, Reason.REPEAT),
    # one second short of it
    (last("a", sent_at=0), "a", "", R - 1, True, Reason.NOTHING),
    # new alerts win over repeat
    (last("a", sent_at=0), "a b", "", R * 2, True, Reason.NEW_ALERTS),
]


@pytest.mark.parametrize(("last_n", "firing", "resolved", "now", "send_resolved", "expected"), CASES)
def test_decide(
    last_n: LastNotification | None, firing: str, resolved: str, now: float, send_resolved: bool, expected: Reason
) -> None:
    got = decide(last_n, frozenset(firing.split()), frozenset(resolved.split()), now, R, send_resolved)
    assert got is expected
