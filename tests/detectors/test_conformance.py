"""One conformance test over every registered detector: defaults, JSON state round-trip, bad params."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import detectors.categorical
import detectors.concept
import detectors.estimation
import detectors.multivariate
import detectors.numeric
import detectors.realized  # noqa: F401  (registration side effects)
from detectors.base import REGISTRY
from detectors.categorical import CategoricalDriftTest, CategoricalReference
from detectors.concept import ConceptDriftDetector
from detectors.estimation import CbpeEstimator
from detectors.multivariate import PcaDrift
from detectors.numeric import NumericDriftTest, NumericReference
from detectors.realized import RealizedTracker

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
}


def test_every_registered_detector_has_a_factory() -> None:
    assert set(REGISTRY) == set(FACTORIES)


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
