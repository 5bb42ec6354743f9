"""Detector settings with their defaults (the ``monitoring:`` block of a model).

Everything a model owner can tune lives here, as nested msgspec Structs with
strict validation (unknown keys are errors). Every field has a default that
is safe for a model with tens of features and thousands of events per window;
a model's YAML only needs what it wants to change, e.g.::

    monitoring:
      window_size: 2000
      drift: {numeric_metric: wasserstein}
      concept: {detector: page_hinkley, params: {threshold: 30}}
      kpis: [{name: revenue, aggregate: sum}]

Value ranges are checked by :meth:`MonitorSettings.validate` (called by the
detectors), which raises ``ValueError`` naming the field and allowed range.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

NumericMetric = Literal["psi", "jensen_shannon", "hellinger", "wasserstein"]
CategoricalMetric = Literal["psi", "jensen_shannon", "tvd"]
Correction = Literal["benjamini_hochberg", "bonferroni", "none"]
DriftMethod = Literal["sequential", "window"]
ConceptDetectorName = Literal["adwin", "ddm", "eddm", "hddm_a", "hddm_w", "page_hinkley", "kswin", "none"]

#: Effect-size floor used when ``numeric_threshold``/``categorical_threshold`` is left unset.
DEFAULT_EFFECT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,  # the industry's "significant shift"
    "jensen_shannon": 0.1,  # Evidently's default distance threshold
    "hellinger": 0.1,
    "wasserstein": 0.1,  # in reference standard deviations
    "tvd": 0.1,
}

#: The floor on the change window of a sequential alarm (``drift.method: sequential``): the same
#: metrics, PSI at 0.1 ("moderate shift"; a window of 5000 needs 0.2 to stay clear of noise, a
#: change window of sequential evidence does not).
SEQUENTIAL_EFFECT_THRESHOLDS: dict[str, float] = {**DEFAULT_EFFECT_THRESHOLDS, "psi": 0.1}


#: Allowed (lowest, highest) values of the quality and traffic settings: checked by
#: :meth:`MonitorSettings.validate` (config) and by the monitors themselves (``param_ranges``).
QUALITY_RANGES: dict[str, tuple[float, float]] = {
    "max_missing_increase": (0, 1), "max_type_error_rate": (0, 1), "max_out_of_range_rate": (0, 1),
    "max_unseen_rate": (0, 1), "max_missing_key_rate": (0, 1), "max_undeclared_rate": (0, 1),
    "max_future_timestamp_rate": (0, 1)}
TRAFFIC_RANGES: dict[str, tuple[float, float]] = {
    "bucket_seconds": (1e-3, math.inf), "baseline_buckets": (1, 10_000), "min_baseline_buckets": (1, 10_000),
    "drop_ratio": (0, 1), "spike_ratio": (1, math.inf), "stale_after_seconds": (0, math.inf),
    "label_delay_seconds": (0, math.inf), "min_label_coverage": (0, 1), "max_label_lag_seconds": (0, math.inf)}


class _Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class DriftSettings(_Settings, frozen=True):
    """Feature, prediction and score drift against the reference.

    ``method: sequential`` (default): every ``monitoring.block`` predictions each
    subject's block p-value feeds a CUSUM whose threshold meets the model's
    ``monitoring.false_alarm_budget``; it alarms when the CUSUM crosses it AND the
    effect size over the data since the CUSUM left 0 is at least the floor (PSI 0.1
    by default). See :mod:`detectors.sequential`. ``alpha`` and ``correction`` are
    not used there. ``method: window``: each window of ``window_size`` tested alone,
    as follows.

    A subject drifts only when BOTH hold: its test's p-value (KS for numeric,
    chi-square for categorical), corrected across all of the model's drift
    subjects with ``correction``, is below ``alpha``; AND its effect size
    (``numeric_metric`` / ``categorical_metric``) is at least the threshold.
    Significance alone fires on tiny shifts of huge windows; effect size alone
    fires on noise of small windows.

    * ``numeric_bins``: number of reference-quantile bins for PSI/JS/Hellinger.
    * ``numeric_threshold`` / ``categorical_threshold``: effect-size floor; ``None``
      takes the metric's default (PSI 0.2, Jensen-Shannon 0.1, Hellinger 0.1,
      Wasserstein 0.1 reference standard deviations, total variation 0.1).
    * ``max_categories``: the most frequent reference categories kept as bins; the
      rest are pooled into ``"__other__"``.
    * ``reference_sample_size``: cap of the sorted reference sample kept for KS and
      Wasserstein (an evenly spaced subsample of the sorted values beyond it). Its ECDF
      is within ``1 / reference_sample_size`` of the full reference's, so is the KS
      statistic (0.0005 at the default 2,000; p-values count every reference value).
    * ``include_predictions``: also test the prediction and the score.
    """

    enabled: bool = True
    method: DriftMethod = "sequential"
    alpha: float = 0.05
    correction: Correction = "benjamini_hochberg"
    numeric_bins: int = 10
    numeric_metric: NumericMetric = "psi"
    numeric_threshold: float | None = None
    categorical_metric: CategoricalMetric = "psi"
    categorical_threshold: float | None = None
    max_categories: int = 100
    reference_sample_size: int = 2_000
    include_predictions: bool = True

    def effect_threshold(self, kind: Literal["numeric", "categorical"], sequential: bool = False) -> float:
        defaults = SEQUENTIAL_EFFECT_THRESHOLDS if sequential else DEFAULT_EFFECT_THRESHOLDS
        if kind == "numeric":
            return self.numeric_threshold or defaults[self.numeric_metric]
        return self.categorical_threshold or defaults[self.categorical_metric]


class ThresholdSettings(_Settings, frozen=True):
    """How a metric's alert bound is derived from its reference baseline.

    * ``std``: baseline -/+ ``k`` times the metric's standard deviation over
      reference chunks (rescaled to the window size);
    * ``relative``: baseline degraded by ``relative`` (0.1 = 10 % worse);
    * ``absolute``: the fixed ``lower`` and/or ``upper`` bound.

    Bounds are clamped to the metric's range (e.g. accuracy to [0, 1]).
    """

    strategy: Literal["std", "relative", "absolute"] = "std"
    k: float = 3.0
    relative: float = 0.1
    lower: float | None = None
    upper: float | None = None


class PerformanceSettings(_Settings, frozen=True):
    """Realized performance on joined outcomes, per window of ``window_size`` outcomes.

    ``metrics`` defaults by task: binary ``accuracy, f1, roc_auc``; multiclass
    ``accuracy, f1_macro``; regression ``mae, rmse``. ``window_size`` ``None``
    uses the model's ``window_size``. ``thresholds`` overrides ``threshold`` per metric.
    ``confidence`` is the level of each metric's confidence interval.

    Classifiers' accuracy is judged sequentially when ``sequential`` (the default):
    a Bernoulli CUSUM on the error stream, overall and per segment (see
    ``detectors/performance_cusum.py``), tuned to error odds ``odds_ratio`` times the
    reference's, with thresholds set so that all of a model's CUSUMs together raise at
    most ``false_alarms_per_million`` false alarms per million labelled outcomes; a
    verdict every ``block_size`` outcomes. A degraded verdict names the segments whose
    accuracy fell (one-sided binomial tests, Holm-adjusted, at ``segment_alpha``).
    """

    enabled: bool = True
    metrics: list[str] | None = None
    window_size: int | None = None
    threshold: ThresholdSettings = msgspec.field(default_factory=ThresholdSettings)
    thresholds: dict[str, ThresholdSettings] = msgspec.field(default_factory=dict)
    confidence: float = 0.95
    sequential: bool = True
    block_size: int = 100
    odds_ratio: float = 2.0
    false_alarms_per_million: float = 0.2
    segment_alpha: float = 0.05


class EstimationSettings(_Settings, frozen=True):
    """Label-free performance estimate (CBPE) for binary classifiers with a score.

    Scores are calibrated on the reference by histogram binning over
    ``calibration_bins`` equal-count score bins; the expected ``metrics`` of each
    prediction window are compared with their reference baseline using ``threshold``.
    When ``realized_coverage`` of a window's predictions have their outcome, the
    realized metrics of that window are reported under the same key.
    """

    enabled: bool = True
    metrics: list[str] = msgspec.field(default_factory=lambda: ["accuracy", "f1", "roc_auc"])
    calibration_bins: int = 20
    threshold: ThresholdSettings = msgspec.field(default_factory=ThresholdSettings)
    realized_coverage: float = 0.9  # labelled share at which a window's estimate is replaced by the truth


class ConceptSettings(_Settings, frozen=True):
    """Concept drift on the error stream (0/1 errors, or absolute error for regression).

    ``detector`` is a river detector (``ddm``/``eddm``/``hddm_w`` need 0/1 errors,
    i.e. a classifier); ``params`` go to its constructor unchanged. A detection less
    than ``refractory`` errors after the last reported change point is merged into
    it (no new alert). State is the stream since the detector's last reset, capped
    at ``replay_limit`` values (beyond it the detector is rebuilt from the newest half).
    """

    detector: ConceptDetectorName = "adwin"
    params: dict[str, float | int | bool | str] = msgspec.field(default_factory=dict)
    refractory: int = 1000
    replay_limit: int = 50_000


class MultivariateSettings(_Settings, frozen=True):
    """PCA reconstruction error over the numeric features (catches correlation changes).

    PCA on standardized reference features keeps the fewest components that
    explain ``variance_explained``; the mean squared reconstruction error of a
    window is compared with mean -/+ ``k`` std of that error over reference chunks.
    """

    enabled: bool = True
    variance_explained: float = 0.9
    k: float = 3.0


class QualitySettings(_Settings, frozen=True):
    """Data-quality limits per window (rates are fractions of the window's events).

    Missing rate alerts above reference rate + ``max_missing_increase``; type
    mismatches, values outside the declared bounds (or, if none, the reference
    range), missing declared keys, undeclared keys and events dated further in the
    future than ``event_time.future_tolerance`` alert above their ``max_*_rate``.
    Unseen categories alert above ``max_unseen_rate`` plus the share the reference
    itself predicts (Good-Turing: its categories seen once over its values; zero for a
    column of a few categories, large for zip codes or ids, whose tails the reference
    cannot hold) and 4 standard errors of that share and the window's rate.
    """

    enabled: bool = True
    max_missing_increase: float = 0.1
    max_type_error_rate: float = 0.01
    max_out_of_range_rate: float = 0.01
    max_unseen_rate: float = 0.01
    max_missing_key_rate: float = 0.01
    max_undeclared_rate: float = 0.01
    max_future_timestamp_rate: float = 0.01


class TrafficSettings(_Settings, frozen=True):
    """Event rate, staleness, label coverage and lag; evaluated on ``tick(now)``.

    Events are counted per ``bucket_seconds`` of event time. The baseline rate is
    the median of the last ``baseline_buckets`` closed buckets (tested once at least
    ``min_baseline_buckets`` exist); a bucket below ``drop_ratio`` x or above
    ``spike_ratio`` x baseline alerts. Staleness alerts after ``stale_after_seconds``
    without a prediction. Label coverage of a bucket is checked ``label_delay_seconds``
    after its end against ``min_label_coverage``; the median label lag of a
    performance window against ``max_label_lag_seconds`` (``None``: not checked).
    """

    enabled: bool = True
    bucket_seconds: float = 300.0
    baseline_buckets: int = 12
    min_baseline_buckets: int = 3
    drop_ratio: float = 0.5
    spike_ratio: float = 3.0
    stale_after_seconds: float = 3600.0
    label_delay_seconds: float = 86_400.0
    min_label_coverage: float = 0.0
    max_label_lag_seconds: float | None = None


class KpiSettings(_Settings, frozen=True):
    """One business KPI computed from the outcome events' ``kpis`` field ``field``.

    ``aggregate``: ``mean``, ``sum`` or ``rate`` (fraction of rows with a value > 0)
    per performance window; baseline from the reference. ``direction``: which way is bad.
    """

    name: str
    field: str | None = None
    aggregate: Literal["mean", "sum", "rate"] = "mean"
    direction: Literal["decrease", "increase", "both"] = "decrease"
    threshold: ThresholdSettings = msgspec.field(default_factory=lambda: ThresholdSettings(strategy="relative"))


class MonitorSettings(_Settings, frozen=True):
    """Window size and thresholds for one model's detectors.

    * ``window_size``: predictions per drift/quality window (count-based).
    * ``block``: predictions per sequential step (``drift.method: sequential``): the
      drift and PCA CUSUMs and the missing rate are evaluated every ``block``.
    * ``false_alarm_budget``: false drift alarms per 30 days the model may raise (all
      its subjects together); sets the CUSUM threshold with ``expected_rate``.
    * ``expected_rate``: predictions per second; ``None`` takes the reference's rows
      over its timestamp span, or, without timestamps, 5M predictions per false alarm
      (never fewer than that in any case; see :mod:`detectors.calibration`).
    * ``min_events``: a window (or a feature's non-missing values in it) with fewer
      events is not tested; matters for ``compare`` and sparse features.
    * ``critical_factor``: a degraded finding is ``critical`` when its statistic is
      beyond the threshold by ``critical_factor`` times the threshold's own distance
      from the healthy value (e.g. PSI >= 2 x 0.2; accuracy bound 0.85 under a 0.90
      baseline -> critical below 0.80). A sequential performance metric (accuracy, F1,
      ROC AUC, CBPE's estimates) is ``critical`` when it is worse than its baseline by
      ``critical_factor`` times its 5 % alarm floor, i.e. 10 % worse by default, the same
      rule for every metric so that one fault gets one severity.
    * ``segments``: the columns whose values are segments (``[plan, region]``) for
      per-segment performance; ``None``: the categorical features with at most 12
      reference categories.
    """

    window_size: int = 5000
    block: int = 500
    false_alarm_budget: float = 1.0
    expected_rate: float | None = None
    min_events: int = 100
    critical_factor: float = 2.0
    drift: DriftSettings = msgspec.field(default_factory=DriftSettings)
    multivariate: MultivariateSettings = msgspec.field(default_factory=MultivariateSettings)
    concept: ConceptSettings = msgspec.field(default_factory=ConceptSettings)
    performance: PerformanceSettings = msgspec.field(default_factory=PerformanceSettings)
    estimation: EstimationSettings = msgspec.field(default_factory=EstimationSettings)
    quality: QualitySettings = msgspec.field(default_factory=QualitySettings)
    traffic: TrafficSettings = msgspec.field(default_factory=TrafficSettings)
    kpis: list[KpiSettings] = msgspec.field(default_factory=list)
    segments: list[str] | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field outside its allowed range."""
        checks: list[tuple[str, float | None, float, float]] = [
            ("window_size", self.window_size, 1, math.inf),
            ("block", self.block, 1, math.inf),
            ("false_alarm_budget", self.false_alarm_budget, 1e-6, 1e6),
            ("expected_rate", self.expected_rate, 1e-9, math.inf),
            ("min_events", self.min_events, 1, math.inf),
            ("critical_factor", self.critical_factor, 1, math.inf),
            ("drift.alpha", self.drift.alpha, 0, 1),
            ("drift.numeric_bins", self.drift.numeric_bins, 2, 1000),
            ("drift.max_categories", self.drift.max_categories, 1, 100_000),
            ("drift.reference_sample_size", self.drift.reference_sample_size, 10, 10_000_000),
            ("drift.numeric_threshold", self.drift.numeric_threshold, 0, math.inf),
            ("drift.categorical_threshold", self.drift.categorical_threshold, 0, math.inf),
            ("multivariate.variance_explained", self.multivariate.variance_explained, 0, 1),
            ("multivariate.k", self.multivariate.k, 0, math.inf),
            ("concept.refractory", self.concept.refractory, 0, math.inf),
            ("concept.replay_limit", self.concept.replay_limit, 2, math.inf),
            ("performance.window_size", self.performance.window_size, 1, math.inf),
            ("performance.confidence", self.performance.confidence, 0, 1),
            ("performance.block_size", self.performance.block_size, 1, math.inf),
            ("performance.odds_ratio", self.performance.odds_ratio, 1.01, 1000),
            ("performance.false_alarms_per_million", self.performance.false_alarms_per_million, 1e-6, 1e6),
            ("performance.segment_alpha", self.performance.segment_alpha, 0, 1),
            ("estimation.calibration_bins", self.estimation.calibration_bins, 2, 10_000),
            *((f"traffic.{name}", getattr(self.traffic, name), lo, hi) for name, (lo, hi) in TRAFFIC_RANGES.items()),
            *((f"quality.{name}", getattr(self.quality, name), lo, hi) for name, (lo, hi) in QUALITY_RANGES.items()),
        ]
        for name, value, lo, hi in checks:
            if value is not None and not (lo <= value <= hi):
                raise ValueError(f"monitoring.{name}: {value!r} is outside the allowed range [{lo}, {hi}]")
        if self.drift.enabled and self.drift.method == "sequential" and self.block < self.min_events:
            raise ValueError(f"monitoring.block: {self.block} is below min_events {self.min_events}, "
                             "so no block would be tested; raise block or lower min_events")
