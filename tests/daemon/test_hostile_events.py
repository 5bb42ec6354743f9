"""The contract's answer to each kind of hostile message (issue 10), by both decoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from driftwarden.daemon.columns import prediction_columns, timestamps
from driftwarden.daemon.events import EARLIEST, END, LATEST, decode_outcomes, decode_predictions, event_time
from driftwarden.daemon.join import decode_prediction
from driftwarden.daemon.typed_events import TypedDecoders
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec("binary", {"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical")})
REGRESSION = ModelSpec("regression", {"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical")})
TYPED = TypedDecoders({"churn": SPEC})
HUGE = "1" + "0" * 309  # an integer literal beyond float64 (whose largest is ~1.8e308)


def raw(timestamp: str = "1796014800", age: str = "41", plan: str = '"pro"', prediction: str = "1",
        extra: str = "", version: str = '"3.2.0"') -> bytes:
    return (f'{{"model_id": "churn", "prediction_id": "a1", "timestamp": {timestamp}, "model_version": {version},'
            f' "features": {{"age": {age}, "plan": {plan}}}, "prediction": {prediction}, "score": 0.8{extra}}}').encode()


def both(value: bytes | None) -> tuple[list[Any], list[str]]:
    """Decode with the contract and the typed decoder; they must agree. The events and the reasons."""
    events, rejected = decode_predictions([value])
    typed_events, typed_rejected = TYPED.decode_predictions([b"churn"], [value])
    assert [i for i, _ in typed_events] == [i for i, _ in events] and typed_rejected == rejected
    assert len(events) + len(rejected) == 1
    return [e for _, e in typed_events], [r.reason for r in rejected]


@pytest.mark.parametrize(("value", "reason"), [
    (raw(extra=', "ignored": ' + "[" * 1000 + "]" * 1000), "not valid JSON: nested too deeply"),
    (raw(extra=', "ignored": ' + '{"a":' * 5000 + "1" + "}" * 5000), "not valid JSON: nested too deeply"),
    (raw(age=HUGE), "contract violation: feature 'age': number out of float64 range"),
    (raw(age="-" + HUGE), "contract violation: feature 'age': number out of float64 range"),
    (raw(plan=HUGE), "contract violation: feature 'plan': number out of float64 range"),
    (raw(prediction=HUGE), "contract violation: prediction: number out of float64 range"),
    (raw(age="1" + "0" * 5000), "contract violation: Integer value out of range - at `$.features[...]`"),
    (raw(age="1e400"), "contract violation: Number out of range - at `$.features[...]`"),
    (raw(age="NaN"), "not valid JSON: JSON is malformed: invalid character (byte 116)"),
    (raw(age="-Infinity"), "not valid JSON: JSON is malformed: invalid character (byte 117)"),
    (raw(timestamp="1e18"), "contract violation: Expected `float` < 253402300800.0 - at `$.timestamp`"),
    (raw(timestamp="253402300800"), "contract violation: Expected `float` < 253402300800.0 - at `$.timestamp`"),
    (raw(timestamp="-62135596801"), "contract violation: Expected `float` >= -62135596800.0 - at `$.timestamp`"),
    (raw(timestamp=HUGE), "contract violation: Number out of range - at `$.timestamp`"),
    (raw(timestamp="true"), "contract violation: Expected `float | datetime`, got `bool` - at `$.timestamp`"),
    (raw(timestamp='"0000-01-01T00:00:00Z"'), "contract violation: Invalid RFC3339 encoded datetime - at `$.timestamp`"),
    (raw(version=json.dumps("v" * 257)), "contract violation: Expected `str` of length <= 256 - at `$.model_version`"),
    (raw(plan='"\\ud800"'), "not valid JSON: JSON is malformed: unexpected end of escaped utf-16 surrogate pair (byte 135)"),
    (raw().replace(b'"pro"', b'"pr\xffo"'), "not valid JSON: Invalid UTF-8 encoded string"),
    (raw()[:60], "not valid JSON: Input data was truncated"),
    (b"[1, 2]", "contract violation: Expected `object`, got `array`"),
    (b'"churn"', "contract violation: Expected `object`, got `str`"),
    (b"null", "contract violation: Expected `object`, got `null`"),
    (b"", "empty message value"),
    (None, "empty message value"),
])
def test_hostile_prediction_is_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    events, reasons = both(value)
    assert events == [] and reasons == [reason]


def test_no_poll_is_lost_to_one_bad_message() -> None:
    """A batch mixing every kind of message: each good one decoded, each bad one rejected, none raises."""
    good = raw()
    bad = [raw(extra=', "x": ' + "[" * 1000 + "]" * 1000), raw(age=HUGE), raw(timestamp="1e18"), None]
    values = [good, *bad, good]
    for decode in (lambda: decode_predictions(values), lambda: TYPED.decode_predictions([b"churn"] * 6, values)):
        events, rejected = decode()
        assert [i for i, _ in events] == [0, 5] and [r.index for r in rejected] == [1, 2, 3, 4]


@pytest.mark.parametrize("value", ["10" + "0" * 29, "-" + "9" * 308, "9223372036854775808"])
def test_integers_beyond_int64_but_inside_float64_are_accepted(value: str) -> None:
    """Only the message with such an integer is decoded a second time; its columns are the float64 values."""
    for spec in (SPEC, REGRESSION):
        events, reasons = both(raw(age=value, plan=value, prediction=value))
        assert reasons == []
        batch, _ = prediction_columns(events, spec, TYPED)
        assert batch.features["age"].tolist() == [float(int(value))]
        assert batch.features["plan"].tolist() == [value]  # a categorical value keeps its digits
        expected = [value] if spec is SPEC else [float(int(value))]
        assert batch.prediction.tolist() == expected


@pytest.mark.parametrize(("timestamp", "seconds"), [
    ("-5", -5.0),
    ("-62135596800", EARLIEST),
    ("253402300799.99997", 253402300799.99997),
    ('"1900-01-01T00:00:00Z"', -2208988800.0),
    ('"0001-01-01T00:00:00Z"', EARLIEST),
    ('"9999-12-31T23:59:59Z"', 253402300799.0),
    ('"0001-01-01T00:00:00+01:00"', EARLIEST),  # before year 1 in UTC: the nearest instant in range
    ('"9999-12-31T23:59:59-05:00"', LATEST),
])
def test_accepted_timestamps_are_finite_and_convert_back(timestamp: str, seconds: float) -> None:
    events, reasons = both(raw(timestamp=timestamp))
    assert reasons == []
    batch, _ = prediction_columns(events, SPEC, TYPED)
    assert batch.timestamps.tolist() == [seconds] == [event_time(e.timestamp) for e in events]
    assert datetime.fromtimestamp(seconds, UTC).year in (1, 1900, 1969, 9999)


def test_every_epoch_second_in_range_converts_back() -> None:
    for seconds in (EARLIEST, LATEST, END - 1.0):
        assert datetime.fromtimestamp(event_time(seconds), UTC).year in (1, 9999)
    east = timezone(timedelta(hours=23, minutes=59))
    assert event_time(datetime(1, 1, 1, tzinfo=east)) == EARLIEST


def test_outcome_has_the_same_bounds() -> None:
    def outcome(timestamp: str = "1796014800", value: str = "0", kpi: str = "12.5") -> bytes:
        return (f'{{"model_id": "churn", "prediction_id": "a1", "timestamp": {timestamp}, "outcome": {value},'
                f' "kpis": {{"revenue": {kpi}}}}}').encode()

    values = [outcome(), outcome(value=HUGE), outcome(timestamp="1e18"), outcome(timestamp="-62135596800"),
              outcome(kpi=HUGE), outcome(kpi="true"), outcome(value="1" + "0" * 30),
              outcome()[:-1] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"]
    events, rejected = decode_outcomes(values)
    assert [i for i, _ in events] == [0, 3, 6]
    assert {r.index: r.reason for r in rejected} == {
        1: "contract violation: outcome: number out of float64 range",
        2: "contract violation: Expected `float` < 253402300800.0 - at `$.timestamp`",
        4: "contract violation: Number out of range - at `$.kpis[...]`",
        5: "contract violation: Expected `float`, got `bool` - at `$.kpis[...]`",
        7: "not valid JSON: nested too deeply",
    }
    assert events[2][1].outcome == 10**30


def test_duplicate_keys_last_one_counts_in_both_decoders() -> None:
    events, reasons = both(raw(plan='"pro", "age": 7'))
    assert reasons == [] and prediction_columns(events, SPEC, TYPED)[0].features["age"].tolist() == [7.0]


def test_a_checkpoint_of_an_earlier_version_still_restores_and_makes_columns() -> None:
    """Earlier versions accepted 1e18 timestamps and 309-digit features; their held events must not crash a restart."""
    stored = (b'{"model_id":"churn","prediction_id":"a","timestamp":1e18,"features":{"age":' + HUGE.encode()
              + b',"plan":"pro"},"prediction":1}')
    event = decode_prediction(stored)
    batch, _ = prediction_columns([event], SPEC, TYPED)
    assert batch.timestamps.tolist() == [LATEST] and np.isnan(batch.features["age"]).all()
    assert timestamps([1e18, -1e18]).tolist() == [LATEST, EARLIEST]
