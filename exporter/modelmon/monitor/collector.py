"""MonitorCollector: renders a Monitor's count arrays as fresh families at scrape time."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..baseline import Baseline, NumericSummary
from ..catalogue import (
    CALIBRATION_QUANTITIES,
    LABEL_DELAY_BUCKETS,
    LATENCY_BUCKETS,
    HistogramFamily,
    by_name,
)

from .outcomes import OutcomeView
from .view import MonitorView

__all__ = ["MonitorCollector", "le_labels"]


def le_labels(edges: "np.ndarray | tuple[float, ...]") -> list[str]:
    """The ``le`` strings of a histogram with these finite bounds, ``+Inf`` last.

    >>> le_labels((-1.0, 0.5, 1200000.0))
    ['-1.0', '0.5', '1.2e+06', '+Inf']
    """
    return [floatToGoString(float(e)) for e in edges] + ["+Inf"]


_LATENCY_LES = le_labels(LATENCY_BUCKETS)


def _cumulative_ratios(s: NumericSummary) -> list[float]:
    c = np.cumsum(np.asarray(s.counts, dtype=np.float64))
    return (c / c[-1]).tolist() if c[-1] else [0.0] * c.size


class MonitorCollector(Collector):
    """Builds every ``modelmon_*`` family of a Monitor on each scrape.

    Parameters
    ----------
    baselines : mapping of model name to Baseline
        The monitored models (their buckets, categories and baseline gauges).
    read : callable
        Returns the counts to render, as one immutable :class:`MonitorView`
        (``Monitor.view``: buffered events are folded first, so a scrape shows
        exactly what was observed before it started).
    """

    def __init__(self, baselines: Mapping[str, Baseline],
                 read: Callable[[], MonitorView]) -> None:
        self.read = read
        # Label strings never change for a baseline: compute them once.
        self._les: dict[tuple[str, str], list[str]] = {}
        # The baseline gauges are constant: build their (labels, value) rows once,
        # not on every scrape.
        self._baseline_rows: dict[str, list[tuple[list[str], float]]] = {
            "modelmon_baseline_bucket_ratio": [], "modelmon_baseline_category_ratio": [],
            "modelmon_baseline_class_ratio": [], "modelmon_baseline_samples": [],
            "modelmon_baseline_calibration": []}
        rows = self._baseline_rows
        for m, b in baselines.items():
            v = b.model_version
            for name, s in {**b.numeric_features, **b.numeric_outputs}.items():
                self._les[(m, name)] = le_labels(s.edges)
                for le, r in zip(self._les[(m, name)], _cumulative_ratios(s)):
                    rows["modelmon_baseline_bucket_ratio"].append(([m, v, name, le], r))
                rows["modelmon_baseline_samples"].append(([m, v, name], float(s.samples)))
            pred = b.prediction
            if pred is not None and not isinstance(pred, NumericSummary):
                for label, r in zip(pred.labels, pred.ratios.tolist()):
                    rows["modelmon_baseline_class_ratio"].append(([m, v, label], r))
            for name, cs in b.categorical_features.items():
                for label, r in zip(cs.labels, cs.ratios.tolist()):
                    rows["modelmon_baseline_category_ratio"].append(([m, v, name, label], r))
                rows["modelmon_baseline_samples"].append(([m, v, name], float(cs.samples)))
            cal = b.calibration
            if cal is not None and (m, cal.score) in self._les:
                for quantity in CALIBRATION_QUANTITIES:
                    for le, n in zip(self._les[(m, cal.score)], getattr(cal, quantity)):
                        rows["modelmon_baseline_calibration"].append(
                            ([m, v, cal.score, le, quantity], float(n)))

    def describe(self) -> Iterator[Metric]:
        # Registering must not fold or read counts; an empty describe makes the
        # registry call collect() only at scrape time.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        view = self.read()
        fam = {spec.name: spec.family() for spec in _SPECS}
        info = fam["modelmon_model_info"]
        preds = fam["modelmon_predictions_total"]
        fv: HistogramFamily = fam["modelmon_feature_value"]  # type: ignore[assignment]
        cat = fam["modelmon_feature_category_total"]
        miss = fam["modelmon_feature_missing_total"]
        oor = fam["modelmon_feature_out_of_range_total"]
        viol = fam["modelmon_schema_violations_total"]
        pv: HistogramFamily = fam["modelmon_prediction_value"]  # type: ignore[assignment]
        pcls = fam["modelmon_predicted_class_total"]
        lat: HistogramFamily = fam["modelmon_inference_latency_seconds"]  # type: ignore[assignment]
        for mv in view.models:
            b = mv.baseline
            model, v = b.model, b.model_version
            c = mv.counts
            info.add_metric([], {"model": model, "model_version": v, "baseline_id": b.id})
            preds.add_metric([model, v], float(c.predictions))
            for name, (counts, total, out_of_range) in c.numeric.items():
                fv.add([model, v, name], self._les[(model, name)], counts.tolist(), total)
                oor.add_metric([model, v, name], float(out_of_range))
            for name, (labels, counts) in c.categorical.items():
                for label, n in zip(labels, counts.tolist()):
                    cat.add_metric([model, v, name, label], float(n))
            for name, n in c.missing.items():
                miss.add_metric([model, v, name], float(n))
            for (feature, reason), n in c.violations.items():
                viol.add_metric([model, v, feature, reason], float(n))
            for name, (counts, total) in c.outputs.items():
                pv.add([model, v, name], self._les[(model, name)], counts.tolist(), total)
            if c.classes is not None:
                for label, n in zip(c.classes[0], c.classes[1].tolist()):
                    pcls.add_metric([model, v, label], float(n))
            lat.add([model, v], _LATENCY_LES, c.latency[0].tolist(), c.latency[1])
            if mv.truth is not None:
                t = mv.truth
                fam["modelmon_labels_unmatched_total"].add_metric([model, v], float(t.unmatched))
                for (version, reason), n in t.expired.items():
                    fam["modelmon_predictions_expired_total"].add_metric([model, version, reason],
                                                                         float(n))
                for version, ls in t.versions:
                    _labels(fam, [model, version], ls)
        for name, rows in self._baseline_rows.items():
            family = fam[name]
            for labels, value in rows:
                family.add_metric(labels, value)
        yield from (f for f in fam.values() if f.samples)


def _labels(fam: dict[str, Metric], mv: list[str], ls: OutcomeView) -> None:
    """The ground-truth families of one model version."""
    fam["modelmon_labels_total"].add_metric(mv, float(ls.labels))
    delay: HistogramFamily = fam["modelmon_label_delay_seconds"]  # type: ignore[assignment]
    delay.add(mv, _DELAY_LES, np.cumsum(ls.delay_counts).tolist(), ls.delay_sum)
    segs = ls.segment_labels
    if ls.classifier:
        conf = fam["modelmon_confusion_total"]
        for si, seg in enumerate(segs):
            for ai, actual in enumerate(ls.classes):
                for pi, predicted in enumerate(ls.classes):
                    conf.add_metric(mv + [seg, actual, predicted],
                                    float(ls.confusion[si, ai, pi]))
        if ls.score_name is not None:
            les = le_labels(ls.score_edges)
            hist: HistogramFamily = fam["modelmon_labeled_score"]  # type: ignore[assignment]
            for si, seg in enumerate(segs):
                for ai, actual in enumerate(ls.classes):
                    hist.add(mv + [seg, actual], les,
                             np.cumsum(ls.score_counts[si, ai]).tolist(),
                             float(ls.score_sums[si, ai]))
    elif ls.error_edges.size:
        les = le_labels(ls.error_edges)
        err: HistogramFamily = fam["modelmon_prediction_error"]  # type: ignore[assignment]
        for si, seg in enumerate(segs):
            err.add(mv + [seg], les, np.cumsum(ls.error_counts[si]).tolist(),
                    float(ls.error_sum[si]))
            fam["modelmon_prediction_absolute_error_total"].add_metric(
                mv + [seg], float(ls.abs_error[si]))
            fam["modelmon_prediction_squared_error_total"].add_metric(
                mv + [seg], float(ls.sq_error[si]))
    for name, n, stat in ls.detections:
        fam["modelmon_concept_drift_detections_total"].add_metric(mv + [name], float(n))
        fam["modelmon_concept_drift_statistic"].add_metric(
            mv + [name], stat if math.isfinite(stat) else 0.0)  # nothing checked yet


_DELAY_LES = le_labels(LABEL_DELAY_BUCKETS)
_LABEL_NAMES = (
    "modelmon_labels_total",
    "modelmon_labels_unmatched_total",
    "modelmon_predictions_expired_total",
    "modelmon_label_delay_seconds",
    "modelmon_confusion_total",
    "modelmon_labeled_score",
    "modelmon_prediction_error",
    "modelmon_prediction_absolute_error_total",
    "modelmon_prediction_squared_error_total",
    "modelmon_concept_drift_detections_total",
    "modelmon_concept_drift_statistic",
)
_SPECS = [by_name(n) for n in (
    "modelmon_model_info",
    "modelmon_predictions_total",
    "modelmon_feature_value",
    "modelmon_feature_category_total",
    "modelmon_feature_missing_total",
    "modelmon_feature_out_of_range_total",
    "modelmon_schema_violations_total",
    "modelmon_prediction_value",
    "modelmon_predicted_class_total",
    "modelmon_inference_latency_seconds",
    "modelmon_baseline_bucket_ratio",
    "modelmon_baseline_category_ratio",
    "modelmon_baseline_class_ratio",
    "modelmon_baseline_samples",
    "modelmon_baseline_calibration",
) + _LABEL_NAMES]
