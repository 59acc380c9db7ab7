"""The null laws of the drift scores and the verdict, against independent references.

References: scipy's chi-square and Kolmogorov laws, a Monte Carlo of the
Gaussian limit and of multinomial windows for normed Wasserstein, statsmodels'
Holm procedure; calibration checked by simulating undrifted windows (seeded)
against a binomial confidence interval; power at the issue's targets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelmon.stats import (
    DEFAULT_ALPHA,
    DEFAULT_EFFECT,
    bucket_counts,
    drift_scores,
    drift_verdict,
    holm_levels,
    jensen_shannon,
    null_model,
    quantile_edges,
)
from modelmon.stats.distances import bucket_points

from tests.conftest import require_module


def binomial_interval(k: int, n: int, confidence: float = 0.999) -> tuple[float, float]:
    """Clopper-Pearson interval of a rate."""
    a = 1 - confidence
    lo = stats.beta.ppf(a / 2, k, n - k + 1) if k else 0.0
    hi = stats.beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


# ------------------------------------------------------------------ limit laws


@pytest.mark.parametrize("method, to_t", [
    ("psi", lambda s, ne: ne * s),
    ("jensen_shannon", lambda s, ne: 8 * math.log(2) * ne * s * s),
    ("hellinger", lambda s, ne: 8 * ne * s * s),
])
def test_chi_square_family_uses_scipy_chi2_with_k_minus_1_dof(method, to_t):
    ref = np.array([3000.0, 2000, 2000, 1500, 1000, 500, 0])  # 6 non-empty buckets
    n = 5000
    nm = null_model(method, ref, n)
    n_eff = n * ref.sum() / (n + ref.sum())
    assert not nm.simulated[0]
    for level in (0.05, 0.01, 1e-4):
        s = float(nm.threshold(level)[0])
        assert to_t(s, n_eff) == pytest.approx(stats.chi2.isf(level, 5), rel=1e-9)
        assert float(nm.pvalue(s)[0]) == pytest.approx(level, rel=1e-6)


def test_ks_uses_the_kolmogorov_law_at_the_effective_size():
    ref = np.full(10, 100.0)
    nm = null_model("ks", ref, 300)
    n_eff = 300 * 1000 / 1300
    assert float(nm.threshold(0.01)[0]) == pytest.approx(
        stats.kstwobign.isf(0.01) / math.sqrt(n_eff), rel=1e-9)
    assert float(nm.pvalue(0.1)[0]) == pytest.approx(stats.kstwobign.sf(0.1 * math.sqrt(n_eff)),
                                                     rel=1e-9)


def test_wasserstein_limit_moments_equal_a_monte_carlo_of_the_brownian_bridge():
    rng = np.random.default_rng(3)
    values = rng.lognormal(size=20_000)
    edges = quantile_edges(values, 12)
    ref = bucket_counts(edges, values).astype(float)
    nm = null_model("wasserstein_normed", ref, 10**9, n_reference=10**9, edges=edges)
    mean, var = nm.shape[0] * nm.scale[0], nm.shape[0] * nm.scale[0] ** 2
    # independent: the bridge at the cumulative proportions, from Gaussian draws
    p = ref / ref.sum()
    F = np.cumsum(p)[:-1]
    x = bucket_points(edges)
    sd = math.sqrt(float((p * (x - (p * x).sum()) ** 2).sum()))
    xi = rng.standard_normal((200_000, p.size)) * np.sqrt(p)
    w = np.cumsum(xi, axis=1)[:, :-1]
    bridge = w - F * xi.sum(axis=1, keepdims=True)
    t = (np.abs(bridge) * np.diff(x)).sum(axis=1) / sd
    assert mean == pytest.approx(t.mean(), rel=0.01)
    assert var == pytest.approx(t.var(), rel=0.03)


def test_wasserstein_limit_matches_multinomial_windows_at_large_counts():
    rng = np.random.default_rng(4)
    values = rng.normal(size=50_000)
    edges = quantile_edges(values, 20)
    ref = bucket_counts(edges, values).astype(float)
    n = 20_000
    nm = null_model("wasserstein_normed", ref, n, edges=edges)
    p = ref / ref.sum()
    reps = 4000
    r = rng.multinomial(int(ref.sum()), p, size=reps).astype(float)
    c = rng.multinomial(n, p, size=reps).astype(float)
    w = drift_scores(r, c, edges)["wasserstein_normed"]
    n_eff = n * ref.sum() / (n + ref.sum())
    t = w * math.sqrt(n_eff)
    assert nm.shape[0] * nm.scale[0] == pytest.approx(t.mean(), rel=0.03)
    # the tail: windows above the threshold at most about as often as the level says
    for level in (0.05, 0.01):
        k = int((t > float(nm.threshold(level)[0]) * math.sqrt(n_eff)).sum())
        lo, hi = binomial_interval(k, reps)
        assert lo <= level * 1.3 and hi >= level * 0.5, (level, k / reps)


# ----------------------------------------------------------------- multiple testing


def test_holm_rejections_equal_statsmodels_per_group():
    multitest = require_module("statsmodels.stats.multitest", "statsmodels")
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 7, 400)
    p = np.where(rng.random(400) < 0.2, rng.random(400) * 1e-3, rng.random(400))
    p[rng.random(400) < 0.05] = np.nan
    for alpha in (0.05, 0.005):
        levels, rejected = holm_levels(p, groups, alpha)
        for g in range(7):
            at = np.flatnonzero((groups == g) & ~np.isnan(p))
            want = multitest.multipletests(p[at], alpha=alpha, method="holm")[0]
            assert rejected[at].tolist() == want.tolist()
            # the level is the line that decides: rejected exactly when p <= level
            assert ((p[at] <= levels[at]) == rejected[at]).all()
        assert np.isnan(levels[np.isnan(p)]).all() and not rejected[np.isnan(p)].any()


def test_holm_level_of_the_smallest_pvalue_is_bonferroni():
    levels, _ = holm_levels([0.2, 0.3, 0.0001, 0.5], ["m"] * 4, 0.01)
    assert levels[2] == 0.01 / 4


# ----------------------------------------------------------------------- calibration


def _numeric(shape: str, rng: np.random.Generator, size: int) -> np.ndarray:
    if shape == "normal":
        return rng.normal(size=size)
    if shape == "lognormal":
        return rng.lognormal(size=size)
    return rng.poisson(2.0, size=size).astype(float)


@pytest.mark.parametrize("shape", ["normal", "lognormal", "poisson"])
@pytest.mark.parametrize("n", [100, 1000])
def test_undrifted_numeric_windows_are_flagged_at_most_at_the_level(shape, n):
    """Both sides drawn from one population; the false-alarm rate of the verdict and the
    calibration of the p-values (without the effect floor) against a binomial interval."""
    rng = np.random.default_rng([7, n, len(shape)])
    reps = 3000
    refs = [_numeric(shape, rng, 10_000) for _ in range(6)]  # a bank of references
    edges = [quantile_edges(r, 20) for r in refs]
    ref_counts = [bucket_counts(e, r).astype(float) for e, r in zip(edges, refs)]
    population = _numeric(shape, rng, 2_000_000)
    pvalues, drifted = [], []
    for i in range(len(refs)):
        p = bucket_counts(edges[i], population) / population.size
        cur = rng.multinomial(n, p, size=reps // len(refs)).astype(float)
        ref = np.broadcast_to(ref_counts[i], cur.shape)
        e = np.broadcast_to(edges[i], (cur.shape[0], edges[i].size))
        score = drift_scores(ref, cur, e)["wasserstein_normed"]
        nm = null_model("wasserstein_normed", ref, n, edges=e)
        pvalues.append(nm.pvalue(score))
        drifted.append(drift_verdict(score, nm, np.arange(cur.shape[0]),
                                     effect=DEFAULT_EFFECT["wasserstein_normed"]).drifted)
    pv, dr = np.concatenate(pvalues), np.concatenate(drifted)
    lo, hi = binomial_interval(int(dr.sum()), dr.size)
    assert lo <= 0.01, f"false alarms {dr.mean():.4f} > 1 %"
    assert lo <= DEFAULT_ALPHA * 1.5
    for a in (0.05, 0.1):  # calibrated or conservative, never much above the level
        lo, hi = binomial_interval(int((pv <= a).sum()), pv.size)
        assert lo <= a * 1.25, (a, float((pv <= a).mean()))


@pytest.mark.parametrize("k", [5, 50])
@pytest.mark.parametrize("n", [100, 1000, 100_000])
def test_undrifted_categories_are_flagged_at_most_at_the_level(k, n):
    rng = np.random.default_rng([8, k, n])
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    reps = 3000
    # a bank of 6 references where the null is simulated (cached per reference); one per
    # window where it is not: at n >> N the reference's own noise is a fixed offset shared
    # by every window of that reference, so calibration is over references
    bank = 6 if k * 100 > n else reps
    refs = rng.multinomial(10_000, p, size=bank).astype(float)
    ref = np.repeat(refs, reps // bank, axis=0)
    cur = rng.multinomial(n, p, size=ref.shape[0]).astype(float)
    score = jensen_shannon(ref, cur)
    nm = null_model("jensen_shannon", ref, n)
    v = drift_verdict(score, nm, np.arange(ref.shape[0]), effect=DEFAULT_EFFECT["jensen_shannon"])
    lo, _ = binomial_interval(int(v.drifted.sum()), v.drifted.size)
    assert lo <= 0.01 and lo <= DEFAULT_ALPHA * 1.5, float(v.drifted.mean())
    pv = nm.pvalue(score)
    lo, _ = binomial_interval(int((pv <= 0.05).sum()), pv.size)
    assert lo <= 0.05 * 1.25, float((pv <= 0.05).mean())


def test_a_family_of_undrifted_features_rarely_has_any_flag():
    """Holm across 20 features keeps the family's false-alarm rate at alpha."""
    rng = np.random.default_rng(9)
    reps, m, n = 1500, 20, 300
    p = np.full(10, 0.1)
    ref = rng.multinomial(10_000, p, size=(reps * m)).astype(float)
    cur = rng.multinomial(n, p, size=reps * m).astype(float)
    score = jensen_shannon(ref, cur)
    v = drift_verdict(score, null_model("jensen_shannon", ref, n), np.repeat(np.arange(reps), m),
                      alpha=0.05, effect=0.0)
    any_flag = v.drifted.reshape(reps, m).any(axis=1)
    lo, hi = binomial_interval(int(any_flag.sum()), reps)
    assert lo <= 0.05 and hi >= 0.01, float(any_flag.mean())


# ---------------------------------------------------------------------------- power


@pytest.mark.parametrize("shape, n, shift", [("normal", 1000, 0.25), ("lognormal", 1000, 0.25),
                                             ("normal", 300, 0.5), ("lognormal", 300, 0.5)])
def test_location_shifts_at_the_targets_are_detected(shape, n, shift):
    rng = np.random.default_rng([10, n])
    ref_values = _numeric(shape, rng, 10_000)
    edges = quantile_edges(ref_values, 20)
    ref = bucket_counts(edges, ref_values).astype(float)
    sd = ref_values.std()
    reps = 400
    cur = np.stack([bucket_counts(edges, _numeric(shape, rng, n) + shift * sd)
                    for _ in range(reps)]).astype(float)
    score = drift_scores(ref, cur, edges)["wasserstein_normed"]
    v = drift_verdict(score, null_model("wasserstein_normed", np.broadcast_to(ref, cur.shape), n,
                                        edges=edges), np.arange(reps),
                      effect=DEFAULT_EFFECT["wasserstein_normed"])
    assert v.drifted.mean() >= 0.95


@pytest.mark.parametrize("k", [2, 5])
def test_a_ten_point_category_shift_is_detected_at_1000(k):
    rng = np.random.default_rng([11, k])
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    q = p * (1 - (p[0] + 0.10)) / (1 - p[0])
    q[0] = p[0] + 0.10
    reps = 400
    ref = rng.multinomial(10_000, p, size=reps).astype(float)
    cur = rng.multinomial(1000, q, size=reps).astype(float)
    v = drift_verdict(jensen_shannon(ref, cur), null_model("jensen_shannon", ref, 1000),
                      np.arange(reps), effect=DEFAULT_EFFECT["jensen_shannon"])
    assert v.drifted.mean() >= 0.95


def test_large_windows_do_not_flag_trivial_shifts():
    """At a million events the null quantile is tiny; the effect floor keeps a 0.05 sd shift
    (real, but trivial) from being flagged."""
    rng = np.random.default_rng(12)
    values = rng.normal(size=10_000)
    edges = quantile_edges(values, 20)
    ref = bucket_counts(edges, values).astype(float)
    pop = rng.normal(size=2_000_000) + 0.05
    p = bucket_counts(edges, pop) / pop.size
    cur = rng.multinomial(1_000_000, p, size=200).astype(float)
    score = drift_scores(np.broadcast_to(ref, cur.shape), cur, edges)["wasserstein_normed"]
    nm = null_model("wasserstein_normed", np.broadcast_to(ref, cur.shape), 1_000_000,
                    edges=np.broadcast_to(edges, (200, edges.size)))
    v = drift_verdict(score, nm, np.arange(200), effect=DEFAULT_EFFECT["wasserstein_normed"])
    assert (nm.pvalue(score) < 0.01).mean() > 0.5  # a test alone would flag most windows
    assert not v.drifted.any()
    assert (v.threshold == DEFAULT_EFFECT["wasserstein_normed"]).all()


# ------------------------------------------------------------------------- edge cases


def test_empty_rows_and_bad_input():
    nm = null_model("psi", [[0.0, 0.0], [5.0, 5.0]], [10, 0])
    assert np.isnan(nm.pvalue([0.1, 0.1])).all()
    v = drift_verdict([0.1, 0.1], nm, [0, 0], effect=0.0)
    assert not v.drifted.any() and np.isnan(v.threshold).all()
    with pytest.raises(ValueError, match="unknown verdict method 'chi2_pvalue'"):
        null_model("chi2_pvalue", [1.0, 1.0], 10)
    with pytest.raises(ValueError, match="wasserstein_normed needs the bucket edges"):
        null_model("wasserstein_normed", [1.0, 1.0], 10)
    with pytest.raises(ValueError, match="finite and non-negative"):
        null_model("psi", [1.0, -1.0], 10)


def test_one_bucket_reference_has_a_zero_null():
    nm = null_model("jensen_shannon", [100.0, 0.0, 0.0], 50)
    assert float(nm.threshold(0.01)[0]) == 0.0
    assert float(nm.pvalue(0.0)[0]) == 1.0 and float(nm.pvalue(0.2)[0]) == 0.0


def test_simulated_nulls_are_seeded_by_their_inputs():
    zipf = 1.0 / np.arange(1, 41)
    ref = zipf / zipf.sum() * 10_000
    a = null_model("jensen_shannon", ref, 150)
    b = null_model("jensen_shannon", ref, 150)
    assert a.simulated[0] and a.shape[0] == b.shape[0] and a.scale[0] == b.scale[0]
    # a window between two grid points: interpolated, so the threshold moves smoothly
    t = [float(null_model("jensen_shannon", ref, n).threshold(0.01)[0]) for n in (150, 155, 160)]
    assert t[0] > t[1] > t[2]
