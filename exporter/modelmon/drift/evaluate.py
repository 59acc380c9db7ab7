"""Drift scores of the windows against the baseline and the previous window.

The statistics are :func:`modelmon.stats.drift_scores`, vectorised: series are
grouped by (numeric?, bucket count) and each group is one call, the baseline
and previous-window comparisons stacked as rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from ..catalogue import DRIFT_METHODS
from ..stats import drift_scores
from .exposition import PREDICTED_CLASS, Exposition, SeriesKey
from .scrape import Windows

__all__ = [
    "BaselineTable",
    "DriftResults",
    "ScoreKey",
    "SampleKey",
    "compute_scores",
    "CLASS_REFERENCE_SAMPLES",
]

log = logging.getLogger("modelmon.drift")

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

    def update(self, expositions: Iterable[Exposition]) -> None:
        """Take the baseline gauges of these reads; the first read that has a series wins."""
        for expo in reversed(list(expositions)):
            self.bucket_ratio.update(expo.bucket_ratio)
            self.category_ratio.update(expo.category_ratio)
            self.class_ratio.update(expo.class_ratio)
            self.samples.update(expo.baseline_samples)

    def reference(self, key: SeriesKey,
                  labels: tuple[float | str, ...]) -> tuple[np.ndarray | None, str]:
        """Reference counts per bucket in ``labels`` order, or ``(None, reason)``."""
        mv = (key.model, key.model_version)
        ratios: Mapping[float | str, float] | None
        if key.numeric:
            ratios = self.bucket_ratio.get(mv + (key.name,))  # type: ignore[assignment]
        elif key.family == PREDICTED_CLASS:
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
        if key.family == PREDICTED_CLASS:
            n = CLASS_REFERENCE_SAMPLES
        else:
            n = self.samples.get(mv + (key.name,), CLASS_REFERENCE_SAMPLES)
        return r * n, ""


@dataclass(frozen=True)
class DriftResults:
    """One evaluation, immutable; the service swaps in a new one per evaluation.

    ``scores[(model, model_version, kind, name, method, reference)]`` is a
    drift score (``kind`` ``"feature"`` or ``"output"``; for the predicted
    class distribution ``name`` is ``"predicted_class"``); NaN scores are
    left out. ``samples[(model, model_version, kind, name, reference)]`` is
    the sample count behind a comparison: the current window's for
    ``reference="baseline"``, the previous window's for ``"previous"``
    (present whether or not ``min_samples`` was reached).
    """

    timestamp: float
    scores: Mapping[ScoreKey, float]
    samples: Mapping[SampleKey, float]
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

    @property
    def all_sources_up(self) -> bool:
        return all(self.sources_up.values())

    def score(self, model: str, name: str, method: str = "psi", *, reference: str = "baseline",
              kind: str = "feature", model_version: str | None = None) -> float | None:
        """One score, or None when it was not computed (e.g. below ``min_samples``).

        ``model_version=None`` matches the only version of the model present.
        """
        for k, v in self.scores.items():
            if (k.model == model and k.name == name and k.method == method
                    and k.reference == reference and k.kind == kind
                    and (model_version is None or k.model_version == model_version)):
                return v
        return None

    def table(self, reference: str = "baseline") -> dict[tuple[str, str, str, str], dict[str, float]]:
        """``{(model, model_version, kind, name): {method: score}}`` for one reference."""
        out: dict[tuple[str, str, str, str], dict[str, float]] = {}
        for k, v in self.scores.items():
            if k.reference == reference:
                out.setdefault((k.model, k.model_version, k.kind, k.name), {})[k.method] = v
        return out


class _Job:
    __slots__ = ("ref", "cur", "edges", "tags")

    def __init__(self) -> None:
        self.ref: list[np.ndarray] = []
        self.cur: list[np.ndarray] = []
        self.edges: list[np.ndarray] = []
        self.tags: list[tuple[SeriesKey, str]] = []


def compute_scores(
    windows: Windows,
    baseline: BaselineTable,
    min_samples: int,
    on_skip: Callable[[SeriesKey, str], None] | None = None,
    previous_invalid: Container[SeriesKey] = frozenset(),
) -> tuple[dict[ScoreKey, float], dict[SampleKey, float]]:
    """Scores and sample counts of every series in ``windows``.

    A series without a usable baseline (none read, or buckets/categories that
    differ from the live ones) is skipped entirely and reported through
    ``on_skip(key, reason)``. For a series in ``previous_invalid`` (its
    previous-window counts could not be used; the caller reports why) only the
    comparison with the baseline is made.
    """
    scores: dict[ScoreKey, float] = {}
    samples: dict[SampleKey, float] = {}
    jobs: dict[tuple[bool, int], _Job] = {}
    seen: set[tuple[str, str, str, str]] = set()
    edge_cache: dict[tuple[float | str, ...], np.ndarray] = {}
    no_edges = np.zeros(0)
    order = sorted(windows.current, key=lambda k: (k.model, k.model_version, k.kind, k.family,
                                                     k.name))
    for key in order:
        labels = windows.labels[key]
        ident = (key.model, key.model_version, key.kind, key.name)
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
        cur = windows.current[key]
        n_cur = float(cur.sum())
        samples[SampleKey(*ident, "baseline")] = n_cur
        if key.numeric:
            edges = edge_cache.get(labels)
            if edges is None:
                edges = edge_cache[labels] = np.asarray(labels[:-1], dtype=np.float64)
        else:
            edges = no_edges
        group = (key.numeric, len(labels))
        if n_cur >= min_samples:
            job = jobs.setdefault(group, _Job())
            job.ref.append(ref)
            job.cur.append(cur)
            job.edges.append(edges)
            job.tags.append((key, "baseline"))
        if windows.previous is not None and key not in previous_invalid:
            prev = windows.previous.get(key)
            if prev is None:
                prev = np.zeros(len(labels))
            n_prev = float(prev.sum())
            samples[SampleKey(*ident, "previous")] = n_prev
            if n_cur >= min_samples and n_prev >= min_samples:
                job = jobs.setdefault(group, _Job())
                job.ref.append(prev)
                job.cur.append(cur)
                job.edges.append(edges)
                job.tags.append((key, "previous"))
    results: dict[tuple[SeriesKey, str], dict[str, float]] = {}
    for (numeric, _), job in jobs.items():
        for i, res in _run(job, numeric):
            results[job.tags[i]] = res
    # Export in a stable order: by series, then reference, then method order.
    for key in sorted({k for k, _ in results}, key=lambda k: (k.model, k.model_version, k.kind,
                                                            k.name)):
        for reference in ("baseline", "previous"):
            res = results.get((key, reference))
            if res is None:
                continue
            for method in DRIFT_METHODS:
                v = res.get(method)
                if v is not None and not math.isnan(v):
                    scores[ScoreKey(key.model, key.model_version, key.kind, key.name, method,
                                    reference)] = v
    return scores, samples


def _run(job: _Job, numeric: bool) -> Iterable[tuple[int, dict[str, float]]]:
    """One ``drift_scores`` call for the whole group; row by row if that call fails."""
    ref = np.stack(job.ref)
    cur = np.stack(job.cur)
    edges = np.stack(job.edges) if numeric else None
    try:
        out = drift_scores(ref, cur, edges)
    except (ValueError, FloatingPointError) as exc:
        log.warning("event=drift_scores_failed rows=%d buckets=%d error=%r (retrying row by row)",
                    ref.shape[0], ref.shape[1], str(exc))
    else:
        names = list(out)
        cols = [np.atleast_1d(np.asarray(out[m], dtype=np.float64)).tolist() for m in names]
        for i, row in enumerate(zip(*cols)):
            yield i, dict(zip(names, row))
        return
    for i in range(ref.shape[0]):
        key, reference = job.tags[i]
        try:
            one = drift_scores(ref[i], cur[i], None if edges is None else edges[i])
        except (ValueError, FloatingPointError) as exc:
            log.warning("event=drift_scores_failed model=%r model_version=%r series=%s/%r "
                        "reference=%s error=%r", key.model, key.model_version, key.family,
                        key.name, reference, str(exc))
            continue
        yield i, {m: float(v) for m, v in one.items()}
