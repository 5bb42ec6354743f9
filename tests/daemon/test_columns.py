from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from driftwarden.daemon.columns import label_text, prediction_batch, timestamps
from driftwarden.daemon.events import EARLIEST, LATEST, PredictionEvent, event_time
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical")})


def test_columns_missing_type_errors_and_undeclared_keys() -> None:
    events = [
        PredictionEvent("m", "1", 10.0, {"age": 41, "plan": "pro"}, 1, score=0.8, model_version="2"),
        PredictionEvent("m", "2", 11.0, {"age": "old", "plan": 3, "colour": "red"}, 0, score=None),
        PredictionEvent("m", "3", 12.0, {"plan": None}, True, score={"1": 0.3, "0": 0.7}),
    ]
    batch = prediction_batch(events, SPEC)
    assert len(batch) == 3
    np.testing.assert_array_equal(batch.features["age"], [41.0, np.nan, np.nan])
    assert batch.features["plan"].tolist() == ["pro", "3", None]
    assert batch.prediction.tolist() == ["1", "0", "true"]
    np.testing.assert_array_equal(batch.score, [0.8, np.nan, 0.3])
    assert batch.type_errors == {"age": 1}
    assert batch.missing_keys == {"age": 1}
    assert batch.undeclared_keys == {"colour": 1}
    assert batch.model_version.tolist() == ["2", None, None]
    np.testing.assert_array_equal(batch.timestamps, [10.0, 11.0, 12.0])


values = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                   st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from(["a", "b", "41"]))


@given(st.lists(st.dictionaries(st.sampled_from(["age", "plan", "colour"]), values), min_size=1, max_size=30),
       st.booleans())
def test_columns_match_a_per_event_reference(dicts: list[dict[str, object]], complete: bool) -> None:
    """Fast (complete rows) and general paths agree with a plain per-event computation."""
    if complete:
        dicts = [{"age": d.get("age"), "plan": d.get("plan")} for d in dicts]
    events = [PredictionEvent("m", str(i), float(i), d, 1) for i, d in enumerate(dicts)]
    batch = prediction_batch(events, SPEC)
    want_age = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                for v in (d.get("age") for d in dicts)]
    np.testing.assert_array_equal(batch.features["age"], want_age)
    assert batch.features["plan"].tolist() == [label_text(d.get("plan")) for d in dicts]
    bad = sum(1 for d in dicts if d.get("age") is not None and (isinstance(d["age"], bool | str)))
    assert batch.type_errors.get("age", 0) == bad
    assert batch.missing_keys.get("age", 0) == sum(1 for d in dicts if "age" not in d)
    assert batch.undeclared_keys.get("colour", 0) == sum(1 for d in dicts if "colour" in d)


aware_times = st.datetimes(timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14)), timezone(timedelta(minutes=-719))]))


@given(st.lists(aware_times, min_size=1, max_size=30), st.booleans())
def test_timestamps_of_datetimes_match_event_time(times: list[datetime], with_number: bool) -> None:
    """The vectorized path for decoded RFC 3339 times gives event_time's value for each (clamped at the year bounds)."""
    values: list[datetime | float] = [*times, 12.5] if with_number else list(times)
    expected = np.array([event_time(v) for v in values], dtype=np.float64)
    np.testing.assert_array_equal(timestamps(values), expected)


def test_timestamps_of_datetimes_at_the_bounds() -> None:
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))  # before 0001-01-01T00:00Z
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))  # after 9999-12-31T23:59:59Z
    assert timestamps([early, late, datetime(2026, 11, 30, 5, tzinfo=UTC)]).tolist() == [
        EARLIEST, LATEST, 1796014800.0]
