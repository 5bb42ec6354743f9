"""``driftwarden replay BUNDLE``: recompute a report's findings from its replay bundle.

The bundle (see ``alerts/reports/bundle.py``) holds the spec, the reference and
the exact rows of the evaluated window. ``detectors.monitor.compare`` runs the
same detectors on them; each recomputed finding is matched with the finding the
report recorded under the same (kind, detector, subject), and statistic,
threshold and p-value are compared for exact equality.

A sequential finding (a CUSUM's: drift, PCA and estimated performance per block of
predictions, realized performance per block of outcomes) depends on every block before
its own. The bundle's replay steps hold the last degraded block of each side with the
CUSUM state before it: a monitor built from the spec and reference loads that state and
judges the block again (``ModelMonitor.replay``); its findings are compared with the
recorded ones that end with the block. Checks that depend on stream history otherwise
(event rate buckets, staleness, the concept-drift detector's change points, accuracy
judged per outcome) cannot be recomputed and are listed as such.

The table shows numbers to 6 significant digits (a differing check is listed again below it
at full precision); ``--format json`` keeps every number at full precision.

Exit codes: 0 every recorded statistic reproduced, 1 at least one differs,
2 the bundle cannot be read.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from driftwarden.alerts.reports.bundle import Bundle, BundleError, read_bundle
from driftwarden.daemon.command_errors import describe_failure
from driftwarden.detectors.base import utc_text
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor, compare
from driftwarden.detectors.replay_steps import ReplayStep

#: kinds that an outcome window produces (the prediction window gives the rest)
OUTCOME_KINDS = {"performance", "kpi", "concept_drift", "traffic"}
#: checks whose value depends on the stream before the window: shown, never compared
HISTORY_DEPENDENT = {("concept_drift", None), ("traffic", "event_rate"), ("traffic", "staleness"),
                     ("traffic", "label_coverage"), ("quality", "missing_rate")}  # missing rate: per block


def history_dependent(f: Finding) -> bool:
    if f.details.get("source") == "realized":  # labels matched to an earlier prediction window
        return True
    if f.details.get("sequential") or "cusum" in f.details:  # a CUSUM: evidence of the blocks before the window
        return True
    return (f.kind, None) in HISTORY_DEPENDENT or (f.kind, f.detector) in HISTORY_DEPENDENT


@dataclass(frozen=True, slots=True)
class ReplayRow:
    finding: Finding
    recorded: Finding | None
    step: ReplayStep | None = None  # recomputed from this replay step (else from the window)

    @property
    def match(self) -> bool | None:
        """True/False when the report recorded this check, None when it did not."""
        if self.recorded is None:
            return None
        if self.step is None and (history_dependent(self.finding) or history_dependent(self.recorded)):
            return None
        a, b = self.finding, self.recorded
        return all(_same(x, y) for x, y in ((a.statistic, b.statistic), (a.threshold, b.threshold),
                                             (a.p_value, b.p_value))) and a.degraded == b.degraded


def _same(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return x == y or (math.isnan(x) and math.isnan(y))


def recompute(bundle: Bundle) -> list[Finding]:
    """The findings of the bundle's window(s), recomputed with ``compare``."""
    out = compare(bundle.spec, bundle.reference, bundle.current)
    if bundle.outcomes is not None:
        out += [f for f in compare(bundle.spec, bundle.reference, bundle.outcomes) if f.kind in OUTCOME_KINDS]
    return out


def replay_step(bundle: Bundle, step: ReplayStep) -> list[Finding]:
    """The findings of one replay step, recomputed by a monitor built from the bundle's spec and reference."""
    return ModelMonitor(str(bundle.manifest["model_id"]), bundle.spec, bundle.reference).replay(step)


def replay(path: str | Path) -> tuple[Bundle, list[ReplayRow], list[Finding]]:
    """(bundle, recomputed findings matched with the recorded ones, recorded findings not recomputed)."""
    bundle = read_bundle(path)
    everything = [*bundle.recent, *bundle.triggering]
    # realized CBPE values share their estimate's key but come from labels of an earlier window
    realized = list({id(f): f for f in everything if f.details.get("source") == "realized"}.values())
    recorded = {f.key: f for f in everything if f.details.get("source") != "realized"}
    rows = [ReplayRow(f, recorded.get(f.key)) for f in recompute(bundle)]
    seen = {r.finding.key for r in rows
            if not history_dependent(r.finding) and not (r.recorded is not None and history_dependent(r.recorded))}
    # a sequential finding is the one recorded for its check at the end of the replayed block
    at_end = {(f.key, f.window_end): f for f in everything if f.details.get("source") != "realized"}
    replayed: set[tuple[tuple[str, str, str], float]] = set()
    for step in bundle.steps:
        try:
            recomputed = replay_step(bundle, step)
        except (KeyError, ValueError) as exc:  # a step that does not fit the bundle's spec (edited, mixed up)
            raise BundleError(f"{path}: the replay step {step.kind} to {utc_text(step.end)} does not fit the "
                              f"bundle's spec: {type(exc).__name__}: {exc}") from exc
        for f in recomputed:
            recorded_here = at_end.get((f.key, f.window_end))
            if f.window_end != step.end and recorded_here is None:
                continue  # a batch's earlier verdicts: not what the report shows
            rows.append(ReplayRow(f, recorded_here, step))
            replayed.add((f.key, f.window_end))
    missing = [f for k, f in recorded.items() if k not in seen and (k, f.window_end) not in replayed]
    return bundle, rows, missing + realized


def _num(x: float | None, digits: int = 6) -> str:
    """A number for the table: ``digits`` significant digits (``0.123457``, ``1.5e-64``), ``-`` for none.

    >>> _num(0.12345678901234567), _num(2.481480186404813e-64), _num(2000.0), _num(None), _num(0.1, 17)
    ('0.123457', '2.48148e-64', '2000', '-', '0.10000000000000001')
    """
    return "-" if x is None else f"{x:.{digits}g}"


def _differences(r: ReplayRow) -> str:
    """What differs between the recomputed and the recorded finding, at full precision."""
    assert r.recorded is not None
    a, b = r.finding, r.recorded
    parts = [f"{name} {_num(x, 17)} (recorded {_num(y, 17)})"
             for name, x, y in (("statistic", a.statistic, b.statistic), ("threshold", a.threshold, b.threshold),
                                ("p_value", a.p_value, b.p_value)) if not _same(x, y)]
    if a.degraded != b.degraded:
        parts.append(f"degraded {a.degraded} (recorded {b.degraded})")
    return f"  {a.kind}/{a.detector}/{a.subject}: " + ", ".join(parts) + "\n"


def _table(bundle: Bundle, rows: list[ReplayRow], missing: list[Finding], out: TextIO) -> None:
    m = bundle.manifest
    out.write(f"bundle {m['report_id']}: model {m['model_id']!r} version {m.get('model_version')!r}, "
              f"{len(bundle.current)} window rows ({m['current_kind']}), {len(bundle.reference)} reference rows\n")
    out.write(f"recorded with: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}\n")
    header = ("kind", "detector", "subject", "statistic", "threshold", "p_value", "degraded", "recorded")
    groups: list[tuple[str, list[ReplayRow]]] = [("the evaluated window, judged as one window", [])]
    for step in bundle.steps:
        what = {"prediction_block": "a degraded block of predictions", "outcome_block": "a degraded block of outcomes",
                "accuracy_batch": "a batch of outcomes with a degraded accuracy verdict"}[step.kind]
        groups.append((f"{what} ({len(step)} rows to {utc_text(step.end)}), from the CUSUM state before it", []))
    for r in rows:
        groups[0 if r.step is None else 1 + bundle.steps.index(r.step)][1].append(r)
    for title, group in groups:
        if not group:
            continue
        table = [header]
        for r in group:
            f = r.finding
            mark = {None: "-", True: "identical", False: "DIFFERS"}[r.match]
            if r.step is None and history_dependent(f):
                mark = "needs stream history"
            table.append((f.kind, f.detector, f.subject[:40], _num(f.statistic), _num(f.threshold), _num(f.p_value),
                          "yes" if f.degraded else "no", mark))
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        out.write(f"\n{title}:\n")
        for row in table:
            out.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if missing:
        out.write("\n")
    for f in missing:
        out.write(f"not recomputable from the bundle: {f.kind}/{f.detector}/{f.subject} at {utc_text(f.window_end)} "
                  f"(recorded statistic {_num(f.statistic)}; {_why_not(f)})\n")
    differing = [r for r in rows if r.match is False]
    if differing:
        out.write("\ndiffering, at full precision:\n")
        for r in differing:
            out.write(_differences(r))
    out.write(f"\n{sum(r.match is True for r in rows)} recorded finding(s) reproduced exactly, "
              f"{len(differing)} differ.\n")


def _why_not(f: Finding) -> str:
    if f.details.get("source") == "realized":
        return "labels matched to an earlier window"
    if f.kind == "performance" and "leading" in f.details:
        return "an accuracy verdict of a batch the bundle does not hold"
    if f.details.get("sequential") or "cusum" in f.details:
        return "a CUSUM of a block the bundle does not hold"
    return "depends on the stream before the window"


def _json(bundle: Bundle, rows: list[ReplayRow], missing: list[Finding], out: TextIO) -> None:
    def enc(f: Finding) -> dict[str, Any]:
        d = f.to_dict()
        for k in ("statistic", "threshold", "p_value"):
            v = d[k]
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = repr(v)
        d["details"] = {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in f.details.items()}
        return d

    doc = {"bundle": {k: bundle.manifest.get(k) for k in ("report_id", "model_id", "model_version", "created_at",
                                                          "current_kind", "versions")},
           "findings": [{**enc(r.finding), "recorded_match": r.match,
                         "replayed_from": None if r.step is None else {"kind": r.step.kind, "end": r.step.end}}
                        for r in rows],
           "not_recomputable": [enc(f) for f in missing]}
    out.write(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def run_replay(bundle_path: str, output_format: str = "table", stream: TextIO | None = None) -> int:
    """The CLI entry point: print the recomputed findings; return the exit code (see module doc)."""
    out = stream or sys.stdout
    try:
        bundle, rows, missing = replay(bundle_path)
    except BundleError as exc:
        code, message = describe_failure("replay", exc)
        print(message, file=sys.stderr)
        return code
    (_json if output_format == "json" else _table)(bundle, rows, missing, out)
    return 1 if any(r.match is False for r in rows) else 0
