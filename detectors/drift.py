"""Data and prediction drift of one model: every subject's test, one multiple-testing family.

Subjects are the declared features (kind ``data_drift``), the prediction and the
score (kind ``prediction_drift``). Per window each subject with at least
``min_events`` non-missing values gets a p-value (KS numeric, chi-square
categorical) and an effect size (the configured metric). The p-values of all
subjects of the window are corrected together (Benjamini-Hochberg by default,
Bonferroni optional); a subject is degraded when its corrected p-value is below
``alpha`` AND its effect size is at least the threshold. Subjects with too few
values yield no finding for that window (no evidence either way).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftwarden.detectors.base import fmt, severity
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.binning import binned_distances
from driftwarden.detectors.categorical import CategoricalDriftTest, CategoricalReference
from driftwarden.detectors.findings import Finding, Kind
from driftwarden.detectors.numeric import NumericDriftTest, NumericReference, ks_bounded, ks_pvalue
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import ModelSpec

METRIC_LABELS = {"psi": "PSI", "jensen_shannon": "JS distance", "hellinger": "Hellinger distance",
                 "wasserstein": "Wasserstein/std", "tvd": "TVD"}


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Multiple-testing adjusted p-values (``benjamini_hochberg``, ``bonferroni`` or ``none``).

    >>> adjust_pvalues(np.array([0.01, 0.04, 0.03]), "benjamini_hochberg").round(3).tolist()
    [0.03, 0.04, 0.04]
    >>> adjust_pvalues(np.array([0.01, 0.5]), "bonferroni").tolist()
    [0.02, 1.0]
    """
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


Test = NumericDriftTest | CategoricalDriftTest


class DriftSuite:
    """All drift subjects of one model and their current window."""

    def __init__(self, spec: ModelSpec, reference: OutcomeBatch, window_size: int | None = None,
                 all_statistics: bool = False) -> None:
        self.settings: MonitorSettings = spec.monitoring
        # Wasserstein is the costly statistic: computed for every subject only when it is the effect
        # size or all statistics are asked for (driftwarden compare); otherwise for drifted subjects.
        self.all_statistics = all_statistics or self.settings.drift.numeric_metric == "wasserstein"
        s = self.settings.drift
        size = window_size or self.settings.window_size
        self.tests: dict[str, Test] = {}
        self.kinds: dict[str, Kind] = {}
        self.types: dict[str, str] = {}
        columns: dict[str, tuple[str, np.ndarray, Kind]] = {}
        for name, fs in spec.features.items():
            if name in reference.features:
                columns[name] = (fs.type, reference.features[name], "data_drift")
        if s.include_predictions:
            pred_type = "numeric" if spec.task == "regression" else "categorical"
            columns["prediction"] = (pred_type, reference.y_pred, "prediction_drift")
            if reference.score is not None and reference.score.dtype.kind == "f":
                columns["score"] = ("numeric", reference.score, "prediction_drift")
        for name, (ftype, values, kind) in columns.items():
            if ftype == "numeric":
                ref = NumericReference(np.asarray(values, dtype=np.float64), s.numeric_bins,
                                       s.reference_sample_size)
                self.tests[name] = NumericDriftTest(ref, size)
            else:
                self.tests[name] = CategoricalDriftTest(CategoricalReference(values, s.max_categories))
            self.kinds[name] = kind
            self.types[name] = ftype

    def update(self, features: dict[str, np.ndarray], prediction: np.ndarray,
               score: np.ndarray | None) -> None:
        for name, test in self.tests.items():
            if name == "prediction":
                values: np.ndarray | None = prediction
            elif name == "score":
                values = score
            else:
                values = features.get(name)
            if values is None:
                continue
            if self.types[name] == "numeric" and values.dtype != np.float64:
                values = np.asarray(values, dtype=np.float64)
            test.update(values)

    def reset(self) -> None:
        for test in self.tests.values():
            test.reset()

    def evaluate(self, window_end: float, window_size: int) -> list[Finding]:
        """Findings of the current window (call ``reset`` afterwards)."""
        s = self.settings.drift
        results = {name: t.result() for name, t in self.tests.items() if isinstance(t, CategoricalDriftTest)}
        results.update(self._numeric_results())
        tested = [n for n, r in results.items() if r["n"] >= self.settings.min_events]
        raw = np.array([results[n]["ks_p" if self.types[n] == "numeric" else "chi2_p"] for n in tested])
        adjusted = adjust_pvalues(raw, s.correction)
        findings = []
        for name, p_raw, p_adj in zip(tested, raw, adjusted, strict=True):
            ftype = self.types[name]
            metric = s.numeric_metric if ftype == "numeric" else s.categorical_metric
            threshold = s.effect_threshold("numeric" if ftype == "numeric" else "categorical")
            r = results[name]
            effect = float(r[metric])
            degraded = bool(p_adj < s.alpha and effect >= threshold)
            test_name = "KS" if ftype == "numeric" else "chi2"
            op = ">=" if effect >= threshold else "<"
            summary = (f"{METRIC_LABELS[metric]} of {name} {fmt(effect)} {op} {fmt(threshold)} "
                       f"({test_name} p={fmt(float(p_raw))}, adjusted {fmt(float(p_adj))})")
            test = self.tests[name]
            if degraded and isinstance(test, NumericDriftTest) and "wasserstein" not in r:
                r["wasserstein"] = test.wasserstein()
            details: dict[str, Any] = {k: float(v) for k, v in r.items()}
            details.update(test=test_name, p_raw=float(p_raw), correction=s.correction, alpha=s.alpha,
                           tested_subjects=len(tested))
            if isinstance(test, CategoricalDriftTest) and test.unseen_names:
                details["unseen_categories"] = ", ".join(test.unseen_names)
            findings.append(Finding(
                kind=self.kinds[name], detector=metric, subject=name, statistic=effect, threshold=threshold,
                degraded=degraded, window_end=window_end, window_size=window_size, p_value=float(p_adj),
                severity=severity(effect, threshold, 0.0, self.settings.critical_factor)  # type: ignore[arg-type]
                if degraded else "warning",
                summary=summary, details=details))
        return findings

    def _numeric_results(self) -> dict[str, dict[str, float]]:
        """NumericDriftTest.result of every numeric subject, the small-array statistics vectorized across subjects."""
        tests = {name: t for name, t in self.tests.items() if isinstance(t, NumericDriftTest)}
        results: dict[str, dict[str, float]] = {}
        live: dict[str, np.ndarray] = {}  # subjects with values: name -> sorted window
        for name, test in tests.items():
            w = test.sorted_window()
            if w.size and test.reference.size:
                live[name] = w
            else:
                results[name] = test.result(False, self.all_statistics)
        if not live:
            return results
        names = list(live)
        d = np.array([ks_bounded(tests[n].reference, live[n]) for n in names])
        sizes = np.array([live[n].size for n in names])
        p = ks_pvalue(d, np.array([tests[n].reference.size for n in names]), sizes)
        distances = binned_distances([tests[n].reference.counts for n in names],
                                     [tests[n].bin_counts(live[n]) for n in names])
        for i, name in enumerate(names):
            results[name] = {"n": int(sizes[i]), "ks": float(d[i]), "ks_p": float(p[i]),
                             **{k: float(v[i]) for k, v in distances.items()}}
            if self.all_statistics:
                results[name]["wasserstein"] = tests[name].wasserstein(live[name])
        return results

    def histograms(self) -> dict[str, dict[str, Any]]:
        """Current window vs reference bin counts per subject (for root-cause reports)."""
        out: dict[str, dict[str, Any]] = {}
        for name, test in self.tests.items():
            if isinstance(test, NumericDriftTest):
                out[name] = {"type": "numeric", "edges": test.reference.binning.edges.tolist(),
                             "reference": test.reference.counts.tolist(), "current": test.counts.tolist()}
            else:
                out[name] = {"type": "categorical", "categories": test.reference.binning.labels,
                             "reference": test.reference.counts.tolist(), "current": test.counts.tolist()}
        return out

    def state(self) -> dict[str, Any]:
        return {name: t.state() for name, t in self.tests.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        for name, test in self.tests.items():
            if name in state:
                test.load_state(state[name])
