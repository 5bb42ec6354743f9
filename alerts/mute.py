"""Recurring mute windows (maintenance), evaluated in UTC.

>>> from driftwarden.alerts.settings import MuteWindow
>>> w = MuteSchedule(MuteWindow(name="nightly", weekdays=["mon-fri"], start="22:00", end="02:00"))
>>> w.active(parse_time("2026-11-30T23:00:00Z"))   # Monday 23:00
True
>>> w.active(parse_time("2026-12-01T01:59:00Z"))   # Tuesday 01:59, window opened Monday
True
>>> w.active(parse_time("2026-11-30T01:00:00Z"))   # Monday 01:00, Sunday is not in mon-fri
False
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from driftwarden.alerts.matchers import matches, parse_matchers
from driftwarden.alerts.settings import MuteWindow

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_time(value: float | str) -> float:
    """Epoch seconds from a number or an RFC 3339 string (``Z`` or an offset)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"invalid time {value!r}: use epoch seconds or RFC 3339 like 2026-12-01T22:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone: add Z for UTC")
    return parsed.timestamp()


def parse_weekdays(items: list[str]) -> frozenset[int]:
    """``["mon-fri", "sun"]`` -> {0, 1, 2, 3, 4, 6} (Monday = 0); ranges may wrap (``fri-mon``)."""
    days: set[int] = set()
    for item in items:
        first, _, last = item.strip().lower().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"invalid weekday {item!r}: use mon..sun or a range like mon-fri")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_clock(text: str) -> int:
    """``"HH:MM"`` (UTC) -> minutes since midnight; ``"24:00"`` is the end of the day."""
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"invalid time of day {text!r}: use HH:MM (UTC)")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > 1440:
        raise ValueError(f"invalid time of day {text!r}: use 00:00..24:00")
    return total


class MuteSchedule:
    def __init__(self, window: MuteWindow):
        self.name = window.name
        self.matchers = parse_matchers(window.matchers)
        self.days = parse_weekdays(window.weekdays)
        self.start, self.end = parse_clock(window.start), parse_clock(window.end)

    def active(self, now: float) -> bool:
        t = datetime.fromtimestamp(now, UTC)
        minute, day = t.hour * 60 + t.minute, t.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        if self.start > self.end:
            return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)
        return False

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and matches(self.matchers, labels)
