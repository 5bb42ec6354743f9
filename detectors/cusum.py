"""The CUSUM of the project: one recursion, two ways to score and calibrate it.

Page's one-sided CUSUM ``S = min(max(0, S + x), ceiling)`` piles up evidence ``x``
(positive when the data look changed) and alarms when ``S`` reaches ``h``; the
ceiling lets an alarm clear within about ``ceiling - h`` of in-control drift once the
data look healthy again. :func:`cusum_path` computes it over a batch, vectorized
(``S_t = C_t - min(-S_0, min_{s<=t} C_s)`` on the cumulative sum ``C`` while the
ceiling does not bind), and equals the step-by-step recursion for any split.
Two scorings use it:

* :class:`CusumAlarm`: standard-normal block scores ``x = z - k`` (drift, PCA,
  performance metrics: :mod:`detectors.sequential`, :mod:`detectors.metric_cusum`),
  ceiling ``2 h``, ``h`` from Siegmund's approximation (:mod:`detectors.calibration`);
* :class:`BernoulliCusum`: a 0/1 error stream scored by its log-likelihood ratio of
  "error odds ``odds_ratio`` times the reference's" against "the reference's error rate
  ``p0``": ``a = log(p1/p0)`` for an error, ``c = log((1-p1)/(1-p0))`` (negative) for a
  correct prediction (accuracy: :mod:`detectors.performance_cusum`).

A Bernoulli CUSUM's threshold ``h`` is the smallest whose in-control average run
length (outcomes until a false alarm while the error rate stays ``p0``) reaches the
budget. The run length comes from Brook and Evans' Markov chain on ``S`` discretized
into steps of ``|c| / 32`` (or ``h / 4000`` if larger; the increments rounded to whole
steps), solved as a sparse linear system.

>>> cusum_path(np.array([1.0, 2.0, -4.0, 0.5]), start=0.5, ceiling=3.0).tolist()
[1.5, 3.0, 0.0, 0.5]
>>> p1 = alternative_rate(0.1, 2.0); round(p1, 4)
0.1818
>>> round(average_run_length(0.1, p1, 3.0))  # 822 +/- 18 in 2,000 simulated runs
826
>>> h = threshold_for(0.1, p1, 1e5); round(h, 2), average_run_length(0.1, p1, h) >= 1e5
(7.64, True)
>>> cs = BernoulliCusum(0.1, 2.0, h=3.0)
>>> cs.update(np.array([1, 1, 1, 0], dtype=float)).round(3).tolist()
[0.598, 1.196, 1.794, 1.698]
>>> cs.update(np.array([1, 1, 1, 0], dtype=float), ceiling=2.0).round(3).tolist()
[2.0, 2.0, 2.0, 1.905]
>>> alarm = CusumAlarm(h=10.0)
>>> [alarm.update(z, effect=0.3, floor=0.1) for z in (0.2, 8.0, 8.0, 8.0)]
[False, False, True, True]
>>> round(alarm.s, 2), alarm.run
(20.0, 3)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix, identity
from scipy.sparse.linalg import spsolve

CUSUM_K = 0.5  # reference value of normal scores: tuned to a mean shift of 2 k = 1 standard deviation
STEPS_PER_CORRECT = 32
MAX_STATES = 4000  # coarser steps for small error rates (|c| tiny) keep the chain this small


def cusum_path(x: np.ndarray, start: float = 0.0, ceiling: float = math.inf) -> np.ndarray:
    """``S`` after each increment of ``x`` from ``S = start``: ``S = min(max(0, S + x), ceiling)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.empty(0)
    c = np.cumsum(x)
    s = c - np.minimum(np.minimum.accumulate(c), -start)
    if s.max() > ceiling:  # the ceiling binds (only during an alarm): the recursion step by step
        level = start
        for i, step in enumerate(x.tolist()):
            level = min(ceiling, max(0.0, level + step))
            s[i] = level
    return s


def alternative_rate(p0: float, odds_ratio: float) -> float:
    """The error rate whose odds are ``odds_ratio`` times those of ``p0``."""
    odds = odds_ratio * p0 / (1.0 - p0)
    return odds / (1.0 + odds)


def increments(p0: float, p1: float) -> tuple[float, float]:
    """(log-likelihood ratio of an error, of a correct outcome)."""
    return math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


@lru_cache(maxsize=1024)
def average_run_length(p0: float, p1: float, h: float) -> float:
    """Mean outcomes to the first ``S > h`` when errors come at rate ``p0`` (from ``S = 0``)."""
    a, c = increments(p0, p1)
    w = max(-c / STEPS_PER_CORRECT, h / MAX_STATES)
    up, down = max(1, round(a / w)), max(1, round(-c / w))
    m = math.floor(h / w) + 1  # states 0..m-1 are S in [0, h]; beyond is the alarm
    states = np.arange(m)
    rows = np.concatenate([states, states])
    cols = np.concatenate([states + up, np.maximum(states - down, 0)])
    probs = np.concatenate([np.full(m, p0), np.full(m, 1.0 - p0)])
    keep = cols < m  # an error past h leaves the chain
    q = coo_matrix((probs[keep], (rows[keep], cols[keep])), shape=(m, m)).tocsc()
    run = spsolve((identity(m, format="csc") - q).tocsc(), np.ones(m))
    return float(np.atleast_1d(run)[0])


# Thresholds solved so far, (p0, p1, target) -> h: ~9 sparse solves each, and a restart asks for
# the same ones again (the daemon keeps them beside its state: remember_thresholds)
_SOLVED: dict[tuple[float, float, float], float] = {}
# what a solved threshold depends on besides its key: a saved one from another chain is not used
CHAIN = f"brook-evans steps={STEPS_PER_CORRECT} max_states={MAX_STATES} bisection-cents"


def solved_thresholds() -> list[tuple[float, float, float, float]]:
    """Every (p0, p1, target, h) :func:`threshold_for` solved or was told (:func:`remember_thresholds`)."""
    return [(*key, h) for key, h in _SOLVED.items()]


def remember_thresholds(rows: list[tuple[float, float, float, float]]) -> None:
    """Thresholds solved earlier (by this :data:`CHAIN`): :func:`threshold_for` returns them unsolved."""
    for p0, p1, target, h in rows:
        _SOLVED[(float(p0), float(p1), float(target))] = float(h)


def threshold_for(p0: float, p1: float, target: float) -> float:
    """The smallest ``h`` (to 0.01) whose in-control average run length is at least ``target`` outcomes.

    Bracketed by doubling, then bisection on hundredths: the returned ``h`` reaches the target
    and ``h - 0.01`` does not. (Secant steps on the log run length diverged where the
    discretized chain makes it flat: p0 = 0.285 asked for h = 1e11; for the scenario suite's
    new_category reference they never ended.) Solved once per (p0, p1, target).
    """
    key = (float(p0), float(p1), float(target))
    if key not in _SOLVED:
        _SOLVED[key] = _solve_threshold(p0, p1, target)
    return _SOLVED[key]


def _solve_threshold(p0: float, p1: float, target: float) -> float:
    def reaches(cents: int) -> bool:
        return average_run_length(p0, p1, cents / 100) >= target

    lo, hi = 0, 256  # hundredths of h: reaches(lo) is False (h = 0 alarms at once), reaches(hi) True after doubling
    while not reaches(hi):
        if hi > 1_000_000:  # h = 10,000 and still short: the chain is broken, not the budget too strict
            raise ValueError(f"no CUSUM threshold reaches a run length of {target:g} (p0={p0}, p1={p1})")
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi / 100


class BernoulliCusum:
    """One CUSUM on 0/1 errors: ``update`` returns ``S`` after each value; ``alarm`` when ``S > h``."""

    def __init__(self, p0: float, odds_ratio: float, h: float) -> None:
        self.p0 = min(max(p0, 1e-6), 1 - 1e-6)
        self.p1 = alternative_rate(self.p0, odds_ratio)
        self.a, self.c = increments(self.p0, self.p1)
        self.h = h
        self.s = 0.0
        self.seen = 0

    def update(self, errors: np.ndarray, ceiling: float = math.inf) -> np.ndarray:
        """Feed 0/1 errors in order; ``S`` after each. ``S`` is held at most ``ceiling`` at every step."""
        if errors.size == 0:
            return np.empty(0)
        s = cusum_path(np.where(errors > 0.5, self.a, self.c), self.s, ceiling)
        self.s = float(s[-1])
        self.seen += errors.size
        return s

    @property
    def alarm(self) -> bool:
        return self.s > self.h

    def state(self) -> dict[str, Any]:
        return {"s": self.s, "seen": self.seen}

    def load_state(self, state: dict[str, Any]) -> None:
        self.s, self.seen = float(state["s"]), int(state["seen"])


class CusumAlarm:
    """One subject's CUSUM of standard-normal block scores, its change window's length and the latched alarm.

    ``update(z, effect, floor)`` takes one block's score; ``effect`` is the effect size
    over the change window *including* this block (the caller pools it: read
    :attr:`starts_run` first to know whether to restart the pool). Returns whether
    the subject is alarmed after this block. The change window is the blocks since
    ``S`` was last at or below ``h / 2``.
    """

    def __init__(self, h: float, k: float = CUSUM_K) -> None:
        if h < 0 or k < 0:
            raise ValueError(f"CUSUM needs h >= 0 and k >= 0, got h={h}, k={k}")
        self.h, self.k = h, k
        self.s = 0.0
        self.run = 0  # blocks in the change window (since S last was at or below h / 2)
        self.alarmed = False

    @property
    def starts_run(self) -> bool:
        """True when the next block opens a new change window (S is at or below h / 2)."""
        return self.s <= self.h / 2

    def step(self, z: float) -> float:
        """Advance S by one block's score (no alarm decision); returns S."""
        self.run = 1 if self.starts_run else self.run + 1
        self.s = min(max(0.0, self.s + z - self.k), 2 * self.h)  # cusum_path of one increment, without numpy
        return self.s

    def decide(self, effect: float, floor: float) -> bool:
        """The alarm after a :meth:`step`: raised when S >= h and the effect is past the floor, held while S >= h."""
        if self.s < self.h:
            self.alarmed = False
        elif not self.alarmed:
            self.alarmed = effect >= floor
        return self.alarmed

    def update(self, z: float, effect: float, floor: float) -> bool:
        self.step(z)
        return self.decide(effect, floor)

    def state(self) -> dict[str, Any]:
        return {"s": self.s, "run": self.run, "alarmed": self.alarmed}

    def load_state(self, state: dict[str, Any]) -> None:
        self.s, self.run, self.alarmed = float(state["s"]), int(state["run"]), bool(state["alarmed"])
