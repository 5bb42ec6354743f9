"""A categorical column with a long tail (zip codes, merchant ids): its reference cannot hold
every category, so a stream that never changed brings unseen values in every block.

The reference's Good-Turing share of unseen values is what the drift test and the quality check
expect; a column of a few categories has share 0 and behaves as before.
"""

from __future__ import annotations

import numpy as np

from driftwarden.detectors.batch import PredictionBatch
from driftwarden.detectors.binning import unseen_share
from driftwarden.detectors.categorical import CategoricalReference
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.quality import unseen_limit
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec
from tests.detectors.conftest import make_outcomes

CATEGORIES = 20_000
ZIPF = 1.0 / np.arange(1, CATEGORIES + 1) ** 1.05
ZIPF /= ZIPF.sum()
NAMES = np.array([f"m{i:05d}" for i in range(CATEGORIES)], dtype=object)


def merchants(rng: np.random.Generator, n: int) -> np.ndarray:
    return NAMES[rng.choice(CATEGORIES, n, p=ZIPF)]


def test_good_turing_share_estimates_the_mass_the_reference_missed() -> None:
    # the true unseen mass of a sample is known exactly: the probability of the categories it lacks
    for seed in range(5):
        rng = np.random.default_rng(seed)
        idx = rng.choice(CATEGORIES, 50_000, p=ZIPF)
        truth = float(ZIPF[np.setdiff1d(np.arange(CATEGORIES), idx)].sum())
        estimate = unseen_share(NAMES[idx])
        assert 0.05 < truth < 0.2  # the column is what the test is about: a tenth of its values unseen
        assert abs(estimate - truth) < 0.01, (seed, estimate, truth)


def test_a_few_categories_have_no_unseen_share_so_a_new_one_counts_in_full() -> None:
    ref = CategoricalReference(np.array(["a", "b", "c"] * 100, dtype=object))
    assert ref.unseen_share == 0.0
    assert ref.expected.tolist() == ref.counts.tolist()
    assert unseen_limit(0.0, 0.01, 5000, 300) == 0.01


def _spec() -> ModelSpec:
    return ModelSpec(task="binary", features={"age": FeatureSpec("numeric"), "merchant": FeatureSpec("categorical")},
                     monitoring=MonitorSettings(window_size=5000))


def _feed(mon: ModelMonitor, rng: np.random.Generator, n: int, t0: float, new_share: float = 0.0) -> list[str]:
    fired = []
    for start in range(0, n, 500):
        o = make_outcomes(rng, 500, t0=t0 + start)
        merchant = merchants(rng, 500)
        merchant = np.where(rng.random(500) < new_share, "brand-new-merchant", merchant).astype(object)
        found = mon.observe_predictions(PredictionBatch(o.prediction_timestamps, {"age": o.features["age"],
                                                                                   "merchant": merchant},
                                                        o.y_pred, o.score))
        fired += [f"{start}:{f.kind}/{f.detector}/{f.subject}" for f in found if f.degraded]
    return fired


def _monitor(rng: np.random.Generator, rows: int) -> ModelMonitor:
    ref = make_outcomes(rng, rows)
    ref.features = {"age": ref.features["age"], "merchant": merchants(rng, rows)}
    return ModelMonitor("m", _spec(), ref)


def test_a_long_tailed_column_that_never_changed_raises_nothing() -> None:
    # before the unseen share, its drift CUSUM and unseen-rate check fired from the first block on
    rng = np.random.default_rng(11)
    mon = _monitor(rng, 50_000)
    fired = _feed(mon, rng, 60_000, t0=1e6)
    assert fired == []


def test_a_new_category_in_a_long_tailed_column_is_still_caught() -> None:
    rng = np.random.default_rng(12)
    mon = _monitor(rng, 50_000)
    assert _feed(mon, rng, 10_000, t0=1e6) == []
    # a fifth of the traffic from one merchant the reference never saw: the unseen rate doubles
    fired = _feed(mon, rng, 10_000, t0=2e6, new_share=0.2)
    assert any("merchant" in f for f in fired), fired
