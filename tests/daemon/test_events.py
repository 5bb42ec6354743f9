from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from driftwarden.daemon.events import decode_outcomes, decode_predictions, event_time

GOOD = {
    "model_id": "churn",
    "prediction_id": "a1b2",
    "timestamp": "2026-11-30T05:00:00Z",
    "model_version": "3.2.0",
    "features": {"age": 41, "plan": "pro", "tenure_days": 12.5, "country": None},
    "prediction": 1,
    "score": 0.83,
    "extra": "ignored",
}


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_contract_example_decodes_with_event_time() -> None:
    events, rejected = decode_predictions([enc(GOOD)])
    assert rejected == []
    (index, event), = events
    assert index == 0 and event.model_id == "churn" and event.features["plan"] == "pro"
    assert event_time(event.timestamp) == 1796014800.0


def test_epoch_seconds_and_multiclass_scores() -> None:
    event = {**GOOD, "timestamp": 1796014800, "score": {"a": 0.2, "b": 0.8}, "prediction": "b"}
    events, rejected = decode_predictions([enc(event)])
    assert rejected == [] and event_time(events[0][1].timestamp) == 1796014800.0


def test_bad_messages_are_rejected_with_reasons_and_good_ones_kept() -> None:
    values = [
        enc(GOOD),
        b"{not json",
        enc({**GOOD, "prediction_id": 17}),
        enc({k: v for k, v in GOOD.items() if k != "features"}),
        enc({**GOOD, "timestamp": "2026-11-30T05:00:00"}),
        None,
        enc({**GOOD, "features": {"age": [1, 2]}}),
        enc({**GOOD, "score": 1.7}),
        enc({**GOOD, "model_id": ""}),
        enc(GOOD),
    ]
    events, rejected = decode_predictions(values)
    assert [i for i, _ in events] == [0, 9]
    reasons = {r.index: r.reason for r in rejected}
    assert "not valid JSON" in reasons[1]
    assert "prediction_id" in reasons[2] and "Expected `str`" in reasons[2]
    assert "features" in reasons[3]
    assert "timezone" in reasons[4] and "$.timestamp" in reasons[4]
    assert reasons[5] == "empty message value"
    assert "features" in reasons[6]
    assert reasons[7] == "contract violation: Expected `float` <= 1.0 - at `$.score`"
    assert reasons[8] == "contract violation: Expected `str` of length >= 1 - at `$.model_id`"


def test_outcomes_decode() -> None:
    good = {"model_id": "churn", "prediction_id": "a1b2", "timestamp": "2026-12-02T10:00:00Z",
            "outcome": 0, "kpis": {"revenue": 12.5}}
    events, rejected = decode_outcomes([enc(good), enc({**good, "outcome": None})])
    assert len(events) == 1 and events[0][1].kpis == {"revenue": 12.5}
    assert rejected[0].index == 1


feature_values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                           st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))


@given(st.lists(st.one_of(
    st.fixed_dictionaries({
        "model_id": st.text(min_size=1, max_size=10),
        "prediction_id": st.text(min_size=1, max_size=10),
        "timestamp": st.floats(0, 4e9),
        "features": st.dictionaries(st.text(max_size=8), feature_values, max_size=5),
        "prediction": st.one_of(st.integers(0, 5), st.text(max_size=5)),
    }).map(enc),
    st.binary(max_size=40),
), max_size=20))
def test_batch_decode_equals_one_by_one(values: list[bytes]) -> None:
    """The one-call fast path and the per-message path agree on every batch."""
    events, rejected = decode_predictions(values)
    assert len(events) + len(rejected) == len(values)
    for i, value in enumerate(values):
        single, _ = decode_predictions([value])
        if single:
            assert (i, single[0][1]) in events
        else:
            assert any(r.index == i for r in rejected)
