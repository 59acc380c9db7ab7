"""Tests of the concept-drift detectors in modelmon.stats.concept.

The references are plain per-element Python loops written from the published
definitions (Page-Hinkley as in scikit-multiflow and river; ADWIN's cut test of
Bifet & Gavaldà 2007 on the raw window with exact sums). Randomness comes from
seeded NumPy Generators only.

Detection delays observed while choosing the defaults (30 seeds, change at
element 20,000 of a stationary prefix):

========================================  ============  ===========
stream                                    Page-Hinkley  ADWIN
========================================  ============  ===========
Bernoulli errors, p 0.1 -> 0.3            175 - 357     95 - 319
abs(N(0, 0.5)) -> abs(N(0, 0.75))         201 - 449     127 - 383
abs(N(0.3, 0.2)) -> abs(N(0.5, 0.2))      260 - 323     127 - 159
========================================  ============  ===========

The tests assert a delay of at most ``MAX_DELAY`` elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from modelmon.stats.concept import (
    Adwin,
    AdwinResult,
    PageHinkley,
    PageHinkleyResult,
    adwin,
    page_hinkley,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

CHANGE = 20_000
MAX_DELAY = 600
SEEDS = [0, 1, 2]


# --- streams ---------------------------------------------------------------------


def _bernoulli_change(seed: int, p0: float = 0.1, p1: float = 0.3,
                      after: int = 5_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(CHANGE) < p0, rng.random(after) < p1].astype(np.float64)


def _abs_gauss_change(seed: int, after: int = 5_000) -> np.ndarray:
    """Absolute errors of a regressor whose residual spread grows 0.5 -> 0.75."""
    rng = np.random.default_rng(seed)
    return np.abs(np.r_[rng.normal(0.0, 0.5, CHANGE), rng.normal(0.0, 0.75, after)])


def _abs_gauss_shift(seed: int, after: int = 5_000) -> np.ndarray:
    """Absolute errors whose mean shifts 0.3 -> 0.5 (residual sd 0.2)."""
    rng = np.random.default_rng(seed)
    return np.abs(np.r_[rng.normal(0.3, 0.2, CHANGE), rng.normal(0.5, 0.2, after)])


def _stationary(kind: str, seed: int, n: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "bernoulli":
        return (rng.random(n) < 0.1).astype(np.float64)
    return np.abs(rng.normal(0.0, 0.5, n))


def _many_changes(seed: int) -> np.ndarray:
    """Float data with several up and down shifts: detections fall everywhere."""
    rng = np.random.default_rng(seed)
    means = [0.2, 0.9, 0.1, 1.5, 0.3, 1.0]
    return np.concatenate([np.abs(rng.normal(m, 0.3, int(rng.integers(300, 1500))))
                           for m in means])


def _random_split(rng: np.random.Generator, x: np.ndarray) -> list[np.ndarray]:
    """``x`` in consecutive pieces of random sizes, empty and single ones included."""
    pieces, pos = [], 0
    while pos < x.size:
        size = int(rng.choice([0, 1, 7, 31, 32, 33, 500, int(rng.integers(0, 3000))]))
        pieces.append(x[pos:pos + size])
        pos += size
    return pieces


def _streamed(det: PageHinkley | Adwin, pieces: list[np.ndarray]) -> np.ndarray:
    found, offset = [], 0
    for p in pieces:
        got = det.update(p)
        assert got.dtype == np.intp
        found.append(got + offset)
        offset += p.size
    return np.concatenate(found) if found else np.zeros(0, np.intp)


# --- references ------------------------------------------------------------------


def _page_hinkley_loop(x: np.ndarray, delta: float, threshold: float, min_samples: int,
                       alpha: float = 1.0) -> tuple[list[int], float]:
    """Element by element, as scikit-multiflow / river (restart after a detection)."""
    found = []
    n, total, m, low = 0, 0.0, 0.0, 0.0
    for t, v in enumerate(x):
        n += 1
        total += v
        m = alpha * m + (v - total / n - delta)
        low = min(low, m)
        if n >= min_samples and m - low > threshold:
            found.append(t)
            n, total, m, low = 0, 0.0, 0.0, 0.0
    return found, m - low


def _adwin_cuts(min_blocks: int, max_blocks: int) -> list[int]:
    sizes = sorted({math.floor(2.0 ** (i / 4)) for i in range(200)
                    if 2.0 ** (i / 4) < max_blocks + 1})
    return [c for c in sizes if min_blocks <= c <= max_blocks - min_blocks]


def _adwin_loop(x: np.ndarray, delta: float, clock: int, max_window: int,
                min_window: int) -> list[int]:
    """ADWIN on the raw window with exact sums (math.fsum), checked every clock."""
    min_blocks = -(-min_window // clock)
    max_blocks = max_window // clock
    cuts = _adwin_cuts(min_blocks, max_blocks)

    def violations(w: list[float]) -> list[int]:
        n = len(w)
        mu = math.fsum(w) / n
        var = max(math.fsum(v * v for v in w) / n - mu * mu, 0.0)
        log_term = math.log(2.0 * n / delta)
        out = []
        for c in cuts:
            n1 = c * clock
            n0 = n - n1
            if n0 < min_blocks * clock:
                continue
            mu0, mu1 = math.fsum(w[:n0]) / n0, math.fsum(w[n0:]) / n1
            inv_m = 1.0 / n0 + 1.0 / n1
            eps = math.sqrt(2.0 * inv_m * var * log_term) + 2.0 / 3.0 * inv_m * log_term
            if abs(mu0 - mu1) > eps:
                out.append(c)
        return out

    found = []
    window: list[float] = []
    for t, v in enumerate(x):
        window.append(float(v))
        if (t + 1) % clock:
            continue
        del window[:max(0, len(window) - max_blocks * clock)]
        cut = False
        while bad := violations(window):
            cut = True
            window = window[-bad[-1] * clock:]
        if cut:
            found.append(t)
    return found


# --- Page-Hinkley ----------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"delta": 0.02, "threshold": 50.0, "min_samples": 30},
    {"delta": 0.005, "threshold": 5.0, "min_samples": 1},
    {"delta": 0.0, "threshold": 20.0, "min_samples": 500},
    {"delta": 0.01, "threshold": 3.0, "min_samples": 30, "alpha": 0.99},
])
def test_page_hinkley_matches_per_element_definition(params: dict[str, Any]) -> None:
    x = _many_changes(7)
    expected, stat = _page_hinkley_loop(x, **params)
    res = page_hinkley(x, **params)
    assert isinstance(res, PageHinkleyResult)
    assert expected, "the stream should trigger this configuration"
    assert res.detections.tolist() == expected
    assert res.statistic == pytest.approx(stat, rel=1e-9, abs=1e-9)
    assert res.n == x.size - 1 - expected[-1]
    assert res.mean == pytest.approx(x[expected[-1] + 1:].mean())


def test_page_hinkley_statistic_is_a_reflected_cusum() -> None:
    x = np.abs(np.random.default_rng(3).normal(0.4, 0.3, 2_000))
    ph = PageHinkley(threshold=1e9)
    cusum, total = 0.0, 0.0
    for i, v in enumerate(x):
        ph.update(x[i:i + 1])
        total += v
        cusum = max(0.0, cusum + v - total / (i + 1) - ph.delta)
        assert ph.statistic == pytest.approx(cusum, abs=1e-9)
    assert ph.n == x.size and ph.mean == pytest.approx(x.mean())


@pytest.mark.parametrize("alpha", [1.0, 0.999])
@pytest.mark.parametrize("seed", SEEDS)
def test_page_hinkley_streaming_equals_pure(seed: int, alpha: float) -> None:
    rng = np.random.default_rng(100 + seed)
    x = np.concatenate([_many_changes(seed), _many_changes(seed + 10)])
    params: dict[str, Any] = {"delta": 0.01, "threshold": 4.0, "min_samples": 20, "alpha": alpha}
    whole = page_hinkley(x, **params)
    assert whole.detections.size >= 4
    for _ in range(3):
        ph = PageHinkley(**params)
        got = _streamed(ph, _random_split(rng, x))
        np.testing.assert_array_equal(got, whole.detections)
        assert (ph.statistic, ph.n) == (whole.statistic, whole.n)
        assert ph.mean == whole.mean or (math.isnan(ph.mean) and math.isnan(whole.mean))


def test_page_hinkley_long_stream_spans_chunks() -> None:
    # One call on 30,000 elements scans in internal chunks of a few thousand;
    # the detections and restarts still follow the definition element by element.
    x = np.r_[_bernoulli_change(4, after=5_000), _bernoulli_change(5, p0=0.0, p1=0.5)]
    expected, stat = _page_hinkley_loop(x, 0.02, 50.0, 30)
    res = page_hinkley(x)
    assert len(expected) >= 2
    assert res.detections.tolist() == expected
    assert res.statistic == pytest.approx(stat, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("make", [_bernoulli_change, _abs_gauss_change, _abs_gauss_shift],
                         ids=["bernoulli_0.1_0.3", "abs_gauss_sd", "abs_gauss_mean"])
def test_page_hinkley_detects_known_change(make: Callable[[int], np.ndarray],
                                           seed: int) -> None:
    d = page_hinkley(make(seed)).detections
    assert d.size >= 1
    assert CHANGE <= d[0] <= CHANGE + MAX_DELAY, d[:3]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["bernoulli", "abs_gauss"])
def test_page_hinkley_quiet_on_stationary_stream(kind: str, seed: int) -> None:
    res = page_hinkley(_stationary(kind, seed))
    assert res.detections.tolist() == []
    assert res.n == 100_000


def test_page_hinkley_is_one_sided() -> None:
    x = _bernoulli_change(5, p0=0.3, p1=0.1)
    assert page_hinkley(x).detections.tolist() == []


def test_page_hinkley_min_samples_and_reset() -> None:
    x = np.r_[np.zeros(10), np.ones(200)]
    assert page_hinkley(x, threshold=1.0, min_samples=1).detections[0] == 11
    assert page_hinkley(x, threshold=1.0, min_samples=50).detections[0] == 49
    ph = PageHinkley(threshold=1.0)
    ph.update(x[:20])
    assert ph.statistic > 0 and ph.n == 20
    ph.reset()
    assert (ph.statistic, ph.n) == (0.0, 0) and math.isnan(ph.mean)
    np.testing.assert_array_equal(ph.update(x), page_hinkley(x, threshold=1.0).detections)


# --- ADWIN -----------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"delta": 0.002, "clock": 32, "max_window": 20_000, "min_window": 32},
    {"delta": 0.05, "clock": 8, "max_window": 1_000, "min_window": 20},   # the cap is hit
    {"delta": 0.01, "clock": 1, "max_window": 400, "min_window": 5},
])
def test_adwin_matches_raw_window_definition(params: dict[str, Any]) -> None:
    x = _many_changes(11)[:4_000]
    expected = _adwin_loop(x, **params)
    res = adwin(x, **params)
    assert isinstance(res, AdwinResult)
    assert expected, "the stream should trigger this configuration"
    assert res.detections.tolist() == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_adwin_streaming_equals_pure(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    x = np.concatenate([_many_changes(seed), _many_changes(seed + 10)])
    params: dict[str, Any] = {"delta": 0.01, "clock": 32, "max_window": 2_000, "min_window": 32}
    whole = adwin(x, **params)
    assert whole.detections.size >= 4
    for _ in range(3):
        ad = Adwin(**params)
        got = _streamed(ad, _random_split(rng, x))
        np.testing.assert_array_equal(got, whole.detections)
        assert (ad.width, ad.mean) == (whole.width, whole.mean)
        assert ad.statistic == whole.statistic


def test_adwin_streaming_equals_pure_default_window() -> None:
    rng = np.random.default_rng(300)
    x = np.r_[_abs_gauss_change(9, after=2_000), _abs_gauss_shift(9, after=3_000)]
    whole = adwin(x)
    assert whole.detections.size >= 2
    ad = Adwin()
    np.testing.assert_array_equal(_streamed(ad, _random_split(rng, x)), whole.detections)
    assert (ad.width, ad.mean, ad.statistic) == (whole.width, whole.mean, whole.statistic)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("make", [_bernoulli_change, _abs_gauss_change, _abs_gauss_shift],
                         ids=["bernoulli_0.1_0.3", "abs_gauss_sd", "abs_gauss_mean"])
def test_adwin_detects_known_change(make: Callable[[int], np.ndarray], seed: int) -> None:
    res = adwin(make(seed))
    d = res.detections
    assert d.size >= 1
    assert CHANGE <= d[0] <= CHANGE + MAX_DELAY, d[:3]
    # the pre-change data is gone: the window is recent
    assert res.width < 5_000 + 1_000


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["bernoulli", "abs_gauss"])
def test_adwin_quiet_on_stationary_stream(kind: str, seed: int) -> None:
    res = adwin(_stationary(kind, seed))
    assert res.detections.tolist() == []
    assert res.width <= 20_000 + 31
    assert res.statistic < 0


def test_adwin_detects_a_decrease() -> None:
    d = adwin(_bernoulli_change(6, p0=0.3, p1=0.1)).detections
    assert d.size and CHANGE <= d[0] <= CHANGE + MAX_DELAY


def test_adwin_state() -> None:
    ad = Adwin()
    assert math.isnan(ad.statistic) and math.isnan(ad.mean) and ad.width == 0
    ad.update(np.full(40, 0.5))
    assert ad.width == 40 and ad.mean == 0.5
    assert math.isnan(ad.statistic)  # one clock: too short for a cut
    ad.update(np.full(24, 0.5))
    assert ad.width == 64 and ad.statistic < 0  # two clocks: one cut checked
    ad.reset()
    assert ad.width == 0 and math.isnan(ad.statistic)


def test_adwin_window_is_capped() -> None:
    ad = Adwin(max_window=1_000, clock=32)
    ad.update(np.random.default_rng(1).random(10_007) < 0.2)
    assert ad.width == (1_000 // 32) * 32 + 10_007 % 32


# --- both ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PageHinkley, Adwin])
def test_empty_and_bool_batches(cls: type[PageHinkley | Adwin]) -> None:
    det = cls()
    out = det.update([])
    assert out.dtype == np.intp and out.shape == (0,)
    assert det.update(np.zeros(0, dtype=bool)).size == 0
    assert det.update(np.array([True, False] * 50)).size == 0


@pytest.mark.parametrize("cls", [PageHinkley, Adwin])
@pytest.mark.parametrize("bad, what", [
    (np.zeros((2, 3)), "1-D"),
    (5.0, "1-D"),
    ([0.1, np.nan], "finite"),
    ([np.inf], "finite"),
    (["a", "b"], "1-D array of finite numbers"),
])
def test_invalid_batches(cls: type[PageHinkley | Adwin], bad: object, what: str) -> None:
    x = np.r_[np.zeros(100), np.ones(100)]
    det, clean = cls(), cls()
    det.update(x[:70])
    clean.update(x[:70])
    with pytest.raises(ValueError, match=f"x must .*{what}"):
        det.update(bad)  # type: ignore[arg-type]
    # the rejected batch left no trace
    found = det.update(x[70:])
    assert found.size == 1
    np.testing.assert_array_equal(found, clean.update(x[70:]))
    np.testing.assert_equal([det.statistic, det.mean], [clean.statistic, clean.mean])


@pytest.mark.parametrize("func", [page_hinkley, adwin])
def test_invalid_stream_in_pure_functions(func: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="x must be finite"):
        func([0.0, math.nan])


@pytest.mark.parametrize("kwargs, name", [
    ({"delta": -0.1}, "delta"),
    ({"delta": math.inf}, "delta"),
    ({"threshold": 0.0}, "threshold"),
    ({"threshold": math.nan}, "threshold"),
    ({"threshold": "50"}, "threshold"),
    ({"min_samples": 0}, "min_samples"),
    ({"min_samples": 2.5}, "min_samples"),
    ({"min_samples": True}, "min_samples"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.5}, "alpha"),
])
def test_page_hinkley_parameter_errors(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must"):
        PageHinkley(**kwargs)
    with pytest.raises(ValueError, match=f"^{name} must"):
        page_hinkley([0.0], **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"delta": 0.0}, "delta"),
    ({"delta": 1.0}, "delta"),
    ({"clock": 0}, "clock"),
    ({"clock": 3.0}, "clock"),
    ({"min_window": 0}, "min_window"),
    ({"max_window": 0}, "max_window"),
    ({"max_window": 63}, "max_window"),                 # < 2 clocks of 32
    ({"max_window": 100, "min_window": 40}, "max_window"),  # needs 2 * 2 clocks
])
def test_adwin_parameter_errors(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must"):
        Adwin(**kwargs)
    with pytest.raises(ValueError, match=f"^{name} must"):
        adwin([0.0], **kwargs)
