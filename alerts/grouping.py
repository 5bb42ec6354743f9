"""Aggregation groups: alerts of one route with equal ``group_by`` labels that belong to one
fault are notified together.

One fault, one group: within a route's ``group_by`` group, alerts are split into *incidents* by
event time. An alert joins the open incident that held its check (same fingerprint: a warning
and its critical, a check that resolved and fires again while the incident is open), else the
open incident with a firing alert of its topic (:mod:`alerts.news`: realized F1 confirming the
estimate that fired an hour before, ADWIN after accuracy: one fault however long it lasts),
else the latest open incident that
started no more than ``span`` seconds before or after it (``starts_at``, event time), else it
starts a new incident. A change of another input (a second feature drifting long after the
first) is another incident. Each incident is a group of its own (key ``<route group>@<start>``),
with its own thread, so a fault 17 minutes later is a new message, not a reply to the last.

A new group waits ``group_wait`` before its first flush (so a burst of alerts lands in one
message), then flushes every ``group_interval``. Resolved alerts leave the group after the
flush that carried them; an empty group is dropped.

>>> from driftwarden.alerts.routing import RouteNode
>>> from driftwarden.alerts.model import Alert
>>> route = RouteNode("root", "log", (), ("model",), 30.0, 300.0, 14400.0)
>>> groups = Groups()
>>> a = Alert(fingerprint="f", severity="warning", labels={"model": "churn", "kind": "data_drift", "subject": "age"},
...           state="firing", starts_at=0)
>>> g = groups.insert(route, a, now=1000.0)
>>> g.key, g.next_flush_at, [x.key for x in groups.due(1029.0)], [x.key for x in groups.due(1030.0)]
('root:log:{model="churn"}@19700101T000000Z', 1030.0, [], ['root:log:{model="churn"}@19700101T000000Z'])
>>> later = Alert(fingerprint="g", severity="warning", labels={"model": "churn", "kind": "data_drift", "subject": "income"},
...               state="firing", starts_at=1200)
>>> groups.insert(route, later, now=1300.0).key  # 20 minutes later, another input: another fault
'root:log:{model="churn"}@19700101T002000Z'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import msgspec

from driftwarden.alerts.model import Alert
from driftwarden.alerts.news import topic
from driftwarden.alerts.routing import RouteNode

INCIDENT_SPAN = 600.0  # seconds of event time: alerts starting this close belong to one fault


class Group(msgspec.Struct, kw_only=True):
    key: str
    route_id: str
    receiver: str
    labels: dict[str, str]
    next_flush_at: float
    alerts: dict[str, Alert] = msgspec.field(default_factory=dict)  # by instance
    report_pending: bool = False
    base: str = ""  # the route's group key (route, receiver, group_by labels)
    started_at: float = 0.0  # event time the incident started (its first alert's starts_at)
    fingerprints: list[str] = msgspec.field(default_factory=list)  # every check it held, also resolved ones

    def remove_flushed_resolved(self, instances: Iterable[str]) -> None:
        for instance in instances:
            if instance in self.alerts and self.alerts[instance].state == "resolved":
                del self.alerts[instance]


class Groups:
    def __init__(self, span: float = INCIDENT_SPAN) -> None:
        self.span = span
        self.groups: dict[str, Group] = {}

    def insert(self, route: RouteNode, alert: Alert, now: float) -> Group:
        """Put (or refresh) ``alert`` in its incident's group for ``route``, creating it if needed."""
        base = route.group_key(alert.labels)
        group = self.incident(base, alert)
        if group is None:
            key = f"{base}@{datetime.fromtimestamp(alert.starts_at, UTC).strftime('%Y%m%dT%H%M%SZ')}"
            group = Group(
                key=key,
                route_id=route.id,
                receiver=route.receiver,
                labels={n: alert.labels.get(n, "") for n in route.group_by},
                next_flush_at=now + route.group_wait,
                base=base,
                started_at=alert.starts_at,
            )
            self.groups[key] = group
        group.alerts[alert.instance] = alert.copy()
        if alert.fingerprint not in group.fingerprints:
            group.fingerprints.append(alert.fingerprint)
        return group

    def incident(self, base: str, alert: Alert) -> Group | None:
        """The open group of route group ``base`` that ``alert`` belongs to (see the module doc)."""
        open_ = [g for g in self.groups.values() if g.base == base]
        for group in open_:
            if alert.instance in group.alerts:
                return group
        for group in open_:
            if alert.fingerprint in group.fingerprints:
                return group
        about = topic(alert)
        for group in sorted(open_, key=lambda g: -g.started_at):
            if any(a.state == "firing" and topic(a) == about for a in group.alerts.values()):
                return group
        near = [g for g in open_ if abs(alert.starts_at - g.started_at) <= self.span]
        return max(near, key=lambda g: g.started_at, default=None)

    def sweep(self, touched: set[tuple[str, str]]) -> None:
        """Drop firing alerts a group holds that were not routed to it in this round (their
        labels now route elsewhere); resolved ones stay until flushed."""
        for group in list(self.groups.values()):
            for key in [k for k, a in group.alerts.items() if a.state != "resolved" and (group.key, k) not in touched]:
                del group.alerts[key]
            if not group.alerts:
                del self.groups[group.key]

    def due(self, now: float) -> list[Group]:
        return [g for g in self.groups.values() if g.alerts and g.next_flush_at <= now]

    def flushed(self, group: Group, now: float, interval: float, resolved: Iterable[str]) -> None:
        group.remove_flushed_resolved(resolved)
        group.next_flush_at = now + interval
        if not group.alerts:
            del self.groups[group.key]

    def state(self) -> list[object]:
        return [msgspec.to_builtins(g) for g in self.groups.values()]

    def load_state(self, state: Iterable[Mapping[str, object]]) -> None:
        self.groups = {g.key: g for g in (msgspec.convert(item, Group) for item in state)}
        for g in self.groups.values():  # saved before incidents: the key was the route group's
            if not g.base:
                g.base = g.key
                g.started_at = min((a.starts_at for a in g.alerts.values()), default=g.next_flush_at)
                g.fingerprints = sorted({a.fingerprint for a in g.alerts.values()})


class NotificationLogEntry(msgspec.Struct, kw_only=True):
    """Last notification of a group: what it said, when, and the thread it belongs to."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float
    thread_key: str
    seq: int = 0
    topics: dict[str, int] = msgspec.field(default_factory=dict)  # told in the thread: topic -> severity rank
    quiet: frozenset[str] = frozenset()  # firing instances recorded without news of their own (not announced)


class NotificationLog:
    def __init__(self) -> None:
        self.entries: dict[str, NotificationLogEntry] = {}

    def get(self, group_key: str) -> NotificationLogEntry | None:
        return self.entries.get(group_key)

    def record(self, group_key: str, entry: NotificationLogEntry) -> None:
        self.entries[group_key] = entry

    def state(self) -> dict[str, object]:
        return {k: msgspec.to_builtins(v) for k, v in self.entries.items()}

    def load_state(self, state: Mapping[str, object]) -> None:
        self.entries = {k: msgspec.convert(v, NotificationLogEntry) for k, v in state.items()}
