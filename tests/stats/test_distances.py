"""Tests of modelmon.stats.distances against independent references.

The references are SciPy on raw samples or on the proportions, and hand
arithmetic written out in the test. Randomness is seeded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import jensenshannon
from scipy.special import kolmogorov

from modelmon.stats import (
    SignificanceResult,
    bucket_counts,
    chi_square,
    drift_scores,
    hellinger,
    jensen_shannon,
    kolmogorov_smirnov,
    psi,
    wasserstein,
)
from modelmon.stats.distances import Score

# Numerical warnings (overflow, 0/0) are bugs here: the functions promise finite
# results or a deliberate NaN.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

ALL_KEYS = ["psi", "jensen_shannon", "hellinger", "ks", "ks_pvalue", "chi2_pvalue",
            "wasserstein_normed"]
CATEGORICAL_KEYS = ["psi", "jensen_shannon", "hellinger", "chi2_pvalue"]


def _rng(seed: int = 20240601) -> np.random.Generator:
    return np.random.default_rng(seed)


def _count_rows(rng: np.random.Generator, rows: int, buckets: int,
                zero_frac: float = 0.0) -> np.ndarray:
    x = rng.integers(1, 500, size=(rows, buckets)).astype(np.float64)
    if zero_frac:
        x[rng.random((rows, buckets)) < zero_frac] = 0.0
        x[:, 0] += 1.0  # keep every row non-empty
    return x


# Strategy: a (rows, B) pair of non-negative count arrays, every row non-empty.
@st.composite
def count_pairs(draw: st.DrawFn, min_buckets: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(1, 6))
    b = draw(st.integers(min_buckets, 12))
    elems = st.one_of(st.just(0.0), st.integers(0, 10_000).map(float),
                      st.floats(0.0, 1e4, allow_nan=False, allow_infinity=False,
                                allow_subnormal=False))  # see test_subnormal_counts_stay_finite
    r = draw(arrays(np.float64, (rows, b), elements=elems))
    c = draw(arrays(np.float64, (rows, b), elements=elems))
    r[:, 0] += 1.0
    c[:, -1] += 1.0
    return r, c


# --- Jensen-Shannon ------------------------------------------------------------


def test_jensen_shannon_equals_scipy_on_random_rows() -> None:
    rng = _rng(1)
    r = _count_rows(rng, 200, 20, zero_frac=0.2)
    c = _count_rows(rng, 200, 20, zero_frac=0.2)
    got = jensen_shannon(r, c)
    p = r / r.sum(axis=1, keepdims=True)
    q = c / c.sum(axis=1, keepdims=True)
    want = np.array([jensenshannon(p[i], q[i], base=2) for i in range(len(r))])
    assert got.shape == (200,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # scipy's axis form agrees too
    np.testing.assert_allclose(got, jensenshannon(p, q, base=2, axis=1), rtol=1e-12, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(count_pairs())
def test_jensen_shannon_equals_scipy_property(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    got = jensen_shannon(r, c)
    want = np.array([jensenshannon(r[i], c[i], base=2) for i in range(len(r))])
    # Compare the divergences (squares): near 0 the square root turns the
    # ~1e-16 rounding of either implementation into a visible relative error.
    np.testing.assert_allclose(got**2, want**2, rtol=1e-9, atol=1e-14)


def test_jensen_shannon_extremes() -> None:
    assert jensen_shannon([3, 0, 0], [0, 0, 5]) == 1.0
    assert jensen_shannon([3, 1, 0], [30, 10, 0]) == 0.0


# --- PSI -----------------------------------------------------------------------


def test_psi_hand_computed() -> None:
    # p = [0.2, 0.3, 0.5], q = [0.3, 0.3, 0.4]
    # PSI = (0.3-0.2) ln(0.3/0.2) + 0 + (0.4-0.5) ln(0.4/0.5)
    #     = 0.1 * 0.4054651081 + 0.1 * 0.2231435513 = 0.06286086594
    assert psi([20, 30, 50], [30, 30, 40]) == pytest.approx(0.06286086594, rel=1e-9)
    # counts scale out: same proportions, same value
    assert psi([2, 3, 5], [3000, 3000, 4000]) == pytest.approx(0.06286086594, rel=1e-9)


def test_psi_eps_clips_empty_bucket_hand_computed() -> None:
    # p = [0 -> clipped to 1e-4, 0.5, 0.5], q = [0.1, 0.45, 0.45]; not renormalised.
    # PSI = (0.1 - 1e-4) ln(0.1 / 1e-4) + 2 * (0.45 - 0.5) ln(0.45 / 0.5)
    #     = 0.0999 * 6.907755279 + 0.1 * 0.1053605157 = 0.6900847524 + 0.0105360516
    assert psi([0, 50, 50], [10, 45, 45]) == pytest.approx(0.7006208039, rel=1e-9)
    # a larger eps makes the empty bucket cost less:
    # (0.1 - 0.01) ln(10) + 0.1 * ln(1/0.9) = 0.2072326584 + 0.0105360516
    assert psi([0, 50, 50], [10, 45, 45], eps=0.01) == pytest.approx(0.2177687100, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(count_pairs())
def test_psi_is_non_negative_and_symmetric(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    a = psi(r, c)
    assert np.all(a >= 0)
    np.testing.assert_allclose(a, psi(c, r), rtol=1e-9, atol=1e-15)


# --- Hellinger -----------------------------------------------------------------


def test_hellinger_matches_definition_on_random_rows() -> None:
    rng = _rng(2)
    r = _count_rows(rng, 100, 15, zero_frac=0.3)
    c = _count_rows(rng, 100, 15, zero_frac=0.3)
    p = r / r.sum(axis=1, keepdims=True)
    q = c / c.sum(axis=1, keepdims=True)
    want = np.sqrt(np.clip(1.0 - np.sqrt(p * q).sum(axis=1), 0, None))
    np.testing.assert_allclose(hellinger(r, c), want, rtol=1e-9, atol=1e-7)
    # and against scipy's Euclidean distance of the square roots: H = ||sqrt p - sqrt q|| / sqrt 2
    from scipy.spatial.distance import euclidean
    want2 = np.array([euclidean(np.sqrt(p[i]), np.sqrt(q[i])) / math.sqrt(2) for i in range(100)])
    np.testing.assert_allclose(hellinger(r, c), want2, rtol=1e-12)


def test_hellinger_hand_computed_and_extremes() -> None:
    # p = [.5, .5], q = [.25, .75]: BC = sqrt(.125) + sqrt(.375) = 0.9659258263
    assert hellinger([1, 1], [1, 3]) == pytest.approx(math.sqrt(1 - 0.9659258263), rel=1e-9)
    assert hellinger([1, 0], [0, 1]) == 1.0
    assert hellinger([7, 3, 1], [7, 3, 1]) == 0.0


@settings(max_examples=100, deadline=None)
@given(count_pairs())
def test_bounded_distances_are_in_unit_interval(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    for f in (jensen_shannon, hellinger):
        v = f(r, c)
        assert np.all((v >= 0) & (v <= 1)), f.__name__
        np.testing.assert_allclose(v, f(c, r), rtol=1e-9, atol=1e-15)


# --- Kolmogorov-Smirnov ---------------------------------------------------------


def _integer_samples(rng: np.random.Generator, n: int, m: int, shift: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = rng.poisson(8.0, n)
    b = rng.poisson(8.0 + shift, m)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    edges = np.arange(lo, hi, dtype=np.float64)  # integers: binning loses nothing
    return a, b, edges


@pytest.mark.parametrize("seed,shift", [(3, 0.0), (4, 0.3), (5, 1.0), (6, -0.5)])
def test_ks_statistic_equals_ks_2samp_on_exactly_binned_data(seed: int, shift: float) -> None:
    rng = _rng(seed)
    a, b, edges = _integer_samples(rng, 2000, 1000, shift)
    res = kolmogorov_smirnov(bucket_counts(edges, a), bucket_counts(edges, b))
    assert isinstance(res, SignificanceResult)
    ref = scipy.stats.ks_2samp(a, b, method="asymp")
    assert res.statistic == ref.statistic  # exact, not approximately
    # p-value: exactly the asymptotic Kolmogorov formula ...
    en = 2000 * 1000 / 3000
    assert res.pvalue == pytest.approx(kolmogorov(ref.statistic * math.sqrt(en)), rel=1e-12)
    # ... and close to scipy's finite-n asymptotic p-value
    assert res.pvalue == pytest.approx(ref.pvalue, abs=0.03)


def test_ks_hand_computed() -> None:
    # cumulative: [.25, .5, .75, 1] vs [.1, .3, .6, 1] -> D = 0.2; n = m = 100 -> en = 50
    d, p = kolmogorov_smirnov([25, 25, 25, 25], [10, 20, 30, 40])
    assert d == pytest.approx(0.2, abs=1e-15)
    assert p == pytest.approx(kolmogorov(0.2 * math.sqrt(50)), rel=1e-12)
    assert 0.03 < p < 0.04


def test_ks_depends_on_sample_size() -> None:
    small = kolmogorov_smirnov([25, 25, 25, 25], [10, 20, 30, 40]).pvalue
    large = kolmogorov_smirnov([250, 250, 250, 250], [100, 200, 300, 400]).pvalue
    assert large < small


# --- chi-square ----------------------------------------------------------------


def test_chi_square_equals_scipy_chisquare_without_empty_reference_buckets() -> None:
    rng = _rng(7)
    r = _count_rows(rng, 50, 12)  # all reference buckets > 0
    c = _count_rows(rng, 50, 12, zero_frac=0.2)  # some current buckets 0
    stat, p = map(np.asarray, chi_square(r, c))
    for i in range(len(r)):
        f_exp = r[i] / r[i].sum() * c[i].sum()
        ref = scipy.stats.chisquare(c[i], f_exp)
        assert stat[i] == pytest.approx(ref.statistic, rel=1e-12)
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)


def test_chi_square_hand_computed() -> None:
    # expected 25 each: (15^2 + 5^2 + 5^2 + 15^2) / 25 = 500 / 25 = 20, dof 3
    stat, p = chi_square([25, 25, 25, 25], [10, 20, 30, 40])
    assert stat == pytest.approx(20.0, rel=1e-12)
    assert p == pytest.approx(scipy.stats.chi2.sf(20.0, 3), rel=1e-12)


def test_chi_square_drops_buckets_empty_on_both_sides() -> None:
    r = np.array([40, 0, 30, 0, 30], dtype=float)
    c = np.array([20, 0, 50, 0, 30], dtype=float)
    stat, p = chi_square(r, c)
    ref = scipy.stats.chisquare([20, 50, 30], [40, 30, 30])  # dof 2, not 4
    assert stat == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)


def test_chi_square_floors_empty_reference_bucket_with_half_count() -> None:
    r = np.array([50, 50, 0, 0], dtype=float)
    c = np.array([10, 10, 1, 0], dtype=float)
    stat, p = chi_square(r, c)
    assert np.isfinite(stat) and np.isfinite(p)
    # reference pseudo-counts [50, 50, 0.5], renormalised over 100.5; m = 21; dof = 2
    f_exp = np.array([50, 50, 0.5]) / 100.5 * 21
    ref = scipy.stats.chisquare([10, 10, 1], f_exp)
    assert stat == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    # by hand: 2 * (10 - 10.447761)^2 / 10.447761 + (1 - 0.104478)^2 / 0.104478 = 7.714286
    assert stat == pytest.approx(7.714286, rel=1e-6)


def test_chi_square_floors_fractional_reference_counts() -> None:
    # float counts below 0.5 are floored too: [0.2, 10, 10] -> [0.5, 10, 10] / 20.5
    stat, p = chi_square([0.2, 10.0, 10.0], [5.0, 5.0, 5.0])
    ref = scipy.stats.chisquare([5, 5, 5], np.array([0.5, 10, 10]) / 20.5 * 15)
    assert stat == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    # a subnormal reference count must not overflow
    stat, p = chi_square([5e-324, 10.0, 10.0], [5.0, 5.0, 5.0])
    assert stat == pytest.approx(ref.statistic, rel=1e-12)


def test_chi_square_new_category_is_significant() -> None:
    # A value never seen in training shows up 100 times out of 10k: drift.
    r = np.array([50_000, 50_000, 0])
    c = np.array([4_950, 4_950, 100])
    stat, p = chi_square(r, c)
    assert np.isfinite(stat) and stat > 1e4 and p < 1e-12


def test_chi_square_single_non_empty_bucket() -> None:
    stat, p = chi_square([7, 0, 0], [3, 0, 0])
    assert stat == 0.0 and p == 1.0


# --- Wasserstein ---------------------------------------------------------------


@pytest.mark.parametrize("seed,shift", [(8, 0.0), (9, 0.7), (10, 3.0)])
def test_wasserstein_equals_scipy_on_data_at_placement_points(seed: int, shift: float) -> None:
    rng = _rng(seed)
    k = 12
    # integers 0..k; edges at half-integers so the interior midpoints are the
    # integers, the open first bucket sits at 0.5 - 1/2 = 0 and the open last
    # bucket at (k - 0.5) + 1/2 = k.
    a = np.clip(rng.poisson(5.0, 3000), 0, k)
    b = np.clip(np.round(rng.poisson(5.0, 1000) + shift).astype(int), 0, k)
    edges = np.arange(k, dtype=float) + 0.5
    r, c = bucket_counts(edges, a), bucket_counts(edges, b)
    assert r[0] == np.sum(a == 0) and r[-1] == np.sum(a == k)  # end buckets are used
    want = scipy.stats.wasserstein_distance(a, b)
    assert wasserstein(r, c, edges) == pytest.approx(want, rel=1e-12, abs=1e-15)
    # normed: divided by the reference standard deviation of the samples
    assert wasserstein(r, c, edges, normed=True) == pytest.approx(want / np.std(a), rel=1e-10,
                                                                 abs=1e-15)


def test_wasserstein_uneven_edges_against_scipy_weighted() -> None:
    rng = _rng(11)
    edges = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 6.0])
    # placement written out: first (-3) - 2/2 = -4; midpoints; last 6 + 4/2 = 8
    x = np.array([-4.0, -2.0, -0.5, 0.25, 1.25, 4.0, 8.0])
    for _ in range(20):
        r = rng.integers(0, 100, 7).astype(float) + 1
        c = rng.integers(0, 100, 7).astype(float)
        want = scipy.stats.wasserstein_distance(x, x, r, c)
        assert wasserstein(r, c, edges) == pytest.approx(want, rel=1e-12, abs=1e-15)
        mu = np.average(x, weights=r)
        sd = math.sqrt(np.average((x - mu) ** 2, weights=r))
        assert wasserstein(r, c, edges, normed=True) == pytest.approx(want / sd, rel=1e-10)


def test_wasserstein_single_edge_uses_unit_width() -> None:
    # points 2 - 0.5 and 2 + 0.5: moving all mass across costs 1.0
    assert wasserstein([1, 0], [0, 1], [2.0]) == pytest.approx(1.0)
    assert wasserstein([3, 1], [1, 3], [2.0]) == pytest.approx(0.5)


def test_wasserstein_normed_point_mass_reference_uses_mean_spacing() -> None:
    edges = np.array([0.0, 1.0, 3.0])  # points -0.5, 0.5, 2, 4: mean spacing 4.5 / 3 = 1.5
    w = wasserstein([0, 10, 0, 0], [0, 0, 10, 0], edges)
    assert w == pytest.approx(1.5)
    wn = wasserstein([0, 10, 0, 0], [0, 0, 10, 0], edges, normed=True)
    assert np.isfinite(wn) and wn == pytest.approx(1.5 / 1.5)
    assert wasserstein([0, 10, 0, 0], [0, 10, 0, 0], edges, normed=True) == 0.0


def test_wasserstein_per_row_edges() -> None:
    r = np.array([[1, 0, 0], [1, 0, 0]])
    c = np.array([[0, 0, 1], [0, 0, 1]])
    edges = np.array([[0.0, 1.0], [0.0, 10.0]])  # points (-0.5, 0.5, 1.5), (-5, 5, 15)
    np.testing.assert_allclose(wasserstein(r, c, edges), [2.0, 20.0])


# --- shared behaviour ----------------------------------------------------------


def _per_function(r: np.ndarray, c: np.ndarray, edges: np.ndarray) -> dict[str, Score]:
    return {
        "psi": psi(r, c),
        "jensen_shannon": jensen_shannon(r, c),
        "hellinger": hellinger(r, c),
        "ks": kolmogorov_smirnov(r, c).statistic,
        "ks_pvalue": kolmogorov_smirnov(r, c).pvalue,
        "chi2": chi_square(r, c).statistic,
        "chi2_pvalue": chi_square(r, c).pvalue,
        "wasserstein": wasserstein(r, c, edges),
        "wasserstein_normed": wasserstein(r, c, edges, normed=True),
    }


@settings(max_examples=60, deadline=None)
@given(count_pairs(min_buckets=3))
def test_vectorised_equals_per_row(pair: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = pair
    edges = np.cumsum(np.arange(1.0, r.shape[1]))  # uneven, strictly increasing
    batch = _per_function(r, c, edges)
    for i in range(len(r)):
        row = _per_function(r[i], c[i], edges)
        for key, value in row.items():
            assert isinstance(value, np.float64), key
            got = np.asarray(batch[key])[i]
            if key == "jensen_shannon":
                # Sums over one row and over many may round differently (pairwise
                # vs sequential); JS sums terms of both signs and takes a square
                # root, so compare the divergence.
                np.testing.assert_allclose(got**2, value**2, rtol=1e-9, atol=1e-15, err_msg=key)
            else:
                # 1e-9, not 1e-12: counts spanning 1 to 1e4 in one row give relative
                # rounding differences of a few 1e-12 between summation orders
                # (seen: wasserstein 2.2e-12). A real bug shows far above 1e-9.
                np.testing.assert_allclose(got, value, rtol=1e-9, atol=1e-15, err_msg=key)


def test_drift_scores_equals_individual_functions() -> None:
    rng = _rng(12)
    r = _count_rows(rng, 20, 20, zero_frac=0.1)
    c = _count_rows(rng, 20, 20, zero_frac=0.1)
    r[3] = 0.0  # one empty row
    edges = np.sort(rng.normal(size=(20, 19)), axis=1)
    scores = drift_scores(r, c, edges)
    assert list(scores) == ALL_KEYS
    want = _per_function(r, c, edges)
    for key in ALL_KEYS:
        assert np.shape(scores[key]) == (20,)
        np.testing.assert_array_equal(scores[key], want[key], err_msg=key)
    cat = drift_scores(r, c)
    assert list(cat) == CATEGORICAL_KEYS
    for key in CATEGORICAL_KEYS:
        np.testing.assert_array_equal(cat[key], scores[key], err_msg=key)


def test_drift_scores_keys_match_catalogue() -> None:
    from modelmon import catalogue

    scores = drift_scores([1, 2, 3], [3, 2, 1], [0.0, 1.0])
    assert tuple(scores) == tuple(catalogue.DRIFT_METHODS)
    assert set(scores) - set(drift_scores([1, 2, 3], [3, 2, 1])) == set(
        catalogue.NUMERIC_ONLY_METHODS)


def test_one_dimensional_input_gives_float64_scalar() -> None:
    r, c, e = [5, 3, 2], [2, 3, 5], [0.0, 1.0]
    for v in (psi(r, c), jensen_shannon(r, c), hellinger(r, c), wasserstein(r, c, e),
              *kolmogorov_smirnov(r, c), *chi_square(r, c), *drift_scores(r, c, e).values()):
        assert isinstance(v, np.float64)
        assert np.ndim(v) == 0


def test_leading_axes_broadcast() -> None:
    rng = _rng(13)
    ref = rng.integers(1, 100, 8).astype(float)
    cur = rng.integers(1, 100, (3, 5, 8)).astype(float)
    edges = np.arange(7.0)
    got = drift_scores(ref, cur, edges)
    for key, value in got.items():
        assert np.shape(value) == (3, 5), key
        np.testing.assert_allclose(np.asarray(value)[1, 2],
                                   drift_scores(ref, cur[1, 2], edges)[key], rtol=1e-12,
                                   err_msg=key)


def test_identical_distributions_score_zero_with_p_one() -> None:
    rng = _rng(14)
    r = _count_rows(rng, 10, 20, zero_frac=0.2)
    scores = drift_scores(r, r, np.arange(19.0))
    for key in ("psi", "jensen_shannon", "hellinger", "ks", "wasserstein_normed"):
        np.testing.assert_array_equal(scores[key], 0.0, err_msg=key)
    for key in ("ks_pvalue", "chi2_pvalue"):
        np.testing.assert_array_equal(scores[key], 1.0, err_msg=key)
    # proportional (not identical) counts: zero up to rounding
    scaled = drift_scores(r, 3.0 * r, np.arange(19.0))
    for key in ("psi", "jensen_shannon", "hellinger", "ks", "wasserstein_normed"):
        np.testing.assert_allclose(scaled[key], 0.0, atol=1e-7, err_msg=key)
    assert np.all(scaled["chi2_pvalue"] > 0.999)


def test_shifted_distribution_scores_positive_with_small_p() -> None:
    rng = _rng(15)
    edges = np.linspace(-2, 2, 19)
    r = bucket_counts(edges, rng.normal(0, 1, 100_000))
    c = bucket_counts(edges, rng.normal(0.5, 1, 10_000))
    s = drift_scores(r, c, edges)
    assert s["psi"] > 0.1 and s["jensen_shannon"] > 0.1 and s["hellinger"] > 0.1
    assert s["ks"] > 0.15 and s["ks_pvalue"] < 1e-10 and s["chi2_pvalue"] < 1e-10
    assert 0.3 < s["wasserstein_normed"] < 0.7


def test_empty_rows_give_nan_and_leave_other_rows_alone() -> None:
    r = np.array([[10.0, 20.0, 30.0], [0.0, 0.0, 0.0], [10.0, 20.0, 30.0]])
    c = np.array([[30.0, 20.0, 10.0], [30.0, 20.0, 10.0], [0.0, 0.0, 0.0]])
    edges = np.array([0.0, 1.0])
    # no warnings on the way either
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        scores = drift_scores(r, c, edges)
        extra = {"chi2": chi_square(r, c).statistic, "wasserstein": wasserstein(r, c, edges)}
    for key, score in {**scores, **extra}.items():
        value = np.asarray(score)
        assert np.isnan(value[1]) and np.isnan(value[2]), key
        assert np.isfinite(value[0]), key
        np.testing.assert_array_equal(value[0],
                                      {**drift_scores(r[0], c[0], edges),
                                       "chi2": chi_square(r[0], c[0]).statistic,
                                       "wasserstein": wasserstein(r[0], c[0], edges)}[key])
    assert np.isnan(psi([0, 0], [1, 1]))
    with np.errstate(divide="raise", over="raise", invalid="raise"):  # both sides empty
        both = drift_scores([[0, 0, 0], [1, 2, 3]], [[0, 0, 0], [3, 2, 1]], [0.0, 1.0])
    for key, score in both.items():
        assert np.isnan(np.asarray(score)[0]) and np.isfinite(np.asarray(score)[1]), key
    assert all(np.isnan(kolmogorov_smirnov([1, 1], [0, 0])))


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)),
              elements=st.sampled_from([0.0, 0.0, 0.0, 1.0, 7.0, 0.25])),
       arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)),
              elements=st.sampled_from([0.0, 0.0, 0.0, 1.0, 7.0, 0.25])))
def test_nan_exactly_on_empty_rows(r: np.ndarray, c: np.ndarray) -> None:
    rows = min(len(r), len(c))
    b = min(r.shape[1], c.shape[1])
    r, c = r[:rows, :b], c[:rows, :b]
    empty = (r.sum(axis=1) == 0) | (c.sum(axis=1) == 0)
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        scores = drift_scores(r, c, np.arange(b - 1.0))
    for key, score in scores.items():
        np.testing.assert_array_equal(np.isnan(np.asarray(score)), empty, err_msg=key)


def test_subnormal_counts_stay_finite() -> None:
    # scipy's jensenshannon returns inf here ((0 + 5e-324) / 2 underflows to 0);
    # ours must stay finite everywhere.
    r = np.array([1.0, 0.0, 0.0, 0.0])
    c = np.array([0.0, 0.0, 5e-324, 1.0])
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        scores = drift_scores(r, c, [0.0, 1.0, 2.0])
    for key, value in scores.items():
        assert np.isfinite(value), key
    assert jensen_shannon(r, c) == pytest.approx(1.0)
    assert hellinger(r, c) == pytest.approx(1.0)


# --- validation ----------------------------------------------------------------


@pytest.mark.parametrize("func", [psi, jensen_shannon, hellinger, kolmogorov_smirnov,
                                  chi_square, drift_scores])
def test_negative_counts_rejected(func: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        func([1, -1, 2], [1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        func([1, 1, 2], [[1, 1, 1], [0, -0.5, 1]])


@pytest.mark.parametrize("func", [psi, jensen_shannon, hellinger, kolmogorov_smirnov,
                                  chi_square, drift_scores])
def test_bad_shapes_rejected(func: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="same number of buckets"):
        func([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="do not broadcast"):
        func(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="scalar"):
        func(5, 5)
    with pytest.raises(ValueError, match="finite"):
        func([1, np.nan, 3], [1, 2, 3])


def test_bad_edges_rejected() -> None:
    r, c = [1, 2, 3], [3, 2, 1]
    with pytest.raises(ValueError, match="buckets - 1 = 2"):
        wasserstein(r, c, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="buckets - 1 = 2"):
        drift_scores(r, c, [0.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        wasserstein(r, c, [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        wasserstein(r, c, [0.0, np.inf])
    with pytest.raises(ValueError, match="at least 2 buckets"):
        wasserstein([1], [1], np.empty(0))
    with pytest.raises(ValueError, match="do not broadcast"):
        wasserstein(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 2)).cumsum(axis=1))


def test_bad_eps_rejected() -> None:
    with pytest.raises(ValueError, match="eps"):
        psi([1, 2], [2, 1], eps=0.0)


# --- speed ---------------------------------------------------------------------


def test_vectorised_speed_sanity() -> None:
    """Loose guard against a Python loop over rows creeping in (bench/drift.py measures)."""
    rng = _rng(16)
    r = _count_rows(rng, 10_000, 20, zero_frac=0.05)
    c = _count_rows(rng, 10_000, 20, zero_frac=0.05)
    edges = np.arange(19.0)
    drift_scores(r, c, edges)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        drift_scores(r, c, edges)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.25  # measured ~15 ms; a per-row loop takes seconds
