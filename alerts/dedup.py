"""Dedup: a pure function of (last notification for a group and receiver, current alerts, now).

Sets hold alert instances (``Alert.instance``). Mirrors Alertmanager's ``needsUpdate``:

>>> last = LastNotification(firing=frozenset({"a"}), resolved=frozenset(), sent_at=0.0)
>>> decide(None, frozenset({"a"}), frozenset(), now=0, repeat_interval=14400).value
'first_notification'
>>> decide(last, frozenset({"a"}), frozenset(), now=60, repeat_interval=14400).value
'nothing_to_do'
>>> decide(last, frozenset({"a"}), frozenset(), now=14400, repeat_interval=14400).value
'repeat_interval_elapsed'
"""

from __future__ import annotations

import enum

import msgspec


class Reason(enum.Enum):
    FIRST = "first_notification"
    NEW_ALERTS = "new_alerts"
    RESOLVED = "resolved"
    REPEAT = "repeat_interval_elapsed"
    NOTHING = "nothing_to_do"


class LastNotification(msgspec.Struct, frozen=True):
    """What was last sent for a (group, receiver): firing and resolved instances, when."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


def decide(
    last: LastNotification | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    now: float,
    repeat_interval: float,
    send_resolved: bool = True,
) -> Reason:
    """Whether (and why) to notify, given the last notification and the group's current alerts.

    ``resolved`` should only hold alerts the group saw firing; a group whose alerts all
    resolved notifies once more (irrespective of ``send_resolved``) so that the log forgets
    them, unless the receiver never heard about them.
    """
    if last is None:
        return Reason.FIRST if firing else Reason.NOTHING
    if not firing <= last.firing:
        return Reason.FIRST if not last.firing else Reason.NEW_ALERTS
    if not firing:
        return Reason.RESOLVED if last.firing else Reason.NOTHING
    if send_resolved and not (resolved & last.firing) <= last.resolved:
        return Reason.RESOLVED
    if now - last.sent_at >= repeat_interval:
        return Reason.REPEAT
    return Reason.NOTHING
