"""Monitor: the in-process hot path from events to count arrays.

Events are buffered as they come (one lock, one list append) and folded into
preallocated numpy count arrays in vectorised batches: when the buffer reaches
``flush_at`` events, and always before a scrape, so /metrics shows exactly what
was observed. Bad values never raise into the caller (unless ``strict=True``):
each is counted as a schema violation with its reason, and the rest of the
event is still counted.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from itertools import repeat
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client.registry import REGISTRY, CollectorRegistry

from ..baseline import (
    OTHER,
    Baseline,
    CategoricalSummary,
    NumericSummary,
    category_key,
    columns_of,
)
from ..catalogue import EXPIRE_REASONS, LATENCY_BUCKETS, UNKNOWN
from .joinstore import JoinStore, MemoryJoinStore, Remembered
from .labels import LabelResult, LabelState, Segment

__all__ = ["Monitor", "SchemaViolationError"]

log = logging.getLogger("modelmon.monitor")

_NUMERIC_TYPES = (int, float, np.integer, np.floating)  # bool is an int: accepted as 0/1
#: Model versions per model whose labelled predictions are counted apart; predictions of
#: further versions still remembered when their labels come are counted as ``__other__``.
MAX_LABEL_VERSIONS = 8
#: Longest accepted prediction id.
MAX_ID_LENGTH = 128


_FAST_TYPES = {float, int, bool}
_STR_OR_NONE = frozenset({str, type(None)})


class SchemaViolationError(ValueError):
    """Raised by ``strict=True`` monitors; lists every violation of the event or batch."""


class _Numeric:
    """Count arrays of one numeric column (feature or output)."""

    __slots__ = ("name", "edges", "counts", "sum", "lo", "hi", "required", "out_of_range")

    def __init__(self, s: NumericSummary) -> None:
        self.name = s.name
        self.edges = np.asarray(s.edges, dtype=np.float64)
        self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
        self.sum = 0.0
        self.lo, self.hi = s.min, s.max
        self.required = s.missing_fraction == 0.0
        self.out_of_range = 0

    def add(self, v: np.ndarray) -> None:
        if v.size:
            # Sort once, then find each bound in the sorted values: cheaper than a
            # binary search per value (branch-unpredictable on real traffic).
            # searchsorted(..., "right") at a bound counts values <= bound: le.
            s = np.sort(v)
            below = np.searchsorted(s, self.edges, side="right")
            self.counts[:-1] += np.diff(below, prepend=0)
            self.counts[-1] += s.size - below[-1]
            self.sum += float(s.sum())
            self.out_of_range += int(np.searchsorted(s, self.lo, side="left")
                                     + s.size - np.searchsorted(s, self.hi, side="right"))


class _Categorical:
    """Count array of one categorical column; the last slot is ``__other__``."""

    __slots__ = ("name", "labels", "lookup", "counts", "required")

    def __init__(self, s: CategoricalSummary) -> None:
        self.name = s.name
        self.labels = s.labels
        self.lookup = {c: i for i, c in enumerate(s.categories)}
        self.counts = np.zeros(len(self.labels), dtype=np.int64)
        self.required = s.missing_fraction == 0.0


class _Problems:
    """Violation and missing counts gathered while folding one batch."""

    __slots__ = ("violations", "messages", "keep_messages")

    def __init__(self, keep_messages: bool) -> None:
        self.violations: dict[tuple[str, str], int] = {}
        self.messages: list[str] = []
        self.keep_messages = keep_messages

    def violation(self, feature: str, reason: str, n: int = 1, detail: str = "") -> None:
        key = (feature, reason)
        self.violations[key] = self.violations.get(key, 0) + n
        if self.keep_messages and len(self.messages) < 20:
            self.messages.append(f"{feature}: {reason}" + (f" ({detail})" if detail else ""))


class ModelState:
    """Everything counted for one model version. Read by the collector under ``lock``."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.model = baseline.model
        self.version = baseline.model_version
        self.numeric = {n: _Numeric(s) for n, s in baseline.numeric_features.items()}
        self.categorical = {n: _Categorical(s) for n, s in baseline.categorical_features.items()}
        # Layout of the numeric features in one flat count vector (_add_numeric_matrix).
        nums = list(self.numeric.values())
        self._offsets = np.concatenate(([0], np.cumsum([c.counts.size for c in nums]))).astype(int)
        self._lo = np.array([c.lo for c in nums], dtype=np.float64)
        self._hi = np.array([c.hi for c in nums], dtype=np.float64)
        self.feature_names = list(baseline.features)
        self.n_features = len(self.feature_names)
        self.outputs = {n: _Numeric(s) for n, s in baseline.numeric_outputs.items()}
        self.prob_names = list(baseline.probabilities)
        pred = baseline.prediction
        self.pred_numeric = isinstance(pred, NumericSummary)
        self.pred_name = pred.name if pred is not None else None
        self.classes = _Categorical(pred) if isinstance(pred, CategoricalSummary) else None
        self.predictions = 0
        self.latency_edges = np.asarray(LATENCY_BUCKETS, dtype=np.float64)
        self.latency = np.zeros(len(LATENCY_BUCKETS) + 1, dtype=np.int64)
        self.latency_sum = 0.0
        self.missing = {n: 0 for n in self.feature_names}
        # The bounded set of violation series, all exported from the start at 0.
        fields = self.feature_names + list(self.outputs) + (
            [self.pred_name] if self.classes is not None and self.pred_name else [])
        self.violations: dict[tuple[str, str], int] = {(UNKNOWN, "unknown_feature"): 0,
                                                       ("id", "wrong_type"): 0}
        for f in fields:
            for reason in ("wrong_type", "non_finite", "missing_required"):
                self.violations[(f, reason)] = 0
        self.buffer: list[tuple[Any, Any, Any, Any]] = []
        self.lock = threading.Lock()        # counts, and the buffer swap
        self.buffer_lock = threading.Lock()  # appends
        # ground truth: predictions with an id wait in ``remember`` until put in the join store
        self.segments: tuple[Segment, ...] = ()
        self.remember: list[tuple[str, Remembered]] = []
        self.label_states: dict[str, LabelState] = {}
        #: Set once an id or a label came: the ground-truth series are exported from then on.
        self.labelled = False
        self.unmatched = 0
        self.expired: dict[tuple[str, str], int] = {(self.version, r): 0 for r in EXPIRE_REASONS}
        self.score_name = (next(iter(baseline.probabilities))
                           if len(baseline.probabilities) == 1 else None)

    def predicted_of(self, prediction: Any) -> str | float | None:
        """The predicted class (classifier) or value (regressor) as the join store keeps it."""
        if self.classes is not None:
            try:
                return category_key(prediction)
            except TypeError:
                return None
        if isinstance(prediction, (int, float, np.number)) and not isinstance(prediction, bool):
            f = float(prediction)
            return f if math.isfinite(f) else None
        return None

    def score_of(self, probabilities: Any) -> float | None:
        """The one score output's value in an event's ``probabilities``, if any."""
        if self.score_name is None or probabilities is None:
            return None
        p = probabilities
        if isinstance(p, Mapping):
            p = p.get(self.score_name)
        elif isinstance(p, (list, tuple, np.ndarray)):
            p = p[0] if len(p) == 1 else None
        if isinstance(p, (int, float, np.number)) and not isinstance(p, bool):
            f = float(p)
            return f if math.isfinite(f) else None
        return None

    def _predicted_column(self, predictions: Sequence[Any], keep: list[int],
                          whole: bool) -> Sequence[str | float | None]:
        if not len(predictions):
            return [None] * len(keep)
        col = predictions.tolist() if isinstance(predictions, np.ndarray) else predictions
        if not whole:
            col = [col[i] for i in keep]
        if self.classes is not None and set(map(type, col)) <= _STR_OR_NONE:
            return col  # class strings as they are (the common case)
        return list(map(self.predicted_of, col))

    def _score_column(self, probabilities: Sequence[Any] | np.ndarray, keep: list[int],
                      whole: bool) -> Sequence[float | None]:
        if self.score_name is None or not len(probabilities):
            return [None] * len(keep)
        if isinstance(probabilities, np.ndarray) and probabilities.ndim == 1 \
                and probabilities.dtype.kind == "f":
            a = probabilities if whole else probabilities[keep]
            vals = a.tolist()
            if np.isfinite(a).all():
                return vals
            return [v if math.isfinite(v) else None for v in vals]
        col = probabilities if whole else [probabilities[i] for i in keep]
        return list(map(self.score_of, col))

    def remember_rows(self, ids: Sequence[Any], column: Callable[[str], Sequence[Any]],
                      predictions: Sequence[Any], probabilities: Sequence[Any],
                      timestamps: Sequence[Any] | None, now: float,
                      problems: _Problems) -> None:
        """Queue the events with an id for the join store (``column(feature)`` gives a
        segmenting feature's values, one per event)."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if None in ids:
            keep = [i for i, x in enumerate(ids) if x is not None]
            if not keep:
                return
        else:
            keep = list(range(len(ids)))
        self.labelled = True
        lengths = list(map(len, ids)) if set(map(type, ids)) == {str} else None
        if lengths is not None and min(lengths) > 0 and max(lengths) <= MAX_ID_LENGTH:
            bad: list[int] = []  # the common case: every id a usable string
        else:
            bad = [i for i in keep if type(ids[i]) is not str or not ids[i]
                   or len(ids[i]) > MAX_ID_LENGTH]
        if bad:
            problems.violation("id", "wrong_type", len(bad),
                               f"expected a non-empty string of at most {MAX_ID_LENGTH} characters")
            drop = set(bad)
            keep = [i for i in keep if i not in drop]
        k = len(keep)
        whole = k == len(ids)
        if self.segments:
            cols = [[sg.value_of(v) for v in column(sg.feature)] for sg in self.segments]
            segs: Sequence[tuple[str, ...]] = list(zip(*cols))
            if not whole:
                segs = [segs[i] for i in keep]
        else:
            segs = [()] * k
        preds = self._predicted_column(predictions, keep, whole)
        scores = self._score_column(probabilities, keep, whole)
        if timestamps is None:
            tss: Sequence[float] = [now] * k
        else:
            tss = [now if timestamps[i] is None else float(timestamps[i]) for i in keep]
        sel = ids if whole else [ids[i] for i in keep]
        # tuple.__new__ makes the named tuples in C (their own __new__ is a Python lambda)
        rows = list(zip(sel, map(tuple.__new__, repeat(Remembered, k),
                                 zip(repeat(self.version, k), preds, scores, segs, tss))))
        with self.buffer_lock:
            self.remember.extend(rows)

    def label_state(self, version: str, detectors: Callable[[], Mapping[str, Any]]) -> LabelState:
        """The counts of predictions made by ``version`` (the current one, or an earlier one
        whose predictions were still remembered; at most MAX_LABEL_VERSIONS per model)."""
        ls = self.label_states.get(version)
        if ls is None:
            if version != self.version and len(self.label_states) >= MAX_LABEL_VERSIONS:
                version = OTHER
                ls = self.label_states.get(version)
                if ls is not None:
                    return ls
            ls = self.label_states[version] = LabelState(self.baseline, version, self.segments,
                                                         detectors())
        return ls

    # -- folding ----------------------------------------------------------------

    def take_buffer(self) -> list[tuple[Any, Any, Any, Any]]:
        with self.buffer_lock:
            buf, self.buffer = self.buffer, []
        return buf

    def fold(self, events: list[tuple[Any, Any, Any, Any]], problems: _Problems) -> None:
        """Fold buffered single events (call with ``lock`` held)."""
        n = len(events)
        if not n:
            return
        feats, preds, probs, lats = zip(*events)
        self._ingest(n, self._columns(feats, problems), problems)
        self._ingest_outputs(n, preds, probs, problems)
        self._ingest_latency(lats)
        self.predictions += n

    def _columns(self, feats: Sequence[Any], problems: _Problems) -> dict[str, list[Any]]:
        """Feature values as one list per baseline feature; ``None`` where absent."""
        names = self.feature_names
        nf = self.n_features
        try:
            if set(map(len, feats)) == {nf}:
                # Every event has nf keys; if each baseline name is found in every
                # event, the key sets are exactly the baseline's.
                return {k: [f[k] for f in feats] for k in names}
        except (KeyError, TypeError):
            pass
        known = set(names)
        unknown = 0
        good: list[Mapping[str, Any]] = []
        for f in feats:
            if isinstance(f, Mapping):
                good.append(f)
                if len(f) > nf or not known.issuperset(f):
                    unknown += sum(1 for k in f if k not in known)
            else:
                good.append({})
                problems.violation(UNKNOWN, "unknown_feature", 1,
                                   f"features: expected a mapping, got {type(f).__name__}")
        if unknown:
            problems.violation(UNKNOWN, "unknown_feature", unknown)
        return {k: [f.get(k) for f in good] for k in names}

    def _ingest(self, n: int, columns: Mapping[str, Any], problems: _Problems) -> None:
        for name, col in columns.items():
            num = self.numeric.get(name)
            if num is not None:
                values = _numeric_column(name, col, n, num.required, problems)
                num.add(values)
                if values.size != n:
                    self.missing[name] += n - values.size
            else:
                cat = self.categorical[name]
                idx = _categorical_column(name, col, n, cat.lookup, len(cat.labels) - 1,
                                          cat.required, problems)
                cat.counts += np.bincount(idx, minlength=cat.counts.size)
                if idx.size != n:
                    self.missing[name] += n - idx.size

    def ingest_validated(self, n: int, numeric: Mapping[str, np.ndarray] | np.ndarray,
                         categorical: Mapping[str, list[Any]], problems: _Problems) -> None:
        """Fold pre-validated columns (call with ``lock`` held).

        ``numeric`` holds one float64 array per numeric feature (or one ``(n, k)``
        matrix of them in baseline order), NaN where the value is missing (the caller has rejected real non-finite values);
        ``categorical`` one list per categorical feature, ``None`` where missing.
        """
        if isinstance(numeric, np.ndarray):
            self._add_numeric_matrix(numeric, problems)
            numeric = {}
        for name, a in numeric.items():
            num = self.numeric[name]
            present = ~np.isnan(a)
            vals = a if present.all() else a[present]
            num.add(vals)
            miss = n - vals.size
            if miss:
                self.missing[name] += miss
                if num.required:
                    problems.violation(name, "missing_required", miss)
        for name, col in categorical.items():
            cat = self.categorical[name]
            fast = _category_counts(col, cat.lookup, cat.counts.size)
            if fast is not None:
                cat.counts += fast[0]
                if fast[1]:
                    self.missing[name] += fast[1]
                    if cat.required:
                        problems.violation(name, "missing_required", fast[1])
                continue
            idx = _categorical_column(name, col, n, cat.lookup, len(cat.labels) - 1,
                                      cat.required, problems)
            cat.counts += np.bincount(idx, minlength=cat.counts.size)
            if idx.size != n:
                self.missing[name] += n - idx.size

    def _add_numeric_matrix(self, m: np.ndarray, problems: _Problems) -> None:
        """Fold an ``(n, k)`` matrix of the numeric features (baseline order, NaN =
        missing): one binary search per column, one bincount for all of them."""
        nums = list(self.numeric.values())
        offsets = self._offsets
        isnan = np.isnan(m)
        miss = isnan.sum(axis=0)
        parts = []
        for j, num in enumerate(nums):
            col = m[:, j]
            if miss[j]:
                col = col[~isnan[:, j]]
            parts.append(np.searchsorted(num.edges, col, side="left") + offsets[j])
        counts = np.bincount(np.concatenate(parts), minlength=int(offsets[-1]))
        sums = np.where(isnan, 0.0, m).sum(axis=0)
        with np.errstate(invalid="ignore"):
            oor = ((m < self._lo) | (m > self._hi)).sum(axis=0)
        for j, num in enumerate(nums):
            num.counts += counts[offsets[j]:offsets[j + 1]]
            num.sum += float(sums[j])
            num.out_of_range += int(oor[j])
            if miss[j]:
                k = int(miss[j])
                self.missing[num.name] += k
                if num.required:
                    problems.violation(num.name, "missing_required", k)

    def _ingest_outputs(self, n: int, preds: Sequence[Any], probs: Sequence[Any],
                        problems: _Problems) -> None:
        if any(p is not None for p in preds):
            present = [p for p in preds if p is not None]
            if self.pred_name is None:
                problems.violation(UNKNOWN, "unknown_feature", len(present), "prediction")
            elif self.classes is not None:
                c = self.classes
                fast = _category_counts(present, c.lookup, c.counts.size)
                if fast is not None:
                    c.counts += fast[0]
                else:
                    idx = _categorical_column(self.pred_name, present, len(present), c.lookup,
                                              len(c.labels) - 1, False, problems)
                    c.counts += np.bincount(idx, minlength=c.counts.size)
            else:
                out = self.outputs[self.pred_name]
                out.add(_numeric_column(self.pred_name, present, len(present), False, problems))
        if len(self.prob_names) == 1 and isinstance(probs, np.ndarray):
            # observe_batch with one score column: stays a numpy array end to end
            k = self.prob_names[0]
            self.outputs[k].add(_numeric_column(k, probs, probs.size, False, problems))
            return
        if len(self.prob_names) == 1 and probs and set(map(type, probs)) <= _FAST_TYPES:
            k = self.prob_names[0]
            self.outputs[k].add(_numeric_column(k, probs, len(probs), False, problems))
            return
        if any(p is not None for p in probs):
            cols: dict[str, list[Any]] = {k: [] for k in self.prob_names}
            for p in probs:
                if p is None:
                    continue
                if isinstance(p, Mapping):
                    for k, v in p.items():
                        col = cols.get(k)
                        if col is None:
                            problems.violation(UNKNOWN, "unknown_feature", 1, f"probabilities.{k}")
                        else:
                            col.append(v)
                elif isinstance(p, (list, tuple, np.ndarray)):
                    if len(p) != len(self.prob_names):
                        problems.violation(UNKNOWN, "unknown_feature", 1,
                                           f"probabilities: {len(p)} values for "
                                           f"{len(self.prob_names)} score outputs")
                        continue
                    for k, v in zip(self.prob_names, p):
                        cols[k].append(v)
                elif len(self.prob_names) == 1:
                    cols[self.prob_names[0]].append(p)
                else:
                    problems.violation(UNKNOWN, "unknown_feature", 1,
                                       "probabilities: a single number for several score outputs")
            for k, col in cols.items():
                if col:
                    self.outputs[k].add(_numeric_column(k, col, len(col), False, problems))

    def _ingest_latency(self, lats: Sequence[Any] | np.ndarray) -> None:
        if isinstance(lats, np.ndarray):  # validated by the caller: finite, >= 0
            a = lats
        else:
            vals = [v for v in lats if v is not None and type(v) in (int, float)
                    and 0 <= v < math.inf]
            a = np.asarray(vals, dtype=np.float64)
        if a.size:
            self.latency += np.bincount(np.searchsorted(self.latency_edges, a, side="left"),
                                        minlength=self.latency.size)
            self.latency_sum += float(a.sum())

    def record(self, problems: _Problems) -> None:
        for key, n in problems.violations.items():
            if key in self.violations:
                self.violations[key] += n
            else:  # an output field we do not export: keep the set bounded
                self.violations[(UNKNOWN, "unknown_feature")] += n


def _numeric_column(name: str, col: Any, n: int, required: bool,
                    problems: _Problems) -> np.ndarray:
    """Finite float values of a column; problems counted. Fast path for clean data."""
    if isinstance(col, np.ndarray):
        if col.dtype.kind not in "fiub" or col.ndim != 1:
            return _numeric_slow(name, col.tolist() if col.ndim == 1 else list(col), required,
                                 problems)
        a = col.astype(np.float64, copy=False)
    else:
        # Check the element types first (at C speed): np.asarray on arbitrary input
        # would parse "1.5" as a number and turn a list holding a 1 MB string into a
        # huge fixed-width array.
        if not set(map(type, col)) <= _FAST_TYPES:
            return _numeric_slow(name, list(col), required, problems)
        a = np.array(col, dtype=np.float64)
    finite = np.isfinite(a)
    if finite.all():
        return a
    bad = int(n - np.count_nonzero(finite))
    problems.violation(name, "non_finite", bad, "NaN or infinite value")
    return a[finite]


def _numeric_slow(name: str, values: list[Any], required: bool, problems: _Problems) -> np.ndarray:
    good: list[float] = []
    missing = wrong = nonfinite = 0
    example = None
    for v in values:
        if v is None:
            missing += 1
        elif isinstance(v, _NUMERIC_TYPES):
            f = float(v)
            if math.isfinite(f):
                good.append(f)
            else:
                nonfinite += 1
        else:
            wrong += 1
            example = v
    if missing and required:
        problems.violation(name, "missing_required", missing)
    if wrong:
        problems.violation(name, "wrong_type", wrong,
                           f"expected a number, got {type(example).__name__}")
    if nonfinite:
        problems.violation(name, "non_finite", nonfinite, "NaN or infinite value")
    return np.asarray(good, dtype=np.float64)


def _category_counts(col: Sequence[Any], lookup: Mapping[str, int], size: int
                     ) -> tuple[np.ndarray, int] | None:
    """(counts per category slot, missing) of a column of strings and ``None``s, by
    counting distinct values first (C speed); ``None`` for other columns. The
    last slot is ``__other__``."""
    if not set(map(type, col)) <= _STR_OR_NONE:
        return None
    counts = np.zeros(size, dtype=np.int64)
    missing = 0
    get = lookup.get
    for v, k in Counter(col).items():
        if v is None:
            missing = k
        else:
            counts[get(v, size - 1)] += k
    return counts, missing


def _categorical_column(name: str, col: Any, n: int, lookup: Mapping[str, int], other: int,
                        required: bool, problems: _Problems) -> np.ndarray:
    """Category indices of the usable values; problems counted."""
    values = col.tolist() if isinstance(col, np.ndarray) else col
    get = lookup.get
    try:
        idx = [get(v, -1) for v in values]
    except TypeError:  # an unhashable value (list, dict)
        idx = [-1] * n
    a = np.asarray(idx, dtype=np.intp)
    rest = np.flatnonzero(a < 0)
    if not rest.size:
        return a
    missing = wrong = nonfinite = 0
    example = None
    keep = np.ones(n, dtype=bool)
    for i in rest.tolist():
        v = values[i]
        try:
            key = category_key(v)
        except TypeError:
            key = None
            if isinstance(v, float):
                nonfinite += 1
            else:
                wrong += 1
                example = v
            keep[i] = False
            continue
        if key is None:
            if v is None:
                missing += 1
            else:  # NaN
                nonfinite += 1
            keep[i] = False
        else:
            a[i] = get(key, other)
    if missing and required:
        problems.violation(name, "missing_required", missing)
    if wrong:
        problems.violation(name, "wrong_type", wrong,
                           f"expected a string, number or bool, got {type(example).__name__}")
    if nonfinite:
        problems.violation(name, "non_finite", nonfinite, "NaN or infinite value")
    return a[keep]


class Monitor:
    """Counts features, predictions and latency of one or more models for Prometheus.

    Parameters
    ----------
    baselines : Baseline or sequence of Baseline
        One baseline per monitored model (one version per model name).
    registry : CollectorRegistry or None
        Where to register the collector (default: prometheus_client's global
        registry). ``None`` registers nothing; use :attr:`collector` yourself.
    strict : bool
        Raise :class:`SchemaViolationError` on bad values (after counting them)
        instead of only counting them. For tests and development.
    clock : callable
        Source of time (seconds); used to time :meth:`timer` blocks.
    flush_at : int
        Buffered single events are folded into the count arrays at this many
        events, and always before a scrape.
    join_store : JoinStore or None
        Where predictions observed with an ``id`` wait for their label
        (:mod:`modelmon.monitor.joinstore`); None: a bounded in-memory store,
        made when the first id comes.
    segments : sequence of Segment, or mapping of model name to them
        Segments the labelled predictions are also counted under (besides
        ``segment="all"``); a sequence applies to every model that has the
        feature.
    concept_drift : bool
        Run the concept-drift detectors (Page-Hinkley and ADWIN) on the
        per-label error stream of each model version.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> b = Baseline.build({"x": [1.0, 2.0, 3.0, 4.0]}, model="m", bins=2)
    >>> reg = CollectorRegistry()
    >>> mon = Monitor(b, registry=reg)
    >>> mon.observe({"x": 2.5})
    >>> mon.observe({"x": "oops"})
    >>> reg.get_sample_value("modelmon_feature_value_bucket",
    ...                      {"model": "m", "model_version": "1", "feature": "x", "le": "+Inf"})
    1.0
    >>> reg.get_sample_value("modelmon_schema_violations_total", {"model": "m",
    ...     "model_version": "1", "feature": "x", "reason": "wrong_type"})
    1.0
    """

    def __init__(
        self,
        baselines: Baseline | Sequence[Baseline],
        *,
        registry: CollectorRegistry | None = REGISTRY,
        strict: bool = False,
        clock: Callable[[], float] = time.time,
        flush_at: int = 1000,
        join_store: JoinStore | None = None,
        segments: Sequence[Segment] | Mapping[str, Sequence[Segment]] = (),
        concept_drift: bool = True,
    ) -> None:
        from .collector import MonitorCollector

        items = [baselines] if isinstance(baselines, Baseline) else list(baselines)
        if not items:
            raise ValueError("Monitor needs at least one baseline")
        self._models: dict[str, ModelState] = {}
        for b in items:
            if not isinstance(b, Baseline):
                raise TypeError(f"expected Baseline objects, got {type(b).__name__}")
            if b.model in self._models:
                raise ValueError(f"model {b.model!r} given twice: one Monitor serves one version "
                                 "per model")
            self._models[b.model] = ModelState(b)
        self._default = items[0].model if len(items) == 1 else None
        self._set_segments(segments)
        self._join_store = join_store
        self._join_lock = threading.Lock()
        self.concept_drift = concept_drift
        self.strict = strict
        self.clock = clock
        self.flush_at = max(1, int(flush_at))
        self._flush_hooks: list[Callable[[], None]] = []
        self.collector = MonitorCollector(self)
        self.registry = registry
        if registry is not None:
            registry.register(self.collector)

    # -- public API -------------------------------------------------------------

    @property
    def models(self) -> dict[str, Baseline]:
        """Baselines by model name."""
        return {n: s.baseline for n, s in self._models.items()}

    def _state(self, model: str | None) -> ModelState:
        if model is None:
            if self._default is None:
                raise ValueError(f"this Monitor serves several models; pass model= one of "
                                 f"{sorted(self._models)}")
            return self._models[self._default]
        st = self._models.get(model)
        if st is None:
            raise KeyError(f"unknown model {model!r}; configured: {sorted(self._models)}")
        return st

    def observe(
        self,
        features: Mapping[str, Any],
        *,
        prediction: Any = None,
        probabilities: Any = None,
        latency_seconds: float | None = None,
        id: str | None = None,
        model: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Count one event.

        Parameters
        ----------
        features : mapping of feature name to value
            Numbers for numeric features; strings, numbers or bools for
            categorical ones; ``None`` (or leaving a feature out) for missing.
        prediction : optional
            The predicted class (classification) or value (regression).
        probabilities : optional
            The score of the positive class (one score output), a sequence
            aligned with the baseline's score columns, or a mapping of score
            column name to value.
        latency_seconds : float, optional
            Inference time of this event.
        id : str, optional
            Prediction id: the prediction is remembered in the join store until
            :meth:`record_label` brings its label (or the store's TTL ends).
        model : str, optional
            Model name; required when the Monitor serves several models.
        timestamp : float, optional
            When the prediction was made (seconds since the epoch), for the label
            delay; default now.
        """
        st = self._models[self._default] if model is None and self._default else self._state(model)
        if id is not None:
            problems = _Problems(self.strict)
            st.remember_rows([id], lambda f: [features.get(f) if isinstance(features, Mapping)
                                              else None], [prediction], [probabilities],
                             [timestamp], float(self.clock()), problems)
            if problems.violations:
                with st.lock:
                    st.record(problems)
                if self.strict:
                    raise SchemaViolationError("; ".join(problems.messages))
        if self.strict:
            self._fold_now(st, [(features, prediction, probabilities, latency_seconds)])
            return
        with st.buffer_lock:
            buf = st.buffer
            buf.append((features, prediction, probabilities, latency_seconds))
            full = len(buf) >= self.flush_at
        if full:
            self.flush(model)

    def observe_batch(
        self,
        features: Any,
        *,
        predictions: Any = None,
        probabilities: Any = None,
        latency_seconds: Any = None,
        model: str | None = None,
        ids: Any = None,
        timestamps: Any = None,
    ) -> None:
        """Count a batch of events given as columns.

        Parameters
        ----------
        features : mapping of feature name to array-like, or pandas.DataFrame
            One column per feature, all of the same length (the batch size).
            A baseline feature without a column counts as missing in every row.
        predictions : array-like, optional
            One prediction per row.
        probabilities : array-like, optional
            Shape ``(n,)`` for one score output, ``(n, k)`` for ``k`` score
            outputs, or a mapping of score column name to array.
        latency_seconds : array-like, optional
            One latency per row.
        model : str, optional
            Model name; required when the Monitor serves several models.
        ids : array-like of str, optional
            Prediction ids (``None`` for rows without one): those rows are
            remembered for :meth:`record_labels`.
        timestamps : array-like of float, optional
            When each prediction was made; default now.
        """
        st = self._state(model)
        columns = _columns_of(features)
        lengths = {k: len(v) for k, v in columns.items()}
        if not lengths:
            raise ValueError("observe_batch: no feature columns")
        n = next(iter(lengths.values()))
        if any(v != n for v in lengths.values()):
            raise ValueError(f"observe_batch: feature columns have different lengths: {lengths}")
        problems = _Problems(self.strict)
        cols: dict[str, Any] = {}
        for name in st.feature_names:
            if name in columns:
                cols[name] = columns[name]
            else:
                cols[name] = [None] * n
        unknown = [k for k in columns if k not in st.missing]
        if unknown:
            problems.violation(UNKNOWN, "unknown_feature", n * len(unknown), ", ".join(unknown[:5]))
        preds = _as_list(predictions, n, "predictions")
        probs = _prob_rows(probabilities, n, st.prob_names)
        lats = _as_list(latency_seconds, n, "latency_seconds")
        if ids is not None:
            st.remember_rows(_as_list(ids, n, "ids"), lambda f: cols[f], preds, probs,
                             None if timestamps is None else _as_list(timestamps, n, "timestamps"),
                             float(self.clock()), problems)
            self._put_remembered(st)
        with st.lock:
            st._ingest(n, cols, problems)
            st._ingest_outputs(n, preds, probs, problems)
            st._ingest_latency(lats)
            st.predictions += n
            st.record(problems)
        if self.strict and problems.violations:
            raise SchemaViolationError("; ".join(problems.messages))

    def observe_validated(
        self,
        model: str,
        n: int,
        numeric: Mapping[str, np.ndarray] | np.ndarray,
        categorical: Mapping[str, list[Any]],
        *,
        predictions: Sequence[Any] = (),
        probabilities: Sequence[Any] = (),
        latency_seconds: Sequence[Any] = (),
        violations: Mapping[tuple[str, str], int] | None = None,
        ids: Sequence[str | None] = (),
        timestamps: Sequence[float | None] | None = None,
    ) -> None:
        """Count ``n`` events whose values a caller has already validated.

        The sidecar's fast path: ``numeric`` maps every numeric baseline feature
        to a float64 array of length ``n`` (NaN = missing), ``categorical`` every
        categorical feature to a list (``None`` = missing). ``predictions``,
        ``probabilities`` and ``latency_seconds`` are per-event lists (``None``
        where absent) or empty. ``violations`` adds ``(field, reason) -> count``
        found by the caller (e.g. in events it rejected); unknown keys are
        counted as ``__unknown__``/``unknown_feature`` so the series set stays
        bounded. ``ids`` (``None`` where absent) and ``timestamps`` remember
        the events with an id for :meth:`record_labels`.
        """
        st = self._state(model)
        problems = _Problems(False)
        for key, k in (violations or {}).items():
            problems.violation(key[0], key[1], k)
        if n and len(ids) and any(x is not None for x in ids):
            st.remember_rows(ids, _validated_column(st, numeric, categorical), predictions,
                             probabilities, timestamps, float(self.clock()), problems)
            self._put_remembered(st)
        with st.lock:
            if n:
                st.ingest_validated(n, numeric, categorical, problems)
                if len(predictions) or len(probabilities):
                    st._ingest_outputs(n, predictions, probabilities, problems)
                if len(latency_seconds):
                    st._ingest_latency(latency_seconds)
                st.predictions += n
            st.record(problems)

    # -- ground truth -------------------------------------------------------------

    @property
    def join_store(self) -> JoinStore:
        """The join store (a bounded in-memory one unless one was given)."""
        with self._join_lock:
            if self._join_store is None:
                self._join_store = MemoryJoinStore(clock=self.clock)
            return self._join_store

    def _set_segments(self, segments: Sequence[Segment] | Mapping[str, Sequence[Segment]]) -> None:
        if isinstance(segments, Mapping):
            unknown = [m for m in segments if m not in self._models]
            if unknown:
                raise ValueError(f"segments: unknown model {unknown[0]!r}; models: "
                                 f"{', '.join(self._models)}")
            per_model = {m: tuple(segments.get(m, ())) for m in self._models}
        else:
            segs = tuple(segments)
            per_model = {m: tuple(sg for sg in segs if sg.feature in st.baseline.features)
                         for m, st in self._models.items()}
            used = {sg.feature for v in per_model.values() for sg in v}
            missing = [sg.feature for sg in segs if sg.feature not in used]
            if missing:
                raise ValueError(f"segments: feature {missing[0]!r} is in no model's baseline")
        for m, segs in per_model.items():
            st = self._models[m]
            for sg in segs:
                if not isinstance(sg, Segment):
                    raise TypeError(f"segments: expected Segment objects, got {type(sg).__name__}")
                if sg.feature not in st.baseline.features:
                    raise ValueError(f"segments: model {m!r} has no feature {sg.feature!r}")
                kind = "numeric" if sg.feature in st.baseline.numeric_features else "categorical"
                if (sg.bins is not None) != (kind == "numeric"):
                    raise ValueError(f"segments: {sg.feature!r} of model {m!r} is {kind}; give "
                                     f"{'bins' if kind == 'numeric' else 'values'}")
            names = [sg.feature for sg in segs]
            if len(set(names)) != len(names):
                raise ValueError(f"segments: a feature is segmented twice for model {m!r}")
            st.segments = segs

    def _detectors(self) -> dict[str, Any]:
        if not self.concept_drift:
            return {}
        from ..stats.concept import Adwin, PageHinkley

        return {"page_hinkley": PageHinkley(), "adwin": Adwin()}

    def _put_remembered(self, st: ModelState) -> None:
        with st.buffer_lock:
            pending, st.remember = st.remember, []
        if pending:
            ids, rows = zip(*pending)
            self.join_store.put(st.model, list(ids), list(rows))

    def record_label(self, id: str, label: Any, *, model: str | None = None,
                     timestamp: float | None = None) -> bool:
        """Join one ground-truth label to the prediction observed with ``id``.

        Returns True when a remembered prediction matched. A label that cannot
        be used raises ``ValueError`` (:meth:`record_labels` reports it instead).
        """
        res = self.record_labels([id], [label], model=model,
                                 timestamps=None if timestamp is None else [timestamp])
        if res.rejected:
            _, field, error = res.rejected[0]
            raise ValueError(f"{field}: {error}")
        return res.matched == 1

    def record_labels(self, ids: Sequence[str], labels: Sequence[Any], *,
                      model: str | None = None,
                      timestamps: Sequence[float | None] | None = None) -> LabelResult:
        """Join ground-truth labels to the predictions observed with these ids.

        ``labels`` are classes (classifiers: a string, number or bool; classes
        not in the baseline count as ``__other__``) or numbers (regressors).
        ``timestamps`` (seconds since the epoch) date the labels for the label
        delay; the Monitor's clock is used where absent. Unusable entries
        (a wrong type, an empty or too long id, a non-finite number) are
        returned in ``rejected`` and leave their prediction remembered; a label
        whose id matches no remembered prediction (never seen, expired, or
        already labelled) counts in ``modelmon_labels_unmatched_total``.
        """
        st = self._models[self._default] if model is None and self._default else self._state(model)
        if len(ids) != len(labels):
            raise ValueError(f"record_labels: {len(ids)} ids but {len(labels)} labels")
        if timestamps is not None and len(timestamps) != len(ids):
            raise ValueError(f"record_labels: {len(ids)} ids but {len(timestamps)} timestamps")
        result = LabelResult()
        if st.baseline.prediction is None:
            result.rejected = [(i, "label", f"model {st.model!r} has no prediction column in its "
                                "baseline, so labels cannot be compared with predictions")
                               for i in range(len(ids))]
            return result
        st.labelled = True
        # every prediction acknowledged before this call must be joinable: fold what callers
        # buffered (the sidecar's small batches, single events) and put it in the join store
        self.flush(st.model)
        now = float(self.clock())
        with st.lock:  # the current version's counts (made once): its classes check the labels
            probe = st.label_state(st.version, self._detectors)
        good_ids: list[str] = []
        good_actual: list[Any] = []
        good_ts: list[float] = []
        for i, (pid, label) in enumerate(zip(ids, labels)):
            if type(pid) is not str or not pid or len(pid) > MAX_ID_LENGTH:
                result.rejected.append((i, "id", f"expected a non-empty string of at most "  # type: ignore[union-attr]
                                                 f"{MAX_ID_LENGTH} characters"))
                continue
            if probe.classifier:
                slot = probe.actual_index(label)
                if isinstance(slot, str):
                    result.rejected.append((i, "label", slot))  # type: ignore[union-attr]
                    continue
                actual: Any = label
            else:
                if (isinstance(label, bool) or not isinstance(label, (int, float, np.number))
                        or not math.isfinite(float(label))):
                    result.rejected.append((i, "label", "expected a finite number"))  # type: ignore[union-attr]
                    continue
                actual = float(label)
            ts = now
            if timestamps is not None and timestamps[i] is not None:
                t = timestamps[i]
                if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0 \
                        or not math.isfinite(t):
                    result.rejected.append((i, "timestamp", "expected seconds since the epoch"))  # type: ignore[union-attr]
                    continue
                ts = float(t)
            good_ids.append(pid)
            good_actual.append(actual)
            good_ts.append(ts)
        if not good_ids:
            return result
        rows = self.join_store.take(st.model, good_ids)
        by_version: dict[str, tuple[list[Any], list[Any], list[float]]] = {}
        unmatched = 0
        for row, actual, ts in zip(rows, good_actual, good_ts):
            if row is None:
                unmatched += 1
                continue
            g = by_version.setdefault(row.model_version, ([], [], []))
            g[0].append(row)
            g[1].append(actual)
            g[2].append(ts - row.timestamp)
        with st.lock:
            st.unmatched += unmatched
            for version, (vrows, actuals, delays) in by_version.items():
                ls = st.label_state(version, self._detectors)
                if ls.classifier:
                    actuals = [ls.actual_index(a) for a in actuals]
                ls.add(vrows, actuals, np.asarray(delays, dtype=np.float64))
        result.matched = len(good_ids) - unmatched
        result.unmatched = unmatched
        return result

    def _drain_expired(self) -> None:
        store = self._join_store
        if store is None:
            return
        for (model, version, reason), n in store.expired().items():
            st = self._models.get(model)
            if st is None:
                continue
            with st.lock:
                key = (version, reason)
                if key not in st.expired and len({v for v, _ in st.expired}) >= MAX_LABEL_VERSIONS:
                    key = (OTHER, reason)
                st.expired[key] = st.expired.get(key, 0) + n

    def add_flush_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` at the start of every :meth:`flush` (so before every scrape).

        For callers that buffer events of their own (the sidecar buffers small
        validated batches) and must fold them before the counts are read. The
        hook runs outside the Monitor's locks and may call any counting method.
        """
        self._flush_hooks.append(hook)

    def flush(self, model: str | None = None) -> None:
        """Fold buffered events into the count arrays (done before every scrape)."""
        for hook in self._flush_hooks:
            hook()
        states = self._models.values() if model is None else [self._state(model)]
        for st in states:
            if st.remember:
                self._put_remembered(st)
            with st.lock:
                events = st.take_buffer()
                if events:
                    problems = _Problems(False)
                    _fold_safely(st, events, problems)
                    st.record(problems)

    def _fold_now(self, st: ModelState, events: list[tuple[Any, Any, Any, Any]]) -> None:
        problems = _Problems(True)
        with st.lock:
            _fold_safely(st, events, problems)
            st.record(problems)
        if problems.violations:
            raise SchemaViolationError("; ".join(problems.messages) or "schema violation")

    def timer(self) -> "_Timer":
        """Context manager that measures latency: ``with mon.timer() as t: ...; t.seconds``."""
        return _Timer(self.clock)


class _Timer:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds: float | None = None

    def __enter__(self) -> "_Timer":
        self._t0 = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = max(0.0, self.clock() - self._t0)


def _fold_safely(st: ModelState, events: list[tuple[Any, Any, Any, Any]],
                 problems: _Problems) -> None:
    """Fold a batch; if something unforeseen breaks, fold event by event so one bad
    event cannot cost the others (and is logged), never raising into the caller."""
    try:
        snapshot = _snapshot(st)
        st.fold(events, problems)
    except Exception:  # pragma: no cover - defensive: a value type we did not foresee
        _restore(st, snapshot)
        for ev in events:
            snap = _snapshot(st)
            try:
                st.fold([ev], problems)
            except Exception as exc:
                _restore(st, snap)
                log.warning("modelmon: dropped an event that could not be counted: %r", exc)
                problems.violation(UNKNOWN, "unknown_feature", 1)


def _snapshot(st: ModelState) -> tuple[Any, ...]:
    return (
        [(c.counts.copy(), c.sum, c.out_of_range) for c in st.numeric.values()],
        [c.counts.copy() for c in st.categorical.values()],
        [(c.counts.copy(), c.sum) for c in st.outputs.values()],
        st.classes.counts.copy() if st.classes is not None else None,
        st.latency.copy(), st.latency_sum, st.predictions, dict(st.missing),
    )


def _restore(st: ModelState, snap: tuple[Any, ...]) -> None:
    num, cat, out, classes, lat, lat_sum, preds, missing = snap
    for c, (counts, s, oor) in zip(st.numeric.values(), num):
        c.counts[:], c.sum, c.out_of_range = counts, s, oor
    for c, counts in zip(st.categorical.values(), cat):
        c.counts[:] = counts
    for c, (counts, s) in zip(st.outputs.values(), out):
        c.counts[:], c.sum = counts, s
    if classes is not None and st.classes is not None:
        st.classes.counts[:] = classes
    st.latency[:] = lat
    st.latency_sum, st.predictions = lat_sum, preds
    st.missing.clear()
    st.missing.update(missing)


def _validated_column(st: ModelState, numeric: Mapping[str, np.ndarray] | np.ndarray,
                      categorical: Mapping[str, list[Any]]) -> Callable[[str], Sequence[Any]]:
    """``column(feature)`` over :meth:`Monitor.observe_validated`'s inputs (NaN = missing)."""
    order = {name: j for j, name in enumerate(st.numeric)}

    def column(feature: str) -> Sequence[Any]:
        if feature in categorical:
            return categorical[feature]
        a = numeric[:, order[feature]] if isinstance(numeric, np.ndarray) else numeric[feature]
        return [None if v != v else v for v in a.tolist()]

    return column


def _columns_of(features: Any) -> dict[str, Any]:
    if hasattr(features, "columns") and not isinstance(features, Mapping):
        return columns_of(features)  # a pandas DataFrame, read as Baseline.build reads it
    if isinstance(features, Mapping):
        return {str(k): (v if isinstance(v, (np.ndarray, list)) else list(v))
                for k, v in features.items()}
    raise TypeError(f"observe_batch: expected a mapping of columns or a DataFrame, got "
                    f"{type(features).__name__}")


def _as_list(values: Any, n: int, what: str) -> Sequence[Any]:
    if values is None:
        return [None] * 0
    seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if len(seq) != n:
        raise ValueError(f"observe_batch: {what} has {len(seq)} rows, features have {n}")
    return seq


def _prob_rows(probabilities: Any, n: int, names: list[str]) -> Sequence[Any] | np.ndarray:
    if probabilities is None:
        return []
    if isinstance(probabilities, Mapping):
        cols = {k: _as_list(v, n, f"probabilities[{k!r}]") for k, v in probabilities.items()}
        keys = list(cols)
        return [dict(zip(keys, row)) for row in zip(*cols.values())]
    if (len(names) == 1 and isinstance(probabilities, np.ndarray) and probabilities.ndim == 1
            and probabilities.dtype.kind in "fiub"):
        if probabilities.size != n:
            raise ValueError(f"observe_batch: probabilities has {probabilities.size} rows, "
                             f"features have {n}")
        return probabilities  # type: ignore[return-value]
    a = np.asarray(probabilities, dtype=object if not hasattr(probabilities, "dtype") else None)
    if len(a) != n:
        raise ValueError(f"observe_batch: probabilities has {len(a)} rows, features have {n}")
    if a.ndim == 2:
        return [tuple(r) for r in a.tolist()]
    return a.tolist()

