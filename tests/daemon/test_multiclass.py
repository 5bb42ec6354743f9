"""A multiclass model end to end through the daemon's columns, join and detectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from driftwarden.daemon.checkpoint import decode_state, encode_state
from driftwarden.daemon.columns import prediction_batch
from driftwarden.daemon.events import OutcomeEvent, PredictionEvent
from driftwarden.daemon.join import OutcomeJoin
from driftwarden.daemon.pipeline import outcome_batch
from driftwarden.daemon.reference import load_reference
from driftwarden.detectors.monitor import ModelMonitor
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec
from tests.daemon.test_checkpoint_format import canon

CLASSES = ["cat", "dog", "fox"]
SPEC = ModelSpec(task="multiclass", features={"x": FeatureSpec("numeric")},
                 monitoring=MonitorSettings(window_size=1000))


def draw(rng: np.random.Generator, n: int, broken: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature, class probabilities (softmax of a noisy signal), true labels."""
    truth = rng.integers(0, 3, n)
    x = truth + rng.normal(0, 0.8, n)
    logits = -((x[:, None] - np.arange(3)[None, :]) ** 2)
    if broken:  # the model's probabilities no longer follow the signal
        logits = rng.permuted(logits, axis=1)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return x, p.round(4), truth


def test_multiclass_roc_auc_and_log_loss_from_class_probabilities(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x, p, truth = draw(rng, 10_000)
    table = {"x": x, "prediction": np.array(CLASSES)[p.argmax(axis=1)], "outcome": np.array(CLASSES)[truth]}
    table.update({f"score_{c}": p[:, j] for j, c in enumerate(CLASSES)})
    pq.write_table(pa.table(table), tmp_path / "ref.parquet")
    reference = load_reference(tmp_path / "ref.parquet", SPEC)
    assert reference.class_scores is not None and sorted(reference.class_scores) == CLASSES
    monitor = ModelMonitor("animals", SPEC, reference)
    join = OutcomeJoin(ttl=1e9, max_pending=100_000)

    def run(broken: bool, t0: int) -> dict[str, tuple[float, bool]]:
        x, p, truth = draw(rng, 1000, broken)
        events = [PredictionEvent("animals", str(t0 + i), float(t0 + i), {"x": float(x[i])}, CLASSES[int(p[i].argmax())],
                                  score={c: float(p[i, j]) for j, c in enumerate(CLASSES)}) for i in range(1000)]
        batch = prediction_batch(events, SPEC)
        assert batch.score is None and batch.class_scores is not None
        monitor.observe_predictions(batch)
        join.add_predictions("animals", events)
        pairs = join.add_outcomes("animals", [OutcomeEvent("animals", str(t0 + i), float(t0 + i + 5), CLASSES[truth[i]])
                                              for i in range(1000)])
        found = monitor.observe_outcomes(outcome_batch(pairs, SPEC))
        # ROC AUC and F1 are CUSUM verdicts per block of 500 (statistic S): their value is in the details
        return {f.detector: (float(f.details.get("value", f.statistic)), f.degraded)  # type: ignore[arg-type]
                for f in found if f.kind == "performance"}

    healthy = run(False, 0)
    assert set(healthy) >= {"accuracy", "f1_macro", "roc_auc"}
    assert healthy["roc_auc"][0] > 0.8 and not healthy["roc_auc"][1]
    broken = run(True, 10_000)
    assert broken["roc_auc"][1] and broken["roc_auc"][0] < 0.65
    # its state (class scores, per-class counts) comes back from a checkpoint as JSON gave it back: keys, types, NaN
    state = monitor.state()
    assert canon(decode_state(encode_state(state))) == canon(json.loads(json.dumps(state, allow_nan=True)))
