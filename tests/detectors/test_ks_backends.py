"""The exact KS kernel's two backends: numba (the ``fast`` extra) and the numpy fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from driftwarden.detectors import ks_exact
from driftwarden.detectors.numeric import NumericReference

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 3000), st.integers(2, 800), st.sampled_from(["normal", "ties", "shifted"]))
def test_both_backends_give_scipys_statistic_bit_for_bit(seed: int, m: int, n: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(size=m)
    w = rng.normal(0.2, 1.1, size=n) if kind == "shifted" else rng.normal(size=n)
    if kind == "ties":
        r, w = np.round(r * 2) / 2, np.round(w * 2) / 2
    ref, win = NumericReference(r, sample_size=m), np.sort(w)  # all of it kept: exact
    args = (ref.sorted, ref.cut_values, ref.cut_at_or_below, ref.cut_below, win)
    expected = stats.ks_2samp(r, w, method="asymp").statistic
    assert ks_exact.ks_sorted_numpy(*args) == expected
    assert ks_exact._NUMBA_KERNEL is not None, "the dev extra installs numba: pip install -e .[dev]"
    assert ks_exact._NUMBA_KERNEL(*args) == expected


def _backend_of_a_fresh_process(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport detectors.ks_exact as k\nprint(k.BACKEND, k.numba_available())"],
        cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def test_without_numba_the_numpy_fallback_runs() -> None:
    blocked = "import sys\nsys.modules['numba'] = None  # as if not installed: import numba raises ImportError"
    check = blocked + (
        "\nimport numpy as np\nfrom scipy import stats\nfrom detectors.numeric import NumericDriftTest, NumericReference"
        "\nrng = np.random.default_rng(0)\nr, w = rng.normal(size=5000), rng.normal(0.1, 1, size=700)"
        "\nt = NumericDriftTest(NumericReference(r, sample_size=5000), window_size=700)\nt.update(w)"
        "\nassert t.result()['ks'] == stats.ks_2samp(r, w, method='asymp').statistic"
    )
    assert _backend_of_a_fresh_process(check, DRIFTWARDEN_NO_NUMBA="") == "numpy False"
    assert _backend_of_a_fresh_process("", DRIFTWARDEN_NO_NUMBA="1") == "numpy True"
    assert _backend_of_a_fresh_process("", DRIFTWARDEN_NO_NUMBA="") == "numba True"


def test_use_backend_switches_and_refuses_unknown_names() -> None:
    previous = ks_exact.use_backend("numpy")
    try:
        assert ks_exact.BACKEND == "numpy" and ks_exact._active is ks_exact.ks_sorted_numpy
        ks_exact.warm_up()  # nothing to compile
        with pytest.raises(ValueError, match="unknown KS backend 'cuda'"):
            ks_exact.use_backend("cuda")
    finally:
        ks_exact.use_backend(previous)
