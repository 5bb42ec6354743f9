"""A degraded block replays exactly: a fresh monitor of the same spec and reference, given the
sequential state before the block and its rows, gives the block's findings bit for bit."""

from __future__ import annotations

import numpy as np

from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.replay_steps import ReplayStep
from tests.detectors.conftest import as_predictions, make_outcomes, make_spec

REF = make_outcomes(np.random.default_rng(7), 20_000)


def test_the_last_degraded_prediction_block_replays_its_findings_exactly() -> None:
    rng = np.random.default_rng(3)
    live = ModelMonitor("m", make_spec(1000), REF)
    found: list[Finding] = []
    t0 = 0.0
    for shift, n in ((0.0, 2300), (0.6, 1700), (0.6, 1300)):  # blocks of 500 cut across polls
        batch = make_outcomes(rng, n, shift=shift, t0=t0)
        batch.features["plan"][: n // 3] = None  # missing values: the missing-rate check per block too
        found += live.observe_predictions(as_predictions(batch))
        t0 += n
    steps = [s for s in live.replay_steps() if s.kind == "prediction_block"]
    assert len(steps) == 1
    step = steps[0]
    live_block = [f.to_dict() for f in found if (f.window_end == step.end and f.details.get("sequential"))
                  or (f.window_end == step.end and f.detector == "missing_rate")]
    assert any(d["degraded"] for d in live_block) and len(step) == 500
    assert {d["kind"] for d in live_block} >= {"data_drift", "prediction_drift", "multivariate_drift",
                                               "estimated_performance"}
    again = ModelMonitor("m", make_spec(1000), REF).replay(ReplayStep.from_json(step.to_json()))
    assert [f.to_dict() for f in again] == live_block
    # the state before the block matters: without it (a fresh CUSUM) the same rows give other numbers
    fresh = ModelMonitor("m", make_spec(1000), REF)
    cold = fresh.replay(ReplayStep(step.kind, step.end, {}, step.rows))
    assert [f.to_dict() for f in cold] != live_block


def test_the_last_degraded_outcome_block_replays_the_performance_cusums_exactly() -> None:
    rng = np.random.default_rng(4)
    live = ModelMonitor("m", make_spec(1000), REF)
    found: list[Finding] = []
    good = make_outcomes(rng, 1700)
    bad = make_outcomes(rng, 2900, t0=1700)
    bad.y_pred = np.where(rng.random(2900) < 0.5, "1", "0").astype(object)  # the model breaks
    for batch in (good, bad):
        for i in range(0, len(batch), 700):  # polls that cut across the blocks of 500 outcomes
            found += live.observe_outcomes(_slice(batch, i, i + 700))
    steps = [s for s in live.replay_steps() if s.kind == "outcome_block"]
    assert len(steps) == 1
    step = steps[0]
    live_block = [f.to_dict() for f in found if f.window_end == step.end and f.kind == "performance"
                  and f.details.get("sequential")]
    assert live_block and any(d["degraded"] for d in live_block)
    again = ModelMonitor("m", make_spec(1000), REF).replay(ReplayStep.from_json(step.to_json()))
    assert [f.to_dict() for f in again] == live_block
    cold = ModelMonitor("m", make_spec(1000), REF).replay(ReplayStep(step.kind, step.end, {}, step.rows))
    assert [f.to_dict() for f in cold] != live_block


def _slice(o: OutcomeBatch, a: int, b: int) -> OutcomeBatch:
    return OutcomeBatch(timestamps=o.timestamps[a:b], prediction_timestamps=o.prediction_timestamps[a:b],
                        y_true=o.y_true[a:b], y_pred=o.y_pred[a:b], score=o.score[a:b],
                        features={k: v[a:b] for k, v in o.features.items()},
                        kpis={k: v[a:b] for k, v in o.kpis.items()})


def test_the_last_degraded_accuracy_batch_replays_its_verdicts_exactly() -> None:
    """Accuracy's CUSUMs run per outcome, a verdict every block of them; a verdict reads the recent
    outcomes since the change (up to KEEP of them): the batch carries those before it."""
    rng = np.random.default_rng(5)
    live = ModelMonitor("m", make_spec(1000), REF)
    found: list[Finding] = []
    good = make_outcomes(rng, 1500)
    bad = make_outcomes(rng, 2600, t0=1500)
    pro = bad.features["plan"] == "pro"  # a segment breaks: the verdict names it
    bad.y_pred[pro] = np.where(bad.y_true[pro] == "1", "0", "1")
    for batch in (good, bad):
        for i in range(0, len(batch), 650):
            found += live.observe_outcomes(_slice(batch, i, i + 650))
    steps = [s for s in live.replay_steps() if s.kind == "accuracy_batch"]
    assert len(steps) == 1
    step = steps[0]
    live_verdicts = [f.to_dict() for f in found[-60:] if f.detector == "accuracy" and f.kind == "performance"
                     and step.end - 650 < f.window_end <= step.end]
    assert live_verdicts[-1]["degraded"] and live_verdicts[-1]["details"]["segment"] == "plan=pro"
    again = ModelMonitor("m", make_spec(1000), REF).replay(ReplayStep.from_json(step.to_json()))
    assert [f.to_dict() for f in again] == live_verdicts  # every verdict of the batch, its segment test too
    cold = ModelMonitor("m", make_spec(1000), REF).replay(ReplayStep(
        step.kind, step.end, {"seen": 0, "named": None, "cusums": [[0.0, 0, 0]] * len(step.state["cusums"])},
        {k: v for k, v in step.rows.items() if not k.startswith("recent:")} | {"recent:errors": np.empty(0)}))
    assert [f.to_dict() for f in cold] != live_verdicts
