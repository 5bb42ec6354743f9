"""The reference loader's Arrow fast paths give what the Python-list conversion gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.columns import categorical_column, label_column, numeric_column
from driftwarden.daemon.reference import load_reference, table_to_batch
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={"x": FeatureSpec("numeric"), "k": FeatureSpec("numeric"),
                                          "c": FeatureSpec("categorical")})

ints = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_arrow_columns_convert_as_the_python_lists_do(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 30))
    x = data.draw(st.lists(floats, min_size=n, max_size=n))
    k = data.draw(st.lists(ints, min_size=n, max_size=n))
    pred = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    outcome = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["0", "1", "yes"])), min_size=n, max_size=n))
    c = data.draw(st.lists(st.one_of(st.none(), st.text(max_size=3)), min_size=n, max_size=n))
    table = pa.table({"x": pa.array(x, pa.float64()), "k": pa.array(k, pa.int64()), "c": pa.array(c, pa.string()),
                      "prediction": pa.array(pred, pa.int64()), "outcome": pa.array(outcome, pa.string()),
                      "kpi_revenue": pa.array(k, pa.int64())})
    batch = table_to_batch(table, SPEC)
    np.testing.assert_array_equal(batch.features["x"], numeric_column(x)[0])
    np.testing.assert_array_equal(batch.features["k"], numeric_column(k)[0])
    np.testing.assert_array_equal(batch.kpis["revenue"], numeric_column(k)[0])
    assert batch.features["c"].tolist() == categorical_column(c).tolist()
    assert batch.y_pred.dtype == object and batch.y_pred.tolist() == label_column(pred, SPEC).tolist()
    assert batch.y_true.tolist() == label_column(outcome, SPEC).tolist()


def test_a_parquet_reference_with_nulls_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"x": [1.5, None, 3.0], "k": pa.array([True, None, False]), "c": ["a", None, "b"],
                             "prediction": [1, 0, 1]}), path)
    batch = load_reference(path, SPEC)
    np.testing.assert_array_equal(batch.features["x"], [1.5, np.nan, 3.0])
    np.testing.assert_array_equal(batch.features["k"], [np.nan, np.nan, np.nan])  # booleans are not numbers
    assert batch.y_pred.tolist() == ["1", "0", "1"]
