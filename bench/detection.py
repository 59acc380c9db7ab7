"""Drift detection benchmark (issue 15): detection and false-alarm rates of drift rules.

    python bench/detection.py                  # full run, ~10 min on 2 cores
    python bench/detection.py --quick          # < 2 min: 4 shapes, fewer windows (a check)
    python bench/detection.py --shapes normal,zipf50 --reps 1000 --json rates.json
    python bench/detection.py --evidently-python /venv-ev/bin/python \\
                              --nannyml-python /venv-nml/bin/python

Question: per feature and per evaluation, how often does each rule call a window
drifted when nothing changed (false alarms), and when the population moved
(detection)? The rules, side by side on the same references:

* **modelmon**: ``drift_verdict`` (``modelmon.stats.verdict``) on 20 quantile
  buckets of the reference (``quantile_edges``, ``bucket_counts``; one count per
  category for categoricals), method ``DEFAULT_METHOD`` (normed Wasserstein for
  numeric features, Jensen-Shannon for categoricals), ``DEFAULT_EFFECT`` floor,
  ``DEFAULT_ALPHA``, each window its own one-feature family (``groups=arange``);
* **Evidently**'s default rule (reference > 1,000 rows): normed Wasserstein
  (``scipy.stats.wasserstein_distance / max(std(ref), 0.001) >= 0.1``) on the
  raw values of a numeric column with more than 5 distinct values,
  Jensen-Shannon (natural log, value counts) ``>= 0.1`` for a categorical one;
* **NannyML**'s default univariate rule: Jensen-Shannon (base 2; ``doane``
  histogram of the reference for continuous columns, value counts for
  categoricals) above the mean + 3 std (``np.nanstd``) of its values on 10
  reference chunks of 1,000 rows; no lower threshold;
* **KS**: ``scipy.stats.ks_2samp`` p < 0.05 on the raw values (categoricals:
  ``scipy.stats.chi2_contingency`` p < 0.05 on the 2 x K counts);
* **PSI > 0.2**: ``modelmon.stats.psi`` on modelmon's buckets, the old rule.

Populations (``SHAPES``): 10 numeric shapes and Zipf categoricals with 5 and 50
categories. Each reference is N = 10,000 rows drawn from the population; each
window is drawn from the population (not from the reference: both are samples)
and then changed. Location shifts move every value by ``d`` population
standard deviations; for the discrete shapes the change is applied before the
values are made discrete again, so all shifts are stochastically ordered and
move the mean by exactly ``d`` sd (Poisson: rate + d sd; rounded: the latent
value shifted, then rounded; zero-inflated: zeros stay zeros, the non-zero
part moves by ``d sd / (1 - pi)``). The x1.5 scale change scales around the
population mean (rounded: the latent value, then rounded; Poisson: rounded
half to even; zero-inflated: the non-zero part around its own mean, so the
overall mean stays put). For a
categorical, one category's share gains 5 or 10 points, the others shrink in
proportion: the most frequent category and, separately, the least frequent.

Method. Per shape a bank of ``--bank`` references (default 1,000) is drawn
once and shared by every n and effect; window ``w`` of a cell is judged against
reference ``w % bank``. At large n the reference's own noise dominates the
score, so the number of *distinct* references, not of windows, sets the
precision of a false-alarm rate there: 20 references would give a rate in
steps of 5 %. modelmon and PSI only see bucket counts, so their windows are
drawn as multinomial counts from the changed population's exact bucket
probabilities under each reference's edges (from the population's CDF): exact
at any n, ``--reps`` windows per cell (default 2,000). Categorical windows are
counts for every rule (all of them only use the counts). Evidently, NannyML
and KS on a numeric shape need raw values: ``--raw-reps`` windows per cell for
n <= 10,000 (default 400), half that at 100,000 and a tenth at 1,000,000.
Their statistics are computed from the sorted window in O(N log n): the
Wasserstein distance from the quantile functions, the KS statistic at the
reference's distinct values, NannyML's histogram by ``searchsorted`` exactly as
``np.histogram`` does, and the KS p-value by ``ks_2samp`` itself whenever the
asymptotic p is within [0.01, 0.25] (elsewhere the decision at 0.05 cannot
differ); the run checks these against SciPy on sample windows first, and the
vectorised categorical rules against one window at a time. If
Evidently and NannyML are importable here or in ``--evidently-python`` /
``--nannyml-python``, the run also feeds sample (reference, window) pairs to
the real libraries and compares their drift decisions and scores with ours.

Targets (issue 15), for modelmon's verdict, per feature and evaluation: false
alarms <= 1 % at every n >= 100; >= 95 % of 0.25 sd shifts detected at
n >= 1,000, of 0.5 sd shifts at n >= 300, of +10-point category shifts at
n >= 1,000. Cells that miss are bold, and the last section lists every miss
with its 95 % Wilson interval.

Seeded: the same arguments give the same numbers (every cell has its own
random stream, so ``--shapes`` does not change the others). The file is longer
than most: populations, five rules, the checks against SciPy and the libraries
and the report belong to one question and one run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# The scripts switch third-party telemetry off themselves (see bench/README.md).
for _k, _v in (("DO_NOT_TRACK", "1"), ("ITERATIVE_DO_NOT_TRACK", "1"),
               ("NML_DISABLE_USAGE_LOGGING", "1"), ("WHYLOGS_NO_ANALYTICS", "True")):
    os.environ.setdefault(_k, _v)

import numpy as np
import scipy
import scipy.stats as st
from scipy.spatial.distance import jensenshannon
from scipy.special import kolmogorov

from modelmon.stats import (
    DEFAULT_ALPHA,
    DEFAULT_EFFECT,
    DEFAULT_METHOD,
    NullModel,
    bucket_counts,
    drift_verdict,
    jensen_shannon,
    null_model,
    psi,
    quantile_edges,
    wasserstein,
)

SEED = 20240615
N_REF = 10_000
BINS = 20
SIZES = (100, 300, 1_000, 10_000, 100_000, 1_000_000)
RULES = ("modelmon", "evidently", "nannyml", "ks", "psi")
RULE_TITLES = {"modelmon": "modelmon", "evidently": "Evidently", "nannyml": "NannyML",
               "ks": "KS", "psi": "PSI>0.2"}
EVIDENTLY_THRESHOLD = 0.1  # wasserstein_stat_test and jensenshannon_stat_test defaults
EVIDENTLY_JS_BASE = None  # _jensenshannon(base=None): natural log in 0.7 (base 2 before)
NANNYML_CHUNKS = 10  # DefaultChunker.DEFAULT_CHUNK_COUNT
NANNYML_STD = 3.0  # StandardDeviationThreshold default multiplier
P_LEVEL = 0.05  # KS and chi-square
PSI_LIMIT = 0.2
KS_EXACT_MAX = 10_000  # ks_2samp's MAX_AUTO_N: exact p-value up to this size
KS_BAND = (0.01, 0.25)  # asymptotic p-values for which ks_2samp itself decides
FA_TARGET = 0.01
DETECT_TARGET = 0.95


# ---------------------------------------------------------------------------
# Populations

Effect = tuple[str, float]  # ("none", 0), ("shift", d), ("scale", k), ("top"|"bottom", points)
NUM_EFFECTS: tuple[Effect, ...] = (("none", 0.0), ("shift", 0.1), ("shift", 0.25),
                                   ("shift", 0.5), ("shift", 1.0), ("scale", 1.5))
CAT_EFFECTS: tuple[Effect, ...] = (("none", 0.0), ("top", 5.0), ("bottom", 5.0),
                                   ("top", 10.0), ("bottom", 10.0))


def effect_label(effect: Effect) -> str:
    """Short label of an effect, as the tables print it."""
    kind, size = effect
    if kind == "none":
        return "no change"
    if kind == "shift":
        return f"{size:g} sd shift"
    if kind == "scale":
        return f"x{size:g} scale"
    return f"+{size:g} pts ({'most' if kind == 'top' else 'least'} frequent)"


def _transform(effect: Effect, mu: float, sd: float,
               ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The change ``T`` applied to a value and its inverse (shift by d sd, scale around mu)."""
    kind, size = effect
    if kind == "shift":
        return (lambda y: y + size * sd), (lambda x: x - size * sd)
    if kind == "scale":
        return (lambda y: mu + size * (y - mu)), (lambda x: mu + (x - mu) / size)
    return (lambda y: y), (lambda x: x)


class Mixture:
    """A two-component normal mixture with the frozen-distribution methods used here."""

    def __init__(self, w: float, m: tuple[float, float], s: tuple[float, float]) -> None:
        self.w, self.m, self.s = w, m, s

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return (self.w * st.norm.cdf(x, self.m[0], self.s[0])
                + (1 - self.w) * st.norm.cdf(x, self.m[1], self.s[1]))

    def mean(self) -> float:
        return self.w * self.m[0] + (1 - self.w) * self.m[1]

    def std(self) -> float:
        ex2 = (self.w * (self.s[0] ** 2 + self.m[0] ** 2)
               + (1 - self.w) * (self.s[1] ** 2 + self.m[1] ** 2))
        return math.sqrt(ex2 - self.mean() ** 2)

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        first = random_state.random(size) < self.w
        z = random_state.standard_normal(size)
        return np.where(first, self.m[0] + self.s[0] * z, self.m[1] + self.s[1] * z)


@dataclass
class Shape:
    """A population: how to draw values under an effect, and its exact CDF.

    ``kind`` is "numeric" or "categorical". Numeric shapes give ``draw(rng, n,
    effect)`` (raw values) and ``cdf(x, effect)`` (P(X <= x), Prometheus' ``le``
    convention); categorical ones ``probs(effect)``.
    """

    name: str
    label: str
    kind: str
    mean: float = 0.0
    sd: float = 1.0
    draw: Callable[[np.random.Generator, int, Effect], np.ndarray] | None = None
    cdf: Callable[[np.ndarray, Effect], np.ndarray] | None = None
    probs: Callable[[Effect], np.ndarray] | None = None
    base: np.ndarray = field(default_factory=lambda: np.zeros(0))


def continuous(name: str, label: str, dist: Any) -> Shape:
    """A continuous population (scipy frozen distribution or :class:`Mixture`)."""
    mu, sd = float(dist.mean()), float(dist.std())

    def draw(rng: np.random.Generator, n: int, effect: Effect) -> np.ndarray:
        t, _ = _transform(effect, mu, sd)
        return t(np.asarray(dist.rvs(size=n, random_state=rng), dtype=np.float64))

    def cdf(x: np.ndarray, effect: Effect) -> np.ndarray:
        _, tinv = _transform(effect, mu, sd)
        return np.asarray(dist.cdf(tinv(x)), dtype=np.float64)

    return Shape(name, label, "numeric", mu, sd, draw, cdf)


def rounded(name: str, label: str, dist: Any) -> Shape:
    """Values of a continuous latent rounded half up to integers; changes act on the latent."""
    lo, hi = math.floor(dist.ppf(1e-13)), math.ceil(dist.ppf(1 - 1e-13))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    pmf = dist.cdf(k + 0.5) - dist.cdf(k - 0.5)
    mu = float((k * pmf).sum())
    sd = math.sqrt(float((k * k * pmf).sum()) - mu * mu)

    def draw(rng: np.random.Generator, n: int, effect: Effect) -> np.ndarray:
        t, _ = _transform(effect, mu, sd)
        return np.floor(t(np.asarray(dist.rvs(size=n, random_state=rng))) + 0.5)

    def cdf(x: np.ndarray, effect: Effect) -> np.ndarray:
        _, tinv = _transform(effect, mu, sd)
        return np.asarray(dist.cdf(tinv(np.floor(x) + 0.5)), dtype=np.float64)

    return Shape(name, label, "numeric", mu, sd, draw, cdf)


def poisson(name: str, label: str, lam: float) -> Shape:
    """Poisson counts: a shift raises the rate by d sd; a scale maps k to round(mu + s(k - mu)).

    ``mu + 1.5 (k - mu)`` is a half-integer for every odd ``k``: rounding half
    to even (``np.round``) keeps the mean within 0.01 sd, half up would move it
    by 0.125 sd.
    """
    mu, sd = lam, math.sqrt(lam)
    k = np.arange(0, int(lam + 60 * sd + 60), dtype=np.float64)

    def rate(effect: Effect) -> float:
        return lam + effect[1] * sd if effect[0] == "shift" else lam

    def scaled(kk: np.ndarray, effect: Effect) -> np.ndarray:
        return np.round(mu + effect[1] * (kk - mu)) if effect[0] == "scale" else kk

    def draw(rng: np.random.Generator, n: int, effect: Effect) -> np.ndarray:
        return scaled(rng.poisson(rate(effect), n).astype(np.float64), effect)

    def cdf(x: np.ndarray, effect: Effect) -> np.ndarray:
        cum = st.poisson.cdf(k, rate(effect))
        v = scaled(k, effect)  # non-decreasing in k
        i = np.searchsorted(v, np.asarray(x, dtype=np.float64), side="right")
        return np.where(i > 0, cum[np.maximum(i - 1, 0)], 0.0)

    return Shape(name, label, "numeric", mu, sd, draw, cdf)


def zero_inflated(name: str, label: str, pi: float, dist: Any) -> Shape:
    """Zeros with probability ``pi``, else ``dist``; changes act on the non-zero part only."""
    m_p, s_p = float(dist.mean()), float(dist.std())
    mu = (1 - pi) * m_p
    sd = math.sqrt((1 - pi) * (s_p ** 2 + m_p ** 2) - mu * mu)

    def part(effect: Effect) -> tuple[Callable[[np.ndarray], np.ndarray],
                                      Callable[[np.ndarray], np.ndarray]]:
        if effect[0] == "shift":  # the overall mean moves by d sd
            return _transform(("shift", effect[1] / (1 - pi)), m_p, sd)
        return _transform(effect, m_p, sd)  # scale around the non-zero part's mean

    def draw(rng: np.random.Generator, n: int, effect: Effect) -> np.ndarray:
        t, _ = part(effect)
        zero = rng.random(n) < pi
        return np.where(zero, 0.0, t(np.asarray(dist.rvs(size=n, random_state=rng))))

    def cdf(x: np.ndarray, effect: Effect) -> np.ndarray:
        _, tinv = part(effect)
        x = np.asarray(x, dtype=np.float64)
        return pi * (x >= 0) + (1 - pi) * dist.cdf(tinv(x))

    return Shape(name, label, "numeric", mu, sd, draw, cdf)


def zipf(name: str, label: str, k: int) -> Shape:
    """K categories with shares proportional to 1/rank; effects move one share by points."""
    base = 1.0 / np.arange(1, k + 1)
    base /= base.sum()

    def probs(effect: Effect) -> np.ndarray:
        kind, pts = effect
        if kind == "none":
            return base.copy()
        j = 0 if kind == "top" else k - 1
        d = pts / 100.0
        p = base * (1 - base[j] - d) / (1 - base[j])
        p[j] = base[j] + d
        return p

    return Shape(name, label, "categorical", probs=probs, base=base)


SHAPES: tuple[Shape, ...] = (
    continuous("normal", "normal N(0, 1)", st.norm()),
    continuous("lognormal", "lognormal (sigma 0.8)", st.lognorm(0.8)),
    continuous("exponential", "exponential", st.expon()),
    continuous("uniform", "uniform (0, 1)", st.uniform()),
    continuous("student_t3", "Student t, 3 df", st.t(3)),
    continuous("bimodal", "bimodal 0.3 N(-2, 0.5) + 0.7 N(2, 0.7)",
               Mixture(0.3, (-2.0, 2.0), (0.5, 0.7))),
    continuous("beta_bound", "beta(0.6, 6), piled at 0", st.beta(0.6, 6.0)),
    poisson("poisson", "Poisson counts, rate 4", 4.0),
    zero_inflated("zero_inflated", "40 % zeros + lognormal(1, 0.75)", 0.4,
                  st.lognorm(0.75, scale=math.e)),
    rounded("rounded", "N(40, 12) rounded to integers", st.norm(40.0, 12.0)),
    zipf("zipf5", "Zipf, 5 categories", 5),
    zipf("zipf50", "Zipf, 50 categories", 50),
)
QUICK_SHAPES = ("normal", "lognormal", "poisson", "zipf50")


def stream(seed: int, *key: str | int) -> np.random.Generator:
    """An independent generator for one purpose (shape, effect, n, ...), stable across runs."""
    words = [seed] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng(np.random.SeedSequence(words))


# ---------------------------------------------------------------------------
# The peers' statistics, from sorted raw values (checked against SciPy in check_fast_paths)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance(u, v)`` for sorted ``u`` (N) and ``v`` (n).

    W1 is the L1 distance of the quantile functions. On the t-interval
    ``(i/N, (i+1)/N]`` the reference's quantile is ``u[i]``; the window's
    integrates through ``G(t) = int_0^t Q_v`` (prefix sums of ``v``), split
    where ``Q_v`` crosses ``u[i]``. O(N log n + n), no merge of the samples.
    """
    big_n, n = u.size, v.size
    s = np.concatenate(([0.0], np.cumsum(v)))

    def g(p: np.ndarray, q: int) -> np.ndarray:  # int_0^{p/q} Q_v, exactly on the grid
        m = (p * n) // q
        r = p * n - m * q
        return s[m] / n + (r / (q * n)) * v[np.minimum(m, n - 1)]

    i = np.arange(big_n, dtype=np.int64)
    k = np.searchsorted(v, u, side="right").astype(np.int64)  # Q_v(t) <= u[i] iff t <= k/n
    below, above = k * big_n < i * n, k * big_n > (i + 1) * n
    g_a, g_b = g(i, big_n), g(i + 1, big_n)
    g_t = np.where(below, g_a, np.where(above, g_b, s[k] / n))
    a, b = i / big_n, (i + 1) / big_n
    t = np.where(below, a, np.where(above, b, k / n))
    return float(np.sum(u * (2 * t - a - b) + g_a + g_b - 2 * g_t))


def ks_statistic_sorted(uu: np.ndarray, fu: np.ndarray, v: np.ndarray) -> float:
    """The two-sample KS statistic of ``ks_2samp`` from the reference's distinct values.

    ``uu`` are the reference's sorted distinct values, ``fu`` its CDF there.
    Between two of them the reference's CDF is flat and the window's rises,
    so the largest gap is at a distinct value or just before the next one.
    """
    n = v.size
    at = np.searchsorted(v, uu, side="right") / n
    before = np.searchsorted(v, uu, side="left") / n
    fu_prev = np.concatenate(([0.0], fu[:-1]))
    return float(max(np.abs(fu - at).max(), np.abs(fu_prev - before).max()))


def ks_pvalue_approx(d: np.ndarray, big_n: int, n: int) -> np.ndarray:
    """Asymptotic two-sample KS p-value (``scipy.special.kolmogorov``)."""
    en = big_n * n / (big_n + n)
    return kolmogorov(np.sqrt(en) * np.asarray(d, dtype=np.float64))


def ks_pvalue(d: float, big_n: int, n: int, ref: np.ndarray, win: np.ndarray) -> float:
    """``ks_2samp(ref, win).pvalue`` where it can matter at 0.05, the asymptotic p elsewhere."""
    approx = float(ks_pvalue_approx(np.array([d]), big_n, n)[0])
    if not KS_BAND[0] <= approx <= KS_BAND[1]:
        return approx
    if max(big_n, n) <= KS_EXACT_MAX:
        return float(st.ks_2samp(ref, win).pvalue)
    m, k = sorted([float(big_n), float(n)], reverse=True)  # ks_2samp's asymptotic branch
    return float(np.clip(st.kstwo.sf(d, np.round(m * k / (m + k))), 0, 1))


def histogram_sorted(v: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``np.histogram(v, bins)[0]`` for sorted ``v`` (the last bin closed, as numpy's)."""
    pos = np.searchsorted(v, bins, side="left")
    pos[-1] = np.searchsorted(v, bins[-1], side="right")
    return np.diff(pos)


def nannyml_js(ref_proba: np.ndarray, counts: np.ndarray, n: int) -> float:
    """NannyML's Jensen-Shannon ``_calculate``: window shares on the reference's bins + leftover."""
    data_proba = counts / n
    ref_p = ref_proba
    leftover = 1 - np.sum(data_proba)
    if leftover > 0:
        data_proba = np.append(data_proba, leftover)
        ref_p = np.append(ref_p, 0)
    return float(jensenshannon(ref_p, data_proba, base=2))


def nannyml_threshold(values: np.ndarray) -> float:
    """StandardDeviationThreshold(std_lower_multiplier=None): nanmean + 3 nanstd, upper only."""
    return float(np.nanmean(values) + NANNYML_STD * np.nanstd(values))


# ---------------------------------------------------------------------------
# References


@dataclass
class Bank:
    """A shape's references: modelmon's bucket counts and the raw-sample peers' fitted state."""

    counts: list[np.ndarray]  # per reference, (B,)
    edges: list[np.ndarray | None]  # per reference, (B-1,) (None for categoricals)
    raw: list[dict[str, Any]]  # the first references only: what the raw-sample peers keep


def numeric_raw_state(x: np.ndarray) -> dict[str, Any]:
    """What Evidently, NannyML and KS keep of a numeric reference (raw, in drawn order)."""
    u = np.sort(x)
    uu, cnt = np.unique(u, return_counts=True)
    if uu.size <= 5:
        raise ValueError("Evidently would use Jensen-Shannon here (<= 5 values); not modelled")
    bins = np.histogram_bin_edges(x, bins="doane")
    ref_proba = np.histogram(x, bins=bins)[0] / x.size
    chunk = x.size // NANNYML_CHUNKS
    chunk_js = [nannyml_js(ref_proba, np.histogram(x[c * chunk:(c + 1) * chunk], bins=bins)[0],
                           chunk) for c in range(NANNYML_CHUNKS)]
    center = float(u[u.size // 2])
    return {"u": u, "u_c": u - center, "center": center, "uu": uu, "fu": np.cumsum(cnt) / u.size,
            "norm": max(float(np.std(x)), 0.001), "bins": bins, "ref_proba": ref_proba,
            "nml_threshold": nannyml_threshold(np.asarray(chunk_js))}


def categorical_raw_state(codes: np.ndarray, k: int) -> dict[str, Any]:
    """NannyML's threshold from 10 chunks of the raw reference's category codes."""
    counts = np.bincount(codes, minlength=k)
    present = counts > 0
    chunk = codes.size // NANNYML_CHUNKS
    ref_proba = counts[present] / codes.size
    vals = [nannyml_js(ref_proba, np.bincount(codes[c * chunk:(c + 1) * chunk], minlength=k)
                       [present], chunk) for c in range(NANNYML_CHUNKS)]
    return {"nml_threshold": nannyml_threshold(np.asarray(vals)), "present": present}


def make_bank(shape: Shape, size: int, raw_size: int, seed: int) -> Bank:
    """``size`` references of N_REF rows; the raw-sample state for the first ``raw_size``."""
    counts, edges, raw = [], [], []
    for j in range(size):
        rng = stream(seed, shape.name, "reference", j)
        if shape.kind == "numeric":
            assert shape.draw is not None
            x = shape.draw(rng, N_REF, ("none", 0.0))
            e = quantile_edges(x, BINS)
            counts.append(bucket_counts(e, x).astype(np.float64))
            edges.append(e)
            if j < raw_size:
                raw.append(numeric_raw_state(x))
        else:
            codes = rng.choice(shape.base.size, N_REF, p=shape.base)
            counts.append(np.bincount(codes, minlength=shape.base.size).astype(np.float64))
            edges.append(None)
            if j < raw_size:
                raw.append(categorical_raw_state(codes, shape.base.size))
    return Bank(counts, edges, raw)


def groups_by_buckets(bank: Bank) -> dict[int, np.ndarray]:
    """Reference indices grouped by their number of buckets (quantile edges are deduplicated)."""
    sizes = np.array([c.size for c in bank.counts])
    return {int(b): np.flatnonzero(sizes == b) for b in np.unique(sizes)}


def null_models(shape: Shape, bank: Bank, groups: dict[int, np.ndarray], n: int,
                ) -> dict[int, NullModel]:
    """modelmon's null model of every reference for windows of ``n``, per bucket-count group."""
    method = DEFAULT_METHOD[shape.kind]
    out = {}
    for b, idx in groups.items():
        ref = np.stack([bank.counts[j] for j in idx])
        edges = None if shape.kind == "categorical" else np.stack([bank.edges[j] for j in idx])
        out[b] = null_model(method, ref, n, edges=edges)
    return out


# ---------------------------------------------------------------------------
# Cells


@dataclass
class Cell:
    """Rates of one (shape, effect, n): flagged windows and windows judged, per rule."""

    shape: str
    effect: Effect
    n: int
    flagged: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)

    def rate(self, rule: str) -> float:
        return self.flagged[rule] / self.windows[rule] if self.windows.get(rule) else math.nan


def take(nm: NullModel, rows: np.ndarray) -> NullModel:
    """The null model's rows ``rows`` (one per window)."""
    return NullModel(*(np.asarray(f)[rows] for f in nm))


def modelmon_flags(shape: Shape, ref: np.ndarray, win: np.ndarray, edges: np.ndarray | None,
                   nm: NullModel) -> np.ndarray:
    """modelmon's verdict per window: each window its own one-feature family."""
    method = DEFAULT_METHOD[shape.kind]
    if method == "wasserstein_normed":
        scores = wasserstein(ref, win, edges, normed=True)
    else:
        scores = jensen_shannon(ref, win)
    v = drift_verdict(scores, nm, np.arange(win.shape[0]), alpha=DEFAULT_ALPHA,
                      effect=DEFAULT_EFFECT[method])
    return np.asarray(v.drifted)


def bucket_probs(shape: Shape, edges: np.ndarray, effect: Effect) -> np.ndarray:
    """Exact bucket probabilities ``(R, B)`` of the changed population under edges ``(R, B-1)``."""
    assert shape.cdf is not None
    f = np.clip(shape.cdf(edges, effect), 0.0, 1.0)
    f = np.maximum.accumulate(f, axis=1)
    q = np.diff(np.concatenate([np.zeros((f.shape[0], 1)), f, np.ones((f.shape[0], 1))], axis=1),
                axis=1)
    q = np.maximum(q, 0.0)
    return q / q.sum(axis=1, keepdims=True)


def count_cell(shape: Shape, bank: Bank, groups: dict[int, np.ndarray],
               nms: dict[int, NullModel], effect: Effect, n: int, reps: int,
               seed: int, cell: Cell) -> None:
    """Windows as multinomial counts: modelmon and PSI (numeric), every rule (categorical)."""
    rng = stream(seed, shape.name, effect_label(effect), n, "counts")
    size = len(bank.counts)
    ref_of = np.arange(reps) % size
    flags: dict[str, list[np.ndarray]] = {}
    for b, idx in groups.items():
        local = np.flatnonzero(np.isin(ref_of, idx))
        if local.size == 0:
            continue
        pos = np.searchsorted(idx, ref_of[local])  # row of each window's reference in the group
        ref = np.stack([bank.counts[j] for j in idx])[pos]
        if shape.kind == "numeric":
            edges = np.stack([bank.edges[j] for j in idx])
            q = bucket_probs(shape, edges, effect)[pos]
            e = edges[pos]
        else:
            assert shape.probs is not None
            q = np.broadcast_to(shape.probs(effect), (local.size, b))
            e = None
        win = rng.multinomial(n, q).astype(np.float64)
        flags.setdefault("modelmon", []).append(
            modelmon_flags(shape, ref, win, e, take(nms[b], pos)))
        flags.setdefault("psi", []).append(np.asarray(psi(ref, win)) > PSI_LIMIT)
        if shape.kind == "categorical":
            for rule, f in categorical_peers(bank, idx[pos], ref, win, n).items():
                flags.setdefault(rule, []).append(f)
    for rule, fl in flags.items():
        cat = np.concatenate(fl)
        cell.flagged[rule], cell.windows[rule] = int(cat.sum()), int(cat.size)


def categorical_peers(bank: Bank, refs: np.ndarray, ref: np.ndarray, win: np.ndarray,
                      n: int) -> dict[str, np.ndarray]:
    """Evidently, NannyML and chi-square decisions on category counts (rows are windows)."""
    big_n = ref.sum(axis=1, keepdims=True)
    # Evidently: JS (natural log) of the value-count shares over the categories seen, >= 0.1
    js = jensenshannon(ref / big_n, win / n, base=EVIDENTLY_JS_BASE, axis=1)
    out = {"evidently": js >= EVIDENTLY_THRESHOLD}
    # NannyML: shares on the reference's categories + the leftover share (ref 0), JS above
    # mean + 3 std of 10 reference chunks (vectorised nannyml_js; absent categories add 0)
    present = ref > 0
    win_p = np.where(present, win / n, 0.0)
    leftover = np.maximum(1 - win_p.sum(axis=1, keepdims=True), 0.0)
    value = jensenshannon(np.concatenate([ref / big_n, np.zeros_like(leftover)], axis=1),
                          np.concatenate([win_p, leftover], axis=1), base=2, axis=1)
    thr = np.array([bank.raw[j]["nml_threshold"] for j in refs])
    out["nannyml"] = value > thr
    # chi-square contingency test of the 2 x K table, p < 0.05
    table = np.stack([ref, win], axis=1)  # (W, 2, K)
    col = table.sum(axis=1, keepdims=True)
    row = table.sum(axis=2, keepdims=True)
    expected = row * col / table.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    dof = (col[:, 0, :] > 0).sum(axis=1) - 1
    out["ks"] = st.chi2.sf(terms.sum(axis=(1, 2)), dof) < P_LEVEL
    return out


def raw_cell(shape: Shape, bank: Bank, effect: Effect, n: int, reps: int, seed: int,
             cell: Cell) -> None:
    """Raw windows of a numeric shape: Evidently, NannyML and KS."""
    rng = stream(seed, shape.name, effect_label(effect), n, "raw")
    assert shape.draw is not None
    ev = np.empty(reps, dtype=bool)
    nml = np.empty(reps, dtype=bool)
    ks = np.empty(reps, dtype=bool)
    for w in range(reps):
        state = bank.raw[w % len(bank.raw)]
        v = np.sort(shape.draw(rng, n, effect))
        ev[w] = wasserstein_sorted(state["u_c"], v - state["center"]) / state["norm"] \
            >= EVIDENTLY_THRESHOLD
        counts = histogram_sorted(v, state["bins"])
        nml[w] = nannyml_js(state["ref_proba"], counts, n) > state["nml_threshold"]
        d = ks_statistic_sorted(state["uu"], state["fu"], v)
        ks[w] = ks_pvalue(d, N_REF, n, state["u"], v) < P_LEVEL
    for rule, f in (("evidently", ev), ("nannyml", nml), ("ks", ks)):
        cell.flagged[rule], cell.windows[rule] = int(f.sum()), int(f.size)


def raw_reps_for(n: int, raw_reps: int) -> int:
    """Raw windows per cell: ``raw_reps`` up to 10,000, half at 100,000, a tenth at 1,000,000."""
    if n <= 10_000:
        return raw_reps
    return max(raw_reps // 2, 1) if n <= 100_000 else max(raw_reps // 10, 1)


# ---------------------------------------------------------------------------
# Checks: fast paths against SciPy, our peers against the real libraries


def check_fast_paths(shapes: Sequence[Shape], seed: int) -> list[str]:
    """Compare the sorted-sample statistics with SciPy/numpy on sample windows; raise on a gap."""
    worst_w, windows, ks_same = 0.0, 0, 0
    for shape in shapes:
        if shape.kind != "numeric":
            continue
        assert shape.draw is not None
        rng = stream(seed, shape.name, "check")
        x = shape.draw(rng, N_REF, ("none", 0.0))
        state = numeric_raw_state(x)
        for n in (100, 1_000, 10_000, 30_000):
            for effect in (("none", 0.0), ("shift", 0.1), ("scale", 1.5)):
                v = np.sort(shape.draw(rng, n, effect))
                w_ref = st.wasserstein_distance(x, v)
                w_ours = wasserstein_sorted(state["u_c"], v - state["center"])
                worst_w = max(worst_w, abs(w_ours - w_ref) / max(w_ref, 1e-300))
                ref_ks = st.ks_2samp(x, v)
                d = ks_statistic_sorted(state["uu"], state["fu"], v)
                if abs(d - ref_ks.statistic) > 1e-12:
                    raise AssertionError(f"KS statistic {d} != {ref_ks.statistic} ({shape.name})")
                ks_same += (ks_pvalue(d, N_REF, n, state["u"], v) < P_LEVEL) == \
                    (ref_ks.pvalue < P_LEVEL)
                if not np.array_equal(histogram_sorted(v, state["bins"]),
                                      np.histogram(v, bins=state["bins"])[0]):
                    raise AssertionError(f"histogram differs ({shape.name}, n={n})")
                windows += 1
    cat_windows = 0
    for shape in shapes:
        if shape.kind != "categorical":
            continue
        assert shape.probs is not None
        rng = stream(seed, shape.name, "check")
        k = shape.base.size
        codes = rng.choice(k, N_REF, p=shape.base)
        state = categorical_raw_state(codes, k)
        rc = np.bincount(codes, minlength=k).astype(np.float64)
        bank = Bank([rc], [None], [state])
        for n in (100, 1_000, 10_000):
            for effect in CAT_EFFECTS:
                win = rng.multinomial(n, shape.probs(effect), size=4).astype(np.float64)
                vec = categorical_peers(bank, np.zeros(4, dtype=int), np.tile(rc, (4, 1)), win, n)
                p = state["present"]
                for w in range(4):
                    js = jensenshannon(rc / N_REF, win[w] / n, base=EVIDENTLY_JS_BASE)
                    one = {"evidently": js >= EVIDENTLY_THRESHOLD,
                           "nannyml": nannyml_js(rc[p] / N_REF, win[w, p], n)
                           > state["nml_threshold"],
                           "ks": st.chi2_contingency(np.stack([rc, win[w]])).pvalue < P_LEVEL}
                    for rule, decision in one.items():
                        if bool(vec[rule][w]) != bool(decision):
                            raise AssertionError(f"vectorised {rule} differs ({shape.name}, n={n})")
                    cat_windows += 1
    if worst_w > 1e-9:
        raise AssertionError(f"Wasserstein fast path off by {worst_w:.2g} (relative)")
    if ks_same != windows:
        raise AssertionError(f"KS decisions differ on {windows - ks_same} of {windows} windows")
    lines = []
    if windows:
        lines.append(f"Fast paths vs SciPy on {windows} sample windows: Wasserstein within "
                     f"{worst_w:.1g} (relative) of `scipy.stats.wasserstein_distance`, KS "
                     f"statistic equal to `ks_2samp`'s (to rounding) and decisions at p < 0.05 "
                     f"equal {ks_same}/{windows}, NannyML's histogram identical to "
                     f"`np.histogram`.")
    if cat_windows:
        lines.append(f"Vectorised categorical rules vs one window at a time on {cat_windows} "
                     f"count windows: Evidently's and NannyML's decisions equal, chi-square "
                     f"equal to `scipy.stats.chi2_contingency` at p < 0.05.")
    return lines


EVIDENTLY_CHILD = r'''
import json, sys, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
d = np.load(sys.argv[1])
out = []
try:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    new = True
except ImportError:
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    new = False
for i in range(int(d["count"])):
    cat = bool(d[f"cat{i}"])
    conv = (lambda a: np.char.add("c", a.astype(str)).astype(object)) if cat else (lambda a: a)
    ref = pd.DataFrame({"x": conv(d[f"ref{i}"])})
    cur = pd.DataFrame({"x": conv(d[f"cur{i}"])})
    if new:
        dd = DataDefinition(categorical_columns=["x"]) if cat else \
            DataDefinition(numerical_columns=["x"])
        snap = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(cur, data_definition=dd),
            Dataset.from_pandas(ref, data_definition=dd))
        res = snap.dict()
        drift = [m for m in res["metrics"] if m["metric_name"].startswith("ValueDrift")][0]
        score, name = drift["value"], drift["metric_name"]
        status = [str(t["status"]) for t in res["tests"] if t["name"].startswith("Value Drift")][0]
        out.append({"score": float(score), "drifted": status.endswith("FAIL"), "method": name})
    else:
        rep = Report(metrics=[DataDriftPreset()])
        rep.run(reference_data=ref, current_data=cur)
        col = rep.as_dict()["metrics"][1]["result"]["drift_by_columns"]["x"]
        out.append({"score": float(col["drift_score"]), "drifted": bool(col["drift_detected"]),
                    "method": col["stattest_name"]})
import evidently
print(json.dumps({"version": evidently.__version__, "results": out}))
'''

NANNYML_CHILD = r'''
import json, logging, sys, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)
import nannyml as nml
d = np.load(sys.argv[1])
out = []
for i in range(int(d["count"])):
    cat = bool(d[f"cat{i}"])
    conv = (lambda a: np.char.add("c", a.astype(str)).astype(object)) if cat else (lambda a: a)
    ref = pd.DataFrame({"x": conv(d[f"ref{i}"])})
    cur = pd.DataFrame({"x": conv(d[f"cur{i}"])})
    calc = nml.UnivariateDriftCalculator(column_names=["x"], continuous_methods=["jensen_shannon"],
                                         categorical_methods=["jensen_shannon"])
    calc.fit(ref)  # DefaultChunker: 10 reference chunks
    calc.chunker = nml.chunk.SizeBasedChunker(chunk_size=len(cur))  # the window is one chunk
    res = calc.calculate(cur).filter(period="analysis").to_df()
    row = res.iloc[-1]
    out.append({"score": float(row[("x", "jensen_shannon", "value")]),
                "drifted": bool(row[("x", "jensen_shannon", "alert")]),
                "threshold": float(row[("x", "jensen_shannon", "upper_threshold")])})
print(json.dumps({"version": nml.__version__, "results": out}))
'''

CHECK_CASES: tuple[tuple[Effect, int], ...] = (
    (("none", 0.0), 300), (("shift", 0.1), 1_000), (("shift", 0.1), 10_000),
    (("shift", 0.25), 300), (("scale", 1.5), 100))
CHECK_CAT_CASES: tuple[tuple[Effect, int], ...] = (
    (("none", 0.0), 300), (("top", 5.0), 1_000), (("bottom", 5.0), 300),
    (("bottom", 10.0), 100), (("none", 0.0), 100))


def library_cases(shapes: Sequence[Shape], seed: int) -> tuple[dict[str, np.ndarray],
                                                                list[dict[str, Any]]]:
    """Sample (reference, window) pairs and our Evidently/NannyML scores and decisions on them."""
    arrays: dict[str, np.ndarray] = {}
    ours: list[dict[str, Any]] = []
    for shape in shapes:
        rng = stream(seed, shape.name, "library-check")
        cases = CHECK_CASES if shape.kind == "numeric" else CHECK_CAT_CASES
        for effect, n in cases:
            i = len(ours)
            if shape.kind == "numeric":
                assert shape.draw is not None
                x = shape.draw(rng, N_REF, ("none", 0.0))
                v = shape.draw(rng, n, effect)
                state = numeric_raw_state(x)
                vs = np.sort(v)
                ev = wasserstein_sorted(state["u_c"], vs - state["center"]) / state["norm"]
                nml = nannyml_js(state["ref_proba"], histogram_sorted(vs, state["bins"]), n)
                thr = state["nml_threshold"]
            else:
                assert shape.probs is not None
                k = shape.base.size
                x = rng.choice(k, N_REF, p=shape.base)
                v = rng.choice(k, n, p=shape.probs(effect))
                cstate = categorical_raw_state(x, k)
                rc = np.bincount(x, minlength=k).astype(np.float64)
                wc = np.bincount(v, minlength=k).astype(np.float64)
                ev = float(jensenshannon(rc / N_REF, wc / n, base=EVIDENTLY_JS_BASE))
                p = cstate["present"]
                nml = nannyml_js(rc[p] / N_REF, wc[p], n)
                thr = cstate["nml_threshold"]
            arrays[f"ref{i}"], arrays[f"cur{i}"] = x, v
            arrays[f"cat{i}"] = np.array(shape.kind == "categorical")
            ours.append({"case": f"{shape.name}, {effect_label(effect)}, n={n}",
                         "evidently": (ev, ev >= EVIDENTLY_THRESHOLD),
                         "nannyml": (nml, nml > thr, thr)})
    arrays["count"] = np.array(len(ours))
    return arrays, ours


def run_child(code: str, module: str, python: str | None, data: str,
              ) -> tuple[dict[str, Any] | None, str]:
    """Run ``code`` on ``data`` where ``module`` imports: here, else in ``python``."""
    candidates = ([sys.executable] if importlib.util.find_spec(module) else []) + \
        ([python] if python else [])
    errors = []
    for py in candidates:
        try:
            out = subprocess.run([py, "-c", code, data], capture_output=True, text=True,
                                 timeout=1800, env=dict(os.environ), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{py}: {exc}")
            continue
        if out.returncode == 0:
            return json.loads(out.stdout.strip().splitlines()[-1]), py
        errors.append(f"{py}: {out.stderr.strip().splitlines()[-1] if out.stderr else 'failed'}")
    if not candidates:
        return None, (f"{module} is not importable here; pass --{module}-python PY "
                      f"(an interpreter where it is) to check against it")
    return None, "; ".join(errors)


def check_libraries(shapes: Sequence[Shape], seed: int, evidently_python: str | None,
                    nannyml_python: str | None) -> tuple[list[str], dict[str, Any]]:
    """Feed sample pairs to the real Evidently and NannyML; compare decisions and scores."""
    arrays, ours = library_cases(shapes, seed)
    lines: list[str] = []
    record: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cases.npz")
        np.savez(path, **arrays)  # type: ignore[arg-type]
        for lib, code, python in (("evidently", EVIDENTLY_CHILD, evidently_python),
                                  ("nannyml", NANNYML_CHILD, nannyml_python)):
            res, where = run_child(code, lib, python, path)
            if res is None:
                lines.append(f"{lib}: not checked against the library ({where})")
                record[lib] = {"checked": False, "why": where}
                continue
            same = 0
            worst = 0.0
            diffs = []
            for mine, theirs in zip(ours, res["results"]):
                score, drifted = mine[lib][0], mine[lib][1]
                worst = max(worst, abs(score - theirs["score"]))
                if bool(drifted) == theirs["drifted"]:
                    same += 1
                else:
                    diffs.append(f"{mine['case']} (ours {score:.6f} {drifted}, "
                                 f"library {theirs['score']:.6f} {theirs['drifted']})")
            flagged = sum(r["drifted"] for r in res["results"])
            lines.append(f"{'Evidently' if lib == 'evidently' else 'NannyML'} {res['version']} "
                         f"(`{where}`): drift decisions equal on {same}/{len(ours)} sample "
                         f"windows ({flagged} flagged by the library), largest score "
                         f"difference {worst:.1g}"
                         + (f"; differ: {'; '.join(diffs)}" if diffs else ""))
            record[lib] = {"checked": True, "version": res["version"], "python": where,
                           "equal": same, "cases": len(ours), "max_score_diff": worst,
                           "differ": diffs}
    return lines, record


# ---------------------------------------------------------------------------
# Report


def modelmon_source() -> str:
    """Which modelmon the numbers come from: the git commit (and whether the package is edited)."""
    import modelmon

    here = os.path.dirname(os.path.abspath(modelmon.__file__))
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short=7", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        edited = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "."],
                                capture_output=True, text=True, timeout=10, check=False)
        if head.returncode == 0 and head.stdout.strip():
            return (f"git {head.stdout.strip()}"
                    + (" with uncommitted edits to the package" if edited.stdout.strip() else ""))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return importlib.metadata.version("modelmon")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate k/n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(mid - half, 0.0), min(mid + half, 1.0)


def target_of(shape: Shape, effect: Effect, n: int) -> tuple[str, float, str] | None:
    """The issue's target for modelmon in this cell: (kind, level, text), or None."""
    kind, size = effect
    if kind == "none" and n >= 100:
        return "max", FA_TARGET, "false alarms <= 1 % at n >= 100"
    if kind == "shift" and size == 0.25 and n >= 1_000:
        return "min", DETECT_TARGET, ">= 95 % of 0.25 sd shifts at n >= 1,000"
    if kind == "shift" and size == 0.5 and n >= 300:
        return "min", DETECT_TARGET, ">= 95 % of 0.5 sd shifts at n >= 300"
    if kind in ("top", "bottom") and size == 10 and n >= 1_000:
        return "min", DETECT_TARGET, ">= 95 % of +10-point category shifts at n >= 1,000"
    return None


def misses(cell: Cell, shape: Shape, rule: str) -> bool:
    """True when ``rule`` misses the cell's target."""
    t = target_of(shape, cell.effect, cell.n)
    if t is None or not cell.windows.get(rule):
        return False
    r = cell.rate(rule)
    return r > t[1] if t[0] == "max" else r < t[1]


def fmt_rate(r: float) -> str:
    if math.isnan(r):
        return "–"
    pct = 100 * r
    return f"{pct:.0f}" if pct >= 99.95 or pct == 0 else f"{pct:.1f}"


def table(rows: list[tuple[str, Shape, dict[int, Cell]]], sizes: Sequence[int]) -> list[str]:
    """Markdown rows: one per (label, shape), one column per n, cells 'a / b / c / d / e' in %."""
    out = ["| shape | " + " | ".join(f"n={n:,}" for n in sizes) + " |",
           "|---|" + "---:|" * len(sizes)]
    for label, shape, cells in rows:
        parts = []
        for n in sizes:
            c = cells.get(n)
            if c is None:
                parts.append("")
                continue
            vals = []
            for rule in RULES:
                s = fmt_rate(c.rate(rule))
                vals.append(f"**{s}**" if rule == "modelmon" and misses(c, shape, rule) else s)
            parts.append(" / ".join(vals))
        out.append(f"| {label} | " + " | ".join(parts) + " |")
    return out


def report(shapes: Sequence[Shape], cells: dict[tuple[str, Effect, int], Cell],
           sizes: Sequence[int], args: argparse.Namespace, notes: list[str],
           elapsed: float) -> tuple[str, list[dict[str, Any]]]:
    """The markdown report and the list of target misses."""
    lines = ["# modelmon drift detection benchmark (issue 15)", ""]
    lines.append(
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{os.cpu_count()} CPUs; modelmon {modelmon_source()}; seed {args.seed}. "
        f"Reference N = {N_REF:,} rows per reference, "
        f"{args.bank:,} references per shape; modelmon: `{DEFAULT_METHOD['numeric']}` (numeric) / "
        f"`{DEFAULT_METHOD['categorical']}` (categorical) on {BINS} quantile buckets, effect floor "
        f"{DEFAULT_EFFECT[DEFAULT_METHOD['numeric']]} / "
        f"{DEFAULT_EFFECT[DEFAULT_METHOD['categorical']]}"
        f", alpha {DEFAULT_ALPHA}, one feature per family.")
    lines.append("")
    raw = ", ".join(f"{raw_reps_for(n, args.raw_reps):,} at n={n:,}" for n in sizes)
    lines.append(f"Each cell: % of windows flagged, **modelmon / Evidently / NannyML / KS / "
                 f"PSI>0.2**. Windows per cell: modelmon and PSI {args.reps:,} (multinomial "
                 f"bucket counts, exact at any n); categoricals: every rule on the same "
                 f"{args.reps:,} count windows; Evidently, NannyML and KS on numeric shapes: raw "
                 f"windows, {raw}. For categoricals the KS column is the chi-square test "
                 f"(`chi2_contingency`) p < 0.05. **Bold**: modelmon misses the issue's target "
                 f"for that cell (listed at the end).")
    lines.append("")
    by_shape = {s.name: s for s in shapes}
    sections: list[tuple[str, list[tuple[str, Effect]]]] = [
        ("False alarms (no change), %", [(s.name, ("none", 0.0)) for s in shapes])]
    numeric = [s.name for s in shapes if s.kind == "numeric"]
    categorical = [s.name for s in shapes if s.kind == "categorical"]
    for effect in NUM_EFFECTS[1:]:
        if numeric:
            sections.append((f"Detection, {effect_label(effect)}, %",
                             [(name, effect) for name in numeric]))
    for pts in (5.0, 10.0):
        if categorical:
            sections.append((f"Detection, one category +{pts:g} points, %",
                             [(name, (which, pts)) for name in categorical
                              for which in ("top", "bottom")]))
    for title, members in sections:
        rows = []
        for name, effect in members:
            shape = by_shape[name]
            label = shape.label
            if effect[0] in ("top", "bottom"):
                j = 0 if effect[0] == "top" else shape.base.size - 1
                assert shape.probs is not None
                label = (f"{shape.label}, {'most' if j == 0 else 'least'} frequent "
                         f"({100 * shape.base[j]:.1f} % → {100 * shape.probs(effect)[j]:.1f} %)")
            rows.append((label, shape, {n: cells[(name, effect, n)] for n in sizes
                                        if (name, effect, n) in cells}))
        lines += [f"## {title}", ""] + table(rows, sizes) + [""]
    # targets
    found: list[dict[str, Any]] = []
    for (name, effect, n), c in cells.items():
        shape = by_shape[name]
        t = target_of(shape, effect, n)
        if t is None or not misses(c, shape, "modelmon"):
            continue
        k, m = c.flagged["modelmon"], c.windows["modelmon"]
        lo, hi = wilson(k, m)
        clear = (lo > t[1]) if t[0] == "max" else (hi < t[1])
        found.append({"shape": name, "effect": effect_label(effect), "n": n, "target": t[2],
                      "rate": k / m, "flagged": k, "windows": m, "ci95": [lo, hi],
                      "outside_noise": clear})
    lines += ["## Targets (modelmon's verdict)", ""]
    checked = sum(1 for (name, effect, n) in cells if target_of(by_shape[name], effect, n))
    if not found:
        lines.append(f"All {checked} cells with a target meet it.")
    else:
        lines.append(f"{len(found)} of {checked} cells with a target miss it "
                     f"(95 % Wilson interval; 'noise' = the interval still holds the target):")
        lines.append("")
        for f in sorted(found, key=lambda f: (f["target"], f["shape"], f["n"])):
            lines.append(f"- {f['shape']}, {f['effect']}, n={f['n']:,}: {100 * f['rate']:.2f} % "
                         f"({f['flagged']}/{f['windows']}, 95 % CI {100 * f['ci95'][0]:.2f}–"
                         f"{100 * f['ci95'][1]:.2f} %); target {f['target']}"
                         f"{'' if f['outside_noise'] else ' (noise)'}")
    lines.append("")
    peer_lines = []
    for rule in RULES:
        fa = [c for (name, effect, n), c in cells.items() if c.windows.get(rule)
              and (t := target_of(by_shape[name], effect, n)) and t[0] == "max"]
        det = [c for (name, effect, n), c in cells.items() if c.windows.get(rule)
               and (t := target_of(by_shape[name], effect, n)) and t[0] == "min"]
        bad_fa = sum(misses(c, by_shape[c.shape], rule) for c in fa)
        bad_det = sum(misses(c, by_shape[c.shape], rule) for c in det)
        peer_lines.append(f"| {RULE_TITLES[rule]} | {bad_fa}/{len(fa)} | {bad_det}/{len(det)} |")
    lines += ["Every rule against the same targets (cells that miss / cells with the target):",
              "", "| rule | false alarms > 1 % | detection < 95 % |", "|---|---:|---:|"]
    lines += peer_lines
    lines += ["", "## Checks", ""] + [f"- {x}" for x in notes]
    lines += ["", f"Total run time {elapsed / 60:.1f} min."]
    return "\n".join(lines), found


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="4 shapes, 100 references, 400 count windows, 60 raw windows (< 2 min)")
    ap.add_argument("--reps", type=int, default=None,
                    help="count windows per cell for modelmon and PSI (and categoricals); "
                         "default 2000, quick 400")
    ap.add_argument("--raw-reps", type=int, default=None,
                    help="raw windows per cell for Evidently/NannyML/KS at n <= 10,000 (half at "
                         "100,000, a tenth at 1,000,000); default 400, quick 60")
    ap.add_argument("--bank", type=int, default=None,
                    help="references per shape; default 1000, quick 100")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--shapes", default=None,
                    help="comma-separated subset of: " + ",".join(s.name for s in SHAPES))
    ap.add_argument("--sizes", default=None, help="comma-separated window sizes (default all)")
    ap.add_argument("--json", default=None, metavar="FILE", help="save the raw rates as JSON")
    ap.add_argument("--evidently-python", default=None, metavar="PY",
                    help="an interpreter where Evidently imports, for the check")
    ap.add_argument("--nannyml-python", default=None, metavar="PY",
                    help="an interpreter where NannyML imports, for the check")
    ap.add_argument("--no-library-check", action="store_true",
                    help="skip the check against the real Evidently and NannyML")
    args = ap.parse_args(argv)
    args.reps = args.reps or (400 if args.quick else 2000)
    args.raw_reps = args.raw_reps or (60 if args.quick else 400)
    args.bank = args.bank or (100 if args.quick else 1000)
    names = args.shapes.split(",") if args.shapes else (
        list(QUICK_SHAPES) if args.quick else [s.name for s in SHAPES])
    unknown = set(names) - {s.name for s in SHAPES}
    if unknown:
        ap.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    shapes = [s for s in SHAPES if s.name in names]
    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else SIZES

    t_start = time.perf_counter()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    notes = check_fast_paths(shapes, args.seed)
    if not args.no_library_check:
        lib_lines, lib_record = check_libraries(shapes, args.seed, args.evidently_python,
                                                args.nannyml_python)
        notes += lib_lines
    else:
        lib_record = {}
        notes.append("Evidently, NannyML: library check skipped (--no-library-check)")

    cells: dict[tuple[str, Effect, int], Cell] = {}
    raw_needed = min(args.bank, max(raw_reps_for(n, args.raw_reps) for n in sizes))
    for shape in shapes:
        t0 = time.perf_counter()
        bank = make_bank(shape, args.bank, raw_needed if shape.kind == "numeric"
                         else args.bank, args.seed)
        groups = groups_by_buckets(bank)
        effects = NUM_EFFECTS if shape.kind == "numeric" else CAT_EFFECTS
        for n in sizes:
            nms = null_models(shape, bank, groups, n)
            for effect in effects:
                cell = Cell(shape.name, effect, n)
                count_cell(shape, bank, groups, nms, effect, n, args.reps, args.seed, cell)
                if shape.kind == "numeric":
                    raw_cell(shape, bank, effect, n, raw_reps_for(n, args.raw_reps),
                             args.seed, cell)
                cells[(shape.name, effect, n)] = cell
        print(f"[{shape.name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)

    elapsed = time.perf_counter() - t_start
    text, found = report(shapes, cells, sizes, args, notes, elapsed)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"modelmon": modelmon_source(), "seed": args.seed, "reps": args.reps,
                       "raw_reps": args.raw_reps,
                       "bank": args.bank, "n_reference": N_REF, "alpha": DEFAULT_ALPHA,
                       "elapsed_s": elapsed, "library_check": lib_record, "misses": found,
                       "cells": [{"shape": c.shape, "effect": effect_label(c.effect), "n": c.n,
                                  "flagged": c.flagged, "windows": c.windows,
                                  "rates": {r: c.rate(r) for r in RULES}}
                                 for c in cells.values()]}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
