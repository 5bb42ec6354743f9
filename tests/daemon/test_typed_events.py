"""The typed fast path (decode by message key, features as a Struct) changes speed, never results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.columns import held_batch, held_predictions, prediction_batch, prediction_columns
from driftwarden.daemon.events import OutcomeEvent, decode_predictions, event_time
from driftwarden.daemon.held import HeldPrediction
from driftwarden.daemon.join import decode_prediction, encode_event
from driftwarden.daemon.pipeline import outcome_batch
from driftwarden.daemon.typed_events import TypedDecoders
from driftwarden.detectors.batch import PredictionBatch
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={
    "age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical"), "class": FeatureSpec("numeric"),
    "monthly-spend": FeatureSpec("numeric")})
TYPED = TypedDecoders({"churn": SPEC})
NUMERIC_SPEC = ModelSpec(task="binary", features={k: FeatureSpec("numeric") for k in ("age", "class", "monthly-spend")})
NUMERIC_TYPED = TypedDecoders({"churn": NUMERIC_SPEC})  # all numeric: rows are the Struct's own tuples
CATEGORICAL_SPEC = ModelSpec(task="binary", features={
    k: FeatureSpec("categorical") for k in ("age", "plan", "class", "monthly-spend")})
CATEGORICAL_TYPED = TypedDecoders({"churn": CATEGORICAL_SPEC})  # no numeric row at all
enc = msgspec.json.encode

scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                   st.floats(-1e9, 1e9, allow_nan=False), st.sampled_from(["pro", "free", "41", ""]))
numeric = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(-1e9, 1e9, allow_nan=False))


@st.composite
def message(draw: st.DrawFn, categorical: bool = True) -> tuple[bytes | None, bytes | None]:
    """Mostly well-formed events of the model, with every kind of deviation the fast path must hand over."""
    features: dict[str, Any] = {"age": draw(numeric), "class": draw(numeric), "monthly-spend": draw(numeric)}
    if categorical:
        features["plan"] = draw(scalar)
    deviation = draw(st.sampled_from(["none"] * 6 + ["missing", "undeclared", "text-in-numeric", "bool-in-numeric",
                                                     "other-model", "no-key", "broken", "bad-score"]))
    if deviation == "missing":
        del features[draw(st.sampled_from(sorted(features)))]
    elif deviation == "undeclared":
        features["colour"] = draw(scalar)
    elif deviation == "text-in-numeric":
        features["age"] = "old"
    elif deviation == "bool-in-numeric":
        features["class"] = True
    event = {"model_id": "other" if deviation == "other-model" else "churn",
             "prediction_id": draw(st.text(min_size=1, max_size=6)),
             "timestamp": draw(st.one_of(st.floats(0, 4e9), st.sampled_from(
                 ["2026-11-30T05:00:00Z", "2026-11-30T05:00:00.123456+02:00", "9999-12-31T23:00:00-05:00"]))),
             "features": features, "prediction": draw(st.sampled_from([0, 1, "1", True])),
             "score": 1.5 if deviation == "bad-score" else draw(st.one_of(
                 st.none(), st.floats(0, 1), st.fixed_dictionaries({"1": st.floats(0, 1), "0": st.floats(0, 1)}))),
             **({} if (version := draw(st.sampled_from([None, "v1", "v2"]))) is None else {"model_version": version})}
    value = enc(event)[:-3] if deviation == "broken" else enc(event)
    return (None if deviation == "no-key" else b"churn"), value


def _same(a: PredictionBatch, b: PredictionBatch) -> None:
    assert list(a.features) == list(b.features)
    for name in a.features:
        np.testing.assert_array_equal(a.features[name], b.features[name])
        assert a.features[name].dtype == b.features[name].dtype
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.prediction.tolist() == b.prediction.tolist()
    np.testing.assert_array_equal(a.score if a.score is not None else [], b.score if b.score is not None else [])
    assert (a.type_errors, a.missing_keys, a.undeclared_keys) == (b.type_errors, b.missing_keys, b.undeclared_keys)


@settings(max_examples=150, deadline=None)
@given(st.lists(message(), min_size=1, max_size=25))
def test_typed_decode_and_columns_equal_the_contract_path(messages: list[tuple[bytes | None, bytes | None]]) -> None:
    _check(messages, SPEC, TYPED)


@settings(max_examples=60, deadline=None)
@given(st.lists(message(categorical=False), min_size=1, max_size=25))
def test_all_numeric_models_too(messages: list[tuple[bytes | None, bytes | None]]) -> None:
    _check(messages, NUMERIC_SPEC, NUMERIC_TYPED)


@settings(max_examples=40, deadline=None)
@given(st.lists(message(), min_size=1, max_size=25))
def test_all_categorical_models_too(messages: list[tuple[bytes | None, bytes | None]]) -> None:
    _check(messages, CATEGORICAL_SPEC, CATEGORICAL_TYPED)


def _check(messages: list[tuple[bytes | None, bytes | None]], spec: ModelSpec, typed_decoders: TypedDecoders) -> None:
    keys, values = [k for k, _ in messages], [v for _, v in messages]
    typed_events, typed_rejects = typed_decoders.decode_predictions(keys, values)
    events, rejects = decode_predictions(values)
    assert [i for i, _ in typed_events] == [i for i, _ in events]
    assert [(r.index, r.reason) for r in typed_rejects] == [(r.index, r.reason) for r in rejects]
    mine = [e for _, e in typed_events if e.model_id == "churn"]
    theirs = [e for _, e in events if e.model_id == "churn"]
    if mine:
        _same(prediction_batch(mine, spec, typed_decoders), prediction_batch(theirs, spec))
        # what the join stores and a checkpoint restores decodes to the same event
        assert [decode_prediction(encode_event(e)) for e in mine] == [decode_prediction(encode_event(e)) for e in theirs]
        _check_held(mine, theirs, spec, typed_decoders)


def _check_held(mine: list[Any], theirs: list[Any], spec: ModelSpec, typed_decoders: TypedDecoders) -> None:
    """What the join holds of typed predictions gives the outcome side the contract path's columns,
    and a checkpoint of it restores the event it came from."""
    batch, held = prediction_columns(mine, spec, typed_decoders)
    _same(batch, prediction_batch(theirs, spec))
    if all(typed_decoders.is_typed(e) for e in mine):
        assert all(isinstance(h, HeldPrediction) for h in held)
        # held as they arrive (the coalescing buffer's form): the same held objects, the same columns
        model = typed_decoders.model_of(mine)
        assert model is not None
        early = held_predictions(mine, model)
        assert [msgspec.structs.astuple(h) for h in early] == [msgspec.structs.astuple(h) for h in held]
        assert list(map(type, early)) == list(map(type, held))
        again = held_batch(early, spec)
        _same(again, batch)
        for a, b in ((again.class_scores, batch.class_scores), (again.model_version, batch.model_version)):
            assert (a is None) == (b is None)
            if isinstance(a, dict) and isinstance(b, dict):
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
            elif a is not None and b is not None:
                assert a.tolist() == b.tolist()
    outcomes = [OutcomeEvent("churn", e.prediction_id, 1e9, 1) for e in theirs]
    joined = outcome_batch(list(zip(held, outcomes, strict=True)), spec, typed_decoders)
    expected = outcome_batch(list(zip(theirs, outcomes, strict=True)), spec)
    assert list(joined.features) == list(expected.features)
    for name in joined.features:
        np.testing.assert_array_equal(joined.features[name], expected.features[name])
    np.testing.assert_array_equal(joined.prediction_timestamps, expected.prediction_timestamps)
    assert joined.y_pred.tolist() == expected.y_pred.tolist()
    np.testing.assert_array_equal(joined.score if joined.score is not None else [],
                                  expected.score if expected.score is not None else [])
    for h, e in zip(held, theirs, strict=True):
        r = decode_prediction(encode_event(h))
        assert (r.model_id, r.prediction_id, r.features, r.prediction, r.score, r.model_version) == \
            (e.model_id, e.prediction_id, e.features, e.prediction, e.score, e.model_version)
        assert event_time(r.timestamp) == event_time(e.timestamp)


def test_the_fast_path_is_taken_for_well_formed_keyed_events() -> None:
    value = enc({"model_id": "churn", "prediction_id": "a", "timestamp": 5, "prediction": 1, "score": 0.25,
                 "features": {"age": 41, "plan": 2, "class": None, "monthly-spend": 9.5}})
    events, _ = TYPED.decode_predictions([b"churn"], [value])
    assert TYPED.is_typed(events[0][1])
    batch = prediction_batch([events[0][1]], SPEC, TYPED)
    assert batch.features["plan"].tolist() == ["2"]
    np.testing.assert_array_equal(batch.features["class"], [np.nan])
    assert batch.features["monthly-spend"].tolist() == [9.5]


def test_joined_batches_mixing_typed_and_restored_predictions() -> None:
    """After a restart the join holds contract-decoded predictions next to new typed ones."""
    value = enc({"model_id": "churn", "prediction_id": "a", "timestamp": 5, "prediction": 1,
                 "features": {"age": 41, "plan": "pro", "class": 1, "monthly-spend": 9.5}})
    (_, typed), = TYPED.decode_predictions([b"churn"], [value])[0]
    (held,) = prediction_columns([typed], SPEC, TYPED)[1]
    restored = decode_prediction(encode_event(held))
    assert isinstance(held, HeldPrediction) and not TYPED.is_typed(restored)
    outcome = OutcomeEvent("churn", "a", 9.0, 1)
    for pairs in ([(typed, outcome), (restored, outcome)], [(held, outcome), (restored, outcome)]):
        batch = outcome_batch(pairs, SPEC, TYPED)
        assert batch.features["age"].tolist() == [41.0, 41.0]
        assert batch.features["plan"].tolist() == ["pro", "pro"]


def test_the_daemon_counts_which_decoder_read_each_prediction(tmp_path: Path) -> None:
    """Keyed demo traffic takes the typed path; the same events without a key take the contract decoder."""
    from driftwarden.daemon.demo import demo_app
    from driftwarden.daemon.pipeline import Message
    from driftwarden.daemon.simulate import Scenario, messages

    app = demo_app(tmp_path)
    stream = list(messages(Scenario(events=300, label_delay=50)))
    app.handle([Message(t, 0, i, k, v) for i, (t, k, v) in enumerate(stream)])
    app.handle([Message(t, 0, 1000 + i, None, v) for i, (t, _, v) in enumerate(stream) if t == "predictions"][:40])
    sample = app.metrics.registry.get_sample_value
    assert sample("driftwarden_predictions_decoded_total", {"path": "typed"}) == 300
    assert sample("driftwarden_predictions_decoded_total", {"path": "contract"}) == 40
    app.close()
