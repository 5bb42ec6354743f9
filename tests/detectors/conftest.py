from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import pytest

from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec


def make_spec(window: int = 1000, **settings: object) -> ModelSpec:
    return ModelSpec(
        task="binary",
        features={"age": FeatureSpec("numeric", min=0.0), "income": FeatureSpec("numeric"),
                  "plan": FeatureSpec("categorical")},
        monitoring=MonitorSettings(window_size=window, **settings),  # type: ignore[arg-type]
    )


def make_outcomes(rng: np.random.Generator, n: int, shift: float = 0.0, t0: float = 0.0) -> OutcomeBatch:
    age = rng.normal(40 + 10 * shift, 10, n)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.3, 0.1]).astype(object)
    logit = (age - 40) / 10 + rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-logit))
    y_true = np.where(rng.random(n) < score, "1", "0").astype(object)
    y_pred = np.where(score > 0.5, "1", "0").astype(object)
    t = t0 + np.arange(n, dtype=np.float64)
    return OutcomeBatch(timestamps=t + 100.0, prediction_timestamps=t, y_true=y_true, y_pred=y_pred,
                        score=score, features={"age": age, "income": income, "plan": plan},
                        kpis={"revenue": rng.normal(10, 2, n)})


def as_predictions(o: OutcomeBatch) -> PredictionBatch:
    return PredictionBatch(timestamps=o.prediction_timestamps, features=o.features, prediction=o.y_pred,
                           score=o.score)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="module", params=["numba", "numpy"])
def ks_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with the compiled KS kernel and with its numpy fallback (the dev extra installs numba)."""
    from driftwarden.detectors import ks_exact

    previous = ks_exact.use_backend(request.param)
    try:
        yield request.param
    finally:
        ks_exact.use_backend(previous)


def feed_predictions(mon: ModelMonitor, data: OutcomeBatch, cuts: Iterable[int] = ()) -> list[Finding]:
    """``data``'s predictions through ``mon`` in the batches ``cuts`` make (streaming == batch tests)."""
    bounds = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    out: list[Finding] = []
    for a, b in itertools.pairwise(bounds):
        out += mon.observe_predictions(PredictionBatch(
            data.prediction_timestamps[a:b], {k: v[a:b] for k, v in data.features.items()}, data.y_pred[a:b],
            None if data.score is None else data.score[a:b]))
    return out
