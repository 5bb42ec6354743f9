"""Assemble a :class:`Report` from data only, and write it (HTML, JSON, Markdown, replay bundle).

``build_report`` never reads the clock or any file: the caller passes ``now``
and the data. ``write_report`` lays the files out as::

    <directory>/<model slug>/<report id>/report.html      self-contained page
                                        report.json      every number
                                        summary.md       the Slack text
                                        <report id>.replay.tar.gz

A report folder appears whole or not at all: the files are written into a hidden sibling
``.<report id>.<random>.partial`` that is renamed into place once complete (and removed
if anything fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from driftwarden.alerts.reports.bundle import SUFFIX, versions, write_bundle
from driftwarden.alerts.reports.history import (
    Point,
    build_series,
    estimated_and_realized,
    key_of,
    onset,
    performance_key,
)
from driftwarden.alerts.reports.html import render
from driftwarden.alerts.reports.layout import slug
from driftwarden.alerts.reports.report import Change, Report, ReportInputs, to_json_dict
from driftwarden.alerts.reports.segments import worst_segments
from driftwarden.alerts.reports.summary import render_markdown
from driftwarden.alerts.reports.suspects import (
    blamed_features,
    data_changes,
    estimate_importance,
    finding_changes,
    importances,
    place_changes,
    rank_suspects,
)
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.spec import ModelSpec

PLOTTED_SUSPECTS = 3
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    directory: Path
    html: Path
    json: Path
    markdown: Path
    bundle: Path


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(STAMP)


def _order(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (not f.degraded, f.severity != "critical", -f.window_end, f.key))


def _latest_per_key(findings: Sequence[Finding]) -> dict[tuple[str, str, str], Finding]:
    out: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        if f.key not in out or f.window_end >= out[f.key].window_end:
            out[f.key] = f
    return out


def _concat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return np.concatenate([a.astype(object), b.astype(object)]) if a.dtype != b.dtype else np.concatenate([a, b])


def _rows(current: PredictionBatch | OutcomeBatch) -> tuple[np.ndarray, np.ndarray | None]:
    """(prediction times, model versions) of the evaluated rows."""
    if isinstance(current, OutcomeBatch):
        return current.prediction_timestamps, current.model_version
    return current.timestamps, current.model_version


def _labels(current: PredictionBatch | OutcomeBatch, outcomes: OutcomeBatch | None,
            findings: Sequence[Finding]) -> dict[str, Any]:
    out: dict[str, Any] = {"outcomes": 0, "median_lag_seconds": None, "p90_lag_seconds": None,
                           "coverage": None, "coverage_source": None}
    joined = outcomes if outcomes is not None else current if isinstance(current, OutcomeBatch) else None
    if joined is not None and len(joined):
        lag = joined.label_lag[np.isfinite(joined.label_lag)]
        out["outcomes"] = len(joined)
        if lag.size:
            out["median_lag_seconds"] = float(np.median(lag))
            out["p90_lag_seconds"] = float(np.quantile(lag, 0.9))
    latest = _latest_per_key(findings)
    cov = [f for k, f in latest.items() if k[1] == "label_coverage"]
    if cov:
        out["coverage"], out["coverage_source"] = cov[0].statistic, "label_coverage finding"
    elif joined is not None and isinstance(current, PredictionBatch) and len(current):
        lo, hi = float(current.timestamps.min()), float(current.timestamps.max())
        inside = (joined.prediction_timestamps >= lo) & (joined.prediction_timestamps <= hi)
        out["coverage"] = float(inside.sum()) / len(current)
        out["coverage_source"] = "joined outcomes of the window's predictions / window predictions"
    return out


def build_report(
    *, model_id: str, spec: ModelSpec, reference: OutcomeBatch, current: PredictionBatch | OutcomeBatch,
    now: float, triggering: Sequence[Finding] = (), recent: Sequence[Finding] = (),
    snapshot: Mapping[str, Any] | None = None, detector_state: Mapping[str, Any] | None = None,
    outcomes: OutcomeBatch | None = None, model_version: str | None = None, with_plots: bool = True,
    steps: Sequence[ReplayStep] = (),
) -> Report:
    """A report on ``current`` (the evaluated window's rows) against ``reference``.

    ``triggering``: the degraded findings that fired; ``recent``: the findings of recent
    evaluations (any state); ``snapshot``: ``ModelMonitor.snapshot()``; ``detector_state``:
    ``ModelMonitor.state()`` (goes into the bundle); ``outcomes``: joined outcomes of the
    window (segments, label lag). ``current`` may itself be an OutcomeBatch. ``steps``:
    ``ModelMonitor.replay_steps()`` (go into the bundle: its sequential findings replay from them).
    """
    trig = _order([f for f in triggering])
    everything = [*recent, *trig]
    series = build_series(snapshot, everything)
    first, healthy = onset(series, trig)
    times, model_versions = _rows(current)
    start = float(times.min()) if len(times) else None
    end = float(times.max()) if len(times) else None
    perf_key = performance_key(series, trig)
    # a sequential performance check's points are its evidence (S / h of its CUSUMs), not the metric
    sequential = perf_key is not None and any(key_of(f) == perf_key and "cusum" in f.details for f in everything)
    estimated = estimate_importance(spec, reference.features, reference.score, reference.y_pred)
    suspects = rank_suspects(spec, reference.features, current.features, everything, series, perf_key,
                             importances(spec, estimated), onset=first, last_healthy=healthy,
                             alarm=max((f.window_end for f in trig), default=None), blamed=blamed_features(trig),
                             perf_evidence=sequential)
    joined = outcomes if outcomes is not None else current if isinstance(current, OutcomeBatch) else None
    row_times, row_features, row_versions = times, dict(current.features), model_versions
    if outcomes is not None and outcomes is not current:
        row_times = np.concatenate([times, outcomes.prediction_timestamps])
        row_features = {n: v for n in spec.features if (v := _concat(current.features.get(n),
                                                                      outcomes.features.get(n))) is not None}
        row_versions = _concat(model_versions, outcomes.model_version)
    changes: list[Change] = data_changes(spec, reference.features, reference.model_version, row_times,
                                         row_features, row_versions)
    latest = _latest_per_key(everything)
    changes += finding_changes(list(latest.values()))
    span = (first - healthy) if first is not None and healthy is not None else \
        (end - start) if start is not None and end is not None else 0.0
    changes = place_changes(changes, first, healthy, span)
    quality = _order([f for f in latest.values() if f.kind == "quality" and f.degraded])
    metric, segments = (worst_segments(spec, reference, joined) if joined is not None and len(joined)
                        else (None, []))
    trig_keys = {f.key for f in trig}
    recent_degraded = _order([f for f in latest.values() if f.degraded and f.key not in trig_keys
                              and f.kind != "quality"])
    top = [s.feature for s in suspects[:PLOTTED_SUSPECTS]]
    drift_lines = {f: series[k] for f in top for k in series if k.startswith("data_drift/") and k.endswith("/" + f)
                   and k.count("/") == 2}
    timelines: dict[str, Any] = {
        "drift": {k: [_pt(p) for p in v] for k, v in drift_lines.items()},
        "performance_key": perf_key,
        "performance": [_pt(p) for p in series.get(perf_key, [])] if perf_key else [],
        "triggering": {key_of(f): [_pt(p) for p in series.get(key_of(f), [])] for f in trig},
        "performance_windows": list((snapshot or {}).get("performance_timeline") or []),
        "estimated_and_realized": {k: [_pt(p) for p in v] for k, v in
                                   estimated_and_realized(snapshot, perf_key.split("/")[1], not sequential).items()}
                                  if perf_key else {},
        "performance_is_evidence": sequential,
    }
    notes = []
    if joined is None:
        notes.append("No joined outcomes for this window: segments and label lag are not available.")
    report = Report(
        report_id=f"{_stamp(now)}-{hashlib.sha256(f'{model_id}|{now}|{sorted(trig_keys)}'.encode()).hexdigest()[:8]}",
        model_id=model_id, model_version=model_version, created_at=now, onset=first, last_healthy=healthy,
        triggering=trig, recent_degraded=recent_degraded,
        window={"kind": "outcomes" if isinstance(current, OutcomeBatch) else "predictions", "rows": len(current),
                "start": start, "end": end},
        labels=_labels(current, joined, everything), suspects=suspects, changes=changes, quality_events=quality,
        segments=segments, segment_metric=metric, timelines=timelines, plots={}, versions=versions(), notes=notes,
        inputs=ReportInputs(spec, reference, current, outcomes,
                            dict(detector_state) if detector_state is not None else None, list(steps)))
    if with_plots:
        report.plots = _plots(report, spec, reference, current, drift_lines, series, perf_key, snapshot, trig,
                              sequential)
    report.timelines["snapshot"] = dict(snapshot) if snapshot is not None else None
    return report


def _pt(p: Point) -> dict[str, Any]:
    return {"window_end": p.window_end, "statistic": p.statistic, "threshold": p.threshold, "degraded": p.degraded}


def drift_labels(series: Mapping[str, list[Point]], features: list[str]) -> tuple[str, str]:
    """(title, y label) of the drift timeline: a sequential check's points are its evidence, CUSUM S.

    >>> drift_labels({"data_drift/cusum/age": []}, ["age"])[1], drift_labels({"data_drift/psi/age": []}, ["age"])[1]
    ('CUSUM S', 'drift statistic')
    """
    if features and all(f"data_drift/cusum/{name}" in series for name in features):
        return "drift evidence of the top suspects: CUSUM S per block (dashed: its threshold h)", "CUSUM S"
    return "drift of the top suspects (dashed: threshold)", "drift statistic"


def _plots(report: Report, spec: ModelSpec, reference: OutcomeBatch, current: PredictionBatch | OutcomeBatch,
           drift_lines: dict[str, list[Point]], series: dict[str, list[Point]], perf_key: str | None,
           snapshot: Mapping[str, Any] | None, trig: list[Finding], sequential: bool = False) -> dict[str, str]:
    # matplotlib (~40 MiB of RSS) is loaded by the first report, not by every daemon that may never write one
    from driftwarden.alerts.reports import plots as P

    out: dict[str, str] = {}
    for s in report.suspects[:PLOTTED_SUSPECTS]:
        ref, cur = reference.features.get(s.feature), current.features.get(s.feature)
        if ref is not None and cur is not None:
            out[f"distribution:{s.feature}"] = P.distribution(s.feature, ref, cur, s.type == "numeric")
    if any(drift_lines.values()):
        title, ylabel = drift_labels(series, list(drift_lines))
        out["timeline:drift"] = P.timeline(title, drift_lines, report.onset, ylabel)
    if perf_key and series.get(perf_key):
        name = perf_key.split("/")[1]
        rows = [w for w in (snapshot or {}).get("performance_timeline") or [] if isinstance(w.get(name), dict)
                and w[name].get("ci_low") is not None]
        band = ([float(w["window_end"]) for w in rows], [float(w[name]["ci_low"]) for w in rows],
                [float(w[name]["ci_high"]) for w in rows])
        if sequential:  # S / h of the leading CUSUM per verdict: evidence, not the metric
            out["timeline:performance"] = P.timeline(f"{name}: CUSUM evidence per verdict, S / h (dashed: 1, the threshold)",
                                                     {f"{name} CUSUM S / h": series[perf_key]}, report.onset, "S / h")
        else:
            out["timeline:performance"] = P.timeline(f"{name} per outcome window (dashed: bound)",
                                                     {name: series[perf_key]}, report.onset, name, band)
    lines = estimated_and_realized(snapshot, perf_key.split("/")[1], not sequential) if perf_key else {}
    if lines:
        metric = perf_key.split("/")[1] if perf_key else ""
        dashed = "the reference" if sequential else "bound"  # a sequential estimate's history holds the baseline
        out["timeline:estimated_vs_realized"] = P.timeline(f"{metric}: estimated against realized (dashed: {dashed})",
                                                           lines, report.onset, metric)
    other = {key_of(f): series[key_of(f)] for f in trig if key_of(f) != perf_key and key_of(f) in series
             and not key_of(f).startswith("data_drift/")}
    if other:
        out["timeline:triggering"] = P.timeline("triggering checks", dict(list(other.items())[:5]), report.onset,
                                                "statistic")
    if report.segments:
        out["segments"] = P.segments_chart(report.segments)
    return out


PARTIAL = ".partial"


def write_report(report: Report, directory: str | Path, now: float, base_url: str | None = None) -> ReportFiles:
    """Write the four files of ``report`` under ``directory`` (see the module doc); ``now`` stamps the files.

    ``base_url``: public prefix of the reports directory, for the link in the Markdown summary.
    The folder appears only when every file is written; on any error nothing is left behind
    and the error is raised.
    """
    model_dir = slug(report.model_id)
    parent = Path(directory) / model_dir
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / report.report_id
    staging = parent / f".{report.report_id}.{uuid.uuid4().hex[:8]}{PARTIAL}"
    staging.mkdir()
    try:
        _write_files(report, staging, model_dir, now, base_url)
        _move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle = folder / (report.report_id + SUFFIX)
    return ReportFiles(folder, folder / "report.html", folder / "report.json", folder / "summary.md", bundle)


def _write_files(report: Report, folder: Path, model_dir: str, now: float, base_url: str | None) -> None:
    bundle_name = report.report_id + SUFFIX
    html, js, md, bundle = (folder / "report.html", folder / "report.json", folder / "summary.md", folder / bundle_name)
    if report.inputs is not None:
        i = report.inputs
        snapshot = report.timelines.get("snapshot")
        write_bundle(bundle, report_id=report.report_id, model_id=report.model_id,
                     model_version=report.model_version, created_at=report.created_at, spec=i.spec,
                     reference=i.reference, current=i.current, outcomes=i.outcomes, state=i.detector_state,
                     snapshot=snapshot, triggering=report.triggering, recent=report.recent_degraded,
                     steps=i.steps)
    link = f"{base_url.rstrip('/')}/{model_dir}/{report.report_id}/report.html" if base_url else None
    html.write_text(render(report, bundle_name if report.inputs is not None else None), encoding="utf-8")
    js.write_text(json.dumps(to_json_dict(report), ensure_ascii=False, allow_nan=False, indent=1), encoding="utf-8")
    md.write_text(render_markdown(report, link), encoding="utf-8")
    for p in (html, js, md, bundle):
        if p.exists():
            os.utime(p, (now, now))


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished ``staging`` folder to ``folder``, replacing an older one of the same id."""
    try:
        staging.rename(folder)
        return
    except OSError:
        if not folder.is_dir():
            raise
    old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
    folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
