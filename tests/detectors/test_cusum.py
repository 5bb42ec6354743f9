"""The one CUSUM recursion (detectors/cusum.py): vectorized path == step-by-step recursion, both scorings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwarden.detectors.calibration import siegmund_arl
from driftwarden.detectors.cusum import CusumAlarm, alternative_rate, average_run_length, cusum_path, threshold_for

FLOATS = st.floats(-10, 10, allow_nan=False)


def _recursion(x: list[float], start: float, ceiling: float) -> list[float]:
    out, s = [], start
    for v in x:
        s = min(ceiling, max(0.0, s + v))
        out.append(s)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(FLOATS, max_size=200), st.floats(0, 20), st.sampled_from([math.inf, 3.0, 12.5]),
       st.lists(st.integers(1, 60), max_size=6))
def test_path_equals_the_recursion_for_any_split(x: list[float], start: float, ceiling: float,
                                                 cuts: list[int]) -> None:
    start = min(start, ceiling)
    expected = _recursion(x, start, ceiling)
    got: list[float] = []
    level = start
    bounds = sorted({0, len(x), *[min(c, len(x)) for c in np.cumsum(cuts).tolist()]})
    for lo, hi in itertools.pairwise(bounds):
        part = cusum_path(np.array(x[lo:hi]), level, ceiling)
        got += part.tolist()
        level = got[-1] if got else level
    assert got == pytest.approx(expected, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(FLOATS, min_size=1, max_size=100), st.floats(0.5, 15))
def test_normal_score_alarm_is_the_same_recursion(z: list[float], h: float) -> None:
    alarm = CusumAlarm(h, 0.5)
    steps = [alarm.step(v) for v in z]
    assert steps == pytest.approx(cusum_path(np.array(z) - 0.5, 0.0, 2 * h).tolist(), abs=1e-9)


def test_simulated_in_control_run_length_matches_siegmund() -> None:
    """N(0, 1) scores, k = 0.5, h = 4: Siegmund's ARL0 (338; Brook-Evans 336) against 1,000 seeded runs."""
    rng = np.random.default_rng(12)
    runs = []
    for _ in range(1000):
        n, level = 0, 0.0
        while True:
            path = cusum_path(rng.standard_normal(1000) - 0.5, level)
            hit = np.flatnonzero(path >= 4.0)
            if hit.size:
                runs.append(n + int(hit[0]) + 1)
                break
            n, level = n + 1000, float(path[-1])
    mean, se = float(np.mean(runs)), float(np.std(runs) / math.sqrt(len(runs)))
    assert abs(mean - siegmund_arl(4.0, 0.5)) < 3 * se + 5


@pytest.mark.parametrize(("p0", "target"), [(0.285, 8 * 1e6 / 0.2), (0.1, 1e5), (0.03, 5e6), (0.45, 1e3)])
def test_bernoulli_threshold_is_the_smallest_reaching_its_run_length(p0: float, target: float) -> None:
    """Regression: at p0 = 0.285 the former secant search diverged (h = 1e11, a negative run length)."""
    p1 = alternative_rate(p0, 2.0)
    h = threshold_for(p0, p1, target)
    assert 0 < h < 50
    assert average_run_length(p0, p1, h) >= target > average_run_length(p0, p1, round(h - 0.01, 2))
