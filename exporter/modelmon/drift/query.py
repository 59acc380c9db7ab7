"""Query mode: the windows and baselines read from a Prometheus-compatible store.

Each evaluation runs, at one evaluation time ``t`` (every query gets
``time=t``, so the two windows and all metric families are consistent), one
query per metric family, window group and window, concurrently with a bound
(:data:`DEFAULT_CONCURRENCY`):

* discovery and baselines (replicas of one version expose identical gauges,
  ``max`` deduplicates them; the four baseline queries only when the cached
  read may be out of date, see :class:`QuerySource`)::

    max by (model, model_version, baseline_id) (modelmon_model_info)
    max by (model, model_version, feature, le) (modelmon_baseline_bucket_ratio)
    max by (model, model_version, feature, category) (modelmon_baseline_category_ratio)
    max by (model, model_version, class) (modelmon_baseline_class_ratio)
    max by (model, model_version, feature) (modelmon_baseline_samples)

* per window ``W`` (replicas summed; the previous window adds ``offset W``)::

    sum by (model, model_version, feature, le) (increase(modelmon_feature_value_bucket[W]))
    stddev by (model, model_version, feature) (count by (model, model_version, feature, le) (increase(modelmon_feature_value_bucket[W])))
    sum by (model, model_version, output, le) (increase(modelmon_prediction_value_bucket[W]))
    stddev by (model, model_version, output) (count by (model, model_version, output, le) (increase(modelmon_prediction_value_bucket[W])))
    sum by (model, model_version, feature, category) (increase(modelmon_feature_category_total[W]))
    sum by (model, model_version, class) (increase(modelmon_predicted_class_total[W]))

  The ``stddev`` of ``count`` queries (one series per histogram) find histograms whose buckets were summed over
  different sets of replicas (``partial_buckets``). When models have their own
  window (config file), each distinct window is one group of these queries
  with a ``model=~"..."`` matcher (the default group gets ``model!~"..."``).

The answers become the same :class:`~modelmon.drift.scrape.Windows` and
:class:`~modelmon.drift.evaluate.BaselineTable` objects that scrape mode
builds, and are scored by :func:`~modelmon.drift.evaluate.compute_scores`.
Cumulative bucket counts become per-bucket counts; a series is skipped (never
scored) and counted in ``modelmon_drift_skipped_total{reason}`` when a value
is NaN/Inf (``non_finite``), ``+Inf`` or every finite bucket is missing or the
buckets are a strict subset of the baseline's (``missing_buckets``), buckets
were summed over different replica counts (``partial_buckets``), cumulative
counts go down by more than float noise (``non_monotonic``), the buckets
differ from the baseline's (``baseline_mismatch``), there is no baseline
(``no_baseline``), or replicas of the version report different baseline ids
(``baseline_conflict``). Labels always include ``model_version``, so two
versions (a rolling deploy, possibly with different bucket edges) are scored
separately, each against its own baseline.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import repeat
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from .. import catalogue as cat
from ..baseline import Baseline, CategoricalSummary
from ..catalogue import CALIBRATION_QUANTITIES, DRIFT_METHODS, MetricSpec, le_labels
from .columns import SLOT, Columns, Histograms, columns_of, group_histograms
from .evaluate import (
    CLASS_REFERENCE_SAMPLES,
    BaselineTable,
    CalibrationGauges,
    calibrations_of,
    estimate,
    Rows,
    Scored,
    ScoreSet,
    ident_of,
    score_rows,
)
from .exposition import (
    FAMILY_FEATURE_CATEGORY,
    FAMILY_FEATURE_VALUE,
    FAMILY_PREDICTED_CLASS,
    PREDICTED_CLASS_OUTPUT,
    FAMILY_PREDICTION_VALUE,
    SeriesKey,
)
from .promql import PromClient, QueryError
from .scrape import Windows
from .verdict import DEFAULT_VERDICT, VerdictSettings

__all__ = [
    "ModelSettings",
    "QuerySource",
    "QueryEvaluation",
    "EvaluationFailed",
    "baseline_queries",
    "window_queries",
    "promql_duration",
    "BASELINE_REFRESH_SECONDS",
    "DEFAULT_CONCURRENCY",
]

log = logging.getLogger("modelmon.drift")

#: Queries in flight at once, per evaluation.
DEFAULT_CONCURRENCY = 4
#: Relative tolerance of the monotonicity check of cumulative bucket counts.
MONOTONIC_RTOL = 1e-9

# The series read, named and grouped by the catalogue (the ones scrape mode parses, see
# .exposition): a baseline gauge by all its labels, a histogram's buckets by its labels and le.
_FV_BUCKET = cat.FEATURE_VALUE.bucket_name
_PV_BUCKET = cat.PREDICTION_VALUE.bucket_name
_CATEGORY = cat.FEATURE_CATEGORY.name
_CLASS = cat.PREDICTED_CLASS.name


def _by(spec: MetricSpec[Any], *extra: str) -> str:
    """``(model, model_version, ...)``: the labels of ``spec`` (and ``extra``) for ``by``."""
    return "(" + ", ".join(spec.labels + extra) + ")"


def _max_by(spec: MetricSpec[Any]) -> str:
    return f"max by {_by(spec)} ({spec.name})"


@dataclass(frozen=True)
class ModelSettings:
    """Per-model overrides from the config file; None means the command-line default."""

    window: float | None = None
    min_samples: int | None = None
    methods: tuple[str, ...] | None = None
    verdict: VerdictSettings | None = None

    def __post_init__(self) -> None:
        if self.window is not None and not self.window > 0:
            raise ValueError(f"window: expected seconds > 0, got {self.window!r}")
        if self.min_samples is not None and (not isinstance(self.min_samples, int)
                                             or self.min_samples < 0):
            raise ValueError(f"min_samples: expected an integer >= 0, got {self.min_samples!r}")
        if self.methods is not None:
            bad = [m for m in self.methods if m not in DRIFT_METHODS]
            if bad or not self.methods:
                raise ValueError(f"methods: expected a non-empty list of {', '.join(DRIFT_METHODS)}"
                                 f", got {list(self.methods)!r}")


def promql_duration(seconds: float) -> str:
    """A PromQL duration for a window: whole seconds, else milliseconds.

    >>> [promql_duration(s) for s in (3600, 30, 1.5, 7200.0)]
    ['3600s', '30s', '1500ms', '7200s']
    """
    ms = round(float(seconds) * 1000)
    if ms <= 0:
        raise ValueError(f"window too short: {seconds!r}s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def model_matcher(models: Iterable[str], negate: bool = False) -> str:
    """``model=~"a|b"`` (or ``!~``) matching exactly these model names.

    >>> model_matcher(["loan", "a.b"])
    'model=~"a\\\\\\\\.b|loan"'
    """
    alts = "|".join(re.escape(m) for m in sorted(set(models)))
    return f"model{'!~' if negate else '=~'}{_quote(alts)}"


def baseline_queries() -> dict[str, str]:
    """The discovery and baseline queries, by name."""
    return {
        "info": _max_by(cat.MODEL_INFO),
        "bucket_ratio": _max_by(cat.BASELINE_BUCKET_RATIO),
        "category_ratio": _max_by(cat.BASELINE_CATEGORY_RATIO),
        "class_ratio": _max_by(cat.BASELINE_CLASS_RATIO),
        "samples": _max_by(cat.BASELINE_SAMPLES),
        "calibration": _max_by(cat.BASELINE_CALIBRATION),
    }


def window_queries(window: float, matcher: str = "", previous: bool = False) -> dict[str, str]:
    """The count queries of one window (``previous`` adds ``offset W``), by name."""
    w = promql_duration(window)
    sel = "{" + matcher + "}" if matcher else ""
    rng = f"[{w}]" + (f" offset {w}" if previous else "")

    def inc(metric: str) -> str:
        return f"increase({metric}{sel}{rng})"

    def spread(spec: MetricSpec[Any]) -> str:
        # How unequal the replica counts of a histogram's buckets are: 0 exactly when every
        # bucket was summed over the same replicas (the standard deviation of equal values
        # is computed as exactly 0). One series per histogram, not per bucket, so the answer
        # is ~20x smaller than the counts; ``stddev`` reads the counts once where
        # ``max - min`` would evaluate them twice.
        counts = f"count by {_by(spec, 'le')} ({inc(spec.bucket_name)})"
        return f"stddev by {_by(spec)} ({counts})"

    return {
        "feature_value": f"sum by {_by(cat.FEATURE_VALUE, 'le')} ({inc(_FV_BUCKET)})",
        "feature_value_replicas": spread(cat.FEATURE_VALUE),
        "prediction_value": f"sum by {_by(cat.PREDICTION_VALUE, 'le')} ({inc(_PV_BUCKET)})",
        "prediction_value_replicas": spread(cat.PREDICTION_VALUE),
        "feature_category": f"sum by {_by(cat.FEATURE_CATEGORY)} ({inc(_CATEGORY)})",
        "predicted_class": f"sum by {_by(cat.PREDICTED_CLASS)} ({inc(_CLASS)})",
    }


def _table_of_baseline(b: Baseline) -> BaselineTable:
    """The baseline gauges a Monitor with this baseline would expose, as a table."""
    t = BaselineTable()
    m, v = b.model, b.model_version
    for name, s in {**b.numeric_features, **b.numeric_outputs}.items():
        c = np.cumsum(np.asarray(s.counts, dtype=np.float64))
        ratios = (c / c[-1]).tolist() if c[-1] else [0.0] * c.size
        t.bucket_ratio[(m, v, name)] = {float(le): r for le, r in zip(le_labels(s.edges), ratios)}
        t.samples[(m, v, name)] = float(s.samples)
    for name, cs in b.categorical_features.items():
        t.category_ratio[(m, v, name)] = dict(zip(cs.labels, cs.ratios.tolist()))
        t.samples[(m, v, name)] = float(cs.samples)
    if isinstance(b.prediction, CategoricalSummary):
        t.class_ratio[(m, v)] = dict(zip(b.prediction.labels, b.prediction.ratios.tolist()))
    cal = b.calibration
    if cal is not None and cal.score in b.probabilities:
        les = tuple(float(x) for x in b.probabilities[cal.score].edges) + (math.inf,)
        t.calibrations[(m, v)] = CalibrationGauges(cal.score, les, *(
            np.asarray(getattr(cal, q), dtype=np.float64) for q in CALIBRATION_QUANTITIES))
    return t


def _le_of(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan



#: Seconds a cached baseline is reused at most before it is read again.
BASELINE_REFRESH_SECONDS = 900.0

_FEATURE_KEY = ("model", "model_version", "feature")
_OUTPUT_KEY = ("model", "model_version", "output")
_VERSION_KEY = ("model", "model_version")
#: ``name -> (key labels, bucket label)`` of every query answer.
_SHAPES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "info": (("model", "model_version", "baseline_id"), None),
    "bucket_ratio": (_FEATURE_KEY, "le"),
    "category_ratio": (_FEATURE_KEY, "category"),
    "class_ratio": (_VERSION_KEY, "class"),
    "samples": (_FEATURE_KEY, None),
    "calibration": (("model", "model_version", "output", "quantity"), "le"),
    "feature_value": (_FEATURE_KEY, "le"),
    "feature_value_replicas": (_FEATURE_KEY, None),
    "prediction_value": (_OUTPUT_KEY, "le"),
    "prediction_value_replicas": (_OUTPUT_KEY, None),
    "feature_category": (_FEATURE_KEY, "category"),
    "predicted_class": (_VERSION_KEY, "class"),
}
_BASELINE_QUERIES = ("bucket_ratio", "category_ratio", "class_ratio", "samples", "calibration")
#: Families in the order series are taken (the first of two with one name wins).
_ORDER = ((FAMILY_FEATURE_CATEGORY, "feature_category"),
          (FAMILY_FEATURE_VALUE, "feature_value"),
          (FAMILY_PREDICTED_CLASS, "predicted_class"),
          (FAMILY_PREDICTION_VALUE, "prediction_value"))


class EvaluationFailed(Exception):
    """Some queries of an evaluation failed; nothing of it is used."""

    def __init__(self, errors: Sequence[QueryError]) -> None:
        self.errors = tuple(errors)
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.reason}: {first}{more}")


class _Part(NamedTuple):
    """The series of one family and bucket count that passed every check, as rows."""

    family: str
    idents: list[tuple[str, str, str, str]]  # (model, model_version, kind, name)
    labels: Sequence[tuple[float | str, ...]] | np.ndarray  # (n, k) les for histograms
    current: np.ndarray  # (n, k) counts per bucket
    reference: np.ndarray  # (n, k) baseline reference counts
    previous: np.ndarray  # (n, k) previous window counts (zeros where there were none)
    previous_ok: np.ndarray  # bool (n,): the previous window can be compared
    has_previous: np.ndarray  # bool (n,): the previous window had series (for ``windows``)


def _windows_of(parts: Sequence[_Part], window: float) -> Windows:
    labels: dict[SeriesKey, tuple[float | str, ...]] = {}
    current: dict[SeriesKey, np.ndarray] = {}
    previous: dict[SeriesKey, np.ndarray] = {}
    for p in parts:
        rows = p.labels.tolist() if isinstance(p.labels, np.ndarray) else p.labels
        for i, (m, v, _, name) in enumerate(p.idents):
            key = SeriesKey(m, v, p.family, name)
            labels[key] = tuple(rows[i])
            current[key] = p.current[i]
            if p.has_previous[i]:
                previous[key] = p.previous[i]
    return Windows(labels=MappingProxyType(labels), current=MappingProxyType(current),
                   previous=MappingProxyType(previous), current_seconds=window,
                   previous_seconds=window)


class _LazyWindows(Mapping[float, Windows]):
    """``{window seconds: Windows}`` built on first access (only tests and debugging look)."""

    def __init__(self, parts: Mapping[float, Sequence[_Part]]) -> None:
        self._parts = parts
        self._built: dict[float, Windows] = {}

    def __getitem__(self, w: float) -> Windows:
        if w not in self._built:
            self._built[w] = _windows_of(self._parts[w], w)
        return self._built[w]

    def __iter__(self) -> Iterator[float]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


@dataclass(frozen=True)
class QueryEvaluation(Scored):
    """What one successful evaluation found."""

    time: float
    scored: ScoreSet
    #: Series skipped in this evaluation, by reason.
    skipped: Mapping[str, int]
    #: ``{(model, model_version): (baseline_id, ...)}`` from ``modelmon_model_info``.
    models: Mapping[tuple[str, str], tuple[str, ...]]
    #: The windows scored, by window length in seconds.
    windows: Mapping[float, Windows] = field(default_factory=dict)
    queries: int = 0
    #: Whether the baseline gauges were read in this evaluation (else the cached ones were used).
    baseline_read: bool = True
    #: ``{(model, model_version): {metric: value}}`` estimated from the live score window.
    estimates: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Baseline:
    """The baselines of one read: histograms of bucket ratios, the rest as a table."""

    models: Mapping[tuple[str, str], frozenset[str]]
    time: float
    histograms: Histograms
    table: BaselineTable
    samples: Mapping[tuple[str, ...], float]
    #: Per bucket count, the baseline sample count of each row of ``histograms.groups[k]``.
    group_samples: Mapping[int, np.ndarray]


def _model_ids(info: Columns) -> dict[tuple[str, str], frozenset[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for m, v, bid in info.keys:
        if m is not None and v is not None:
            out.setdefault((m, v), set()).add(bid or "")
    return {k: frozenset(ids) for k, ids in sorted(out.items())}


def _baseline_of(vectors: Mapping[str, Columns], overrides: Sequence[Baseline],
                 models: Mapping[tuple[str, str], frozenset[str]], t: float) -> _Baseline:
    """The baselines read from the store, each (model, version) of ``overrides`` replaced."""
    pairs = {(b.model, b.model_version) for b in overrides}
    ratio = vectors["bucket_ratio"]
    if pairs:
        mine = [(lab, v) for lab, v in _samples_of(ratio) if (lab["model"], lab["model_version"])
                not in pairs]
        for b in overrides:
            for name, s in {**b.numeric_features, **b.numeric_outputs}.items():
                c = np.cumsum(np.asarray(s.counts, dtype=np.float64))
                ratios = (c / c[-1]).tolist() if c[-1] else [0.0] * c.size
                mine += [({"model": b.model, "model_version": b.model_version, "feature": name,
                           "le": le}, r) for le, r in zip(le_labels(s.edges), ratios)]
        ratio = columns_of(mine, _FEATURE_KEY, "le")
    table = BaselineTable()
    for (m, v, f), cats in _by_key(vectors["category_ratio"]).items():
        if (m, v) not in pairs:
            table.category_ratio[(m, v, f)] = cats
    for (m, v), classes in _by_key(vectors["class_ratio"]).items():
        if (m, v) not in pairs:
            table.class_ratio[(m, v)] = classes
    samples: dict[tuple[str, ...], float] = {
        k: v for k, v in vectors["samples"].key_values().items()  # type: ignore[misc]
        if None not in k and k[:2] not in pairs and math.isfinite(v)}
    cal_table: dict[tuple[str, str, str, str], dict[float, float]] = {}
    for (m, v, output, quantity), counts in _by_key(vectors["calibration"]).items():
        if (m, v) not in pairs:
            les = {_le_of(le): n for le, n in counts.items()}
            if not any(math.isnan(x) for x in les):
                cal_table[(m, v, output, quantity)] = les
    table.calibrations = calibrations_of(cal_table)
    for b in overrides:
        t_b = _table_of_baseline(b)
        table.category_ratio.update(t_b.category_ratio)
        table.class_ratio.update(t_b.class_ratio)
        table.calibrations.update(t_b.calibrations)
        samples.update(t_b.samples)  # type: ignore[arg-type]
    table.samples = dict(samples)  # type: ignore[arg-type]
    hist = group_histograms(ratio)
    per_group = {k: np.fromiter(map(samples.get, map(hist.keys.__getitem__, g.index.tolist()),
                                    repeat(CLASS_REFERENCE_SAMPLES)),
                                dtype=np.float64, count=g.index.size)
                 for k, g in hist.groups.items()}
    return _Baseline(models=models, time=t, histograms=hist, table=table,
                     samples=samples, group_samples=per_group)


def _samples_of(cols: Columns) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` pairs of an answer (the slow, general form; small answers only)."""
    out = []
    names = cols.key_labels + ((cols.bucket_label,) if cols.bucket_label else ())
    buckets = cols.buckets if cols.bucket_label else [None] * len(cols)
    for sid, b, v in zip(cols.series.tolist(), buckets, cols.values.tolist()):
        key = cols.keys[sid]
        if None in key:
            continue
        out.append((dict(zip(names, (*key, b))), v))
    return out


def _by_key(cols: Columns) -> dict[tuple[str, ...], dict[str, float]]:
    """``{key: {bucket: value}}`` of finite samples with every label (categories, classes)."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    buckets = cols.buckets
    for sid, b, v in zip(cols.series.tolist(), buckets, cols.values.tolist()):
        key = cols.keys[sid]
        if b is None or None in key or not math.isfinite(v):
            continue
        out.setdefault(key, {})[b] = v
    return out


class QuerySource:
    """Runs the queries of one evaluation and scores them.

    Parameters
    ----------
    client : PromClient
        The store's query API.
    window, min_samples, methods :
        Defaults for every model.
    models : mapping of model name to ModelSettings
        Per-model overrides (window, min_samples, methods, verdict).
    verdict : VerdictSettings
        The verdict of every model without one of its own.
    baselines : sequence of Baseline
        ``--baseline`` files; each replaces the store's baseline gauges of its
        (model, model_version).
    concurrency : int
        Queries in flight at once.
    on_skip : callable or None
        ``on_skip(key, reason)`` for every skipped series (for logging).
    baseline_refresh : float
        The baseline gauges are read again when ``modelmon_model_info`` shows
        a new model, version or baseline id, when a series was skipped for
        want of a matching baseline, and at least this often (seconds);
        otherwise the last read is reused (baseline ids are content hashes).
    """

    def __init__(self, client: PromClient, *, window: float, min_samples: int,
                 methods: Sequence[str] = DRIFT_METHODS,
                 models: Mapping[str, ModelSettings] | None = None,
                 baselines: Sequence[Baseline] = (),
                 concurrency: int = DEFAULT_CONCURRENCY,
                 on_skip: Callable[[SeriesKey, str], None] | None = None,
                 baseline_refresh: float = BASELINE_REFRESH_SECONDS,
                 verdict: VerdictSettings = DEFAULT_VERDICT) -> None:
        if not window > 0:
            raise ValueError(f"window: expected seconds > 0, got {window!r}")
        if not isinstance(min_samples, int) or min_samples < 0:
            raise ValueError(f"min_samples: expected an integer >= 0, got {min_samples!r}")
        bad = [m for m in methods if m not in DRIFT_METHODS]
        if bad or not methods:
            raise ValueError(f"methods: expected some of {', '.join(DRIFT_METHODS)}, got "
                             f"{list(methods)!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency: expected >= 1, got {concurrency!r}")
        if not baseline_refresh >= 0:
            raise ValueError(f"baseline_refresh: expected seconds >= 0, got {baseline_refresh!r}")
        pairs = [(b.model, b.model_version) for b in baselines]
        dupes = sorted({p for p in pairs if pairs.count(p) > 1})
        if dupes:
            raise ValueError("baselines: more than one file for model "
                             + ", ".join(f"{m!r} version {v!r}" for m, v in dupes))
        self.client = client
        self.window = float(window)
        self.min_samples = min_samples
        self.methods = tuple(m for m in DRIFT_METHODS if m in methods)
        self.models: Mapping[str, ModelSettings] = MappingProxyType(dict(models or {}))
        self.baselines = tuple(baselines)
        self.concurrency = concurrency
        self.on_skip = on_skip
        self.baseline_refresh = float(baseline_refresh)
        self.verdict = verdict
        self._groups = self._window_groups()
        self._baseline: _Baseline | None = None
        self._baseline_dirty = False

    # -- settings per model -------------------------------------------------------------

    def window_of(self, model: str) -> float:
        s = self.models.get(model)
        return s.window if s is not None and s.window is not None else self.window

    def min_samples_of(self, model: str) -> int:
        s = self.models.get(model)
        return s.min_samples if s is not None and s.min_samples is not None else self.min_samples

    def methods_of(self, model: str) -> tuple[str, ...]:
        s = self.models.get(model)
        return s.methods if s is not None and s.methods is not None else self.methods

    def verdict_of(self, model: str) -> VerdictSettings:
        s = self.models.get(model)
        return s.verdict if s is not None and s.verdict is not None else self.verdict

    def _window_groups(self) -> list[tuple[float, str]]:
        """``[(window, model matcher)]``: the default window first, then one per other window."""
        other: dict[float, list[str]] = {}
        for name in self.models:
            w = self.window_of(name)
            if w != self.window:
                other.setdefault(w, []).append(name)
        groups = [(self.window, model_matcher([m for ms in other.values() for m in ms],
                                              negate=True) if other else "")]
        for w in sorted(other):
            groups.append((w, model_matcher(other[w])))
        return groups

    def queries(self) -> dict[str, str]:
        """Every query of one evaluation, by a name (``<family>`` or ``<window>/<which>/<family>``)."""
        out = dict(baseline_queries())
        for w, matcher in self._groups:
            for which, prev in (("current", False), ("previous", True)):
                for name, expr in window_queries(w, matcher, prev).items():
                    out[f"{promql_duration(w)}/{which}/{name}"] = expr
        return out

    # -- one evaluation -----------------------------------------------------------------

    def _cached_baseline(self, t: float) -> _Baseline | None:
        b = self._baseline
        if b is None or self._baseline_dirty or not b.time <= t < b.time + self.baseline_refresh:
            return None
        return b

    def fetch(self, t: float) -> dict[str, Columns]:
        """Run the queries at time ``t``; :class:`EvaluationFailed` if any fails.

        The baseline queries are left out while the cached baseline still
        holds (see ``baseline_refresh``): first ``modelmon_model_info`` and the
        window queries run, and the baselines are read only if the models or
        baseline ids changed. At most ``concurrency`` queries are in flight;
        after the first failure no further query is started (the store is
        likely down or overloaded).
        """
        todo = self.queries()
        cached = self._cached_baseline(t)
        if cached is None:
            return self._run(todo, t)
        first = {n: e for n, e in todo.items() if n not in _BASELINE_QUERIES}
        results = self._run(first, t)
        if _model_ids(results["info"]) != cached.models:
            results.update(self._run({n: todo[n] for n in _BASELINE_QUERIES}, t))
        return results

    def _run(self, queries: Mapping[str, str], t: float) -> dict[str, Columns]:
        todo = list(queries.items())
        todo.reverse()  # pop() from the end keeps the documented order
        results: dict[str, Columns] = {}
        errors: list[QueryError] = []
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="modelmon-drift-query") as pool:
            running: dict[Future[Columns], str] = {}
            while todo or running:
                while todo and not errors and len(running) < self.concurrency:
                    name, expr = todo.pop()
                    key_labels, bucket = _SHAPES[name.rsplit("/", 1)[-1]]
                    fut = pool.submit(self.client.query_columns, expr, t, key_labels, bucket)
                    running[fut] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    name = running.pop(f)
                    exc = f.exception()
                    if exc is None:
                        results[name] = f.result()
                    elif isinstance(exc, QueryError):
                        errors.append(exc)
                    else:  # a bug: reported as a bad response, its traceback logged
                        log.error("event=query_crashed query=%r", name, exc_info=exc)
                        errors.append(QueryError("bad_response", f"{type(exc).__name__}: {exc}"))
                if errors:
                    todo.clear()
        if errors:
            raise EvaluationFailed(errors)
        for name, cols in results.items():
            for w in cols.warnings:
                log.warning("event=query_warning query=%r warning=%r", name, w)
        return results

    def evaluate(self, t: float) -> QueryEvaluation:
        """Fetch at time ``t`` and score every series of every window group."""
        vectors = self.fetch(t)
        return self.score(t, vectors)

    def score(self, t: float, vectors: Mapping[str, Columns]) -> QueryEvaluation:
        """Score the answers of :meth:`fetch` (separate from it for tests and benchmarks).

        ``vectors`` holds the answers by query name; without the baseline
        answers the cached baseline is used.
        """
        skipped: Counter[str] = Counter()

        def skip(key: SeriesKey, reason: str) -> None:
            skipped[reason] += 1
            if self.on_skip is not None:
                self.on_skip(key, reason)

        models = _model_ids(vectors["info"])
        read = "bucket_ratio" in vectors
        if read:
            base = _baseline_of(vectors, self.baselines, models, t)
            self._baseline = base
        elif self._baseline is not None:
            base = self._baseline
        else:
            raise ValueError("score: no baseline answers and no cached baseline")
        overridden = {(b.model, b.model_version) for b in self.baselines}
        for b in self.baselines:
            ids = models.get((b.model, b.model_version), frozenset())
            if ids - {b.id}:
                log.debug("event=baseline_overridden model=%r model_version=%r "
                          "store_baseline_ids=%r file_baseline_id=%r", b.model, b.model_version,
                          sorted(ids), b.id)
        conflict = {mv for mv, ids in models.items() if len(ids) > 1 and mv not in overridden}

        rows: list[Rows] = []
        parts_by_w: dict[float, list[_Part]] = {}
        estimates: dict[tuple[str, str], Mapping[str, float]] = {}
        single = len(self._groups) == 1
        for w, _ in self._groups:
            d = promql_duration(w)
            in_group = None if single else (lambda m, w=w: self.window_of(m) == w)
            ctx = _Context(base, in_group, conflict, skip, set())
            parts: list[_Part] = []
            for fam_id, name in _ORDER:
                cur = vectors[f"{d}/current/{name}"]
                prev = vectors[f"{d}/previous/{name}"]
                if fam_id in (FAMILY_FEATURE_VALUE, FAMILY_PREDICTION_VALUE):
                    part = _numeric(fam_id, cur, prev, vectors[f"{d}/current/{name}_replicas"],
                                    vectors[f"{d}/previous/{name}_replicas"], ctx)
                else:
                    part = _categorical(fam_id, cur, prev, ctx)
                parts += part
            parts_by_w[w] = parts
            rows += [self._rows(p, numeric=isinstance(p.labels, np.ndarray), base=base)
                     for p in parts]
            estimates.update(self._estimates(parts, base, in_group))
        overrides_methods = any(s.methods is not None for s in self.models.values())
        scored = score_rows(rows, self.methods_of if overrides_methods else None,
                            self.verdict_of)
        self._baseline_dirty = bool(skipped.get("no_baseline") or skipped.get("baseline_mismatch"))
        return QueryEvaluation(
            time=t,
            scored=scored,
            skipped=MappingProxyType(dict(skipped)),
            models=MappingProxyType({k: tuple(sorted(v)) for k, v in models.items()}),
            windows=_LazyWindows(parts_by_w),
            queries=len(vectors),
            baseline_read=read,
            estimates=MappingProxyType(dict(sorted(estimates.items()))),
        )

    def _estimates(self, parts: Sequence[_Part], base: _Baseline,
                   in_group: Callable[[str], bool] | None
                   ) -> dict[tuple[str, str], Mapping[str, float]]:
        """Performance expected from each calibrated classifier's live score window."""
        cals = base.table.calibrations
        if not cals:
            return {}
        windows: dict[tuple[str, str, str], tuple[Any, np.ndarray]] = {}
        for p in parts:
            if p.family == FAMILY_PREDICTION_VALUE:
                for i, (m, v, _, name) in enumerate(p.idents):
                    if (m, v) in cals:
                        windows[(m, v, name)] = (p.labels[i], p.current[i])
        out: dict[tuple[str, str], Mapping[str, float]] = {}
        for (m, v), cal in cals.items():
            if in_group is not None and not in_group(m):
                continue
            found = windows.get((m, v, cal.output))
            if found is not None:
                est = estimate(cal, found[0].tolist(), found[1], self.min_samples_of(m))
                if est is not None:
                    out[(m, v)] = MappingProxyType(est)
        return out

    def _rows(self, part: _Part, *, numeric: bool, base: _Baseline) -> Rows:
        ms: int | np.ndarray = self.min_samples
        if any(s.min_samples is not None for s in self.models.values()):
            ms = np.fromiter((self.min_samples_of(i[0]) for i in part.idents), dtype=np.float64,
                             count=len(part.idents))
        return Rows(idents=part.idents, current=part.current, reference=part.reference,
                    edges=part.labels[:, :-1] if numeric else None,  # type: ignore[call-overload]
                    previous=part.previous, previous_ok=part.previous_ok, min_samples=ms)


class _Context(NamedTuple):
    """What the family scorers of one window group share."""

    base: _Baseline
    in_group: Callable[[str], bool] | None  # None: every model is in this window group
    conflict: set[tuple[str, str]]
    skip: Callable[[SeriesKey, str], None]
    seen: set[tuple[str, str, str, str]]  # idents taken by an earlier family

    def admit(self, key: SeriesKey) -> bool:
        """False for series of another window group (silently) or of a conflicting version."""
        if self.in_group is not None and not self.in_group(key.model):
            return False
        if (key.model, key.model_version) in self.conflict:
            self.skip(key, "baseline_conflict")
            return False
        return True


def _per_bucket(cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bucket counts of cumulative rows, and which rows go down by more than float noise."""
    per = np.diff(cum, axis=1, prepend=0.0)
    tol = MONOTONIC_RTOL * np.maximum(1.0, np.abs(cum).max(axis=1, initial=0.0))
    bad = (per < -tol[:, None]).any(axis=1)
    return np.maximum(per, 0.0), bad


def _numeric(fam: str, cur_cols: Columns, prev_cols: Columns, cur_spread: Columns,
             prev_spread: Columns, ctx: _Context) -> list[_Part]:
    """The histograms of one family: checked, matched with the baseline and previous window.

    Everything per series is array work on whole bucket-count groups; only
    skipped series (and unusual set-ups: several window groups, conflicting
    baseline ids, unequal replicas, duplicate names) take a loop per series.
    """
    kind = "feature" if fam == FAMILY_FEATURE_VALUE else "output"
    cur, prev = group_histograms(cur_cols), group_histograms(prev_cols)
    spread, pspread = _spread(cur_spread), _spread(prev_spread)
    skip = ctx.skip

    def series_key(raw: tuple[str, ...]) -> SeriesKey:
        return SeriesKey(raw[0], raw[1], fam, raw[2])

    for i, reason in sorted(cur.bad.items()):
        key = series_key(cur.keys[i])
        if ctx.admit(key):
            skip(key, reason)
    base = ctx.base
    bhist = base.histograms
    bslots = bhist.locate(cur.keys)
    pslots = prev.locate(cur.keys)
    # previous-window series that are unusable as a whole, by position in cur.keys
    pirregular: dict[int, str] = {}
    if prev.bad or pspread:
        position = {raw: i for i, raw in enumerate(cur.keys)}
        for raw in pspread:
            if raw in position:
                pirregular[position[raw]] = "partial_buckets"  # type: ignore[index]
        for i, reason in prev.bad.items():
            if prev.keys[i] in position:
                pirregular[position[prev.keys[i]]] = reason
    parts: list[_Part] = []
    for k in sorted(cur.groups):
        g = cur.groups[k]
        index = g.index
        keep = np.ones(index.size, dtype=bool)
        if ctx.in_group is not None or ctx.conflict or spread or ctx.seen:
            for r, i in enumerate(index.tolist()):
                raw = cur.keys[i]
                key = series_key(raw)
                if not ctx.admit(key):
                    keep[r] = False
                elif raw in spread:
                    skip(key, "partial_buckets")
                    keep[r] = False
                elif (raw[0], raw[1], kind, raw[2]) in ctx.seen:
                    skip(key, "duplicate_name")
                    keep[r] = False
        les = g.les
        per, nonmono = _per_bucket(g.cumulative)
        # the baseline of each series: same bucket count and bounds
        bs = bslots[index]
        kb = np.where(bs >= 0, bs // SLOT, -1)
        rb = np.where(bs >= 0, bs % SLOT, 0)
        ok_base = kb == k
        if ok_base.any():
            at = np.flatnonzero(ok_base)
            ok_base[at] = (bhist.groups[k].les[rb[at]] == les[at]).all(axis=1)
        for r in np.flatnonzero(keep & (~ok_base | nonmono)).tolist():
            keep[r] = False
            if kb[r] < 0:
                reason = "non_monotonic" if nonmono[r] else "no_baseline"
            elif set(les[r].tolist()) < set(bhist.groups[int(kb[r])].les[rb[r]].tolist()):
                reason = "missing_buckets"
            elif nonmono[r]:
                reason = "non_monotonic"
            else:
                reason = "baseline_mismatch"
            skip(series_key(cur.keys[int(index[r])]), reason)
        at = np.flatnonzero(keep)
        if at.size == 0:
            continue
        index, les, per, rb = index[at], les[at], per[at], rb[at]
        ratios, _ = _per_bucket(bhist.groups[k].cumulative[rb])
        reference = ratios * base.group_samples[k][rb][:, None]
        # the previous window of the same series, on the same buckets
        n = index.size
        previous = np.zeros_like(per)
        prev_ok = np.ones(n, dtype=bool)
        ps = pslots[index]
        same = (ps >= 0) & (ps // SLOT == k)
        has_prev = same.copy()
        broken = (ps >= 0) & ~same
        if same.any():
            pg = prev.groups[k]
            at = np.flatnonzero(same)
            pr = ps[at] % SLOT
            pper, pmono = _per_bucket(pg.cumulative[pr])
            previous[at] = pper
            broken[at] = ~(pg.les[pr] == les[at]).all(axis=1) | pmono
        rows = np.flatnonzero(broken).tolist()
        if pirregular:
            rows = sorted(set(rows) | {r for r, i in enumerate(index.tolist()) if i in pirregular})
        for r in rows:
            i = int(index[r])
            if i in pirregular:
                reason = pirregular[i]
            elif not same[r]:
                kp, rp = divmod(int(ps[r]), SLOT)
                ples = prev.groups[kp].les[rp]
                reason = ("missing_buckets" if set(ples.tolist()) < set(les[r].tolist())
                          else "baseline_mismatch")
            elif not (prev.groups[k].les[int(ps[r]) % SLOT] == les[r]).all():
                reason = "baseline_mismatch"
            else:
                reason = "non_monotonic"
            skip(series_key(cur.keys[i]), reason)
            prev_ok[r] = has_prev[r] = False
            previous[r] = 0.0
        idents = [(m, v, kind, name) for m, v, name in map(cur.keys.__getitem__,
                                                           index.tolist())]
        parts.append(_Part(fam, idents, les, per, reference, previous, prev_ok, has_prev))
    return parts


def _spread(cols: Columns) -> set[tuple[str | None, ...]]:
    """Histograms whose buckets were summed over different replica counts."""
    return {cols.keys[int(cols.series[i])] for i in np.flatnonzero(cols.values != 0).tolist()}


def _categorical(fam: str, cur_cols: Columns, prev_cols: Columns, ctx: _Context) -> list[_Part]:
    """The category or class counters of one family (few series: a loop per series is fine)."""
    cur_bad, cur_values = _counters(cur_cols)
    prev_bad, prev_values = _counters(prev_cols)

    def key_of(raw: tuple[str, ...]) -> SeriesKey:
        if fam == FAMILY_PREDICTED_CLASS:
            return SeriesKey(raw[0], raw[1], fam, PREDICTED_CLASS_OUTPUT)
        return SeriesKey(raw[0], raw[1], fam, raw[2])

    groups: dict[int, list[tuple[SeriesKey, tuple[str, ...], np.ndarray, np.ndarray,
                                 np.ndarray, bool, bool]]] = {}
    for raw in sorted(set(cur_values) | set(cur_bad)):
        key = key_of(raw)
        if not ctx.admit(key):
            continue
        if raw in cur_bad:
            ctx.skip(key, cur_bad[raw])
            continue
        ident = (key.model, key.model_version, key.kind, key.name)
        if ident in ctx.seen:
            ctx.skip(key, "duplicate_name")
            continue
        values = cur_values[raw]
        labels = tuple(sorted(values))
        ref, reason = ctx.base.table.reference(key, labels)
        if ref is None:
            ctx.skip(key, reason)
            continue
        ctx.seen.add(ident)
        counts = np.fromiter((values[c] for c in labels), dtype=np.float64, count=len(labels))
        previous = np.zeros(len(labels))
        ok = has = False
        if raw in prev_bad:
            ctx.skip(key, prev_bad[raw])
        elif raw not in prev_values:
            ok = True
        elif not set(prev_values[raw]) <= set(labels):
            ctx.skip(key, "baseline_mismatch")
        else:
            pv = prev_values[raw]
            previous = np.fromiter((pv.get(c, 0.0) for c in labels), dtype=np.float64,
                                   count=len(labels))
            ok = has = True
        groups.setdefault(len(labels), []).append((key, labels, counts, ref, previous, ok, has))
    parts = []
    for k in sorted(groups):
        items = groups[k]
        parts.append(_Part(
            family=fam, idents=[ident_of(it[0]) for it in items], labels=[it[1] for it in items],
            current=np.stack([it[2] for it in items]), reference=np.stack([it[3] for it in items]),
            previous=np.stack([it[4] for it in items]),
            previous_ok=np.array([it[5] for it in items], dtype=bool),
            has_previous=np.array([it[6] for it in items], dtype=bool)))
    return parts


def _counters(cols: Columns) -> tuple[dict[tuple[str, ...], str],
                                      dict[tuple[str, ...], dict[str, float]]]:
    """``(bad, values)`` of a counter family: ``values[key][label]``, ``bad[key]`` a skip reason."""
    bad: dict[tuple[str, ...], str] = {}
    values: dict[tuple[str, ...], dict[str, float]] = {}
    buckets = cols.buckets
    for sid, b, v in zip(cols.series.tolist(), buckets, cols.values.tolist()):
        key = cols.keys[sid]
        if None in key:
            continue
        if not math.isfinite(v):
            bad[key] = "non_finite"
        elif b is None:
            bad.setdefault(key, "missing_buckets")
        else:
            values.setdefault(key, {})[b] = v
    return bad, values
