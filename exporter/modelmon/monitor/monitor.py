"""Monitor: the in-process front of the hot path, from events to count arrays.

Events are buffered as they come (one lock, one list append, :mod:`.buffer`)
and folded into preallocated numpy count arrays (:mod:`.counts`) in vectorised
batches: when ``flush_at`` events wait, and always before a scrape, so
/metrics shows exactly what was observed. Bad values never raise into the
caller (unless ``strict=True``): each is counted as a schema violation with its
reason (:mod:`.columns`), and the rest of the event is still counted.
Predictions with an id wait for their labels in a join store
(:mod:`.truth`, :mod:`.joinstore`). The collector reads one immutable
:class:`MonitorView` per scrape (:meth:`Monitor.view`).
"""

from __future__ import annotations

import threading
import time
from functools import partial
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client.registry import REGISTRY, CollectorRegistry

from ..baseline import Baseline
from ..catalogue import UNKNOWN
from .buffer import Decoder, Pending
from .collector import MonitorCollector
from .columns import (
    Problems,
    SchemaViolationError,
    ValidatedColumns,
    batch_columns,
    batch_list,
    batch_scores,
)
from .counts import ModelCounts, RawEvent
from .joinstore import JoinStore, MemoryJoinStore
from .outcomes import LabelResult, Segment
from .truth import GroundTruth
from .view import ModelView, MonitorView

__all__ = ["Monitor", "SchemaViolationError"]



class _Model:
    """One monitored model: its buffer, count arrays and ground truth."""

    __slots__ = ("baseline", "name", "pending", "counts", "truth")

    def __init__(self, baseline: Baseline, detectors: Callable[[], Mapping[str, Any]]) -> None:
        self.baseline = baseline
        self.name = baseline.model
        self.pending = Pending()
        self.counts = ModelCounts(baseline)
        self.truth = GroundTruth(baseline, detectors)


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
        Buffered events are folded into the count arrays at this many events,
        and always before a scrape.
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
        items = [baselines] if isinstance(baselines, Baseline) else list(baselines)
        if not items:
            raise ValueError("Monitor needs at least one baseline")
        self.concept_drift = concept_drift
        self._models: dict[str, _Model] = {}
        for b in items:
            if not isinstance(b, Baseline):
                raise TypeError(f"expected Baseline objects, got {type(b).__name__}")
            if b.model in self._models:
                raise ValueError(f"model {b.model!r} given twice: one Monitor serves one version "
                                 "per model")
            self._models[b.model] = _Model(b, self._detectors)
        self._default = items[0].model if len(items) == 1 else None
        self._set_segments(segments)
        self._join_store = join_store
        self._join_lock = threading.Lock()
        self.strict = strict
        self.clock = clock
        self.flush_at = max(1, int(flush_at))
        self.collector = MonitorCollector(self.models, self.view)
        self.registry = registry
        if registry is not None:
            registry.register(self.collector)

    # -- public API -------------------------------------------------------------

    @property
    def models(self) -> dict[str, Baseline]:
        """Baselines by model name."""
        return {n: m.baseline for n, m in self._models.items()}

    def _model(self, model: str | None) -> _Model:
        if model is None:
            if self._default is None:
                raise ValueError(f"this Monitor serves several models; pass model= one of "
                                 f"{sorted(self._models)}")
            return self._models[self._default]
        m = self._models.get(model)
        if m is None:
            raise KeyError(f"unknown model {model!r}; configured: {sorted(self._models)}")
        return m

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
        m = self._models[self._default] if model is None and self._default else self._model(model)
        if id is not None:
            problems = Problems(self.strict)
            m.truth.remember([id], lambda f: [features.get(f) if isinstance(features, Mapping)
                                              else None], [prediction], [probabilities],
                             [timestamp], float(self.clock()), problems)
            if problems.violations:
                with m.counts.lock:
                    m.counts.record(problems)
                if self.strict:
                    raise SchemaViolationError("; ".join(problems.messages))
        event = (features, prediction, probabilities, latency_seconds)
        if self.strict:
            self._count_now(m, [event])
            return
        if m.pending.add_event(event) >= self.flush_at:
            self._fold(m)

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
        m = self._model(model)
        counts = m.counts
        columns = batch_columns(features)
        lengths = {k: len(v) for k, v in columns.items()}
        if not lengths:
            raise ValueError("observe_batch: no feature columns")
        n = next(iter(lengths.values()))
        if any(v != n for v in lengths.values()):
            raise ValueError(f"observe_batch: feature columns have different lengths: {lengths}")
        problems = Problems(self.strict)
        cols: dict[str, Any] = {}
        for name in counts.feature_names:
            if name in columns:
                cols[name] = columns[name]
            else:
                cols[name] = [None] * n
        unknown = [k for k in columns if k not in counts.missing]
        if unknown:
            problems.violation(UNKNOWN, "unknown_feature", n * len(unknown), ", ".join(unknown[:5]))
        preds = batch_list(predictions, n, "predictions")
        probs = batch_scores(probabilities, n, counts.prob_names)
        lats = batch_list(latency_seconds, n, "latency_seconds")
        if ids is not None:
            m.truth.remember(batch_list(ids, n, "ids"), lambda f: cols[f], preds, probs,
                             None if timestamps is None else batch_list(timestamps, n,
                                                                        "timestamps"),
                             float(self.clock()), problems)
            self._put_remembered(m)
        with counts.lock:
            counts.add_columns(n, cols, problems)
            counts.add_outputs(n, preds, probs, problems)
            counts.add_latency(lats)
            counts.predictions += n
            counts.record(problems)
        if self.strict and problems.violations:
            raise SchemaViolationError("; ".join(problems.messages))

    def observe_validated(self, model: str, columns: ValidatedColumns) -> None:
        """Count events whose values a front end has already checked (now, not buffered).

        See :class:`~modelmon.monitor.columns.ValidatedColumns` for what "checked"
        means; unknown violation keys are counted as ``__unknown__`` /
        ``unknown_feature`` so the series set stays bounded.
        """
        m = self._model(model)
        problems = Problems(False)
        self._count_validated(m, [columns], problems)

    def submit(self, model: str, rows: list[Any], decoder: Decoder) -> None:
        """Queue checked rows of a front end; ``decoder`` turns a list of them into
        :class:`~modelmon.monitor.columns.ValidatedColumns` when they are folded
        (at ``flush_at`` waiting events, before a scrape, or on :meth:`flush`)."""
        m = self._model(model)
        if m.pending.add_rows(rows, decoder) >= self.flush_at:
            self._fold(m)

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
            per_model = {m: tuple(sg for sg in segs if sg.feature in mm.baseline.features)
                         for m, mm in self._models.items()}
            used = {sg.feature for v in per_model.values() for sg in v}
            missing = [sg.feature for sg in segs if sg.feature not in used]
            if missing:
                raise ValueError(f"segments: feature {missing[0]!r} is in no model's baseline")
        for m, segs in per_model.items():
            b = self._models[m].baseline
            for sg in segs:
                if not isinstance(sg, Segment):
                    raise TypeError(f"segments: expected Segment objects, got {type(sg).__name__}")
                if sg.feature not in b.features:
                    raise ValueError(f"segments: model {m!r} has no feature {sg.feature!r}")
                kind = "numeric" if sg.feature in b.numeric_features else "categorical"
                if (sg.bins is not None) != (kind == "numeric"):
                    raise ValueError(f"segments: {sg.feature!r} of model {m!r} is {kind}; give "
                                     f"{'bins' if kind == 'numeric' else 'values'}")
            names = [sg.feature for sg in segs]
            if len(set(names)) != len(names):
                raise ValueError(f"segments: a feature is segmented twice for model {m!r}")
            self._models[m].truth.segments = segs

    def _detectors(self) -> dict[str, Any]:
        if not self.concept_drift:
            return {}
        from ..stats.concept import Adwin, PageHinkley

        return {"page_hinkley": PageHinkley(), "adwin": Adwin()}

    def _put_remembered(self, m: _Model) -> None:
        pending = m.truth.take_remembered()
        if pending:
            ids, rows = zip(*pending)
            self.join_store.put(m.name, list(ids), list(rows))

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
        m = self._models[self._default] if model is None and self._default else self._model(model)
        if len(ids) != len(labels):
            raise ValueError(f"record_labels: {len(ids)} ids but {len(labels)} labels")
        if timestamps is not None and len(timestamps) != len(ids):
            raise ValueError(f"record_labels: {len(ids)} ids but {len(timestamps)} timestamps")
        result = LabelResult()
        if m.baseline.prediction is None:
            result.rejected = [(i, "label", f"model {m.name!r} has no prediction column in its "
                                "baseline, so labels cannot be compared with predictions")
                               for i in range(len(ids))]
            return result
        # every prediction acknowledged before this call must be joinable: fold what callers
        # buffered (the sidecar's small batches, single events) and put it in the join store
        self._fold(m)
        good_ids, actuals, times = m.truth.check(ids, labels, timestamps, float(self.clock()),
                                                 result)
        if not good_ids:
            return result
        rows = self.join_store.take(m.name, good_ids)
        result.unmatched = m.truth.join(rows, actuals, times)
        result.matched = len(good_ids) - result.unmatched
        return result

    def _drain_expired(self) -> None:
        store = self._join_store
        if store is None:
            return
        for (model, version, reason), n in store.expired().items():
            m = self._models.get(model)
            if m is not None:
                m.truth.add_expired(version, reason, n)

    # -- folding and reading ----------------------------------------------------------

    def flush(self, model: str | None = None) -> None:
        """Fold buffered events into the count arrays (done before every scrape)."""
        for m in (self._models.values() if model is None else [self._model(model)]):
            self._fold(m)

    def _fold(self, m: _Model) -> None:
        events, rows = m.pending.take()
        problems = Problems(False)
        batches = [decode(r) for decode, r in rows.items()]
        self._count_validated(m, batches, problems, events)

    def _count_validated(self, m: _Model, batches: Sequence[ValidatedColumns],
                         problems: Problems, events: Sequence[RawEvent] = ()) -> None:
        """Remember the ids, then count the batches and single events under one lock."""
        for cols in batches:
            for key, k in cols.violations.items():
                problems.violation(key[0], key[1], k)
            if cols.n and len(cols.ids) and any(x is not None for x in cols.ids):
                m.truth.remember(cols.ids, partial(cols.column, numeric_order=m.counts.numeric_order),
                                 cols.predictions, cols.probabilities, cols.timestamps,
                                 float(self.clock()), problems)
        self._put_remembered(m)
        counts = m.counts
        with counts.lock:
            for cols in batches:
                counts.add_validated(cols, problems)
            if events:
                counts.fold_safely(events, problems)
            counts.record(problems)

    def _count_now(self, m: _Model, events: list[RawEvent]) -> None:
        problems = Problems(True)
        with m.counts.lock:
            m.counts.fold_safely(events, problems)
            m.counts.record(problems)
        if problems.violations:
            raise SchemaViolationError("; ".join(problems.messages) or "schema violation")

    def view(self) -> MonitorView:
        """Fold what waits, then copy every model's counts: what one scrape renders."""
        self.flush()
        self._drain_expired()
        out = []
        for m in self._models.values():
            with m.counts.lock:
                counts = m.counts.view()
            out.append(ModelView(m.baseline, counts, m.truth.view()))
        return MonitorView(tuple(out))

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
