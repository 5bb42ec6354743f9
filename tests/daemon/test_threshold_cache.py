"""CUSUM thresholds kept beside the state: a restart reads them; each equals the one solved afresh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftwarden.daemon.threshold_cache import load_thresholds, save_thresholds
from driftwarden.detectors import cusum


@pytest.fixture
def empty_memo(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[float, float, float], float]:
    memo: dict[tuple[float, float, float], float] = {}
    monkeypatch.setattr(cusum, "_SOLVED", memo)
    return memo


def test_saved_thresholds_are_read_back_exactly_and_equal_the_solved_ones(
        tmp_path: Path, empty_memo: dict[tuple[float, float, float], float]) -> None:
    rng = np.random.default_rng(4)
    keys = [(float(p0), cusum.alternative_rate(float(p0), 2.0), float(t))
            for p0, t in zip(rng.uniform(0.02, 0.45, 6), rng.choice([2e5, 5e6, 1e7], 6), strict=True)]
    solved = [cusum.threshold_for(*k) for k in keys]
    path = tmp_path / "dw.db.thresholds.json"
    save_thresholds(path)
    empty_memo.clear()
    assert load_thresholds(path) == len(keys)
    for key, h in zip(keys, solved, strict=True):
        assert empty_memo[key] == h == cusum._solve_threshold(*key)  # the saved h is the solved one, bit for bit


def test_a_file_of_another_chain_or_unreadable_is_ignored(
        tmp_path: Path, empty_memo: dict[tuple[float, float, float], float]) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"chain": "other", "thresholds": [[0.1, 0.18, 1e6, 1.0]]}))
    assert load_thresholds(path) == 0 and not empty_memo
    path.write_text("{not json")
    assert load_thresholds(path) == 0 and not empty_memo
    assert load_thresholds(tmp_path / "missing.json") == 0


def test_a_remembered_threshold_is_returned_without_solving(
        monkeypatch: pytest.MonkeyPatch, empty_memo: dict[tuple[float, float, float], float]) -> None:
    cusum.remember_thresholds([(0.1, 0.2, 1e6, 3.21)])

    def no_solve(*_: float) -> float:
        raise AssertionError("solved again")

    monkeypatch.setattr(cusum, "_solve_threshold", no_solve)
    assert cusum.threshold_for(0.1, 0.2, 1e6) == 3.21
