"""The five modelmon dashboards, as code.

Every query reads raw modelmon series (names checked against :mod:`modelmon.catalogue`
by :func:`~modelmon.dashboards.kit.metric`), so the dashboards work without the
recording rules of ``alerts/``; where an alert has a threshold, the panel draws it.
Drift is judged by the drift exporter, not here: its verdict
(``modelmon_drift_detected``) and the line it drew (``modelmon_drift_threshold``, the
verdict method's score above which a feature is drifted at the window's size) are
drawn as they are; no panel has a fixed cut-off of its own for a drift score.
Replicas are summed (counters) or maxed (gauges and baselines, identical on every
replica) down to ``model``, ``model_version`` and the panel's own labels.
"""

from __future__ import annotations

from typing import Any

from ..catalogue import ESTIMATED_METRICS, SEGMENT_ALL
from .kit import (
    GREY,
    UID_PREFIX,
    Board,
    State,
    Target,
    gauge_bars,
    heat,
    link,
    metric,
    stat_panel,
    tbl,
    timeline,
    ts,
)

__all__ = ["DASHBOARDS", "build_all"]

FLEET = UID_PREFIX + "fleet"
MODEL = UID_PREFIX + "model"
FEATURE = UID_PREFIX + "feature"
PERFORMANCE = UID_PREFIX + "performance"
EXPORTER = UID_PREFIX + "exporter"

#: Selected model and version(s); model_version is a multi-value variable.
SEL = 'model="$model", model_version=~"$model_version"'
RI = "$__rate_interval"
#: Escalations of the shipped drift alerts (alerts/modelmon-rules.yaml), drawn on the
#: panels: ModelMonFeatureDriftCritical fires at a score this many times its threshold,
#: ModelMonDatasetDrift at this share of a model's features drifted.
DRIFT_CRITICAL_RATIO = 2
DATASET_DRIFT_SHARE = 0.5
#: Score / threshold: 1 is the verdict's line (drifted above it), then the critical alert.
OVER_STEPS = ((None, "green"), (1, "orange"), (DRIFT_CRITICAL_RATIO, "red"))
SHARE_STEPS = ((None, "green"), (DATASET_DRIFT_SHARE, "red"))
#: A count of drifted features or outputs, or score / threshold where no alert escalates:
#: from 1 on, worth a look.
ONE_STEPS = ((None, "green"), (1, "orange"))
RATIO_STEPS = ((None, "green"), (0.01, "orange"), (0.05, "red"))

#: Value of the verdict queries while the window is too small for a verdict (the
#: exporter then exports the window's samples but no ``modelmon_drift_detected``).
TOO_FEW = -1
#: The states of a drift verdict panel: the exporter's 1 and 0, and ``TOO_FEW``.
VERDICT_STATES: tuple[State, ...] = ((1, "drifted", "red"), (0, "stable", "green"),
                                     (TOO_FEW, "too few samples", GREY))
#: Outputs have no samples series: a verdict or nothing.
OUTPUT_STATES: tuple[State, ...] = VERDICT_STATES[:2]

PREDICTIONS = metric("modelmon_predictions_total")
INFO = metric("modelmon_model_info")
DRIFT = metric("modelmon_drift_score")
PDRIFT = metric("modelmon_prediction_drift_score")
DETECTED = metric("modelmon_drift_detected")
PDETECTED = metric("modelmon_prediction_drift_detected")
THRESHOLD = metric("modelmon_drift_threshold")
PTHRESHOLD = metric("modelmon_prediction_drift_threshold")
SAMPLES = metric("modelmon_drift_window_samples")
SHARE = metric("modelmon_drift_share")
DRIFTED = metric("modelmon_drift_features_drifted")
CONFUSION = metric("modelmon_confusion_total")

VERSION_VAR_QUERY = f'label_values({INFO}{{model="$model"}}, model_version)'

# Data-link parameters carrying the variables to the next dashboard.
_MODEL_PARAMS = "var-model=${__data.fields.model}&var-model_version=${__data.fields.model_version}"
_KEEP = "var-model=${model}&${model_version:queryparam}"


def _model_vars(b: Board, *, fleet: bool = False) -> Board:
    b.datasource()
    if fleet:
        b.query_var("model", "Model", f"label_values({INFO}, model)", multi=True,
                    all_value=".*")
        b.query_var("model_version", "Version",
                    f'label_values({INFO}{{model=~"$model"}}, model_version)', multi=True,
                    all_value=".*")
    else:
        b.query_var("model", "Model", f"label_values({INFO}, model)")
        b.query_var("model_version", "Version", VERSION_VAR_QUERY, multi=True, all_value=".*")
    return b


def _steps(steps: tuple[tuple[float | None, str], ...]) -> dict[str, Any]:
    """Threshold steps as a field override value (table columns)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _per_event(numerator: str) -> str:
    """``numerator`` (a per-second rate by some labels) over the model's event rate."""
    return (f"{numerator} / on () group_left () "
            f"(sum(rate({PREDICTIONS}{{{SEL}}}[{RI}])) > 0)")


# --- drift verdicts -----------------------------------------------------------------------
def _verdict(sel: str, by: str) -> str:
    """The exporter's verdict (1 drifted, 0 stable) per ``by``, or ``TOO_FEW`` where the
    window has samples but no verdict (fewer than the exporter's --min-samples)."""
    return (f"max by ({by}) ({DETECTED}{{{sel}}}) or on ({by}) "
            f"(max by ({by}) ({SAMPLES}{{{sel}}}) * 0 - {-TOO_FEW})")


def _over_threshold(score: str, threshold: str, item: str, sel: str, by: str) -> str:
    """The verdict method's score over its threshold, per ``by``: above 1 the exporter
    finds the ``item`` (feature or output) drifted. Only the verdict method has a
    threshold series, so the division keeps its score and drops the other methods'."""
    on = f"model_version, {item}, method"
    return (f"max by ({by}) (max by ({on}) ({score}{{{sel}}}) / on ({on}) "
            f"max by ({on}) ({threshold}{{{sel}}}))")


# --- classifier quality from the confusion counters, without recording rules ---------------
def _confusion(sel: str, window: str, by: str = "model_version, segment") -> str:
    return (f"sum by ({by}, actual, predicted) "
            f"(increase({CONFUSION}{{{sel}}}[{window}]))")


def _as_class(expr: str, label: str) -> str:
    return f'label_replace({expr}, "class", "$1", "{label}", "(?s)(.*)")'


def _tp(c: str, by: str) -> str:
    return f"sum by ({by}, class) ({_as_class(c, 'actual')} and {_as_class(c, 'predicted')})"


def _accuracy(sel: str, window: str, by: str = "model_version, segment") -> str:
    c = _confusion(sel, window, by)
    return (f"sum by ({by}) ({_tp(c, by)}) / on ({by}) "
            f"(sum by ({by}) ({c}) > 0)")


def _per_class(kind: str, sel: str, window: str, by: str = "model_version, segment") -> str:
    c = _confusion(sel, window, by)
    actual = f"sum by ({by}, class) ({_as_class(c, 'actual')})"
    predicted = f"sum by ({by}, class) ({_as_class(c, 'predicted')})"
    on = f"on ({by}, class)"
    if kind == "precision":
        return f"{_tp(c, by)} / {on} ({predicted} > 0)"
    if kind == "recall":
        return f"{_tp(c, by)} / {on} ({actual} > 0)"
    return f"2 * {_tp(c, by)} / {on} (({predicted} + {on} {actual}) > 0)"


def _calibration(quantity: str, sel: str) -> str:
    cal = metric("modelmon_baseline_calibration")
    return (f"sum by (model_version) (max by (model_version, output, le) "
            f'({cal}{{{sel}, quantity="{quantity}"}}))')


def _training_accuracy(sel: str) -> str:
    """(TP + TN) / rows of the baseline's calibration table (as the alert's record)."""
    rows, pp = _calibration("rows", sel), _calibration("predicted_positive", sel)
    pos, tp = _calibration("positives", sel), _calibration("true_positive", sel)
    return f"({rows} - {pp} - {pos} + 2 * {tp}) / ({rows} > 0)"


def _training_f1(sel: str, positive: bool) -> str:
    rows, pp = _calibration("rows", sel), _calibration("predicted_positive", sel)
    pos, tp = _calibration("positives", sel), _calibration("true_positive", sel)
    if positive:
        return f"2 * {tp} / (({pp} + {pos}) > 0)"
    return f"2 * ({rows} - {pp} - {pos} + {tp}) / ((2 * {rows} - {pp} - {pos}) > 0)"


# --- histograms ---------------------------------------------------------------------------
def _live_cdf(hist: str, label: str, value: str, window: str) -> str:
    """Cumulative share of the live values at each ``le`` (de-accumulated by Grafana)."""
    return (f"sum by (le) (increase({metric(hist + '_bucket')}{{{SEL}, {label}=\"{value}\"}}"
            f"[{window}])) / on () group_left () "
            f"(sum(increase({metric(hist + '_count')}{{{SEL}, {label}=\"{value}\"}}"
            f"[{window}])) > 0)")


def _baseline_cdf(value: str) -> str:
    return (f"max by (le) ({metric('modelmon_baseline_bucket_ratio')}"
            f'{{{SEL}, feature="{value}"}})')


# =========================================================================================
def fleet() -> dict[str, Any]:
    b = _model_vars(Board(FLEET, "ModelMon / Fleet",
                          "Every monitored model at a glance: traffic, drift, data quality, "
                          "accuracy and firing alerts. Click a model to open it.", ["fleet"]),
                    fleet=True)
    fsel = 'model=~"$model", model_version=~"$model_version"'
    by = "model, model_version"
    traffic = f"sum by ({by}) (rate({PREDICTIONS}{{{fsel}}}[{RI}]))"
    b.row(
        "Fleet",
        stat_panel("Model versions", "Model versions reporting to Prometheus.",
                   [Target(f"count(max by ({by}) ({INFO}{{{fsel}}}))", instant=True)],
                   "none"),
        stat_panel("Predictions per second", "All selected models together.",
                   [Target(f"sum(rate({PREDICTIONS}{{{fsel}}}[{RI}]))")], "reqps"),
        stat_panel("Firing alerts", "ModelMon alerts firing now (all severities).",
                   [Target(f'count(ALERTS{{alertstate="firing", alertname=~"ModelMon.*", '
                           f"{fsel}}})", instant=True)], "none",
                   thresholds=((None, "green"), (1, "red")), no_value="0"),
        stat_panel("Features drifted",
                   "Features of the selected model versions the drift exporter finds drifted "
                   "from their baseline now (its verdict: the verdict method's score above "
                   "the threshold for the window's size).",
                   [Target(f"sum(max by ({by}) ({DRIFTED}{{{fsel}, "
                           f'reference="baseline"}}))')], "none", thresholds=ONE_STEPS),
        stat_panel("Drift evaluated", "Time of the drift exporter's last successful "
                   "evaluation (ModelMonDriftEvaluationsStale fires after 10 minutes).",
                   [Target(f"max({metric('modelmon_drift_last_success_timestamp_seconds')})"
                           " * 1000", instant=True)], "dateTimeFromNow"),
        stat_panel("Labelled predictions per second",
                   "Ground-truth labels joined to predictions, all selected models.",
                   [Target(f"sum(rate({metric('modelmon_labels_total')}{{{fsel}}}[{RI}]))")],
                   "reqps"),
    )
    cols = [
        ("Predictions/s", Target(traffic, instant=True, fmt="table")),
        ("Features drifted", Target(
            f'max by ({by}) ({DRIFTED}{{{fsel}, reference="baseline"}})',
            instant=True, fmt="table")),
        ("Dataset drift", Target(
            f'max by ({by}) ({SHARE}{{{fsel}, reference="baseline"}})',
            instant=True, fmt="table")),
        ("Outputs drifted", Target(
            f"sum by ({by}) (max by ({by}, output) ({PDETECTED}{{{fsel}, "
            f'reference="baseline"}}))', instant=True, fmt="table")),
        ("Schema violations", Target(
            f"(sum by ({by}) (rate({metric('modelmon_schema_violations_total')}{{{fsel}}}"
            f"[{RI}])) or 0 * {traffic}) / ({traffic} > 0)", instant=True, fmt="table")),
        ("Accuracy (labels)", Target(
            _accuracy(f'{fsel}, segment="{SEGMENT_ALL}"', "1h", by), instant=True,
            fmt="table")),
        ("Estimated accuracy", Target(
            f"max by ({by}) ({metric('modelmon_estimated_performance')}"
            f'{{{fsel}, metric="accuracy"}})', instant=True, fmt="table")),
        ("Firing alerts", Target(
            f'count by ({by}) (ALERTS{{alertstate="firing", alertname=~"ModelMon.*", '
            f"{fsel}}})", instant=True, fmt="table")),
    ]
    rename = {f"Value #{chr(ord('A') + i)}": name for i, (name, _) in enumerate(cols)}
    b.row(
        "Models",
        tbl("Models", "One row per model version. Features and outputs drifted from their "
            "baseline by the drift exporter's verdict; dataset drift is the share of the "
            f"features drifted (critical alert from {DATASET_DRIFT_SHARE:.0%}). Accuracy is "
            "over the last hour of labels; the estimate comes from the live scores and the "
            "training calibration before labels arrive.",
            [t for _, t in cols], "none", h=10,
            transformations=[
                {"id": "merge"},
                {"id": "organize", "options": {"excludeByName": {"Time": True},
                                               "renameByName": rename,
                                               "indexByName": {"model": 0,
                                                               "model_version": 1}}},
            ],
            overrides=[
                ("model", [("links", [link("Open ${__value.raw}", MODEL, _MODEL_PARAMS)])]),
                ("Predictions/s", [("unit", "reqps")]),
                ("Features drifted", [("custom.cellOptions", {"type": "color-background"}),
                                      ("thresholds", _steps(ONE_STEPS))]),
                ("Dataset drift", [("unit", "percentunit"),
                                   ("custom.cellOptions", {"type": "color-background"}),
                                   ("thresholds", _steps(SHARE_STEPS))]),
                ("Outputs drifted", [("custom.cellOptions", {"type": "color-background"}),
                                     ("thresholds", _steps(ONE_STEPS))]),
                ("Schema violations", [("unit", "percentunit")]),
                ("Accuracy (labels)", [("unit", "percentunit"),
                                       ("links", [link("Performance", PERFORMANCE,
                                                       _MODEL_PARAMS)])]),
                ("Estimated accuracy", [("unit", "percentunit")]),
                ("Firing alerts", [("custom.cellOptions", {"type": "color-background"}),
                                   ("thresholds", _steps(((None, "green"), (1, "red"))))]),
            ]),
        tbl("Alerts firing now", "ModelMon alerts firing now, with their labels.",
            [Target(f'max by (alertname, severity, model, model_version, feature, output, '
                    f'class, segment) (ALERTS{{alertstate="firing", alertname=~"ModelMon.*", '
                    f"{fsel}}})", instant=True, fmt="table")], "none", h=8,
            transformations=[{"id": "organize", "options": {"excludeByName": {
                "Time": True, "Value": True}}}]),
    )
    b.row(
        "Trends",
        ts("Predictions per second by model", "Traffic per model version.",
           [Target(traffic, "{{model}} {{model_version}}")], "reqps"),
        ts("Dataset drift by model (share of features drifted)",
           "Share of each model version's features drifted from their baseline by the "
           "drift exporter's verdict (features with too few samples for a verdict left "
           f"out); the critical alert fires from {DATASET_DRIFT_SHARE:.0%} (and at least "
           "2 features) for 30 minutes.",
           [Target(f'max by ({by}) ({SHARE}{{{fsel}, reference="baseline"}})',
                   "{{model}} {{model_version}}")], "percentunit",
           thresholds=SHARE_STEPS, minv=0, maxv=1),
    )
    return b.build()


# =========================================================================================
def model() -> dict[str, Any]:
    b = _model_vars(Board(MODEL, "ModelMon / Model",
                          "One model: traffic and latency, the drift verdict on every feature "
                          "and output and their scores against the thresholds, data quality. "
                          "Alert annotations mark firing ModelMon alerts.",
                          ["model"]))
    b.query_var("output", "Output",
                f'label_values({metric("modelmon_prediction_value_count")}'
                '{model="$model"}, output)')
    b.custom_var("method", "Heatmap method",
                 ["psi", "jensen_shannon", "hellinger", "wasserstein_normed", "ks"], "psi",
                 "Drift method shown in the heatmap.")
    b.alert_annotations(', model="$model"')
    lat = metric("modelmon_inference_latency_seconds_bucket")
    b.row(
        "Traffic and serving",
        ts("Predictions per second", "Events counted per second, per version.",
           [Target(f"sum by (model_version) (rate({PREDICTIONS}{{{SEL}}}[{RI}]))",
                   "{{model_version}}")], "reqps", w=8),
        ts("Inference latency (p50/p99)", "Latency reported with the events; the warning "
           "alert fires when p99 stays above 0.5 s.",
           [Target(f"histogram_quantile(0.5, sum by (model_version, le) "
                   f"(rate({lat}{{{SEL}}}[{RI}])))", "p50 {{model_version}}"),
            Target(f"histogram_quantile(0.99, sum by (model_version, le) "
                   f"(rate({lat}{{{SEL}}}[{RI}])))", "p99 {{model_version}}")], "s", w=8,
           thresholds=((None, "green"), (0.5, "red"))),
        ts("Rejected events", "Posted events the sidecar did not count, by reason "
           "(share of the counted events).",
           [Target(_per_event(f"sum by (reason) (rate("
                              f"{metric('modelmon_sidecar_events_rejected_total')}"
                              f"{{{SEL}}}[{RI}]))"), "{{reason}}")], "percentunit", w=8,
           minv=0),
        stat_panel("Targets up", "Scrape targets (sidecars or instrumented processes) "
                   "serving this model; 0 means a target cannot be scraped.",
                   [Target(f"max by (instance) (up) * on (instance) group_left () "
                           f"max by (instance) ({INFO}{{{SEL}}})", "{{instance}}",
                           instant=True)], "none", w=8,
                   thresholds=((None, "red"), (1, "green"))),
        stat_panel("Baseline", "Id (content hash) of the baseline each version is "
                   "compared with.",
                   [Target(f"max by (model_version, baseline_id) ({INFO}{{{SEL}}})",
                           "{{model_version}}: {{baseline_id}}", instant=True)], "none", w=8),
        stat_panel("Firing alerts", "ModelMon alerts firing now for this model.",
                   [Target(f'count(ALERTS{{alertstate="firing", alertname=~"ModelMon.*", '
                           f'model="$model"}})', instant=True)], "none", w=8,
                   thresholds=((None, "green"), (1, "red")), no_value="0"),
    )
    base = f'{SEL}, reference="baseline"'
    prev = f'{SEL}, reference="previous"'
    over = _over_threshold(DRIFT, THRESHOLD, "feature", base, "feature")
    top = Target(f"topk(10, {over})", "{{feature}}", instant=True)
    b.row(
        "Drift",
        stat_panel("Features drifted", "Features the drift exporter finds drifted from "
                   "their baseline now, per version: the verdict method's score is above the "
                   "threshold for the window's size (modelmon_drift_detected).",
                   [Target(f"max by (model_version) ({DRIFTED}{{{base}}})",
                           "{{model_version}}")], "none", w=6, thresholds=ONE_STEPS),
        stat_panel("Dataset drift", "Share of the features with a verdict that drifted "
                   "from their baseline, per version. The critical alert fires from "
                   f"{DATASET_DRIFT_SHARE:.0%} (and at least 2 features) for 30 minutes.",
                   [Target(f"max by (model_version) ({SHARE}{{{base}}})",
                           "{{model_version}}")], "percentunit", w=6,
                   thresholds=SHARE_STEPS),
        stat_panel("Outputs drifted", "Model outputs (scores, values, the predicted class) "
                   "the drift exporter finds drifted from training now, per version.",
                   [Target(f"sum by (model_version) (max by (model_version, output) "
                           f"({PDETECTED}{{{base}}}))", "{{model_version}}")], "none", w=6,
                   thresholds=ONE_STEPS),
        stat_panel("Features without a verdict", "Features whose current window holds "
                   "fewer samples than the drift exporter's --min-samples: no score and no "
                   "verdict until more traffic comes.",
                   [Target(f"count by (model_version) (max by (model_version, feature) "
                           f"({SAMPLES}{{{base}}}) unless on (model_version, feature) "
                           f"max by (model_version, feature) ({DETECTED}{{{base}}}))",
                           "{{model_version}}")], "none", w=6,
                   thresholds=((None, "green"), (1, GREY)), no_value="0"),
        timeline("Drift verdict per feature", "The drift exporter's verdict on each feature "
                 "against its baseline: drifted, stable, or too few samples in the window "
                 "for a verdict. With several versions selected, a feature is drifted when "
                 "it is in one of them. ModelMonFeatureDrift fires after 30 minutes drifted.",
                 [Target(_verdict(base, "feature"), "{{feature}}")], VERDICT_STATES, h=10),
        ts("Feature drift vs threshold (score / threshold)",
           "Each feature's score of its verdict method (normed Wasserstein for numbers, "
           "Jensen-Shannon for categories by default) over the threshold the exporter "
           "drew for the window's size: drifted above 1; ModelMonFeatureDriftCritical "
           f"fires at {DRIFT_CRITICAL_RATIO} for 2 hours. The feature dashboard draws "
           "the score and its threshold.",
           [Target(over, "{{feature}}")], "none", thresholds=OVER_STEPS, minv=0),
        gauge_bars("Top drifting features (score / threshold)",
                   "The ten features furthest above (or closest to) their drift threshold "
                   "now. Click a bar to open the feature.", [top], "none",
                   thresholds=OVER_STEPS,
                   links=[link("Feature ${__field.labels.feature}", FEATURE,
                               f"{_KEEP}&var-feature=${{__field.labels.feature}}")]),
        ts("Feature change vs previous window",
           "Verdict method's score between the last window and the one before, over its "
           "threshold (two live windows: a higher threshold than against the baseline). "
           "Above 1 the exporter finds a sudden change; ModelMonFeatureSuddenChange fires "
           "after 10 minutes.",
           [Target(_over_threshold(DRIFT, THRESHOLD, "feature", prev, "feature"),
                   "{{feature}}")], "none", thresholds=ONE_STEPS, minv=0, h=10),
        heat("Drift heatmap ($method vs baseline)",
             "One row per feature, one cell per evaluation; darker is further from "
             "the baseline (any method: the scores of methods other than a feature's "
             "verdict method have no threshold).",
             [Target(f'max by (feature) ({DRIFT}{{{SEL}, method="$method", '
                     f'reference="baseline"}})', "{{feature}}")], "short", w=12, h=10),
        timeline("Prediction drift verdict per output",
                 "The drift exporter's verdict on each model output (scores, values, the "
                 "predicted class) against training. A gap: no verdict (too few samples in "
                 "the window, or no baseline). ModelMonPredictionDrift fires after 30 "
                 "minutes drifted.",
                 [Target(f"max by (output) ({PDETECTED}{{{base}}})", "{{output}}")],
                 OUTPUT_STATES, w=12),
        ts("Prediction drift vs threshold (score / threshold)",
           "Each output's score of its verdict method against training, over its "
           "threshold: drifted above 1.",
           [Target(_over_threshold(PDRIFT, PTHRESHOLD, "output", base, "output"),
                   "{{output}}")], "none", thresholds=ONE_STEPS, minv=0),
    )
    cls = metric("modelmon_predicted_class_total")
    b.row(
        "Predictions",
        ts("Predicted class share vs baseline",
           "Share of each predicted class (solid) and its training share (dashed).",
           [Target(f"sum by (class) (rate({cls}{{{SEL}}}[{RI}])) / on () group_left () "
                   f"(sum(rate({cls}{{{SEL}}}[{RI}])) > 0)", "{{class}}"),
            Target(f"max by (class) ({metric('modelmon_baseline_class_ratio')}{{{SEL}}})",
                   "{{class}} (baseline)")], "percentunit", w=8, dashed=".*\\(baseline\\)",
           minv=0),
        gauge_bars("Output $output, live", "Share of the output's values per bucket over "
                   "the dashboard's time range.",
                   [Target(_live_cdf("modelmon_prediction_value", "output", "$output",
                                     "$__range"), "{{le}}", instant=True, fmt="heatmap")],
                   "percentunit", w=8),
        gauge_bars("Output $output, baseline", "Share of the training values per bucket "
                   "(same buckets).", [Target(_baseline_cdf("$output"), "{{le}}",
                                              instant=True, fmt="heatmap")],
                   "percentunit", w=8),
    )
    miss = metric("modelmon_feature_missing_total")
    oor = metric("modelmon_feature_out_of_range_total")
    cat = metric("modelmon_feature_category_total")
    fcount = metric("modelmon_feature_value_count")
    b.row(
        "Data quality",
        ts("Schema violations by reason", "Values that broke the baseline's schema, as a "
           "share of events (alert above 1% for a feature).",
           [Target(_per_event(f"sum by (reason) (rate("
                              f"{metric('modelmon_schema_violations_total')}{{{SEL}}}"
                              f"[{RI}]))"), "{{reason}}")], "percentunit",
           thresholds=RATIO_STEPS, minv=0),
        ts("Missing values per feature", "Share of events in which each feature had no "
           "usable value.",
           [Target(_per_event(f"sum by (feature) (rate({miss}{{{SEL}}}[{RI}]))"),
                   "{{feature}}")], "percentunit", minv=0),
        ts("Out of range per feature", "Share of each numeric feature's values outside the "
           "training [min, max] (alert above 5%).",
           [Target(f"sum by (feature) (rate({oor}{{{SEL}}}[{RI}])) / on (feature) "
                   f"(sum by (feature) (rate({fcount}{{{SEL}}}[{RI}])) > 0)", "{{feature}}")],
           "percentunit", thresholds=((None, "green"), (0.05, "red")), minv=0),
        ts("Unseen categories per feature", "Share of each categorical feature's values in "
           "categories the baseline does not know (__other__).",
           [Target(f'sum by (feature) (rate({cat}{{{SEL}, category="__other__"}}[{RI}])) '
                   f"/ on (feature) (sum by (feature) (rate({cat}{{{SEL}}}[{RI}])) > 0)",
                   "{{feature}}")], "percentunit", minv=0),
    )
    return b.build()


# =========================================================================================
def feature() -> dict[str, Any]:
    b = _model_vars(Board(FEATURE, "ModelMon / Feature",
                          "One feature of one model: its drift verdict and the verdict "
                          "method's score against its threshold, its live distribution next "
                          "to the baseline, every drift method against both references, "
                          "category shares, missing and out-of-range values.", ["feature"]))
    b.query_var("feature", "Feature",
                f'label_values({metric("modelmon_feature_missing_total")}{{model="$model"}}'
                ", feature)")
    b.alert_annotations(', model="$model", feature="$feature"')
    fs = f'{SEL}, feature="$feature"'
    drift_by = "max by (method) ({m}{{{fs}, reference=\"{r}\", method!~\".*_pvalue\"}})"
    base = f'{fs}, reference="baseline"'
    b.row(
        "Now",
        stat_panel("Verdict vs baseline", "The drift exporter's verdict against training: "
                   "drifted when the verdict method's score is above the threshold for the "
                   "window's size; too few samples below the exporter's --min-samples.",
                   [Target(_verdict(base, "reference"))], "none", states=VERDICT_STATES),
        stat_panel("Verdict vs previous window", "The verdict between the last window and "
                   "the one before (a sudden change).",
                   [Target(_verdict(f'{fs}, reference="previous"', "reference"))], "none",
                   states=VERDICT_STATES),
        stat_panel("Samples in the window", "Live values behind the current drift scores.",
                   [Target(f"max({metric('modelmon_drift_window_samples')}"
                           f'{{{fs}, reference="baseline"}})')], "none"),
        stat_panel("Training samples", "Non-missing training values behind the baseline.",
                   [Target(f"max({metric('modelmon_baseline_samples')}{{{fs}}})",
                           instant=True)], "none"),
        stat_panel("Missing now", "Share of events without a usable value.",
                   [Target(_per_event(f"sum(rate({metric('modelmon_feature_missing_total')}"
                                      f"{{{fs}}}[{RI}]))"))], "percentunit",
                   thresholds=RATIO_STEPS),
        stat_panel("Out of range now", "Share of the values outside the training [min, max].",
                   [Target(f"sum(rate({metric('modelmon_feature_out_of_range_total')}"
                           f"{{{fs}}}[{RI}])) / (sum(rate("
                           f"{metric('modelmon_feature_value_count')}{{{fs}}}[{RI}])) > 0)")],
                   "percentunit", thresholds=((None, "green"), (0.05, "red"))),
    )
    b.row(
        "Verdict",
        ts("Verdict method score vs threshold", "The score of the feature's verdict method "
           "(normed Wasserstein for numbers, Jensen-Shannon for categories by default) "
           "against both references, and the threshold the exporter drew for each "
           "(dashed): the larger of the method's effect-size floor and the score a window "
           "of this size exceeds by chance only at the feature's false-alarm level. Above "
           "its line, the feature is drifted. With several versions selected, the highest "
           "of each.",
           [Target(f"max by (method, reference) ({DRIFT}{{{fs}}} and on (model, "
                   f"model_version, feature, method, reference) {THRESHOLD}{{{fs}}})",
                   "{{method}} vs {{reference}}"),
            Target(f"max by (method, reference) ({THRESHOLD}{{{fs}}})",
                   "threshold vs {{reference}}")], "none", w=16, minv=0,
           dashed="threshold.*", colors=((".*baseline", "blue"), (".*previous", "purple"))),
        timeline("Drift verdict, both references", "The drift exporter's verdict over "
                 "time against training and against the previous window.",
                 [Target(_verdict(fs, "reference"), "vs {{reference}}")], VERDICT_STATES,
                 w=8),
    )
    b.row(
        "Distribution",
        gauge_bars("Live histogram", "Share of the live values per baseline bucket over the "
                   "dashboard's time range (numeric features).",
                   [Target(_live_cdf("modelmon_feature_value", "feature", "$feature",
                                     "$__range"), "{{le}}", instant=True, fmt="heatmap")],
                   "percentunit"),
        gauge_bars("Baseline histogram", "Share of the training values per bucket: the "
                   "buckets are the training quantiles, so the bars are about equal.",
                   [Target(_baseline_cdf("$feature"), "{{le}}", instant=True,
                           fmt="heatmap")], "percentunit"),
        heat("Distribution over time", "Live values per bucket per interval: a shift moves "
             "the dark band.",
             [Target(f"sum by (le) (increase({metric('modelmon_feature_value_bucket')}"
                     f"{{{fs}}}[{RI}]))", "{{le}}", fmt="heatmap")], "short", w=24),
        ts("Category shares vs baseline", "Share of each category (solid) and its training "
           "share (dashed); unknown categories are __other__ (categorical features).",
           [Target(f"sum by (category) (rate({metric('modelmon_feature_category_total')}"
                   f"{{{fs}}}[{RI}])) / on () group_left () (sum(rate("
                   f"{metric('modelmon_feature_category_total')}{{{fs}}}[{RI}])) > 0)",
                   "{{category}}"),
            Target(f"max by (category) ({metric('modelmon_baseline_category_ratio')}"
                   f"{{{fs}}})", "{{category}} (baseline)")], "percentunit", w=24,
           dashed=".*\\(baseline\\)", minv=0),
    )
    b.row(
        "Drift methods",
        ts("Drift vs baseline, every method", "Distances against training (PSI, "
           "Jensen-Shannon, Hellinger, KS statistic, normed Wasserstein).",
           [Target(drift_by.format(m=DRIFT, fs=fs, r="baseline"), "{{method}}")], "none",
           minv=0),
        ts("Drift vs previous window, every method", "The same distances between the last "
           "window and the one before.",
           [Target(drift_by.format(m=DRIFT, fs=fs, r="previous"), "{{method}}")], "none",
           minv=0),
        ts("p-values (KS, chi-squared)", "Small p-values mean the windows differ; at "
           "thousands of samples even a tiny change is significant, so judge the distances.",
           [Target(f'max by (method, reference) ({DRIFT}{{{fs}, method=~".*_pvalue"}})',
                   "{{method}} vs {{reference}}")], "none", log=True, w=24),
    )
    b.row(
        "Data quality",
        ts("Missing values", "Share of events without a usable value for this feature.",
           [Target(_per_event(f"sum(rate({metric('modelmon_feature_missing_total')}"
                              f"{{{fs}}}[{RI}]))"), "missing")], "percentunit", w=8, minv=0),
        ts("Out of range", "Share of values outside the training [min, max].",
           [Target(f"sum(rate({metric('modelmon_feature_out_of_range_total')}{{{fs}}}"
                   f"[{RI}])) / (sum(rate({metric('modelmon_feature_value_count')}"
                   f"{{{fs}}}[{RI}])) > 0)", "out of range")], "percentunit", w=8,
           thresholds=((None, "green"), (0.05, "red")), minv=0),
        ts("Schema violations", "Values of this feature that broke the schema, by reason, "
           "as a share of events.",
           [Target(_per_event(f"sum by (reason) (rate("
                              f"{metric('modelmon_schema_violations_total')}{{{fs}}}"
                              f"[{RI}]))"), "{{reason}}")], "percentunit", w=8, minv=0),
    )
    return b.build()


# =========================================================================================
def performance() -> dict[str, Any]:
    b = _model_vars(Board(PERFORMANCE, "ModelMon / Performance",
                          "Quality of the model once ground-truth labels arrive: accuracy, "
                          "precision, recall and F1 per class and segment, the confusion "
                          "matrix, regression errors, label delay, and the estimate made "
                          "before labels.", ["performance"]))
    b.query_var("segment", "Segment",
                f'label_values({{__name__=~"{CONFUSION}|'
                f'{metric("modelmon_prediction_error_count")}", model="$model"}}, segment)',
                default=SEGMENT_ALL)
    b.custom_var("window", "Window", ["1h", "6h", "1d", "7d"], "1h",
                 "Labelled predictions behind each point: quality over the last window.")
    b.alert_annotations(', model="$model"')
    seg = f'{SEL}, segment="$segment"'
    w = "$window"
    est = metric("modelmon_estimated_performance")
    b.row(
        "Classifier",
        ts("Accuracy (labels) vs training", "Share of labelled predictions that were right "
           "over the window (segment $segment), and the training accuracy (dashed). The "
           "critical alert fires 10 points below training.",
           [Target(_accuracy(seg, w), "{{model_version}}"),
            Target(_training_accuracy(SEL), "training {{model_version}}")],
           "percentunit", dashed="training.*", minv=0, maxv=1),
        ts("Estimated vs realized accuracy", "Accuracy expected from the live scores and "
           "the training calibration (available before labels; blind to concept drift) "
           "next to the accuracy of the labels.",
           [Target(f'max by (model_version) ({est}{{{SEL}, metric="accuracy"}})',
                   "estimated {{model_version}}"),
            Target(_accuracy(f'{SEL}, segment="{SEGMENT_ALL}"', w),
                   "realized {{model_version}}")], "percentunit", dashed="estimated.*",
           minv=0, maxv=1),
        ts("Accuracy by segment", "Accuracy over the window in every segment.",
           [Target(_accuracy(SEL, w), "{{segment}}")], "percentunit", minv=0, maxv=1),
        ts("F1 per class vs training", "F1 of each class over the window (segment "
           "$segment); dashed: training F1 of the score's positive and negative class.",
           [Target(_per_class("f1", seg, w), "{{class}}"),
            Target(_training_f1(SEL, True), "training, positive class"),
            Target(_training_f1(SEL, False), "training, negative class")], "percentunit",
           dashed="training.*", minv=0, maxv=1),
        ts("Precision and recall per class", "Precision (of the predictions of a class) "
           "and recall (of its actual cases) over the window, segment $segment.",
           [Target(_per_class("precision", seg, w), "precision {{class}}"),
            Target(_per_class("recall", seg, w), "recall {{class}}")], "percentunit",
           minv=0, maxv=1),
        tbl("Confusion matrix", "Labelled predictions over the window: rows are the actual "
            "class, columns the predicted one (segment $segment).",
            [Target(f"sum by (actual, predicted) (increase({CONFUSION}{{{seg}}}[{w}]))",
                    instant=True, fmt="table")], "short", w=12,
            transformations=[{"id": "groupingToMatrix", "options": {
                "rowField": "actual", "columnField": "predicted", "valueField": "Value",
                "emptyValue": "zero"}}]),
        ts("Estimated performance", "Every metric estimated from the live scores: "
           + ", ".join(ESTIMATED_METRICS) + ".",
           [Target(f"max by (model_version, metric) ({est}{{{SEL}}})",
                   "{{metric}} {{model_version}}")], "percentunit", minv=0, maxv=1),
    )
    err = "modelmon_prediction_error"
    cnt = f"sum by (model_version) (increase({metric(err + '_count')}{{{seg}}}[{w}]))"
    b.row(
        "Regression",
        ts("MAE and RMSE", "Mean absolute and root mean squared error of the labelled "
           "predictions over the window (segment $segment).",
           [Target(f"sum by (model_version) (increase("
                   f"{metric('modelmon_prediction_absolute_error_total')}{{{seg}}}[{w}])) "
                   f"/ ({cnt} > 0)", "MAE {{model_version}}"),
            Target(f"sqrt(sum by (model_version) (increase("
                   f"{metric('modelmon_prediction_squared_error_total')}{{{seg}}}[{w}])) "
                   f"/ ({cnt} > 0))", "RMSE {{model_version}}")], "short"),
        heat("Error distribution", "Prediction minus actual of labelled predictions, per "
             "bucket and interval.",
             [Target(f"sum by (le) (increase({metric(err + '_bucket')}{{{seg}}}[{RI}]))",
                     "{{le}}", fmt="heatmap")], "short"),
    )
    delay = metric("modelmon_label_delay_seconds_bucket")
    lab = metric("modelmon_labels_total")
    unm = metric("modelmon_labels_unmatched_total")
    b.row(
        "Labels",
        ts("Labels per hour", "Ground-truth labels joined to predictions (the alert fires "
           "when none arrive for 6 hours after a day with labels).",
           [Target(f"3600 * sum by (model_version) (rate({lab}{{{SEL}}}[{RI}]))",
                   "{{model_version}}")], "short", w=8, minv=0),
        ts("Label delay (p50/p90)", "Time from a prediction to its label.",
           [Target(f"histogram_quantile(0.5, sum by (le) (rate({delay}{{{SEL}}}[{RI}])))",
                   "p50"),
            Target(f"histogram_quantile(0.9, sum by (le) (rate({delay}{{{SEL}}}[{RI}])))",
                   "p90")], "s", w=8),
        ts("Unmatched labels", "Share of posted labels whose id matched no remembered "
           "prediction (alert above 10%).",
           [Target(f"sum(rate({unm}{{{SEL}}}[{RI}])) / ((sum(rate({lab}{{{SEL}}}[{RI}])) "
                   f"+ sum(rate({unm}{{{SEL}}}[{RI}]))) > 0)", "unmatched")], "percentunit",
           w=8, thresholds=((None, "green"), (0.1, "red")), minv=0),
        ts("Expired predictions", "Remembered predictions dropped before their label came, "
           "by reason (ttl, cap).",
           [Target(f"sum by (reason) (rate({metric('modelmon_predictions_expired_total')}"
                   f"{{{SEL}}}[{RI}]))", "{{reason}}")], "reqps", w=12, minv=0),
        ts("Concept drift detections", "Changes found in the error stream of labelled "
           "predictions (bars) and each detector's statistic (line).",
           [Target(f"sum by (detector) (increase("
                   f"{metric('modelmon_concept_drift_detections_total')}{{{SEL}}}[{RI}]))",
                   "detections {{detector}}"),
            Target(f"max by (detector) ({metric('modelmon_concept_drift_statistic')}"
                   f"{{{SEL}}})", "statistic {{detector}}")], "short", w=12),
    )
    return b.build()


# =========================================================================================
def exporter() -> dict[str, Any]:
    b = _model_vars(Board(EXPORTER, "ModelMon / Drift exporter",
                          "The monitoring itself: the drift exporter's evaluations and "
                          "sources, and the sidecars' requests.", ["exporter"]))
    jobs = (f'{{__name__=~"{metric("modelmon_drift_evaluations_total")}|'
            f'{metric("modelmon_sidecar_ready")}"}}')
    b.query_var("job", "Job", f"label_values({jobs}, job)", multi=True, all_value=".*")
    b.query_var("instance", "Instance",
                f'label_values({jobs[:-1]}, job=~"$job"}}, instance)', multi=True,
                all_value=".*")
    ji = 'job=~"$job", instance=~"$instance"'
    ev = metric("modelmon_drift_evaluations_total")
    dur = metric("modelmon_drift_evaluation_duration_seconds_bucket")
    b.row(
        "Drift exporter",
        stat_panel("Exporter up", "1 while Prometheus can scrape the drift exporter.",
                   [Target(f"max by (instance) (up{{{ji}}}) and on (instance) "
                           f"max by (instance) ({ev}{{{ji}}})", "{{instance}}",
                           instant=True)], "none", w=6,
                   thresholds=((None, "red"), (1, "green"))),
        stat_panel("Seconds since last successful evaluation", "The stale alert fires "
                   "above 600 s.",
                   [Target(f"time() - max by (instance) ("
                           f"{metric('modelmon_drift_last_success_timestamp_seconds')}"
                           f"{{{ji}}})", "{{instance}}")], "s", w=6,
                   thresholds=((None, "green"), (300, "orange"), (600, "red"))),
        stat_panel("Source up", "Each store or scraped URL the exporter reads (0: failing).",
                   [Target(f"min by (source) ({metric('modelmon_drift_source_up')}{{{ji}}})",
                           "{{source}}", instant=True)], "none", w=6,
                   thresholds=((None, "red"), (1, "green"))),
        stat_panel("Scored features", "Drift scores the exporter exports for the selected "
                   "model, per reference.",
                   [Target(f'count by (reference) ({DRIFT}{{{SEL}, method="psi"}})',
                           "{{reference}}", instant=True)], "none", w=6),
        ts("Evaluations per second", "Drift evaluations run.",
           [Target(f"sum by (instance) (rate({ev}{{{ji}}}[{RI}]))", "{{instance}}")],
           "ops", w=8, minv=0),
        ts("Evaluation duration (p50/p99)", "Time per drift evaluation (queries and "
           "statistics).",
           [Target(f"histogram_quantile(0.5, sum by (instance, le) (rate({dur}{{{ji}}}"
                   f"[{RI}])))", "p50 {{instance}}"),
            Target(f"histogram_quantile(0.99, sum by (instance, le) (rate({dur}{{{ji}}}"
                   f"[{RI}])))", "p99 {{instance}}")], "s", w=8),
        ts("Query errors by reason", "Failed reads of a source, by reason.",
           [Target(f"sum by (reason) (rate({metric('modelmon_drift_query_errors_total')}"
                   f"{{{ji}}}[{RI}]))", "{{reason}}")], "ops", w=8, minv=0),
        ts("Skipped series by reason", "Series left unscored, by reason (a baseline "
           "missing or not matching, incomplete histograms).",
           [Target(f"sum by (reason) (rate({metric('modelmon_drift_skipped_total')}"
                   f"{{{ji}}}[{RI}]))", "{{reason}}")], "ops", w=12, minv=0),
        ts("Drift window samples", "Samples behind the drift comparisons of the selected "
           "model, per feature (current window).",
           [Target(f"max by (feature) ({metric('modelmon_drift_window_samples')}"
                   f'{{{SEL}, reference="baseline"}})', "{{feature}}")], "none", w=12,
           minv=0),
    )
    req = metric("modelmon_sidecar_requests_total")
    rdur = metric("modelmon_sidecar_request_duration_seconds_bucket")
    b.row(
        "Sidecars",
        ts("Sidecar requests by endpoint and code", "HTTP requests answered by the "
           "sidecars.",
           [Target(f"sum by (endpoint, code) (rate({req}{{{ji}}}[{RI}]))",
                   "{{endpoint}} {{code}}")], "reqps", w=8, minv=0),
        ts("Sidecar request latency (p99)", "99th percentile of the request time per "
           "endpoint.",
           [Target(f"histogram_quantile(0.99, sum by (endpoint, le) (rate({rdur}{{{ji}}}"
                   f"[{RI}])))", "{{endpoint}}")], "s", w=8),
        ts("Sidecars ready", "1 while a sidecar accepts traffic, 0 while it shuts down.",
           [Target(f"max by (instance) ({metric('modelmon_sidecar_ready')}{{{ji}}})",
                   "{{instance}}")], "none", w=8, minv=0, maxv=1),
    )
    return b.build()


#: File name (under dashboards/) -> builder.
DASHBOARDS = {
    "modelmon-fleet.json": fleet,
    "modelmon-model.json": model,
    "modelmon-feature.json": feature,
    "modelmon-performance.json": performance,
    "modelmon-exporter.json": exporter,
}


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as a JSON-ready dict, by file name."""
    import warnings

    with warnings.catch_warnings():
        # The v1 dashboard model is what Grafana 10 and 11 import; the SDK nudges
        # towards the v2 schema of Grafana 12.
        warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
        return {name: fn() for name, fn in DASHBOARDS.items()}
