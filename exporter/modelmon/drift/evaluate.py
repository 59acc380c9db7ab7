"""Drift scores of the windows against the baseline and the previous window.

The statistics are :func:`modelmon.stats.drift_scores`, vectorised: series are
grouped by (numeric?, bucket count) and each group is one call, the baseline
and previous-window comparisons stacked as rows.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, TypeVar

import numpy as np

from ..catalogue import CALIBRATION_QUANTITIES, DRIFT_METHODS, ESTIMATED_METRICS
from ..stats import drift_scores, estimate_performance
from .exposition import FAMILY_PREDICTED_CLASS, Exposition, SeriesKey
from .scrape import Windows
from .verdict import VerdictColumns, VerdictInput, VerdictSettings, judge

__all__ = [
    "BaselineTable",
    "DriftResults",
    "ScoreBlock",
    "ScoreSet",
    "EMPTY_SCORES",
    "Rows",
    "score_rows",
    "CalibrationGauges",
    "calibrations_of",
    "estimate",
    "ScoreKey",
    "SampleKey",
    "compute_scores",
    "CLASS_REFERENCE_SAMPLES",
    "Judged",
]

log = logging.getLogger("modelmon.drift")
T = TypeVar("T")

#: Reference size for distributions whose baseline has no samples gauge (the
#: predicted class): reference counts are ratio x this.
CLASS_REFERENCE_SAMPLES = 1e6


class ScoreKey(NamedTuple):
    """Key of :attr:`DriftResults.scores`."""

    model: str
    model_version: str
    kind: str  # "feature" or "output"
    name: str  # feature name, output name, or "predicted_class"
    method: str  # one of catalogue.DRIFT_METHODS
    reference: str  # "baseline" or "previous"


class SampleKey(NamedTuple):
    """Key of :attr:`DriftResults.samples`."""

    model: str
    model_version: str
    kind: str
    name: str
    reference: str


class BaselineTable:
    """The baseline gauges last read from the sources, as reference counts."""

    def __init__(self) -> None:
        self.bucket_ratio: dict[tuple[str, str, str], dict[float, float]] = {}
        self.category_ratio: dict[tuple[str, str, str], dict[str, float]] = {}
        self.class_ratio: dict[tuple[str, str], dict[str, float]] = {}
        self.samples: dict[tuple[str, str, str], float] = {}
        #: ``{(model, model_version): CalibrationGauges}`` of binary classifiers.
        self.calibrations: dict[tuple[str, str], CalibrationGauges] = {}

    def update(self, expositions: Iterable[Exposition]) -> None:
        """Take the baseline gauges of these reads; the first read that has a series wins."""
        for expo in reversed(list(expositions)):
            self.bucket_ratio.update(expo.bucket_ratio)
            self.category_ratio.update(expo.category_ratio)
            self.class_ratio.update(expo.class_ratio)
            self.samples.update(expo.baseline_samples)
            self.calibrations.update(calibrations_of(expo.calibration))

    def reference(self, key: SeriesKey,
                  labels: tuple[float | str, ...]) -> tuple[np.ndarray | None, str]:
        """Reference counts per bucket in ``labels`` order, or ``(None, reason)``."""
        mv = (key.model, key.model_version)
        ratios: Mapping[float | str, float] | None
        if key.numeric:
            ratios = self.bucket_ratio.get(mv + (key.name,))  # type: ignore[assignment]
        elif key.family == FAMILY_PREDICTED_CLASS:
            ratios = self.class_ratio.get(mv)  # type: ignore[assignment]
        else:
            ratios = self.category_ratio.get(mv + (key.name,))  # type: ignore[assignment]
        if ratios is None:
            return None, "no_baseline"
        if len(ratios) != len(labels):
            return None, "baseline_mismatch"
        try:
            r = np.array(list(map(ratios.__getitem__, labels)), dtype=np.float64)
        except KeyError:
            return None, "baseline_mismatch"
        if key.numeric:  # cumulative -> per bucket, negatives (float noise) clipped
            r[1:] -= r[:-1].copy()
            np.maximum(r, 0.0, out=r)
        if key.family == FAMILY_PREDICTED_CLASS:
            n = CLASS_REFERENCE_SAMPLES
        else:
            n = self.samples.get(mv + (key.name,), CLASS_REFERENCE_SAMPLES)
        return r * n, ""


class ScoreBlock(NamedTuple):
    """Scores of one vectorised group against one reference, as columns.

    ``values[i, j]`` is method ``DRIFT_METHODS[j]`` of the series ``idents[i]``
    (``(model, model_version, kind, name)``), NaN where it was not computed
    (below ``min_samples``, a method the model does not use, or one that does
    not apply to categories). ``samples[i]`` is the sample count behind the
    comparison (the current window's against the baseline, the previous
    window's against the previous window), NaN where there is none.
    ``verdict`` holds the drift verdict of each row.
    """

    idents: tuple[tuple[str, str, str, str], ...]
    reference: str
    values: np.ndarray
    samples: np.ndarray
    #: The verdict per row (:class:`~modelmon.drift.verdict.VerdictColumns`): ``drifted``
    #: 1/0 (NaN: no verdict), ``threshold`` and the verdict method's column; None: none.
    verdict: VerdictColumns | None = None


class ScoreSet:
    """The scores of one evaluation: immutable columns, and mapping views made on first use.

    The exporter renders the columns (:attr:`blocks`) directly; :attr:`scores`
    and :attr:`samples` are the same numbers keyed by :class:`ScoreKey` and
    :class:`SampleKey` in a stable order (series, reference, method), for the
    API and tests.
    """

    def __init__(self, blocks: Iterable[ScoreBlock] = ()) -> None:
        self.blocks: tuple[ScoreBlock, ...] = tuple(blocks)
        self._lock = threading.RLock()  # memo() builders may call order()
        self._scores: Mapping[ScoreKey, float] | None = None
        self._samples: Mapping[SampleKey, float] | None = None
        self._order: tuple[np.ndarray, ...] | None = None
        self._memo: dict[object, object] = {}

    def __repr__(self) -> str:
        return f"ScoreSet({sum(len(b.idents) for b in self.blocks)} rows in {len(self.blocks)} blocks)"

    def memo(self, key: object, build: Callable[[], T]) -> T:
        """``build()``, computed once per key for this set (e.g. its rendered exposition)."""
        with self._lock:
            if key not in self._memo:
                self._memo[key] = build()
            return self._memo[key]  # type: ignore[return-value]

    def order(self) -> tuple[np.ndarray, ...]:
        """Per block, the row order that sorts its idents (computed once)."""
        with self._lock:
            if self._order is None:
                self._order = tuple(
                    np.array(sorted(range(len(b.idents)), key=b.idents.__getitem__), dtype=np.intp)
                    for b in self.blocks)
            return self._order

    @property
    def scores(self) -> Mapping[ScoreKey, float]:
        with self._lock:
            if self._scores is None:
                rank = {"baseline": 0, "previous": 1}
                items: list[tuple[ScoreKey, float]] = []
                for b in self.blocks:
                    for ident, row in zip(b.idents, b.values.tolist()):
                        for method, v in zip(DRIFT_METHODS, row):
                            if v == v:  # not NaN
                                items.append((ScoreKey(*ident, method, b.reference), v))
                mrank = {m: i for i, m in enumerate(DRIFT_METHODS)}
                items.sort(key=lambda kv: (kv[0][:4], rank.get(kv[0].reference, 2),
                                           mrank[kv[0].method]))
                self._scores = MappingProxyType(dict(items))
            return self._scores

    @property
    def samples(self) -> Mapping[SampleKey, float]:
        with self._lock:
            if self._samples is None:
                out: dict[SampleKey, float] = {}
                for b in self.blocks:
                    for ident, n in zip(b.idents, b.samples.tolist()):
                        if n == n:
                            out[SampleKey(*ident, b.reference)] = n
                self._samples = MappingProxyType(dict(sorted(out.items())))
            return self._samples


#: No scores (before the first evaluation, or when every series was skipped).
EMPTY_SCORES = ScoreSet()


class Scored:
    """``scores`` and ``samples`` mapping views of a ``scored`` :class:`ScoreSet` attribute."""

    scored: ScoreSet

    @property
    def scores(self) -> Mapping[ScoreKey, float]:
        return self.scored.scores

    @property
    def samples(self) -> Mapping[SampleKey, float]:
        return self.scored.samples


class CalibrationGauges(NamedTuple):
    """A binary classifier's calibration as read from ``modelmon_baseline_calibration``."""

    output: str
    les: tuple[float, ...]  # bucket upper bounds of the score output, +Inf last
    rows: np.ndarray
    positives: np.ndarray
    predicted_positive: np.ndarray
    true_positive: np.ndarray


def calibrations_of(table: Mapping[tuple[str, str, str, str], Mapping[float, float]]
                    ) -> dict[tuple[str, str], CalibrationGauges]:
    """``{(model, model_version): CalibrationGauges}`` from
    ``{(model, version, output, quantity):
    {le: count}}``; incomplete or inconsistent tables are left out."""
    by_mv: dict[tuple[str, str, str], dict[str, Mapping[float, float]]] = {}
    for (m, v, output, quantity), counts in table.items():
        by_mv.setdefault((m, v, output), {})[quantity] = counts
    out: dict[tuple[str, str], CalibrationGauges] = {}
    for (m, v, output), q in sorted(by_mv.items()):
        if set(q) != set(CALIBRATION_QUANTITIES):
            continue
        les = tuple(sorted(q["rows"]))
        if any(tuple(sorted(c)) != les for c in q.values()) or not les or les[-1] != math.inf:
            continue
        arrays = [np.array([q[name][le] for le in les]) for name in CALIBRATION_QUANTITIES]
        if (m, v) not in out:  # one score output per binary classifier
            out[(m, v)] = CalibrationGauges(output, les, *arrays)
    return out


def estimate(cal: CalibrationGauges, labels: Sequence[float | str], counts: np.ndarray,
             min_samples: int) -> dict[str, float] | None:
    """Expected accuracy, precision, recall and F1 of a live score window (None when its
    buckets are not the calibration's or it holds fewer than ``min_samples``)."""
    if tuple(float(x) for x in labels) != cal.les or float(counts.sum()) < min_samples \
            or float(counts.sum()) <= 0:
        return None
    est = estimate_performance(counts, cal.rows, cal.positives, cal.predicted_positive,
                               cal.true_positive)
    return {m: float(getattr(est, m)) for m in ESTIMATED_METRICS}


@dataclass(frozen=True)
class DriftResults(Scored):
    """One evaluation, immutable; the service swaps in a new one per evaluation.

    ``scored`` holds the scores as columns; ``scores[(model, model_version,
    kind, name, method, reference)]`` is a drift score (``kind`` ``"feature"``
    or ``"output"``; for the predicted class distribution ``name`` is
    ``"predicted_class"``); NaN scores are left out. ``samples[(model,
    model_version, kind, name, reference)]`` is the sample count behind a
    comparison: the current window's for ``reference="baseline"``, the
    previous window's for ``"previous"`` (present whether or not
    ``min_samples`` was reached).
    """

    timestamp: float
    scored: ScoreSet
    sources_up: Mapping[str, bool]
    source_errors: Mapping[str, str]
    last_success_timestamp: float | None
    window_seconds: float
    previous_window_seconds: float | None
    evaluations: int
    duration_seconds: float
    #: Cumulative counts of the duration histogram at ``duration_les`` (all evaluations so far).
    duration_les: tuple[str, ...] = ()
    duration_cumulative: tuple[float, ...] = ()
    duration_sum: float = 0.0
    min_samples: int = 0
    info: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    #: Cumulative ``modelmon_drift_skipped_total`` by reason (all evaluations so far).
    skipped: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: Cumulative ``modelmon_drift_query_errors_total`` by reason (query mode; empty otherwise).
    query_errors: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    #: ``{(model, model_version): {metric: value}}``: performance estimated from the live score
    #: window and the baseline's calibration (binary classifiers with one).
    estimates: Mapping[tuple[str, str], Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({}))

    @property
    def all_sources_up(self) -> bool:
        return all(self.sources_up.values())

    def score(self, model: str, name: str, method: str = "psi", *, reference: str = "baseline",
              kind: str = "feature", model_version: str | None = None) -> float | None:
        """One score, or None when it was not computed (e.g. below ``min_samples``).

        ``model_version=None`` matches the only version of the model present.
        """
        j = DRIFT_METHODS.index(method) if method in DRIFT_METHODS else -1
        if j < 0:
            return None
        for b in self.scored.blocks:
            if b.reference != reference:
                continue
            for i, (m, v, k, n) in enumerate(b.idents):
                if (m == model and n == name and k == kind
                        and (model_version is None or v == model_version)):
                    x = float(b.values[i, j])
                    return None if math.isnan(x) else x
        return None

    def verdicts(self, reference: str = "baseline") -> dict[tuple[str, str, str, str], Judged]:
        """``{(model, model_version, kind, name): Judged}`` of the series with a verdict."""
        out: dict[tuple[str, str, str, str], Judged] = {}
        for b in self.scored.blocks:
            v = b.verdict
            if b.reference != reference or v is None:
                continue
            for i in np.flatnonzero(~np.isnan(v.drifted)).tolist():
                j = int(v.method[i])
                out[b.idents[i]] = Judged(bool(v.drifted[i] == 1.0), float(v.threshold[i]),
                                          DRIFT_METHODS[j], float(b.values[i, j]))
        return dict(sorted(out.items()))

    def verdict(self, model: str, name: str, *, reference: str = "baseline",
                kind: str = "feature", model_version: str | None = None) -> Judged | None:
        """The verdict of one series, or None without one (too few samples, not scored).

        ``model_version=None`` matches the only version of the model present.
        """
        for (m, v, k, n), judged in self.verdicts(reference).items():
            if m == model and n == name and k == kind and (model_version in (None, v)):
                return judged
        return None

    def table(self, reference: str = "baseline") -> dict[tuple[str, str, str, str], dict[str, float]]:
        """``{(model, model_version, kind, name): {method: score}}`` for one reference."""
        out: dict[tuple[str, str, str, str], dict[str, float]] = {}
        for k, v in self.scores.items():
            if k.reference == reference:
                out.setdefault((k.model, k.model_version, k.kind, k.name), {})[k.method] = v
        return out


class Judged(NamedTuple):
    """The verdict of one series: see :class:`~modelmon.drift.verdict.VerdictColumns`.

    ``score`` is the verdict method's score (NaN when a per-model ``methods``
    list left it out of the export).
    """

    drifted: bool
    threshold: float
    method: str
    score: float


def ident_of(key: SeriesKey) -> tuple[str, str, str, str]:
    """``(model, model_version, kind, name)``: what a score is exported under."""
    return (key.model, key.model_version, key.kind, key.name)


def compute_scores(
    windows: Windows,
    baseline: BaselineTable,
    min_samples: int,
    on_skip: Callable[[SeriesKey, str], None] | None = None,
    previous_invalid: Container[SeriesKey] = frozenset(),
    settings_of: Callable[[str], VerdictSettings] | None = None,
) -> ScoreSet:
    """Scores and sample counts of every series in ``windows`` (scrape mode).

    A series without a usable baseline (none read, or buckets/categories that
    differ from the live ones) is skipped entirely and reported through
    ``on_skip(key, reason)``. For a series in ``previous_invalid`` (its
    previous-window counts could not be used; the caller reports why) only the
    comparison with the baseline is made. The statistics and the verdict are
    :func:`score_rows`'s.
    """
    groups: dict[tuple[bool, int], list[tuple[SeriesKey, np.ndarray, np.ndarray, np.ndarray | None,
                                              bool]]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    order = sorted(windows.current, key=lambda k: (k.model, k.model_version, k.kind, k.family,
                                                     k.name))
    has_previous = windows.previous is not None
    for key in order:
        labels = windows.labels[key]
        ident = ident_of(key)
        if ident in seen:
            if on_skip:
                on_skip(key, "duplicate_name")
            continue
        ref, reason = baseline.reference(key, labels)
        if ref is None:
            if on_skip:
                on_skip(key, reason)
            continue
        seen.add(ident)
        prev: np.ndarray | None = None
        prev_ok = False
        if windows.previous is not None and key not in previous_invalid:
            prev = windows.previous.get(key)
            if prev is None:
                prev = np.zeros(len(labels))
            prev_ok = True
        groups.setdefault((key.numeric, len(labels)), []).append(
            (key, windows.current[key], ref, prev, prev_ok))
    rows: list[Rows] = []
    edge_cache: dict[tuple[float | str, ...], np.ndarray] = {}
    for (numeric, k), items in groups.items():
        keys = [it[0] for it in items]
        edges = None
        if numeric:
            edge_rows = []
            for key in keys:
                labels = windows.labels[key]
                e = edge_cache.get(labels)
                if e is None:
                    e = edge_cache[labels] = np.asarray(labels[:-1], dtype=np.float64)
                edge_rows.append(e)
            edges = np.stack(edge_rows)
        zeros = np.zeros(k)
        rows.append(Rows(
            idents=[ident_of(key) for key in keys],
            current=np.stack([it[1] for it in items]),
            reference=np.stack([it[2] for it in items]),
            edges=edges,
            previous=(np.stack([it[3] if it[3] is not None else zeros for it in items])
                      if has_previous else None),
            previous_ok=np.array([it[4] for it in items], dtype=bool) if has_previous else None,
            min_samples=min_samples,
        ))
    return score_rows(rows, settings_of=settings_of)


class Rows(NamedTuple):
    """Comparisons of ``n`` series that share a bucket count ``k`` (one vectorised group).

    ``idents[i]`` names row ``i`` as it is exported.
    ``current`` and ``reference`` (baseline counts) are ``(n, k)``; ``edges``
    the ``(n, k - 1)`` finite upper bounds of histograms, None for categories;
    ``previous`` the previous window's ``(n, k)`` counts, used on the rows
    where ``previous_ok`` is True (None: no previous window at all);
    ``min_samples`` one threshold or one per row.
    """

    idents: Sequence[tuple[str, str, str, str]]  # (model, model_version, kind, name)
    current: np.ndarray
    reference: np.ndarray
    edges: np.ndarray | None
    previous: np.ndarray | None
    previous_ok: np.ndarray | None
    min_samples: int | np.ndarray


def score_rows(groups: Iterable[Rows],
               methods_of: Callable[[str], Collection[str]] | None = None,
               settings_of: Callable[[str], VerdictSettings] | None = None) -> ScoreSet:
    """All drift scores of these groups, one :func:`~modelmon.stats.drift_scores` call per
    group, and their verdict (:func:`~modelmon.drift.verdict.judge`).

    A comparison is made when the current window (and, against the previous
    window, the previous one too) holds at least ``min_samples``. Sample counts
    are reported for every row regardless. ``methods_of(model)``, when given,
    limits the methods kept per model (the verdict method is judged whether
    its score is kept or not); ``settings_of(model)`` gives each model's
    verdict settings (default: :data:`~modelmon.drift.verdict.DEFAULT_VERDICT`).
    """
    blocks: list[tuple[tuple[tuple[str, str, str, str], ...], str, np.ndarray, np.ndarray]] = []
    inputs: list[VerdictInput] = []
    col = {m: i for i, m in enumerate(DRIFT_METHODS)}
    for g in groups:
        n = len(g.idents)
        if n == 0:
            continue
        cur = np.asarray(g.current, dtype=np.float64)
        n_cur = cur.sum(axis=1)
        ms = np.asarray(g.min_samples, dtype=np.float64)
        base_rows = np.flatnonzero(n_cur >= ms)
        prev_rows = np.zeros(0, dtype=np.intp)
        n_prev = None
        if g.previous is not None:
            prev = np.asarray(g.previous, dtype=np.float64)
            n_prev = prev.sum(axis=1)
            ok = np.ones(n, dtype=bool) if g.previous_ok is None else g.previous_ok
            prev_rows = np.flatnonzero(ok & (n_cur >= ms) & (n_prev >= ms))
        ref_all = np.concatenate([g.reference[base_rows], prev[prev_rows]]) if prev_rows.size \
            else g.reference[base_rows]
        rows_all = np.concatenate([base_rows, prev_rows])
        out = np.full((rows_all.size, len(DRIFT_METHODS)), np.nan)
        if rows_all.size:
            edges = None if g.edges is None else g.edges[rows_all]
            _run(np.asarray(ref_all, dtype=np.float64), cur[rows_all], edges, out, col,
                 base_rows.tolist() + prev_rows.tolist(), g.idents,
                 base_rows.size)
        idents = tuple(g.idents)
        reference = np.asarray(g.reference, dtype=np.float64)
        ref_n = reference.sum(axis=1)
        g_edges = None if g.edges is None else np.asarray(g.edges, dtype=np.float64)
        values = np.full((n, len(DRIFT_METHODS)), np.nan)
        values[base_rows] = out[:base_rows.size]
        inputs.append(VerdictInput(idents, "baseline", values.copy(), reference, n_cur, ref_n,
                                   g_edges))
        keep = _method_mask(g.idents, methods_of) if methods_of is not None else None
        if keep is not None:
            values[~keep] = np.nan
        blocks.append((idents, "baseline", values, n_cur))
        if g.previous is not None:
            pvalues = np.full((n, len(DRIFT_METHODS)), np.nan)
            pvalues[prev_rows] = out[base_rows.size:]
            assert n_prev is not None
            inputs.append(VerdictInput(idents, "previous", pvalues.copy(), reference, n_cur,
                                       n_prev, g_edges))
            if keep is not None:
                pvalues[~keep] = np.nan
            psamples = n_prev.copy()
            if g.previous_ok is not None:
                psamples[~g.previous_ok] = np.nan
            blocks.append((idents, "previous", pvalues, psamples))
    verdicts = judge(inputs, settings_of)
    return ScoreSet(ScoreBlock(i, r, v, n, verdict) for (i, r, v, n), verdict
                    in zip(blocks, verdicts))


def _method_mask(idents: Sequence[tuple[str, str, str, str]],
                 methods_of: Callable[[str], Collection[str]]) -> np.ndarray:
    """``(n, len(DRIFT_METHODS))`` True where the row's model keeps the method."""
    per_model: dict[str, int] = {}
    idx = np.fromiter((per_model.setdefault(i[0], len(per_model)) for i in idents),
                      dtype=np.intp, count=len(idents))
    table = np.array([[m in methods_of(model) for m in DRIFT_METHODS] for model in per_model],
                     dtype=bool).reshape(len(per_model), len(DRIFT_METHODS))
    return table[idx]


def _run(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray | None, out: np.ndarray,
         col: Mapping[str, int], rows: Sequence[int],
         idents: Sequence[tuple[str, str, str, str]], n_baseline: int) -> None:
    """``drift_scores`` on the stacked rows into ``out``; row by row if the stacked call fails."""
    try:
        res = drift_scores(ref, cur, edges)
    except (ValueError, FloatingPointError) as exc:
        log.warning("event=drift_scores_failed rows=%d buckets=%d error=%r (retrying row by row)",
                    ref.shape[0], ref.shape[1], str(exc))
    else:
        for m, v in res.items():
            out[:, col[m]] = v
        return
    for i in range(ref.shape[0]):
        try:
            one = drift_scores(ref[i], cur[i], None if edges is None else edges[i])
        except (ValueError, FloatingPointError) as exc:
            model, version, kind, name = idents[rows[i]]
            log.warning("event=drift_scores_failed model=%r model_version=%r series=%s/%r "
                        "reference=%s error=%r", model, version, kind, name,
                        "baseline" if i < n_baseline else "previous", str(exc))
            continue
        for m, v in one.items():
            out[i, col[m]] = float(v)
