"""driftwarden.detectors.kstwo.kstwo_sf against scipy.stats.kstwo.sf: random inputs, every branch of scipy's _kolmogn, shapes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import _ksstats, kstwo

from driftwarden.detectors.kstwo import kstwo_sf

RTOL, ATOL = 1e-12, 1e-300
N_MAX = 200_000


def scipy_sf(d: Any, n: Any) -> Any:
    """The reference. scipy warns where kstwo_sf does not: 0.5/n for n = 0, and its DMTW's matmul overflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return kstwo.sf(d, n)


def assert_matches_scipy(d: Any, n: Any) -> None:
    got, want = kstwo_sf(d, n), scipy_sf(d, n)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)


# --- (1) property test: random (d, n) pairs, n log-uniform in 1 .. 200000 -----------------------------------------

EDGE_NS = (1, 2, 3, 12, 140, 141, 100000, 100001, N_MAX)
SPECIAL_DS = (0.0, -0.0, 5e-324, 0.5, 1.0, -1.0, 1.5, math.inf, math.nan)
# How d is drawn; z = sqrt(n) d covers, in turn, Pelz-Good (and DMTW below ~0.45), smirnov and n d**2 >= 370.
D_KINDS = ("z pelz-good", "z pelz-good", "z smirnov", "z high", "z low", "uniform", "hypothesis float",
           "ruben-gambino low", "ruben-gambino high", "tiny", "special")


@st.composite
def d_n_pair(draw: st.DrawFn) -> tuple[float, float]:
    """A (d, n): n log-uniform in 1 .. 200000 (or an edge), d of one of D_KINDS, maybe nudged by one ulp."""
    rnd = draw(st.randoms(use_true_random=True))  # uniform draws (hypothesis floats favour edges)
    edge_n = draw(st.one_of(st.none(), st.none(), st.sampled_from(EDGE_NS)))
    n = float(edge_n if edge_n is not None else round(N_MAX ** rnd.random()))
    kind = draw(st.sampled_from(D_KINDS))
    if kind.startswith("z "):
        low, high = {"z pelz-good": (0.04, 1.49), "z smirnov": (1.45, 3.0), "z high": (3.0, 30.0), "z low": (0.0, 0.5)}[kind]
        d = rnd.uniform(low, high) / math.sqrt(n)
    elif kind == "uniform":
        d = rnd.random()
    elif kind == "hypothesis float":
        d = draw(st.floats(0.0, 1.0))
    elif kind == "ruben-gambino low":  # d around 0.5/n .. 1/n .. 3/n
        d = draw(st.one_of(st.sampled_from([0.5, 1.0, 1.5, 2.0]), st.floats(0.25, 3.0))) / n
    elif kind == "ruben-gambino high":  # d around 1 - 1/n
        d = 1.0 - draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0.0, 2.0))) / n
    elif kind == "tiny":
        d = 10.0 ** rnd.uniform(-300.0, -2.0)
    else:
        d = draw(st.sampled_from(SPECIAL_DS))
    nudge = draw(st.sampled_from([0, 0, 0, -1, 1]))  # one ulp around the boundaries above
    if nudge and math.isfinite(d):
        d = math.nextafter(d, math.inf * nudge)
    return d, n


@settings(max_examples=150, deadline=None)
@given(st.lists(d_n_pair(), min_size=1, max_size=6))
def test_matches_scipy_on_random_inputs(pairs: list[tuple[float, float]]) -> None:
    d, n = np.array(pairs).T
    assert_matches_scipy(d, n)


# --- (2) a seeded grid over every branch of scipy's kstwo.sf / _kolmogn(cdf=False) -------------------------------

def scipy_branch(d: float, n: float) -> str:
    """The branch scipy takes for kstwo.sf(d, n): kstwo's argument and support checks, then _kolmogn(n, d, cdf=False)."""
    if not (n >= 1 and n == round(n)):
        return "invalid n"
    if math.isnan(d):
        return "nan d"
    if d <= 0.5 / n:
        return "below support"
    if d >= 1.0:
        return "at or above 1"
    t = n * d
    if t <= 1.0:
        if t <= 0.5:
            return "t <= 0.5"
        return "Ruben-Gambino low, product" if n <= 140 else "Ruben-Gambino low, Stirling"
    if t >= n - 1:
        return "Ruben-Gambino high"
    if d >= 0.5:
        return "d >= 0.5, smirnov"
    nxsquared = t * d
    if n <= 140:
        if nxsquared <= 0.754693:
            return "n <= 140, DMTW"
        if nxsquared <= 4:
            return "n <= 140, Pomeranz"
        return "n <= 140, smirnov"
    if nxsquared >= 370.0:
        return "n d**2 >= 370"
    if nxsquared >= 2.2:
        return "n d**2 >= 2.2, smirnov"
    if n <= 100000 and n * d**1.5 <= 1.4:
        return "DMTW"
    if -math.pi**2 / 8 / (math.sqrt(n) * d) ** 2 < -708:
        return "Pelz-Good, CDF 0"
    return "Pelz-Good"


# The function of scipy.stats._ksstats each branch calls (the others call none).
BRANCH_CALLS = {
    "d >= 0.5, smirnov": "smirnov", "n <= 140, smirnov": "smirnov", "n d**2 >= 2.2, smirnov": "smirnov",
    "n <= 140, DMTW": "DMTW", "DMTW": "DMTW", "n <= 140, Pomeranz": "Pomeranz",
    "Pelz-Good": "PelzGood", "Pelz-Good, CDF 0": "PelzGood",
}
ALL_BRANCHES = {
    "invalid n", "nan d", "below support", "at or above 1", "t <= 0.5", "Ruben-Gambino low, product",
    "Ruben-Gambino low, Stirling", "Ruben-Gambino high", "n d**2 >= 370", *BRANCH_CALLS,
}


def branch_grid(seed: int = 20240611, per_branch: int = 6) -> list[tuple[float, float]]:
    """Inputs chosen per branch (a few at random, plus its edges); every branch gets some (asserted by the test)."""
    rng = np.random.default_rng(seed)

    def ints(lo: int, hi: int) -> Iterator[int]:
        return (int(v) for v in rng.integers(lo, hi + 1, per_branch))

    def sqrt_over(u_lo: float, u_hi: float, n: int) -> float:  # d with n d**2 uniform in [u_lo, u_hi)
        return math.sqrt(rng.uniform(u_lo, u_hi) / n)

    grid: list[tuple[float, float]] = []
    grid += [(0.3, n) for n in (math.nan, 0.0, -3.0, 2.5, 1e6 + 0.5)]
    grid += [(math.nan, n) for n in (1.0, 50.0, 4545.0)]
    grid += [(d, n) for n in (1.0, 7.0, 4545.0) for d in (0.0, -0.0, -1.0, -math.inf, 5e-324, 0.5 / n)]
    grid += [(d, n) for n in (1.0, 7.0, 4545.0) for d in (1.0, 1.5, math.inf)]
    grid += [(math.nextafter(0.5 / n, 1.0), float(n)) for n in (3, 6, 9, 12)]  # n d rounds to 0.5
    grid += [(rng.uniform(0.5, 1.0) / n, float(n)) for n in ints(1, 140)] + [(1.0 / n, float(n)) for n in (1, 2, 140)]
    grid += [(rng.uniform(0.5, 1.0) / n, float(n)) for n in ints(141, N_MAX)] + [(1.0 / n, float(n)) for n in (141, N_MAX)]
    grid += [(1.0 - rng.uniform(0.0, 1.0) / n, float(n)) for n in ints(2, N_MAX)] + [(1.0 - 1.0 / n, float(n)) for n in (3, 500)]
    grid += [(rng.uniform(0.5, 1.0 - 1.0 / n), float(n)) for n in ints(3, N_MAX)] + [(0.5, 10.0), (0.5, 50000.0)]
    grid += [(sqrt_over(1.0 / n + 1e-9, min(0.754693, n / 4), n), float(n)) for n in ints(5, 140)]
    grid += [(sqrt_over(0.76, 4.0, n), float(n)) for n in ints(20, 140)]
    grid += [(sqrt_over(4.0, 7.0, n), float(n)) for n in ints(30, 140)]
    grid += [(sqrt_over(370.0, 1000.0, n), float(n)) for n in ints(4000, N_MAX)] + [(math.sqrt(370.0 / 4000), 4000.0)]
    grid += [(sqrt_over(2.2, 370.0, n), float(n)) for n in ints(141, 5000)]  # smirnov sums ~n terms: n kept moderate
    # DMTW: 1/n < d <= (1.4/n)**(2/3); each call costs O(n) in scipy, so n <= 20000 but for the n = 100000 edge.
    grid += [(rng.uniform(1.0 / n, (1.4 / n) ** (2 / 3)), float(n)) for n in ints(141, 20000)]
    grid += [((1.4 / 100000) ** (2 / 3), 100000.0)]
    grid += [(rng.uniform(1.5, 4.0) / n, float(n)) for n in ints(100001, N_MAX)]  # z = sqrt(n) d < 0.0417
    grid += [(rng.uniform(0.25, 1.48) / math.sqrt(n), float(n)) for n in ints(141, N_MAX)]
    grid += [(0.001, 100001.0), (0.005, 4545.0), (0.022, 4545.0), (math.sqrt(2.2 / 4545) * (1 - 1e-15), 4545.0)]
    return grid


@contextmanager
def recording_scipy_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records the calls of scipy's branch functions (kstwo_sf binds smirnov at import: not recorded)."""
    calls: list[str] = []

    def recorder(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return fn(*args, **kwargs)
        return wrapped

    with monkeypatch.context() as m:
        for name in ("DMTW", "Pomeranz", "PelzGood"):
            m.setattr(_ksstats, f"_kolmogn_{name}", recorder(name, getattr(_ksstats, f"_kolmogn_{name}")))
        m.setattr(scipy.special, "smirnov", recorder("smirnov", scipy.special.smirnov))
        yield calls


def test_every_branch_matches_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = branch_grid()
    branches = [scipy_branch(d, n) for d, n in grid]
    assert set(branches) == ALL_BRANCHES
    # The classification above is scipy's: each input calls the function of its branch, and only that.
    for (d, n), branch in zip(grid, branches, strict=True):
        with recording_scipy_calls(monkeypatch) as calls:
            scipy_sf(d, n)
        assert calls == ([BRANCH_CALLS[branch]] if branch in BRANCH_CALLS else []), (d, n, branch)
    d, n = np.array(grid).T
    got, want = kstwo_sf(d, n), scipy_sf(d, n)
    for branch in sorted(ALL_BRANCHES):  # one batch, checked branch by branch for a readable failure
        sel = np.array([b == branch for b in branches])
        np.testing.assert_allclose(got[sel], want[sel], rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=branch)
    # The same inputs one at a time (the batch's all-Pelz-Good fast path, single elements of every branch).
    for (di, ni), gi in zip(grid, got, strict=True):
        np.testing.assert_array_equal(kstwo_sf(di, ni), gi)


def test_pelz_good_window_batch() -> None:
    """A no-drift window's p-values: all in Pelz-Good (the fast path), many sizes at once, different maxk per element."""
    rng = np.random.default_rng(7)
    n = np.round(np.exp(rng.uniform(math.log(500), math.log(50000), 400)))
    d = rng.uniform(0.5, 1.48, 400) / np.sqrt(n)  # z = sqrt(n) d; DMTW below z ~0.45 at n = 500
    assert {scipy_branch(a, b) for a, b in zip(d, n, strict=True)} == {"Pelz-Good"}
    assert_matches_scipy(d, n)


@pytest.mark.parametrize("n", [141.0, 500.0, 4545.0])
def test_dmtw_rule_boundary(n: float) -> None:
    """scipy switches from Pelz-Good to DMTW at n d**1.5 <= 1.4; near it the two differ by up to 3e-6 (n = 141)."""
    edge = (1.4 / n) ** (2 / 3)
    d = np.array([edge * (1 - 1e-12), edge * (1 + 1e-12)])
    assert [scipy_branch(v, n) for v in d] == ["DMTW", "Pelz-Good"]
    assert_matches_scipy(d, n)


def test_scipy_dmtw_overflow_is_returned_without_warning() -> None:
    # scipy's DMTW overflows here (SF 0.0 instead of ~1, "overflow encountered in matmul"); same value, no warning.
    assert kstwo_sf(0.00025, 97575.0) == scipy_sf(0.00025, 97575.0) == 0.0


# --- (3) shapes, broadcasting, dtypes, invalid n ------------------------------------------------------------------

@pytest.mark.parametrize(("d", "n"), [
    (0.01, 4545),
    (np.float32(0.1), 100),
    ([0.01, 0.02, 0.6], 4545),
    (0.02, [500, 4545.0, 50000]),
    (np.array([[0.001], [0.01], [0.1]]), np.array([10, 500, 4545, 200000])),
    (np.linspace(0.0, 0.04, 12).reshape(2, 3, 2), np.array([[4545.0], [140.0], [10.0]])),
    (np.array([], dtype=np.float64), 4545),
    (np.zeros((0, 3)), np.array([1.0, 2.0, 3.0])),
    (0.1, np.array([100], dtype=np.uint8)),
    (0.1, True),
    (np.array([0.01, 0.02]), np.array([4545, 4545], dtype=np.int32)),
])
def test_shapes_and_dtypes_match_scipy(d: Any, n: Any) -> None:
    assert_matches_scipy(d, n)


def test_scalar_inputs_give_a_0d_array() -> None:
    got = kstwo_sf(0.02, 4545)
    assert isinstance(got, np.ndarray) and got.shape == ()
    assert float(got) == pytest.approx(float(kstwo.sf(0.02, 4545)), rel=RTOL)


def test_incompatible_shapes_raise() -> None:
    with pytest.raises(ValueError):
        kstwo_sf(np.zeros(3), np.ones(4))


@pytest.mark.parametrize("n", [math.nan, 0.0, -1.0, 2.5, 140.5, -math.inf])
def test_invalid_n_gives_nan_like_scipy(n: float) -> None:
    d = np.array([0.0, 1e-3, 0.3, 0.7, 1.0, 2.0, math.nan])
    got = kstwo_sf(d, n)
    assert np.isnan(got).all()
    np.testing.assert_array_equal(got, scipy_sf(d, n))


def test_nan_n_mixed_with_valid_n() -> None:
    d = np.array([0.02, 0.02, 0.3, 0.001])
    n = np.array([4545.0, math.nan, 10.0, math.nan])
    got = kstwo_sf(d, n)
    np.testing.assert_array_equal(np.isnan(got), [False, True, False, True])
    np.testing.assert_allclose(got, scipy_sf(d, n), rtol=RTOL, atol=ATOL, equal_nan=True)
    np.testing.assert_array_equal(kstwo_sf(np.full((2, 2), 0.02), np.array([[math.nan], [4545.0]]))[0], [math.nan] * 2)


def test_infinite_n_like_scipy() -> None:
    assert kstwo_sf(0.0, math.inf) == scipy_sf(0.0, math.inf) == 1.0
    assert kstwo_sf(1.0, math.inf) == scipy_sf(1.0, math.inf) == 0.0
    for sf in (kstwo_sf, scipy_sf):
        with pytest.raises(OverflowError):
            sf(0.3, math.inf)


@pytest.mark.parametrize("n", [1001, 4545, 9091, 50_000, 200_000])
def test_smirnov_sf_equals_scipy_where_it_replaces_it(n: int) -> None:
    """smirnov_sf (n > 1000) against scipy.special.smirnov over the whole branch, edges included."""
    from scipy.special import smirnov

    from driftwarden.detectors.kstwo import smirnov_sf

    rng = np.random.default_rng(n)
    low, high = math.sqrt(2.2 / n), math.sqrt(370.0 / n)
    # n (1 - x) an integer: its last term is 0, and 1 - j/n may round below x (0.2 at n = 4545 did)
    xs = [*rng.uniform(low, high, 12), low, high * 0.999, 0.2, 0.5, 0.73, 1 - 7 / n]
    for x in xs:
        want = smirnov(n, x)
        assert smirnov_sf(n, x) == pytest.approx(want, rel=1e-12, abs=1e-300), x
