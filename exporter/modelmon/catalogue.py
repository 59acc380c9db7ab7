"""The metric catalogue: every metric modelmon exposes, in one place.

Code, dashboards, alerts, docs and tests refer to these definitions. A rename is
a breaking change. ``docs/metrics.md`` is generated from this module by
``python -m modelmon.catalogue > docs/metrics.md`` and a test fails when the two
differ.

Every metric is a module constant (``FEATURE_VALUE``, ``DRIFT_SCORE``, ...: the
exposition name without ``modelmon_`` and ``_total``, upper case), typed by the
family it builds: ``FEATURE_VALUE.family()`` is a :class:`HistogramFamily`,
``PREDICTIONS.family()`` a ``CounterMetricFamily``, so a collector neither
spells a metric name or a label list on its own nor casts. ``by_name`` finds a
metric by its exposition name (its family is then typed ``Any``).

The constants that more than one room needs (label-value sets, bucket tuples,
``OTHER``, the prediction id's maximum length, :func:`le_labels`) live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, SupportsFloat, TypeVar, cast

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.utils import floatToGoString

#: The module constant of every metric, in catalogue order (see :data:`CATALOGUE`).
_METRICS = (
    "MODEL_INFO", "PREDICTIONS", "FEATURE_VALUE", "FEATURE_CATEGORY", "FEATURE_MISSING",
    "FEATURE_OUT_OF_RANGE", "SCHEMA_VIOLATIONS", "PREDICTION_VALUE", "PREDICTED_CLASS",
    "INFERENCE_LATENCY_SECONDS", "BASELINE_BUCKET_RATIO", "BASELINE_CATEGORY_RATIO",
    "BASELINE_CLASS_RATIO", "BASELINE_CALIBRATION", "BASELINE_SAMPLES", "LABELS",
    "LABELS_UNMATCHED", "PREDICTIONS_EXPIRED", "LABEL_DELAY_SECONDS", "CONFUSION",
    "LABELED_SCORE", "PREDICTION_ERROR", "PREDICTION_ABSOLUTE_ERROR", "PREDICTION_SQUARED_ERROR",
    "CONCEPT_DRIFT_DETECTIONS", "CONCEPT_DRIFT_STATISTIC", "SIDECAR_REQUESTS",
    "SIDECAR_REQUEST_DURATION_SECONDS", "SIDECAR_EVENTS_REJECTED", "SIDECAR_READY",
    "DRIFT_SCORE", "PREDICTION_DRIFT_SCORE", "DRIFT_WINDOW_SAMPLES", "DRIFT_DETECTED",
    "PREDICTION_DRIFT_DETECTED", "DRIFT_THRESHOLD", "PREDICTION_DRIFT_THRESHOLD", "DRIFT_SHARE",
    "DRIFT_FEATURES_DRIFTED", "DRIFT_EVALUATION_TIMESTAMP_SECONDS",
    "DRIFT_LAST_SUCCESS_TIMESTAMP_SECONDS", "DRIFT_EVALUATION_DURATION_SECONDS",
    "DRIFT_EVALUATIONS", "DRIFT_SOURCE_UP", "DRIFT_SKIPPED", "DRIFT_QUERY_ERRORS",
    "ESTIMATED_PERFORMANCE",
)

__all__ = [
    "MetricSpec",
    "HistogramFamily",
    "CATALOGUE",
    "by_name",
    "render_markdown",
    "LATENCY_BUCKETS",
    "SCHEMA_VIOLATION_REASONS",
    "DRIFT_METHODS",
    "series_names",
    "SEGMENT_ALL",
    "EXPIRE_REASONS",
    "CONCEPT_DETECTORS",
    "ESTIMATED_METRICS",
    "CALIBRATION_QUANTITIES",
    "LABEL_DELAY_BUCKETS",
    "NUMERIC_ONLY_METHODS",
    "DRIFT_REFERENCES",
    "OTHER",
    "UNKNOWN",
    "SIDECAR_ENDPOINTS",
    "SIDECAR_REJECT_REASONS",
    "REQUEST_BUCKETS",
    "DRIFT_SKIP_REASONS",
    "DRIFT_QUERY_ERROR_REASONS",
    "DRIFT_DURATION_BUCKETS",
    "MAX_PREDICTION_ID_LENGTH",
    "le_labels",
    *_METRICS,
]

MetricType = Literal["counter", "gauge", "histogram", "info", "untyped"]
#: The process that exposes a metric (and the section of docs/metrics.md it is listed in).
Component = Literal["monitor", "sidecar", "drift"]

#: Category label value for every category the baseline did not keep (the baseline's
#: last category, and the label of every category and class it does not know).
OTHER = "__other__"
#: Feature label value for every feature name the baseline does not know.
UNKNOWN = "__unknown__"

SCHEMA_VIOLATION_REASONS: tuple[str, ...] = (
    "unknown_feature",
    "wrong_type",
    "non_finite",
    "missing_required",
)

#: Drift methods, in export order. ``ks`` and ``wasserstein_normed`` need an
#: ordered axis and are computed for numeric features and outputs only.
DRIFT_METHODS: tuple[str, ...] = (
    "psi",
    "jensen_shannon",
    "hellinger",
    "ks",
    "ks_pvalue",
    "chi2_pvalue",
    "wasserstein_normed",
)
NUMERIC_ONLY_METHODS: frozenset[str] = frozenset({"ks", "ks_pvalue", "wasserstein_normed"})
DRIFT_REFERENCES: tuple[str, ...] = ("baseline", "previous")

#: ``reason`` label values of ``modelmon_drift_skipped_total``: why the drift
#: exporter did not score a series (a feature or output of one model version) in
#: one window of one evaluation.
DRIFT_SKIP_REASONS: tuple[str, ...] = (
    "no_baseline",        # no baseline gauges (or --baseline file) for the series
    "baseline_mismatch",  # buckets/categories differ from the baseline's
    "baseline_conflict",  # replicas of one model version report different baseline ids
    "duplicate_name",     # a feature and an output share a name; the feature is kept
    "missing_buckets",    # no +Inf bucket, no finite bucket, or fewer buckets than the baseline
    "partial_buckets",    # some buckets summed over fewer replicas than others
    "non_monotonic",      # cumulative bucket counts go down beyond float noise
    "non_finite",         # the store returned NaN or +-Inf
)
#: ``reason`` label values of ``modelmon_drift_query_errors_total``.
DRIFT_QUERY_ERROR_REASONS: tuple[str, ...] = (
    "timeout", "connection", "http_4xx", "http_5xx", "bad_response", "query_error",
)

#: Inference latency buckets in seconds (prometheus_client's defaults, extended
#: down to 0.5 ms because many models answer in under 5 ms).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

#: ``endpoint`` label values of the sidecar's request metrics (a bounded set:
#: paths are mapped to these, never copied).
SIDECAR_ENDPOINTS: tuple[str, ...] = ("events", "labels", "models", "metrics", "health",
                                       "other")
#: ``reason`` label values of ``modelmon_sidecar_events_rejected_total``.
SIDECAR_REJECT_REASONS: tuple[str, ...] = ("malformed", "invalid_field", "wrong_type",
                                           "non_finite")
#: Request duration buckets of the sidecar, in seconds.
REQUEST_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)

#: Buckets of ``modelmon_drift_evaluation_duration_seconds``, in seconds.
DRIFT_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

#: Longest prediction id (characters) that the label join accepts, from Python and over
#: HTTP alike; a longer id is refused, never cut (two ids must never become one).
MAX_PREDICTION_ID_LENGTH = 128

#: ``segment`` label value that every labelled prediction is counted under.
SEGMENT_ALL = "all"
#: ``reason`` label values of ``modelmon_predictions_expired_total``.
EXPIRE_REASONS: tuple[str, ...] = ("ttl", "cap")
#: ``detector`` label values of the concept-drift metrics.
CONCEPT_DETECTORS: tuple[str, ...] = ("page_hinkley", "adwin")
#: ``quantity`` label values of ``modelmon_baseline_calibration``.
CALIBRATION_QUANTITIES: tuple[str, ...] = ("rows", "positives", "predicted_positive",
                                           "true_positive")
#: ``metric`` label values of ``modelmon_estimated_performance``.
ESTIMATED_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")
#: Label delay buckets in seconds: a minute to 90 days.
LABEL_DELAY_BUCKETS: tuple[float, ...] = (
    60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0,
    14 * 86400.0, 30 * 86400.0, 90 * 86400.0,
)

_MV = ("model", "model_version")

_go_float = cast(Callable[[float], str], floatToGoString)


def le_labels(edges: Iterable[SupportsFloat]) -> list[str]:
    """The ``le`` strings of a histogram with these finite bounds, ``+Inf`` last.

    Written as prometheus_client writes floats, so the baseline ratios, the
    histograms and the drift exporter's tables all spell a bound the same way.

    >>> le_labels((-1.0, 0.5, 1200000.0))
    ['-1.0', '0.5', '1.2e+06', '+Inf']
    """
    return [_go_float(float(e)) for e in edges] + ["+Inf"]


#: The family class a metric builds (see :meth:`MetricSpec.family`).
FamilyT = TypeVar("FamilyT", bound=Metric, covariant=True)


@dataclass(frozen=True)
class MetricSpec(Generic[FamilyT]):
    """One metric: its exposition name, type, help text and label names.

    ``name`` is the name as it appears in the text exposition: counters end in
    ``_total``, info metrics in ``_info``; histograms are named without the
    ``_bucket``/``_sum``/``_count`` suffixes. The type parameter is the family
    class :meth:`family` builds; the module's constants are made by
    ``_counter``, ``_gauge``, ``_histogram``, ``_info`` and ``_untyped``, which
    fix it together with ``type``.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    component: Component

    @property
    def family_name(self) -> str:
        """The name prometheus_client's family classes expect (no ``_total``/``_info``)."""
        if self.type == "counter":
            return self.name.removesuffix("_total")
        if self.type == "info":
            return self.name.removesuffix("_info")
        return self.name

    def family(self) -> FamilyT:
        """A fresh, empty metric family for a collector to fill.

        >>> fam = PREDICTIONS.family()
        >>> fam.add_metric(["m", "1"], 3.0)
        >>> type(fam).__name__, fam.samples[0].name
        ('CounterMetricFamily', 'modelmon_predictions_total')
        """
        fam: Metric
        if self.type == "counter":
            fam = CounterMetricFamily(self.family_name, self.help, labels=self.labels)
        elif self.type == "gauge":
            fam = GaugeMetricFamily(self.name, self.help, labels=self.labels)
        elif self.type == "untyped":
            fam = UnknownMetricFamily(self.name, self.help, labels=self.labels)
        elif self.type == "info":
            # Info labels are given per sample (see InfoMetricFamily.add_metric).
            fam = InfoMetricFamily(self.family_name, self.help, labels=())
        else:
            fam = HistogramFamily(self)
        return cast(FamilyT, fam)

    @property
    def bucket_name(self) -> str:
        """The sample name of a histogram's buckets.

        >>> FEATURE_VALUE.bucket_name
        'modelmon_feature_value_bucket'
        """
        if self.type != "histogram":
            raise ValueError(f"{self.name} is a {self.type}, not a histogram")
        return self.name + "_bucket"

    @property
    def label_order(self) -> tuple[str, ...]:
        """The label names in the order the text exposition writes them (sorted, as
        prometheus_client's encoders do; ``le`` of a histogram's buckets not included).

        >>> DRIFT_SCORE.label_order
        ('feature', 'method', 'model', 'model_version', 'reference')
        """
        return tuple(sorted(self.labels))


class HistogramFamily(Metric):
    """A histogram family that always emits ``_sum`` and ``_count``.

    prometheus_client's ``HistogramMetricFamily`` drops both when the first
    bucket bound is negative, which is common for feature histograms (a
    standardised feature, a temperature, a log-ratio).
    """

    def __init__(self, spec: MetricSpec[Any]) -> None:
        super().__init__(spec.name, spec.help, "histogram")
        self._labelnames = spec.labels

    def add(
        self,
        labels: Sequence[str],
        les: Sequence[str],
        cumulative: Iterable[float],
        sum_value: float,
    ) -> None:
        """Add one labelled histogram.

        ``les`` are the ``le`` strings including the final ``"+Inf"``;
        ``cumulative`` the cumulative counts at each of them.
        """
        base = dict(zip(self._labelnames, labels))
        name = self.name
        count = 0.0
        for le, value in zip(les, cumulative):
            lab = dict(base)
            lab["le"] = le
            self.add_sample(name + "_bucket", lab, float(value))
            count = value
        self.add_sample(name + "_count", base, float(count))
        self.add_sample(name + "_sum", base, float(sum_value))



def _counter(name: str, help: str, labels: tuple[str, ...],
             component: Component) -> MetricSpec[CounterMetricFamily]:
    return MetricSpec(name, "counter", help, labels, component)


def _gauge(name: str, help: str, labels: tuple[str, ...],
           component: Component) -> MetricSpec[GaugeMetricFamily]:
    return MetricSpec(name, "gauge", help, labels, component)


def _histogram(name: str, help: str, labels: tuple[str, ...],
               component: Component) -> MetricSpec[HistogramFamily]:
    return MetricSpec(name, "histogram", help, labels, component)


def _info(name: str, help: str, labels: tuple[str, ...],
          component: Component) -> MetricSpec[InfoMetricFamily]:
    return MetricSpec(name, "info", help, labels, component)


def _untyped(name: str, help: str, labels: tuple[str, ...],
             component: Component) -> MetricSpec[UnknownMetricFamily]:
    return MetricSpec(name, "untyped", help, labels, component)



# --- Monitor / sidecar -------------------------------------------------
MODEL_INFO = _info(
    "modelmon_model_info",
    "Model being monitored, with the id (content hash) of its baseline. Value is always 1.",
    _MV + ("baseline_id",), "monitor")
PREDICTIONS = _counter(
    "modelmon_predictions_total",
    "Events (predictions) observed.",
    _MV, "monitor")
FEATURE_VALUE = _histogram(
    "modelmon_feature_value",
    "Values of a numeric feature; bucket bounds are the baseline's training quantiles.",
    _MV + ("feature",), "monitor")
FEATURE_CATEGORY = _counter(
    "modelmon_feature_category_total",
    "Events per category of a categorical feature; categories not kept by the baseline "
    "are counted as __other__.",
    _MV + ("feature", "category"), "monitor")
FEATURE_MISSING = _counter(
    "modelmon_feature_missing_total",
    "Events in which the feature had no usable value (absent, null, NaN/inf or wrong type).",
    _MV + ("feature",), "monitor")
FEATURE_OUT_OF_RANGE = _counter(
    "modelmon_feature_out_of_range_total",
    "Numeric feature values outside the [min, max] seen in the training data.",
    _MV + ("feature",), "monitor")
SCHEMA_VIOLATIONS = _counter(
    "modelmon_schema_violations_total",
    "Values that broke the baseline's schema, by reason (unknown_feature, wrong_type, "
    "non_finite, missing_required); unknown feature names are counted as __unknown__.",
    _MV + ("feature", "reason"), "monitor")
PREDICTION_VALUE = _histogram(
    "modelmon_prediction_value",
    "Values of a numeric model output (regression value or class score); bucket bounds "
    "are the baseline's training quantiles.",
    _MV + ("output",), "monitor")
PREDICTED_CLASS = _counter(
    "modelmon_predicted_class_total",
    "Predictions per predicted class; classes not in the baseline are counted as __other__.",
    _MV + ("class",), "monitor")
INFERENCE_LATENCY_SECONDS = _histogram(
    "modelmon_inference_latency_seconds",
    "Inference latency reported with each event.",
    _MV, "monitor")
# A gauge in meaning, exposed untyped: it carries the histogram's `le` strings so
# PromQL can join on (le), and promlint reserves `le` for histograms except on
# untyped metrics. Prometheus stores untyped samples exactly like gauges.
BASELINE_BUCKET_RATIO = _untyped(
    "modelmon_baseline_bucket_ratio",
    "Cumulative fraction of the training values at or below each le bound of the feature "
    "or output histogram; same le strings as the histogram (a gauge, exposed untyped "
    "because le is reserved for histograms).",
    _MV + ("feature", "le"), "monitor")
BASELINE_CATEGORY_RATIO = _gauge(
    "modelmon_baseline_category_ratio",
    "Fraction of the training values in each category kept by the baseline (and __other__).",
    _MV + ("feature", "category"), "monitor")
BASELINE_CLASS_RATIO = _gauge(
    "modelmon_baseline_class_ratio",
    "Fraction of the training predictions in each class kept by the baseline (and __other__).",
    _MV + ("class",), "monitor")
BASELINE_CALIBRATION = _untyped(
    "modelmon_baseline_calibration",
    "Labelled training rows of a binary classifier per bucket of its score output (same le "
    "strings as its modelmon_prediction_value histogram), by quantity: rows, positives, "
    "predicted_positive, true_positive. The drift exporter estimates live performance from "
    "them (a gauge, exposed untyped because le is reserved for histograms).",
    _MV + ("output", "le", "quantity"), "monitor")
BASELINE_SAMPLES = _gauge(
    "modelmon_baseline_samples",
    "Training values behind the baseline ratios of a feature or output (non-missing rows).",
    _MV + ("feature",), "monitor")
# --- Ground truth (labels joined to predictions by id) ----------------------
LABELS = _counter(
    "modelmon_labels_total",
    "Ground-truth labels joined to the prediction with the same id.",
    _MV, "monitor")
LABELS_UNMATCHED = _counter(
    "modelmon_labels_unmatched_total",
    "Ground-truth labels whose id matched no remembered prediction (never made, expired, "
    "or already labelled).",
    _MV, "monitor")
PREDICTIONS_EXPIRED = _counter(
    "modelmon_predictions_expired_total",
    "Remembered predictions dropped before their label came, by reason: ttl (older than "
    "the join TTL) or cap (evicted to stay under the join store's row cap).",
    _MV + ("reason",), "monitor")
LABEL_DELAY_SECONDS = _histogram(
    "modelmon_label_delay_seconds",
    "Time from a prediction to the arrival (or the given timestamp) of its label.",
    _MV, "monitor")
CONFUSION = _counter(
    "modelmon_confusion_total",
    "Labelled predictions of a classifier by actual and predicted class, per segment "
    "(segment=\"all\" holds every one); classes not in the baseline are __other__.",
    _MV + ("segment", "actual", "predicted"), "monitor")
LABELED_SCORE = _histogram(
    "modelmon_labeled_score",
    "Score of the positive class of labelled binary predictions, by actual class and "
    "segment; bucket bounds are the score's baseline quantiles (ROC-AUC from buckets).",
    _MV + ("segment", "actual"), "monitor")
PREDICTION_ERROR = _histogram(
    "modelmon_prediction_error",
    "Error (prediction minus actual) of labelled regression predictions, per segment.",
    _MV + ("segment",), "monitor")
PREDICTION_ABSOLUTE_ERROR = _counter(
    "modelmon_prediction_absolute_error_total",
    "Sum of the absolute errors of labelled regression predictions, per segment (MAE = "
    "its increase over the error histogram's _count increase).",
    _MV + ("segment",), "monitor")
PREDICTION_SQUARED_ERROR = _counter(
    "modelmon_prediction_squared_error_total",
    "Sum of the squared errors of labelled regression predictions, per segment (RMSE = "
    "sqrt of its increase over the error histogram's _count increase).",
    _MV + ("segment",), "monitor")
CONCEPT_DRIFT_DETECTIONS = _counter(
    "modelmon_concept_drift_detections_total",
    "Changes detected in the stream of per-label errors, by detector (page_hinkley, "
    "adwin); each detection restarts the detector.",
    _MV + ("detector",), "monitor")
CONCEPT_DRIFT_STATISTIC = _gauge(
    "modelmon_concept_drift_statistic",
    "Current test statistic of a concept-drift detector (Page-Hinkley: the cumulative "
    "deviation above its minimum; ADWIN: the largest mean difference found between two "
    "sub-windows), in units of the error.",
    _MV + ("detector",), "monitor")
# --- Sidecar (HTTP ingest) ------------------------------------------------
SIDECAR_REQUESTS = _counter(
    "modelmon_sidecar_requests_total",
    "HTTP requests answered by the sidecar, by endpoint and status code.",
    ("endpoint", "code"), "sidecar")
SIDECAR_REQUEST_DURATION_SECONDS = _histogram(
    "modelmon_sidecar_request_duration_seconds",
    "Time from the start of a request to its reply, by endpoint.",
    ("endpoint",), "sidecar")
SIDECAR_EVENTS_REJECTED = _counter(
    "modelmon_sidecar_events_rejected_total",
    "Posted events that were not counted, by reason (malformed, invalid_field, wrong_type, "
    "non_finite); accepted events are counted in modelmon_predictions_total, requests "
    "rejected as a whole (4xx) in modelmon_sidecar_requests_total only.",
    _MV + ("reason",), "sidecar")
SIDECAR_READY = _gauge(
    "modelmon_sidecar_ready",
    "1 while the sidecar accepts traffic, 0 while it shuts down (after SIGTERM).",
    (), "sidecar")
# --- Drift exporter ----------------------------------------------------
DRIFT_SCORE = _gauge(
    "modelmon_drift_score",
    "Drift of a feature's live window against the reference (baseline, or the previous "
    "window of the same length), by method: psi, jensen_shannon, hellinger, ks, ks_pvalue, "
    "chi2_pvalue, wasserstein_normed.",
    _MV + ("feature", "method", "reference"), "drift")
PREDICTION_DRIFT_SCORE = _gauge(
    "modelmon_prediction_drift_score",
    "Drift of a model output's live window against the reference, by method (as "
    "modelmon_drift_score); output is a score/value output or the predicted class.",
    _MV + ("output", "method", "reference"), "drift")
DRIFT_WINDOW_SAMPLES = _gauge(
    "modelmon_drift_window_samples",
    "Samples behind a drift comparison: for reference=baseline the current window's, for "
    "reference=previous the previous window's. Exported even below --min-samples.",
    _MV + ("feature", "reference"), "drift")
DRIFT_DETECTED = _gauge(
    "modelmon_drift_detected",
    "1 when the drift verdict finds the feature's live window drifted from the reference, "
    "else 0: the verdict method's score is above modelmon_drift_threshold (an effect-size "
    "floor and the null quantile at the window's size and the feature's Holm-adjusted "
    "false-alarm level). Absent while the window holds fewer than --min-samples.",
    _MV + ("feature", "reference"), "drift")
PREDICTION_DRIFT_DETECTED = _gauge(
    "modelmon_prediction_drift_detected",
    "1 when the drift verdict finds a model output's live window drifted from the "
    "reference, else 0 (as modelmon_drift_detected).",
    _MV + ("output", "reference"), "drift")
DRIFT_THRESHOLD = _gauge(
    "modelmon_drift_threshold",
    "The score of the verdict method above which a feature counts as drifted at this "
    "window's size: the larger of the method's effect-size floor and its null quantile at "
    "the feature's Holm-adjusted false-alarm level. One series, for the verdict method.",
    _MV + ("feature", "method", "reference"), "drift")
PREDICTION_DRIFT_THRESHOLD = _gauge(
    "modelmon_prediction_drift_threshold",
    "The score of the verdict method above which a model output counts as drifted (as "
    "modelmon_drift_threshold).",
    _MV + ("output", "method", "reference"), "drift")
DRIFT_SHARE = _gauge(
    "modelmon_drift_share",
    "Share (0-1) of a model version's features with a verdict that are drifted (dataset "
    "drift); absent when no feature has a verdict.",
    _MV + ("reference",), "drift")
DRIFT_FEATURES_DRIFTED = _gauge(
    "modelmon_drift_features_drifted",
    "Number of a model version's features the drift verdict finds drifted.",
    _MV + ("reference",), "drift")
DRIFT_EVALUATION_TIMESTAMP_SECONDS = _gauge(
    "modelmon_drift_evaluation_timestamp_seconds",
    "Unix time at which the last drift evaluation finished.",
    (), "drift")
DRIFT_LAST_SUCCESS_TIMESTAMP_SECONDS = _gauge(
    "modelmon_drift_last_success_timestamp_seconds",
    "Unix time of the last drift evaluation in which every source answered.",
    (), "drift")
DRIFT_EVALUATION_DURATION_SECONDS = _histogram(
    "modelmon_drift_evaluation_duration_seconds",
    "Time taken by drift evaluations.",
    (), "drift")
DRIFT_EVALUATIONS = _counter(
    "modelmon_drift_evaluations_total",
    "Drift evaluations run.",
    (), "drift")
DRIFT_SOURCE_UP = _gauge(
    "modelmon_drift_source_up",
    "1 when the last read of a source (a scraped /metrics URL or a query API) succeeded, "
    "else 0.",
    ("source",), "drift")
DRIFT_SKIPPED = _counter(
    "modelmon_drift_skipped_total",
    "Series (a feature or output of one model version) left unscored in one window of one "
    "evaluation, by reason: no_baseline, baseline_mismatch, baseline_conflict, "
    "duplicate_name, missing_buckets, partial_buckets, non_monotonic, non_finite.",
    ("reason",), "drift")
DRIFT_QUERY_ERRORS = _counter(
    "modelmon_drift_query_errors_total",
    "Failed reads of a source: queries to the metrics store (query mode) or scrapes of a "
    "/metrics URL (scrape mode), by reason: timeout, connection, http_4xx, http_5xx, "
    "bad_response, query_error (query mode only).",
    ("reason",), "drift")
ESTIMATED_PERFORMANCE = _gauge(
    "modelmon_estimated_performance",
    "Performance of a binary classifier expected from its live score histogram and the "
    "baseline's calibration (fraction of positives per score bucket), before labels come; "
    "blind to concept drift (a changed relation between score and outcome).",
    _MV + ("metric",), "drift")

#: Every metric, in exposition order of the docs.
CATALOGUE: tuple[MetricSpec[Any], ...] = (
    MODEL_INFO, PREDICTIONS, FEATURE_VALUE, FEATURE_CATEGORY, FEATURE_MISSING,
    FEATURE_OUT_OF_RANGE, SCHEMA_VIOLATIONS, PREDICTION_VALUE, PREDICTED_CLASS,
    INFERENCE_LATENCY_SECONDS, BASELINE_BUCKET_RATIO, BASELINE_CATEGORY_RATIO,
    BASELINE_CLASS_RATIO, BASELINE_CALIBRATION, BASELINE_SAMPLES, LABELS, LABELS_UNMATCHED,
    PREDICTIONS_EXPIRED, LABEL_DELAY_SECONDS, CONFUSION, LABELED_SCORE, PREDICTION_ERROR,
    PREDICTION_ABSOLUTE_ERROR, PREDICTION_SQUARED_ERROR, CONCEPT_DRIFT_DETECTIONS,
    CONCEPT_DRIFT_STATISTIC, SIDECAR_REQUESTS, SIDECAR_REQUEST_DURATION_SECONDS,
    SIDECAR_EVENTS_REJECTED, SIDECAR_READY, DRIFT_SCORE, PREDICTION_DRIFT_SCORE,
    DRIFT_WINDOW_SAMPLES, DRIFT_DETECTED, PREDICTION_DRIFT_DETECTED, DRIFT_THRESHOLD,
    PREDICTION_DRIFT_THRESHOLD, DRIFT_SHARE, DRIFT_FEATURES_DRIFTED,
    DRIFT_EVALUATION_TIMESTAMP_SECONDS, DRIFT_LAST_SUCCESS_TIMESTAMP_SECONDS,
    DRIFT_EVALUATION_DURATION_SECONDS, DRIFT_EVALUATIONS, DRIFT_SOURCE_UP, DRIFT_SKIPPED,
    DRIFT_QUERY_ERRORS, ESTIMATED_PERFORMANCE,
)

_BY_NAME = {m.name: m for m in CATALOGUE}


def series_names() -> frozenset[str]:
    """Every sample name the catalogue's metrics can expose (histograms with their
    ``_bucket``, ``_sum`` and ``_count``): what rule files may read.

    >>> "modelmon_feature_value_bucket" in series_names()
    True
    """
    names: set[str] = set()
    for m in CATALOGUE:
        names.add(m.name)
        if m.type == "histogram":
            names |= {m.name + s for s in ("_bucket", "_sum", "_count")}
    return frozenset(names)


def by_name(name: str) -> MetricSpec[Any]:
    """The catalogue entry for an exposition name (the module's constants carry the
    family's type; prefer them, e.g. ``PREDICTIONS`` for ``modelmon_predictions_total``).

    >>> by_name("modelmon_predictions_total").labels
    ('model', 'model_version')
    """
    return _BY_NAME[name]


def render_markdown() -> str:
    """``docs/metrics.md``, generated from :data:`CATALOGUE`."""
    lines = [
        "# Metrics",
        "",
        "Generated from `exporter/modelmon/catalogue.py` by "
        "`python -m modelmon.catalogue > docs/metrics.md`; do not edit by hand.",
        "A test fails when this file and the catalogue differ. Names, types and label sets are",
        "a contract: a rename is a breaking change.",
        "",
    ]
    titles = {"monitor": "Monitor and sidecar (`/metrics` of the monitored process)",
              "sidecar": "Sidecar only (`modelmon sidecar`)",
              "drift": "Drift exporter (`modelmon drift`)"}
    for component in ("monitor", "sidecar", "drift"):
        lines += [f"## {titles[component]}", "", "| metric | type | labels | help |",
                  "|---|---|---|---|"]
        for m in CATALOGUE:
            if m.component != component:
                continue
            labels = ", ".join(f"`{lab}`" for lab in m.labels) or "—"
            lines.append(f"| `{m.name}` | {m.type} | {labels} | {m.help} |")
        lines.append("")
    lines += [
        "## Label values",
        "",
        f"- `feature`, `category`, `class`, `output`: only values from the baseline, plus "
        f"`{OTHER}` (categories and classes the baseline did not keep) and `{UNKNOWN}` "
        "(feature names it does not know). Nothing user-controlled creates new label values.",
        "- `reason`: " + ", ".join(f"`{r}`" for r in SCHEMA_VIOLATION_REASONS) + ".",
        "- `method`: " + ", ".join(f"`{r}`" for r in DRIFT_METHODS)
        + "; `ks`, `ks_pvalue` and `wasserstein_normed` for numeric features and outputs only. "
        "On `modelmon_drift_threshold` and `modelmon_prediction_drift_threshold` only the "
        "verdict method of the series: one of `wasserstein_normed`, `jensen_shannon`, "
        "`hellinger`, `psi`, `ks` (defaults: `wasserstein_normed` for numeric series, "
        "`jensen_shannon` for categories and classes; see docs/drift.md).",
        "- `reference`: " + ", ".join(f"`{r}`" for r in DRIFT_REFERENCES) + ".",
        "- `endpoint` (sidecar): " + ", ".join(f"`{r}`" for r in SIDECAR_ENDPOINTS) + ".",
        "- `reason` on `modelmon_sidecar_events_rejected_total`: "
        + ", ".join(f"`{r}`" for r in SIDECAR_REJECT_REASONS) + ".",
        "- `reason` on `modelmon_drift_skipped_total`: "
        + ", ".join(f"`{r}`" for r in DRIFT_SKIP_REASONS) + ".",
        "- `reason` on `modelmon_drift_query_errors_total`: "
        + ", ".join(f"`{r}`" for r in DRIFT_QUERY_ERROR_REASONS) + ".",
        "- `source` on `modelmon_drift_source_up`: the scraped `/metrics` URLs (scrape mode) or "
        "the query API URL without credentials (query mode); fixed by the configuration.",
        "- `le` on `modelmon_inference_latency_seconds`: "
        + ", ".join(str(b) for b in LATENCY_BUCKETS) + ", +Inf.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render_markdown())
