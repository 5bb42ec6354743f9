"""``driftwarden compare``: the daemon's detectors and defaults on two data files.

With ``-c CONFIG`` the model's declared features, task and ``monitoring`` settings are used;
without, features and task are inferred from the reference file's columns (numbers -> numeric,
anything else -> categorical; a numeric prediction with more than 10 distinct values ->
regression, two classes -> binary, else multiclass).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

import numpy as np
import pyarrow as pa

from daemon.config import load_config
from daemon.reference import read_table, table_to_batch
from detectors.monitor import compare
from detectors.spec import FeatureSpec, ModelSpec

RESERVED = {"prediction", "score", "outcome", "timestamp", "model_version", "prediction_id", "model_id"}


def infer_spec(table: pa.Table) -> ModelSpec:
    features = {}
    for name in table.column_names:
        if name in RESERVED or name.startswith("kpi_"):
            continue
        kind = table.schema.field(name).type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        features[name] = FeatureSpec("numeric" if numeric else "categorical")
    pred = table.column("prediction")
    distinct = len(np.unique(np.asarray(pred.drop_null().to_pylist(), dtype=object).astype(str)))
    numeric_pred = pa.types.is_integer(pred.type) or pa.types.is_floating(pred.type)
    task = "regression" if numeric_pred and distinct > 10 else ("binary" if distinct <= 2 else "multiclass")
    return ModelSpec(task=task, features=features)  # type: ignore[arg-type]


def run_compare(reference: str, current: str, config_path: str | None, model_id: str | None,
                output_format: str = "table", out: TextIO = sys.stdout) -> int:
    ref_table = read_table(reference)
    if config_path:
        config = load_config(config_path)
        if model_id is None and len(config.models) > 1:
            print("compare: the config has several models; choose one with --model", file=sys.stderr)
            return 2
        spec = (config.model(model_id) if model_id else config.models[0]).spec()
    else:
        spec = infer_spec(ref_table)
    ref = table_to_batch(ref_table, spec, source=reference)
    cur = table_to_batch(read_table(current), spec, source=current)
    findings = compare(spec, ref, cur)
    drifted = [f for f in findings if f.degraded]
    if output_format == "json":
        json.dump({"task": spec.task, "drifted": bool(drifted), "findings": [f.to_dict() for f in findings]},
                  out, indent=2, default=str)
        out.write("\n")
    else:
        header = f"{'kind':<20} {'subject':<18} {'test':<22} {'statistic':>10} {'p-value':>10} {'threshold':>10}  drifted"
        print(header, file=out)
        print("-" * len(header), file=out)
        for f in findings:
            p = "" if f.p_value is None else f"{f.p_value:.3g}"
            print(f"{f.kind:<20} {f.subject[:18]:<18} {f.detector[:22]:<22} {f.statistic:>10.4g} {p:>10} "
                  f"{f.threshold:>10.4g}  {'YES' if f.degraded else 'no'}", file=out)
        verdict = "DRIFTED: " + ", ".join(sorted({f"{f.kind}:{f.subject}" for f in drifted})) if drifted else "no drift"
        print(f"\nmodel verdict ({len(cur)} current rows vs {len(ref)} reference rows): {verdict}", file=out)
    return 0
