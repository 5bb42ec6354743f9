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
import detectors.numeric  # noqa: F401  (registration side effects)
from detectors.base import REGISTRY
from detectors.categorical import CategoricalDriftTest, CategoricalReference
from detectors.concept import ConceptDriftDetector
from detectors.estimation import CbpeEstimator
from detectors.multivariate import PcaDrift
from detectors.numeric import NumericDriftTest, NumericReference

RNG = np.random.default_rng(0)
NUM_REF = NumericReference(RNG.normal(size=2000))
CAT_REF = CategoricalReference(RNG.choice(["a", "b", "c"], size=2000).astype(object))
SCORE = RNG.random(2000)
Y = np.where(RNG.random(2000) < SCORE, "1", "0").astype(object)

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
    "multivariate_pca": (lambda **p: PcaDrift(RNG.normal(size=(2000, 3)), **p), lambda d: None,
                         lambda d, s: PcaDrift(RNG.normal(size=(2000, 3)))),
    "cbpe": (lambda **p: CbpeEstimator(SCORE, Y, np.where(SCORE > 0.5, "1", "0").astype(object), **p),
             lambda d: None, lambda d, s: CbpeEstimator(SCORE, Y, np.where(SCORE > 0.5, "1", "0").astype(object))),
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
    for param, (lo, hi) in cls.param_ranges.items():
        bad = lo - 1 if lo > -np.inf else hi + 1
        with pytest.raises(ValueError, match=rf"{param}.*allowed range"):
            make(**{param: bad})


def detectors_module_doc(cls: type) -> str | None:
    import sys

    return sys.modules[cls.__module__].__doc__
