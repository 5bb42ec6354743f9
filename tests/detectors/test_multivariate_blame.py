"""What the PCA reconstruction-error detector blames: features and the pair whose correlation moved."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.detectors.multivariate import PcaDrift

NAMES = ["income", "debt", "age", "tenure"]


def rows(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    z = rng.normal(size=n)
    debt = corr * z + np.sqrt(1 - corr**2) * rng.normal(size=n)
    return np.column_stack([z, debt, rng.normal(size=n), rng.normal(size=n)])


@pytest.fixture(scope="module")
def pca() -> PcaDrift:
    return PcaDrift(rows(np.random.default_rng(1), 20_000, 0.8), window=1000, names=NAMES)


def test_a_correlation_that_vanished_blames_the_pair_with_scipys_correlations(pca: PcaDrift) -> None:
    ref = rows(np.random.default_rng(1), 20_000, 0.8)
    window = rows(np.random.default_rng(2), 1000, 0.0)
    f = pca.evaluate(window, 100.0)
    assert f.degraded
    held_out = ref[1::2]
    before = stats.pearsonr(held_out[:, 0], held_out[:, 1]).statistic
    after = stats.pearsonr(window[:, 0], window[:, 1]).statistic
    assert f.details["pair"] == "income~debt"
    assert f.details["pair_corr_reference"] == pytest.approx(round(before, 4), abs=1e-12)
    assert f.details["pair_corr_window"] == pytest.approx(round(after, 4), abs=1e-12)
    assert f.details["blames"] == f"income, debt (corr {before:.2f} -> {after:.2f})"
    assert f.summary.endswith(f"; blames: income, debt (corr {before:.2f} -> {after:.2f})")
    # the excess error is the pair's: income and debt hold (nearly) all of it
    shares = pca.contributions(window)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["income"] + shares["debt"] > 0.9


def test_per_feature_errors_add_up_to_the_windows_statistic(pca: PcaDrift) -> None:
    window = rows(np.random.default_rng(3), 1000, 0.0)
    per_feature = (pca.residuals(window) ** 2).mean(axis=0)
    assert per_feature.mean() == pytest.approx(pca.window_error(window), rel=1e-12)


def test_a_healthy_window_blames_nothing(pca: PcaDrift) -> None:
    f = pca.evaluate(rows(np.random.default_rng(4), 1000, 0.8), 100.0)
    assert not f.degraded and "blames" not in f.details


def test_the_alert_carries_what_the_finding_blames(pca: PcaDrift) -> None:
    lc = AlertLifecycle(for_windows=1)
    f = pca.evaluate(rows(np.random.default_rng(2), 1000, 0.0), 100.0)
    alerts = lc.update("credit", {}, [f], now=100.0)
    assert {a.severity for a in alerts} == {"warning", f.severity}
    for alert in alerts:
        assert alert.annotations["blames"] == f.details["blames"]
        assert alert.annotations["blames"].startswith("income, debt (corr 0.8")


def test_names_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="2 names for 4 features"):
        PcaDrift(rows(np.random.default_rng(1), 500, 0.8), names=["a", "b"])


def test_features_inside_the_kept_subspace_take_no_share(pca: PcaDrift) -> None:
    """age and tenure are principal components of their own (kept): their residual is sampling
    noise, and dividing by their tiny diag(I - P'P) must not turn it into blame."""
    window = rows(np.random.default_rng(5), 1000, 0.8)
    window[:, 1] += 1.5  # debt moves off the income-debt line; its residual is the pair's
    assert pca.evaluate(window, 100.0).degraded
    shares = pca.contributions(window)
    assert shares["age"] == 0.0 and shares["tenure"] == 0.0
    assert shares["income"] + shares["debt"] == pytest.approx(1.0)


def test_contributions_match_the_textbook_formula_on_a_known_subspace() -> None:
    """Two perfectly correlated features: P = [1, 1]/sqrt(2), M = I - P'P = [[.5, -.5], [-.5, .5]];
    a row z has residual r = M z and contribution r_j**2 / M_jj."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=4000)
    pca = PcaDrift(np.column_stack([z, z]), variance_explained=0.5, names=["a", "b"])
    row = (np.array([[2.0, 0.0]]) * pca.std + pca.mean)
    r = np.array([1.0, -1.0])  # M @ [2, 0]
    assert pca.feature_contributions(row) == pytest.approx(r**2 / 0.5, abs=1e-9)
