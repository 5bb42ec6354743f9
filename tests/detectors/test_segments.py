"""Per-segment tests: exact p-values, Holm's adjustment, and how often healthy segments are named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, norm

from driftwarden.detectors.binning import missing_mask
from driftwarden.detectors.segments import SegmentBaseline, Slicer, default_segment_columns, holm
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec

SPEC = ModelSpec(task="binary", features={"plan": FeatureSpec("categorical"), "region": FeatureSpec("categorical"),
                                          "age": FeatureSpec("numeric")})
PLANS, REGIONS = ["basic", "pro", "enterprise"], ["eu", "us", "apac", "latam", "mea"]


def _rows(rng: np.random.Generator, n: int, error: dict[str, float] | None = None) -> tuple[dict, np.ndarray]:
    plan = rng.choice(PLANS, n, p=[0.55, 0.35, 0.10]).astype(object)
    region = rng.choice(REGIONS, n).astype(object)
    p_err = np.full(n, 0.15)
    for value, e in (error or {}).items():
        p_err[plan == value] = e
    return {"plan": plan, "region": region, "age": rng.normal(40, 10, n)}, rng.random(n) >= p_err


def test_holm_on_known_values() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, 0.9])).tolist() == [1.0, 1.0]  # 0.5 x 2 = 1; monotone: 0.9 -> 1
    assert holm(np.array([])).size == 0


def test_drop_p_value_is_scipys_exact_binomial_and_contrast_is_the_z_test() -> None:
    ref_plan = np.array(["pro"] * 1000 + ["basic"] * 1000, dtype=object)
    ref_ok = np.array([True] * 900 + [False] * 100 + [True] * 800 + [False] * 200)  # pro 0.9, basic 0.8
    base = SegmentBaseline(SPEC, {"plan": ref_plan}, ref_ok, ["plan"])
    cur_plan = np.array(["pro"] * 100 + ["basic"] * 200, dtype=object)
    cur_ok = np.array([True] * 80 + [False] * 20 + [True] * 160 + [False] * 40)  # pro 0.8, basic 0.8
    tests = {t.label: t for t in base.tests(base.codes({"plan": cur_plan}), cur_ok)}
    pro = tests["plan=pro"]
    assert pro.p_value == pytest.approx(binomtest(80, 100, 0.9, alternative="less").pvalue, rel=1e-9)
    basic = tests["plan=basic"]
    assert basic.p_value == pytest.approx(binomtest(160, 200, 0.8, alternative="less").pvalue, rel=1e-9)
    # pro fell 0.1 below its reference, basic 0.0: z = 0.1 / sqrt(.8*.2/100 + .8*.2/200)
    assert pro.contrast_p == pytest.approx(float(norm.sf(0.1 / np.sqrt(0.0016 + 0.0008))), rel=1e-9)
    assert pro.adjusted == pytest.approx(min(1.0, 2 * pro.p_value))  # the smaller of two: times 2
    assert (pro.n, pro.correct, pro.reference_n, pro.reference_rate) == (100, 80, 1000, 0.9)


def test_healthy_segments_are_rarely_named() -> None:
    """A seeded simulation: 300 healthy windows of 2,000 outcomes over 8 segments: Holm keeps the
    chance that any is blamed under alpha (expected at most 0.05; allow sampling noise)."""
    rng = np.random.default_rng(11)
    base = SegmentBaseline(SPEC, *_rows(rng, 20_000), ["plan", "region"])
    runs, named, unadjusted = 300, 0, 0
    for _ in range(runs):
        feats, ok = _rows(rng, 2000)
        tests = base.tests(base.codes(feats), ok)
        named += any(t.blamed(0.05) for t in tests)
        unadjusted += any(t.p_value < 0.05 and t.contrast_p < 0.05 for t in tests)
    assert named / runs <= 0.06
    assert unadjusted > named  # without the adjustment more healthy windows would name a segment


def test_a_fault_in_one_segment_is_named_and_a_fault_everywhere_names_none() -> None:
    rng = np.random.default_rng(5)
    base = SegmentBaseline(SPEC, *_rows(rng, 20_000), ["plan", "region"])
    feats, ok = _rows(rng, 2000, {"pro": 0.35})
    tests = base.tests(base.codes(feats), ok)
    assert tests[0].label == "plan=pro" and tests[0].blamed(0.05)
    assert [t.label for t in tests if t.blamed(0.05)] == ["plan=pro"]
    feats, ok = _rows(rng, 2000, dict.fromkeys(PLANS, 0.3))
    tests = base.tests(base.codes(feats), ok)
    assert all(t.adjusted < 0.05 for t in tests if t.column == "plan")  # every plan fell ...
    assert not any(t.blamed(0.05) for t in tests)  # ... alike: no segment is to blame


def test_default_segment_columns_are_the_categorical_features_with_few_categories() -> None:
    rng = np.random.default_rng(0)
    feats, _ = _rows(rng, 1000)
    feats["user"] = np.array([f"u{i}" for i in range(1000)], dtype=object)  # an id: too many categories
    spec = ModelSpec(task="binary", features={**SPEC.features, "user": FeatureSpec("categorical")})
    assert default_segment_columns(spec, feats) == ["plan", "region"]
    chosen = ModelSpec(task="binary", features=spec.features, monitoring=MonitorSettings(segments=["region", "age"]))
    assert default_segment_columns(chosen, feats) == ["region", "age"]


def _codes_by_sorting(slicer: Slicer, values: np.ndarray) -> np.ndarray:
    """Slicer.codes of a categorical column before its dictionary fast path: text, np.unique, a table."""
    missing = len(slicer.labels) - 1
    miss = missing_mask(values)
    uniq, inverse = np.unique(np.where(miss, "", values).astype(str), return_inverse=True)
    table = np.array([slicer.index.get(u, missing - 1) for u in uniq], dtype=np.int64)
    return np.where(miss, missing, table[inverse.ravel()])


_VALUE = st.one_of(st.sampled_from(["basic", "pro", "enterprise", "b", "", "pro\x00", None, 1, 1.5, True]),
                   st.floats(allow_nan=True), st.text(max_size=3))


@settings(max_examples=300, deadline=None)
@given(reference=st.lists(_VALUE, min_size=1, max_size=40), values=st.lists(_VALUE, max_size=40),
       max_categories=st.integers(1, 5))
def test_categorical_codes_are_those_of_the_sorting_path(reference: list[object], values: list[object],
                                                         max_categories: int) -> None:
    def column(items: list[object]) -> np.ndarray:
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out

    slicer = Slicer("plan", column(reference), False, 4, max_categories)
    got, want = slicer.codes(column(values)), _codes_by_sorting(slicer, column(values))
    assert got.dtype == want.dtype and got.tolist() == want.tolist()
