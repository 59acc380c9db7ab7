"""The ground-truth join of one model: predictions with an id wait, labels find them.

:class:`GroundTruth` queues the predictions observed with an id (what the join
needs: version, predicted class or value, score, segment values, time) until
the Monitor puts them in the join store, checks labels, and counts the matched
pairs per model version in :class:`~modelmon.monitor.outcomes.OutcomeCounts`
(created when the first id or label comes, never during a scrape). It also
keeps the unmatched and expired counts. :meth:`GroundTruth.view` copies what a
scrape renders into a :class:`TruthView`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from ..baseline import Baseline, CategoricalSummary, category_key
from ..catalogue import EXPIRE_REASONS, MAX_PREDICTION_ID_LENGTH, OTHER
from .columns import STR_OR_NONE, Problems
from .joinstore import Remembered
from .outcomes import LabelResult, OutcomeCounts, OutcomeView, Segment

__all__ = ["GroundTruth", "TruthView", "MAX_PREDICTION_ID_LENGTH", "MAX_LABEL_VERSIONS"]

#: Model versions per model whose labelled predictions are counted apart; predictions of
#: further versions still remembered when their labels come are counted as ``__other__``.
MAX_LABEL_VERSIONS = 8

_ID_ERROR = f"expected a non-empty string of at most {MAX_PREDICTION_ID_LENGTH} characters"

#: Makes the concept-drift detectors of a new OutcomeCounts (name -> detector).
Detectors = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class TruthView:
    """What one scrape renders of a model's ground truth."""

    unmatched: int
    expired: Mapping[tuple[str, str], int]       # (version, reason) -> predictions
    versions: tuple[tuple[str, OutcomeView], ...]  # per version that has label counts


class GroundTruth:
    """Remembered predictions and label counts of one model (current version ``version``)."""

    def __init__(self, baseline: Baseline, detectors: Detectors) -> None:
        self.baseline = baseline
        self.model = baseline.model
        self.version = baseline.model_version
        self.detectors = detectors
        pred = baseline.prediction
        self.classifier = isinstance(pred, CategoricalSummary)
        self.score_name = (next(iter(baseline.probabilities))
                           if len(baseline.probabilities) == 1 else None)
        self.segments: tuple[Segment, ...] = ()
        #: Predictions with an id waiting to be put in the join store.
        self.remembered: list[tuple[str, Remembered]] = []
        self.remembered_lock = threading.Lock()
        #: Guards the label counts, unmatched and expired.
        self.lock = threading.Lock()
        self.label_states: dict[str, OutcomeCounts] = {}
        #: Set once an id or a label came: the ground-truth series are exported from then on.
        self.labelled = False
        self.unmatched = 0
        self.expired: dict[tuple[str, str], int] = {(self.version, r): 0 for r in EXPIRE_REASONS}

    # -- predictions --------------------------------------------------------------

    def predicted_of(self, prediction: Any) -> str | float | None:
        """The predicted class (classifier) or value (regressor) as the join store keeps it."""
        if self.classifier:
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

    def _predicted_column(self, predictions: Sequence[Any] | np.ndarray, keep: list[int],
                          whole: bool) -> Sequence[str | float | None]:
        if not len(predictions):
            return [None] * len(keep)
        col = predictions.tolist() if isinstance(predictions, np.ndarray) else predictions
        if not whole:
            col = [col[i] for i in keep]
        if self.classifier and set(map(type, col)) <= STR_OR_NONE:
            return col  # class strings as they are (the common case)
        return list(map(self.predicted_of, col))

    def _score_column(self, probabilities: Sequence[Any] | np.ndarray, keep: list[int],
                      whole: bool) -> Sequence[float | None]:
        if self.score_name is None or not len(probabilities):
            return [None] * len(keep)
        if isinstance(probabilities, np.ndarray) and probabilities.ndim == 1 \
                and probabilities.dtype.kind == "f":
            a = probabilities if whole else probabilities[keep]
            vals: list[float] = a.tolist()
            if np.isfinite(a).all():
                return vals
            return [v if math.isfinite(v) else None for v in vals]
        col = probabilities if whole else [probabilities[i] for i in keep]
        return list(map(self.score_of, col))

    def remember(self, ids: Sequence[Any] | np.ndarray, column: Callable[[str], Sequence[Any]],
                 predictions: Sequence[Any] | np.ndarray,
                 probabilities: Sequence[Any] | np.ndarray,
                 timestamps: Sequence[Any] | None, now: float, problems: Problems) -> None:
        """Queue the events with an id for the join store (``column(feature)`` gives a
        segmenting feature's values, one per event); a bad id is a violation."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if None in ids:
            keep = [i for i, x in enumerate(ids) if x is not None]
            if not keep:
                return
        else:
            keep = list(range(len(ids)))
        self.start()
        lengths = list(map(len, ids)) if set(map(type, ids)) == {str} else None
        if lengths is not None and min(lengths) > 0 and max(lengths) <= MAX_PREDICTION_ID_LENGTH:
            bad: list[int] = []  # the common case: every id a usable string
        else:
            bad = [i for i in keep if type(ids[i]) is not str or not ids[i]
                   or len(ids[i]) > MAX_PREDICTION_ID_LENGTH]
        if bad:
            problems.violation("id", "wrong_type", len(bad), _ID_ERROR)
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
        with self.remembered_lock:
            self.remembered.extend(rows)

    def take_remembered(self) -> list[tuple[str, Remembered]]:
        """The queued predictions, for the join store (the queue is emptied)."""
        with self.remembered_lock:
            pending, self.remembered = self.remembered, []
        return pending

    # -- labels ---------------------------------------------------------------------

    def start(self) -> None:
        """From the first id or label on, the current version's label series exist (at 0)."""
        if self.labelled:
            return
        with self.lock:
            if self.baseline.prediction is not None:
                self._label_state(self.version)
            self.labelled = True

    def _label_state(self, version: str) -> OutcomeCounts:
        """The counts of predictions made by ``version`` (the current one, or an earlier one
        whose predictions were still remembered; at most MAX_LABEL_VERSIONS per model).
        Call with ``lock`` held."""
        ls = self.label_states.get(version)
        if ls is None:
            if version != self.version and len(self.label_states) >= MAX_LABEL_VERSIONS:
                version = OTHER
                ls = self.label_states.get(version)
                if ls is not None:
                    return ls
            ls = self.label_states[version] = OutcomeCounts(self.baseline, version, self.segments,
                                                         self.detectors())
        return ls

    def check(self, ids: Sequence[Any], labels: Sequence[Any],
              timestamps: Sequence[Any] | None, now: float, result: LabelResult
              ) -> tuple[list[str], list[Any], list[float]]:
        """The usable (id, label, time) triples; the others go to ``result.rejected``."""
        rejected = result.rejected
        self.start()
        with self.lock:  # the current version's counts: its classes check the labels
            probe = self._label_state(self.version)
        good_ids: list[str] = []
        good_actual: list[Any] = []
        good_ts: list[float] = []
        for i, (pid, label) in enumerate(zip(ids, labels)):
            if type(pid) is not str or not pid or len(pid) > MAX_PREDICTION_ID_LENGTH:
                rejected.append((i, "id", _ID_ERROR))
                continue
            if probe.classifier:
                slot = probe.actual_index(label)
                if isinstance(slot, str):
                    rejected.append((i, "label", slot))
                    continue
                actual: Any = label
            else:
                if (isinstance(label, bool) or not isinstance(label, (int, float, np.number))
                        or not math.isfinite(float(label))):
                    rejected.append((i, "label", "expected a finite number"))
                    continue
                actual = float(label)
            ts = now
            if timestamps is not None and timestamps[i] is not None:
                t = timestamps[i]
                if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0 \
                        or not math.isfinite(t):
                    rejected.append((i, "timestamp", "expected seconds since the epoch"))
                    continue
                ts = float(t)
            good_ids.append(pid)
            good_actual.append(actual)
            good_ts.append(ts)
        return good_ids, good_actual, good_ts

    def join(self, rows: Sequence[Remembered | None], actuals: Sequence[Any],
             times: Sequence[float]) -> int:
        """Count the labels whose prediction was found (``rows`` from the join store,
        ``None`` where none was); returns how many found none."""
        by_version: dict[str, tuple[list[Any], list[Any], list[float]]] = {}
        unmatched = 0
        for row, actual, ts in zip(rows, actuals, times):
            if row is None:
                unmatched += 1
                continue
            g = by_version.setdefault(row.model_version, ([], [], []))
            g[0].append(row)
            g[1].append(actual)
            g[2].append(ts - row.timestamp)
        with self.lock:
            self.unmatched += unmatched
            for version, (vrows, vactuals, delays) in by_version.items():
                ls = self._label_state(version)
                if ls.classifier:
                    vactuals = [ls.actual_index(a) for a in vactuals]
                ls.add(vrows, vactuals, np.asarray(delays, dtype=np.float64))
        return unmatched

    def add_expired(self, version: str, reason: str, n: int) -> None:
        """Count predictions the join store dropped unlabelled (versions stay bounded)."""
        with self.lock:
            key = (version, reason)
            if key not in self.expired and len({v for v, _ in self.expired}) >= MAX_LABEL_VERSIONS:
                key = (OTHER, reason)
            self.expired[key] = self.expired.get(key, 0) + n

    def view(self) -> TruthView | None:
        """What a scrape renders; ``None`` until the first id or label (or with no
        prediction column in the baseline)."""
        if not self.labelled or self.baseline.prediction is None:
            return None
        with self.lock:
            return TruthView(unmatched=self.unmatched, expired=dict(self.expired),
                             versions=tuple((v, ls.view()) for v, ls in self.label_states.items()))
