"""Query mode: the windows and baselines read from a Prometheus-compatible store.

Each evaluation runs, at one evaluation time ``t`` (every query gets
``time=t``, so the two windows and all metric families are consistent), one
query per metric family, window group and window, concurrently with a bound
(:data:`DEFAULT_CONCURRENCY`):

* discovery and baselines (once per evaluation; replicas of one version expose
  identical gauges, ``max`` deduplicates them)::

    max by (model, model_version, baseline_id) (modelmon_model_info)
    max by (model, model_version, feature, le) (modelmon_baseline_bucket_ratio)
    max by (model, model_version, feature, category) (modelmon_baseline_category_ratio)
    max by (model, model_version, class) (modelmon_baseline_class_ratio)
    max by (model, model_version, feature) (modelmon_baseline_samples)

* per window ``W`` (replicas summed; the previous window adds ``offset W``)::

    sum by (model, model_version, feature, le) (increase(modelmon_feature_value_bucket[W]))
    max by (model, model_version, feature) (count by (model, model_version, feature, le) (increase(modelmon_feature_value_bucket[W])))
      - min by (model, model_version, feature) (count by (model, model_version, feature, le) (increase(modelmon_feature_value_bucket[W])))
    sum by (model, model_version, output, le) (increase(modelmon_prediction_value_bucket[W]))
    max by (model, model_version, output) (count by (model, model_version, output, le) (increase(modelmon_prediction_value_bucket[W])))
      - min by (model, model_version, output) (count by (model, model_version, output, le) (increase(modelmon_prediction_value_bucket[W])))
    sum by (model, model_version, feature, category) (increase(modelmon_feature_category_total[W]))
    sum by (model, model_version, class) (increase(modelmon_predicted_class_total[W]))

  The ``max - min`` of ``count`` queries (one series per histogram) find histograms whose buckets were summed over
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..baseline import Baseline, CategoricalSummary
from ..catalogue import DRIFT_METHODS, by_name
from ..monitor.collector import le_labels
from .evaluate import BaselineTable, SampleKey, ScoreKey, compute_scores
from .exposition import _BASELINE_SAMPLES as _SAMPLES  # the names scrape mode parses
from .exposition import (
    _BUCKET_RATIO,
    _CATEGORY_RATIO,
    _CLASS_RATIO,
    _FV_BUCKET,
    _PV_BUCKET,
    FEATURE_CATEGORY,
    FEATURE_VALUE,
    PREDICTED_CLASS,
    PREDICTED_CLASS_OUTPUT,
    PREDICTION_VALUE,
    SeriesKey,
)
from .exposition import _FEATURE_CATEGORY as _CATEGORY
from .exposition import _PREDICTED_CLASS as _CLASS
from .promql import PromClient, QueryError, Vector
from .scrape import Windows

__all__ = [
    "ModelSettings",
    "QuerySource",
    "QueryEvaluation",
    "EvaluationFailed",
    "baseline_queries",
    "window_queries",
    "promql_duration",
    "baseline_table_from",
    "DEFAULT_CONCURRENCY",
]

log = logging.getLogger("modelmon.drift")

#: Queries in flight at once, per evaluation.
DEFAULT_CONCURRENCY = 4
#: Relative tolerance of the monotonicity check of cumulative bucket counts.
MONOTONIC_RTOL = 1e-9

_INFO = by_name("modelmon_model_info").name


@dataclass(frozen=True)
class ModelSettings:
    """Per-model overrides from the config file; None means the command-line default."""

    window: float | None = None
    min_samples: int | None = None
    methods: tuple[str, ...] | None = None

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
        "info": f"max by (model, model_version, baseline_id) ({_INFO})",
        "bucket_ratio": f"max by (model, model_version, feature, le) ({_BUCKET_RATIO})",
        "category_ratio": f"max by (model, model_version, feature, category) ({_CATEGORY_RATIO})",
        "class_ratio": f"max by (model, model_version, class) ({_CLASS_RATIO})",
        "samples": f"max by (model, model_version, feature) ({_SAMPLES})",
    }


def window_queries(window: float, matcher: str = "", previous: bool = False) -> dict[str, str]:
    """The count queries of one window (``previous`` adds ``offset W``), by name."""
    w = promql_duration(window)
    sel = "{" + matcher + "}" if matcher else ""
    rng = f"[{w}]" + (f" offset {w}" if previous else "")

    def inc(metric: str) -> str:
        return f"increase({metric}{sel}{rng})"

    def spread(by: str, metric: str) -> str:
        # How unequal the replica counts of a histogram's buckets are: 0 when every
        # bucket was summed over the same replicas. One series per histogram, not
        # per bucket, so the answer is ~20x smaller than the counts themselves.
        counts = f"count by (model, model_version, {by}, le) ({inc(metric)})"
        return (f"max by (model, model_version, {by}) ({counts}) - "
                f"min by (model, model_version, {by}) ({counts})")

    return {
        "feature_value": f"sum by (model, model_version, feature, le) ({inc(_FV_BUCKET)})",
        "feature_value_replicas": spread("feature", _FV_BUCKET),
        "prediction_value": f"sum by (model, model_version, output, le) ({inc(_PV_BUCKET)})",
        "prediction_value_replicas": spread("output", _PV_BUCKET),
        "feature_category":
            f"sum by (model, model_version, feature, category) ({inc(_CATEGORY)})",
        "predicted_class": f"sum by (model, model_version, class) ({inc(_CLASS)})",
    }


def _le(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return None if math.isnan(v) else v


def baseline_table_from(vectors: Mapping[str, Vector]) -> BaselineTable:
    """A :class:`BaselineTable` from the answers of :func:`baseline_queries` (non-finite values dropped)."""
    table = BaselineTable()
    for s in vectors["bucket_ratio"].samples:
        lab = s.labels
        le = _le(lab.get("le"))
        if None in (lab.get("model"), lab.get("model_version"), lab.get("feature"), le):
            continue
        table.bucket_ratio.setdefault((lab["model"], lab["model_version"], lab["feature"]),
                                      {})[le] = s.value  # type: ignore[index]
    for s in vectors["category_ratio"].samples:
        lab = s.labels
        if None in (lab.get("model"), lab.get("model_version"), lab.get("feature"),
                    lab.get("category")):
            continue
        table.category_ratio.setdefault((lab["model"], lab["model_version"], lab["feature"]),
                                        {})[lab["category"]] = s.value
    for s in vectors["class_ratio"].samples:
        lab = s.labels
        if None in (lab.get("model"), lab.get("model_version"), lab.get("class")):
            continue
        table.class_ratio.setdefault((lab["model"], lab["model_version"]),
                                     {})[lab["class"]] = s.value
    for s in vectors["samples"].samples:
        lab = s.labels
        if None in (lab.get("model"), lab.get("model_version"), lab.get("feature")):
            continue
        table.samples[(lab["model"], lab["model_version"], lab["feature"])] = s.value
    return table


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
    return t


def _override(table: BaselineTable, overrides: Sequence[Baseline]) -> BaselineTable:
    """``table`` with every (model, version) of ``overrides`` replaced by the file's baseline."""
    if not overrides:
        return table
    pairs = {(b.model, b.model_version) for b in overrides}
    out = BaselineTable()
    out.bucket_ratio = {k: v for k, v in table.bucket_ratio.items() if k[:2] not in pairs}
    out.category_ratio = {k: v for k, v in table.category_ratio.items() if k[:2] not in pairs}
    out.class_ratio = {k: v for k, v in table.class_ratio.items() if k not in pairs}
    out.samples = {k: v for k, v in table.samples.items() if k[:2] not in pairs}
    for b in overrides:
        t = _table_of_baseline(b)
        out.bucket_ratio.update(t.bucket_ratio)
        out.category_ratio.update(t.category_ratio)
        out.class_ratio.update(t.class_ratio)
        out.samples.update(t.samples)
    return out


class EvaluationFailed(Exception):
    """Some queries of an evaluation failed; nothing of it is used."""

    def __init__(self, errors: Sequence[QueryError]) -> None:
        self.errors = tuple(errors)
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.reason}: {first}{more}")


@dataclass(frozen=True)
class QueryEvaluation:
    """What one successful evaluation found."""

    time: float
    scores: Mapping[ScoreKey, float]
    samples: Mapping[SampleKey, float]
    #: Series skipped in this evaluation, by reason.
    skipped: Mapping[str, int]
    #: ``{(model, model_version): (baseline_id, ...)}`` from ``modelmon_model_info``.
    models: Mapping[tuple[str, str], tuple[str, ...]]
    #: The windows scored, by window length in seconds.
    windows: Mapping[float, Windows] = field(default_factory=dict)
    queries: int = 0


@dataclass
class _Family:
    """Parsed answer of one window query: values per series, plus the bad series."""

    values: dict[SeriesKey, dict[float | str, float]] = field(default_factory=dict)
    bad: dict[SeriesKey, str] = field(default_factory=dict)  # key -> skip reason


class QuerySource:
    """Runs the queries of one evaluation and scores them.

    Parameters
    ----------
    client : PromClient
        The store's query API.
    window, min_samples, methods :
        Defaults for every model.
    models : mapping of model name to ModelSettings
        Per-model overrides (window, min_samples, methods).
    baselines : sequence of Baseline
        ``--baseline`` files; each replaces the store's baseline gauges of its
        (model, model_version).
    concurrency : int
        Queries in flight at once.
    on_skip : callable or None
        ``on_skip(key, reason)`` for every skipped series (for logging).
    """

    def __init__(self, client: PromClient, *, window: float, min_samples: int,
                 methods: Sequence[str] = DRIFT_METHODS,
                 models: Mapping[str, ModelSettings] | None = None,
                 baselines: Sequence[Baseline] = (),
                 concurrency: int = DEFAULT_CONCURRENCY,
                 on_skip: Callable[[SeriesKey, str], None] | None = None) -> None:
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
        self._groups = self._window_groups()

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

    def fetch(self, t: float) -> dict[str, Vector]:
        """Run every query at time ``t``; :class:`EvaluationFailed` if any fails.

        At most ``concurrency`` queries are in flight; after the first failure
        no further query is started (the store is likely down or overloaded).
        """
        todo = list(self.queries().items())
        todo.reverse()  # pop() from the end keeps the documented order
        results: dict[str, Vector] = {}
        errors: list[QueryError] = []
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="modelmon-drift-query") as pool:
            running: dict[Future[Vector], str] = {}
            while todo or running:
                while todo and not errors and len(running) < self.concurrency:
                    name, expr = todo.pop()
                    running[pool.submit(self.client.query, expr, t)] = name
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
        for name, vec in results.items():
            for w in vec.warnings:
                log.warning("event=query_warning query=%r warning=%r", name, w)
        return results

    def evaluate(self, t: float) -> QueryEvaluation:
        """Fetch at time ``t`` and score every series of every window group."""
        vectors = self.fetch(t)
        return self.score(t, vectors)

    def score(self, t: float, vectors: Mapping[str, Vector]) -> QueryEvaluation:
        """Score the answers of :meth:`queries` (separate from :meth:`fetch` for tests)."""
        skipped: Counter[str] = Counter()

        def skip(key: SeriesKey, reason: str) -> None:
            skipped[reason] += 1
            if self.on_skip is not None:
                self.on_skip(key, reason)

        models: dict[tuple[str, str], set[str]] = {}
        for s in vectors["info"].samples:
            lab = s.labels
            if "model" in lab and "model_version" in lab:
                models.setdefault((lab["model"], lab["model_version"]), set()).add(
                    lab.get("baseline_id", ""))
        overridden = {(b.model, b.model_version) for b in self.baselines}
        for (m, v), ids in models.items():
            for b in self.baselines:
                if (b.model, b.model_version) == (m, v) and ids - {b.id}:
                    log.debug("event=baseline_overridden model=%r model_version=%r "
                              "store_baseline_ids=%r file_baseline_id=%r", m, v, sorted(ids), b.id)
        conflict = {mv for mv, ids in models.items() if len(ids) > 1 and mv not in overridden}
        table = _override(baseline_table_from(vectors), self.baselines)

        scores: dict[ScoreKey, float] = {}
        samples: dict[SampleKey, float] = {}
        windows_by_w: dict[float, Windows] = {}
        for w, _ in self._groups:
            d = promql_duration(w)
            cur = _families(vectors, f"{d}/current")
            prev = _families(vectors, f"{d}/previous")
            in_group = (lambda m, w=w: self.window_of(m) == w)
            windows, prev_bad = _windows(cur, prev, table, w, in_group, conflict, skip)
            windows_by_w[w] = windows
            by_ms: dict[int, list[SeriesKey]] = {}
            for key in windows.current:
                by_ms.setdefault(self.min_samples_of(key.model), []).append(key)
            for ms, keys in sorted(by_ms.items()):
                sub = windows if len(by_ms) == 1 else _restrict(windows, keys)
                sc, sa = compute_scores(sub, table, ms, skip, prev_bad)
                for sk, score in sc.items():
                    if sk.method in self.methods_of(sk.model):
                        scores[sk] = score
                samples.update(sa)
        rank = {m: i for i, m in enumerate(DRIFT_METHODS)}
        ordered = dict(sorted(scores.items(), key=lambda kv: (kv[0][:4], kv[0].reference,
                                                              rank[kv[0].method])))
        return QueryEvaluation(
            time=t,
            scores=MappingProxyType(ordered),
            samples=MappingProxyType(dict(sorted(samples.items()))),
            skipped=MappingProxyType(dict(skipped)),
            models=MappingProxyType({k: tuple(sorted(v)) for k, v in sorted(models.items())}),
            windows=MappingProxyType(windows_by_w),
            queries=len(vectors),
        )


# --------------------------------------------------------------------------- parsing


def _families(vectors: Mapping[str, Vector], prefix: str) -> dict[str, _Family]:
    """The window answers under ``prefix`` parsed per family."""
    out: dict[str, _Family] = {}
    specs = {
        "feature_value": (FEATURE_VALUE, "feature", "le"),
        "prediction_value": (PREDICTION_VALUE, "output", "le"),
        "feature_category": (FEATURE_CATEGORY, "feature", "category"),
        "predicted_class": (PREDICTED_CLASS, None, "class"),
    }
    for name, (fam_id, series_label, bucket_label) in specs.items():
        fam = _Family()
        vec = vectors[f"{prefix}/{name}"]
        numeric = bucket_label == "le"

        def key_of(lab: Mapping[str, str], fam_id: str = fam_id,
                   series_label: str | None = series_label) -> SeriesKey | None:
            m, v = lab.get("model"), lab.get("model_version")
            series = PREDICTED_CLASS_OUTPUT if series_label is None else lab.get(series_label)
            if m is None or v is None or series is None:
                return None
            return SeriesKey(m, v, fam_id, series)

        for s in vec.samples:
            key = key_of(s.labels)
            if key is None:
                continue
            bucket: float | str | None = (_le(s.labels.get("le")) if numeric
                                          else s.labels.get(bucket_label))
            if bucket is None:
                fam.bad.setdefault(key, "missing_buckets")
                continue
            values = fam.values.setdefault(key, {})
            if bucket in values:  # two le strings for one bound ("1" and "1.0")
                fam.bad.setdefault(key, "partial_buckets")
            values[bucket] = s.value
        for lab in vec.non_finite:
            key = key_of(lab)
            if key is not None:
                fam.bad[key] = "non_finite"
        if numeric:
            replicas = vectors[f"{prefix}/{name}_replicas"]
            for s in replicas.samples:  # the spread of replica counts over the buckets
                if s.value != 0:
                    key = key_of(s.labels)
                    if key is not None:
                        fam.bad.setdefault(key, "partial_buckets")
        out[name] = fam
    return out


def _histogram(values: Mapping[float | str, float],
               baseline_les: Iterable[float] | None) -> tuple[tuple[float, ...], np.ndarray] | str:
    """``(les, per-bucket counts)`` of cumulative bucket counts, or a skip reason."""
    les = tuple(sorted(values))  # type: ignore[type-var]
    if len(les) < 2 or les[-1] != math.inf:
        return "missing_buckets"
    if baseline_les is not None:
        bl = set(baseline_les)
        if set(les) < bl:
            return "missing_buckets"
    cum = np.fromiter((values[le] for le in les), dtype=np.float64, count=len(les))
    per = np.diff(cum, prepend=0.0)
    tol = MONOTONIC_RTOL * max(1.0, float(np.abs(cum).max()))
    if (per < -tol).any():
        return "non_monotonic"
    return les, np.maximum(per, 0.0)  # type: ignore[return-value]


def _windows(cur: Mapping[str, _Family], prev: Mapping[str, _Family], table: BaselineTable,
             window: float, in_group: Callable[[str], bool],
             conflict: set[tuple[str, str]],
             skip: Callable[[SeriesKey, str], None]) -> tuple[Windows, frozenset[SeriesKey]]:
    """The :class:`Windows` of one window group, and the series whose previous window is unusable."""
    labels: dict[SeriesKey, tuple[float | str, ...]] = {}
    current: dict[SeriesKey, np.ndarray] = {}
    previous: dict[SeriesKey, np.ndarray] = {}
    prev_bad: set[SeriesKey] = set()
    for name, fam in cur.items():
        pfam = prev[name]
        keys = sorted(set(fam.values) | set(fam.bad))
        for key in keys:
            if not in_group(key.model):
                continue
            if (key.model, key.model_version) in conflict:
                skip(key, "baseline_conflict")
                continue
            if key in fam.bad:
                skip(key, fam.bad[key])
                continue
            values = fam.values[key]
            if key.numeric:
                bl = table.bucket_ratio.get((key.model, key.model_version, key.name))
                got = _histogram(values, None if bl is None else bl.keys())
                if isinstance(got, str):
                    skip(key, got)
                    continue
                labs, counts = got
            else:
                labs = tuple(sorted(values))  # type: ignore[type-var,arg-type]
                counts = np.fromiter((values[c] for c in labs), dtype=np.float64,
                                     count=len(labs))
            labels[key] = labs
            current[key] = counts
            # the previous window of the same series, on the same buckets
            if key in pfam.bad:
                skip(key, pfam.bad[key])
                prev_bad.add(key)
                continue
            pvalues = pfam.values.get(key)
            if pvalues is None:
                continue  # no data in the previous window: zero counts
            if key.numeric:
                pgot = _histogram(pvalues, labs)  # type: ignore[arg-type]
                if isinstance(pgot, str) or pgot[0] != labs:
                    reason = pgot if isinstance(pgot, str) else "baseline_mismatch"
                    skip(key, reason)
                    prev_bad.add(key)
                    continue
                previous[key] = pgot[1]
            else:
                if not set(pvalues) <= set(labs):
                    skip(key, "baseline_mismatch")
                    prev_bad.add(key)
                    continue
                previous[key] = np.fromiter((pvalues.get(c, 0.0) for c in labs),
                                            dtype=np.float64, count=len(labs))
    return Windows(
        labels=MappingProxyType(labels),
        current=MappingProxyType(current),
        previous=MappingProxyType(previous),
        current_seconds=window,
        previous_seconds=window,
    ), frozenset(prev_bad)


def _restrict(windows: Windows, keys: Iterable[SeriesKey]) -> Windows:
    ks = set(keys)
    prev = windows.previous or {}
    return Windows(
        labels=MappingProxyType({k: v for k, v in windows.labels.items() if k in ks}),
        current=MappingProxyType({k: v for k, v in windows.current.items() if k in ks}),
        previous=MappingProxyType({k: v for k, v in prev.items() if k in ks}),
        current_seconds=windows.current_seconds,
        previous_seconds=windows.previous_seconds,
    )
