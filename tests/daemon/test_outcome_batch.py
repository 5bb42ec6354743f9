"""outcome_batch: the columns of joined pairs, against the fields of each pair read one by one."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from driftwarden.daemon.events import OutcomeEvent
from driftwarden.daemon.pipeline import kpi_columns, outcome_batch
from driftwarden.daemon.typed_events import ModelEvents
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec("binary", {"plan": FeatureSpec("categorical"), "age": FeatureSpec("numeric")})
HELD = ModelEvents("m", SPEC).held_type

pair = st.tuples(st.floats(0, 1e9), st.sampled_from([0, 1]), st.one_of(st.none(), st.floats(0, 1)),
                 st.sampled_from([None, "1.0", "2.0"]), st.floats(-5, 5), st.sampled_from([None, "pro", "free"]),
                 st.floats(0, 1e9), st.sampled_from([0, 1]),
                 st.one_of(st.none(), st.dictionaries(st.sampled_from(["revenue", "cost"]), st.floats(-9, 9))))


@given(st.lists(pair, min_size=1, max_size=25))
def test_outcome_batch_columns_are_the_pairs_fields(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    pairs = [(HELD("m", f"p{i}", t, pred, score, version, struct.pack("=d", age), (plan,)),
              OutcomeEvent("m", f"p{i}", t_out, outcome, kpis))
             for i, (t, pred, score, version, age, plan, t_out, outcome, kpis) in enumerate(rows)]
    batch = outcome_batch(pairs, SPEC)
    assert batch.timestamps.tolist() == [o.timestamp for _, o in pairs]
    assert batch.prediction_timestamps.tolist() == [p.timestamp for p, _ in pairs]
    assert batch.y_true.tolist() == [str(o.outcome) for _, o in pairs]
    assert batch.y_pred.tolist() == [str(p.prediction) for p, _ in pairs]
    scores = [np.nan if p.score is None else p.score for p, _ in pairs]
    if all(p.score is None for p, _ in pairs):
        assert batch.score is None
    else:
        np.testing.assert_array_equal(batch.score, scores)
    versions = [p.model_version for p, _ in pairs]
    assert (batch.model_version is None) if all(v is None for v in versions) else batch.model_version.tolist() == versions
    np.testing.assert_array_equal(batch.features["age"], [r[4] for r in rows])
    assert batch.features["plan"].tolist() == [r[5] for r in rows]
    names = sorted({k for _, o in pairs if o.kpis for k in o.kpis})
    assert sorted(batch.kpis) == names
    for name in names:
        np.testing.assert_array_equal(batch.kpis[name], [(o.kpis or {}).get(name, np.nan) for _, o in pairs])


def _kpi_columns_one_by_one(kpis: list[dict[str, float] | None]) -> dict[str, np.ndarray]:
    """The KPI columns as outcome_batch built them before kpi_columns: a comprehension per name."""
    names = sorted({k for d in kpis if d for k in d})
    return {name: np.array([(d or {}).get(name, np.nan) for d in kpis], dtype=np.float64) for name in names}


@given(st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(["revenue", "cost", "churned"]),
                                                     st.floats(allow_nan=True) | st.integers(-9, 9))), max_size=30))
def test_kpi_columns_are_those_read_one_by_one(kpis: list[dict[str, float] | None]) -> None:
    got, want = kpi_columns(kpis), _kpi_columns_one_by_one(kpis)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == np.float64 and got[name].tobytes() == want[name].tobytes()
