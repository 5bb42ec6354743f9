"""Pipeline._route: decoded events grouped by model, against the plain per-event loop it replaced."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from driftwarden.daemon.metrics import Metrics
from driftwarden.daemon.pipeline import Pipeline

CONFIGURED = {"churn": object(), "fraud": object()}


def per_event(events: list[tuple[int, Any]]) -> tuple[dict[str, list[Any]], int]:
    by_model: dict[str, list[Any]] = defaultdict(list)
    unknown = 0
    for _, event in events:
        if event.model_id in CONFIGURED:
            by_model[event.model_id].append(event)
        else:
            unknown += 1
    return dict(by_model), unknown


@given(st.lists(st.sampled_from(["churn", "fraud", "nobody"]), max_size=40))
def test_route_matches_the_per_event_loop(ids: list[str]) -> None:
    events = [(i, SimpleNamespace(model_id=m, n=i)) for i, m in enumerate(ids)]
    pipeline = SimpleNamespace(models=CONFIGURED, metrics=Metrics())
    routed = Pipeline._route(pipeline, events)  # type: ignore[arg-type]
    expected, unknown = per_event(events)
    assert {m: [e.n for e in es] for m, es in routed.items()} == {m: [e.n for e in es] for m, es in expected.items()}
    ignored = pipeline.metrics.registry.get_sample_value("driftwarden_events_ignored_total", {"reason": "unknown_model"})
    assert (ignored or 0.0) == unknown
