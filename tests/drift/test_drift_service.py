"""The scrape-mode drift exporter against real Monitors served over HTTP.

Every test starts real :class:`modelmon.monitor.Monitor` instances (each with
its own registry) behind loopback HTTP servers and drives a real
:class:`DriftScrapeService` through ``evaluate_once()`` with a fake clock. Expected
counts are computed from the raw values the test fed (not from the
exporter's or the Monitor's arrays), and expected scores by applying
``modelmon.stats.drift_scores`` to them. Randomness is seeded.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from modelmon.baseline import Baseline, CategoricalSummary, NumericSummary
from modelmon.catalogue import (
    CATALOGUE,
    DRIFT_METHODS,
    DRIFT_REFERENCES,
    NUMERIC_ONLY_METHODS,
    OTHER,
    by_name,
)
from modelmon.drift import DriftScrapeService, SampleKey, ScoreKey
from modelmon.monitor import Monitor
from modelmon.stats import (DEFAULT_ALPHA, DEFAULT_EFFECT, DEFAULT_METHOD, bucket_counts,
                            drift_scores, holm_levels, null_model)

# --------------------------------------------------------------------------- fixtures


def _baselines() -> list[Baseline]:
    rng = np.random.default_rng(20240611)
    n = 4000
    loans = Baseline.build(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
            "approved": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
            "score": rng.beta(2, 5, n),
        },
        model="loans", model_version="3", features=["age", "income", "region"],
        prediction="approved", probability="score", bins=10)
    churn_p = rng.uniform(0, 1, n)
    churn = Baseline.build(  # with a binary target: the score's calibration is stored
        {"tenure": rng.exponential(12, n), "plan": rng.choice(["basic", "pro"], n),
         "churn_p": churn_p, "churned": (rng.uniform(0, 1, n) < churn_p).astype(int)},
        model="churn", features=["tenure", "plan"], probability="churn_p", target="churned",
        bins=6)
    return [loans, churn]


BASELINES = _baselines()
LOANS, CHURN = BASELINES


class Replica:
    """A real Monitor behind a loopback HTTP server; can restart, fail or talk garbage."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.body = b""
        self.delay = 0.0
        self.restart()
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if replica.delay:
                    time.sleep(replica.delay)
                if replica.mode == "500":
                    code, body = 500, b"internal error\n"
                elif replica.mode == "garbage":
                    code, body = 200, b"<html><body>not metrics</body></html>\n"
                elif replica.mode == "custom":
                    code, body = 200, replica.body
                else:
                    code, body = 200, generate_latest(replica.registry)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def restart(self) -> None:
        """A new process at the same URL: a fresh Monitor, every counter back at 0."""
        self.registry = CollectorRegistry()
        self.monitor = Monitor(BASELINES, registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    made: list[Replica] = []

    class Factory(list):  # type: ignore[type-arg]
        def new(self) -> Replica:
            r = Replica()
            made.append(r)
            return r

    yield Factory()  # type: ignore[misc]
    for r in made:
        r.close()


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def services() -> Iterator[list[DriftScrapeService]]:
    made: list[DriftScrapeService] = []
    yield made
    for s in made:
        s.stop()


def make_service(services: list[DriftScrapeService], urls: list[str], **kw: object) -> DriftScrapeService:
    kw.setdefault("clock", FakeClock())
    kw.setdefault("timeout", 2.0)
    svc = DriftScrapeService(urls, **kw)  # type: ignore[arg-type]
    services.append(svc)
    return svc


# ------------------------------------------------------------------ expected counts

#: (model, kind, name) -> summary; the distributions the exporter scores.
SERIES: dict[tuple[str, str, str], NumericSummary | CategoricalSummary] = {}
for _b in BASELINES:
    for _name, _s in _b.features.items():
        SERIES[(_b.model, "feature", _name)] = _s
    for _name, _s in _b.numeric_outputs.items():
        SERIES[(_b.model, "output", _name)] = _s
    if isinstance(_b.prediction, CategoricalSummary):
        SERIES[(_b.model, "output", "predicted_class")] = _b.prediction
VERSION = {b.model: b.model_version for b in BASELINES}


def reference_counts(key: tuple[str, str, str]) -> np.ndarray:
    s = SERIES[key]
    if key[2] == "predicted_class":
        return s.ratios * 1e6  # no samples gauge for classes: ratio x 1e6
    return np.asarray(s.counts, dtype=np.float64)


def count_values(key: tuple[str, str, str], values: list[object]) -> np.ndarray:
    """Counts per bucket/category of raw values, missing values (None) left out."""
    s = SERIES[key]
    present = [v for v in values if v is not None]
    if isinstance(s, NumericSummary):
        return bucket_counts(s.edges, np.asarray(present, dtype=np.float64)).astype(np.float64)
    index = {c: i for i, c in enumerate(s.categories)}
    out = np.zeros(len(s.labels))
    for v in present:
        out[index.get(str(v), len(s.categories))] += 1
    return out


class Fed:
    """Everything fed to the replicas, per series, as counts from the raw values."""

    def __init__(self) -> None:
        self.counts = {k: np.zeros(len(reference_counts(k))) for k in SERIES}

    def copy(self) -> dict[tuple[str, str, str], np.ndarray]:
        return {k: v.copy() for k, v in self.counts.items()}


def feed(replica: Replica, fed: Fed | None, rng: np.random.Generator, n: int, *,
         shift: float = 0.0, region_p: tuple[float, float, float] = (0.5, 0.3, 0.2),
         income_missing: int = 0, only_high: bool = False) -> None:
    """Feed ``n`` events of each model to ``replica`` and count them in ``fed``."""
    age = rng.normal(40 + 10 * shift, 10, n)
    income: list[object] = list(rng.lognormal(10 + shift, 0.5, n))
    for i in range(min(income_missing, n)):
        income[i] = None
    region = rng.choice(["north", "south", "east"], n, p=list(region_p))
    approved = rng.choice(["yes", "no", "maybe"], n, p=[0.3 + 0.1 * shift, 0.65 - 0.1 * shift,
                                                         0.05])
    score = np.clip(rng.beta(2, 5, n) + 0.1 * shift, 0, 1)
    tenure = rng.exponential(12 * (1 + shift), n)
    plan = rng.choice(["basic", "pro", "enterprise"], n, p=[0.5, 0.45, 0.05])
    churn_p = rng.uniform(0, 1, n) ** (1 + shift)
    if only_high:  # every value in the top bucket / in __other__
        age, tenure = np.full(n, 500.0), np.full(n, 1e6)
        income = [1e12] * n
        score, churn_p = np.full(n, 1.0), np.full(n, 1.0)
        region, plan = np.array(["west"] * n), np.array(["gold"] * n)
        approved = np.array(["maybe"] * n)
    replica.monitor.observe_batch({"age": age, "income": income, "region": region},
                                  predictions=approved, probabilities=score, model="loans")
    replica.monitor.observe_batch({"tenure": tenure, "plan": plan},
                                  probabilities=churn_p, model="churn")
    if fed is None:
        return
    raw = {
        ("loans", "feature", "age"): list(age),
        ("loans", "feature", "income"): income,
        ("loans", "feature", "region"): list(region),
        ("loans", "output", "score"): list(score),
        ("loans", "output", "predicted_class"): list(approved),
        ("churn", "feature", "tenure"): list(tenure),
        ("churn", "feature", "plan"): list(plan),
        ("churn", "output", "churn_p"): list(churn_p),
    }
    assert set(raw) == set(SERIES)
    for k, values in raw.items():
        fed.counts[k] += count_values(k, values)


def diff(a: dict[tuple[str, str, str], np.ndarray],
         b: dict[tuple[str, str, str], np.ndarray]) -> dict[tuple[str, str, str], np.ndarray]:
    return {k: a[k] - b[k] for k in a}


def expected_scores(key: tuple[str, str, str], ref: np.ndarray, cur: np.ndarray
                    ) -> dict[str, float]:
    s = SERIES[key]
    edges = np.asarray(s.edges) if isinstance(s, NumericSummary) else None
    return {m: float(v) for m, v in drift_scores(ref, cur, edges).items()}


def assert_scores(res: object, key: tuple[str, str, str], reference: str,
                  ref: np.ndarray, cur: np.ndarray) -> None:
    model, kind, name = key
    exp = expected_scores(key, ref, cur)
    numeric = isinstance(SERIES[key], NumericSummary)
    expected_methods = [m for m in DRIFT_METHODS if numeric or m not in NUMERIC_ONLY_METHODS]
    assert list(exp) == expected_methods
    for method, want in exp.items():
        sk = ScoreKey(model, VERSION[model], kind, name, method, reference)
        if math.isnan(want):
            assert sk not in res.scores  # type: ignore[attr-defined]
            continue
        got = res.scores[sk]  # type: ignore[attr-defined]
        assert got == pytest.approx(want, rel=1e-7, abs=1e-10), (sk, got, want)


def keys_of(res: object, reference: str) -> set[tuple[str, str, str]]:
    return {(k.model, k.kind, k.name) for k in res.scores  # type: ignore[attr-defined]
            if k.reference == reference}


def samples(res: object, key: tuple[str, str, str], reference: str) -> float | None:
    model, kind, name = key
    return res.samples.get(  # type: ignore[attr-defined]
        SampleKey(model, VERSION[model], kind, name, reference))


# ---------------------------------------------------------------------------- tests


def test_two_replicas_are_summed_and_scores_equal_drift_scores(replicas, services):
    a, b = replicas.new(), replicas.new()
    rng = np.random.default_rng(1)
    feed(a, None, rng, 700, shift=2.0)  # before the first read: never in a window
    clock = FakeClock()
    svc = make_service(services, [a.url, b.url], window=300, interval=15, min_samples=1,
                       clock=clock)
    first = svc.evaluate_once()
    assert first.sources_up == {a.url: True, b.url: True}
    assert not first.scores
    assert all(samples(first, k, "baseline") == 0 for k in SERIES)

    fed = Fed()
    feed(a, fed, rng, 400, shift=0.5, region_p=(0.2, 0.3, 0.5))
    feed(b, fed, rng, 300)
    clock.t += 15
    res = svc.evaluate_once()

    assert res.window_seconds == 15
    assert res.previous_window_seconds is None
    assert keys_of(res, "previous") == set()
    assert keys_of(res, "baseline") == set(SERIES)
    for key in SERIES:
        cur = fed.counts[key]
        assert samples(res, key, "baseline") == cur.sum()
        assert samples(res, key, "previous") is None
        assert_scores(res, key, "baseline", reference_counts(key), cur)
    # 400 + 300 events in the window; the 700 fed before the first read are not in it.
    assert samples(res, ("loans", "feature", "age"), "baseline") == 700
    assert res.scores[ScoreKey("loans", "3", "feature", "region", "psi", "baseline")] > 0.1


def test_counter_reset_keeps_window_counts(replicas, services):
    a, b = replicas.new(), replicas.new()
    rng = np.random.default_rng(2)
    clock = FakeClock()
    svc = make_service(services, [a.url, b.url], window=600, interval=15, min_samples=1,
                       clock=clock)
    fed = Fed()
    svc.evaluate_once()

    feed(a, fed, rng, 600, shift=0.3)
    feed(b, fed, rng, 200)
    clock.t += 15
    svc.evaluate_once()

    # Replica a restarts (same URL, every counter back at 0) and sees fewer events.
    a.restart()
    feed(a, fed, rng, 100, shift=-0.2)
    clock.t += 15
    res = svc.evaluate_once()
    for key in SERIES:
        assert samples(res, key, "baseline") == fed.counts[key].sum()
        assert_scores(res, key, "baseline", reference_counts(key), fed.counts[key])

    # It disappears (500s), restarts meanwhile, and comes back with lower counts.
    a.mode = "500"
    clock.t += 15
    res = svc.evaluate_once()
    assert res.sources_up == {a.url: False, b.url: True}
    a.restart()
    feed(a, fed, rng, 50)
    a.mode = "ok"
    clock.t += 15
    res = svc.evaluate_once()
    assert res.sources_up == {a.url: True, b.url: True}
    for key in SERIES:
        assert samples(res, key, "baseline") == fed.counts[key].sum()

    # A restart after which the total already exceeds the old one while the lower
    # buckets and the other categories are still below: the whole histogram (and the
    # whole category group) restarted, so every bucket counts in full. Resetting
    # bucket by bucket would count +Inf as 2000 - 50 and be off.
    a.restart()
    feed(a, fed, rng, 2000, only_high=True)
    clock.t += 15
    res = svc.evaluate_once()
    for key in SERIES:
        cur = fed.counts[key]
        assert samples(res, key, "baseline") == cur.sum(), key
        assert_scores(res, key, "baseline", reference_counts(key), cur)


def test_counts_of_unknown_age_are_never_put_in_a_window(replicas, services):
    a, b = replicas.new(), replicas.new()
    rng = np.random.default_rng(12)
    clock = FakeClock()
    age = ("loans", "feature", "age")
    svc = make_service(services, [a.url, b.url], window=60, interval=15, min_samples=1,
                       clock=clock)
    b.mode = "500"  # unreachable when the exporter starts, with counts of unknown age
    feed(b, None, rng, 500)
    svc.evaluate_once()
    feed(a, None, rng, 100)
    b.mode = "ok"
    clock.t += 15
    res = svc.evaluate_once()
    assert samples(res, age, "baseline") == 100  # b's first read only sets its start
    feed(b, None, rng, 50)
    clock.t += 15
    res = svc.evaluate_once()
    assert samples(res, age, "baseline") == 150

    # An outage longer than the window: what b counted meanwhile is of unknown age too.
    b.mode = "500"
    feed(b, None, rng, 300)
    for _ in range(6):
        clock.t += 15
        svc.evaluate_once()
    b.mode = "ok"
    clock.t += 15
    res = svc.evaluate_once()  # t = 120 after b's last good read at t = 30
    assert samples(res, age, "baseline") == 0
    feed(b, None, rng, 40)
    clock.t += 15
    res = svc.evaluate_once()
    assert samples(res, age, "baseline") == 40


def test_min_samples_gates_scores_but_window_samples_are_always_exported(replicas, services):
    a = replicas.new()
    rng = np.random.default_rng(3)
    clock = FakeClock()
    svc = make_service(services, [a.url], window=300, interval=15, min_samples=100, clock=clock)
    svc.evaluate_once()
    fed = Fed()
    feed(a, fed, rng, 60)
    clock.t += 15
    res = svc.evaluate_once()
    assert res.scores == {}
    for key in SERIES:
        assert samples(res, key, "baseline") == 60

    # 120 events, but income is missing in 80 of them: income stays below 100.
    feed(a, fed, rng, 60, income_missing=40)
    clock.t += 15
    res = svc.evaluate_once()
    income = ("loans", "feature", "income")
    assert samples(res, income, "baseline") == 80
    assert income not in keys_of(res, "baseline")
    assert keys_of(res, "baseline") == set(SERIES) - {income}
    for key in set(SERIES) - {income}:
        assert samples(res, key, "baseline") == 120
        assert_scores(res, key, "baseline", reference_counts(key), fed.counts[key])

    # The exposition carries window_samples for income even without its scores.
    host, port = svc.serve("127.0.0.1", 0)
    text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
    assert ('modelmon_drift_window_samples{feature="income",model="loans",model_version="3",'
            'reference="baseline"} 80.0') in text
    assert 'feature="income",method=' not in text


def test_previous_window_appears_after_two_windows_of_history(replicas, services):
    a = replicas.new()
    rng = np.random.default_rng(4)
    clock = FakeClock(1_000_000.0)
    t0 = clock.t
    W, step = 60.0, 15.0
    svc = make_service(services, [a.url], window=W, interval=step, min_samples=50, clock=clock)
    fed = Fed()
    history = {0.0: fed.copy()}  # time since t0 -> cumulative counts fed before that read
    svc.evaluate_once()
    for i in range(1, 21):
        n = 10 if i <= 4 else 100  # small batches first: the first previous window is short
        feed(a, fed, rng, n, shift=0.0 if i <= 10 else 1.0)
        clock.t = t0 + i * step
        t = i * step
        history[t] = fed.copy()
        res = svc.evaluate_once()

        start = max(0.0, t - W)
        cur = diff(history[t], history[start])
        assert res.window_seconds == t - start
        for key in SERIES:
            assert samples(res, key, "baseline") == cur[key].sum()
        if t < 2 * W:
            assert res.previous_window_seconds is None
            assert keys_of(res, "previous") == set()
            assert all(samples(res, k, "previous") is None for k in SERIES)
            continue
        assert res.previous_window_seconds == W
        prev = diff(history[t - W], history[t - 2 * W])
        n_prev = prev[("loans", "feature", "age")].sum()
        for key in SERIES:
            assert samples(res, key, "previous") == prev[key].sum()
        if n_prev < 50:  # t == 120: the previous window holds the four batches of 10
            assert t == 2 * W
            assert keys_of(res, "previous") == set()
            assert keys_of(res, "baseline") == set(SERIES)
            continue
        assert keys_of(res, "previous") == set(SERIES)
        for key in SERIES:
            assert_scores(res, key, "previous", prev[key], cur[key])
            assert_scores(res, key, "baseline", reference_counts(key), cur[key])
    # Drift between windows shows up when the distribution changed (after batch 10).
    assert res.scores[ScoreKey("loans", "3", "feature", "age", "psi", "previous")] < 0.1
    # The ring stays bounded: about 2W/interval snapshots, enough to cover 2W.
    assert 2 * W / step + 1 <= svc.snapshots <= 2 * W / step + 4


def test_drift_between_windows_is_detected(replicas, services):
    a = replicas.new()
    rng = np.random.default_rng(5)
    clock = FakeClock()
    svc = make_service(services, [a.url], window=30, interval=15, min_samples=50, clock=clock)
    svc.evaluate_once()
    for i in range(1, 7):
        feed(a, None, rng, 200, shift=0.0 if i <= 4 else 1.5)
        clock.t += 15
        res = svc.evaluate_once()
    # Current window = batches 5-6 (shifted), previous = batches 3-4 (not shifted).
    assert res.scores[ScoreKey("loans", "3", "feature", "age", "psi", "previous")] > 1.0
    assert res.scores[ScoreKey("loans", "3", "feature", "age", "ks_pvalue", "previous")] < 1e-6


def test_failing_sources_are_reported_and_the_service_keeps_working(replicas, services):
    good, broken, garbage, slow = (replicas.new() for _ in range(4))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/metrics"
    rng = np.random.default_rng(6)
    clock = FakeClock()
    urls = [good.url, broken.url, garbage.url, slow.url, dead]
    svc = make_service(services, urls, window=300, interval=15, min_samples=1, clock=clock,
                       timeout=0.3)
    res = svc.evaluate_once()
    assert all(res.sources_up[u] for u in urls[:4]) and not res.sources_up[dead]
    assert res.last_success_timestamp is None

    fed = Fed()
    feed(good, fed, rng, 300)
    feed(garbage, fed, rng, 100)
    broken.mode = "500"
    slow.delay = 1.0
    clock.t += 15
    res = svc.evaluate_once()
    assert res.sources_up == {good.url: True, broken.url: False, garbage.url: True,
                              slow.url: False, dead: False}
    assert "HTTP 500" in res.source_errors[broken.url]
    assert "timeout" in res.source_errors[slow.url]
    for key in SERIES:
        assert samples(res, key, "baseline") == fed.counts[key].sum()

    # garbage starts answering garbage while it keeps counting; when it comes back its
    # counts are compared with the last good read, so nothing is lost or doubled.
    garbage.mode = "garbage"
    feed(garbage, fed, rng, 50)
    clock.t += 15
    res = svc.evaluate_once()
    assert not res.sources_up[garbage.url]
    assert "unparsable" in res.source_errors[garbage.url]
    assert res.evaluations == 3
    assert res.timestamp == clock.t
    assert res.last_success_timestamp is None
    garbage.mode = "custom"
    garbage.body = b'modelmon_feature_value_bucket{model="loans",le="x"} 1\nbad line {\n'
    clock.t += 15
    res = svc.evaluate_once()
    assert not res.sources_up[garbage.url]

    garbage.mode = broken.mode = "ok"
    slow.delay = 0.0
    clock.t += 15
    res = svc.evaluate_once()
    assert res.sources_up == {u: u != dead for u in urls}
    for key in SERIES:
        assert samples(res, key, "baseline") == fed.counts[key].sum()
        assert_scores(res, key, "baseline", reference_counts(key), fed.counts[key])

    host, port = svc.serve("127.0.0.1", 0)
    fams = {f.name: f for f in text_string_to_metric_families(
        requests.get(f"http://{host}:{port}/metrics", timeout=5).text)}
    up = {s.labels["source"]: s.value for s in fams["modelmon_drift_source_up"].samples}
    assert up == {u: (0.0 if u == dead else 1.0) for u in urls}
    assert "modelmon_drift_last_success_timestamp_seconds" not in fams  # dead never answered
    assert fams["modelmon_drift_evaluation_timestamp_seconds"].samples[0].value == clock.t


def test_last_success_timestamp_follows_complete_evaluations(replicas, services):
    a, b = replicas.new(), replicas.new()
    clock = FakeClock(5000.0)
    svc = make_service(services, [a.url, b.url], window=60, interval=15, clock=clock)
    assert svc.evaluate_once().last_success_timestamp == 5000.0
    b.mode = "500"
    clock.t = 5015.0
    res = svc.evaluate_once()
    assert (res.timestamp, res.last_success_timestamp) == (5015.0, 5000.0)
    b.mode = "ok"
    clock.t = 5030.0
    assert svc.evaluate_once().last_success_timestamp == 5030.0


def test_baseline_mismatch_skips_the_series_and_logs_once(replicas, services, caplog):
    a = replicas.new()
    a.mode = "custom"
    mv = 'model="m",model_version="1"'

    def body(x1: int, x2: int, x3: int, y1: int, y2: int) -> bytes:
        return "\n".join([
            f'modelmon_feature_value_bucket{{{mv},feature="x",le="1.0"}} {x1}',
            f'modelmon_feature_value_bucket{{{mv},feature="x",le="2.0"}} {x2}',
            f'modelmon_feature_value_bucket{{{mv},feature="x",le="+Inf"}} {x3}',
            f'modelmon_feature_value_bucket{{{mv},feature="y",le="1.0"}} {y1}',
            f'modelmon_feature_value_bucket{{{mv},feature="y",le="+Inf"}} {y2}',
            f'modelmon_baseline_bucket_ratio{{{mv},feature="x",le="1.0"}} 0.5',
            f'modelmon_baseline_bucket_ratio{{{mv},feature="x",le="2.5"}} 0.75',
            f'modelmon_baseline_bucket_ratio{{{mv},feature="x",le="+Inf"}} 1.0',
            f'modelmon_baseline_bucket_ratio{{{mv},feature="y",le="1.0"}} 0.25',
            f'modelmon_baseline_bucket_ratio{{{mv},feature="y",le="+Inf"}} 1.0',
            f'modelmon_baseline_samples{{{mv},feature="y"}} 1000',
            "",
        ]).encode()

    a.body = body(0, 0, 0, 0, 0)
    clock = FakeClock()
    svc = make_service(services, [a.url], window=60, interval=15, min_samples=1, clock=clock)
    caplog.set_level(logging.WARNING, logger="modelmon.drift")
    svc.evaluate_once()
    for i in range(1, 4):
        a.body = body(10 * i, 20 * i, 40 * i, 30 * i, 40 * i)
        clock.t += 15
        res = svc.evaluate_once()
    # x: live le {1, 2, +Inf} vs baseline {1, 2.5, +Inf}: skipped; y is scored.
    assert {k.name for k in res.scores} == {"y"}
    assert res.samples[SampleKey("m", "1", "feature", "y", "baseline")] == 120
    want = drift_scores([250.0, 750.0], [90.0, 30.0], [1.0])
    for method, v in want.items():
        assert res.scores[ScoreKey("m", "1", "feature", "y", method, "baseline")] == \
            pytest.approx(float(v), rel=1e-9)
    skipped = [r for r in caplog.records if "series_skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert "baseline_mismatch" in skipped[0].getMessage()
    assert "'x'" in skipped[0].getMessage()


def test_exposition_matches_the_catalogue(replicas, services):
    a = replicas.new()
    rng = np.random.default_rng(7)
    clock = FakeClock()
    svc = make_service(services, [a.url], window=30, interval=15, min_samples=10, clock=clock)
    for _ in range(5):  # enough history for previous-window scores
        feed(a, None, rng, 100)
        svc.evaluate_once()
        clock.t += 15
    host, port = svc.serve("127.0.0.1", 0)
    base = f"http://{host}:{port}"
    r = requests.get(base + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")

    drift_specs = {s.name: s for s in CATALOGUE if s.component == "drift"}
    seen: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(r.text):
        spec = next((s for s in drift_specs.values() if s.family_name == fam.name), None)
        assert spec is not None, f"family {fam.name} is not a drift metric of the catalogue"
        assert fam.type == spec.type
        assert fam.documentation == spec.help
        for s in fam.samples:
            extra = {"le"} if s.name.endswith("_bucket") else set()
            assert set(s.labels) == set(spec.labels) | extra, (s.name, s.labels)
            seen.setdefault(spec.name, set()).add(s.name)
    assert set(seen) == set(drift_specs)
    # the churn model's performance, estimated from its live score window and calibration
    est = svc.latest.estimates[("churn", "1")]
    assert set(est) == {"accuracy", "precision", "recall", "f1"}
    assert all(0 <= v <= 1 for v in est.values())
    assert ("loans", "3") not in svc.latest.estimates  # no target: no calibration
    assert seen["modelmon_drift_evaluation_duration_seconds"] == {
        "modelmon_drift_evaluation_duration_seconds" + x for x in ("_bucket", "_count", "_sum")}
    assert seen["modelmon_drift_evaluations_total"] == {"modelmon_drift_evaluations_total"}

    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    scores = fams["modelmon_drift_score"].samples + fams["modelmon_prediction_drift_score"].samples
    assert {s.labels["reference"] for s in scores} == set(DRIFT_REFERENCES)
    assert {s.labels["method"] for s in scores} == set(DRIFT_METHODS)
    by_series: dict[tuple[str, str, str], set[str]] = {}
    for s in scores:
        name = s.labels.get("feature") or s.labels["output"]
        by_series.setdefault((s.labels["model"], name, s.labels["reference"]), set()).add(
            s.labels["method"])
    for (model, kind, name), summary in SERIES.items():
        numeric = isinstance(summary, NumericSummary)
        want = {m for m in DRIFT_METHODS if numeric or m not in NUMERIC_ONLY_METHODS}
        for reference in DRIFT_REFERENCES:
            assert by_series[(model, name, reference)] == want
    outputs = {s.labels["output"] for s in fams["modelmon_prediction_drift_score"].samples}
    assert outputs == {"score", "predicted_class", "churn_p"}
    window = {(s.labels["feature"], s.labels["reference"])
              for s in fams["modelmon_drift_window_samples"].samples}
    assert window == {(k[2], ref) for k in SERIES for ref in DRIFT_REFERENCES}
    assert fams["modelmon_drift_evaluations"].samples[0].value == 5

    # OpenMetrics when asked for, gzip when accepted.
    om = requests.get(base + "/metrics", timeout=5,
                      headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    om_names = {f.name for f in openmetrics_families(om.text)}
    assert {s.family_name for s in drift_specs.values()} == om_names
    gz = requests.get(base + "/metrics", timeout=5, headers={"Accept-Encoding": "gzip"},
                      stream=True)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.raw.read()).decode() == requests.get(
        base + "/metrics", timeout=5, headers={"Accept-Encoding": "identity"}).text


def test_ready_healthy_and_unknown_paths(replicas, services):
    a = replicas.new()
    svc = make_service(services, [a.url], window=60, interval=15)
    host, port = svc.serve("127.0.0.1", 0)
    base = f"http://{host}:{port}"
    assert requests.get(base + "/-/ready", timeout=5).status_code == 503
    assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
    before = requests.get(base + "/metrics", timeout=5).text
    assert "modelmon_drift_evaluations_total 0.0" in before
    assert "modelmon_drift_score" not in before
    nf = requests.get(base + "/nope", timeout=5)
    assert nf.status_code == 404
    assert nf.headers["Content-Type"] == "application/json"
    assert nf.json()["error"] == "not found"
    assert requests.post(base + "/metrics", timeout=5, data=b"x").status_code == 405
    svc.evaluate_once()
    assert requests.get(base + "/-/ready", timeout=5).status_code == 200
    assert requests.get(base + "/-/healthy", timeout=5).status_code == 200


def test_promtool_check_metrics_passes(replicas, services):
    promtool = shutil.which("promtool") or ("/usr/bin/promtool"
                                            if os.path.exists("/usr/bin/promtool") else None)
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI but was not found on PATH or /usr/bin")
        pytest.skip("PROMTOOL NOT FOUND: the exposition is NOT linted; install promtool "
                    "(Prometheus) to run this check")
    a, b = replicas.new(), replicas.new()
    b.mode = "500"
    rng = np.random.default_rng(8)
    clock = FakeClock()
    svc = make_service(services, [a.url, b.url], window=30, interval=15, min_samples=10,
                       clock=clock)
    for _ in range(5):
        feed(a, None, rng, 100)
        svc.evaluate_once()
        clock.t += 15
    host, port = svc.serve("127.0.0.1", 0)
    text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
    assert "modelmon_prediction_drift_score" in text and 'reference="previous"' in text
    out = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=30)
    assert out.returncode == 0, (out.stdout + out.stderr).decode()


def test_results_are_immutable_and_swapped_whole(replicas, services):
    a = replicas.new()
    rng = np.random.default_rng(9)
    clock = FakeClock()
    svc = make_service(services, [a.url], window=60, interval=15, min_samples=1, clock=clock)
    svc.evaluate_once()
    feed(a, None, rng, 100)
    clock.t += 15
    first = svc.evaluate_once()
    kept = dict(first.scores)
    feed(a, None, rng, 100, shift=2.0)
    clock.t += 15
    second = svc.evaluate_once()
    assert svc.latest is second and second is not first
    assert dict(first.scores) == kept  # the old object is untouched
    with pytest.raises(TypeError):
        first.scores[next(iter(first.scores))] = 0.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        first.timestamp = 0.0  # type: ignore[misc]
    assert second.score("loans", "age", "psi") == second.scores[
        ScoreKey("loans", "3", "feature", "age", "psi", "baseline")]
    assert second.score("loans", "predicted_class", "psi", kind="output") is not None
    assert second.score("loans", "age", "psi", reference="previous") is None


def test_background_loop_runs_and_stops(replicas, services):
    a = replicas.new()
    svc = make_service(services, [a.url], window=1, interval=0.05, clock=time.time)
    svc.start()
    deadline = time.monotonic() + 10
    while (svc.latest is None or svc.latest.evaluations < 3) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert svc.latest is not None and svc.latest.evaluations >= 3
    svc.stop()
    n = svc.latest.evaluations
    time.sleep(0.2)
    assert svc.latest.evaluations == n
    assert not any(t.name == "modelmon-drift" for t in threading.enumerate())


def test_constructor_rejects_bad_settings():
    with pytest.raises(ValueError, match="at least one"):
        DriftScrapeService([])
    with pytest.raises(ValueError, match="more than once"):
        DriftScrapeService(["http://a/metrics", "http://a/metrics"])
    with pytest.raises(ValueError, match="not an http"):
        DriftScrapeService(["ftp://a/metrics"])
    with pytest.raises(ValueError, match="window"):
        DriftScrapeService(["http://a/metrics"], window=0)
    with pytest.raises(ValueError, match="min_samples"):
        DriftScrapeService(["http://a/metrics"], min_samples=-1)


def test_catalogue_labels_used_by_the_parser():
    # The exporter reads these label names from the Monitor's families.
    assert by_name("modelmon_feature_value").labels[-1] == "feature"
    assert by_name("modelmon_prediction_value").labels[-1] == "output"
    assert by_name("modelmon_feature_category_total").labels[-2:] == ("feature", "category")
    assert by_name("modelmon_predicted_class_total").labels[-1] == "class"
    assert by_name("modelmon_baseline_bucket_ratio").labels[-2:] == ("feature", "le")
    assert OTHER == "__other__"


def expected_verdicts(family: list[tuple[tuple[str, str, str], np.ndarray, np.ndarray,
                                         float | None]]) -> dict[tuple[str, str, str], tuple]:
    """``key -> (drifted, threshold, method)`` of one model against one reference, from
    modelmon.stats alone. Items: (key, reference counts, current counts, previous size or
    None against the baseline)."""
    rows = []
    for key, ref, cur, n_prev in family:
        s = SERIES[key]
        edges = np.asarray(s.edges) if isinstance(s, NumericSummary) else None
        method = DEFAULT_METHOD["numeric" if edges is not None else "categorical"]
        score = float(drift_scores(ref, cur, edges)[method])
        null = null_model(method, reference_counts(key), cur.sum(), edges=edges,
                          n_reference=n_prev)
        rows.append((key, method, score, null, float(null.pvalue(score)[0])))
    levels, rejected = holm_levels([r[4] for r in rows], [0] * len(rows), DEFAULT_ALPHA)
    out = {}
    for (key, method, score, null, _), level, rej in zip(rows, levels, rejected):
        floor = DEFAULT_EFFECT[method]
        out[key] = (bool(rej and score > floor), max(floor, float(null.threshold(level)[0])),
                    method)
    return out


def test_verdicts_equal_stats_on_the_fed_counts_for_both_references(replicas, services):
    a, b = replicas.new(), replicas.new()
    rng = np.random.default_rng(15)
    clock = FakeClock()
    svc = make_service(services, [a.url, b.url], window=30, interval=15, min_samples=100,
                       clock=clock)
    fed = Fed()
    history = [fed.copy()]
    svc.evaluate_once()
    for i in range(4):  # two windows: the second one shifted on replica a only
        feed(a, fed, rng, 150, shift=0.0 if i < 2 else 0.6)
        feed(b, fed, rng, 150)
        clock.t += 15
        history.append(fed.copy())
        res = svc.evaluate_once()
    cur, prev = diff(history[4], history[2]), diff(history[2], history[0])
    checked = drifted = 0
    for reference in ("baseline", "previous"):
        verdicts = res.verdicts(reference)
        for model in ("loans", "churn"):
            family = [(k, reference_counts(k) if reference == "baseline" else prev[k], cur[k],
                       None if reference == "baseline" else prev[k].sum())
                      for k in SERIES if k[0] == model]
            for key, (d, threshold, method) in expected_verdicts(family).items():
                got = verdicts[(model, VERSION[model], key[1], key[2])]
                assert (got.drifted, got.method) == (d, method), (reference, key)
                assert got.threshold == pytest.approx(threshold, rel=1e-9), (reference, key)
                checked += 1
                drifted += d
    assert checked == 2 * len(SERIES)
    assert res.verdict("loans", "age").drifted and res.verdict("loans", "age",
                                                               reference="previous").drifted
    assert not res.verdict("loans", "region").drifted  # fed as in training
    assert drifted >= 2
