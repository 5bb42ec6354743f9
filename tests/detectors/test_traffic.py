from __future__ import annotations

import numpy as np

from driftwarden.detectors.settings import TrafficSettings
from driftwarden.detectors.traffic import TrafficMonitor


def test_a_catch_up_judges_every_bucket_it_closes_at_once() -> None:
    """Hours of events read in one poll after downtime: every bucket with events is judged,
    not only the last ``baseline_buckets`` (a drop in the middle of the backlog is seen)."""
    t = TrafficMonitor(TrafficSettings(bucket_seconds=60))
    counts = [30] * 100
    counts[70] = 3  # a drop inside the backlog
    t.observe_predictions(np.concatenate([np.full(c, b * 60.0 + 1) for b, c in enumerate(counts)]))
    rates = [f for f in t.tick(100 * 60.0) if f.detector == "event_rate"]
    judged = 100 - TrafficSettings().min_baseline_buckets
    assert len(rates) == judged
    assert [f.window_end for f in rates if f.degraded] == [71 * 60.0]


def test_a_long_silence_is_judged_by_its_last_buckets() -> None:
    t = TrafficMonitor(TrafficSettings(bucket_seconds=60, baseline_buckets=12))
    t.observe_predictions(np.concatenate([np.full(30, b * 60.0 + 1) for b in range(20)]))
    t.tick(20 * 60.0)
    t.observe_predictions(np.full(30, 500 * 60.0 + 1))  # 8 hours later
    rates = [f for f in t.tick(501 * 60.0) if f.detector == "event_rate"]
    assert [f.window_end / 60 for f in rates] == [*range(489, 501), 501]
    assert rates[0].degraded and rates[0].statistic == 0 and rates[0].severity == "critical"  # the silence is a drop


def test_traffic_after_a_stray_ancient_event_is_no_spike() -> None:
    """One accepted event dated 1938 makes the buckets before the stream a silence: the stream's
    first buckets against that empty baseline are its start, not a spike (found by the chaos suite)."""
    t = TrafficMonitor(TrafficSettings(bucket_seconds=60))
    t.observe_predictions(np.array([-1e9]))
    t.observe_predictions(np.concatenate([np.full(30, 1e9 + b * 60.0 + 1) for b in range(5)]))
    rates = [f for f in t.tick(1e9 + 5 * 60.0) if f.detector == "event_rate"]
    assert rates and not any(f.degraded for f in rates if f.statistic > 0)
