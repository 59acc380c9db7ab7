"""MonitorCollector: renders a Monitor's count arrays as fresh families at scrape time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..baseline import NumericSummary
from ..catalogue import (
    CALIBRATION_QUANTITIES,
    LABEL_DELAY_BUCKETS,
    LATENCY_BUCKETS,
    HistogramFamily,
    by_name,
)

if TYPE_CHECKING:
    from .core import ModelState, Monitor

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

    Buffered events are folded first, so a scrape shows exactly what was
    observed before it started.
    """

    def __init__(self, monitor: "Monitor") -> None:
        self.monitor = monitor
        # Label strings never change for a baseline: compute them once.
        self._les: dict[tuple[str, str], list[str]] = {}
        # The baseline gauges are constant: build their (labels, value) rows once,
        # not on every scrape.
        self._baseline_rows: dict[str, list[tuple[list[str], float]]] = {
            "modelmon_baseline_bucket_ratio": [], "modelmon_baseline_category_ratio": [],
            "modelmon_baseline_class_ratio": [], "modelmon_baseline_samples": [],
            "modelmon_baseline_calibration": []}
        rows = self._baseline_rows
        for m, st in monitor._models.items():
            v, b = st.version, st.baseline
            for name, num in {**st.numeric, **st.outputs}.items():
                self._les[(m, name)] = le_labels(num.edges)
            for name, s in {**b.numeric_features, **b.numeric_outputs}.items():
                for le, r in zip(self._les[(m, name)], _cumulative_ratios(s)):
                    rows["modelmon_baseline_bucket_ratio"].append(([m, v, name, le], r))
                rows["modelmon_baseline_samples"].append(([m, v, name], float(s.samples)))
            if st.classes is not None and b.prediction is not None:
                for label, r in zip(st.classes.labels, b.prediction.ratios.tolist()):
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
        mon = self.monitor
        mon.flush()
        mon._drain_expired()
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
        for model, st in mon._models.items():
            v = st.version
            b = st.baseline
            with st.lock:
                info.add_metric([], {"model": model, "model_version": v, "baseline_id": b.id})
                preds.add_metric([model, v], float(st.predictions))
                for name, num in st.numeric.items():
                    fv.add([model, v, name], self._les[(model, name)],
                           np.cumsum(num.counts).tolist(), num.sum)
                    oor.add_metric([model, v, name], float(num.out_of_range))
                for name, c in st.categorical.items():
                    for label, n in zip(c.labels, c.counts.tolist()):
                        cat.add_metric([model, v, name, label], float(n))
                for name in st.feature_names:
                    miss.add_metric([model, v, name], float(st.missing[name]))
                for (feature, reason), n in st.violations.items():
                    viol.add_metric([model, v, feature, reason], float(n))
                for name, out in st.outputs.items():
                    pv.add([model, v, name], self._les[(model, name)],
                           np.cumsum(out.counts).tolist(), out.sum)
                if st.classes is not None:
                    for label, n in zip(st.classes.labels, st.classes.counts.tolist()):
                        pcls.add_metric([model, v, label], float(n))
                lat.add([model, v], _LATENCY_LES, np.cumsum(st.latency).tolist(), st.latency_sum)
                if b.prediction is not None and st.labelled:
                    st.label_state(v, mon._detectors)  # the current version's series from 0
                    self._labels(fam, model, st)
        for name, rows in self._baseline_rows.items():
            family = fam[name]
            for labels, value in rows:
                family.add_metric(labels, value)
        yield from (f for f in fam.values() if f.samples)


    def _labels(self, fam: dict[str, Metric], model: str, st: "ModelState") -> None:
        """The ground-truth families of one model (call with its lock held)."""
        add = {name: fam[name] for name in _LABEL_NAMES}
        add["modelmon_labels_unmatched_total"].add_metric([model, st.version],
                                                            float(st.unmatched))
        for (version, reason), n in st.expired.items():
            add["modelmon_predictions_expired_total"].add_metric([model, version, reason],
                                                                 float(n))
        for v, ls in st.label_states.items():
            mv = [model, v]
            add["modelmon_labels_total"].add_metric(mv, float(ls.labels))
            delay: HistogramFamily = add["modelmon_label_delay_seconds"]  # type: ignore[assignment]
            delay.add(mv, _DELAY_LES, np.cumsum(ls.delay_counts).tolist(), ls.delay_sum)
            segs = ls.segment_labels
            if ls.classifier:
                conf = add["modelmon_confusion_total"]
                for si, seg in enumerate(segs):
                    for ai, actual in enumerate(ls.classes):
                        for pi, predicted in enumerate(ls.classes):
                            conf.add_metric(mv + [seg, actual, predicted],
                                            float(ls.confusion[si, ai, pi]))
                if ls.score_name is not None:
                    les = le_labels(ls.score_edges)
                    hist: HistogramFamily = add["modelmon_labeled_score"]  # type: ignore[assignment]
                    for si, seg in enumerate(segs):
                        for ai, actual in enumerate(ls.classes):
                            hist.add(mv + [seg, actual], les,
                                     np.cumsum(ls.score_counts[si, ai]).tolist(),
                                     float(ls.score_sums[si, ai]))
            elif ls.error_edges.size:
                les = le_labels(ls.error_edges)
                err: HistogramFamily = add["modelmon_prediction_error"]  # type: ignore[assignment]
                for si, seg in enumerate(segs):
                    err.add(mv + [seg], les, np.cumsum(ls.error_counts[si]).tolist(),
                            float(ls.error_sum[si]))
                    add["modelmon_prediction_absolute_error_total"].add_metric(
                        mv + [seg], float(ls.abs_error[si]))
                    add["modelmon_prediction_squared_error_total"].add_metric(
                        mv + [seg], float(ls.sq_error[si]))
            for name, n in ls.detections.items():
                add["modelmon_concept_drift_detections_total"].add_metric(mv + [name], float(n))
                stat = float(getattr(ls.detectors[name], "statistic", 0.0))
                add["modelmon_concept_drift_statistic"].add_metric(
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
