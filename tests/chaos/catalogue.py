"""The chaos suite's traffic: valid events of a few models, and a catalogue of hostile kinds.

Each hostile kind is named, goes to one topic (predictions or outcomes), and has one expected
fate under event contract v1 (DESIGN.md): ``accept`` (a known model counts it; a quality
finding at most), ``ignore`` (a valid event of a model not in the config) or ``dead``
(dead-lettered with a reason). ``tests/chaos/test_catalogue.py`` checks every fate against the
daemon's decoders in-process; the chaos run checks it through the broker.

Hostile events never share a prediction id with valid ones, so the outcome join's count of
labelled events is exactly the valid outcomes produced.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from driftwarden.daemon.simulate import START, Scenario, messages

Fate = Literal["accept", "ignore", "dead"]
Topic = Literal["predictions", "outcomes"]
MODELS = ("churn", "spam", "fraud")  # same features (daemon.simulate's), one reference each
SHIFTED = "churn"  # the model with a covariate shift: its drift alerts and retraining request must go out


def scenarios(events: int) -> list[Scenario]:
    return [
        Scenario(model_id=m, events=events, label_delay=200, seed=11 + i,
                 covariate_shift_at=events // 6 if m == SHIFTED else None)
        for i, m in enumerate(MODELS)
    ]


@dataclass(frozen=True)
class Produced:
    """One message to produce: ``kind`` is ``valid`` or a hostile kind's name."""

    kind: str
    topic: Topic
    key: bytes | None
    value: bytes | None
    model: str | None  # the configured model that accepts it (None if it is ignored or dead-lettered)


def valid_traffic(events: int) -> list[Produced]:
    """Every model's predictions and outcomes (daemon.simulate, keyed by model id), models interleaved."""
    streams = [messages(s) for s in scenarios(events)]
    out: list[Produced] = []
    while streams:
        for stream in list(streams):
            try:
                topic, key, value = next(stream)
            except StopIteration:
                streams.remove(stream)
                continue
            out.append(Produced("valid", topic, key, value, key.decode()))  # type: ignore[arg-type]
    return out


# ---- hostile kinds ------------------------------------------------------------------------------

Obj = dict[str, Any]


def _prediction(i: int, model: str = "spam") -> Obj:
    return {
        "model_id": model, "prediction_id": f"hostile-{i}", "timestamp": START + 1.0, "model_version": "1.0.0",
        "features": {"age": 41, "tenure_days": 200.5, "monthly_spend": 30.2, "support_tickets": 1.0,
                     "plan": "pro", "country": "DE"},
        "prediction": 1, "score": 0.7,
    }


def _outcome(i: int, model: str = "spam") -> Obj:
    return {"model_id": model, "prediction_id": f"ghost-{i}", "timestamp": START + 2.0, "outcome": 0,
            "kpis": {"revenue": 1.5}}


def enc(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _raw(obj: Obj, field: str, raw: bytes) -> bytes:
    """``obj`` as JSON with ``field`` (top level, or ``features.x``) set to the raw JSON ``raw``."""
    marker = "\x00RAW\x00"
    target = obj
    *parents, last = field.split(".")
    for p in parents:
        target = target[p]
    target[last] = marker
    return enc(obj).replace(json.dumps(marker).encode(), raw)


def _without(obj: Obj, field: str) -> Obj:
    target = obj
    *parents, last = field.split(".")
    for p in parents:
        target = target[p]
    del target[last]
    return obj


def _with(obj: Obj, field: str, value: Any) -> Obj:
    target = obj
    *parents, last = field.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    return obj


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


HUGE = b"1" + b"0" * 309  # beyond float64 (the "age": 1 followed by 309 zeros)


@dataclass(frozen=True)
class Kind:
    name: str
    topic: Topic
    fate: Fate
    build: Callable[[int], bytes | None]  # message i of this kind -> value
    key: Callable[[int], bytes | None] = lambda i: b"spam"
    model: str | None = "spam"  # who accepts it (fate "accept")


P: Topic = "predictions"
OUT: Topic = "outcomes"


def _kinds() -> list[Kind]:
    p, o = _prediction, _outcome
    k: list[Kind] = []

    def dead(name: str, build: Callable[[int], bytes | None], topic: Topic = P, key: Callable[[int], bytes | None] | None = None,
             ) -> None:
        k.append(Kind(name, topic, "dead", build, key or (lambda i: b"spam"), None))

    def accept(name: str, build: Callable[[int], bytes | None], topic: Topic = P, model: str = "spam",
               key: Callable[[int], bytes | None] | None = None) -> None:
        k.append(Kind(name, topic, "accept", build, key or (lambda i: model.encode()), model))

    def ignore(name: str, build: Callable[[int], bytes | None], topic: Topic = P,
               key: Callable[[int], bytes | None] | None = None) -> None:
        k.append(Kind(name, topic, "ignore", build, key or (lambda i: b"ghost"), None))

    # not JSON at all
    dead("truncated_json", lambda i: enc(p(i))[:-7])
    dead("invalid_utf8", lambda i: enc(p(i)).replace(b'"hostile-', b'"\xff\xfehostile-'))
    dead("invalid_utf8_in_model_id", lambda i: enc(p(i)).replace(b'"spam"', b'"sp\xc3\x28am"'))
    dead("nan_token", lambda i: _raw(p(i), "score", b"NaN"))
    dead("infinity_token", lambda i: _raw(p(i), "features.age", b"Infinity"))
    dead("negative_infinity_token", lambda i: _raw(p(i), "features.monthly_spend", b"-Infinity"))
    dead("empty_value", lambda i: b"")
    dead("tombstone", lambda i: None)
    dead("whitespace_only", lambda i: b"   \n\t ")
    dead("binary_zeros", lambda i: b"\x00" * (10 + i % 50))
    dead("random_bytes", lambda i: random.Random(i).randbytes(1 + i % 300).replace(b"{", b"(") + b"\x80")
    dead("utf16_encoded", lambda i: json.dumps(p(i)).encode("utf-16"))
    dead("trailing_garbage", lambda i: enc(p(i)) + b" garbage")
    dead("two_objects", lambda i: enc(p(i)) + enc(p(i)))
    dead("bad_escape", lambda i: enc(p(i)).replace(b'"hostile-', b'"\\x41hostile-'))
    dead("unterminated_string", lambda i: b'{"model_id": "spam, "prediction_id": "x"}')
    dead("single_quotes", lambda i: enc(p(i)).replace(b'"', b"'"))
    dead("comment_in_json", lambda i: b"/* hi */" + enc(p(i)))
    # not an object / missing or mistyped fields
    dead("top_level_array", lambda i: b"[" + enc(p(i)) + b"]")
    dead("top_level_string", lambda i: b'"hello"')
    dead("top_level_number", lambda i: str(i).encode())
    dead("top_level_null", lambda i: b"null")
    dead("empty_object", lambda i: b"{}")
    dead("missing_model_id", lambda i: enc(_without(p(i), "model_id")))
    dead("missing_prediction_id", lambda i: enc(_without(p(i), "prediction_id")))
    dead("missing_timestamp", lambda i: enc(_without(p(i), "timestamp")))
    dead("missing_features", lambda i: enc(_without(p(i), "features")))
    dead("missing_prediction", lambda i: enc(_without(p(i), "prediction")))
    dead("wrong_type_prediction", lambda i: enc(_with(p(i), "prediction", [1])))
    dead("wrong_type_features", lambda i: enc(_with(p(i), "features", [41, "pro"])))
    dead("null_features", lambda i: enc(_with(p(i), "features", None)))
    dead("wrong_type_model_id", lambda i: enc(_with(p(i), "model_id", 5)))
    dead("wrong_type_prediction_id", lambda i: enc(_with(p(i), "prediction_id", 17)))
    dead("empty_model_id", lambda i: enc(_with(p(i), "model_id", "")))
    dead("empty_prediction_id", lambda i: enc(_with(p(i), "prediction_id", "")))
    dead("model_id_too_long", lambda i: enc(_with(p(i), "model_id", "m" * 300)))
    dead("prediction_id_too_long", lambda i: enc(_with(p(i), "prediction_id", "p" * 257)))
    dead("model_version_too_long", lambda i: enc(_with(p(i), "model_version", "v" * 300)))
    dead("feature_value_list", lambda i: enc(_with(p(i), "features.age", [41])))
    dead("feature_value_object", lambda i: enc(_with(p(i), "features.plan", {"name": "pro"})))
    dead("score_above_one", lambda i: enc(_with(p(i), "score", 1.5)))
    dead("score_negative", lambda i: enc(_with(p(i), "score", -0.1)))
    dead("score_string", lambda i: enc(_with(p(i), "score", "high")))
    dead("score_bool", lambda i: enc(_with(p(i), "score", True)))
    # timestamps the contract refuses
    dead("timestamp_bool", lambda i: enc(_with(p(i), "timestamp", True)))
    dead("timestamp_garbage", lambda i: enc(_with(p(i), "timestamp", "yesterday")))
    dead("timestamp_without_offset", lambda i: enc(_with(p(i), "timestamp", "2026-11-01T00:00:00")))
    dead("timestamp_year_0", lambda i: enc(_with(p(i), "timestamp", "0000-01-01T00:00:00Z")))
    dead("timestamp_year_10000", lambda i: enc(_with(p(i), "timestamp", "10000-01-01T00:00:00Z")))
    dead("timestamp_month_13", lambda i: enc(_with(p(i), "timestamp", "2026-13-01T00:00:00Z")))
    dead("epoch_1e18", lambda i: enc(_with(p(i), "timestamp", 1e18)))
    dead("epoch_int_1e18", lambda i: _raw(p(i), "timestamp", b"1000000000000000000"))
    dead("epoch_before_year_1", lambda i: enc(_with(p(i), "timestamp", -1e12)))
    dead("epoch_1e400", lambda i: _raw(p(i), "timestamp", b"1e400"))
    # numbers no float64 holds, nesting no decoder should recurse into
    dead("huge_int_feature", lambda i: _raw(p(i), "features.age", HUGE))
    dead("huge_negative_int_feature", lambda i: _raw(p(i), "features.tenure_days", b"-" + HUGE))
    dead("huge_int_categorical_feature", lambda i: _raw(p(i), "features.plan", HUGE + b"7"))
    dead("huge_int_prediction", lambda i: _raw(p(i), "prediction", HUGE + b"12345"))
    dead("float_overflow_feature", lambda i: _raw(p(i), "features.monthly_spend", b"1e400"))
    dead("deep_nesting_extra_field", lambda i: _raw(p(i), "extra", deep(1000)))
    dead("deep_nesting_very_deep", lambda i: _raw(p(i), "extra", deep(20_000)))
    dead("deep_nesting_feature_value", lambda i: _raw(p(i), "features.country", deep(1000)))
    dead("deep_array_nesting", lambda i: _raw(p(i), "extra", b"[" * 5000 + b"]" * 5000))
    # outcomes the contract refuses
    dead("outcome_truncated", lambda i: enc(o(i))[:-3], OUT)
    dead("outcome_tombstone", lambda i: None, OUT)
    dead("outcome_empty_value", lambda i: b"", OUT)
    dead("outcome_missing_outcome", lambda i: enc(_without(o(i), "outcome")), OUT)
    dead("outcome_missing_prediction_id", lambda i: enc(_without(o(i), "prediction_id")), OUT)
    dead("outcome_wrong_type_outcome", lambda i: enc(_with(o(i), "outcome", [0])), OUT)
    dead("outcome_null_outcome", lambda i: enc(_with(o(i), "outcome", None)), OUT)
    dead("outcome_kpi_string", lambda i: enc(_with(o(i), "kpis", {"revenue": "a lot"})), OUT)
    dead("outcome_kpi_bool", lambda i: enc(_with(o(i), "kpis", {"revenue": True})), OUT)
    dead("outcome_nan_token", lambda i: _raw(o(i), "kpis.revenue", b"NaN"), OUT)
    dead("outcome_epoch_1e18", lambda i: enc(_with(o(i), "timestamp", 1e18)), OUT)
    dead("outcome_huge_int", lambda i: _raw(o(i), "outcome", b"-" + HUGE), OUT)
    dead("outcome_deep_nesting", lambda i: _raw(o(i), "extra", deep(3000)), OUT)
    dead("outcome_invalid_utf8", lambda i: enc(o(i)).replace(b'"ghost-', b'"\xc0\xafghost-'), OUT)

    # accepted: the contract allows them; data quality counts what is odd
    accept("undeclared_feature", lambda i: enc(_with(p(i), "features.colour", "red")))
    accept("missing_declared_feature", lambda i: enc(_without(p(i), "features.age")))
    accept("null_feature", lambda i: enc(_with(p(i), "features.country", None)))
    accept("text_in_numeric_feature", lambda i: enc(_with(p(i), "features.age", "forty-one")))
    accept("bool_in_numeric_feature", lambda i: enc(_with(p(i), "features.support_tickets", True)))
    accept("number_in_categorical_feature", lambda i: enc(_with(p(i), "features.plan", 3)))
    accept("big_int_inside_float64", lambda i: _raw(p(i), "features.age", b"1" + b"0" * 30))
    accept("subnormal_float", lambda i: enc(_with(p(i), "features.monthly_spend", 5e-324)))
    accept("negative_zero", lambda i: _raw(p(i), "features.tenure_days", b"-0.0"))
    accept("timestamp_year_9999", lambda i: enc(_with(p(i), "timestamp", "9999-12-31T23:59:59Z")))
    accept("future_timestamp", lambda i: enc(_with(p(i), "timestamp", "2031-06-01T00:00:00Z")))
    accept("epoch_far_future", lambda i: enc(_with(p(i), "timestamp", 2.5e11)))
    accept("epoch_zero", lambda i: enc(_with(p(i), "timestamp", 0)))
    accept("negative_epoch", lambda i: enc(_with(p(i), "timestamp", -86_400.5)))
    accept("iso_before_1970", lambda i: enc(_with(p(i), "timestamp", "1950-06-01T00:00:00Z")))
    accept("timestamp_year_1", lambda i: enc(_with(p(i), "timestamp", "0001-01-01T00:00:00Z")))
    accept("timestamp_offset_beyond_year_1", lambda i: enc(_with(p(i), "timestamp", "0001-01-01T00:00:00+01:00")))
    accept("timestamp_with_offset", lambda i: enc(_with(p(i), "timestamp", "2026-11-01T05:30:00+05:30")))
    accept("extra_top_level_field", lambda i: enc(_with(p(i), "trace", {"span": i, "sampled": True})))
    accept("moderately_nested_extra_field", lambda i: _raw(p(i), "extra", deep(40)))
    accept("unicode_category", lambda i: enc(_with(p(i), "features.country", "日本🇯🇵\u200b")))
    accept("long_category", lambda i: enc(_with(p(i), "features.plan", "x" * 10_000)))
    accept("escaped_unicode_ids", lambda i: enc(_with(p(i), "prediction_id", f"h\u00e9\u00e9-{i}")).replace(
        "hé".encode(), b"h\\u00e9"))
    accept("duplicate_json_key", lambda i: enc(p(i))[:-1] + b', "prediction": 0}')
    accept("duplicate_prediction_id", lambda i: enc(_with(p(i), "prediction_id", f"dup-{i // 2}")))
    accept("string_prediction_label", lambda i: enc(_with(p(i), "prediction", "yes")))
    accept("float_prediction_label", lambda i: enc(_with(p(i), "prediction", 0.5)))
    accept("null_score", lambda i: enc(_with(p(i), "score", None)))
    accept("class_score_dict", lambda i: enc(_with(p(i), "score", {"0": 0.3, "1": 0.7})))
    accept("null_model_version", lambda i: enc(_with(p(i), "model_version", None)))
    accept("model_id_differs_from_key", lambda i: enc(p(i)), key=lambda i: b"fraud")
    accept("no_key", lambda i: enc(p(i)), key=lambda i: None)
    accept("garbage_key", lambda i: enc(p(i)), key=lambda i: b"\xff\x00")
    accept("outcome_unknown_prediction_id", lambda i: enc(o(i)), OUT)
    accept("outcome_future_timestamp", lambda i: enc(_with(o(i), "timestamp", "9999-12-31T23:59:59Z")), OUT)
    accept("outcome_before_1970", lambda i: enc(_with(o(i), "timestamp", -1e9)), OUT)
    accept("outcome_extra_fields", lambda i: enc(_with(o(i), "extra", {"nested": [1, 2, {"x": None}]})), OUT)
    accept("outcome_null_kpis", lambda i: enc(_with(o(i), "kpis", None)), OUT)
    accept("outcome_string_label", lambda i: enc(_with(o(i), "outcome", "churned")), OUT)
    accept("outcome_big_int_kpi", lambda i: _raw(o(i), "kpis.revenue", b"1" + b"0" * 30), OUT)

    # ignored: valid events of models this daemon does not monitor
    ignore("unknown_model", lambda i: enc(_with(p(i), "model_id", "ghost")))
    ignore("unknown_model_keyed_as_known", lambda i: enc(_with(p(i), "model_id", "ghost")), key=lambda i: b"churn")
    ignore("model_id_case_variant", lambda i: enc(_with(p(i), "model_id", "SPAM")))
    ignore("model_id_trailing_space", lambda i: enc(_with(p(i), "model_id", "spam ")))
    ignore("unknown_model_future_timestamp", lambda i: enc(_with(_with(p(i), "model_id", "ghost"), "timestamp", 2.5e11)))
    ignore("unknown_model_outcome", lambda i: enc(_with(o(i), "model_id", "ghost")), OUT)
    return k


KINDS = _kinds()


def hostile_traffic(per_kind: int) -> Iterator[Produced]:
    for kind in KINDS:
        for j in range(per_kind):
            i = KINDS.index(kind) * 100_000 + j  # ids unique across kinds
            yield Produced(kind.name, kind.topic, kind.key(i), kind.build(i), kind.model)


def mixed_traffic(valid_events: int, per_kind: int, seed: int) -> list[Produced]:
    """Valid traffic in its production order, with every hostile message at a random place in it."""
    valid = valid_traffic(valid_events)
    hostile = list(hostile_traffic(per_kind))
    rng = random.Random(seed)
    rng.shuffle(hostile)
    slots = sorted(rng.randrange(len(valid) + 1) for _ in hostile)
    out: list[Produced] = []
    h = 0
    for pos, message in enumerate(valid):
        while h < len(hostile) and slots[h] == pos:
            out.append(hostile[h])
            h += 1
        out.append(message)
    out.extend(hostile[h:])
    return out
