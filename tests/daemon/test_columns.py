from __future__ import annotations

import numpy as np

from daemon.columns import prediction_batch
from daemon.events import PredictionEvent
from detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={"age": FeatureSpec("numeric"), "plan": FeatureSpec("categorical")})


def test_columns_missing_type_errors_and_undeclared_keys() -> None:
    events = [
        PredictionEvent("m", "1", 10.0, {"age": 41, "plan": "pro"}, 1, score=0.8, model_version="2"),
        PredictionEvent("m", "2", 11.0, {"age": "old", "plan": 3, "colour": "red"}, 0, score=None),
        PredictionEvent("m", "3", 12.0, {"plan": None}, True, score={"1": 0.3, "0": 0.7}),
    ]
    batch = prediction_batch(events, SPEC)
    assert len(batch) == 3
    np.testing.assert_array_equal(batch.features["age"], [41.0, np.nan, np.nan])
    assert batch.features["plan"].tolist() == ["pro", "3", None]
    assert batch.prediction.tolist() == ["1", "0", "true"]
    np.testing.assert_array_equal(batch.score, [0.8, np.nan, 0.3])
    assert batch.type_errors == {"age": 1}
    assert batch.missing_keys == {"age": 1}
    assert batch.undeclared_keys == {"colour": 1}
    assert batch.model_version.tolist() == ["2", None, None]
    np.testing.assert_array_equal(batch.timestamps, [10.0, 11.0, 12.0])
