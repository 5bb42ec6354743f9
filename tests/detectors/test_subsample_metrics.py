"""Metrics of many reference blocks at once (detectors/subsample_metrics.py) equal the one-block functions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.base import run_bounds
from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.metric_cusum import block_spread, draw_rows
from driftwarden.detectors.metrics import METRICS
from driftwarden.detectors.subsample_metrics import binary_metrics_many, cbpe_many, row_run_bounds

LABELS = np.array(["0", "1"], dtype=object)
REALIZED = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def _reference(seed: int, n: int, levels: int) -> dict[str, np.ndarray]:
    """A binary classifier's labelled rows; ``levels`` distinct scores (few: many ties)."""
    rng = np.random.default_rng(seed)
    score = np.round(rng.beta(2, 3, n) * levels) / levels
    y = rng.random(n) < score
    pred = rng.random(n) < np.clip(score + 0.1, 0, 1)
    return {"y_true": LABELS[y.astype(int)], "y_pred": LABELS[pred.astype(int)], "score": score}


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 12), levels=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_row_run_bounds_are_run_bounds_of_each_row(rows: int, cols: int, levels: int, seed: int) -> None:
    w = np.sort(np.random.default_rng(seed).integers(0, levels, (rows, cols)).astype(np.float64), axis=1)
    at_or_below, below = row_run_bounds(w)
    for i in range(rows):
        a, b = run_bounds(w[i])
        assert at_or_below[i].tolist() == a.tolist() and below[i].tolist() == b.tolist()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), levels=st.sampled_from([2, 7, 1000]), block=st.integers(5, 60))
def test_realized_metrics_of_many_blocks_are_exactly_the_one_block_values(seed: int, levels: int, block: int) -> None:
    ref = _reference(seed, 4 * block + 3, levels)
    rows = draw_rows(len(ref["score"]), block, draws=30, seed=seed % 1000)
    many = binary_metrics_many(REALIZED, "1", ref)
    assert many is not None
    got = many(ref, rows)
    for m in REALIZED:
        one = [METRICS[m].fn(ref["y_true"][r], ref["y_pred"][r], ref["score"][r], "1") for r in rows]
        np.testing.assert_array_equal(got[m], np.array(one), err_msg=m)  # NaN where one-class: equal too


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), levels=st.sampled_from([3, 20, 1000]), bins=st.integers(2, 30))
def test_cbpe_estimates_of_many_blocks_are_the_one_block_estimates(seed: int, levels: int, bins: int) -> None:
    ref = _reference(seed, 3000, levels)
    est = CbpeEstimator(ref["score"], ref["y_true"], ref["y_pred"], "1", bins=bins, window=500)
    scored = {"score": ref["score"], "prediction": ref["y_pred"]}
    rows = draw_rows(3000, 200, draws=20, seed=1)
    many = cbpe_many(est, scored)
    assert many is not None
    got = many(scored, rows)
    for i, r in enumerate(rows):
        one = est.expected(ref["score"][r], ref["y_pred"][r])
        for m in ("accuracy", "f1", "roc_auc"):
            np.testing.assert_allclose(got[m][i], one[m], rtol=1e-12, atol=1e-15, err_msg=m)


def test_block_spread_from_many_blocks_is_the_looped_one() -> None:
    """Same draws, same values: the spread that sets a metric CUSUM's scale does not move."""
    ref = _reference(3, 20_000, 1000)

    def realized(c: dict[str, np.ndarray]) -> dict[str, float]:
        return {m: METRICS[m].fn(c["y_true"], c["y_pred"], c["score"], "1") for m in ("f1", "roc_auc")}

    looped = block_spread(realized, ref, 500)
    assert block_spread(realized, ref, 500, many=binary_metrics_many(["f1", "roc_auc"], "1", ref)) == looped
    est = CbpeEstimator(ref["score"], ref["y_true"], ref["y_pred"], "1")
    scored = {"score": ref["score"], "prediction": ref["y_pred"]}
    expected = block_spread(lambda c: est.expected(c["score"], c["prediction"]), scored, 500)
    fast = block_spread(lambda c: est.expected(c["score"], c["prediction"]), scored, 500, many=cbpe_many(est, scored))
    for m, (value, std) in expected.items():
        assert fast[m][0] == value and std is not None
        assert abs(fast[m][1] / std - 1) < 1e-10  # type: ignore[operator]


def test_missing_scores_or_unknown_metrics_fall_back_to_the_loop() -> None:
    ref = _reference(4, 1000, 10)
    assert binary_metrics_many(["log_loss"], "1", ref) is None
    holes = {**ref, "score": np.where(np.arange(1000) % 7 == 0, np.nan, ref["score"])}
    assert binary_metrics_many(["roc_auc"], "1", holes) is None
    assert binary_metrics_many(["f1"], "1", holes) is not None  # F1 needs no score
    est = CbpeEstimator(ref["score"], ref["y_true"], ref["y_pred"], "1")
    assert cbpe_many(est, {"score": holes["score"], "prediction": ref["y_pred"]}) is None
