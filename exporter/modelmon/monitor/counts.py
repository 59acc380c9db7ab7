"""The count arrays of one model version, and the immutable view a scrape reads.

:class:`ModelCounts` holds preallocated numpy arrays (one per feature and
output: bucket counts, sums, out-of-range, category slots), the prediction and
latency counts, missing values and schema violations (a bounded set of series,
all present from the start at 0). Its ``add_*`` methods fold a batch of
columns; callers hold :attr:`ModelCounts.lock`. :meth:`ModelCounts.view`
copies everything into a :class:`CountsView` for the collector.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..baseline import Baseline, CategoricalSummary, NumericSummary
from ..catalogue import LATENCY_BUCKETS, UNKNOWN
from .columns import (
    FAST_TYPES,
    Problems,
    ValidatedColumns,
    categorical_slots,
    category_counts,
    event_columns,
    numeric_values,
    tuple_getter,
)

__all__ = ["CategoricalCounts", "CountsView", "ModelCounts", "NumericCounts", "RawEvent"]

log = logging.getLogger("modelmon.monitor")

#: One event as ``Monitor.observe`` buffers it: (features, prediction, probabilities, latency).
RawEvent = tuple[Any, Any, Any, Any]


class NumericCounts:
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


class CategoricalCounts:
    """Count array of one categorical column; the last slot is ``__other__``."""

    __slots__ = ("name", "labels", "lookup", "counts", "required")

    def __init__(self, s: CategoricalSummary) -> None:
        self.name = s.name
        self.labels = s.labels
        self.lookup = {c: i for i, c in enumerate(s.categories)}
        self.counts = np.zeros(len(self.labels), dtype=np.int64)
        self.required = s.missing_fraction == 0.0


@dataclass(frozen=True, slots=True)
class CountsView:
    """What one scrape renders of a model version's counts: copies, never shared arrays."""

    predictions: int
    #: per numeric feature: cumulative bucket counts (the last is +Inf), sum, out of range
    numeric: Mapping[str, tuple[np.ndarray, float, int]]
    #: per categorical feature: its labels and their counts (the last is ``__other__``)
    categorical: Mapping[str, tuple[tuple[str, ...], np.ndarray]]
    missing: Mapping[str, int]
    violations: Mapping[tuple[str, str], int]
    #: per numeric output: cumulative bucket counts, sum
    outputs: Mapping[str, tuple[np.ndarray, float]]
    #: the predicted classes and their counts (classifiers)
    classes: tuple[tuple[str, ...], np.ndarray] | None
    #: cumulative latency bucket counts, sum
    latency: tuple[np.ndarray, float]


class ModelCounts:
    """Everything counted for one model version's events (not its ground truth)."""

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        # Numeric features share one matrix of cumulative ("le") counts, row j for the
        # j-th numeric feature: le[j, i] = values <= its i-th bucket bound, and from its
        # last bound on (the +Inf bucket, then padding) every value.
        nums = list(baseline.numeric_features.values())
        self.numeric_names = [s.name for s in nums]
        self.numeric_edges = [np.asarray(s.edges, dtype=np.float64) for s in nums]
        width = max((e.size for e in self.numeric_edges), default=0)
        self.le = np.zeros((len(nums), width + 1), dtype=np.int64)
        self.sums = np.zeros(len(nums))
        self.out_of_range = np.zeros(len(nums), dtype=np.int64)
        self.required = {s.name: s.missing_fraction == 0.0 for s in nums}
        # what one searchsorted(..., side="right") per feature looks up in its sorted
        # values: its bounds (padded with +inf), its max, and the float just below its min
        self._probe = np.full((len(nums), width + 2), np.inf)
        for j, (e, s) in enumerate(zip(self.numeric_edges, nums)):
            self._probe[j, :e.size] = e
            self._probe[j, width] = s.max
            self._probe[j, width + 1] = np.nextafter(s.min, -np.inf)
        self.categorical = {n: CategoricalCounts(s)
                            for n, s in baseline.categorical_features.items()}
        self.numeric_order = {name: j for j, name in enumerate(self.numeric_names)}
        self._num_get = tuple_getter(self.numeric_names)
        self._cat_get = tuple_getter(list(self.categorical))
        self.feature_names = list(baseline.features)
        self.outputs = {n: NumericCounts(s) for n, s in baseline.numeric_outputs.items()}
        self.prob_names = list(baseline.probabilities)
        pred = baseline.prediction
        self.pred_name = pred.name if pred is not None else None
        self.classes = CategoricalCounts(pred) if isinstance(pred, CategoricalSummary) else None
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
        #: Held while counting and while taking a view.
        self.lock = threading.Lock()

    # -- folding (call with ``lock`` held) --------------------------------------------

    def add_events(self, events: Sequence[RawEvent], problems: Problems) -> None:
        """Fold single events as ``Monitor.observe`` buffered them."""
        n = len(events)
        if not n:
            return
        feats, preds, probs, lats = zip(*events)
        if not self._add_clean_events(n, feats, problems):
            self.add_columns(n, event_columns(feats, self.feature_names, problems), problems)
        self.add_outputs(n, preds, probs, problems)
        self.add_latency(lats)
        self.predictions += n

    def _add_clean_events(self, n: int, feats: Sequence[Any], problems: Problems) -> bool:
        """The common case at C speed: every event has exactly the baseline's features and
        every numeric value is a finite number. Counts them and returns True; returns
        False (having counted nothing) for any other batch."""
        try:
            if set(map(len, feats)) != {len(self.feature_names)}:
                return False
            num_rows = list(map(self._num_get, feats)) if self.numeric_names else []
            cat_rows = list(map(self._cat_get, feats)) if self.categorical else []
        except (KeyError, TypeError):  # a feature missing (or renamed), or not a mapping
            return False
        if num_rows and self.numeric_names:
            # numpy picks a numeric dtype only when every value is a bool, int or float
            # (a string gives a string array, None or anything else an object one), so
            # the dtype checks every value's type at C speed
            try:
                m = np.array(num_rows)
            except (ValueError, OverflowError):  # ragged (a sequence as a value)
                return False
            if m.dtype.kind not in "fiub" or m.ndim != 2:
                return False
            if m.dtype.kind == "f":
                if not np.isfinite(m).all():
                    return False
            else:
                m = m.astype(np.float64)
            self.add_numeric_matrix(m, problems)
        if cat_rows:
            for cat, col in zip(self.categorical.values(), zip(*cat_rows)):
                self._add_categories(cat, col, n, problems)
        return True

    def _add_categories(self, cat: CategoricalCounts, col: Sequence[Any], n: int,
                        problems: Problems) -> None:
        fast = category_counts(col, cat.lookup, cat.counts.size)
        if fast is not None:
            cat.counts += fast[0]
            if fast[1]:
                self.missing[cat.name] += fast[1]
                if cat.required:
                    problems.violation(cat.name, "missing_required", fast[1])
            return
        idx = categorical_slots(cat.name, col, n, cat.lookup, len(cat.labels) - 1,
                                cat.required, problems)
        cat.counts += np.bincount(idx, minlength=cat.counts.size)
        if idx.size != n:
            self.missing[cat.name] += n - idx.size

    def add_columns(self, n: int, columns: Mapping[str, Any], problems: Problems) -> None:
        """Fold one unchecked column per baseline feature (``None`` = missing)."""
        order = self.numeric_order
        for name, col in columns.items():
            j = order.get(name)
            if j is not None:
                values = numeric_values(name, col, n, self.required[name], problems)
                self._add_sorted(j, np.sort(values))
                if values.size != n:
                    self.missing[name] += n - values.size
            else:
                self._add_categories(self.categorical[name], col, n, problems)

    def add_validated(self, cols: ValidatedColumns, problems: Problems) -> None:
        """Fold pre-validated columns: features, outputs, latency and the event count."""
        n = cols.n
        if not n:
            return
        numeric = cols.numeric
        if isinstance(numeric, np.ndarray):
            self.add_numeric_matrix(numeric, problems)
            numeric = {}
        for name, a in numeric.items():
            present = ~np.isnan(a)
            vals = a if present.all() else a[present]
            self._add_sorted(self.numeric_order[name], np.sort(vals))
            miss = n - vals.size
            if miss:
                self.missing[name] += miss
                if self.required[name]:
                    problems.violation(name, "missing_required", miss)
        for name, col in cols.categorical.items():
            self._add_categories(self.categorical[name], col, n, problems)
        if len(cols.predictions) or len(cols.probabilities):
            self.add_outputs(n, cols.predictions, cols.probabilities, problems)
        if len(cols.latency_seconds):
            self.add_latency(cols.latency_seconds)
        self.predictions += n

    def add_numeric_matrix(self, m: np.ndarray, problems: Problems) -> None:
        """Fold an ``(n, k)`` matrix of the numeric features (baseline order, NaN =
        missing): one sort of every feature's values, then one lookup of its bucket
        bounds in them (cheaper than a branch-unpredictable binary search per value)."""
        st = np.sort(m.T, axis=1)        # (k, n), each feature's values ascending, NaN last
        isnan = np.isnan(st)
        miss = isnan.sum(axis=1)
        if not miss.any():
            self._add_sorted_rows(st, st.sum(axis=1))
            return
        n = m.shape[0]
        for j, name in enumerate(self.numeric_names):
            k = int(miss[j])
            self._add_sorted(j, st[j, :n - k])
            if k:
                self.missing[name] += k
                if self.required[name]:
                    problems.violation(name, "missing_required", k)

    def _add_sorted_rows(self, st: np.ndarray, sums: np.ndarray) -> None:
        """Count ``(k, n)`` sorted finite values, row j for the j-th numeric feature."""
        probe = self._probe
        found = np.empty(probe.shape, dtype=np.int64)
        for j in range(st.shape[0]):
            found[j] = np.searchsorted(st[j], probe[j], side="right")
        self._add_found(found, st.shape[1], sums)

    def _add_sorted(self, j: int, row: np.ndarray) -> None:
        """Count one numeric feature's sorted finite values."""
        if row.size:
            found = np.searchsorted(row, self._probe[j], side="right")
            self.le[j, :-1] += found[:-2]
            self.le[j, -1] += row.size
            self.sums[j] += float(row.sum())
            self.out_of_range[j] += int(found[-1] + row.size - found[-2])

    def _add_found(self, found: np.ndarray, n: int, sums: np.ndarray) -> None:
        self.le[:, :-1] += found[:, :-2]
        self.le[:, -1] += n
        self.sums += sums
        self.out_of_range += found[:, -1] + n - found[:, -2]

    def add_outputs(self, n: int, preds: Sequence[Any], probs: Sequence[Any] | np.ndarray,
                    problems: Problems) -> None:
        """Fold the predictions and score outputs of ``n`` events (``None`` = absent)."""
        if any(p is not None for p in preds):
            present = [p for p in preds if p is not None]
            if self.pred_name is None:
                problems.violation(UNKNOWN, "unknown_feature", len(present), "prediction")
            elif self.classes is not None:
                c = self.classes
                fast = category_counts(present, c.lookup, c.counts.size)
                if fast is not None:
                    c.counts += fast[0]
                else:
                    idx = categorical_slots(self.pred_name, present, len(present), c.lookup,
                                            len(c.labels) - 1, False, problems)
                    c.counts += np.bincount(idx, minlength=c.counts.size)
            else:
                out = self.outputs[self.pred_name]
                out.add(numeric_values(self.pred_name, present, len(present), False, problems))
        if len(self.prob_names) == 1 and isinstance(probs, np.ndarray):
            # observe_batch with one score column: stays a numpy array end to end
            k = self.prob_names[0]
            self.outputs[k].add(numeric_values(k, probs, probs.size, False, problems))
            return
        if len(self.prob_names) == 1 and len(probs) and set(map(type, probs)) <= FAST_TYPES:
            k = self.prob_names[0]
            self.outputs[k].add(numeric_values(k, probs, len(probs), False, problems))
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
                    self.outputs[k].add(numeric_values(k, col, len(col), False, problems))

    def add_latency(self, lats: Sequence[Any] | np.ndarray) -> None:
        """Fold inference latencies (a numpy array is trusted: finite, >= 0)."""
        if isinstance(lats, np.ndarray):
            a = lats
        else:
            vals = [v for v in lats if v is not None and type(v) in (int, float)
                    and 0 <= v < math.inf]
            a = np.asarray(vals, dtype=np.float64)
        if a.size:
            self.latency += np.bincount(np.searchsorted(self.latency_edges, a, side="left"),
                                        minlength=self.latency.size)
            self.latency_sum += float(a.sum())

    def record(self, problems: Problems) -> None:
        """Add a batch's violations to the exported counters (the set stays bounded)."""
        for key, n in problems.violations.items():
            if key in self.violations:
                self.violations[key] += n
            else:  # an output field we do not export: keep the set bounded
                self.violations[(UNKNOWN, "unknown_feature")] += n

    def fold_safely(self, events: Sequence[RawEvent], problems: Problems) -> None:
        """Fold buffered single events; if something unforeseen breaks, fold them one by
        one so one bad event cannot cost the others (it is logged), never raising."""
        try:
            saved = self._save()
            self.add_events(events, problems)
        except Exception:  # pragma: no cover - defensive: a value type we did not foresee
            self._restore(saved)
            for ev in events:
                one = self._save()
                try:
                    self.add_events([ev], problems)
                except Exception as exc:
                    self._restore(one)
                    log.warning("modelmon: dropped an event that could not be counted: %r", exc)
                    problems.violation(UNKNOWN, "unknown_feature", 1)

    def _save(self) -> tuple[Any, ...]:
        return (
            (self.le.copy(), self.sums.copy(), self.out_of_range.copy()),
            [c.counts.copy() for c in self.categorical.values()],
            [(c.counts.copy(), c.sum) for c in self.outputs.values()],
            self.classes.counts.copy() if self.classes is not None else None,
            self.latency.copy(), self.latency_sum, self.predictions, dict(self.missing),
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        num, cat, out, classes, lat, lat_sum, preds, missing = saved
        self.le[:], self.sums[:], self.out_of_range[:] = num
        for column, counts in zip(self.categorical.values(), cat):
            column.counts[:] = counts
        for output, (counts, s) in zip(self.outputs.values(), out):
            output.counts[:], output.sum = counts, s
        if classes is not None and self.classes is not None:
            self.classes.counts[:] = classes
        self.latency[:] = lat
        self.latency_sum, self.predictions = lat_sum, preds
        self.missing.clear()
        self.missing.update(missing)

    # -- reading --------------------------------------------------------------------

    def view(self) -> CountsView:
        """A copy of every count (call with ``lock`` held)."""
        c = self.classes
        return CountsView(
            predictions=self.predictions,
            numeric={name: (self.le[j, :e.size + 1].copy(), float(self.sums[j]),
                            int(self.out_of_range[j]))
                     for j, (name, e) in enumerate(zip(self.numeric_names, self.numeric_edges))},
            categorical={n: (x.labels, x.counts.copy()) for n, x in self.categorical.items()},
            missing=dict(self.missing),
            violations=dict(self.violations),
            outputs={n: (np.cumsum(x.counts), x.sum) for n, x in self.outputs.items()},
            classes=None if c is None else (c.labels, c.counts.copy()),
            latency=(np.cumsum(self.latency), self.latency_sum),
        )

