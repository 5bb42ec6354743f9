"""The chaos catalogue's expected fates, checked against the daemon's own decoders (no broker)."""

from __future__ import annotations

from collections import Counter

from driftwarden.daemon.events import decode_outcomes
from driftwarden.daemon.simulate import FEATURES
from driftwarden.daemon.typed_events import TypedDecoders
from driftwarden.detectors.spec import FeatureSpec, ModelSpec
from tests.chaos.catalogue import KINDS, MODELS, Produced, hostile_traffic, mixed_traffic

SPEC = ModelSpec("binary", {name: FeatureSpec(kind) for name, kind in FEATURES.items()})  # type: ignore[arg-type]


def fates(batch: list[Produced]) -> list[tuple[str, str | None]]:
    """(fate, accepting model) of each message, as the daemon's pipeline decides them."""
    typed = TypedDecoders(dict.fromkeys(MODELS, SPEC))
    out: list[tuple[str, str | None]] = [("?", None)] * len(batch)
    for topic in ("predictions", "outcomes"):
        index = [i for i, m in enumerate(batch) if m.topic == topic]
        keys = [batch[i].key for i in index]
        values = [batch[i].value for i in index]
        if topic == "predictions":
            events, rejected = typed.decode_predictions(keys, values)
        else:
            events, rejected = decode_outcomes(values)  # type: ignore[assignment]
        for j, event in events:
            known = event.model_id in MODELS
            out[index[j]] = ("accept", event.model_id) if known else ("ignore", None)
        for r in rejected:
            out[index[r.index]] = ("dead", None)
    return out


def test_catalogue_has_at_least_80_kinds_with_unique_names() -> None:
    names = [k.name for k in KINDS]
    assert len(names) == len(set(names)) >= 80
    assert {k.fate for k in KINDS} == {"accept", "ignore", "dead"}


def test_every_hostile_kind_meets_its_expected_fate() -> None:
    batch = list(hostile_traffic(per_kind=6))
    wrong = Counter()
    for message, (fate, model) in zip(batch, fates(batch), strict=True):
        kind = next(k for k in KINDS if k.name == message.kind)
        expected = (kind.fate, kind.model if kind.fate == "accept" else None)
        if (fate, model) != expected:
            wrong[(kind.name, expected, (fate, model))] += 1
    assert not wrong, wrong


def test_mixed_traffic_keeps_valid_order_and_every_hostile_message() -> None:
    mixed = mixed_traffic(valid_events=300, per_kind=2, seed=3)
    valid = [m for m in mixed if m.kind == "valid"]
    assert len(mixed) - len(valid) == 2 * len(KINDS)
    assert len([m for m in valid if m.topic == "predictions"]) == 3 * 300
    assert [f for f, _ in fates(valid)] == ["accept"] * len(valid)
