"""Ranked suspects and the changes that line up with the onset.

Importance of a feature: ``FeatureSpec.importance`` when configured, else
estimated on the reference as the correlation ratio (eta) of the model's score
(or numeric prediction; for labels without score, Cramér's V with the predicted
class) over the feature's groups: reference-quantile bins for numeric features,
categories for categorical ones, plus a "missing" group. Eta is in [0, 1] and
catches non-monotonic dependence that |Pearson r| misses. Configured and
estimated importances are each scaled so that their largest is 1.

Drift score: the monitor's latest drift finding for the feature, as statistic /
threshold (1.0 = at the alert threshold); features without such a finding get
PSI on the report's window over reference-quantile bins, divided by 0.2.

Evidence that fits the onset: a feature whose drift run began before the last window in which
the triggering checks were healthy (performance held while it drifted) does not explain the
onset (``onset_fit = "before"``); its rank score is 0 and it is listed after the features whose
drift fits. Rank score = drift score x importance (x 0 when before the onset).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from driftwarden.alerts.quote import quote
from driftwarden.alerts.reports.history import Series, aligned_correlation, run_start
from driftwarden.alerts.reports.report import Change, Suspect
from driftwarden.detectors.binning import CategoricalBinning, NumericBinning, missing_mask, psi
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.spec import ModelSpec

PSI_SCALE = 0.2
MAX_GROUPS = 50


def groups(values: np.ndarray, reference: np.ndarray, numeric: bool, bins: int = 10) -> np.ndarray:
    """Integer group codes of ``values`` by the reference's bins (last code: missing)."""
    if numeric:
        ref = np.asarray(reference, dtype=np.float64)
        binning = NumericBinning.from_reference(ref, bins)
        v = np.asarray(values, dtype=np.float64)
        codes = np.searchsorted(binning.edges, np.nan_to_num(v), side="left")
        return np.where(np.isnan(v), binning.n_bins, codes)
    cat = CategoricalBinning.from_reference(reference, MAX_GROUPS)
    index = {c: i for i, c in enumerate(cat.categories)}
    other = len(cat.categories)
    return np.fromiter((other + 1 if v is None else index.get(str(v), other) for v in values), dtype=np.int64, count=len(values))


def correlation_ratio(codes: np.ndarray, target: np.ndarray) -> float:
    """Eta: sqrt(between-group variance / total variance) of ``target`` over ``codes``."""
    ok = np.isfinite(target)
    codes, target = codes[ok], target[ok]
    if target.size < 2:
        return 0.0
    total = float(np.sum((target - target.mean()) ** 2))
    if total == 0:
        return 0.0
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=target)
    present = counts > 0
    means = sums[present] / counts[present]
    between = float(np.sum(counts[present] * (means - target.mean()) ** 2))
    return math.sqrt(min(between / total, 1.0))


def cramers_v(codes: np.ndarray, labels: np.ndarray) -> float:
    _, lab = np.unique(labels.astype(str), return_inverse=True)
    _, grp = np.unique(codes, return_inverse=True)
    table = np.zeros((grp.max() + 1, lab.max() + 1))
    np.add.at(table, (grp, lab), 1)
    n = table.sum()
    k = min(table.shape) - 1
    if n == 0 or k == 0:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(np.sum(np.divide((table - expected) ** 2, expected, where=expected > 0, out=np.zeros_like(table))))
    return math.sqrt(chi2 / (n * k))


def estimate_importance(
    spec: ModelSpec, reference_features: dict[str, np.ndarray], score: np.ndarray | None, y_pred: np.ndarray
) -> dict[str, float]:
    """Eta (or Cramér's V) of each declared feature with the reference score/prediction."""
    target: np.ndarray | None = None
    if score is not None and score.dtype.kind == "f" and np.isfinite(score).any():
        target = score
    elif y_pred.dtype.kind == "f":
        target = y_pred
    out: dict[str, float] = {}
    for name, fs in spec.features.items():
        values = reference_features.get(name)
        if values is None or len(values) == 0:
            out[name] = 0.0
            continue
        codes = groups(values, values, fs.type == "numeric")
        out[name] = correlation_ratio(codes, target) if target is not None else cramers_v(codes, y_pred)
    return out


def importances(spec: ModelSpec, estimated: dict[str, float]) -> dict[str, tuple[float, str]]:
    """Configured where given, estimated elsewhere; each source scaled to a maximum of 1."""
    configured = {n: float(f.importance) for n, f in spec.features.items() if f.importance is not None}
    top_c = max(configured.values(), default=0.0) or 1.0
    rest = {n: estimated.get(n, 0.0) for n in spec.features if n not in configured}
    top_e = max(rest.values(), default=0.0) or 1.0
    out = {n: (v / top_c, "config") for n, v in configured.items()}
    out.update({n: (v / top_e, "estimated") for n, v in rest.items()})
    return out


def rank_suspects(
    spec: ModelSpec,
    reference: dict[str, np.ndarray],
    current: dict[str, np.ndarray],
    findings: Sequence[Finding],
    series: Series,
    perf_key: str | None,
    importance: dict[str, tuple[float, str]],
    onset: float | None = None,
    last_healthy: float | None = None,
    alarm: float | None = None,
    blamed: Collection[str] = (),
    perf_evidence: bool = False,
) -> list[Suspect]:
    """Every declared feature, most suspicious first: drift that fits the onset (``onset``: first
    degraded window of the triggering checks, ``last_healthy``: their last healthy one before it),
    then drift that began before it, then features that did not drift."""
    latest: dict[str, Finding] = {}
    for f in findings:
        if f.kind == "data_drift" and (f.subject not in latest or f.window_end >= latest[f.subject].window_end):
            latest[f.subject] = f
    perf = series.get(perf_key, []) if perf_key else []
    out = []
    for name, fs in spec.features.items():
        ref = reference.get(name, np.empty(0))
        cur = current.get(name, np.empty(0))
        last = latest.get(name)
        q = quote(last) if last is not None else None
        if last is not None and q is not None and q.bound is not None and q.bound > 0:
            metric, stat, thr, p = q.metric, q.value, q.bound, q.p_value  # the metric, not a CUSUM's S
            deg, src = last.degraded, "finding"
        else:
            stat = recomputed_psi(ref, cur, fs.type == "numeric")
            metric, thr, p, deg, src = "psi", PSI_SCALE, None, stat >= PSI_SCALE, "recomputed"
        drift_key = next(
            (k for k in series if k.startswith("data_drift/") and k.endswith("/" + name) and k.count("/") == 2), None
        )
        r, pairs = (aligned_correlation(series.get(drift_key, []), perf_key, perf, perf_evidence) if drift_key and perf_key
                    else (None, 0))
        weight, source = importance.get(name, (0.0, "estimated"))
        score = stat / thr if thr > 0 and math.isfinite(stat) else 0.0
        began = run_start(series.get(drift_key, []), onset) if drift_key and onset is not None else None
        if began is None and drift_key and onset is not None and alarm is not None:
            # a drift that began between the onset and the triggering alarm (a CUSUM alarms blocks after the
            # change it estimates as the onset): it fits too
            began = run_start(series.get(drift_key, []), alarm)
            began = began if began is not None and began >= onset else None
        fit = "blamed" if name in blamed else "unknown" if began is None else \
            "before" if last_healthy is not None and began <= last_healthy else "fits"
        new = []
        if fs.type == "categorical" and len(cur):
            new = CategoricalBinning.from_reference(ref, 10**9).unseen_categories(cur, limit=20)
        out.append(
            Suspect(
                feature=name,
                type=fs.type,
                rank_score=0.0 if fit == "before" else score * weight,
                drift_score=score,
                drift_metric=metric,
                drift_statistic=stat,
                drift_threshold=thr,
                drift_p_value=p,
                drift_degraded=deg,
                drift_source=src,
                importance=weight,
                importance_source=source,
                drift_performance_correlation=r,
                correlation_windows=pairs,
                reference_missing_rate=_missing_rate(ref),
                current_missing_rate=_missing_rate(cur),
                new_categories=new,
                drift_onset=began,
                onset_fit=fit,
            )
        )
    out.sort(key=lambda s: (_group(s), -s.rank_score, -s.drift_score, s.feature))
    return out


def _group(s: Suspect) -> int:
    if s.onset_fit == "blamed":
        return -1
    if s.onset_fit == "before":
        return 1
    return 0 if s.drift_degraded else 2


BLAMED_SHARE = 0.2  # a feature holding at least this share of a multivariate alarm's excess error is blamed


def blamed_features(findings: Iterable[Finding]) -> set[str]:
    """The features the triggering findings blame themselves (a multivariate alarm's changed pair, or the
    features holding at least ``BLAMED_SHARE`` of its excess error): they explain it whatever their timing.

    >>> f = Finding("multivariate_drift", "cusum", "features", 15.8, 9.5, True, 0.0, 500, details={
    ...     "blames": "age (95%), tenure_days (4%)", "pair": "age~tenure_days", "contribution.age": 0.95,
    ...     "contribution.tenure_days": 0.04})
    >>> sorted(blamed_features([f]))
    ['age']
    >>> f.details["blames"] = "income, debt (corr 0.80 -> 0.02)"; f.details["pair"] = "income~debt"
    >>> sorted(blamed_features([f]))
    ['debt', 'income']
    """
    out: set[str] = set()
    for f in findings:
        d = f.details
        if not f.degraded or not d.get("blames"):
            continue
        pair = d.get("pair")
        if "(corr " in str(d["blames"]) and isinstance(pair, str) and "~" in pair:
            out.update(pair.split("~", 1))
            continue
        out.update(k.split(".", 1)[1] for k, v in d.items()
                   if k.startswith("contribution.") and isinstance(v, int | float) and v >= BLAMED_SHARE)
    return out


def recomputed_psi(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    if numeric:
        nb = NumericBinning.from_reference(np.asarray(reference, dtype=np.float64), 10)
        return psi(nb.counts(np.asarray(reference, dtype=np.float64)), nb.counts(np.asarray(current, np.float64)))
    cb = CategoricalBinning.from_reference(reference, 100)
    return psi(cb.counts(reference), cb.counts(current))


def _missing_rate(values: np.ndarray) -> float:
    return float(missing_mask(values).mean()) if len(values) else 0.0


def lined_up(t: float | None, onset: float | None, last_healthy: float | None, span: float) -> bool:
    """In the first degraded window (after the last healthy one), give or take one window span."""
    if t is None or onset is None:
        return False
    start = last_healthy if last_healthy is not None else onset - span
    return start - span <= t <= onset + span


def data_changes(
    spec: ModelSpec,
    reference: dict[str, np.ndarray],
    ref_versions: np.ndarray | None,
    times: np.ndarray,
    features: dict[str, np.ndarray],
    versions: np.ndarray | None,
) -> list[Change]:
    """Version switches, new categories and newly missing features seen in the window rows."""
    out: list[Change] = []
    order = np.argsort(times, kind="stable")
    t = times[order]
    if versions is not None and len(versions):
        v = versions[order]
        known = {str(x) for x in ref_versions if x is not None} if ref_versions is not None else set()
        previous: str | None = None
        for i, x in enumerate(v):
            x = None if x is None else str(x)
            if x is not None and x != previous:
                if previous is not None or (known and x not in known):
                    was = previous or ", ".join(sorted(known))
                    out.append(
                        Change(
                            "model_version",
                            x,
                            float(t[i]),
                            None,
                            False,
                            f"model_version {x} first seen (was {was})",
                            {"previous": was},
                        )
                    )
                previous = x
    for name, fs in spec.features.items():
        cur, ref = features.get(name), reference.get(name)
        if cur is None or ref is None or not len(cur):
            continue
        cur = cur[order]
        if fs.type == "categorical":
            binning = CategoricalBinning.from_reference(ref, 10**9)
            for cat in binning.unseen_categories(cur, limit=10):
                hit = np.flatnonzero(np.array([c is not None and str(c) == cat for c in cur]))
                out.append(
                    Change(
                        "new_category",
                        name,
                        float(t[hit[0]]),
                        None,
                        False,
                        f"new category {cat!r} of {name} ({hit.size} rows)",
                        {"category": cat, "rows": int(hit.size)},
                    )
                )
        miss = missing_mask(cur)
        ref_rate, cur_rate = _missing_rate(ref), float(miss.mean())
        if cur_rate - ref_rate >= 0.1:
            first = int(np.argmax(miss))
            out.append(
                Change(
                    "missing_feature",
                    name,
                    float(t[first]),
                    None,
                    False,
                    f"{name} missing in {cur_rate:.0%} of rows (reference {ref_rate:.0%})",
                    {"reference_rate": ref_rate, "current_rate": cur_rate},
                )
            )
    return out


def finding_changes(findings: Sequence[Finding]) -> list[Change]:
    """Degraded traffic (rate drop/spike, staleness) and data-quality findings as changes."""
    out = []
    for f in findings:
        if f.degraded and f.kind in ("traffic", "quality"):
            kind = "traffic" if f.kind == "traffic" else "quality"
            out.append(
                Change(
                    kind,
                    f.subject,
                    f.window_end,
                    None,
                    False,
                    f.summary or f.detector,
                    {"detector": f.detector, "statistic": f.statistic, "threshold": f.threshold},
                )
            )
    return out


def place_changes(changes: list[Change], onset: float | None, last_healthy: float | None, span: float) -> list[Change]:
    """Fill offsets and ``lined_up``; lined-up first, then by distance to the onset."""
    for c in changes:
        c.offset_seconds = None if c.time is None or onset is None else c.time - onset
        c.lined_up = lined_up(c.time, onset, last_healthy, span)
    return sorted(changes, key=lambda c: (not c.lined_up, abs(c.offset_seconds or 0.0), c.kind, c.subject))
