"""MonitorCollector: renders a Monitor's count arrays as fresh families at scrape time."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalogue as cat
from ..baseline import Baseline, NumericSummary
from ..catalogue import CALIBRATION_QUANTITIES, LABEL_DELAY_BUCKETS, LATENCY_BUCKETS, le_labels
from .outcomes import OutcomeView
from .truth import TruthView
from .view import MonitorView

__all__ = ["MonitorCollector"]

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
        bucket_ratio: list[tuple[list[str], float]] = []
        category_ratio: list[tuple[list[str], float]] = []
        class_ratio: list[tuple[list[str], float]] = []
        samples: list[tuple[list[str], float]] = []
        calibration: list[tuple[list[str], float]] = []
        for m, b in baselines.items():
            v = b.model_version
            for name, s in {**b.numeric_features, **b.numeric_outputs}.items():
                self._les[(m, name)] = le_labels(s.edges)
                for le, r in zip(self._les[(m, name)], _cumulative_ratios(s)):
                    bucket_ratio.append(([m, v, name, le], r))
                samples.append(([m, v, name], float(s.samples)))
            pred = b.prediction
            if pred is not None and not isinstance(pred, NumericSummary):
                for label, r in zip(pred.labels, pred.ratios.tolist()):
                    class_ratio.append(([m, v, label], r))
            for name, cs in b.categorical_features.items():
                for label, r in zip(cs.labels, cs.ratios.tolist()):
                    category_ratio.append(([m, v, name, label], r))
                samples.append(([m, v, name], float(cs.samples)))
            cal = b.calibration
            if cal is not None and (m, cal.score) in self._les:
                for quantity in CALIBRATION_QUANTITIES:
                    for le, n in zip(self._les[(m, cal.score)], getattr(cal, quantity)):
                        calibration.append(
                            ([m, v, cal.score, le, quantity], float(n)))
        self._baseline_rows: list[tuple[cat.MetricSpec[Any], list[tuple[list[str], float]]]] = [
            (cat.BASELINE_BUCKET_RATIO, bucket_ratio), (cat.BASELINE_CATEGORY_RATIO, category_ratio),
            (cat.BASELINE_CLASS_RATIO, class_ratio), (cat.BASELINE_SAMPLES, samples),
            (cat.BASELINE_CALIBRATION, calibration)]

    def describe(self) -> Iterator[Metric]:
        # Registering must not fold or read counts; an empty describe makes the
        # registry call collect() only at scrape time.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        view = self.read()
        info = cat.MODEL_INFO.family()
        preds = cat.PREDICTIONS.family()
        fv = cat.FEATURE_VALUE.family()
        fcat = cat.FEATURE_CATEGORY.family()
        miss = cat.FEATURE_MISSING.family()
        oor = cat.FEATURE_OUT_OF_RANGE.family()
        viol = cat.SCHEMA_VIOLATIONS.family()
        pv = cat.PREDICTION_VALUE.family()
        pcls = cat.PREDICTED_CLASS.family()
        lat = cat.INFERENCE_LATENCY_SECONDS.family()
        truth = _TruthFamilies()
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
                    fcat.add_metric([model, v, name, label], float(n))
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
                truth.add(model, v, mv.truth)
        baseline: list[Metric] = []
        for spec, rows in self._baseline_rows:
            family = spec.family()
            for label_values, value in rows:
                family.add_metric(label_values, value)
            baseline.append(family)
        families: list[Metric] = [info, preds, fv, fcat, miss, oor, viol, pv, pcls, lat,
                                  *baseline, *truth.families()]
        yield from (f for f in families if f.samples)


class _TruthFamilies:
    """The ground-truth families of one scrape."""

    def __init__(self) -> None:
        self.labels = cat.LABELS.family()
        self.unmatched = cat.LABELS_UNMATCHED.family()
        self.expired = cat.PREDICTIONS_EXPIRED.family()
        self.delay = cat.LABEL_DELAY_SECONDS.family()
        self.confusion = cat.CONFUSION.family()
        self.score = cat.LABELED_SCORE.family()
        self.error = cat.PREDICTION_ERROR.family()
        self.abs_error = cat.PREDICTION_ABSOLUTE_ERROR.family()
        self.sq_error = cat.PREDICTION_SQUARED_ERROR.family()
        self.detections = cat.CONCEPT_DRIFT_DETECTIONS.family()
        self.statistic = cat.CONCEPT_DRIFT_STATISTIC.family()

    def families(self) -> list[Metric]:
        return [self.labels, self.unmatched, self.expired, self.delay, self.confusion,
                self.score, self.error, self.abs_error, self.sq_error, self.detections,
                self.statistic]

    def add(self, model: str, version: str, t: TruthView) -> None:
        self.unmatched.add_metric([model, version], float(t.unmatched))
        for (v, reason), n in t.expired.items():
            self.expired.add_metric([model, v, reason], float(n))
        for v, ls in t.versions:
            self._version([model, v], ls)

    def _version(self, mv: list[str], ls: OutcomeView) -> None:
        self.labels.add_metric(mv, float(ls.labels))
        self.delay.add(mv, _DELAY_LES, np.cumsum(ls.delay_counts).tolist(), ls.delay_sum)
        segs = ls.segment_labels
        if ls.classifier:
            for si, seg in enumerate(segs):
                for ai, actual in enumerate(ls.classes):
                    for pi, predicted in enumerate(ls.classes):
                        self.confusion.add_metric(mv + [seg, actual, predicted],
                                                  float(ls.confusion[si, ai, pi]))
            if ls.score_name is not None:
                les = le_labels(ls.score_edges)
                for si, seg in enumerate(segs):
                    for ai, actual in enumerate(ls.classes):
                        self.score.add(mv + [seg, actual], les,
                                       np.cumsum(ls.score_counts[si, ai]).tolist(),
                                       float(ls.score_sums[si, ai]))
        elif ls.error_edges.size:
            les = le_labels(ls.error_edges)
            for si, seg in enumerate(segs):
                self.error.add(mv + [seg], les, np.cumsum(ls.error_counts[si]).tolist(),
                               float(ls.error_sum[si]))
                self.abs_error.add_metric(mv + [seg], float(ls.abs_error[si]))
                self.sq_error.add_metric(mv + [seg], float(ls.sq_error[si]))
        for name, n, stat in ls.detections:
            self.detections.add_metric(mv + [name], float(n))
            self.statistic.add_metric(mv + [name], stat if math.isfinite(stat) else 0.0)


_DELAY_LES = le_labels(LABEL_DELAY_BUCKETS)
