"""The drift verdict of an evaluation: settings per model, and judging scored rows.

The statistics are :mod:`modelmon.stats.verdict`: each scored series gets its
null law (window size, reference size, the baseline's proportions), the
p-value of its verdict method's score, a Holm-adjusted level within its family
(a model version against one reference, features and outputs together) and
so a threshold: the larger of the method's effect floor and the null quantile
at that level. Rows below ``min_samples`` were not scored and get no verdict
("too few samples").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from ..catalogue import DRIFT_METHODS
from ..stats.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_EFFECT,
    DEFAULT_METHOD,
    NUMERIC_ONLY_VERDICT_METHODS,
    VERDICT_METHODS,
    holm_levels,
    null_model,
)

__all__ = ["VerdictSettings", "DEFAULT_VERDICT", "VerdictInput", "VerdictColumns", "judge"]


@dataclass(frozen=True)
class VerdictSettings:
    """How one model's series are judged.

    ``numeric`` and ``categorical`` name the verdict method of histograms and
    of categories/classes; ``effect`` the effect-size floor per method (the
    defaults of :data:`modelmon.stats.verdict.DEFAULT_EFFECT` for a method it
    does not name); ``alpha`` the false-alarm probability of the model
    version's family of series per evaluation and reference.
    """

    numeric: str = DEFAULT_METHOD["numeric"]
    categorical: str = DEFAULT_METHOD["categorical"]
    effect: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if self.numeric not in VERDICT_METHODS:
            raise ValueError(f"method: expected one of {', '.join(VERDICT_METHODS)} for numeric "
                             f"series, got {self.numeric!r}")
        if self.categorical not in VERDICT_METHODS or \
                self.categorical in NUMERIC_ONLY_VERDICT_METHODS:
            ok = [m for m in VERDICT_METHODS if m not in NUMERIC_ONLY_VERDICT_METHODS]
            raise ValueError(f"method: expected one of {', '.join(ok)} for categorical series, "
                             f"got {self.categorical!r}")
        for m, v in self.effect.items():
            if m not in VERDICT_METHODS:
                raise ValueError(f"effect: unknown method {m!r} (expected some of "
                                 f"{', '.join(VERDICT_METHODS)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                    math.isfinite(v) and v >= 0):
                raise ValueError(f"effect.{m}: expected a number >= 0, got {v!r}")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
            raise ValueError(f"alpha: expected a probability between 0 and 1 (exclusive), "
                             f"got {a!r}")

    def method(self, numeric: bool) -> str:
        """The verdict method of a histogram (``numeric``) or of a category/class series."""
        return self.numeric if numeric else self.categorical

    def floor(self, method: str) -> float:
        """The effect-size floor of ``method``."""
        return float(self.effect.get(method, DEFAULT_EFFECT[method]))


#: The verdict of a model without settings of its own.
DEFAULT_VERDICT = VerdictSettings()


class VerdictInput(NamedTuple):
    """One vectorised group of scored rows against one reference, ready to judge.

    ``scores`` is ``(n, len(DRIFT_METHODS))`` (NaN: not scored); ``baseline``
    the ``(n, k)`` baseline counts (their proportions are the null law's);
    ``window`` the current window's sizes; ``reference_n`` the reference's
    (baseline samples, or the previous window's sizes); ``edges`` ``(n, k-1)``
    for histograms, None for categories.
    """

    idents: Sequence[tuple[str, str, str, str]]
    reference: str
    scores: np.ndarray
    baseline: np.ndarray
    window: np.ndarray
    reference_n: np.ndarray
    edges: np.ndarray | None


class VerdictColumns(NamedTuple):
    """The verdict of each row of a :class:`VerdictInput`.

    ``drifted`` is 1.0 / 0.0, NaN where there is no verdict (not scored);
    ``threshold`` the score of the verdict method that decides, NaN likewise;
    ``method`` the verdict method's column in ``DRIFT_METHODS`` (-1: none).
    """

    drifted: np.ndarray
    threshold: np.ndarray
    method: np.ndarray


def judge(inputs: Sequence[VerdictInput],
          settings_of: Callable[[str], VerdictSettings] | None = None) -> list[VerdictColumns]:
    """The verdict of every row of ``inputs`` (one :class:`VerdictColumns` per input).

    Holm families are (model, model_version, reference) across all inputs;
    ``settings_of(model)`` gives each model's methods, floors and alpha
    (default :data:`DEFAULT_VERDICT` for all).
    """
    settings: dict[str, VerdictSettings] = {}

    def of(model: str) -> VerdictSettings:
        s = settings.get(model)
        if s is None:
            s = settings[model] = settings_of(model) if settings_of else DEFAULT_VERDICT
        return s

    col = {m: i for i, m in enumerate(DRIFT_METHODS)}
    # per input: method column, score, floor, alpha per row; null models per method
    prepared = []
    pvalues: list[np.ndarray] = []
    families: list[np.ndarray] = []
    alphas: list[np.ndarray] = []
    family_ids: dict[tuple[str, str, str], int] = {}
    for inp in inputs:
        n = len(inp.idents)
        numeric = inp.edges is not None
        # per family (a model version: few), then spread to the rows
        fam = np.fromiter((family_ids.setdefault((i[0], i[1], inp.reference), len(family_ids))
                           for i in inp.idents), dtype=np.intp, count=n)
        models: dict[str, int] = {}
        first = {f: k[0] for k, f in family_ids.items()}
        model_of = np.array([models.setdefault(first[f], len(models))
                             for f in range(len(family_ids))], dtype=np.intp)[fam] \
            if n else np.zeros(0, dtype=np.intp)
        per_model = [of(m) for m in models]
        names = [s.method(numeric) for s in per_model]
        mcol = np.array([col[m] for m in names], dtype=np.intp)[model_of]
        floor = np.array([s.floor(m) for s, m in zip(per_model, names)],
                         dtype=np.float64)[model_of]
        alpha = np.array([s.alpha for s in per_model], dtype=np.float64)[model_of]
        methods = np.asarray(names, dtype=object)[model_of]
        score = inp.scores[np.arange(n), mcol] if n else np.zeros(0)
        scored = ~np.isnan(score)
        pv = np.full(n, np.nan)
        nulls = []
        at = np.flatnonzero(scored)
        if at.size:
            nm = null_model(methods[at], inp.baseline[at], inp.window[at],
                            n_reference=inp.reference_n[at],
                            edges=None if inp.edges is None else inp.edges[at])
            pv[at] = nm.pvalue(score[at])
            nulls.append((at, nm))
        prepared.append((mcol, score, scored, floor, nulls))
        pvalues.append(pv)
        families.append(fam)
        alphas.append(alpha)
    if not inputs:
        return []
    sizes = [len(p) for p in pvalues]
    levels, rejected = holm_levels(np.concatenate(pvalues), np.concatenate(families),
                                   np.concatenate(alphas))
    out: list[VerdictColumns] = []
    start = 0
    for (mcol, score, scored, floor, nulls), size in zip(prepared, sizes):
        lv = levels[start:start + size]
        rj = rejected[start:start + size]
        start += size
        threshold = np.full(size, np.nan)
        for at, nm in nulls:
            level = np.where(np.isnan(lv[at]), 1.0, lv[at])
            q = nm.threshold(level)
            threshold[at] = np.where(np.isnan(lv[at]), np.nan, np.maximum(floor[at], q))
        has = scored & ~np.isnan(threshold)
        drifted = np.where(has, (rj & (score > floor)).astype(np.float64), np.nan)
        out.append(VerdictColumns(drifted, threshold, np.where(has, mcol, -1)))
    return out
