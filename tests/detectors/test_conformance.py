"""One conformance test over every registered detector: defaults, JSON state round-trip, bad params."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import pytest

import driftwarden.detectors as detectors
from driftwarden.detectors.base import REGISTRY
from driftwarden.detectors.categorical import CategoricalDriftTest, CategoricalReference
from driftwarden.detectors.concept import ConceptDriftDetector
from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.kpi import KpiMonitor
from driftwarden.detectors.multivariate import PcaDrift
from driftwarden.detectors.numeric import NumericDriftTest, NumericReference
from driftwarden.detectors.performance import PerformanceMonitor
from driftwarden.detectors.quality import QualityMonitor
from driftwarden.detectors.realized import RealizedTracker
from driftwarden.detectors.settings import KpiSettings, QualitySettings, TrafficSettings
from driftwarden.detectors.spec import FeatureSpec
from driftwarden.detectors.traffic import TrafficMonitor

for _module in pkgutil.iter_modules(detectors.__path__):  # every registration, so that none escapes the test
    importlib.import_module(f"driftwarden.detectors.{_module.name}")

RNG = np.random.default_rng(0)
NUM_REF = NumericReference(RNG.normal(size=2000))
CAT_REF = CategoricalReference(RNG.choice(["a", "b", "c"], size=2000).astype(object))
SCORE = RNG.random(2000)
Y = np.where(RNG.random(2000) < SCORE, "1", "0").astype(object)
PCA_REF = RNG.normal(size=(2000, 3))

PRED = np.where(SCORE > 0.5, "1", "0").astype(object)


def _realized(**params: Any) -> RealizedTracker:
    est = CbpeEstimator(SCORE, Y, PRED, window=500)
    return RealizedTracker(est, {"y_true": Y, "y_pred": PRED, "score": SCORE}, 500, **params)


def _feed_realized(d: RealizedTracker) -> None:
    d.add_window(0.0, 499.0, 500)
    d.observe(np.arange(200.0), Y[:200], PRED[:200], SCORE[:200])


def _restored_realized(state: dict[str, Any]) -> RealizedTracker:
    twin = _realized()
    twin.load_state(state)
    return twin


def _with_settings(settings_cls: type[msgspec.Struct], params: dict[str, Any]) -> dict[str, Any]:
    """Constructor keywords: the settings struct's fields go into ``settings``, the rest stay keywords."""
    fields = set(settings_cls.__struct_fields__)
    return {"settings": settings_cls(**{k: v for k, v in params.items() if k in fields}),
            **{k: v for k, v in params.items() if k not in fields}}


QUALITY_FEATURES = {"x": FeatureSpec("numeric", min=0.0), "c": FeatureSpec("categorical")}
QUALITY_REF = {"x": RNG.normal(size=2000), "c": RNG.choice(["a", "b"], size=2000).astype(object)}
QUALITY_WINDOW = {"x": np.array([1.0, np.nan, -2.0, 0.5] * 50), "c": np.array(["a", None, "q", "b"] * 50, dtype=object)}


def _quality(**params: Any) -> QualityMonitor:
    return QualityMonitor(QUALITY_FEATURES, QUALITY_REF, **_with_settings(QualitySettings, params))


def _feed_quality(d: QualityMonitor) -> None:
    d.add_counters({"x": 4}, {"c": 2}, {"extra": 30, "debug": 1})
    d.evaluate(QUALITY_WINDOW, 200, 0.0)  # flags "extra": the next window reports it even at 0
    d.add_counters({"c": 1}, {}, {"debug": 9})


def _restored_quality(state: dict[str, Any]) -> QualityMonitor:
    twin = _quality()
    twin.load_state(state)
    return twin


def _feed_traffic(d: TrafficMonitor) -> None:
    d.observe_predictions(np.arange(0.0, 3000.0, 2.0))
    d.tick(1500.0)
    d.observe_predictions(np.arange(1000.0, 2000.0, 5.0))  # partly late


def _restored_traffic(state: dict[str, Any]) -> TrafficMonitor:
    twin = TrafficMonitor()
    twin.load_state(state)
    return twin


KPIS = [KpiSettings("revenue"), KpiSettings("basket", field="revenue", aggregate="sum", direction="both"),
        KpiSettings("conversion", aggregate="rate")]
KPI_REF = {"revenue": RNG.normal(10, 2, 2000), "conversion": (RNG.random(2000) < 0.3).astype(float)}
KPI_WINDOW = {"revenue": np.where(np.arange(400) % 7 == 0, np.nan, np.linspace(5, 12, 400)),
              "conversion": (np.arange(400) % 4 == 0).astype(float)}
PERF_REF = {"y_true": Y, "y_pred": PRED, "score": SCORE}


# name -> (factory(**params), feed(detector), restore(detector, state))
FACTORIES: dict[str, tuple[Callable[..., Any], Callable[[Any], None], Callable[[Any, dict], Any]]] = {
    "numeric_drift": (lambda **p: NumericDriftTest(NUM_REF, **p),
                      lambda d: d.update(RNG.normal(size=300)),
                      lambda d, s: NumericDriftTest.from_state(NUM_REF, s)),
    "categorical_drift": (lambda **p: CategoricalDriftTest(CAT_REF, **p),
                          lambda d: d.update(RNG.choice(["a", "z"], size=300).astype(object)),
                          lambda d, s: CategoricalDriftTest.from_state(CAT_REF, s)),
    "concept": (lambda **p: ConceptDriftDetector(**p),
                lambda d: d.update((RNG.random(500) < 0.3).astype(float)),
                lambda d, s: ConceptDriftDetector.from_state(s)),
    "multivariate_pca": (lambda **p: PcaDrift(PCA_REF, **p), lambda d: None,
                         lambda d, s: PcaDrift(PCA_REF)),
    "cbpe": (lambda **p: CbpeEstimator(SCORE, Y, np.where(SCORE > 0.5, "1", "0").astype(object), **p),
             lambda d: None, lambda d, s: CbpeEstimator(SCORE, Y, np.where(SCORE > 0.5, "1", "0").astype(object))),
    "cbpe_realized": (lambda **p: _realized(**p), _feed_realized, lambda d, s: _restored_realized(s)),
    "quality": (_quality, _feed_quality, lambda d, s: _restored_quality(s)),
    "traffic": (lambda **p: TrafficMonitor(**_with_settings(TrafficSettings, p)), _feed_traffic,
                lambda d, s: _restored_traffic(s)),
    "kpi": (lambda **p: KpiMonitor(KPIS, KPI_REF, **{"window": 500, **p}), lambda d: None,
            lambda d, s: KpiMonitor(KPIS, KPI_REF, 500)),
    "performance": (lambda **p: PerformanceMonitor("binary", PERF_REF, **{"window": 500, **p}), lambda d: None,
                    lambda d, s: PerformanceMonitor("binary", PERF_REF, 500)),
}
# name -> what the detector answers to the same next input (restored twins must answer the same)
def _next_numeric(d: Any) -> Any:
    d.update(np.linspace(-3, 3, 200))
    return d.result()


NEXT: dict[str, Callable[[Any], Any]] = {
    "numeric_drift": _next_numeric,
    "categorical_drift": lambda d: (d.update(np.array(["a", "b", "q"] * 50, dtype=object)), d.result())[1],
    "concept": lambda d: d.update((np.arange(3000) % 3 == 0).astype(float)),
    "multivariate_pca": lambda d: d.evaluate(np.ones((100, 3)), 0.0).statistic,
    "cbpe": lambda d: [f.statistic for f in d.evaluate(SCORE[:500], PRED[:500], 0.0)],
    "cbpe_realized": lambda d: [(f.detector, f.statistic, f.degraded)
                                for f in d.observe(np.arange(200.0, 500.0), Y[200:500], PRED[200:500], SCORE[200:500])],
    "quality": lambda d: (d.add_counters({"x": 1}, {"x": 3}, {}),
                          [f.to_dict() for f in d.evaluate(QUALITY_WINDOW, 200, 1.0)])[1],
    "traffic": lambda d: (d.observe_predictions(np.arange(2000.0, 6000.0, 3.0)),
                          [f.to_dict() for f in d.tick(4500.0) + d.tick(9000.0)])[1],
    "kpi": lambda d: [f.to_dict() for f in d.evaluate(KPI_WINDOW, 0.0)],
    "performance": lambda d: [f.to_dict() for f in d.evaluate({"y_true": Y[:500], "y_pred": PRED[:500],
                                                                "score": SCORE[:500]}, 0.0)],
}


def test_every_registered_detector_has_a_factory() -> None:
    assert set(REGISTRY) == set(FACTORIES) == set(NEXT)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_conformance(name: str) -> None:
    cls = REGISTRY[name]
    make, feed, restore = FACTORIES[name]
    assert cls.__doc__ and ">>>" in (cls.__doc__ + (detectors_module_doc(cls) or ""))
    det = make()  # defaults work
    feed(det)
    state = det.state()
    text = json.dumps(state, allow_nan=False)  # strict JSON
    twin = restore(det, json.loads(text))
    assert twin.state() == state
    assert _same(NEXT[name](twin), NEXT[name](det))  # identical next results after the round trip
    for param, (lo, hi) in cls.param_ranges.items():
        bad = lo - 1 if lo > -np.inf else hi + 1
        with pytest.raises(ValueError, match=rf"{param}.*allowed range"):
            make(**{param: bad})


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def detectors_module_doc(cls: type) -> str | None:
    import sys

    return sys.modules[cls.__module__].__doc__
