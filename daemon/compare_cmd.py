"""``driftwarden compare``: the daemon's detectors and defaults on two data files.

With ``-c CONFIG`` the model's declared features, task and ``monitoring`` settings are used;
without, features and task are inferred from the reference file's columns (numbers -> numeric,
anything else -> categorical; a numeric prediction with more than 10 distinct values ->
regression, two classes -> binary, else multiclass).

Each row is one check: its effect-size metric and statistic (``psi``, ``accuracy``...) and,
for the drift tests, the hypothesis test that gave the p-value (``KS`` or ``chi2``,
Benjamini-Hochberg adjusted over the tested subjects), which is what decides "drifted".

Exit codes (for CI): 0 no check degraded, 1 the model-level verdict is drifted (some check
degraded; ``--no-fail-on-drift`` makes it 0), 2 the files or config cannot be used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow as pa

from driftwarden.daemon.command_errors import CommandError
from driftwarden.daemon.config import load_config
from driftwarden.daemon.reference import read_table, table_to_batch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import compare
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

RESERVED = {"prediction", "score", "outcome", "timestamp", "model_version", "prediction_id", "model_id"}


def infer_spec(table: pa.Table, source: str = "reference") -> ModelSpec:
    if "prediction" not in table.column_names:
        raise CommandError(f"{source}: no 'prediction' column (columns: {', '.join(table.column_names)})",
                           "add the model's predictions as a column named prediction")
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


def _read(path: str, role: str) -> pa.Table:
    if not Path(path).is_file():
        raise CommandError(f"{role} file not found: {path}", f"check the --{role} path")
    return read_table(path)


def reported(findings: list[Finding]) -> list[Finding]:
    """One row per check.

    ``compare`` feeds the rows once as predictions, then as outcomes. The outcome pass makes the
    performance estimator (CBPE) also report its *realized* value, under the same
    (kind, detector, subject) as its estimate: the metric on the labels matched to the estimated
    window, which the ``performance`` rows already give on every labelled row. Those rows
    printed each estimated metric twice; they are left out.
    """
    rows = [f for f in findings if f.details.get("source") != "realized"]
    keys = [f.key for f in rows]
    assert len(keys) == len(set(keys)), f"compare reported a check twice: {keys}"
    return rows


def _test_name(f: Finding) -> str:
    """The hypothesis test behind the p-value (``KS``, ``chi2``), or ``-`` when the check has none."""
    if f.p_value is None:
        return "-"
    return str(f.details.get("test") or f.detector)


def _table(spec: ModelSpec, findings: list[Finding], ref_rows: int, cur_rows: int, out: TextIO) -> None:
    header = (f"{'kind':<21} {'subject':<18} {'metric':<22} {'statistic':>10} {'threshold':>10}  "
              f"{'test':<5} {'p-value':>9}  drifted")
    print(header, file=out)
    print("-" * len(header), file=out)
    for f in findings:
        p = "" if f.p_value is None else f"{f.p_value:.3g}"
        print(f"{f.kind:<21} {f.subject[:18]:<18} {f.detector[:22]:<22} {f.statistic:>10.4g} {f.threshold:>10.4g}  "
              f"{_test_name(f):<5} {p:>9}  {'YES' if f.degraded else 'no'}", file=out)
    tested = [f for f in findings if f.p_value is not None]
    if tested:
        alpha = tested[0].details.get("alpha")
        print(f"\np-values: adjusted ({tested[0].details.get('correction', 'none')}) over the tested subjects; "
              f"a drift row is drifted when its p-value is below alpha ({alpha}) and its metric at or above "
              "the threshold.", file=out)
    drifted = [f for f in findings if f.degraded]
    verdict = "DRIFTED: " + ", ".join(sorted({f"{f.kind}:{f.subject}" for f in drifted})) if drifted else "no drift"
    print(f"\nmodel verdict ({cur_rows} current rows vs {ref_rows} reference rows, {spec.task}): {verdict}", file=out)


def run_compare(reference: str, current: str, config_path: str | None, model_id: str | None,
                output_format: str = "table", out: TextIO | None = None, *, fail_on_drift: bool = True) -> int:
    """Compare, print (to ``out``, default: the current ``sys.stdout``) and return the exit code (see the module doc)."""
    out = out or sys.stdout
    ref_table = _read(reference, "reference")
    if config_path:
        config = load_config(config_path, check_files=False)  # its reference is --reference here
        if model_id is None and len(config.models) > 1:
            raise CommandError(f"{config_path} declares {len(config.models)} models",
                               f"choose one with --model ({', '.join(m.id for m in config.models)})")
        try:
            spec = (config.model(model_id) if model_id else config.models[0]).spec()
        except KeyError:
            raise CommandError(f"no model {model_id!r} in {config_path}",
                               f"choose one of: {', '.join(m.id for m in config.models)}") from None
    else:
        if model_id:
            raise CommandError("--model needs -c CONFIG", "give the config that declares the model, or leave --model out")
        spec = infer_spec(ref_table, reference)
    ref = table_to_batch(ref_table, spec, source=reference)
    cur = table_to_batch(_read(current, "current"), spec, source=current)
    findings = reported(compare(spec, ref, cur))
    drifted = any(f.degraded for f in findings)
    if output_format == "json":
        json.dump({"task": spec.task, "drifted": drifted, "findings": [f.to_dict() for f in findings]},
                  out, indent=2, default=str)
        out.write("\n")
    else:
        _table(spec, findings, len(ref), len(cur), out)
    return 1 if drifted and fail_on_drift else 0
