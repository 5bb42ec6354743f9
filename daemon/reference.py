"""Reference data sets: CSV, Parquet or JSONL with the features, prediction, score, outcome columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from driftwarden.daemon.columns import categorical_column, label_column, numeric_column, score_column
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.spec import ModelSpec


class ReferenceError(Exception):
    """The reference file cannot be read or lacks a column the model declares."""


def read_table(path: str | Path) -> pa.Table:
    """Read CSV, Parquet or JSONL (by extension) into an Arrow table."""
    p = Path(path)
    suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(p)
        if suffix in (".csv", ".csv.gz"):
            return pacsv.read_csv(p)
        if suffix in (".jsonl", ".ndjson", ".json", ".jsonl.gz"):
            return pajson.read_json(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ReferenceError(f"{p}: cannot read: {exc}") from exc
    raise ReferenceError(f"{p}: unknown format {suffix!r} (use .csv, .parquet or .jsonl)")


def numeric_values(column: pa.ChunkedArray) -> np.ndarray:
    """``numeric_column(column.to_pylist())[0]``: float64, NaN where missing or not a number.

    Float and integer columns are converted by Arrow and numpy without a Python object per value
    (the same doubles: nulls NaN, integers rounded to nearest as ``float(int)`` rounds them); any
    other type goes through the Python values.
    """
    t = column.type
    if t in (pa.float32(), pa.float64()) or (pa.types.is_integer(t) and column.null_count == 0):
        return _doubles(column)
    return numeric_column(column.to_pylist())[0]


def _doubles(column: pa.ChunkedArray) -> np.ndarray:
    """A float32/float64 or integer column as float64, nulls as ``np.nan`` (the NaN Python's None becomes)."""
    out = np.array(column.to_numpy(), dtype=np.float64)
    if column.null_count:
        out[np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
    return out


def label_values(column: pa.ChunkedArray, spec: ModelSpec) -> np.ndarray:
    """``label_column(column.to_pylist(), spec)``; an integer column of a classifier without nulls
    is made text once per distinct value, as :func:`categorical_column` does for Python ints."""
    if spec.is_classification and pa.types.is_integer(column.type) and column.null_count == 0:
        distinct, inverse = np.unique(column.to_numpy(), return_inverse=True)
        texts = np.empty(distinct.size, dtype=object)
        texts[:] = [str(v) for v in distinct.tolist()]
        return texts[inverse.reshape(-1)]
    return label_column(column.to_pylist(), spec)


def score_values(column: pa.ChunkedArray, spec: ModelSpec) -> np.ndarray | None:
    """``score_column(column.to_pylist(), spec)``; a float column with a score is converted by Arrow."""
    if (spec.task != "multiclass" and column.type in (pa.float32(), pa.float64())
            and len(column) > 0 and column.null_count < len(column)):
        return _doubles(column)
    return score_column(column.to_pylist(), spec)


def table_to_batch(table: pa.Table, spec: ModelSpec, source: str = "reference") -> OutcomeBatch:
    """Columns of a reference/current table as the detectors' :class:`OutcomeBatch`."""
    names = set(table.column_names)
    missing = [f for f in spec.features if f not in names]
    if missing:
        raise ReferenceError(f"{source}: missing feature column(s): {', '.join(missing)}")
    if "prediction" not in names:
        raise ReferenceError(f"{source}: missing the 'prediction' column")
    n = table.num_rows

    def values(name: str) -> list[Any]:
        return table.column(name).to_pylist()

    features = {}
    for name, fspec in spec.features.items():
        features[name] = (numeric_values(table.column(name)) if fspec.type == "numeric"
                          else categorical_column(values(name)))
    y_true = (label_values(table.column("outcome"), spec) if "outcome" in names
              else label_column([None] * n, spec))
    timestamps = np.zeros(n)
    if "timestamp" in names:
        column = table.column("timestamp")
        if pa.types.is_timestamp(column.type):
            timestamps = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() / 1e6
        else:
            timestamps = numeric_values(column)
    versions = values("model_version") if "model_version" in names else None
    version_column = None
    if versions is not None:
        version_column = np.empty(n, dtype=object)
        version_column[:] = versions
    return OutcomeBatch(
        timestamps=timestamps,
        prediction_timestamps=timestamps,
        y_true=y_true,
        y_pred=label_values(table.column("prediction"), spec),
        score=score_values(table.column("score"), spec) if "score" in names else None,
        features=features,
        kpis={c[len("kpi_"):]: numeric_values(table.column(c)) for c in table.column_names if c.startswith("kpi_")},
        model_version=version_column,
        class_scores={c[len("score_"):]: numeric_values(table.column(c)) for c in table.column_names
                      if c.startswith("score_")} or None if spec.task == "multiclass" else None,
    )


def load_reference(path: str | Path, spec: ModelSpec) -> OutcomeBatch:
    return table_to_batch(read_table(path), spec, source=str(path))
