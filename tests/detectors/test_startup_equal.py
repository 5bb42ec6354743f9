"""Start-up computations made cheaper give exactly what the code before them gave (old versions copied here)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.binning import NumericBinning, sorted_quantiles
from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.metric_cusum import draw_rows
from driftwarden.detectors.multivariate import PcaDrift, _correlation
from driftwarden.detectors.numeric import NumericReference
from driftwarden.detectors.performance import MIN_REFERENCE_ROWS, Baseline, PerformanceMonitor
from driftwarden.detectors.subsample_metrics import ScoreOrder, binary_metrics_many, cbpe_many, row_run_bounds

SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0]


def _column(seed: int, n: int, levels: int, specials: float) -> np.ndarray:
    """``n`` values of ``levels`` distinct numbers (few: ties), a share ``specials`` of NaN, +-inf, zeros."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n) * levels) / max(levels, 1)
    pick = rng.random(n) < specials
    x[pick] = rng.choice(SPECIALS, int(pick.sum()))
    return x


def _old_numeric_binning(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """NumericBinning.from_reference(values, bins) and its counts(values), as NumericReference did."""
    b = NumericBinning.from_reference(values, bins)
    return b.edges, b.counts(values)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), levels=st.sampled_from([1, 3, 10, 1000]),
       specials=st.sampled_from([0.0, 0.01, 0.5, 1.0]), bins=st.integers(2, 20),
       sample=st.sampled_from([10, 2000]))
def test_numeric_reference_bins_and_counts_from_the_one_sort_equal_the_old(
        seed: int, n: int, levels: int, specials: float, bins: int, sample: int) -> None:
    values = _column(seed, n, levels, specials)
    with np.errstate(invalid="ignore"):  # the std of a column with infinities (as before)
        ref = NumericReference(values, bins, sample)
    edges, counts = _old_numeric_binning(values, bins)
    assert ref.binning.edges.tobytes() == edges.tobytes()  # bit for bit (signed zeros too)
    assert ref.counts.dtype == counts.dtype and ref.counts.tolist() == counts.tolist()


def _old_baseline(fn: Any, reference: dict[str, np.ndarray], window: int) -> tuple[float, float | None]:
    """performance.Baseline before the shared draws: (value, std)."""
    n = len(next(iter(reference.values())))
    value = fn(reference) if n else math.nan
    chunk = min(window, n // 10)
    std = None
    if n >= MIN_REFERENCE_ROWS and chunk >= 2:
        rng = np.random.default_rng(0)
        vals = []
        for _ in range(Baseline.BOOTSTRAP):
            idx = np.sort(rng.choice(n, chunk, replace=False))
            vals.append(fn({k: v[idx] for k, v in reference.items()}))
        finite = [v for v in vals if math.isfinite(v)]
        if len(finite) >= 2:
            std = float(np.std(finite, ddof=1)) / math.sqrt(max(1.0 - chunk / n, 1e-9))
    return value, std


LABELS = np.array(["0", "1"], dtype=object)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), levels=st.sampled_from([2, 7, 1000]),
       window=st.sampled_from([5, 100, 1000]), nan_score=st.booleans(),
       metrics=st.sampled_from([["f1", "roc_auc"], ["accuracy", "precision", "recall", "f1", "roc_auc"],
                                ["f1", "brier"], ["roc_auc"]]))
def test_performance_baselines_of_all_draws_at_once_equal_the_old_loop(
        seed: int, n: int, levels: int, window: int, nan_score: bool, metrics: list[str]) -> None:
    rng = np.random.default_rng(seed)
    score = np.round(rng.beta(2, 3, n) * levels) / levels
    if nan_score and n:
        score[rng.integers(0, n)] = np.nan
    y, pred = rng.random(n) < np.nan_to_num(score), rng.random(n) < 0.5
    ref = {"y_true": LABELS[y.astype(int)], "y_pred": LABELS[pred.astype(int)], "score": score}
    pm = PerformanceMonitor("binary", ref, window, metrics)
    for m in pm.metrics:
        old = _old_baseline(lambda c, m=m: m.fn(c["y_true"], c["y_pred"], c["score"], "1"), ref, window)
        new = pm.baselines[m.name]
        assert (new.value, new.std) == old or (math.isnan(old[0]) and math.isnan(new.value) and new.std == old[1])


def _old_row_run_bounds(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """subsample_metrics.row_run_bounds before the run-start version."""
    rows, cols = w.shape
    flat = np.arange(w.size).reshape(w.shape)
    new = np.ones(w.shape, dtype=bool)
    new[:, 1:] = w[:, 1:] != w[:, :-1]
    first = np.maximum.accumulate(np.where(new, flat, 0).ravel()).reshape(w.shape)
    last = np.ones(w.shape, dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, flat + 1, w.size).ravel()[::-1])[::-1].reshape(w.shape)
    offset = (np.arange(rows) * cols)[:, None]
    return end - offset, first - offset


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 40), levels=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_row_run_bounds_equal_the_old(rows: int, cols: int, levels: int, seed: int) -> None:
    w = np.sort(np.random.default_rng(seed).integers(0, levels, (rows, cols)).astype(np.float64), axis=1)
    for new, old in zip(row_run_bounds(w), _old_row_run_bounds(w), strict=True):
        assert new.tolist() == old.tolist()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), levels=st.sampled_from([3, 20, 1000]), block=st.integers(5, 80))
def test_one_score_order_shared_by_realized_and_cbpe_gives_what_each_alone_gives(
        seed: int, levels: int, block: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4 * block + 7
    score = np.round(rng.beta(2, 3, n) * levels) / levels
    ref = {"y_true": LABELS[(rng.random(n) < score).astype(int)],
           "y_pred": LABELS[(rng.random(n) < 0.5).astype(int)], "score": score}
    scored = {"score": score, "prediction": ref["y_pred"]}
    est = CbpeEstimator(score, ref["y_true"], ref["y_pred"], "1", window=block)
    rows = draw_rows(n, block, draws=30, seed=seed % 1000)
    order = ScoreOrder(score)
    realized = ["f1", "roc_auc"]
    for shared, alone in ((binary_metrics_many(realized, "1", ref, order), binary_metrics_many(realized, "1", ref)),
                          (cbpe_many(est, scored, order), cbpe_many(est, scored))):
        assert shared is not None and alone is not None
        got, want = shared(ref, rows), alone(ref, rows)
        for m in want:
            assert got[m].tobytes() == want[m].tobytes(), m
    assert ScoreOrder.for_score(order, score.copy()) is not order  # another array: its own order


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.sampled_from([5, 39, 40, 501, 3000]), cols=st.integers(2, 8),
       missing=st.sampled_from([0.0, 0.05]))
def test_pca_reference_statistics_from_one_residual_pass_equal_the_methods(
        seed: int, rows: int, cols: int, missing: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)) @ rng.normal(size=(cols, cols))
    x[rng.random(x.shape) < missing] = np.nan
    pca = PcaDrift(x, window=500)
    held_out = x[1::2] if rows >= 40 else x
    errors = pca.row_errors(held_out)  # what __init__ called before (unchanged methods)
    assert pca.feature_errors.tobytes() == pca.feature_contributions(held_out).tobytes()
    assert pca.correlation.tobytes() == _correlation(pca._standardize(held_out)).tobytes()
    assert pca.baseline.value == float(errors.mean()) and pca.baseline.std == float(errors.std(ddof=1))
    whole = errors[~np.isnan(held_out).any(axis=1)]
    if whole.size >= 2:
        assert pca.complete_baseline.value == float(whole.mean())
        assert pca.complete_baseline.std == float(whole.std(ddof=1))


def _old_cbpe_many(est: CbpeEstimator, reference: dict[str, np.ndarray]) -> Any:
    """subsample_metrics.cbpe_many before the shared score order and the calibration of each row once."""
    from driftwarden.detectors.subsample_metrics import NAN, SortedBlocks, _ratio

    score = reference["score"]
    predicted_all = reference["prediction"] == est.positive

    def many(_: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        by_score = SortedBlocks(score).rows(rows)
        ordered = score[by_score]
        p = est.calibrate(ordered)
        pred = predicted_all[by_score]
        tp, fp = np.where(pred, p, 0.0).sum(axis=1), np.where(pred, 1 - p, 0.0).sum(axis=1)
        fn, tn = np.where(pred, 0.0, p).sum(axis=1), np.where(pred, 0.0, 1 - p).sum(axis=1)
        q = 1.0 - p
        cq = np.zeros((q.shape[0], q.shape[1] + 1))
        np.cumsum(q, axis=1, out=cq[:, 1:])
        right, left = _old_row_run_bounds(ordered)
        below = np.take_along_axis(cq, left, axis=1)
        ties = np.take_along_axis(cq, right, axis=1) - below - q
        num = np.sum(p * (below + 0.5 * ties), axis=1)
        den = p.sum(axis=1) * q.sum(axis=1) - np.sum(p * q, axis=1)
        return {"accuracy": (tp + tn) / rows.shape[1], "f1": _ratio(2 * tp, 2 * tp + fp + fn, NAN),
                "roc_auc": _ratio(num, den, NAN)}

    return many


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), levels=st.sampled_from([3, 20, 1000]), block=st.integers(5, 80),
       bins=st.integers(2, 30))
def test_cbpe_many_equals_the_old(seed: int, levels: int, block: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4 * block + 7
    score = np.round(rng.beta(2, 3, n) * levels) / levels
    y_true, y_pred = LABELS[(rng.random(n) < score).astype(int)], LABELS[(rng.random(n) < 0.5).astype(int)]
    scored = {"score": score, "prediction": y_pred}
    est = CbpeEstimator(score, y_true, y_pred, "1", bins=bins, window=block)
    rows = draw_rows(n, block, draws=30, seed=seed % 1000)
    new = cbpe_many(est, scored)
    assert new is not None
    got, want = new(scored, rows), _old_cbpe_many(est, scored)(scored, rows)
    for m in want:
        assert got[m].tobytes() == want[m].tobytes(), m


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=60),
       bins=st.integers(2, 40), extra=st.lists(st.floats(0.0, 1.0), max_size=5))
def test_sorted_quantiles_are_numpys(values: list[float], bins: int, extra: list[float]) -> None:
    a = np.sort(np.array(values)) + 0.0  # no -0.0: such columns bin as before (NumericReference)
    q = np.concatenate([np.arange(1, bins) / bins, extra, [0.0, 1.0]])
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: numpy overflows alike
        want = np.quantile(a, q)
        got = sorted_quantiles(a, q)
    assert got.tobytes() == want.tobytes()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20_000), levels=st.sampled_from([1, 5, 100, 10**6]),
       bins=st.integers(2, 20))
def test_sorted_quantiles_of_reference_sized_columns_are_numpys(seed: int, n: int, levels: int, bins: int) -> None:
    a = np.sort(_column(seed, n, levels, 0.0)) + 0.0  # no -0.0: such columns bin as before (NumericReference)
    q = np.arange(1, bins) / bins
    assert sorted_quantiles(a, q).tobytes() == np.quantile(a, q).tobytes()
