from __future__ import annotations

import pytest

from driftwarden.alerts.routing import build_route_tree
from tests.alerts.conftest import settings

CONFIG = settings(
    receivers={
        "ml": {"type": "log"},
        "risk": {"type": "log"},
        "pager": {"type": "log"},
        "audit": {"type": "log"},
        "quiet": {"type": "log"},
    },
    route={
        "receiver": "ml",
        "routes": [
            {
                "matchers": ['team="risk"'],
                "receiver": "risk",
                "continue": True,
                "routes": [{"matchers": ['severity="critical"'], "receiver": "pager", "group_wait": "5s"}],
            },
            {"matchers": ['kind=~".*drift"', 'env!="prod"'], "receiver": "quiet"},
            {"matchers": ['model=~"fraud|aml"'], "receiver": "audit", "group_by": ["model", "kind"]},
        ],
    },
)
ROOT = build_route_tree(CONFIG.route, ["model"], 30, 300, 14400)

CASES = [
    # (labels, expected (receiver, group_wait) list)
    # nothing special: the root route
    ({"model": "churn", "kind": "performance", "env": "prod"}, [("ml", 30)]),
    # team=risk continues: risk, and the next sibling that matches (audit)
    ({"model": "fraud", "team": "risk", "kind": "performance", "env": "prod"}, [("risk", 30), ("audit", 30)]),
    # a critical risk alert descends into the pager child, which overrides group_wait
    ({"model": "x", "team": "risk", "severity": "critical", "env": "prod"}, [("pager", 5)]),
    # drift outside prod goes to the quiet receiver and stops there (no continue)
    ({"model": "fraud", "kind": "data_drift", "env": "staging"}, [("quiet", 30)]),
    # drift in prod does not match the quiet route; fraud goes to audit
    ({"model": "fraud", "kind": "data_drift", "env": "prod"}, [("audit", 30)]),
    # a missing label is "" : env!="prod" matches when env is absent
    ({"model": "churn", "kind": "concept_drift"}, [("quiet", 30)]),
    # regex is anchored: "fraudulent" is not "fraud"
    ({"model": "fraudulent", "kind": "quality", "env": "prod"}, [("ml", 30)]),
]


@pytest.mark.parametrize(("labels", "expected"), CASES)
def test_route_tree(labels: dict[str, str], expected: list[tuple[str, float]]) -> None:
    assert [(r.receiver, r.group_wait) for r in ROOT.match(labels)] == expected


def test_group_key_uses_route_group_by() -> None:
    (audit,) = ROOT.match({"model": "aml", "kind": "quality", "env": "prod"})
    assert audit.group_key({"model": "aml", "kind": "quality"}) == 'root.2:audit:{model="aml",kind="quality"}'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # unknown receiver, with its YAML path
        ({"route": {"receiver": "log", "routes": [{"receiver": "nope"}]}}, "route.routes[0].receiver 'nope'"),
        # bad matcher syntax
        ({"route": {"receiver": "log", "routes": [{"matchers": ["team~risk"]}]}}, "invalid matcher"),
        # unknown key
        ({"route": {"receiver": "log", "recievers": []}}, "unknown field `recievers`"),
        # root route with matchers
        ({"route": {"receiver": "log", "matchers": ['a="b"']}}, "root route matches every alert"),
    ],
)
def test_route_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
        settings(**raw)
