"""DriftCollector: renders the latest :class:`DriftResults` as fresh families per scrape."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, cast

import numpy as np
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..catalogue import (
    DRIFT_METHODS,
    DRIFT_QUERY_ERROR_REASONS,
    DRIFT_SKIP_REASONS,
    HistogramFamily,
    by_name,
)
from .evaluate import DriftResults, ScoreSet

__all__ = ["DriftCollector", "DURATION_BUCKETS", "DURATION_LES", "score_exposition"]

#: Buckets of ``modelmon_drift_evaluation_duration_seconds``.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
DURATION_LES: tuple[str, ...] = tuple(floatToGoString(b) for b in DURATION_BUCKETS) + ("+Inf",)

_SCORE = by_name("modelmon_drift_score")
_PRED_SCORE = by_name("modelmon_prediction_drift_score")
_SAMPLES = by_name("modelmon_drift_window_samples")
_DETECTED = by_name("modelmon_drift_detected")
_PRED_DETECTED = by_name("modelmon_prediction_drift_detected")
_THRESHOLD = by_name("modelmon_drift_threshold")
_PRED_THRESHOLD = by_name("modelmon_prediction_drift_threshold")
_SHARE = by_name("modelmon_drift_share")
_DRIFTED = by_name("modelmon_drift_features_drifted")
_EVAL_TS = by_name("modelmon_drift_evaluation_timestamp_seconds")
_SUCCESS_TS = by_name("modelmon_drift_last_success_timestamp_seconds")
_DURATION = by_name("modelmon_drift_evaluation_duration_seconds")
_EVALS = by_name("modelmon_drift_evaluations_total")
_UP = by_name("modelmon_drift_source_up")
_SKIPPED = by_name("modelmon_drift_skipped_total")
_QUERY_ERRORS = by_name("modelmon_drift_query_errors_total")
_ESTIMATED = by_name("modelmon_estimated_performance")


class DriftCollector(Collector):
    """Builds every ``modelmon_drift_*`` family from one results object per scrape.

    ``results`` is called once per collect (e.g. ``lambda: service.latest``);
    since results are immutable and swapped whole, a scrape never mixes two
    evaluations. Before the first evaluation only the evaluation counter (0)
    and the empty duration histogram are exposed.
    """

    def __init__(self, results: Callable[[], DriftResults | None]) -> None:
        self._results = results
        self._local = threading.local()

    def describe(self) -> Iterator[Metric]:
        # Registering must not trigger an evaluation; collect() runs at scrape time only.
        return iter(())

    @contextmanager
    def split(self, res: DriftResults | None) -> Iterator[None]:
        """In this thread, collect ``res`` without the score and sample gauges.

        The HTTP handler renders those from :func:`score_exposition` (made once
        per evaluation) and the rest through the registry; both from the one
        ``res``, so a scrape still never mixes two evaluations.
        """
        self._local.res = res
        try:
            yield
        finally:
            del self._local.res

    def collect(self) -> Iterator[Metric]:
        split = hasattr(self._local, "res")
        res = self._local.res if split else self._results()
        evals = cast(CounterMetricFamily, _EVALS.family())
        duration = _DURATION.family()
        assert isinstance(duration, HistogramFamily)
        if res is None:
            evals.add_metric([], 0.0)
            duration.add([], DURATION_LES, [0.0] * len(DURATION_LES), 0.0)
            yield evals
            yield duration
            yield from _reason_families(None)
            return
        row_fams = {e.name: cast(GaugeMetricFamily, e.family()) for e in _ROW_FAMILIES}
        if not split:
            _render_scores(res, row_fams)
        up = cast(GaugeMetricFamily, _UP.family())
        for source, ok in res.sources_up.items():
            up.add_metric([source], 1.0 if ok else 0.0)
        ts = cast(GaugeMetricFamily, _EVAL_TS.family())
        ts.add_metric([], res.timestamp)
        evals.add_metric([], float(res.evaluations))
        duration.add([], res.duration_les, res.duration_cumulative, res.duration_sum)
        fams: list[Metric] = [*row_fams.values(), up, ts]
        if res.estimates:
            est = cast(GaugeMetricFamily, _ESTIMATED.family())
            for (m, v), values in sorted(res.estimates.items()):
                for metric, x in values.items():
                    if x == x:  # an undefined ratio (NaN) is left out
                        est.add_metric([m, v, metric], x)
            fams.append(est)
        if res.last_success_timestamp is not None:
            ok_ts = cast(GaugeMetricFamily, _SUCCESS_TS.family())
            ok_ts.add_metric([], res.last_success_timestamp)
            fams.append(ok_ts)
        fams += [duration, evals]
        yield from (f for f in fams if f.samples)
        yield from _reason_families(res)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def score_exposition(res: DriftResults | None, openmetrics: bool = False) -> bytes:
    """The score and sample gauges of ``res`` as exposition text, rendered once per evaluation.

    The same lines prometheus_client writes for the families of
    :class:`DriftCollector` (a test holds them equal), at a fraction of the
    cost: at 10,000 pairs that is 150,000 lines a scrape. The ``# HELP`` and
    ``# TYPE`` lines come from prometheus_client's own encoder of the format.
    """
    if res is None:
        return b""
    return res.scored.memo(("exposition", openmetrics), lambda: _exposition(res, openmetrics))


def _header(entry: Any, openmetrics: bool) -> str:
    fam = entry.family()
    fam.add_metric(["x"] * len(entry.labels), 0.0)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed([fam]))
    text = (openmetrics_latest(reg) if openmetrics else generate_latest(reg)).decode()
    return "".join(line + "\n" for line in text.splitlines() if line.startswith("# HELP")
                   or line.startswith("# TYPE") or line.startswith("# UNIT"))


class _Fixed(Collector):
    def __init__(self, fams: list[Metric]) -> None:
        self._fams = fams

    def collect(self) -> Iterator[Metric]:
        return iter(self._fams)


class _Row(NamedTuple):
    feature: bool
    model: str
    version: str
    name: str
    reference: str
    scores: list[float]
    samples: float
    drifted: float  # 1.0 / 0.0, NaN: no verdict
    threshold: float
    method: str  # the verdict method ("" without a verdict)


def _rows(scored: ScoreSet) -> Iterator[_Row]:
    """Every row in exposition order (blocks, rows sorted within each block).

    ``scores`` in ``DRIFT_METHODS`` order (NaN: not exported), ``samples`` NaN
    where no sample gauge is exported, which includes an output whose feature
    namesake of the same model version has one (the gauge has no kind label;
    the feature's count wins); ``drifted``/``threshold`` NaN without a verdict.
    """
    orders = scored.order()
    features = {(b.idents[j][0], b.idents[j][1], b.idents[j][3], b.reference)
                for b in scored.blocks
                for j in np.flatnonzero(~np.isnan(b.samples)).tolist()
                if b.idents[j][2] == "feature"}
    nan = math.nan
    for block, order in zip(scored.blocks, orders):
        ref = block.reference
        idents = block.idents
        v = block.verdict
        if v is None:
            drifted = threshold = [nan] * order.size
            methods = [-1] * order.size
        else:
            drifted = v.drifted[order].tolist()
            threshold = v.threshold[order].tolist()
            methods = v.method[order].tolist()
        for j, row, n, d, t, mi in zip(order.tolist(), block.values[order].tolist(),
                                       block.samples[order].tolist(), drifted, threshold,
                                       methods):
            model, version, kind, name = idents[j]
            feature = kind == "feature"
            if not feature and (model, version, name, ref) in features:
                n = nan
            yield _Row(feature, model, version, name, ref, row, n, d, t,
                       DRIFT_METHODS[mi] if mi >= 0 else "")


def _shares(scored: ScoreSet) -> dict[tuple[str, str, str], tuple[int, int]]:
    """``{(model, model_version, reference): (features drifted, features with a verdict)}``."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for b in scored.blocks:
        if b.verdict is None:
            continue
        for (model, version, kind, _), d in zip(b.idents, b.verdict.drifted.tolist()):
            if kind == "feature" and d == d:
                c = out.setdefault((model, version, b.reference), [0, 0])
                c[0] += int(d == 1.0)
                c[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def _exposition(res: DriftResults, openmetrics: bool) -> bytes:
    fmt = floatToGoString
    lines: dict[str, list[str]] = {e.name: [] for e in _ROW_FAMILIES}
    s_lines, p_lines, n_lines = (lines[_SCORE.name], lines[_PRED_SCORE.name],
                                 lines[_SAMPLES.name])
    for r in _rows(res.scored):
        m, v_, nm = _escape(r.model), _escape(r.version), _escape(r.name)
        # prometheus_client writes label names sorted; so do we
        if r.feature:
            out = s_lines
            pre, mid = f'{_SCORE.name}{{feature="{nm}",method="', (
                f'",model="{m}",model_version="{v_}",reference="{r.reference}"}} ')
            sel = f'feature="{nm}",'
            det, thr = _DETECTED.name, _THRESHOLD.name
        else:
            out = p_lines
            pre, mid = f'{_PRED_SCORE.name}{{method="', (
                f'",model="{m}",model_version="{v_}",output="{nm}",reference="{r.reference}"}} ')
            sel = ""
            det, thr = _PRED_DETECTED.name, _PRED_THRESHOLD.name
        for method, v in zip(DRIFT_METHODS, r.scores):
            if v == v:  # not NaN
                out.append(f"{pre}{method}{mid}{fmt(v)}\n")
        if r.samples == r.samples:
            n_lines.append(f'{_SAMPLES.name}{{feature="{nm}",model="{m}",model_version="{v_}",'
                           f'reference="{r.reference}"}} {fmt(r.samples)}\n')
        if r.drifted == r.drifted:
            tail = "" if r.feature else f'output="{nm}",'
            lines[det].append(f'{det}{{{sel}model="{m}",model_version="{v_}",{tail}'
                              f'reference="{r.reference}"}} {fmt(r.drifted)}\n')
            lines[thr].append(f'{thr}{{{sel}method="{r.method}",model="{m}",'
                              f'model_version="{v_}",{tail}reference="{r.reference}"}} '
                              f'{fmt(r.threshold)}\n')
    for (model, version, ref), (drifted, judged) in _shares(res.scored).items():
        m, v_ = _escape(model), _escape(version)
        labels = f'{{model="{m}",model_version="{v_}",reference="{ref}"}}'
        lines[_SHARE.name].append(f"{_SHARE.name}{labels} {fmt(drifted / judged)}\n")
        lines[_DRIFTED.name].append(f"{_DRIFTED.name}{labels} {fmt(float(drifted))}\n")
    parts: list[str] = []
    for entry in _ROW_FAMILIES:
        if lines[entry.name]:
            parts.append(_header(entry, openmetrics))
            parts.extend(lines[entry.name])
    return "".join(parts).encode()


def _render_scores(res: DriftResults, fams: Mapping[str, GaugeMetricFamily]) -> None:
    """The per-row gauges from the columns (see :func:`_rows`), into ``fams`` by name.

    Samples are appended straight to the families with the catalogue's label
    names: what ``add_metric`` does minus a list and a dict per call.
    """
    score, pred, samples = fams[_SCORE.name], fams[_PRED_SCORE.name], fams[_SAMPLES.name]
    s_names, p_names, n_names = _SCORE.labels, _PRED_SCORE.labels, _SAMPLES.labels
    s_name, p_name, n_name = score.name, pred.name, samples.name
    for r in _rows(res.scored):
        if r.feature:
            add, fname, lnames = score.samples.append, s_name, s_names
            det, thr = fams[_DETECTED.name], fams[_THRESHOLD.name]
        else:
            add, fname, lnames = pred.samples.append, p_name, p_names
            det, thr = fams[_PRED_DETECTED.name], fams[_PRED_THRESHOLD.name]
        for method, v in zip(DRIFT_METHODS, r.scores):
            if v == v:  # not NaN
                add(Sample(fname, dict(zip(lnames, (r.model, r.version, r.name, method,
                                                    r.reference))), v))
        if r.samples == r.samples:
            samples.samples.append(Sample(n_name, dict(zip(n_names, (
                r.model, r.version, r.name, r.reference))), r.samples))
        if r.drifted == r.drifted:
            det.add_metric([r.model, r.version, r.name, r.reference], r.drifted)
            thr.add_metric([r.model, r.version, r.name, r.method, r.reference], r.threshold)
    for (model, version, ref), (drifted, judged) in _shares(res.scored).items():
        fams[_SHARE.name].add_metric([model, version, ref], drifted / judged)
        fams[_DRIFTED.name].add_metric([model, version, ref], float(drifted))


#: The families rendered per row of the scores, in exposition order.
_ROW_FAMILIES = (_SCORE, _PRED_SCORE, _SAMPLES, _DETECTED, _PRED_DETECTED, _THRESHOLD,
                 _PRED_THRESHOLD, _SHARE, _DRIFTED)


def _reason_families(res: DriftResults | None) -> list[Metric]:
    """``modelmon_drift_skipped_total`` and ``modelmon_drift_query_errors_total``, one sample
    per reason of their bounded sets, at 0 until something happens (so ``rate()`` sees the
    first one)."""
    skipped = cast(CounterMetricFamily, _SKIPPED.family())
    errors = cast(CounterMetricFamily, _QUERY_ERRORS.family())
    for reason in DRIFT_SKIP_REASONS:
        skipped.add_metric([reason], float(res.skipped.get(reason, 0)) if res else 0.0)
    for reason in DRIFT_QUERY_ERROR_REASONS:
        errors.add_metric([reason], float(res.query_errors.get(reason, 0)) if res else 0.0)
    return [skipped, errors]
