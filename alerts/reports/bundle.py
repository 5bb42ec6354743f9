"""Replay bundles: everything needed to recompute a report's statistics on another machine.

Format (version 1): ONE gzip-compressed tar archive, ``<report id>.replay.tar.gz``,
with these regular-file members at the top level (no directories):

``manifest.json``
    ``{"format": "driftwarden-replay", "format_version": 1, "report_id", "model_id",
    "model_version", "created_at" (epoch s), "current_kind" ("predictions" or "outcomes"),
    "columns" (per data file: column name -> numpy dtype, and "features": feature name ->
    column name), "counters" (the prediction window's decoder counters ``type_errors``,
    ``missing_keys``, ``undeclared_keys``), "versions" (python, driftwarden, numpy, scipy,
    pyarrow, msgspec, matplotlib, river), "files" (member name -> SHA-256 hex)}``.
``spec.json``
    The model spec, ``msgspec.to_builtins(ModelSpec)``; ``msgspec.convert(data, ModelSpec)``
    restores it (features, task, positive label, every monitoring setting).
``reference.parquet``
    The reference rows as the detectors saw them.
``current.parquet``
    The exact rows of the evaluated window (a prediction window, or joined outcomes).
``outcomes.parquet`` (optional)
    The joined outcomes of the evaluated outcome window (realized performance, segments).
``state.json``
    The detector states at the onset: ``{"state": ModelMonitor.state() or null,
    "snapshot": ModelMonitor.snapshot() or null}``.
``findings.json``
    ``{"triggering": [Finding...], "recent": [Finding...]}`` as ``Finding.to_dict()``;
    a non-finite float is written as ``{"$float": "nan"}`` (or ``"inf"``, ``"-inf"``).
``steps.json`` (optional)
    ``{"steps": [ReplayStep.to_json()...]}``: the last prediction block and the last outcome
    block with a degraded sequential finding, each with its rows (numeric columns exact, as
    base64) and the CUSUM state before it (:mod:`detectors.replay_steps`). A sequential
    finding (a CUSUM's) depends on every block before its own: ``driftwarden replay`` loads
    the state, judges the block again and compares the findings that end with it.

Data files (Parquet, zstd) use the reference file layout that ``driftwarden run`` reads:
one column per declared feature (numeric ``double`` with NaN for missing; categorical
``string`` with null for missing), ``prediction``, ``outcome`` (outcome rows only),
``score``, ``timestamp`` and ``prediction_timestamp`` (epoch seconds, ``double``),
``model_version`` (``string``) and ``kpi_<name>`` (``double``). A feature whose name
collides with one of those columns is stored as ``feature:<name>`` (see ``columns``).
Floats round-trip bit for bit, so ``detectors.monitor.compare`` on the bundle gives the
report's statistics exactly. Reading never extracts to disk: only the named members are read.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from driftwarden.alerts.reports.layout import SUFFIX as SUFFIX  # the bundle's file name ends so (re-exported)
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.spec import ModelSpec

FORMAT = "driftwarden-replay"
FORMAT_VERSION = 1
RESERVED = {"timestamp", "prediction_timestamp", "prediction", "outcome", "score", "model_version"}
PACKAGES = ("driftwarden", "numpy", "scipy", "pyarrow", "msgspec", "matplotlib", "river")
MEMBERS = ("manifest.json", "spec.json", "reference.parquet", "current.parquet", "outcomes.parquet",
           "state.json", "findings.json", "steps.json")


class BundleError(Exception):
    """The file is not a readable replay bundle; the message says which part is wrong."""


@dataclass
class Bundle:
    manifest: dict[str, Any]
    spec: ModelSpec
    reference: OutcomeBatch
    current: PredictionBatch | OutcomeBatch
    outcomes: OutcomeBatch | None
    state: dict[str, Any] | None
    snapshot: dict[str, Any] | None = None
    triggering: list[Finding] = field(default_factory=list)
    recent: list[Finding] = field(default_factory=list)
    steps: list[ReplayStep] = field(default_factory=list)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _feature_columns(spec: ModelSpec) -> dict[str, str]:
    return {n: (f"feature:{n}" if n in RESERVED or n.startswith(("kpi_", "feature:")) else n) for n in spec.features}


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "O":
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.array(values)


def batch_table(batch: PredictionBatch | OutcomeBatch, names: dict[str, str]) -> tuple[pa.Table, dict[str, str]]:
    cols: dict[str, np.ndarray] = {}
    if isinstance(batch, OutcomeBatch):
        cols["timestamp"], cols["prediction_timestamp"] = batch.timestamps, batch.prediction_timestamps
        cols["outcome"], cols["prediction"] = batch.y_true, batch.y_pred
        cols.update({f"kpi_{k}": v for k, v in batch.kpis.items()})
    else:
        cols["timestamp"], cols["prediction"] = batch.timestamps, batch.prediction
    if batch.score is not None:
        cols["score"] = batch.score
    if batch.model_version is not None:
        cols["model_version"] = batch.model_version
    for name, values in batch.features.items():
        cols[names.get(name, f"feature:{name}")] = values
    dtypes = {k: v.dtype.str if v.dtype.kind != "O" else "object" for k, v in cols.items()}
    return pa.table({k: _arrow(v) for k, v in cols.items()}), dtypes


def _numpy(table: pa.Table, name: str, dtype: str) -> np.ndarray:
    values = table.column(name).to_numpy(zero_copy_only=False)
    if dtype == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    return np.array(values, dtype=np.dtype(dtype), copy=True)


def table_batch(table: pa.Table, dtypes: dict[str, str], names: dict[str, str],
                kind: str) -> PredictionBatch | OutcomeBatch:
    def col(name: str) -> np.ndarray | None:
        return _numpy(table, name, dtypes[name]) if name in dtypes else None

    by_column = {c: n for n, c in names.items()}
    features = {by_column.get(c, c[len("feature:"):]): _numpy(table, c, d) for c, d in dtypes.items()
                if c in by_column or c.startswith("feature:")}
    ts = col("timestamp")
    pred = col("prediction")
    assert ts is not None and pred is not None
    if kind == "predictions":
        return PredictionBatch(timestamps=ts, features=features, prediction=pred, score=col("score"),
                               model_version=col("model_version"))
    y_true, pts = col("outcome"), col("prediction_timestamp")
    assert y_true is not None and pts is not None
    kpis = {c[4:]: _numpy(table, c, d) for c, d in dtypes.items() if c.startswith("kpi_")}
    return OutcomeBatch(timestamps=ts, prediction_timestamps=pts, y_true=y_true, y_pred=pred,
                        score=col("score"), features=features, kpis=kpis, model_version=col("model_version"))


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def _unjson(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False, indent=1).encode()


def finding_from_dict(d: dict[str, Any]) -> Finding:
    d = dict(d)
    d["details"] = dict(d.get("details") or {})
    return Finding(**d)


def write_bundle(path: str | Path, *, report_id: str, model_id: str, model_version: str | None, created_at: float,
                 spec: ModelSpec, reference: OutcomeBatch, current: PredictionBatch | OutcomeBatch,
                 outcomes: OutcomeBatch | None, state: dict[str, Any] | None, snapshot: dict[str, Any] | None,
                 triggering: list[Finding], recent: list[Finding], steps: Sequence[ReplayStep] = ()) -> Path:
    """Write the archive (atomically: a temporary file renamed into place)."""
    names = _feature_columns(spec)
    files: dict[str, bytes] = {"spec.json": _dumps(msgspec.to_builtins(spec))}
    columns: dict[str, Any] = {"features": names}
    for member, batch in (("reference.parquet", reference), ("current.parquet", current),
                          ("outcomes.parquet", outcomes)):
        if batch is not None:
            table, dtypes = batch_table(batch, names)
            files[member], columns[member] = _parquet(table), dtypes
    files["state.json"] = _dumps({"state": state, "snapshot": snapshot})
    files["findings.json"] = _dumps({"triggering": [f.to_dict() for f in triggering],
                                     "recent": [f.to_dict() for f in recent]})
    if steps:
        files["steps.json"] = _dumps({"steps": [s.to_json() for s in steps]})
    counters: dict[str, dict[str, int]] = {"type_errors": {}, "missing_keys": {}, "undeclared_keys": {}}
    if isinstance(current, PredictionBatch):
        counters = {"type_errors": current.type_errors, "missing_keys": current.missing_keys,
                    "undeclared_keys": current.undeclared_keys}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "report_id": report_id, "model_id": model_id,
                "model_version": model_version, "created_at": created_at,
                "current_kind": "outcomes" if isinstance(current, OutcomeBatch) else "predictions",
                "columns": columns, "counters": counters, "versions": versions(),
                "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    files = {"manifest.json": _dumps(manifest), **files}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(created_at), 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(target)
    return target


def read_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle (checksums, format version); raise :class:`BundleError` if unusable."""
    raw: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar.getmembers():
                if info.name in MEMBERS and info.isfile():
                    handle = tar.extractfile(info)
                    if handle is not None:
                        raw[info.name] = handle.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{path}: not a readable .tar.gz replay bundle: {exc}") from exc
    try:
        manifest = json.loads(raw["manifest.json"])
    except (KeyError, ValueError) as exc:
        raise BundleError(f"{path}: missing or invalid manifest.json") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}, "
                          f"this driftwarden reads {FORMAT!r} version {FORMAT_VERSION}")
    for name, digest in manifest["files"].items():
        if name not in raw:
            raise BundleError(f"{path}: member {name} listed in the manifest is missing")
        if hashlib.sha256(raw[name]).hexdigest() != digest:
            raise BundleError(f"{path}: member {name} does not match its checksum (corrupted or edited)")
    spec = msgspec.convert(_unjson(json.loads(raw["spec.json"])), ModelSpec)
    cols = manifest["columns"]
    names = cols["features"]

    def batch(member: str, kind: str) -> Any:
        if member not in raw:
            return None
        return table_batch(pq.read_table(io.BytesIO(raw[member])), cols[member], names, kind)

    current = batch("current.parquet", manifest["current_kind"])
    if isinstance(current, PredictionBatch):
        current.type_errors = dict(manifest["counters"]["type_errors"])
        current.missing_keys = dict(manifest["counters"]["missing_keys"])
        current.undeclared_keys = dict(manifest["counters"]["undeclared_keys"])
    state = _unjson(json.loads(raw["state.json"]))
    found = _unjson(json.loads(raw["findings.json"]))
    try:
        steps = [ReplayStep.from_json(d) for d in _unjson(json.loads(raw["steps.json"]))["steps"]] \
            if "steps.json" in raw else []
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: steps.json is not a list of replay steps: {exc}") from exc
    return Bundle(manifest=manifest, spec=spec, reference=batch("reference.parquet", "outcomes"), current=current,
                  outcomes=batch("outcomes.parquet", "outcomes"), state=state.get("state"),
                  snapshot=state.get("snapshot"),
                  triggering=[finding_from_dict(d) for d in found["triggering"]],
                  recent=[finding_from_dict(d) for d in found["recent"]], steps=steps)
