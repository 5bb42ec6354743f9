"""Synthetic churn traffic with known faults (daemon/simulate.py), streamed through a real ModelMonitor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from driftwarden.daemon.reference import load_reference
from driftwarden.daemon.simulate import FEATURES, Scenario, generate, write_reference
from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

WINDOW = 2000
LAG = 25.0


def churn_spec() -> ModelSpec:
    return ModelSpec(task="binary", features={n: FeatureSpec(t) for n, t in FEATURES.items()},  # type: ignore[arg-type]
                     monitoring=MonitorSettings(window_size=WINDOW))


def objects(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [None if v is None else str(v) for v in values]
    return out


def outcome_rows(cols: dict[str, np.ndarray], versions: np.ndarray | None = None) -> OutcomeBatch:
    features = {n: (objects(cols[n]) if t == "categorical" else cols[n].astype(np.float64))
                for n, t in FEATURES.items()}
    return OutcomeBatch(timestamps=cols["timestamp"] + LAG, prediction_timestamps=cols["timestamp"].copy(),
                        y_true=objects(cols["outcome"]), y_pred=objects(cols["prediction"]),
                        score=cols["score"].astype(np.float64), features=features, model_version=versions)


def prediction_rows(rows: OutcomeBatch) -> PredictionBatch:
    return PredictionBatch(timestamps=rows.prediction_timestamps, features=rows.features, prediction=rows.y_pred,
                           score=rows.score, model_version=rows.model_version)


def take(rows: OutcomeBatch, lo: int, hi: int) -> OutcomeBatch:
    return OutcomeBatch(rows.timestamps[lo:hi], rows.prediction_timestamps[lo:hi], rows.y_true[lo:hi],
                        rows.y_pred[lo:hi], None if rows.score is None else rows.score[lo:hi],
                        {k: v[lo:hi] for k, v in rows.features.items()}, {k: v[lo:hi] for k, v in rows.kpis.items()},
                        None if rows.model_version is None else rows.model_version[lo:hi])


@dataclass
class Run:
    """A monitor fed window by window; the last closed windows' rows are kept (they are what was evaluated)."""

    spec: ModelSpec
    reference: OutcomeBatch
    monitor: ModelMonitor
    findings: list[Finding] = field(default_factory=list)
    last: list[Finding] = field(default_factory=list)
    window: PredictionBatch | None = None
    outcomes: OutcomeBatch | None = None
    rows: OutcomeBatch | None = None

    @property
    def triggering(self) -> list[Finding]:
        return [f for f in self.last if f.degraded]


def stream(spec: ModelSpec, reference: OutcomeBatch, rows: OutcomeBatch) -> Run:
    run = Run(spec, reference, ModelMonitor("churn", spec, reference), rows=rows)
    for lo in range(0, len(rows), WINDOW):
        part = take(rows, lo, lo + WINDOW)
        found = run.monitor.observe_predictions(prediction_rows(part)) + run.monitor.observe_outcomes(part)
        run.findings += found
        run.last, run.window, run.outcomes = found, prediction_rows(part), part
    return run


@pytest.fixture(scope="session")
def reference_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reference(tmp_path_factory.mktemp("ref") / "reference.parquet", Scenario(), rows=10_000)


@pytest.fixture(scope="session")
def reference(reference_path: Path) -> OutcomeBatch:
    return load_reference(reference_path, churn_spec())


@pytest.fixture(scope="session")
def traffic() -> Callable[..., OutcomeBatch]:
    def make(windows: int = 5, versions: np.ndarray | None = None, **faults: int) -> OutcomeBatch:
        cols = generate(Scenario(**faults), 0, windows * WINDOW)  # type: ignore[arg-type]
        return outcome_rows(cols, versions)

    return make
