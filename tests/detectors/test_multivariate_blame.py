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


def test_a_shifted_feature_takes_the_excess_not_the_features_sharing_its_components() -> None:
    """Three correlated features, two components kept: a +2 sd shift of b alone. Its squared residual
    spreads over a and c too; the partial decomposition puts (nearly) all of the excess on b."""
    rng = np.random.default_rng(7)

    def three(n: int) -> np.ndarray:
        z = rng.normal(size=n)
        return np.column_stack([z + 0.5 * rng.normal(size=n), z + 0.5 * rng.normal(size=n),
                                z + 0.5 * rng.normal(size=n)])

    pca = PcaDrift(three(20_000), window=1000, variance_explained=0.8, names=["a", "b", "c"])
    window = three(1000)
    window[:, 1] += 2.0 * window[:, 1].std()
    assert pca.evaluate(window, 100.0).degraded
    shares = pca.contributions(window)
    assert shares["b"] > 0.9
    squared = (pca.residuals(window) ** 2).mean(axis=0) - (pca.residuals(three(20_000)) ** 2).mean(axis=0)
    assert squared[0] > 0.2 * squared[1]  # what the squared residual would have said


def test_the_contributions_split_the_error_exactly(pca: PcaDrift) -> None:
    window = rows(np.random.default_rng(6), 1000, 0.3)
    per_feature = pca.feature_contributions(window)
    assert per_feature.sum() == pytest.approx(len(NAMES) * pca.window_error(window), rel=1e-10)
