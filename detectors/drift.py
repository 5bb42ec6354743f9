"""Data and prediction drift of one model: every subject's test, one multiple-testing family.

Subjects are the declared features (kind ``data_drift``), the prediction and the
score (kind ``prediction_drift``).

``drift.method: sequential`` (default): :meth:`DriftSuite.evaluate_block` runs every
``monitoring.block`` predictions; each subject's block p-value feeds its CUSUM and
the effect size is pooled over its change window (:mod:`detectors.sequential`;
threshold from :mod:`detectors.calibration`). Categorical bins that the reference
makes rare in a block (expected count < 5) are merged for the block's chi-square,
whose p-value is too small on sparse cells. A subject whose distribution follows the
time of day in a reference of whole days is judged against the reference rows of the
block's own hours instead (:mod:`detectors.time_of_day`: chi-square on its bins, the
effect too); without such a reference nothing changes.

``drift.method: window``: :meth:`DriftSuite.evaluate` per window. Each subject with at least
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
from scipy.special import kolmogorov

from driftwarden.detectors.base import decode_array, encode_array, fmt, severity
from driftwarden.detectors.batch import OutcomeBatch
from driftwarden.detectors.binning import binned_distances, hellinger, jensen_shannon, psi, total_variation
from driftwarden.detectors.calibration import Calibration
from driftwarden.detectors.categorical import CategoricalDriftTest, CategoricalReference, chi_square_of
from driftwarden.detectors.findings import Finding, Kind
from driftwarden.detectors.numeric import NumericDriftTest, NumericReference, ks_bounded, ks_pvalue
from driftwarden.detectors.sequential import CusumAlarm, sequential_finding, z_score
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import ModelSpec
from driftwarden.detectors.time_of_day import DailyProfile, daily_profiles

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


def sparse_chi_square_p(reference: np.ndarray, current: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square p-value of ``current`` against ``reference`` counts, rare reference bins merged.

    Bins whose expected count in ``current`` (from the reference's shares) is under
    ``min_expected`` are pooled into one, the unseen bucket (the last) kept apart.

    >>> ref = np.array([5000, 4000, 10, 10, 10, 0])
    >>> round(sparse_chi_square_p(ref, np.array([250, 200, 1, 0, 0, 0])), 3)
    0.923
    """
    ref, cur = reference.tolist(), current.tolist()  # a few dozen bins: Python's sums beat numpy's calls
    n, total = sum(cur), max(sum(ref), 1)
    rare = [r > 0 and r / total * n < min_expected for r in ref]
    rare[-1] = False  # the unseen bucket
    if sum(rare) >= 2:
        ref, cur = _merged(ref, rare), _merged(cur, rare)
    return chi_square_of(ref, cur)[1]


def _merged(counts: list[float], rare: list[bool]) -> list[float]:
    """``counts`` with the rare bins pooled into one, last."""
    return [*(c for c, x in zip(counts, rare, strict=True) if not x), sum(c for c, x in zip(counts, rare, strict=True) if x)]


def _effect(metric: str, reference: np.ndarray, current: np.ndarray) -> float:
    fn = {"psi": psi, "jensen_shannon": jensen_shannon, "hellinger": hellinger, "tvd": total_variation}[metric]
    return fn(reference, current)


def ks_block_pvalue(d: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sample KS p-values by Stephens' approximation: ``Q_KS((sqrt(en) + 0.12 + 0.11 / sqrt(en)) D)``.

    ``en = m n / (m + n)``; Q_KS is the Kolmogorov distribution's survival function. A
    block is small (500), so the exact-branch p-values of :func:`ks_pvalue` cost ~10 ms
    each; this is a ufunc, accurate in the tail for ``en >= 4`` (Stephens 1970; Numerical
    Recipes' ``kstwo``).

    >>> round(float(ks_block_pvalue(np.array([0.08]), np.array([20_000]), np.array([500]))[0]), 4)
    0.0036
    """
    en = np.sqrt(m * n / (m + n))
    return np.clip(kolmogorov((en + 0.12 + 0.11 / en) * d), 0.0, 1.0)


Test = NumericDriftTest | CategoricalDriftTest


def _tested_counts(test: Test) -> np.ndarray:
    """The reference counts a window is compared with (categorical: unseen share included)."""
    return test.reference.expected if isinstance(test, CategoricalDriftTest) else test.reference.counts


def _same_hours(profile: DailyProfile, expected: np.ndarray) -> dict[str, Any]:
    """Finding details of a block judged against the reference's same time of day."""
    return {"reference": "same time of day", "reference_rows_same_hours": round(float(expected.sum())),
            "time_of_day_dependence_p": profile.p_value}


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
        binned: dict[str, tuple[np.ndarray, object]] = {}
        for name, (ftype, values, kind) in columns.items():
            if ftype == "numeric":
                values = np.asarray(values, dtype=np.float64)
                ref = NumericReference(values, s.numeric_bins, s.reference_sample_size)
                self.tests[name] = NumericDriftTest(ref, size)
            else:
                self.tests[name] = CategoricalDriftTest(CategoricalReference(values, s.max_categories))
            self.kinds[name] = kind
            self.types[name] = ftype
            binned[name] = (values, self.tests[name].reference.binning)
        # sequential: subjects that follow the day in the reference are judged against its same hours
        self.day_slots, self.daily, self.daily_note = (daily_profiles(reference.prediction_timestamps, binned)
                                                       if s.method == "sequential" else (None, {}, ""))
        self.calibration: Calibration | None = None
        self.alarms: dict[str, CusumAlarm] = {}
        self._pooled: dict[str, np.ndarray] = {}  # change-window bin counts per subject
        self._pooled_values: dict[str, np.ndarray] = {}  # change-window values (Wasserstein floor only)
        self._pooled_reference: dict[str, np.ndarray] = {}  # daily subjects: their change window's expected counts
        self._keep_values = size if s.numeric_metric == "wasserstein" else 0

    def arm(self, calibration: Calibration) -> None:
        """Start the sequential tests (one CUSUM per subject) with ``calibration``'s threshold."""
        self.calibration = calibration
        self.alarms = {name: CusumAlarm(calibration.h, calibration.k) for name in self.tests}
        self._pooled = {name: np.zeros(t.reference.counts.size, dtype=np.int64) for name, t in self.tests.items()}
        self._pooled_values = {name: np.empty(0) for name in self.tests if self.types[name] == "numeric"}
        self._pooled_reference = {name: np.zeros(self._pooled[name].size) for name in self.daily}

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

    def _results(self) -> dict[str, dict[str, float]]:
        results = {name: t.result() for name, t in self.tests.items() if isinstance(t, CategoricalDriftTest)}
        results.update(self._numeric_results())
        return results

    def evaluate_block(self, block_end: float, block_size: int, times: np.ndarray | None = None) -> list[Finding]:
        """Sequential findings after the current block (call ``reset`` afterwards; needs :meth:`arm`).

        Only what the CUSUM needs is computed per block: the KS statistic (numeric) or the
        bin counts (categorical), one p-value each, and the floor's metric over the change
        windows, vectorized across subjects where it can be. ``times``: the block's event
        times; with them a subject that follows the day (:attr:`daily`) is judged against
        the reference's same time of day (:mod:`detectors.time_of_day`).
        """
        if self.calibration is None:
            raise RuntimeError("DriftSuite.evaluate_block needs arm(calibration) first")
        s = self.settings.drift
        names: list[str] = []
        counts: list[np.ndarray] = []
        pvalues: dict[str, float] = {}
        extra: dict[str, dict[str, Any]] = {}
        ks: dict[str, tuple[float, int, int]] = {}
        weights = self.day_slots.weights(times) if self.daily and self.day_slots and times is not None else None
        expected: dict[str, np.ndarray] = {}  # daily subjects: the reference counts of the block's hours
        for name, test in self.tests.items():
            profile = self.daily.get(name) if weights is not None else None
            if isinstance(test, NumericDriftTest):
                w = test.sorted_window()
                if w.size < self.settings.min_events or test.reference.size == 0:
                    continue
                c = test.bin_counts(w)
                if profile is None:
                    ks[name] = (ks_bounded(test.reference, w), test.reference.n_values, int(w.size))
                else:
                    extra[name] = {}
            else:
                c = test.counts
                if c.sum() < self.settings.min_events:
                    continue
                extra[name] = {"block_unseen_rate": float(c[-1] / c.sum())}
                if test.unseen_names:
                    extra[name]["unseen_categories"] = ", ".join(test.unseen_names)
                if profile is None:
                    pvalues[name] = sparse_chi_square_p(test.reference.expected, c)
            if profile is not None:
                assert weights is not None
                expected[name] = profile.expected(weights)
                pvalues[name] = sparse_chi_square_p(expected[name], c)
                extra[name].update(_same_hours(profile, expected[name]))
            names.append(name)
            counts.append(c)
        if ks:
            d = np.array([v[0] for v in ks.values()])
            p = ks_block_pvalue(d, np.array([v[1] for v in ks.values()]), np.array([v[2] for v in ks.values()]))
            for i, name in enumerate(ks):
                pvalues[name] = float(p[i])
                extra[name] = {"block_ks": float(d[i])}
        z = z_score(np.array([pvalues[n] for n in names]))
        for name, c in zip(names, counts, strict=True):
            if self.alarms[name].starts_run:
                self._pooled[name][:] = 0
                if name in self._pooled_values:
                    self._pooled_values[name] = np.empty(0)
                if name in self._pooled_reference:
                    self._pooled_reference[name][:] = 0.0
            self._pooled[name] += c
            if name in expected:  # the reference's share at the block's hours, as many values as the block's
                self._pooled_reference[name] += expected[name] / max(expected[name].sum(), 1.0) * c.sum()
            self.alarms[name].step(float(z[names.index(name)]))
        effects = self._change_effects(names)
        findings = []
        for i, name in enumerate(names):
            numeric = self.types[name] == "numeric"
            metric = s.numeric_metric if numeric else s.categorical_metric
            floor = s.effect_threshold("numeric" if numeric else "categorical", sequential=True)
            alarm = self.alarms[name]
            alarm.decide(effects[name], floor)
            label = METRIC_LABELS[metric] + (" (same hours)" if name in expected and metric != "wasserstein" else "")
            findings.append(sequential_finding(
                kind=self.kinds[name], subject=name, alarm=alarm, calibration=self.calibration, z=float(z[i]),
                p=pvalues[name], test="KS" if name in ks else "chi2", effect=effects[name], floor=floor,
                effect_label=label, window_end=block_end, block_events=block_size,
                change_events=int(self._pooled[name].sum()), critical_factor=self.settings.critical_factor,
                extra=extra[name]))
        return findings

    def _change_effects(self, names: list[str]) -> dict[str, float]:
        """The floor's metric over each subject's change window (PSI/JS/Hellinger in one vectorized pass)."""
        s = self.settings.drift
        metric = {n: s.numeric_metric if self.types[n] == "numeric" else s.categorical_metric for n in names}
        binned = [n for n in names if metric[n] in ("psi", "jensen_shannon", "hellinger")]
        out: dict[str, float] = {}
        if binned:
            distances = binned_distances([self._reference_counts(n) for n in binned],
                                         [self._pooled[n] for n in binned])
            out = {n: float(distances[metric[n]][i]) for i, n in enumerate(binned)}
        for n in names:
            if n not in out:
                out[n] = self._change_effect(n, metric[n])
        return out

    def _reference_counts(self, name: str) -> np.ndarray:
        """What a change window is compared with: the reference's same hours for a daily subject that has them."""
        pooled = self._pooled_reference.get(name)
        return pooled if pooled is not None and pooled.sum() > 0 else _tested_counts(self.tests[name])

    def _change_effect(self, name: str, metric: str) -> float:
        test = self.tests[name]
        if metric != "wasserstein" or not isinstance(test, NumericDriftTest):
            return _effect(metric, self._reference_counts(name), self._pooled[name])
        pooled = np.concatenate([self._pooled_values[name], test.sorted_window()])[-self._keep_values:]
        self._pooled_values[name] = pooled
        return test.wasserstein(np.sort(pooled))

    def sequential_state(self) -> dict[str, Any]:
        """The CUSUMs and their change windows (JSON-safe)."""
        return {name: {**alarm.state(), "pooled": self._pooled[name].tolist(),
                       **({"values": encode_array(self._pooled_values[name])} if name in self._pooled_values else {}),
                       **({"pooled_reference": self._pooled_reference[name].tolist()}
                          if name in self._pooled_reference else {})}
                for name, alarm in self.alarms.items()}

    def load_sequential_state(self, state: dict[str, Any]) -> None:
        for name, alarm in self.alarms.items():
            if name not in state:
                continue
            alarm.load_state(state[name])
            pooled = np.asarray(state[name]["pooled"], dtype=np.int64)
            if pooled.size == self._pooled[name].size:
                self._pooled[name] = pooled
            if "values" in state[name] and name in self._pooled_values:
                self._pooled_values[name] = decode_array(state[name]["values"])
            if name in self._pooled_reference:
                expected = np.asarray(state[name].get("pooled_reference", ()), dtype=np.float64)
                self._pooled_reference[name] = expected if expected.size == pooled.size else np.zeros(pooled.size)

    def evaluate(self, window_end: float, window_size: int) -> list[Finding]:
        """Findings of the current window (call ``reset`` afterwards)."""
        s = self.settings.drift
        results = self._results()
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
        p = ks_pvalue(d, np.array([tests[n].reference.n_values for n in names]), sizes)
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
