"""The facade the daemon calls: one :class:`ModelMonitor` per model, and :func:`compare`.

Prediction windows are count-based (``monitoring.window_size`` predictions);
when one closes, estimated performance and data quality are evaluated on it.
Data/prediction drift, multivariate drift and the missing rate are evaluated
every ``monitoring.block`` predictions, sequentially (CUSUMs whose threshold
meets ``monitoring.false_alarm_budget``: :mod:`detectors.sequential`); with
``drift.method: window`` they are evaluated per window instead. Outcome windows
(``performance.window_size`` joined outcomes) give realized performance, KPIs
and label lag; the concept-drift detector runs on every outcome as it comes.
``tick(now)`` runs the time-based traffic checks. Every evaluation returns its
findings, healthy ones included. Windows (or subjects) with fewer than
``monitoring.min_events`` events are not tested.

>>> rng = np.random.default_rng(0)
>>> spec = ModelSpec(task="binary", features={"x": FeatureSpec("numeric")},
...                  monitoring=MonitorSettings(window_size=1000))
>>> def outcomes(n, shift):
...     x = rng.normal(shift, 1, n); y = np.where(x + rng.normal(0, 1, n) > 0, "1", "0").astype(object)
...     return OutcomeBatch(np.zeros(n), np.zeros(n), y, np.where(x > 0, "1", "0").astype(object),
...                         features={"x": x})
>>> ref = outcomes(20_000, 0.0)
>>> mon = ModelMonitor("churn", spec, ref)
>>> cur = outcomes(1000, 1.0)
>>> batch = PredictionBatch(np.arange(1000.0), cur.features, cur.y_pred)
>>> [(f.detector, f.subject, f.degraded) for f in mon.observe_predictions(batch) if f.kind == "data_drift"]
[('cusum', 'x', False), ('cusum', 'x', True)]
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from driftwarden.detectors.batch import OutcomeBatch, PredictionBatch
from driftwarden.detectors.calibration import calibrate, calibrate_outcomes, reference_rate
from driftwarden.detectors.check_history import CheckHistory
from driftwarden.detectors.concept import BINARY_ONLY, ConceptDriftDetector, change_split, error_stream
from driftwarden.detectors.drift import DriftSuite
from driftwarden.detectors.estimate_pairs import EstimatePairs
from driftwarden.detectors.estimation import CbpeEstimator
from driftwarden.detectors.findings import Finding
from driftwarden.detectors.kpi import KpiMonitor
from driftwarden.detectors.last_windows import InMemoryWindows, LastWindows, WindowStorage
from driftwarden.detectors.metric_cusum import BlockMetrics
from driftwarden.detectors.metrics import DEFAULT_METRICS, METRICS
from driftwarden.detectors.multivariate import PcaDrift
from driftwarden.detectors.performance import PerformanceMonitor, scores_of
from driftwarden.detectors.performance_cusum import SequentialAccuracy
from driftwarden.detectors.quality import QualityMonitor
from driftwarden.detectors.realized import RealizedTracker
from driftwarden.detectors.replay_steps import STEP_KINDS, BlockKind, ReplayStep
from driftwarden.detectors.settings import MonitorSettings
from driftwarden.detectors.spec import FeatureSpec, ModelSpec
from driftwarden.detectors.subsample_metrics import ScoreOrder, binary_metrics_many, cbpe_many
from driftwarden.detectors.thresholds import threshold_from_settings
from driftwarden.detectors.traffic import TrafficMonitor
from driftwarden.detectors.window import ColumnWindow, WindowRows

HISTORY = 50
# with a storage, a window's rows go to it as soon as this many are in memory (a coalesced batch of
# a model's events goes at once): ~12 KiB of 25 float64 columns at most stay in memory per window
SPILL_ROWS = 64
STATE_VERSION = 1


class _Estimated:
    """CBPE's estimated metrics of a block's ``score`` and ``prediction`` columns (a class, not a
    lambda: a monitor pickles, for a start-up built in worker processes)."""

    def __init__(self, cbpe: CbpeEstimator) -> None:
        self.cbpe = cbpe

    def __call__(self, c: dict[str, np.ndarray]) -> dict[str, float]:
        return self.cbpe.expected(c["score"], c["prediction"])


class _Realized:
    """The realized ``metrics`` of a block's labelled columns (picklable, as :class:`_Estimated`)."""

    def __init__(self, metrics: tuple[str, ...], positive: Any) -> None:
        self.metrics, self.positive = metrics, positive

    def __call__(self, c: dict[str, np.ndarray]) -> dict[str, float]:
        return {m: METRICS[m].fn(c["y_true"], c["y_pred"], scores_of(c), self.positive) for m in self.metrics}


def _has_scores(score: np.ndarray | None) -> bool:
    return score is not None and score.dtype.kind == "f" and bool(np.isfinite(score).any())


class ModelMonitor:
    """All detectors of one model; see the module docstring."""

    def __init__(self, model_id: str, spec: ModelSpec, reference: OutcomeBatch,
                 storage: WindowStorage | None = None) -> None:
        s: MonitorSettings = spec.monitoring
        s.validate()
        self.model_id, self.spec, self.settings = model_id, spec, s
        self.numeric = [n for n, f in spec.features.items() if f.type == "numeric" and n in reference.features]
        self.sequential = s.drift.method == "sequential"
        self.drift = DriftSuite(spec, reference, s.block if self.sequential else None) if s.drift.enabled else None
        self.pca = None
        if s.multivariate.enabled and len(self.numeric) >= 2:
            matrix = np.column_stack([np.asarray(reference.features[n], dtype=np.float64) for n in self.numeric])
            self.pca = PcaDrift(matrix, s.window_size, s.multivariate.variance_explained, s.multivariate.k,
                                s.critical_factor, names=self.numeric)
        # sequential: drift CUSUMs, the PCA CUSUM and the missing rate every ``block`` predictions
        self.block_window = (ColumnWindow(s.block, storage.rows("block") if storage else None, SPILL_ROWS)
                             if self.sequential else None)
        self.quality = (QualityMonitor(spec.features, reference.features, s.quality, s.critical_factor)
                        if s.quality.enabled else None)
        self.cbpe = None
        if s.estimation.enabled and spec.task == "binary" and _has_scores(reference.score):
            assert reference.score is not None
            self.cbpe = CbpeEstimator(reference.score, reference.y_true, reference.y_pred, spec.positive_label,
                                      s.estimation.calibration_bins, s.estimation.metrics, s.window_size,
                                      threshold_from_settings(s.estimation.threshold), s.critical_factor)
        # the realized and the estimated metrics' reference spreads sort the same draws of the scores
        order = ScoreOrder(reference.score) if reference.score is not None else None
        self.calibration = None
        self.estimated_blocks: BlockMetrics | None = None  # sequential: CBPE's estimates every block
        if self.sequential:
            # one false-alarm budget for everything judged on prediction blocks: drift, PCA, estimates
            subjects = ((len(self.drift.tests) if self.drift is not None else 0) + (self.pca is not None)
                        + (len(self.cbpe.metrics) if self.cbpe is not None else 0))
            self.calibration = calibrate(s.false_alarm_budget, s.block, subjects, s.expected_rate,
                                         reference_rate(reference.prediction_timestamps))
            if self.drift is not None:
                self.drift.arm(self.calibration)
            if self.pca is not None:
                self.pca.arm(self.calibration)
            if self.cbpe is not None:
                assert reference.score is not None
                cbpe = self.cbpe
                scored = {"score": reference.score, "prediction": reference.y_pred}
                self.estimated_blocks = BlockMetrics(
                    _Estimated(cbpe), scored, s.block,
                    {m: METRICS[m].direction for m in cbpe.metrics}, "estimated_performance", self.calibration,
                    critical_factor=s.critical_factor, label="estimated ", many=cbpe_many(cbpe, scored, order))
        # sequential: CBPE's block estimates beside the realized metric of the same predictions (reports)
        self.estimate_pairs = (EstimatePairs(self.estimated_blocks.names, spec.positive_label,
                                             s.estimation.realized_coverage)
                               if self.estimated_blocks is not None else None)
        self.realized = None
        if self.cbpe is not None and not self.sequential:  # sequential: realized values are the performance CUSUMs'
            assert reference.score is not None
            labelled = {"y_true": reference.y_true, "y_pred": reference.y_pred, "score": reference.score}
            self.realized = RealizedTracker(self.cbpe, labelled, s.window_size, s.estimation.realized_coverage)
        perf_window = s.performance.window_size or s.window_size
        ref_cols: dict[str, np.ndarray] = {"y_true": reference.y_true, "y_pred": reference.y_pred}
        if reference.score is not None:
            ref_cols["score"] = reference.score
        ref_cols.update({"p:" + c: v for c, v in (reference.class_scores or {}).items()})
        p = s.performance
        metrics = p.metrics if p.metrics is not None else DEFAULT_METRICS[spec.task]
        self.sequential_accuracy = None
        if p.enabled and p.sequential and spec.is_classification and "accuracy" in metrics and len(reference):
            # accuracy is judged per outcome (CUSUMs, overall and per segment), not per window
            self.sequential_accuracy = SequentialAccuracy(spec, reference.y_true, reference.y_pred, reference.features, p,
                                                 s.critical_factor)
            metrics = [m for m in metrics if m != "accuracy"]
        self.realized_blocks: BlockMetrics | None = None  # sequential: F1, ROC AUC... every block of outcomes
        moved = [m for m in metrics if METRICS[m].direction in ("decrease", "increase")]
        if p.enabled and p.sequential and spec.is_classification and moved and len(reference):
            positive = spec.positive_label
            self.realized_blocks = BlockMetrics(
                _Realized(tuple(moved), positive),
                ref_cols, s.block, {m: METRICS[m].direction for m in moved}, "performance",
                calibrate_outcomes(p.false_alarms_per_million, s.block, len(moved)),
                critical_factor=s.critical_factor,
                many=binary_metrics_many(moved, positive, ref_cols, order) if spec.task == "binary" else None)
        self.performance = (PerformanceMonitor(spec.task, ref_cols, perf_window, metrics, spec.positive_label,
                                               p.threshold, p.thresholds, p.confidence, s.critical_factor)
                            if p.enabled and metrics else None)
        self.kpis = KpiMonitor(s.kpis, reference.kpis, perf_window, s.critical_factor) if s.kpis else None
        c = s.concept
        if c.detector in BINARY_ONLY and spec.task == "regression":
            raise ValueError(f"monitoring.concept.detector {c.detector!r} needs 0/1 errors (a classifier); "
                             "use adwin, page_hinkley or kswin for regression")
        self._concept_args = (c.detector, dict(c.params), c.refractory, c.replay_limit)
        self.concept = ConceptDriftDetector(*self._concept_args) if c.detector != "none" else None
        self._recent_errors = np.empty(0)  # the last ``refractory`` errors fed to the concept detector
        self._change_times: deque[float] = deque(maxlen=64)  # event times of its recent detections
        ref_errors = error_stream(spec.task, reference.y_true, reference.y_pred) if len(reference) else np.empty(0)
        self.ref_error = float(ref_errors.mean()) if ref_errors.size else float("nan")
        self.ref_error_sd = float(ref_errors.std()) if ref_errors.size else float("nan")
        self._elevated_since: float | None = None  # time of the last change towards more errors, while it holds
        self.traffic = TrafficMonitor(s.traffic) if s.traffic.enabled else None
        # with a storage, the open windows' rows go to it every SPILL_ROWS rows
        self.storage = storage
        self.pred_window = ColumnWindow(s.window_size, storage.rows("prediction") if storage else None, SPILL_ROWS)
        self.outcome_window = ColumnWindow(perf_window, storage.rows("outcome") if storage else None, SPILL_ROWS)
        self.history = CheckHistory(HISTORY)
        # the last evaluated windows (what a report explains): none yet, whatever the store held
        self.last_store: LastWindows = storage.last if storage is not None else InMemoryWindows()
        self.last_store.clear()
        self.timeline: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        # the last prediction and outcome blocks with a degraded finding: (end, the sequential state before
        # it); their rows are in ``last_store`` (in a file with many models: a block of every degraded model)
        self._degraded: dict[BlockKind, tuple[float, dict[str, Any]]] = {}

    # ----------------------------------------------------------------- predictions
    def observe_predictions(self, batch: PredictionBatch) -> list[Finding]:
        """Add a batch; return the findings of every prediction window it closed."""
        if self.quality is not None:
            self.quality.add_counters(batch.type_errors, batch.missing_keys, batch.undeclared_keys)
        if self.traffic is not None:
            self.traffic.observe_predictions(batch.timestamps)
        cols: dict[str, np.ndarray] = {"t": batch.timestamps, "prediction": batch.prediction}
        if batch.score is not None:
            cols["score"] = batch.score
        for name in self.spec.features:
            if name in batch.features:
                cols["f:" + name] = batch.features[name]
        out = self._fill(self.pred_window, cols, len(batch), self._evaluate_predictions)
        if self.block_window is not None:
            out.extend(self._fill(self.block_window, cols, len(batch), self._evaluate_block))
        return out

    def _fill(self, window: ColumnWindow, cols: dict[str, np.ndarray], n: int, close: Any) -> list[Finding]:
        out: list[Finding] = []
        i = 0
        while i < n:
            take = min(window.room, n - i)
            window.add({k: v[i : i + take] for k, v in cols.items()})
            i += take
            if window.room == 0:
                out.extend(close(window.take()))
        return out

    def _judged(self, cols: dict[str, np.ndarray]) -> tuple[int, float, dict[str, np.ndarray]] | None:
        """(rows, end time, feature columns) of a window or block, None if too few rows to judge."""
        n = len(cols["t"])
        if n < self.settings.min_events:
            return None
        return n, float(cols["t"][-1]), {k[2:]: v for k, v in cols.items() if k.startswith("f:")}

    def _numeric_matrix(self, features: dict[str, np.ndarray]) -> np.ndarray | None:
        """The numeric features as the PCA's rows x columns (None unless every one is there)."""
        if not all(name in features for name in self.numeric):
            return None
        return np.column_stack([np.asarray(features[name], dtype=np.float64) for name in self.numeric])

    def _evaluate_predictions(self, cols: dict[str, np.ndarray]) -> list[Finding]:
        judged = self._judged(cols)
        if judged is None:
            return []
        n, end, features = judged
        out: list[Finding] = []
        if self.drift is not None and not self.sequential:
            self.drift.update(features, cols["prediction"], cols.get("score"))
            out.extend(self.drift.evaluate(end, n))
            self.drift.reset()
        if self.pca is not None and not self.sequential and (matrix := self._numeric_matrix(features)) is not None:
            out.append(self.pca.evaluate(matrix, end))
        if self.cbpe is not None and not self.sequential and "score" in cols:
            estimates = self.cbpe.evaluate(cols["score"], cols["prediction"], end)
            out.extend(estimates)
            if estimates and self.realized is not None:
                out.extend(self.realized.add_window(float(cols["t"][0]), end, int(np.sum(~np.isnan(cols["score"])))))
        if self.quality is not None:
            out.extend(self.quality.evaluate(features, n, end, missing=not self.sequential))
        self.last_store.put("prediction", cols)  # after the detectors: the rows as they saw them
        self._record(out)
        return out

    def _evaluate_block(self, cols: dict[str, np.ndarray]) -> list[Finding]:
        """The sequential checks of one block: drift and PCA CUSUMs, missing rate."""
        judged = self._judged(cols)
        if judged is None:
            return []
        n, end, features = judged
        before = self._block_state()
        out: list[Finding] = []
        if self.drift is not None:
            self.drift.update(features, cols["prediction"], cols.get("score"))
            out.extend(self.drift.evaluate_block(end, n, cols["t"]))
            self.drift.reset()
        if self.pca is not None and (matrix := self._numeric_matrix(features)) is not None:
            out.append(self.pca.evaluate_block(matrix, end))
        if self.estimated_blocks is not None and "score" in cols:
            estimates = self.estimated_blocks.judge_block({"score": cols["score"], "prediction": cols["prediction"]}, end)
            out.extend(estimates)
            if self.estimate_pairs is not None:
                self.estimate_pairs.add_block(float(cols["t"][0]), end, len(cols["t"]),
                                              {f.detector: v for f in estimates
                                               if isinstance(v := f.details.get("value"), float | int)})
        if self.quality is not None:
            out.extend(self.quality.evaluate_missing(features, n, end))
        if any(f.degraded for f in out):
            self._keep_step("prediction_block", end, before, cols)  # the block's own arrays
        self._record(out)
        return out

    def _block_state(self) -> dict[str, Any]:
        """What a prediction block's findings depend on besides its rows: the sequential checks' CUSUMs."""
        return {"drift": self.drift.sequential_state() if self.drift is not None else {},
                "pca": self.pca.sequential_state() if self.pca is not None else {},
                "estimated": self.estimated_blocks.cusum_state() if self.estimated_blocks is not None else {}}

    def _keep_step(self, kind: BlockKind, end: float, state: dict[str, Any], rows: dict[str, np.ndarray]) -> None:
        self.last_store.put(kind, rows)
        self._degraded[kind] = (end, state)

    def replay_steps(self) -> list[ReplayStep]:
        """The last prediction block, outcome block and accuracy batch that had a degraded finding, each with
        the sequential state before it (what a replay bundle needs to recompute their findings)."""
        out = []
        for kind, (end, state) in self._degraded.items():
            rows = self.last_store.get(kind)
            if rows is not None:
                out.append(ReplayStep(kind, end, state, rows))
        if self.sequential_accuracy is not None and self.sequential_accuracy.last_degraded is not None:
            out.append(self.sequential_accuracy.last_degraded)
        return sorted(out, key=lambda s: STEP_KINDS.index(s.kind))

    def replay(self, step: ReplayStep) -> list[Finding]:
        """``step``'s findings recomputed: its state loaded into this monitor's sequential checks, its rows
        judged again (a monitor built from the same spec and reference gives the same numbers)."""
        if step.kind == "prediction_block":
            if self.block_window is None:
                raise ValueError("a prediction block replays on sequential checks (monitoring.drift.method: "
                                 "sequential)")
            if self.drift is not None:
                self.drift.load_sequential_state(step.state.get("drift", {}))
            if self.pca is not None:
                self.pca.load_sequential_state(step.state.get("pca", {}))
            if self.estimated_blocks is not None:
                self.estimated_blocks.load_cusum_state(step.state.get("estimated", {}))
            return self._evaluate_block(dict(step.rows))
        if step.kind == "accuracy_batch":
            if self.sequential_accuracy is None:
                raise ValueError("an accuracy batch replays on sequential accuracy (monitoring.performance.sequential)")
            return self.sequential_accuracy.replay(step)
        if self.realized_blocks is None:
            raise ValueError("an outcome block replays on the sequential performance checks "
                             "(monitoring.performance.sequential)")
        self.realized_blocks.load_cusum_state(step.state)
        return self.realized_blocks.judge_block({k: v for k, v in step.rows.items() if k != "t"}, step.end)

    def last_windows(self) -> tuple[PredictionBatch | None, OutcomeBatch | None]:
        """The rows of the last evaluated prediction and outcome windows (what a report explains)."""
        return _prediction_rows(self.last_store.get("prediction")), _outcome_rows(self.last_store.get("outcome"))

    def open_windows(self) -> tuple[PredictionBatch | None, OutcomeBatch | None]:
        """The rows of the windows still filling (checkpointed with the state)."""
        return _prediction_rows(self.pred_window.columns() or None), _outcome_rows(self.outcome_window.columns() or None)

    # ----------------------------------------------------------------- outcomes
    def observe_outcomes(self, batch: OutcomeBatch) -> list[Finding]:
        """Add joined outcomes: concept drift per outcome, window metrics when a window closes."""
        n = len(batch)
        out: list[Finding] = []
        if n == 0:
            return out
        if self.traffic is not None:
            self.traffic.observe_outcomes(batch.prediction_timestamps)
        if self.concept is not None:
            out.extend(self._concept(batch.y_true, batch.y_pred, batch.timestamps))
        if self.sequential_accuracy is not None:
            verdicts = self.sequential_accuracy.observe(batch.y_true, batch.y_pred, batch.features, batch.timestamps,
                                                        batch.prediction_timestamps)
            # it keeps its last degraded batch itself (replay_steps), in memory even with many models: in a
            # file it would be a write per poll of each model in an accuracy alarm, the batch and up to 5,000
            # recent outcomes (~130 kB and more), while in memory its rows are arrays ``observe`` made anyway
            self._record(verdicts)
            out.extend(verdicts)
        if self.realized_blocks is not None:
            ycols: dict[str, np.ndarray] = {"y_true": batch.y_true, "y_pred": batch.y_pred}
            if batch.score is not None:
                ycols["score"] = batch.score
            ycols.update({"p:" + c: v for c, v in (batch.class_scores or {}).items()})
            realized_blocks = self.realized_blocks.observe(ycols, batch.timestamps)
            step = self.realized_blocks.last_degraded
            if step is not None:
                self._keep_step("outcome_block", step.end, step.state, step.rows)
                self.realized_blocks.last_degraded = None
            self._record(realized_blocks)
            out.extend(realized_blocks)
        if self.estimate_pairs is not None:
            self.estimate_pairs.observe(batch.prediction_timestamps, batch.y_true, batch.y_pred, batch.score)
        if self.realized is not None:
            realized = self.realized.observe(batch.prediction_timestamps, batch.y_true, batch.y_pred, batch.score,
                                             batch.timestamps)
            self._record(realized)
            out.extend(realized)
        cols: dict[str, np.ndarray] = {"t": batch.timestamps, "lag": batch.label_lag,
                                       "y_true": batch.y_true, "y_pred": batch.y_pred}
        if batch.score is not None:
            cols["score"] = batch.score
        cols.update({"p:" + c: v for c, v in (batch.class_scores or {}).items()})
        for k in self.settings.kpis:
            key = k.field or k.name
            cols["k:" + key] = batch.kpis.get(key, np.full(n, np.nan))
        for name in self.spec.features:
            if name in batch.features:  # kept for worst-segment analysis in reports
                cols["f:" + name] = batch.features[name]
        out.extend(self._fill(self.outcome_window, cols, n, self._evaluate_outcomes))
        return out

    def _concept(self, y_true: np.ndarray, y_pred: np.ndarray, t: np.ndarray) -> list[Finding]:
        assert self.concept is not None
        errors = error_stream(self.spec.task, y_true, y_pred)
        times = t if errors.size == t.size else t[~np.isnan(np.abs(np.asarray(y_true, float) - np.asarray(
            y_pred, float)))]
        start = self.concept.n_seen
        out = []
        keep = self.settings.concept.refractory
        # the errors of earlier batches too: the recent level must not depend on where a poll ended
        history = np.concatenate([self._recent_errors, errors]) if self._recent_errors.size else errors
        offset = history.size - errors.size
        for idx in self.concept.update(errors):
            local = idx - start
            recent = history[max(0, offset + local - keep + 1) : offset + local + 1]
            # the detector fires some errors after the change: the level is that of the errors since
            # the estimated change point (the mean of the last ``refractory`` errors was mostly the
            # old level: the demo's jump from 0.22 to 0.5 read as 0.24, under the reference, no alert)
            split = change_split(recent)
            level, before = float(recent[split:].mean()), float(recent[:split].mean()) if split else self.ref_error
            up = level > before
            degraded = up and level > self.ref_error  # a change point towards fewer errors is news, not degradation
            self._elevated_since = float(times[local]) if degraded else None
            self._change_times.append(float(times[local]))
            out.append(Finding(
                kind="concept_drift", detector=self.concept.name, subject="error", statistic=level,
                threshold=self.ref_error, degraded=degraded, window_end=float(times[local]),
                window_size=recent.size - split,
                severity="critical" if level >= 2 * self.ref_error > 0 else "warning",
                summary=f"{self.concept.name} detected a change in the error stream at outcome {idx} "
                        f"(error {before:.3g} -> {level:.3g} over the last {recent.size - split} outcomes, "
                        f"reference {self.ref_error:.3g})",
                details={"change_index": idx, "merged_detections": self.concept.merged, "level_before": before,
                         "direction": "up" if up else "down"}))
        self._recent_errors = history[-keep:].astype(np.float64, copy=True)
        self._record(out)
        return out

    def _evaluate_outcomes(self, cols: dict[str, np.ndarray]) -> list[Finding]:
        n = len(cols["t"])
        if n < self.settings.min_events:
            return []
        end = float(cols["t"][-1])
        out: list[Finding] = []
        if self.performance is not None:
            perf = self.performance.evaluate(cols, end)
            # a metric judged sequentially keeps its window values for the timeline only
            judged = set(self.realized_blocks.names) if self.realized_blocks is not None else set()
            out.extend(f for f in perf if f.detector not in judged)
            self.timeline.append({"window_end": end, "n": n, **self.performance.timeline_entry(perf)})
        if self.kpis is not None:
            out.extend(self.kpis.evaluate({k[2:]: v for k, v in cols.items() if k.startswith("k:")}, end))
        if self.traffic is not None:
            lag = self.traffic.label_lag_finding(cols["lag"], end)
            if lag is not None:
                out.append(lag)
        if self.concept is not None:
            t0 = float(cols["t"][0])
            # by event time, not by the detector's count (which runs to the end of the poll)
            if not any(t0 <= t <= end for t in self._change_times):
                err = float(error_stream(self.spec.task, cols["y_true"], cols["y_pred"]).mean())
                # after a change towards more errors the check stays degraded while the window's error
                # is above the reference's by more than 3 standard errors (a change is one evaluation;
                # an alert needs ``for_windows`` of them)
                bound = float(self.ref_error + 3 * self.ref_error_sd / np.sqrt(n))
                since = self._elevated_since
                still = bool(since is not None and end > since and err > bound)
                if not still and (since is None or end > since):  # a window from before the change says nothing
                    self._elevated_since = None
                summary = (f"error {err:.3g} still above {bound:.3g} since the change in the error stream"
                           if still else f"no change in the error stream (error {err:.3g})")
                out.append(Finding(kind="concept_drift", detector=self.concept.name, subject="error",
                                   statistic=err, threshold=bound if still else self.ref_error, degraded=still,
                                   window_end=end, window_size=n, summary=summary,
                                   severity="critical" if still and err >= 2 * self.ref_error > 0 else "warning"))
        self.last_store.put("outcome", cols)
        self._record(out)
        return out

    # ----------------------------------------------------------------- time
    def note_future(self, count: int) -> None:
        """Events dated beyond the clock's future tolerance (a data-quality finding of the open window)."""
        if self.quality is not None and count:
            self.quality.add_future(count)

    def tick(self, now: float, complete_until: float | None = None) -> list[Finding]:
        """Time-based checks at ``now``: staleness, and the event rate and label coverage of the
        buckets that ended by ``complete_until`` (all their events read; default ``now``)."""
        out = self.traffic.tick(now, complete_until) if self.traffic is not None else []
        self._record(out)
        return out

    # ----------------------------------------------------------------- state
    def _record(self, findings: list[Finding]) -> None:
        for f in findings:
            statistic, threshold = f.statistic, f.threshold
            value, baseline = f.details.get("value"), f.details.get("baseline")
            if "change_window_value" in f.details and isinstance(value, float | int) and isinstance(baseline, float | int):
                # a sequential metric verdict (F1, ROC AUC, CBPE): its history is the metric per block
                # against the reference, what a report plots (its statistic is the CUSUM's S)
                statistic, threshold = float(value), float(baseline)
            self.history.append("/".join(f.key), f.window_end, statistic, threshold, f.degraded)

    def state(self, rows: WindowRows | None = None) -> dict[str, Any]:
        """JSON-safe state: open windows, concept detector, quality/traffic counters, history.

        With ``rows``, each open window is a marker, its rows a checkpoint store lacks go to ``rows``
        (:class:`~driftwarden.detectors.window.WindowRows`; the store puts them back on reading).
        """
        def window(name: str, w: ColumnWindow) -> dict[str, Any]:
            return w.state() if rows is None else rows.state(name, w)

        return {
            "version": STATE_VERSION,
            "model_id": self.model_id,
            "pred_window": window("pred_window", self.pred_window),
            "block_window": window("block_window", self.block_window) if self.block_window is not None else None,
            "sequential": {"drift": self.drift.sequential_state() if self.drift is not None else {},
                           "pca": self.pca.sequential_state() if self.pca is not None else {}},
            "outcome_window": window("outcome_window", self.outcome_window),
            "concept": self.concept.state() if self.concept is not None else None,
            "recent_errors": self._recent_errors.tolist(),
            "change_times": list(self._change_times),
            "elevated_since": self._elevated_since,
            "quality": self.quality.state() if self.quality is not None else None,
            "traffic": self.traffic.state() if self.traffic is not None else None,
            "realized": self.realized.state() if self.realized is not None else None,
            "estimate_pairs": self.estimate_pairs.state() if self.estimate_pairs is not None else None,
            "sequential_accuracy": self.sequential_accuracy.state() if self.sequential_accuracy is not None else None,
            "metric_blocks": {k: b.state() for k, b in self._metric_blocks().items()},
            "history": self.history.state(),
            "timeline": list(self.timeline),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"monitor state version {state.get('version')!r} is not {STATE_VERSION}")
        self.pred_window.load_state(state["pred_window"])
        if self.block_window is not None and state.get("block_window") is not None:
            self.block_window.load_state(state["block_window"])
        sequential = state.get("sequential") or {}
        if self.drift is not None and self.sequential:
            self.drift.load_sequential_state(sequential.get("drift", {}))
        if self.pca is not None and self.sequential:
            self.pca.load_sequential_state(sequential.get("pca", {}))
        self.outcome_window.load_state(state["outcome_window"])
        if self.concept is not None and state["concept"] is not None:
            self.concept = ConceptDriftDetector.from_state(state["concept"])
        self._recent_errors = np.asarray(state.get("recent_errors", []), dtype=np.float64)
        self._change_times = deque(state.get("change_times", []), maxlen=64)
        self._elevated_since = state.get("elevated_since")
        if self.quality is not None and state["quality"] is not None:
            self.quality.load_state(state["quality"])
        if self.traffic is not None and state["traffic"] is not None:
            self.traffic.load_state(state["traffic"])
        if self.realized is not None and state.get("realized") is not None:
            self.realized.load_state(state["realized"])
        if self.estimate_pairs is not None and state.get("estimate_pairs") is not None:
            self.estimate_pairs.load_state(state["estimate_pairs"])
        if self.sequential_accuracy is not None and state.get("sequential_accuracy") is not None:
            self.sequential_accuracy.load_state(state["sequential_accuracy"])
        for k, b in self._metric_blocks().items():
            if k in (state.get("metric_blocks") or {}):
                b.load_state(state["metric_blocks"][k])
        self.history.load(state["history"])
        self.timeline = deque(state["timeline"], maxlen=HISTORY)

    def _metric_blocks(self) -> dict[str, BlockMetrics]:
        return {k: b for k, b in (("estimated", self.estimated_blocks), ("realized", self.realized_blocks))
                if b is not None}

    def snapshot(self) -> dict[str, Any]:
        """Recent history for root-cause reports (JSON-safe)."""
        histograms: dict[str, Any] = {}
        if self.drift is not None:
            cols = self.pred_window.columns()
            if cols and self.sequential:  # the drift tests hold one block: its latest rows
                cols = {k: v[-self.settings.block:] for k, v in cols.items()}
            if cols:
                feats = {k[2:]: v for k, v in cols.items() if k.startswith("f:")}
                self.drift.update(feats, cols["prediction"], cols.get("score"))
            histograms = self.drift.histograms()
            self.drift.reset()
        return {
            "model_id": self.model_id,
            "evaluations": {k: [dict(zip(("window_end", "statistic", "threshold", "degraded"), e, strict=True))
                                for e in v] for k, v in self.history.entries().items()},
            "current_window": {"size": len(self.pred_window), "histograms": histograms},
            "performance_timeline": list(self.timeline),
            "estimate_pairs": self.estimate_pairs.pairs() if self.estimate_pairs is not None else [],
            "concept": None if self.concept is None else {
                "detector": self.concept.name, "seen": self.concept.n_seen,
                "last_change": self.concept.last_change, "merged": self.concept.merged},
        }


def _prediction_rows(c: dict[str, np.ndarray] | None) -> PredictionBatch | None:
    if c is None:
        return None
    return PredictionBatch(timestamps=c["t"], prediction=c["prediction"], score=c.get("score"),
                           features={k[2:]: v for k, v in c.items() if k.startswith("f:")})


def _outcome_rows(c: dict[str, np.ndarray] | None) -> OutcomeBatch | None:
    if c is None:
        return None
    return OutcomeBatch(timestamps=c["t"], prediction_timestamps=c["t"] - c["lag"], y_true=c["y_true"],
                        y_pred=c["y_pred"], score=c.get("score"),
                        features={k[2:]: v for k, v in c.items() if k.startswith("f:")},
                        kpis={k[2:]: v for k, v in c.items() if k.startswith("k:")})


def compare(spec: ModelSpec, reference: OutcomeBatch, current: OutcomeBatch | PredictionBatch) -> list[Finding]:
    """The batch face: the monitor's detectors and defaults with ``current`` as one window."""
    import msgspec

    n = len(current)
    if n == 0:
        return []
    size = max(n, 1)
    # one window, tested alone: the sequential tests need a stream
    settings = msgspec.structs.replace(spec.monitoring, window_size=size, performance=msgspec.structs.replace(
        spec.monitoring.performance, window_size=size, sequential=False), drift=msgspec.structs.replace(
        spec.monitoring.drift, method="window"))
    mon = ModelMonitor("compare", msgspec.structs.replace(spec, monitoring=settings), reference)
    if mon.drift is not None:
        mon.drift.all_statistics = True  # every statistic of every subject: compare is how people check them
    if isinstance(current, PredictionBatch):
        return mon.observe_predictions(current)
    preds = PredictionBatch(timestamps=current.prediction_timestamps, features=current.features,
                            prediction=current.y_pred, score=current.score, model_version=current.model_version)
    return mon.observe_predictions(preds) + mon.observe_outcomes(current)


__all__ = ["FeatureSpec", "ModelMonitor", "ModelSpec", "MonitorSettings", "compare"]
