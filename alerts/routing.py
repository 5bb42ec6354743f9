"""Routing: a tree of routes matching alert labels to receivers, Alertmanager semantics.

An alert descends into the first child whose matchers match and stops there unless that child
has ``continue: true``; if no child matches, the node itself takes it. Children inherit
receiver, group_by and timing from their parent.

>>> from driftwarden.alerts.settings import Route
>>> tree = Route(receiver="slack-ml", routes=[
...     Route(matchers=['team="risk"'], receiver="slack-risk", continue_=True),
...     Route(matchers=['severity="critical"'], receiver="pager"),
... ])
>>> root = build_route_tree(tree, group_by=["model"], group_wait=30, group_interval=300, repeat_interval=14400)
>>> [r.receiver for r in root.match({"team": "risk", "severity": "critical"})]
['slack-risk', 'pager']
>>> [r.receiver for r in root.match({"team": "growth", "severity": "warning"})]
['slack-ml']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from driftwarden.alerts.matchers import Matcher, matches, parse_matchers
from driftwarden.alerts.settings import Route, seconds


@dataclass(frozen=True)
class RouteNode:
    id: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool = False
    children: tuple[RouteNode, ...] = field(default=())

    def match(self, labels: Mapping[str, str]) -> list[RouteNode]:
        """Routes (possibly several, via ``continue``) that take an alert with ``labels``."""
        if not matches(self.matchers, labels):
            return []
        found: list[RouteNode] = []
        for child in self.children:
            taken = child.match(labels)
            found += taken
            if taken and not child.continue_:
                break
        return found or [self]

    def group_key(self, labels: Mapping[str, str]) -> str:
        """``route-id:receiver:{label="value",...}`` over this route's ``group_by`` labels."""
        values = ",".join(f'{n}="{labels.get(n, "")}"' for n in self.group_by)
        return f"{self.id}:{self.receiver}:{{{values}}}"


def build_route_tree(
    route: Route,
    group_by: Sequence[str],
    group_wait: float,
    group_interval: float,
    repeat_interval: float,
    route_id: str = "root",
    receiver: str = "log",
) -> RouteNode:
    """Resolve inheritance; the root route matches everything."""
    node_receiver = route.receiver or receiver
    gb = tuple(route.group_by if route.group_by is not None else group_by)
    gw = seconds(route.group_wait) if route.group_wait is not None else group_wait
    gi = seconds(route.group_interval) if route.group_interval is not None else group_interval
    ri = seconds(route.repeat_interval) if route.repeat_interval is not None else repeat_interval
    children = tuple(
        build_route_tree(child, gb, gw, gi, ri, f"{route_id}.{i}", node_receiver) for i, child in enumerate(route.routes)
    )
    matchers = parse_matchers(route.matchers) if route_id != "root" else ()
    return RouteNode(route_id, node_receiver, matchers, gb, gw, gi, ri, route.continue_, children)
