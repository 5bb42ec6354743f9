from __future__ import annotations

import numpy as np

from driftwarden.detectors.window import ColumnWindow


def test_a_column_missing_from_some_batches_is_filled_not_a_crash() -> None:
    """A batch whose events carry no score (or no class probabilities) after batches that did."""
    w = ColumnWindow(10)
    w.add({"t": np.array([1.0, 2.0]), "score": np.array([0.1, 0.2]), "v": np.array(["a", "b"], dtype=object)})
    w.add({"t": np.array([3.0])})
    w.add({"t": np.array([4.0]), "score": np.array([0.4])})
    cols = w.take()
    np.testing.assert_array_equal(cols["t"], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(cols["score"], [0.1, 0.2, np.nan, 0.4])
    assert cols["v"].tolist() == ["a", "b", None, None]
    assert len(w) == 0
