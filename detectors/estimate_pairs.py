"""CBPE's block estimates paired with the realized metric of the same predictions, as labels arrive.

In sequential mode CBPE estimates F1, ROC AUC... every ``block`` predictions, and realized
performance is judged per block of *outcomes*: nothing said what the metric turned out to
be for the predictions an estimate was about, so a report could not set the estimate beside
the truth. :class:`EstimatePairs` remembers each estimated block by its prediction-time range
``[t0, t1]`` and the first ``ceil(coverage * n)`` labels of its predictions to arrive; once
those are in, it records the pair ``{"window_end": t1, "estimated": {...}, "realized": {...}}``.
It judges nothing (the sequential checks do): the pairs are for the report's plot.

Which labels a block gets does not depend on batching, nor on whether a label came before
its block was estimated (a short label delay: it waits, at most ``2 * n`` of them). Memory
is bounded: at most ``max_blocks`` blocks wait for labels (oldest dropped) and ``kept``
pairs are kept.

>>> rng = np.random.default_rng(0)
>>> y = np.where(rng.random(1000) < 0.5, "1", "0").astype(object)
>>> p = np.where(rng.random(1000) < 0.8, y, np.where(y == "1", "0", "1")).astype(object)
>>> pairs = EstimatePairs(["accuracy"], positive="1", coverage=0.9)
>>> pairs.add_block(0.0, 499.0, 500, {"accuracy": 0.79})
>>> pairs.observe(np.arange(400.0), y[:400], p[:400], None); pairs.pairs()  # 400 of the 450 labels it needs
[]
>>> pairs.observe(np.arange(400.0, 1000.0), y[400:], p[400:], None)
>>> [(x["window_end"], x["labels"], x["estimated"]["accuracy"], round(x["realized"]["accuracy"], 4)) for x in pairs.pairs()]
[(499.0, 450, 0.79, 0.7889)]
>>> round(float(np.mean(p[:450] == y[:450])), 4)  # the accuracy of the block's first 450 labels
0.7889
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftwarden.detectors.metrics import METRICS


class _Block:
    def __init__(self, t0: float, t1: float, n: int, estimated: Mapping[str, float], coverage: float) -> None:
        self.t0, self.t1, self.n = float(t0), float(t1), int(n)
        self.estimated = {k: float(v) for k, v in estimated.items()}
        self.needed = max(1, math.ceil(coverage * n - 1e-9))  # exactly the first labels to arrive
        self.rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.got = 0

    def take(self, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None) -> None:
        k = min(len(y_true), self.needed - self.got)
        if k > 0:
            self.rows.append((y_true[:k].copy(), y_pred[:k].copy(), None if score is None else score[:k].copy()))
            self.got += k

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        yt = np.concatenate([r[0] for r in self.rows]).astype(object)
        yp = np.concatenate([r[1] for r in self.rows]).astype(object)
        scores = [r[2] for r in self.rows]
        s = None if any(x is None for x in scores) else np.concatenate(scores).astype(np.float64)  # type: ignore[arg-type]
        return yt, yp, s

    def state(self) -> dict[str, Any]:
        yt, yp, s = self.columns() if self.rows else (np.empty(0, object), np.empty(0, object), None)
        return {"t0": self.t0, "t1": self.t1, "n": self.n, "estimated": self.estimated, "needed": self.needed,
                "y_true": yt.tolist(), "y_pred": yp.tolist(), "score": None if s is None else s.tolist()}


class EstimatePairs:
    """Estimated blocks waiting for their labels, and the pairs of those that got them."""

    def __init__(self, metrics: Sequence[str], positive: str, coverage: float = 0.9, max_blocks: int = 40,
                 kept: int = 50) -> None:
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        self.metrics, self.positive, self.coverage = list(metrics), positive, coverage
        self.max_blocks = max_blocks
        self.blocks: list[_Block] = []  # in prediction-time order
        self.done: deque[dict[str, Any]] = deque(maxlen=kept)
        self._early: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []  # labels ahead of blocks

    def add_block(self, t0: float, t1: float, n: int, estimated: Mapping[str, float]) -> None:
        """CBPE estimated ``n`` predictions made between ``t0`` and ``t1``; labels that came early are its first."""
        block = _Block(t0, t1, n, estimated, self.coverage)
        self.blocks.append(block)
        del self.blocks[: max(0, len(self.blocks) - self.max_blocks)]
        early, self._early = self._early, []
        for t, yt, yp, s in early:
            mine = (t >= block.t0) & (t <= block.t1)
            block.take(yt[mine], yp[mine], None if s is None else s[mine])
            ahead = t > block.t1
            if ahead.any():
                self._early.append((t[ahead], yt[ahead], yp[ahead], None if s is None else s[ahead]))
        self._finish()

    def observe(self, prediction_t: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                score: np.ndarray | None) -> None:
        """Joined outcomes, in arrival order: each goes to the block that holds its prediction's time."""
        t = np.asarray(prediction_t, dtype=np.float64)
        last = self.blocks[-1].t1 if self.blocks else -math.inf
        ahead = t > last
        if ahead.any():
            self._early.append((t[ahead], y_true[ahead], y_pred[ahead], None if score is None else score[ahead]))
            while sum(len(e[0]) for e in self._early) > 2 * max((b.n for b in self.blocks), default=1000):
                self._early.pop(0)
        if self.blocks:
            starts = np.array([b.t0 for b in self.blocks])
            idx = np.searchsorted(starts, t, side="right") - 1
            for i in np.unique(idx[(idx >= 0) & ~ahead]).tolist():
                block = self.blocks[i]
                rows = np.flatnonzero((idx == i) & (t <= block.t1))
                block.take(y_true[rows], y_pred[rows], None if score is None else score[rows])
        self._finish()

    def _finish(self) -> None:
        for block in [b for b in self.blocks if b.got >= b.needed]:
            yt, yp, s = block.columns()
            realized = {m: METRICS[m].fn(yt, yp, s, self.positive) for m in self.metrics
                        if s is not None or not METRICS[m].needs_score}
            self.done.append({"window_start": block.t0, "window_end": block.t1, "n": block.n, "labels": block.got,
                              "estimated": block.estimated,
                              "realized": {m: float(v) for m, v in realized.items() if math.isfinite(v)}})
            self.blocks.remove(block)

    def pairs(self) -> list[dict[str, Any]]:
        """The completed pairs, oldest first (JSON-safe)."""
        return list(self.done)

    def state(self) -> dict[str, Any]:
        early = [[t.tolist(), yt.tolist(), yp.tolist(), None if s is None else s.tolist()] for t, yt, yp, s in self._early]
        return {"blocks": [b.state() for b in self.blocks], "done": list(self.done), "early": early}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.blocks = []
        for d in state.get("blocks", []):
            block = _Block(d["t0"], d["t1"], d["n"], d["estimated"], self.coverage)
            block.needed = int(d["needed"])
            if d["y_true"]:
                score = None if d["score"] is None else np.asarray(d["score"], dtype=np.float64)
                block.take(np.asarray(d["y_true"], dtype=object), np.asarray(d["y_pred"], dtype=object), score)
            self.blocks.append(block)
        self.done = deque(state.get("done", []), maxlen=self.done.maxlen)
        self._early = [(np.asarray(t, dtype=np.float64), np.asarray(yt, dtype=object), np.asarray(yp, dtype=object),
                        None if s is None else np.asarray(s, dtype=np.float64)) for t, yt, yp, s in state.get("early", [])]
