"""Ground truth: segments, and the counts of labelled predictions of one model version.

A prediction made with an ``id`` is remembered in a join store
(:mod:`modelmon.monitor.joinstore`) with what the join needs: the model
version, the predicted class or value, the positive-class score and its
segment values. When its label comes, :class:`OutcomeCounts` counts the pair:
the confusion matrix (classifiers) or the error (regressors), per segment
(``segment="all"`` always), the label delay, and feeds the per-label error
to the concept-drift detectors. Every label value is bounded: classes come
from the baseline (others are ``__other__``), segments from the config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..baseline import Baseline, CategoricalSummary, NumericSummary, category_key
from ..catalogue import CONCEPT_DETECTORS, LABEL_DELAY_BUCKETS, OTHER, SEGMENT_ALL
from ..stats.binning import round_significant

__all__ = ["Segment", "OutcomeCounts", "OutcomeView", "MISSING_SEGMENT", "LabelResult"]

#: Segment value of a prediction whose segmenting feature was missing.
MISSING_SEGMENT = "__missing__"
#: Regression errors held back to fix the scale of the concept-drift detectors' input ...
ERROR_WARMUP = 1000
#: ... which is then divided by (warm-up standard deviation / ERROR_SPREAD).
ERROR_SPREAD = 0.3


@dataclass(frozen=True)
class Segment:
    """One segmenting feature: a categorical feature's listed values, or a numeric one's bins.

    Segment label values are ``feature=value`` for listed categories (others
    ``feature=__other__``), and for numeric bins with upper bounds ``b1 < b2
    < ...`` one of ``feature<=b1``, ``feature=(b1,b2]``, ..., ``feature>bn``;
    a missing value is ``feature=__missing__``. So each segment adds at most
    ``len(values) + 2`` (or ``len(bins) + 2``) label values.

    >>> Segment("region", values=("eu", "us")).labels()
    ('region=eu', 'region=us', 'region=__other__', 'region=__missing__')
    >>> Segment("age", bins=(30, 45)).labels()
    ('age<=30', 'age=(30,45]', 'age>45', 'age=__missing__')
    """

    feature: str
    #: any sequence; kept as a tuple (so a Segment is hashable)
    values: Sequence[str] | None = None
    #: any sequence of numbers; kept as a tuple of floats
    bins: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.values is not None and not isinstance(self.values, (str, bytes)):
            object.__setattr__(self, "values", tuple(self.values))
        if not isinstance(self.feature, str) or not self.feature:
            raise ValueError(f"segment feature: expected a non-empty name, got {self.feature!r}")
        if (self.values is None) == (self.bins is None):
            raise ValueError(f"segment {self.feature!r}: give either values (categorical) or "
                             "bins (numeric)")
        if self.values is not None:
            if not self.values or not all(isinstance(v, str) and v for v in self.values):
                raise ValueError(f"segment {self.feature!r}: values must be non-empty strings")
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"segment {self.feature!r}: a value is listed twice")
        if self.bins is not None:
            b = [float(x) for x in self.bins]
            if not b or any(not math.isfinite(x) for x in b) or any(
                    x >= y for x, y in zip(b, b[1:])):
                raise ValueError(f"segment {self.feature!r}: bins must be finite and strictly "
                                 "increasing")
            object.__setattr__(self, "bins", tuple(b))

    def labels(self) -> tuple[str, ...]:
        """Every label value this segment can produce."""
        f = self.feature
        if self.values is not None:
            return tuple(f"{f}={v}" for v in self.values) + (f"{f}={OTHER}",
                                                            f"{f}={MISSING_SEGMENT}")
        b = [_num(x) for x in self.bins or ()]
        inner = tuple(f"{f}=({lo},{hi}]" for lo, hi in zip(b, b[1:]))
        return (f"{f}<={b[0]}",) + inner + (f"{f}>{b[-1]}", f"{f}={MISSING_SEGMENT}")

    def value_of(self, v: Any) -> str:
        """The label value of one feature value."""
        labels = self.labels()
        if self.values is not None:
            try:
                key = category_key(v)
            except TypeError:
                return labels[-1]
            if key is None:
                return labels[-1]
            try:
                return labels[self.values.index(key)]
            except ValueError:
                return labels[-2]
        if v is None or isinstance(v, (str, bool)) or not isinstance(v, (int, float, np.number)):
            return labels[-1]
        x = float(v)
        if not math.isfinite(x):
            return labels[-1]
        return labels[int(np.searchsorted(np.asarray(self.bins), x, side="left"))]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@dataclass
class LabelResult:
    """What one :meth:`~modelmon.monitor.Monitor.record_labels` call did.

    ``rejected`` lists ``(index, field, error)`` of labels that could not be
    used (not counted anywhere else); ``matched`` + ``unmatched`` +
    ``len(rejected)`` is the number of labels given.
    """

    matched: int = 0
    unmatched: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def _error_edges(prediction: NumericSummary) -> np.ndarray:
    """Symmetric bucket bounds of the regression error, scaled to the prediction's spread."""
    edges = np.asarray(prediction.edges, dtype=np.float64)
    spread = float(edges[-1] - edges[0]) if edges.size > 1 else 0.0
    if not spread > 0:
        spread = max(abs(float(prediction.max)), abs(float(prediction.min)), 1.0)
    steps = np.array([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
    pos = np.unique(round_significant(steps * spread, 3))
    return np.concatenate([-pos[::-1], [0.0], pos])


@dataclass(frozen=True, slots=True)
class OutcomeView:
    """What one scrape renders of a :class:`OutcomeCounts`: copies, never shared arrays."""

    labels: int
    delay_counts: np.ndarray
    delay_sum: float
    segment_labels: tuple[str, ...]
    classifier: bool
    classes: tuple[str, ...]
    confusion: np.ndarray
    score_name: str | None
    score_edges: np.ndarray
    score_counts: np.ndarray
    score_sums: np.ndarray
    error_edges: np.ndarray
    error_counts: np.ndarray
    error_sum: np.ndarray
    abs_error: np.ndarray
    sq_error: np.ndarray
    #: detections so far and the current statistic, per detector
    detections: tuple[tuple[str, int, float], ...]


class OutcomeCounts:
    """Counts of the labelled predictions of one model version (under the Monitor's lock).

    Parameters
    ----------
    baseline : Baseline
        The model's baseline: its prediction decides classification (categorical)
        or regression (numeric), its classes and score buckets.
    model_version : str
        The version the counted predictions were made by (a row's own version).
    segments : sequence of Segment
        The segments configured for the model.
    detectors : mapping of detector name to a streaming detector, optional
        Objects with ``update(errors) -> indices`` and a ``statistic`` attribute
        (:class:`modelmon.stats.PageHinkley`, :class:`modelmon.stats.Adwin`).
    """

    def __init__(self, baseline: Baseline, model_version: str, segments: Sequence[Segment],
                 detectors: Mapping[str, Any] | None = None) -> None:
        self.model_version = model_version
        self.segment_labels: list[str] = [SEGMENT_ALL]
        self._segment_index: list[dict[str, int]] = []
        for s in segments:
            offset = len(self.segment_labels)
            labels = s.labels()
            self.segment_labels += labels
            self._segment_index.append({v: offset + i for i, v in enumerate(labels)})
        n_seg = len(self.segment_labels)
        pred = baseline.prediction
        self.classifier = isinstance(pred, CategoricalSummary)
        self.classes: tuple[str, ...] = pred.labels if isinstance(pred, CategoricalSummary) else ()
        self._class_index = {c: i for i, c in enumerate(self.classes)}
        k = len(self.classes)
        self.confusion = np.zeros((n_seg, k, k), dtype=np.int64)
        # the binary score histogram by actual class
        self.score_name: str | None = None
        self.score_edges = np.zeros(0)
        if self.classifier and len(baseline.probabilities) == 1:
            self.score_name, score = next(iter(baseline.probabilities.items()))
            self.score_edges = np.asarray(score.edges, dtype=np.float64)
        nb = self.score_edges.size + 1
        self.score_counts = np.zeros((n_seg, k, nb), dtype=np.int64)
        self.score_sums = np.zeros((n_seg, k))
        # regression
        self.error_edges = (_error_edges(pred) if isinstance(pred, NumericSummary)
                            else np.zeros(0))
        self.error_counts = np.zeros((n_seg, self.error_edges.size + 1), dtype=np.int64)
        self.error_sum = np.zeros(n_seg)
        self.abs_error = np.zeros(n_seg)
        self.sq_error = np.zeros(n_seg)
        # labels and their delay
        self.labels = 0
        self.delay_edges = np.asarray(LABEL_DELAY_BUCKETS, dtype=np.float64)
        self.delay_counts = np.zeros(self.delay_edges.size + 1, dtype=np.int64)
        self.delay_sum = 0.0
        self.detectors = dict(detectors or {})
        self.detections = {name: 0 for name in CONCEPT_DETECTORS if name in self.detectors}
        # Regression errors are in the target's units; the detectors' thresholds assume errors
        # of order 0.1-1 with a spread like a 0/1 error's. Their scale is fixed from the first
        # ERROR_WARMUP errors (held back until then): each is divided by that warm-up's
        # standard deviation over ERROR_SPREAD.
        self._warm: list[np.ndarray] = []
        self._scale: float | None = 1.0 if self.classifier else None

    def view(self) -> OutcomeView:
        """A copy of every count (call with the owner's lock held)."""
        return OutcomeView(
            labels=self.labels, delay_counts=self.delay_counts.copy(), delay_sum=self.delay_sum,
            segment_labels=tuple(self.segment_labels), classifier=self.classifier,
            classes=self.classes, confusion=self.confusion.copy(), score_name=self.score_name,
            score_edges=self.score_edges, score_counts=self.score_counts.copy(),
            score_sums=self.score_sums.copy(), error_edges=self.error_edges,
            error_counts=self.error_counts.copy(), error_sum=self.error_sum.copy(),
            abs_error=self.abs_error.copy(), sq_error=self.sq_error.copy(),
            detections=tuple((name, n, float(getattr(self.detectors[name], "statistic", 0.0)))
                             for name, n in self.detections.items()))

    def actual_index(self, label: Any) -> int | str:
        """The class slot of a classifier's label, or an error message."""
        try:
            key = category_key(label)
        except TypeError as exc:
            return f"expected a class (string, number or bool), got {type(label).__name__}" \
                if "infinite" not in str(exc) else "expected a class, got an infinite number"
        if key is None:
            return "expected a class, got null or NaN"
        return self._class_index.get(key, len(self.classes) - 1)

    def add(self, rows: Sequence[Any], actual: Sequence[Any], delays: np.ndarray) -> None:
        """Count matched ``(row, actual)`` pairs: ``actual`` holds class slots (classifier) or
        floats (regressor), already validated; ``delays`` seconds from prediction to label."""
        n = len(rows)
        if not n:
            return
        self.labels += n
        d = np.maximum(delays, 0.0)
        self.delay_counts += np.bincount(np.searchsorted(self.delay_edges, d, side="left"),
                                         minlength=self.delay_counts.size)
        self.delay_sum += float(d.sum())
        # segment slots: "all" for every row, plus one per configured segment
        slot_cols = [np.zeros(n, dtype=np.intp)]
        for j, index in enumerate(self._segment_index):
            other = len(self.segment_labels)  # a stored value unknown to this config: skipped
            slot_cols.append(np.fromiter((index.get(r.segments[j], other)
                                          if j < len(r.segments) else other for r in rows),
                                         dtype=np.intp, count=n))
        if self.classifier:
            a = np.asarray(actual, dtype=np.intp)
            other = len(self.classes) - 1
            p = np.fromiter((self._predicted_slot(r.predicted, other) for r in rows),
                            dtype=np.intp, count=n)
            scores = np.fromiter((r.score if r.score is not None else math.nan for r in rows),
                                 dtype=np.float64, count=n)
            has_score = ~np.isnan(scores) if self.score_name is not None else np.zeros(n, bool)
            sb = np.searchsorted(self.score_edges, np.where(has_score, scores, 0.0), side="left")
            for slots in slot_cols:
                ok = slots < len(self.segment_labels)
                np.add.at(self.confusion, (slots[ok], a[ok], p[ok]), 1)
                ok &= has_score
                np.add.at(self.score_counts, (slots[ok], a[ok], sb[ok]), 1)
                np.add.at(self.score_sums, (slots[ok], a[ok]), scores[ok])
            errors = (a != p).astype(np.float64)
        else:
            y = np.asarray(actual, dtype=np.float64)
            pred = np.fromiter((r.predicted if isinstance(r.predicted, (int, float))
                                and not isinstance(r.predicted, bool) else math.nan
                                for r in rows), dtype=np.float64, count=n)
            err = pred - y
            known = np.isfinite(err)
            err_k = np.where(known, err, 0.0)
            eb = np.searchsorted(self.error_edges, err_k, side="left")
            for slots in slot_cols:
                ok = known & (slots < len(self.segment_labels))
                np.add.at(self.error_counts, (slots[ok], eb[ok]), 1)
                np.add.at(self.error_sum, slots[ok], err_k[ok])
                np.add.at(self.abs_error, slots[ok], np.abs(err_k[ok]))
                np.add.at(self.sq_error, slots[ok], err_k[ok] ** 2)
            errors = np.abs(err[known])
        self._detect(errors)

    def _detect(self, errors: np.ndarray) -> None:
        if not self.detectors:
            return
        if self._scale is None:
            self._warm.append(errors)
            held = np.concatenate(self._warm)
            if held.size < ERROR_WARMUP:
                return
            sd = float(held.std())
            self._scale = sd / ERROR_SPREAD if sd > 0 else 1.0
            self._warm = []
            errors = held
        x = errors / self._scale if self._scale != 1.0 else errors
        for name, det in self.detectors.items():
            found = det.update(x)
            self.detections[name] += int(len(found))

    def _predicted_slot(self, predicted: Any, other: int) -> int:
        try:
            key = category_key(predicted)
        except TypeError:
            return other
        return other if key is None else self._class_index.get(key, other)
