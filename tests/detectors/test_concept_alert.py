"""The demo's concept drift raises a concept_drift alert (it raised none: the level read before the change)."""

from __future__ import annotations

import numpy as np

from driftwarden.alerts.lifecycle import AlertLifecycle
from driftwarden.daemon.simulate import FEATURES, Scenario, generate
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.concept import change_split
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec


def _batch(cols: dict[str, np.ndarray], lo: int, hi: int) -> OutcomeBatch:
    t = cols["timestamp"][lo:hi]
    label = lambda v: v.astype(str).astype(object)  # noqa: E731
    return OutcomeBatch(timestamps=t, prediction_timestamps=t, y_true=label(cols["outcome"][lo:hi]),
                        y_pred=label(cols["prediction"][lo:hi]), score=cols["score"][lo:hi],
                        features={n: cols[n][lo:hi] for n in FEATURES})


def test_change_split_finds_the_change_point() -> None:
    x = np.r_[np.zeros(300), np.ones(100)]
    assert change_split(x) == 300
    assert change_split(np.ones(30)) == 0  # too short to split


def test_demo_concept_drift_fires_a_concept_drift_alert() -> None:
    spec = ModelSpec(task="binary", features={n: FeatureSpec(t) for n, t in FEATURES.items()},
                     monitoring=MonitorSettings(window_size=2000))
    ref = generate(Scenario(seed=1007, events=20_000))
    mon = ModelMonitor("churn", spec, _batch(ref, 0, 20_000))
    cols = generate(Scenario(events=60_000, covariate_shift_at=20_000, concept_drift_at=40_000))
    lc = AlertLifecycle(for_windows=2)
    fired = []
    for lo in range(0, 60_000, 5000):
        findings = [f for f in mon.observe_outcomes(_batch(cols, lo, lo + 5000)) if f.kind == "concept_drift"]
        fired += [a for a in lc.update("churn", {}, findings, now=0.0) if a.state == "firing"]
    start = cols["timestamp"][40_000]
    # one check fires (its critical level holds the warning one: the inhibition stage shows one)
    assert len({a.fingerprint for a in fired}) == 1 and fired[0].starts_at >= start
    assert fired[0].starts_at - start < 10  # within 200 outcomes (20 per second) of the change
