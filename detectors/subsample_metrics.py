"""Performance metrics of many subsamples of one reference at once, for :func:`metric_cusum.block_spread`.

A sequential metric's spread is its standard deviation over 400 random blocks of the
reference. Computed one block at a time (a Python call per block and metric), that was
~60 % of building a model (0.4 s of 0.65 s; 7 minutes for 1,000 models). Here every
block is a row of a ``draws x block`` index matrix and each metric is one numpy
expression over the rows. The values are those of the one-block functions
(:mod:`detectors.metrics`, :meth:`CbpeEstimator.expected`): F1, precision, recall and
ROC AUC exactly (integer counts and rank sums), CBPE's estimates up to float summation
order (tested against them).

A function here returns ``None`` when it cannot compute what the one-block function
would (missing scores, a metric it does not know): the caller then loops.

>>> ref = {"y_true": np.array(["1", "0", "1", "1", "0", "1"], dtype=object),
...        "y_pred": np.array(["1", "0", "0", "1", "1", "1"], dtype=object),
...        "score": np.array([0.9, 0.2, 0.4, 0.7, 0.6, 0.8])}
>>> many = binary_metrics_many(["f1", "roc_auc"], "1", ref)
>>> values = many(ref, np.array([[0, 1, 2, 3], [1, 2, 4, 5]]))
>>> values["f1"].tolist(), values["roc_auc"].tolist()
([0.8, 0.5], [1.0, 0.75])
>>> r = [1, 2, 4, 5]; METRICS["roc_auc"].fn(ref["y_true"][r], ref["y_pred"][r], ref["score"][r], "1")
0.75
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from driftwarden.detectors.metrics import METRICS  # noqa: F401 (the doctest's reference)

if TYPE_CHECKING:  # estimation imports performance, which imports this module
    from driftwarden.detectors.estimation import CbpeEstimator

Columns = dict[str, np.ndarray]
ManyFn = Callable[[Columns, np.ndarray], dict[str, np.ndarray]]  # (columns, draws x block rows) -> values per draw
NAN = float("nan")


def row_run_bounds(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of row-sorted ``w``: :func:`base.run_bounds` of that row (counts of values <= and <).

    >>> [b.tolist() for b in row_run_bounds(np.array([[1.0, 2.0, 2.0], [5.0, 5.0, 6.0]]))]
    [[[1, 3, 3], [2, 2, 3]], [[0, 1, 1], [0, 0, 2]]]
    """
    rows, cols = w.shape
    new = np.empty(w.shape, dtype=bool)  # a run of ties starts here (every row starts one)
    new[:, 0] = True
    np.not_equal(w[:, 1:], w[:, :-1], out=new[:, 1:])
    flat = new.ravel()
    starts = np.flatnonzero(flat)  # flat positions: a row's runs never reach into another row
    ends = np.empty_like(starts)
    ends[:-1], ends[-1:] = starts[1:], w.size
    run = np.cumsum(flat) - 1  # each value's run
    offset = np.repeat(np.arange(rows) * cols, cols)
    return (ends[run] - offset).reshape(w.shape), (starts[run] - offset).reshape(w.shape)


class SortedBlocks:
    """The blocks' rows in ascending order of a reference column (ties in any order), found by
    sorting each row's integer positions in the column's sorted order (one argsort of the column)."""

    def __init__(self, column: np.ndarray) -> None:
        self.order = np.argsort(column, kind="stable")
        self.position = np.empty(column.size, dtype=np.int32)
        self.position[self.order] = np.arange(column.size, dtype=np.int32)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Reference row indices of each block, sorted by the column."""
        return self.order[np.sort(self.position[rows], axis=1)]


class ScoreOrder:
    """Each block's rows in ascending order of one score column, its ordered scores and their runs of
    ties (:func:`row_run_bounds`), for the last rows matrix asked for: the realized ROC AUC and CBPE's
    estimates of one reference sort the same draws of the same scores, once for both.
    """

    def __init__(self, score: np.ndarray) -> None:
        self.score = score
        self._blocks: SortedBlocks | None = None
        self._last: tuple[np.ndarray, tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]] | None = None

    @staticmethod
    def for_score(order: ScoreOrder | None, score: np.ndarray) -> ScoreOrder:
        """``order`` if it is of ``score`` (the same array), else a new one."""
        return order if order is not None and order.score is score else ScoreOrder(score)

    def of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(rows by score, their scores, (at_or_below, below) within each row)."""
        if self._last is None or self._last[0] is not rows:
            if self._blocks is None:
                self._blocks = SortedBlocks(self.score)
            by_score = self._blocks.rows(rows)
            ordered = self.score[by_score]
            self._last = (rows, (by_score, ordered, row_run_bounds(ordered)))
        return self._last[1]


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, empty), where=den > 0)


def _auc_rows(positive: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`metrics.auc_from_scores` of each row of ascending scores whose runs of ties are ``bounds``
    (:func:`row_run_bounds`; mid-ranks for ties)."""
    at_or_below, below = bounds
    rank_sum = np.where(positive, below + at_or_below + 1, 0).sum(axis=1) / 2  # integers: exact
    n_pos = positive.sum(axis=1)
    pairs = n_pos * (positive.shape[1] - n_pos)
    return _ratio(rank_sum - n_pos * (n_pos + 1) / 2, pairs.astype(np.float64), NAN)


def binary_metrics_many(metrics: list[str], positive: str, reference: Columns,
                        order: ScoreOrder | None = None) -> ManyFn | None:
    """The realized metrics of a binary classifier's blocks (``y_true``, ``y_pred``, ``score`` columns).

    Known: accuracy, precision, recall, f1, and roc_auc when no reference score is missing.
    ``order``: the reference score's :class:`ScoreOrder`, when shared with :func:`cbpe_many`.
    """
    known = {"accuracy", "precision", "recall", "f1", "roc_auc"}
    if not set(metrics) <= known or "y_true" not in reference or "y_pred" not in reference:
        return None
    score = reference.get("score")
    if "roc_auc" in metrics and (score is None or score.dtype.kind != "f" or bool(np.isnan(score).any())):
        return None
    t_all, p_all = reference["y_true"] == positive, reference["y_pred"] == positive
    same_all = reference["y_true"] == reference["y_pred"]

    def many(_: Columns, rows: np.ndarray) -> dict[str, np.ndarray]:
        t, p = t_all[rows], p_all[rows]
        tp, fp, fn = (t & p).sum(axis=1), (~t & p).sum(axis=1), (t & ~p).sum(axis=1)
        out: dict[str, np.ndarray] = {}
        for m in metrics:
            if m == "accuracy":
                out[m] = same_all[rows].mean(axis=1)
            elif m == "precision":
                out[m] = _ratio(tp.astype(np.float64), (tp + fp).astype(np.float64), 0.0)
            elif m == "recall":
                out[m] = _ratio(tp.astype(np.float64), (tp + fn).astype(np.float64), NAN)
            elif m == "f1":
                out[m] = _ratio(2.0 * tp, (2 * tp + fp + fn).astype(np.float64), NAN)
            else:
                assert score is not None
                by_score, _ordered, bounds = ScoreOrder.for_score(order, score).of(rows)
                out[m] = _auc_rows(t_all[by_score], bounds)
        return out

    return many


def cbpe_many(est: CbpeEstimator, reference: Columns, order: ScoreOrder | None = None) -> ManyFn | None:
    """:meth:`CbpeEstimator.expected` of each block (``score``, ``prediction`` columns; no score missing).

    ``order``: the reference score's :class:`ScoreOrder`, when shared with :func:`binary_metrics_many`.
    """
    score = reference.get("score")
    if score is None or score.dtype.kind != "f" or bool(np.isnan(score).any()) or "prediction" not in reference:
        return None
    predicted_all = reference["prediction"] == est.positive

    def many(_: Columns, rows: np.ndarray) -> dict[str, np.ndarray]:
        by_score, _ordered, bounds = ScoreOrder.for_score(order, score).of(rows)  # CBPE's sums in score order
        p = est.calibrate(score)[by_score]  # each reference row calibrated once, not once per draw it is in
        pred = predicted_all[by_score]
        tp, fp = np.where(pred, p, 0.0).sum(axis=1), np.where(pred, 1 - p, 0.0).sum(axis=1)
        fn, tn = np.where(pred, 0.0, p).sum(axis=1), np.where(pred, 0.0, 1 - p).sum(axis=1)
        return {"accuracy": (tp + tn) / rows.shape[1],
                "f1": _ratio(2 * tp, 2 * tp + fp + fn, NAN),
                "roc_auc": _expected_auc_rows(p, bounds)}

    return many


def _expected_auc_rows(ps: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`estimation.expected_auc` of each row (scores ascending within the row, their runs of
    ties ``bounds``: :func:`row_run_bounds`)."""
    q = 1.0 - ps
    cq = np.zeros((q.shape[0], q.shape[1] + 1))
    np.cumsum(q, axis=1, out=cq[:, 1:])
    right, left = bounds
    below = np.take_along_axis(cq, left, axis=1)
    ties = np.take_along_axis(cq, right, axis=1) - below - q
    num = np.sum(ps * (below + 0.5 * ties), axis=1)
    den = ps.sum(axis=1) * q.sum(axis=1) - np.sum(ps * q, axis=1)
    return _ratio(num, den, NAN)
