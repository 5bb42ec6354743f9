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
        raw = values(name)
        features[name] = numeric_column(raw)[0] if fspec.type == "numeric" else categorical_column(raw)
    y_true = label_column(values("outcome"), spec) if "outcome" in names else label_column([None] * n, spec)
    timestamps = np.zeros(n)
    if "timestamp" in names:
        column = table.column("timestamp")
        if pa.types.is_timestamp(column.type):
            timestamps = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() / 1e6
        else:
            timestamps = numeric_column(values("timestamp"))[0]
    versions = values("model_version") if "model_version" in names else None
    version_column = None
    if versions is not None:
        version_column = np.empty(n, dtype=object)
        version_column[:] = versions
    return OutcomeBatch(
        timestamps=timestamps,
        prediction_timestamps=timestamps,
        y_true=y_true,
        y_pred=label_column(values("prediction"), spec),
        score=score_column(values("score"), spec) if "score" in names else None,
        features=features,
        kpis={c[len("kpi_"):]: numeric_column(values(c))[0] for c in table.column_names if c.startswith("kpi_")},
        model_version=version_column,
        class_scores={c[len("score_"):]: numeric_column(values(c))[0] for c in table.column_names
                      if c.startswith("score_")} or None if spec.task == "multiclass" else None,
    )


def load_reference(path: str | Path, spec: ModelSpec) -> OutcomeBatch:
    return table_to_batch(read_table(path), spec, source=str(path))
