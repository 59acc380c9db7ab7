"""DriftCollector: renders the latest :class:`DriftResults` as fresh families per scrape."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple, cast

import numpy as np
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..catalogue import (
    DRIFT_DETECTED as _DETECTED,
    DRIFT_DURATION_BUCKETS,
    DRIFT_EVALUATION_DURATION_SECONDS as _DURATION,
    DRIFT_EVALUATION_TIMESTAMP_SECONDS as _EVAL_TS,
    DRIFT_EVALUATIONS as _EVALS,
    DRIFT_FEATURES_DRIFTED as _DRIFTED,
    DRIFT_LAST_SUCCESS_TIMESTAMP_SECONDS as _SUCCESS_TS,
    DRIFT_METHODS,
    DRIFT_QUERY_ERROR_REASONS,
    DRIFT_QUERY_ERRORS as _QUERY_ERRORS,
    DRIFT_SCORE as _SCORE,
    DRIFT_SHARE as _SHARE,
    DRIFT_SKIP_REASONS,
    DRIFT_SKIPPED as _SKIPPED,
    DRIFT_SOURCE_UP as _UP,
    DRIFT_THRESHOLD as _THRESHOLD,
    DRIFT_WINDOW_SAMPLES as _SAMPLES,
    ESTIMATED_PERFORMANCE as _ESTIMATED,
    PREDICTION_DRIFT_DETECTED as _PRED_DETECTED,
    PREDICTION_DRIFT_SCORE as _PRED_SCORE,
    PREDICTION_DRIFT_THRESHOLD as _PRED_THRESHOLD,
    MetricSpec,
    le_labels,
)
from .evaluate import DriftResults, ScoreSet

__all__ = ["DriftCollector", "DURATION_BUCKETS", "DURATION_LES", "score_exposition"]

#: Buckets of ``modelmon_drift_evaluation_duration_seconds`` (defined in the catalogue;
#: kept here under their old name for the callers of old).
DURATION_BUCKETS: tuple[float, ...] = DRIFT_DURATION_BUCKETS
DURATION_LES: tuple[str, ...] = tuple(le_labels(DURATION_BUCKETS))

#: prometheus_client's float formatting (unannotated there).
_go_float = cast(Callable[[float], str], floatToGoString)


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
        evals = _EVALS.family()
        duration = _DURATION.family()
        if res is None:
            evals.add_metric([], 0.0)
            duration.add([], DURATION_LES, [0.0] * len(DURATION_LES), 0.0)
            yield evals
            yield duration
            yield from _reason_families(None)
            return
        row_fams = {e.name: e.family() for e in _ROW_FAMILIES}
        if not split:
            _render_scores(res, row_fams)
        up = _UP.family()
        for source, ok in res.sources_up.items():
            up.add_metric([source], 1.0 if ok else 0.0)
        ts = _EVAL_TS.family()
        ts.add_metric([], res.timestamp)
        evals.add_metric([], float(res.evaluations))
        duration.add([], res.duration_les, res.duration_cumulative, res.duration_sum)
        fams: list[Metric] = [*row_fams.values(), up, ts]
        if res.estimates:
            est = _ESTIMATED.family()
            for (m, v), values in sorted(res.estimates.items()):
                for metric, x in values.items():
                    if x == x:  # an undefined ratio (NaN) is left out
                        est.add_metric([m, v, metric], x)
            fams.append(est)
        if res.last_success_timestamp is not None:
            ok_ts = _SUCCESS_TS.family()
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


def _header(entry: MetricSpec[GaugeMetricFamily], openmetrics: bool) -> str:
    fam = entry.family()
    fam.add_metric(["x"] * len(entry.labels), 0.0)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Fixed([fam]))
    encode = cast(Callable[[CollectorRegistry], bytes],
                  openmetrics_latest if openmetrics else generate_latest)
    text = encode(reg).decode()
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


class _Line:
    """The text of one family's sample lines, generated from the catalogue's label order.

    Values are given in the order of ``spec.labels`` (as to ``add_metric``) and
    written in :attr:`~modelmon.catalogue.MetricSpec.label_order`, the order
    prometheus_client's encoders write (sorted). ``head`` is ``name{labels} ``;
    with ``split`` set, ``pre`` ends with ``split="`` and ``mid`` runs from the
    value's closing quote to the space before the sample value, so a loop over
    that label's values writes ``pre + value + mid`` with no formatting per line.
    ``str.format`` ignores the positional values a template does not use.
    """

    def __init__(self, spec: MetricSpec[GaugeMetricFamily], split: str | None = None) -> None:
        at = {label: i for i, label in enumerate(spec.labels)}
        parts = [f'{label}="{{{at[label]}}}"' for label in spec.label_order]
        self.name = spec.name
        # "{{" and "}}" are the braces of the text, "{0}" etc. the values
        self.head = spec.name + "{{" + ",".join(parts) + "}} "
        self.pre = self.mid = ""
        if split is not None:
            k = spec.label_order.index(split)
            self.pre = spec.name + "{{" + "".join(p + "," for p in parts[:k]) + f'{split}="'
            self.mid = '"' + "".join("," + p for p in parts[k + 1:]) + "}} "


def _exposition(res: DriftResults, openmetrics: bool) -> bytes:
    fmt = _go_float
    lines: dict[str, list[str]] = {e.name: [] for e in _ROW_FAMILIES}
    n_lines = lines[_SAMPLES.name]
    samples, share, drifted_ = _LINES[_SAMPLES.name], _LINES[_SHARE.name], _LINES[_DRIFTED.name]
    for r in _rows(res.scored):
        # the values in the order of the catalogue's labels (see _check_label_orders)
        m, v_, nm, ref = _escape(r.model), _escape(r.version), _escape(r.name), r.reference
        if r.feature:
            score, det, thr = _LINES[_SCORE.name], _LINES[_DETECTED.name], _LINES[_THRESHOLD.name]
        else:
            score, det, thr = (_LINES[_PRED_SCORE.name], _LINES[_PRED_DETECTED.name],
                               _LINES[_PRED_THRESHOLD.name])
        out = lines[score.name]
        pre, mid = score.pre.format(m, v_, nm, "", ref), score.mid.format(m, v_, nm, "", ref)
        for method, v in zip(DRIFT_METHODS, r.scores):
            if v == v:  # not NaN
                out.append(f"{pre}{method}{mid}{fmt(v)}\n")
        if r.samples == r.samples:
            n_lines.append(f"{samples.head.format(m, v_, nm, ref)}{fmt(r.samples)}\n")
        if r.drifted == r.drifted:
            lines[det.name].append(f"{det.head.format(m, v_, nm, ref)}{fmt(r.drifted)}\n")
            lines[thr.name].append(f"{thr.head.format(m, v_, nm, r.method, ref)}"
                                   f"{fmt(r.threshold)}\n")
    for (model, version, ref), (drifted, judged) in _shares(res.scored).items():
        m, v_ = _escape(model), _escape(version)
        lines[share.name].append(f"{share.head.format(m, v_, ref)}{fmt(drifted / judged)}\n")
        lines[drifted_.name].append(f"{drifted_.head.format(m, v_, ref)}"
                                    f"{fmt(float(drifted))}\n")
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
_LINES = {e.name: _Line(e, "method" if e in (_SCORE, _PRED_SCORE) else None)
          for e in _ROW_FAMILIES}


def _check_label_orders() -> None:
    """The row families take their values positionally, in the catalogue's label order
    (``add_metric`` and the :class:`_Line` templates alike): fail at import, not with wrong
    labels, if the catalogue changes the label tuples."""
    want = {
        _SCORE: ("feature", "method", "reference"),
        _PRED_SCORE: ("output", "method", "reference"),
        _SAMPLES: ("feature", "reference"),
        _DETECTED: ("feature", "reference"),
        _PRED_DETECTED: ("output", "reference"),
        _THRESHOLD: ("feature", "method", "reference"),
        _PRED_THRESHOLD: ("output", "method", "reference"),
        _SHARE: ("reference",),
        _DRIFTED: ("reference",),
        _ESTIMATED: ("metric",),
    }
    for spec, tail in want.items():
        if spec.labels != ("model", "model_version") + tail:
            raise ImportError(f"{spec.name}: the drift collector writes the labels "
                              f"model, model_version, {', '.join(tail)}; the catalogue has "
                              f"{', '.join(spec.labels)}")


_check_label_orders()


def _reason_families(res: DriftResults | None) -> list[Metric]:
    """``modelmon_drift_skipped_total`` and ``modelmon_drift_query_errors_total``, one sample
    per reason of their bounded sets, at 0 until something happens (so ``rate()`` sees the
    first one)."""
    skipped = _SKIPPED.family()
    errors = _QUERY_ERRORS.family()
    for reason in DRIFT_SKIP_REASONS:
        skipped.add_metric([reason], float(res.skipped.get(reason, 0)) if res else 0.0)
    for reason in DRIFT_QUERY_ERROR_REASONS:
        errors.add_metric([reason], float(res.query_errors.get(reason, 0)) if res else 0.0)
    return [skipped, errors]
