"""The metric catalogue: every metric modelmon exposes, in one place.

Code, dashboards, alerts, docs and tests refer to these definitions. A rename is
a breaking change. ``docs/metrics.md`` is generated from this module by
``python -m modelmon.catalogue > docs/metrics.md`` and a test fails when the two
differ.

Each :class:`MetricSpec` also builds a fresh metric family for custom
collectors (``spec.family()``), so that collectors never spell a metric name or
a label list on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
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
]

MetricType = Literal["counter", "gauge", "histogram", "info", "untyped"]

#: Category label value for every category the baseline did not keep.
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


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its exposition name, type, help text and label names.

    ``name`` is the name as it appears in the text exposition: counters end in
    ``_total``, info metrics in ``_info``; histograms are named without the
    ``_bucket``/``_sum``/``_count`` suffixes.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    component: Literal["monitor", "sidecar", "drift"]

    @property
    def family_name(self) -> str:
        """The name prometheus_client's family classes expect (no ``_total``/``_info``)."""
        if self.type == "counter":
            return self.name.removesuffix("_total")
        if self.type == "info":
            return self.name.removesuffix("_info")
        return self.name

    def family(self) -> Metric:
        """A fresh, empty metric family for a collector to fill."""
        if self.type == "counter":
            return CounterMetricFamily(self.family_name, self.help, labels=self.labels)
        if self.type == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=self.labels)
        if self.type == "untyped":
            return UnknownMetricFamily(self.name, self.help, labels=self.labels)
        if self.type == "info":
            # Info labels are given per sample (see InfoMetricFamily.add_metric).
            return InfoMetricFamily(self.family_name, self.help, labels=())
        return HistogramFamily(self)


class HistogramFamily(Metric):
    """A histogram family that always emits ``_sum`` and ``_count``.

    prometheus_client's ``HistogramMetricFamily`` drops both when the first
    bucket bound is negative, which is common for feature histograms (a
    standardised feature, a temperature, a log-ratio).
    """

    def __init__(self, spec: MetricSpec) -> None:
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


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- Monitor / sidecar -------------------------------------------------
    MetricSpec(
        "modelmon_model_info", "info",
        "Model being monitored, with the id (content hash) of its baseline. Value is always 1.",
        _MV + ("baseline_id",), "monitor"),
    MetricSpec(
        "modelmon_predictions_total", "counter",
        "Events (predictions) observed.",
        _MV, "monitor"),
    MetricSpec(
        "modelmon_feature_value", "histogram",
        "Values of a numeric feature; bucket bounds are the baseline's training quantiles.",
        _MV + ("feature",), "monitor"),
    MetricSpec(
        "modelmon_feature_category_total", "counter",
        "Events per category of a categorical feature; categories not kept by the baseline "
        "are counted as __other__.",
        _MV + ("feature", "category"), "monitor"),
    MetricSpec(
        "modelmon_feature_missing_total", "counter",
        "Events in which the feature had no usable value (absent, null, NaN/inf or wrong type).",
        _MV + ("feature",), "monitor"),
    MetricSpec(
        "modelmon_feature_out_of_range_total", "counter",
        "Numeric feature values outside the [min, max] seen in the training data.",
        _MV + ("feature",), "monitor"),
    MetricSpec(
        "modelmon_schema_violations_total", "counter",
        "Values that broke the baseline's schema, by reason (unknown_feature, wrong_type, "
        "non_finite, missing_required); unknown feature names are counted as __unknown__.",
        _MV + ("feature", "reason"), "monitor"),
    MetricSpec(
        "modelmon_prediction_value", "histogram",
        "Values of a numeric model output (regression value or class score); bucket bounds "
        "are the baseline's training quantiles.",
        _MV + ("output",), "monitor"),
    MetricSpec(
        "modelmon_predicted_class_total", "counter",
        "Predictions per predicted class; classes not in the baseline are counted as __other__.",
        _MV + ("class",), "monitor"),
    MetricSpec(
        "modelmon_inference_latency_seconds", "histogram",
        "Inference latency reported with each event.",
        _MV, "monitor"),
    # A gauge in meaning, exposed untyped: it carries the histogram's `le` strings so
    # PromQL can join on (le), and promlint reserves `le` for histograms except on
    # untyped metrics. Prometheus stores untyped samples exactly like gauges.
    MetricSpec(
        "modelmon_baseline_bucket_ratio", "untyped",
        "Cumulative fraction of the training values at or below each le bound of the feature "
        "or output histogram; same le strings as the histogram (a gauge, exposed untyped "
        "because le is reserved for histograms).",
        _MV + ("feature", "le"), "monitor"),
    MetricSpec(
        "modelmon_baseline_category_ratio", "gauge",
        "Fraction of the training values in each category kept by the baseline (and __other__).",
        _MV + ("feature", "category"), "monitor"),
    MetricSpec(
        "modelmon_baseline_class_ratio", "gauge",
        "Fraction of the training predictions in each class kept by the baseline (and __other__).",
        _MV + ("class",), "monitor"),
    MetricSpec(
        "modelmon_baseline_calibration", "untyped",
        "Labelled training rows of a binary classifier per bucket of its score output (same le "
        "strings as its modelmon_prediction_value histogram), by quantity: rows, positives, "
        "predicted_positive, true_positive. The drift exporter estimates live performance from "
        "them (a gauge, exposed untyped because le is reserved for histograms).",
        _MV + ("output", "le", "quantity"), "monitor"),
    MetricSpec(
        "modelmon_baseline_samples", "gauge",
        "Training values behind the baseline ratios of a feature or output (non-missing rows).",
        _MV + ("feature",), "monitor"),
    # --- Ground truth (labels joined to predictions by id) ----------------------
    MetricSpec(
        "modelmon_labels_total", "counter",
        "Ground-truth labels joined to the prediction with the same id.",
        _MV, "monitor"),
    MetricSpec(
        "modelmon_labels_unmatched_total", "counter",
        "Ground-truth labels whose id matched no remembered prediction (never made, expired, "
        "or already labelled).",
        _MV, "monitor"),
    MetricSpec(
        "modelmon_predictions_expired_total", "counter",
        "Remembered predictions dropped before their label came, by reason: ttl (older than "
        "the join TTL) or cap (evicted to stay under the join store's row cap).",
        _MV + ("reason",), "monitor"),
    MetricSpec(
        "modelmon_label_delay_seconds", "histogram",
        "Time from a prediction to the arrival (or the given timestamp) of its label.",
        _MV, "monitor"),
    MetricSpec(
        "modelmon_confusion_total", "counter",
        "Labelled predictions of a classifier by actual and predicted class, per segment "
        "(segment=\"all\" holds every one); classes not in the baseline are __other__.",
        _MV + ("segment", "actual", "predicted"), "monitor"),
    MetricSpec(
        "modelmon_labeled_score", "histogram",
        "Score of the positive class of labelled binary predictions, by actual class and "
        "segment; bucket bounds are the score's baseline quantiles (ROC-AUC from buckets).",
        _MV + ("segment", "actual"), "monitor"),
    MetricSpec(
        "modelmon_prediction_error", "histogram",
        "Error (prediction minus actual) of labelled regression predictions, per segment.",
        _MV + ("segment",), "monitor"),
    MetricSpec(
        "modelmon_prediction_absolute_error_total", "counter",
        "Sum of the absolute errors of labelled regression predictions, per segment (MAE = "
        "its increase over the error histogram's _count increase).",
        _MV + ("segment",), "monitor"),
    MetricSpec(
        "modelmon_prediction_squared_error_total", "counter",
        "Sum of the squared errors of labelled regression predictions, per segment (RMSE = "
        "sqrt of its increase over the error histogram's _count increase).",
        _MV + ("segment",), "monitor"),
    MetricSpec(
        "modelmon_concept_drift_detections_total", "counter",
        "Changes detected in the stream of per-label errors, by detector (page_hinkley, "
        "adwin); each detection restarts the detector.",
        _MV + ("detector",), "monitor"),
    MetricSpec(
        "modelmon_concept_drift_statistic", "gauge",
        "Current test statistic of a concept-drift detector (Page-Hinkley: the cumulative "
        "deviation above its minimum; ADWIN: the largest mean difference found between two "
        "sub-windows), in units of the error.",
        _MV + ("detector",), "monitor"),
    # --- Sidecar (HTTP ingest) ------------------------------------------------
    MetricSpec(
        "modelmon_sidecar_requests_total", "counter",
        "HTTP requests answered by the sidecar, by endpoint and status code.",
        ("endpoint", "code"), "sidecar"),
    MetricSpec(
        "modelmon_sidecar_request_duration_seconds", "histogram",
        "Time from the start of a request to its reply, by endpoint.",
        ("endpoint",), "sidecar"),
    MetricSpec(
        "modelmon_sidecar_events_rejected_total", "counter",
        "Posted events that were not counted, by reason (malformed, invalid_field, wrong_type, "
        "non_finite); accepted events are counted in modelmon_predictions_total, requests "
        "rejected as a whole (4xx) in modelmon_sidecar_requests_total only.",
        _MV + ("reason",), "sidecar"),
    MetricSpec(
        "modelmon_sidecar_ready", "gauge",
        "1 while the sidecar accepts traffic, 0 while it shuts down (after SIGTERM).",
        (), "sidecar"),
    # --- Drift exporter ----------------------------------------------------
    MetricSpec(
        "modelmon_drift_score", "gauge",
        "Drift of a feature's live window against the reference (baseline, or the previous "
        "window of the same length), by method: psi, jensen_shannon, hellinger, ks, ks_pvalue, "
        "chi2_pvalue, wasserstein_normed.",
        _MV + ("feature", "method", "reference"), "drift"),
    MetricSpec(
        "modelmon_prediction_drift_score", "gauge",
        "Drift of a model output's live window against the reference, by method (as "
        "modelmon_drift_score); output is a score/value output or the predicted class.",
        _MV + ("output", "method", "reference"), "drift"),
    MetricSpec(
        "modelmon_drift_window_samples", "gauge",
        "Samples behind a drift comparison: for reference=baseline the current window's, for "
        "reference=previous the previous window's. Exported even below --min-samples.",
        _MV + ("feature", "reference"), "drift"),
    MetricSpec(
        "modelmon_drift_detected", "gauge",
        "1 when the drift verdict finds the feature's live window drifted from the reference, "
        "else 0: the verdict method's score is above modelmon_drift_threshold (an effect-size "
        "floor and the null quantile at the window's size and the feature's Holm-adjusted "
        "false-alarm level). Absent while the window holds fewer than --min-samples.",
        _MV + ("feature", "reference"), "drift"),
    MetricSpec(
        "modelmon_prediction_drift_detected", "gauge",
        "1 when the drift verdict finds a model output's live window drifted from the "
        "reference, else 0 (as modelmon_drift_detected).",
        _MV + ("output", "reference"), "drift"),
    MetricSpec(
        "modelmon_drift_threshold", "gauge",
        "The score of the verdict method above which a feature counts as drifted at this "
        "window's size: the larger of the method's effect-size floor and its null quantile at "
        "the feature's Holm-adjusted false-alarm level. One series, for the verdict method.",
        _MV + ("feature", "method", "reference"), "drift"),
    MetricSpec(
        "modelmon_prediction_drift_threshold", "gauge",
        "The score of the verdict method above which a model output counts as drifted (as "
        "modelmon_drift_threshold).",
        _MV + ("output", "method", "reference"), "drift"),
    MetricSpec(
        "modelmon_drift_share", "gauge",
        "Share (0-1) of a model version's features with a verdict that are drifted (dataset "
        "drift); absent when no feature has a verdict.",
        _MV + ("reference",), "drift"),
    MetricSpec(
        "modelmon_drift_features_drifted", "gauge",
        "Number of a model version's features the drift verdict finds drifted.",
        _MV + ("reference",), "drift"),
    MetricSpec(
        "modelmon_drift_evaluation_timestamp_seconds", "gauge",
        "Unix time at which the last drift evaluation finished.",
        (), "drift"),
    MetricSpec(
        "modelmon_drift_last_success_timestamp_seconds", "gauge",
        "Unix time of the last drift evaluation in which every source answered.",
        (), "drift"),
    MetricSpec(
        "modelmon_drift_evaluation_duration_seconds", "histogram",
        "Time taken by drift evaluations.",
        (), "drift"),
    MetricSpec(
        "modelmon_drift_evaluations_total", "counter",
        "Drift evaluations run.",
        (), "drift"),
    MetricSpec(
        "modelmon_drift_source_up", "gauge",
        "1 when the last read of a source (a scraped /metrics URL or a query API) succeeded, "
        "else 0.",
        ("source",), "drift"),
    MetricSpec(
        "modelmon_drift_skipped_total", "counter",
        "Series (a feature or output of one model version) left unscored in one window of one "
        "evaluation, by reason: no_baseline, baseline_mismatch, baseline_conflict, "
        "duplicate_name, missing_buckets, partial_buckets, non_monotonic, non_finite.",
        ("reason",), "drift"),
    MetricSpec(
        "modelmon_drift_query_errors_total", "counter",
        "Failed reads of a source: queries to the metrics store (query mode) or scrapes of a "
        "/metrics URL (scrape mode), by reason: timeout, connection, http_4xx, http_5xx, "
        "bad_response, query_error (query mode only).",
        ("reason",), "drift"),
    MetricSpec(
        "modelmon_estimated_performance", "gauge",
        "Performance of a binary classifier expected from its live score histogram and the "
        "baseline's calibration (fraction of positives per score bucket), before labels come; "
        "blind to concept drift (a changed relation between score and outcome).",
        _MV + ("metric",), "drift"),
)

_BY_NAME = {m.name: m for m in CATALOGUE}


def series_names() -> frozenset[str]:
    """Every sample name the catalogue's metrics can expose (histograms with their
    ``_bucket``, ``_sum`` and ``_count``): what rule files may read.

    >>> "modelmon_feature_value_bucket" in series_names()
    True
    """
    names = set()
    for m in CATALOGUE:
        names.add(m.name)
        if m.type == "histogram":
            names |= {m.name + s for s in ("_bucket", "_sum", "_count")}
    return frozenset(names)


def by_name(name: str) -> MetricSpec:
    """The catalogue entry for an exposition name.

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
