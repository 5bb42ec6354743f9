"""Reference columns converted by Arrow (daemon/reference.py) equal the per-value Python conversions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.daemon.columns import label_column, numeric_column, score_column
from driftwarden.daemon.reference import label_values, numeric_values, score_values
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

TYPES = {"float64": pa.float64(), "float32": pa.float32(), "float16": pa.float16(), "int8": pa.int8(),
         "int32": pa.int32(), "int64": pa.int64(), "uint8": pa.uint8(), "uint64": pa.uint64(),
         "bool": pa.bool_(), "string": pa.string(), "null": pa.null()}
SPECS = [ModelSpec(task=t, features={"x": FeatureSpec("numeric")}) for t in ("binary", "multiclass", "regression")]


def _values(kind: str) -> st.SearchStrategy[list[object]]:
    t = TYPES[kind]
    if pa.types.is_integer(t):
        info = np.iinfo(t.to_pandas_dtype())
        item: st.SearchStrategy[object] = st.one_of(st.integers(int(info.min), int(info.max)),
                                                    st.sampled_from([int(info.min), int(info.max), 0, 2**53 + 1]
                                                                    if info.max > 2**53 else [int(info.min), 0]))
    elif kind == "float16":
        item = st.floats(width=16)
    elif kind == "float32":
        item = st.floats(width=32)
    elif kind == "float64":
        item = st.floats()
    elif kind == "bool":
        item = st.booleans()
    elif kind == "string":
        item = st.sampled_from(["1", "a", ""])
    else:
        item = st.none()
    return st.lists(st.one_of(st.none(), item), max_size=40)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tobytes() == b.tobytes() if a.dtype.kind == "f" else a.tolist() == b.tolist()


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(TYPES)), chunks=st.integers(1, 3), spec=st.sampled_from(SPECS))
def test_arrow_converted_columns_equal_the_python_conversions(data: st.DataObject, kind: str, chunks: int,
                                                              spec: ModelSpec) -> None:
    raw = data.draw(_values(kind))
    if any(v is not None and not isinstance(v, bool) and isinstance(v, int) and v > 2**63 - 1 for v in raw) \
            and kind != "uint64":
        return
    cut = sorted(data.draw(st.lists(st.integers(0, len(raw)), min_size=chunks - 1, max_size=chunks - 1)))
    parts = [raw[i:j] for i, j in zip([0, *cut], [*cut, len(raw)], strict=True)]
    column = pa.chunked_array([pa.array(p, type=TYPES[kind]) for p in parts], type=TYPES[kind])
    pylist = column.to_pylist()
    with np.errstate(over="ignore"):
        assert _same(numeric_values(column), numeric_column(pylist)[0])
        assert _same(score_values(column, spec), score_column(pylist, spec))
    assert _same(label_values(column, spec), label_column(pylist, spec))
