"""The data of one root-cause report: what fired, suspects, changes, segments, plots.

Everything here is plain data. :func:`to_json_dict` turns a :class:`Report` into
JSON-safe builtins (non-finite floats become ``null``); the HTML, Markdown and
JSON renderings all read the same object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.replay_steps import ReplayStep
from driftwarden.detectors.spec import ModelSpec

REPORT_FORMAT = 1


@dataclass(slots=True)
class Suspect:
    """A feature ranked by drift score x importance."""

    feature: str
    type: str
    rank_score: float  # drift_score * importance
    drift_score: float  # statistic / threshold (1.0 = at the alert threshold)
    drift_metric: str
    drift_statistic: float
    drift_threshold: float
    drift_p_value: float | None
    drift_degraded: bool
    drift_source: str  # "finding" (the monitor's) or "recomputed" (PSI on the report's window)
    importance: float
    importance_source: str  # "config" or "estimated"
    drift_performance_correlation: float | None  # Pearson r over recent windows
    correlation_windows: int
    reference_missing_rate: float
    current_missing_rate: float
    new_categories: list[str] = field(default_factory=list)
    drift_onset: float | None = None  # first window of the feature's current drift run (its series)
    onset_fit: str = "unknown"  # "fits" the onset, "before" it (the triggering checks held), "blamed" by a trigger, "unknown"


@dataclass(slots=True)
class Change:
    """Something that changed near the onset (version, traffic, category, missing feature, quality)."""

    kind: str
    subject: str
    time: float | None
    offset_seconds: float | None  # time - onset
    lined_up: bool
    summary: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Segment:
    """A slice of joined outcomes and its metric against the same slice of the reference."""

    features: list[str]
    values: list[str]
    metric: str
    n: int
    value: float
    ci_low: float
    ci_high: float
    reference_n: int
    reference_value: float
    change: float  # value - reference_value (negative = worse for accuracy)
    worse_by_at_least: float  # conservative drop: the CI's bound nearest the reference

    @property
    def label(self) -> str:
        return " & ".join(_condition(f, v) for f, v in zip(self.features, self.values, strict=True))


def _condition(feature: str, value: str) -> str:
    """``plan=pro``; numeric bins read ``age <= 30``, ``age > 60``, ``age in (30, 45]``."""
    if value.startswith(("<= ", "> ")):
        return f"{feature} {value}"
    if value.startswith("(") and value.endswith("]") and ", " in value:
        return f"{feature} in {value}"
    return f"{feature}={value}"


@dataclass(slots=True)
class ReportInputs:
    """The data a report was computed from; goes into the replay bundle, not into the JSON."""

    spec: ModelSpec
    reference: OutcomeBatch
    current: PredictionBatch | OutcomeBatch
    outcomes: OutcomeBatch | None
    detector_state: dict[str, Any] | None
    steps: Sequence[ReplayStep] = ()  # the last degraded blocks and the state before each (replay)


@dataclass(slots=True)
class Report:
    report_id: str
    model_id: str
    model_version: str | None
    created_at: float
    onset: float | None
    last_healthy: float | None
    triggering: list[Finding]
    recent_degraded: list[Finding]
    window: dict[str, Any]
    labels: dict[str, Any]
    suspects: list[Suspect]
    changes: list[Change]
    quality_events: list[Finding]
    segments: list[Segment]
    segment_metric: str | None
    timelines: dict[str, Any]
    plots: dict[str, str]  # name -> data: URI (inline PNG)
    versions: dict[str, str]
    notes: list[str] = field(default_factory=list)
    inputs: ReportInputs | None = None

    @property
    def headline(self) -> str:
        if not self.triggering:
            return f"on-demand report for {self.model_id}"
        worst = self.triggering[0]
        return worst.summary or f"{worst.kind} {worst.detector} {worst.subject}"


def clean(value: Any) -> Any:
    """JSON-safe builtins: dataclasses and Findings as dicts, numpy scalars unwrapped, NaN/inf as None."""
    if isinstance(value, Finding):
        return clean(value.to_dict())
    if isinstance(value, ReportInputs):
        return None
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: clean(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return clean(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def to_json_dict(report: Report) -> dict[str, Any]:
    """Every number of the report (plots excluded: they are pictures of these numbers)."""
    out = {f.name: clean(getattr(report, f.name)) for f in fields(report) if f.name not in ("inputs", "plots")}
    out["format"] = REPORT_FORMAT
    out["headline"] = report.headline
    out["plots"] = sorted(report.plots)
    return out
