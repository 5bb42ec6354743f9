"""Exact agreement with scipy and river on random inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift
from river.drift import binary
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftwarden.detectors.binning import jensen_shannon
from driftwarden.detectors.categorical import chi_square
from driftwarden.detectors.concept import ConceptDriftDetector
from driftwarden.detectors.numeric import NumericReference, ks_bounded, ks_pvalue, ks_statistic, reference_prefix, wasserstein

samples = st.lists(st.one_of(st.integers(-5, 5).map(float), st.floats(-1e3, 1e3)), min_size=2, max_size=80)


@pytest.mark.usefixtures("ks_backend")
@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_ks_and_wasserstein_match_scipy(ref: list[float], win: list[float]) -> None:
    r, w = np.sort(np.array(ref)), np.array(win)
    expected = stats.ks_2samp(r, w, method="asymp")
    d = ks_statistic(r, w)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_bounded(NumericReference(r), np.sort(w)) == expected.statistic  # the branch and bound (numba or numpy)
    assert ks_pvalue(d, r.size, w.size) == pytest.approx(expected.pvalue, abs=1e-12)
    got = wasserstein(r, reference_prefix(r), w)
    assert got == pytest.approx(stats.wasserstein_distance(r, w), rel=1e-9, abs=1e-9)


counts = st.lists(st.integers(0, 50), min_size=2, max_size=12)


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_chi2_and_js_match_scipy(ref: list[int], data: st.DataObject) -> None:
    cur = data.draw(st.lists(st.integers(0, 50), min_size=len(ref), max_size=len(ref)))
    r, c = np.array(ref), np.array(cur)
    stat, p, dof = chi_square(r, c)
    table = np.vstack([r, c])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and (table.sum(axis=1) > 0).all():
        exp = stats.chi2_contingency(table, correction=False)
        assert stat == pytest.approx(exp.statistic, rel=1e-9, abs=1e-12)
        assert p == pytest.approx(exp.pvalue, rel=1e-9, abs=1e-12)
        assert dof == exp.dof
    else:
        assert (stat, p) == (0.0, 1.0)
    if r.sum() and c.sum():
        assert jensen_shannon(r, c) == pytest.approx(float(jensenshannon(r, c, base=2)), abs=1e-7)


RIVER = {"adwin": lambda: drift.ADWIN(), "page_hinkley": lambda: drift.PageHinkley(),
         "kswin": lambda: drift.KSWIN(seed=42), "ddm": lambda: binary.DDM(), "eddm": lambda: binary.EDDM(),
         "hddm_a": lambda: binary.HDDMA(), "hddm_w": lambda: binary.HDDMW()}


def _stream(name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = 600 if name == "kswin" else 6000
    p = np.where(np.arange(n) < n // 2, 0.1, 0.45)
    return (rng.random(n) < p).astype(float)


@pytest.mark.parametrize("name", sorted(RIVER))
def test_concept_detections_equal_river_and_survive_restore(name: str) -> None:
    for seed in range(3):
        stream = _stream(name, seed)
        river_det = RIVER[name]()
        raw = []
        for i, x in enumerate(stream):
            river_det.update(x)
            if river_det.drift_detected:
                raw.append(i)
        ours = ConceptDriftDetector(name, refractory=0)
        got = []
        for chunk in np.array_split(stream, 7):
            got += ours.update(chunk)
        assert got == raw
        # save -> restore -> continue at every split point gives the same detections
        for cut in (1, len(stream) // 3, len(stream) // 2 + 17):
            live = ConceptDriftDetector(name, refractory=0)
            first = live.update(stream[:cut])
            import json
            restored = ConceptDriftDetector.from_state(json.loads(json.dumps(live.state())))
            assert first + restored.update(stream[cut:]) == raw


def test_refractory_merges_refires() -> None:
    rng = np.random.default_rng(0)
    stream = np.concatenate([rng.random(3000) < 0.05, rng.random(6000) < np.linspace(0.05, 0.6, 6000)])
    raw = ConceptDriftDetector("adwin", refractory=0).update(stream.astype(float))
    det = ConceptDriftDetector("adwin", refractory=10_000)
    reported = det.update(stream.astype(float))
    assert len(raw) > 1 and reported == raw[:1] and det.merged == len(raw) - 1


def test_replay_limit_bounds_state_and_stays_restorable() -> None:
    rng = np.random.default_rng(1)
    stream = (rng.random(5000) < 0.2).astype(float)
    live = ConceptDriftDetector("page_hinkley", replay_limit=1000)
    live.update(stream[:2500])
    assert live.buffered <= 1000
    twin = ConceptDriftDetector.from_state(live.state())
    assert live.update(stream[2500:]) == twin.update(stream[2500:])


@pytest.mark.usefixtures("ks_backend")
@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_the_windowed_test_matches_scipy_on_tie_heavy_data(ref: list[float], win: list[float]) -> None:
    """The detector's own path (precomputed reference tie runs, run-length window ties) == scipy."""
    from driftwarden.detectors.numeric import NumericDriftTest, NumericReference

    r, w = np.array(ref), np.array(win)
    test = NumericDriftTest(NumericReference(r), window_size=len(w))
    test.update(w)
    result = test.result()
    expected = stats.ks_2samp(r, w, method="asymp")
    assert result["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["ks_p"] == pytest.approx(expected.pvalue, abs=1e-12)
    scale = NumericReference(r).std or 1.0  # the test reports Wasserstein in reference standard deviations
    assert result["wasserstein"] * scale == pytest.approx(stats.wasserstein_distance(r, w), rel=1e-9, abs=1e-9)


@pytest.mark.usefixtures("ks_backend")
@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(300, 4000), st.integers(1, 1500),
       st.sampled_from(["normal", "shifted", "discrete", "mixed", "constant-window"]))
def test_branch_and_bound_ks_equals_scipy_on_large_references(seed: int, m: int, n: int, kind: str) -> None:
    """References larger than KS_CUTS: the cells are searched point by point only near the supremum."""
    from driftwarden.detectors.numeric import NumericDriftTest, NumericReference

    rng = np.random.default_rng(seed)
    r = rng.normal(size=m)
    w = {"normal": lambda: rng.normal(size=n), "shifted": lambda: rng.normal(0.3, 1.2, size=n),
         "discrete": lambda: rng.integers(-3, 4, size=n).astype(float),
         "mixed": lambda: np.concatenate([rng.normal(size=n // 2), np.round(rng.normal(size=n - n // 2), 1)]),
         "constant-window": lambda: np.full(n, float(r[rng.integers(m)]))}[kind]()
    if kind in ("discrete", "mixed"):
        r = np.round(r * 2) / 2  # tie-heavy reference too
    test = NumericDriftTest(NumericReference(r, sample_size=m), window_size=n)  # all of it kept: exact
    test.update(w)
    result = test.result()
    assert result["ks"] == stats.ks_2samp(r, w, method="asymp").statistic
    assert test.counts.tolist() == test.reference.binning.counts(w).tolist()


@pytest.mark.usefixtures("ks_backend")
def test_the_suite_vectorized_across_subjects_equals_each_subjects_own_result() -> None:
    """DriftSuite evaluates numeric subjects together; each must equal NumericDriftTest.result alone."""
    from driftwarden.detectors.batch import OutcomeBatch
    from driftwarden.detectors.drift import DriftSuite
    from driftwarden.detectors.numeric import NumericDriftTest
    from driftwarden.detectors.settings import DriftSettings, MonitorSettings
    from driftwarden.detectors.spec import FeatureSpec, ModelSpec

    rng = np.random.default_rng(3)
    n = 4000
    ref = {"a": rng.normal(size=n), "b": rng.integers(0, 3, n).astype(float), "c": rng.lognormal(size=n),
           "d": np.full(n, 2.0)}
    spec = ModelSpec("binary", {k: FeatureSpec("numeric") for k in ref},
                     monitoring=MonitorSettings(window_size=800, drift=DriftSettings(include_predictions=False)))
    labels = np.array(["0"] * n, dtype=object)
    suite = DriftSuite(spec, OutcomeBatch(np.zeros(n), np.zeros(n), labels, labels, features=ref), all_statistics=True)
    current = {"a": rng.normal(0.4, 1, 800), "b": rng.integers(0, 5, 800).astype(float),
               "c": np.where(rng.random(800) < 0.1, np.nan, rng.lognormal(size=800)), "d": np.full(800, 2.0)}
    suite.update(current, labels[:800], None)
    findings = {f.subject: f.details for f in suite.evaluate(1.0, 800)}
    for name, test in suite.tests.items():
        assert isinstance(test, NumericDriftTest)
        alone = test.result()
        assert {k: findings[name][k] for k in alone} == pytest.approx(alone, rel=1e-12, abs=1e-15)


def _replay_model(name: str, stream: np.ndarray, limit: int) -> list[int]:
    """The replay-buffer rule written out with river's public ``update``, one value at a time."""
    det, buf, raw = RIVER[name](), [], []
    for i, x in enumerate(stream.tolist()):
        det.update(x)
        buf.append(x)
        if det.drift_detected:
            buf.clear()
            raw.append(i)
        elif len(buf) >= limit:
            del buf[: len(buf) - limit // 2]
            det = RIVER[name]()
            for v in buf:
                det.update(v)
    return raw


@pytest.mark.parametrize("name", ["adwin", "page_hinkley"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), cuts=st.lists(st.integers(1, 3999), max_size=6), errors=st.sampled_from(
    ["binary", "absolute", "mixed"]))
def test_buffer_trims_and_batch_splits_match_river_one_value_at_a_time(name: str, seed: int, cuts: list[int],
                                                                       errors: str) -> None:
    """Detections across replay-buffer trims equal river fed value by value, for any batch split;
    0/1 errors (kept as bytes, exact), regression errors (float64) and a stream that turns from
    one to the other (the buffer widened); a restored detector's next detections are the same."""
    rng = np.random.default_rng(seed)
    rates = np.repeat(rng.uniform(0.02, 0.5, 4), 1000)  # up to three changes
    stream = (rng.random(4000) < rates).astype(float)
    if errors != "binary":
        absolute = np.abs(rng.normal(0, 1, 4000)) * (1 + 2 * rates)
        stream = absolute if errors == "absolute" else np.concatenate([stream[:2000], absolute[2000:]])
    expected = _replay_model(name, stream, limit=600)
    det = ConceptDriftDetector(name, refractory=0, replay_limit=600)
    got: list[int] = []
    for part in np.split(stream, sorted(set(cuts))):
        got += det.update(part)
    assert got == expected
    if errors == "binary":
        assert det._kind == "bits" and det._buffer.nbytes == (600 + 7) // 8  # a bit a 0/1 error (bytes: 8)
    fresh = ConceptDriftDetector.from_state(ConceptDriftDetector(name, replay_limit=600).state())  # nothing kept
    assert fresh.buffered == 0 and fresh.update(stream[:10]) == []
    det = ConceptDriftDetector(name, refractory=0, replay_limit=600)
    first = det.update(stream[:2500])
    twin = ConceptDriftDetector.from_state(json.loads(json.dumps(det.state())))
    assert first + twin.update(stream[2500:]) == expected


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.lists(st.one_of(st.sampled_from([0.0, 1.0]), st.integers(0, 300).map(float),
                                          st.floats(-1e6, 1e6, allow_nan=False, width=32),
                                          st.floats(-1e6, 1e6, allow_nan=False)), max_size=40), max_size=8))
def test_the_replay_buffer_gives_back_exactly_the_values_kept(chunks: list[list[float]]) -> None:
    """The replay buffer in any of its forms (bits, bytes, float32, float64, widened on the way)
    gives back the values appended, in order, bit for bit; 0/1 values take a bit each."""
    det = ConceptDriftDetector("adwin", replay_limit=10_000)
    for chunk in chunks:
        det._keep(np.asarray(chunk, dtype=np.float64))
    everything = [v for c in chunks for v in c]
    assert det._kept().tolist() == everything and det.buffered == len(everything)
    if everything and set(everything) <= {0.0, 1.0}:
        assert det._kind == "bits" and det._buffer.nbytes == 10_000 // 8


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_roc_auc_equals_mann_whitney_u(data: st.DataObject) -> None:
    """AUC = U / (n_pos n_neg), with scipy's mid-ranks for tied scores (drawn from few values to force ties)."""
    from driftwarden.detectors.metrics import auc_from_scores

    n = data.draw(st.integers(2, 300))
    levels = data.draw(st.integers(1, 12))
    score = np.array(data.draw(st.lists(st.integers(0, levels), min_size=n, max_size=n)), dtype=float) / levels
    positive = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    got = auc_from_scores(positive, score)
    if positive.all() or not positive.any():
        assert np.isnan(got)
        return
    u = stats.mannwhitneyu(score[positive], score[~positive], method="asymptotic").statistic
    assert got == pytest.approx(u / (positive.sum() * (~positive).sum()), rel=1e-12, abs=1e-12)
