"""CBPE's block estimates paired with the realized metric of the same predictions (detectors/estimate_pairs.py)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftwarden.detectors.estimate_pairs import EstimatePairs

BLOCK = 100


def _stream(seed: int, blocks: int = 4, delay: float = 150.0):
    """Predictions at t = 0, 1, 2, ...; each label arrives ``delay`` later, in arrival order (shuffled a little)."""
    rng = np.random.default_rng(seed)
    n = blocks * BLOCK
    t = np.arange(float(n))
    score = rng.random(n)
    y = np.where(rng.random(n) < score, "1", "0").astype(object)
    pred = np.where(score > 0.5, "1", "0").astype(object)
    arrival = np.argsort(t + delay + rng.normal(0, 20, n), kind="stable")
    return t, y, pred, score, arrival


def _expected(t, y, pred, score, arrival, coverage=0.9):
    """Batch: per block, the metrics over the first ceil(coverage * BLOCK) labels to arrive of its predictions."""
    out = []
    for b in range(len(t) // BLOCK):
        mine = [i for i in arrival if b * BLOCK <= i < (b + 1) * BLOCK][: math.ceil(coverage * BLOCK)]
        yt, yp, s = (y[mine] == "1"), (pred[mine] == "1"), score[mine]
        tp, fp, fn = int(np.sum(yt & yp)), int(np.sum(~yt & yp)), int(np.sum(yt & ~yp))
        u = stats.mannwhitneyu(s[yt], s[~yt]).statistic  # ROC AUC = U / (n1 n0)
        out.append({"accuracy": float(np.mean(yt == yp)), "f1": 2 * tp / (2 * tp + fp + fn),
                    "roc_auc": u / (yt.sum() * (~yt).sum())})
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 50), st.lists(st.integers(1, 120), min_size=1, max_size=8), st.floats(-80.0, 300.0))
def test_pairs_are_the_batch_metrics_of_each_blocks_first_labels_however_batched(
        seed: int, cuts: list[int], delay: float) -> None:
    """Streaming == batch: any batching of the outcomes, labels before or after their block is estimated."""
    t, y, pred, score, arrival = _stream(seed, delay=delay)
    label_time = t[arrival] + delay
    pairs = EstimatePairs(["accuracy", "f1", "roc_auc"], positive="1", coverage=0.9)
    estimated = 0
    pos, i = 0, 0
    while pos < len(arrival) or estimated < len(t) // BLOCK:
        step = cuts[i % len(cuts)]
        i += 1
        upto = label_time[pos + step - 1] if pos + step <= len(arrival) else math.inf
        while estimated < len(t) // BLOCK and t[(estimated + 1) * BLOCK - 1] <= upto:  # blocks close in event time
            pairs.add_block(t[estimated * BLOCK], t[(estimated + 1) * BLOCK - 1], BLOCK, {"f1": 0.5 + estimated})
            estimated += 1
        rows = arrival[pos: pos + step]
        if rows.size:
            pairs.observe(t[rows], y[rows], pred[rows], score[rows])
        pos += step
    got = pairs.pairs()
    want = _expected(t, y, pred, score, arrival)
    assert [p["estimated"]["f1"] for p in got] == [0.5 + b for b in range(len(want))]
    for p, w in zip(got, want, strict=True):
        assert p["labels"] == 90
        for m, v in w.items():
            assert math.isclose(p["realized"][m], v, rel_tol=1e-12), (m, p["realized"][m], v)


def test_state_round_trip_gives_the_same_pairs() -> None:
    t, y, pred, score, arrival = _stream(3)
    a = EstimatePairs(["accuracy", "roc_auc"], positive="1")
    a.add_block(0.0, 99.0, BLOCK, {"accuracy": 0.7})
    a.add_block(100.0, 199.0, BLOCK, {"accuracy": 0.6})
    first, rest = arrival[:120], arrival[120:]
    a.observe(t[first], y[first], pred[first], score[first])
    b = EstimatePairs(["accuracy", "roc_auc"], positive="1")
    b.load_state(a.state())
    for x in (a, b):
        x.observe(t[rest], y[rest], pred[rest], score[rest])
    assert a.pairs() == b.pairs() and len(a.pairs()) == 2


def test_waiting_blocks_and_early_labels_are_bounded() -> None:
    pairs = EstimatePairs(["accuracy"], positive="1", max_blocks=3)
    for b in range(10):
        pairs.add_block(b * 100.0, b * 100.0 + 99, BLOCK, {"accuracy": 0.5})
    assert len(pairs.blocks) == 3
    far = np.arange(10_000.0, 20_000.0)
    lab = np.full(far.size, "1", dtype=object)
    pairs.observe(far, lab, lab, None)
    assert sum(len(e[0]) for e in pairs._early) <= 2 * BLOCK
