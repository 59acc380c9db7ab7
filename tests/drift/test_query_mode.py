"""Query mode against real stores: sidecars as replicas, a real Prometheus or VictoriaMetrics.

Every test runs on both stores (parametrised). The sidecars are real
:class:`~modelmon.sidecar.server.SidecarServer` instances fed seeded streams;
the store scrapes them every second; :class:`DriftQueryService` queries the
store at a chosen evaluation time ``t``.

How the expected values are exact although ``increase()`` extrapolates:

* every replica gets a *pre-warm* batch, which the store has scraped before the
  window starts, then the *main* batch inside the window. The window's first
  sample of each replica then holds the pre-warm counts, its last the
  pre-warm plus the main counts.
* VictoriaMetrics' ``increase()`` does not extrapolate: it returns the main
  counts exactly.
* Prometheus' ``increase()`` extrapolates each series to the window edges by
  a factor ``W / (last - first)`` that depends only on the sample timestamps
  (the pre-warm keeps every bucket away from zero, so the "extrapolate to zero"
  limit never applies). All buckets of one replica share their scrape
  timestamps, so each replica's counts are scaled by one factor ``f_r``; with
  scrapes on a 1 s grid, that is ``W / (W - 1)`` for every replica, up to the
  few milliseconds by which Prometheus may stamp a scrape off the grid.

So the tests check (1) that each replica's counts read back from the store are
``f_r`` times the known counts, (2) every score against
``modelmon.stats.drift_scores`` applied to ``sum_r f_r * known_r`` (exact to
float tolerance, count-dependent p-values included), (3) the proportion-based
scores against the known summed counts themselves when the replicas' factors
are equal, (4) every score against
``drift_scores`` of the counts read back with the same ``sum by (...)
(increase(...))`` query.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from modelmon.baseline import Baseline, CategoricalSummary, NumericSummary
from modelmon.catalogue import DRIFT_METHODS, DRIFT_QUERY_ERROR_REASONS, DRIFT_SKIP_REASONS, OTHER
from modelmon.drift import DriftQueryService, ModelSettings, ScoreKey
from modelmon.catalogue import le_labels
from modelmon.stats import (DEFAULT_ALPHA, DEFAULT_EFFECT, DEFAULT_METHOD, bucket_counts,
                            drift_scores, holm_levels, null_model)

from tests.conftest import Prometheus, VictoriaMetrics
from tests.support import require_binary, wait_until
from tests.sidecar.conftest import PURPOSES, Live, start_sidecar

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORES = ["prometheus", "victoria-metrics"]
#: The window of the fleet scenario, in seconds.
W = 20
#: Methods that depend on proportions only (not on the sample sizes).
PROPORTION_METHODS = ("psi", "jensen_shannon", "hellinger", "ks", "wasserstein_normed")
COUNT_METHODS = ("ks_pvalue", "chi2_pvalue")
PREWARM = 400
MAIN = 300


# --------------------------------------------------------------------------- stores


def make_store(kind: str, workdir: Path, targets: list[str]) -> Any:
    if kind == "prometheus":
        return Prometheus(require_binary("prometheus"), workdir, targets)
    return VictoriaMetrics(require_binary("victoria-metrics"), workdir, targets)


def query_at(store: Any, expr: str, t: float) -> list[dict[str, Any]]:
    """An instant query at time ``t``, straight to the store's API."""
    r = requests.post(f"{store.url}/api/v1/query", data={"query": expr, "time": f"{t:.3f}"},
                      timeout=10)
    doc = r.json()
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def target(lv: Live) -> str:
    host, port = lv.server.address
    return f"{host}:{port}"


def more_samples(store: Any, series: str, k: int) -> None:
    """Wait until the store holds ``k`` more samples of every series of ``series`` than
    now: a sentinel (counted scrapes), not a sleep."""
    def samples() -> float:
        res = store.query(f"min(count_over_time({series}[10m]))")
        return float(res[0]["value"][1]) if res else 0.0

    start = samples()
    wait_until(lambda: samples() >= start + k, f"{k} more samples of {series}", 30)


# ------------------------------------------------------------------------ baselines


def loan_baseline(version: str, bins: int, seed: int) -> Baseline:
    rng = np.random.default_rng(seed)
    n = 4000
    return Baseline.build(
        {"age": rng.normal(40, 10, n).round(1), "income": rng.lognormal(10, 0.5, n).round(2),
         "purpose": rng.choice(PURPOSES, n).tolist(),
         "approved": rng.choice(["yes", "no"], n).tolist(), "p_yes": rng.random(n).round(4)},
        model="loan", model_version=version, prediction="approved", probability=["p_yes"],
        categorical=["purpose"], bins=bins)


def churn_baseline() -> Baseline:
    rng = np.random.default_rng(99)
    n = 3000
    return Baseline.build({"tenure": rng.exponential(12, n), "plan": rng.choice(["basic", "pro"], n)},
                          model="churn", model_version="1", categorical=["plan"], bins=5)


LOAN3 = loan_baseline("3", bins=10, seed=7)
LOAN4 = loan_baseline("4", bins=6, seed=8)  # the rolling deploy: other bucket edges
CHURN = churn_baseline()


def series_of(b: Baseline) -> dict[tuple[str, str], NumericSummary | CategoricalSummary]:
    """``(kind, name) -> summary`` of every distribution the exporter scores."""
    out: dict[tuple[str, str], NumericSummary | CategoricalSummary] = {}
    for name, s in b.features.items():
        out[("feature", name)] = s
    for name, s in b.numeric_outputs.items():
        out[("output", name)] = s
    if isinstance(b.prediction, CategoricalSummary):
        out[("output", "predicted_class")] = b.prediction
    return out


def reference(b: Baseline, kind: str, name: str) -> np.ndarray:
    s = series_of(b)[(kind, name)]
    if name == "predicted_class":
        return np.asarray(s.ratios) * 1e6  # no samples gauge for classes: ratio x 1e6
    return np.asarray(s.counts, dtype=np.float64)


def edges_of(b: Baseline, kind: str, name: str) -> np.ndarray | None:
    s = series_of(b)[(kind, name)]
    return np.asarray(s.edges) if isinstance(s, NumericSummary) else None


# --------------------------------------------------------------------------- streams


def loan_events(rng: np.random.Generator, n: int, age_shift: float = 0.0,
                income_scale: float = 1.0) -> list[dict[str, Any]]:
    ages = rng.normal(40 + age_shift, 10, n).round(1)
    incomes = (rng.lognormal(10, 0.5, n) * income_scale).round(2)
    purposes = rng.choice(PURPOSES, n)
    approved = rng.choice(["yes", "no"], n)
    p = rng.random(n).round(4)
    return [{"features": {"age": float(a), "income": float(i), "purpose": str(u)},
             "prediction": str(c), "probabilities": {"p_yes": float(q)}}
            for a, i, u, c, q in zip(ages, incomes, purposes, approved, p)]


def churn_events(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    return [{"features": {"tenure": float(t), "plan": str(p)}}
            for t, p in zip(rng.exponential(14, n), rng.choice(["basic", "pro"], n, p=[.6, .4]))]


def known_counts(b: Baseline, events: list[dict[str, Any]]) -> dict[tuple[str, str], np.ndarray]:
    """Counts per bucket of the posted events, from the raw values (not from any exporter)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for (kind, name), s in series_of(b).items():
        if name == "predicted_class":
            values = [e["prediction"] for e in events]
        elif kind == "output":
            values = [e["probabilities"][name] for e in events]
        else:
            values = [e["features"][name] for e in events]
        if isinstance(s, NumericSummary):
            out[(kind, name)] = bucket_counts(s.edges, np.asarray(values, dtype=np.float64)
                                              ).astype(np.float64)
        else:
            index = {c: i for i, c in enumerate(s.labels)}
            c = np.zeros(len(s.labels))
            for v in values:
                c[index.get(str(v), index[OTHER])] += 1
            out[(kind, name)] = c
    return out


def post(lv: Live, model: str, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 500):
        chunk = events[i:i + 500]
        r = lv.post(model, json.dumps({"events": chunk}).encode())
        assert r.status_code == 200 and r.json()["accepted"] == len(chunk), r.text


# --------------------------------------------------------- reading counts back


def _family_query(b: Baseline, kind: str, name: str, window: float, by: str,
                  offset: bool = False) -> tuple[str, str]:
    """(PromQL, bucket label) of one series' counts, written out here (not taken from modelmon)."""
    sel = f'model="{b.model}",model_version="{b.model_version}"'
    w = f"{window:g}s"
    rng = f"[{w}]" + (f" offset {w}" if offset else "")
    if name == "predicted_class":
        return f"sum by ({by}class) (increase(modelmon_predicted_class_total{{{sel}}}{rng}))", "class"
    if kind == "output":
        return (f"sum by ({by}le) (increase(modelmon_prediction_value_bucket"
                f"{{{sel},output=\"{name}\"}}{rng}))", "le")
    if isinstance(series_of(b)[(kind, name)], NumericSummary):
        return (f"sum by ({by}le) (increase(modelmon_feature_value_bucket"
                f"{{{sel},feature=\"{name}\"}}{rng}))", "le")
    return (f"sum by ({by}category) (increase(modelmon_feature_category_total"
            f"{{{sel},feature=\"{name}\"}}{rng}))", "category")


def read_back(store: Any, b: Baseline, kind: str, name: str, t: float, window: float,
              offset: bool = False) -> np.ndarray:
    """Per-bucket counts of one series summed over replicas, as the store's ``increase()`` gives them."""
    expr, label = _family_query(b, kind, name, window, "", offset)
    got = {s["metric"][label]: float(s["value"][1]) for s in query_at(store, expr, t)}
    s = series_of(b)[(kind, name)]
    if isinstance(s, NumericSummary):
        cum = np.array([got.get(le, 0.0) for le in le_labels(s.edges)])
        return np.diff(cum, prepend=0.0)
    return np.array([got.get(c, 0.0) for c in s.labels])


def read_back_per_instance(store: Any, b: Baseline, kind: str, name: str, t: float,
                           window: float) -> dict[str, np.ndarray]:
    expr, label = _family_query(b, kind, name, window, "instance, ")
    by_inst: dict[str, dict[str, float]] = {}
    for s in query_at(store, expr, t):
        by_inst.setdefault(s["metric"]["instance"], {})[s["metric"][label]] = float(s["value"][1])
    s = series_of(b)[(kind, name)]
    out = {}
    for inst, got in by_inst.items():
        if isinstance(s, NumericSummary):
            out[inst] = np.diff(np.array([got[le] for le in le_labels(s.edges)]), prepend=0.0)
        else:
            out[inst] = np.array([got.get(c, 0.0) for c in s.labels])
    return out


def assert_score(got: float | None, want: float, what: str, rel: float = 1e-9) -> None:
    assert got is not None, f"{what}: not exported"
    if math.isnan(want):
        raise AssertionError(f"{what}: expected value is NaN")
    assert got == pytest.approx(want, rel=rel, abs=1e-12), what


# -------------------------------------------------------------------- the fleet


class Fleet:
    """Four sidecars scraped by one store, fed a pre-warm then a main batch; ``t`` ends the window.

    * ``r0``, ``r1``, ``r2`` serve loan version 3 (``r2`` with ``age`` shifted
      by +1.5 sd); ``r0`` also serves churn version 1;
    * ``r3`` serves loan version 4, whose baseline has other bucket edges
      (a rolling deploy in progress), with ``income`` scaled by 1.6.
    """

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.sidecars = [start_sidecar([LOAN3, CHURN]), start_sidecar([LOAN3]),
                         start_sidecar([LOAN3]), start_sidecar([LOAN4])]
        self.store = None
        try:
            self._run(workdir)
        except BaseException:
            self.close()
            raise

    def _run(self, workdir: Path) -> None:
        lv = self.sidecars
        self.store = store = make_store(self.kind, workdir, [target(s) for s in lv])
        # 1. every replica scraped at zero: the pre-warm then falls into the previous window
        store.wait_for("count(modelmon_predictions_total == 0)",
                       lambda r: r and float(r[0]["value"][1]) == 5, timeout=60)
        rng = np.random.default_rng(20240611)
        plans: list[list[tuple[Baseline, dict[str, Any]]]] = [
            [(LOAN3, {}), (CHURN, {})], [(LOAN3, {})], [(LOAN3, {"age_shift": 15.0})],
            [(LOAN4, {"income_scale": 1.6})]]
        self.prewarm: dict[tuple[int, str, str], dict[tuple[str, str], np.ndarray]] = {}
        self.main: dict[tuple[int, str, str], dict[tuple[str, str], np.ndarray]] = {}
        for i, plan in enumerate(plans):
            for b, _ in plan:
                evs = (loan_events(rng, PREWARM) if b.model == "loan"
                       else churn_events(rng, PREWARM))
                post(lv[i], b.model, evs)
                self.prewarm[(i, b.model, b.model_version)] = known_counts(b, evs)
        total = PREWARM * 5
        store.wait_for("sum(modelmon_predictions_total)",
                       lambda r: r and float(r[0]["value"][1]) == total, timeout=60)
        # 2. the window starts now (on a whole second, so HA exporters can align to it)
        start = float(math.ceil(time.time()))
        while time.time() < start + 1.5:  # every replica's first sample in the window: pre-warm only
            time.sleep(0.05)
        for i, plan in enumerate(plans):
            for b, kw in plan:
                evs = (loan_events(rng, MAIN, **kw) if b.model == "loan"
                       else churn_events(rng, MAIN))
                post(lv[i], b.model, evs)
                self.main[(i, b.model, b.model_version)] = known_counts(b, evs)
        posted = time.time()
        assert posted < start + W - 2.5, "posting took too long for the window; machine too slow"
        self.t = start + W
        # 3. wait until the store answers for t, and answers the same twice
        total += MAIN * 5
        while time.time() < self.t + 2.5:
            time.sleep(0.1)
        store.wait_for("sum(modelmon_predictions_total)",
                       lambda r: r and float(r[0]["value"][1]) == total, timeout=60)
        probe = f"sum(increase(modelmon_predictions_total[{W}s]))"
        last = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = query_at(store, probe, self.t)
            if now and now == last:
                break
            last = now
            time.sleep(0.7)

    def service(self, **kw: Any) -> DriftQueryService:
        kw.setdefault("window", W)
        kw.setdefault("interval", 1)
        kw.setdefault("min_samples", 100)
        return DriftQueryService(self.store.url, **kw)

    def known(self, b: Baseline, replicas: list[int]) -> dict[tuple[str, str], np.ndarray]:
        out = {k: np.zeros_like(v) for k, v in self.main[(replicas[0], b.model,
                                                           b.model_version)].items()}
        for i in replicas:
            for k, v in self.main[(i, b.model, b.model_version)].items():
                out[k] += v
        return out

    def close(self) -> None:
        if self.store is not None:
            self.store.stop()
        for s in self.sidecars:
            s.http.close()
            s.server.stop()


@pytest.fixture(scope="module", params=STORES)
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(request.param, tmp_path_factory.mktemp(f"fleet-{request.param}"))
    yield f
    f.close()


def check_version(fleet: Fleet, svc_scores: dict[ScoreKey, float], b: Baseline,
                  replicas: list[int]) -> None:
    """Every score of one model version against the known and the read-back counts."""
    t = fleet.t
    instances = {target(fleet.sidecars[i]): i for i in replicas}
    known = fleet.known(b, replicas)
    for (kind, name) in series_of(b):
        what = f"{b.model} v{b.model_version} {kind} {name}"
        # (1) per replica: the store's counts are one factor times the known counts
        per = read_back_per_instance(fleet.store, b, kind, name, t, W)
        assert set(per) == set(instances), what
        expected = np.zeros_like(known[(kind, name)])
        factors = []
        for inst, counts in per.items():
            mine = fleet.main[(instances[inst], b.model, b.model_version)][(kind, name)]
            f = counts.sum() / mine.sum()
            factors.append(f)
            np.testing.assert_allclose(counts, f * mine, rtol=1e-9, atol=1e-9, err_msg=what)
            expected += f * mine
        if fleet.kind == "victoria-metrics":
            assert factors == pytest.approx([1.0] * len(factors), rel=1e-12), what
        else:
            # W / (last - first): W / (W - 1) on the 1 s scrape grid, but Prometheus
            # stamps a scrape up to a few ms off the grid (2.42 aligns only within
            # 2 ms), so the replicas' factors agree to about 1e-4, not exactly
            assert factors == pytest.approx([W / (W - 1)] * len(factors), rel=1e-2), \
                (what, factors)
        same_factor = max(factors) / min(factors) - 1 <= 1e-9
        ref = reference(b, kind, name)
        edges = edges_of(b, kind, name)
        want = drift_scores(ref, expected, edges)
        from_known = drift_scores(ref, known[(kind, name)], edges)
        # (4) the same sum by (...) (increase(...)) query, read back
        summed = read_back(fleet.store, b, kind, name, t, W)
        np.testing.assert_allclose(summed, expected, rtol=1e-9, atol=1e-9, err_msg=what)
        from_store = drift_scores(ref, summed, edges)
        for method in want:
            key = ScoreKey(b.model, b.model_version, kind, name, method, "baseline")
            got = svc_scores.get(key)
            assert_score(got, float(want[method]), f"{what} {method} vs f_r * known")
            assert_score(got, float(from_store[method]), f"{what} {method} vs read back")
            if method in PROPORTION_METHODS and same_factor:
                # (3) scale-free: the known counts themselves (when every replica has
                # the same factor, the weighted sum is the known sum scaled)
                assert_score(got, float(from_known[method]), f"{what} {method} vs known")
        assert {k.method for k in svc_scores if k[:4] == (b.model, b.model_version, kind, name)
                and k.reference == "baseline"} == set(want)


# ------------------------------------------------------------------------- tests


def test_fleet_scores_equal_stats_on_the_summed_counts(fleet: Fleet) -> None:
    svc = fleet.service()
    res = svc.evaluate_once(at=fleet.t)
    assert res.sources_up == {fleet.store.url: True}
    assert res.last_success_timestamp is not None
    assert dict(res.skipped) == {}
    check_version(fleet, dict(res.scores), LOAN3, [0, 1, 2])
    # the shifted replica makes age drift, and only age among the features
    psi = {name: res.score("loan", name, "psi", model_version="3")
           for name in ("age", "income", "purpose")}
    assert psi["age"] > 0.1 > psi["income"] and psi["purpose"] < 0.1
    # sample gauges: the current window's count as the store gives it
    for (kind, name) in series_of(LOAN3):
        got = res.samples[("loan", "3", kind, name, "baseline")]
        assert got == pytest.approx(read_back(fleet.store, LOAN3, kind, name, fleet.t, W).sum(),
                                    rel=1e-12)


def test_previous_window_scores_equal_stats_on_the_read_back_windows(fleet: Fleet) -> None:
    res = fleet.service().evaluate_once(at=fleet.t)
    checked = 0
    for (kind, name) in series_of(LOAN3):
        cur = read_back(fleet.store, LOAN3, kind, name, fleet.t, W)
        prev = read_back(fleet.store, LOAN3, kind, name, fleet.t, W, offset=True)
        assert res.samples[("loan", "3", kind, name, "previous")] == pytest.approx(prev.sum(),
                                                                                   rel=1e-12)
        assert prev.sum() >= 100  # the pre-warm, posted after the first scrapes
        want = drift_scores(prev, cur, edges_of(LOAN3, kind, name))
        for method, v in want.items():
            got = res.score("loan", name, method, reference="previous", kind=kind,
                            model_version="3")
            assert_score(got, float(v), f"{kind} {name} {method} previous")
            checked += 1
    assert checked >= 20


def test_rolling_deploy_versions_are_scored_separately_against_their_own_baselines(
        fleet: Fleet) -> None:
    res = fleet.service().evaluate_once(at=fleet.t)
    assert {(k.model, k.model_version) for k in res.scores} == {("loan", "3"), ("loan", "4"),
                                                                 ("churn", "1")}
    assert dict(res.skipped) == {}
    check_version(fleet, dict(res.scores), LOAN4, [3])
    assert res.info["models"] == {("churn", "1"): (CHURN.id,), ("loan", "3"): (LOAN3.id,),
                                  ("loan", "4"): (LOAN4.id,)}
    # version 4 scaled income, version 3 did not: never mixed
    assert res.score("loan", "income", "psi", model_version="4") > 0.1
    assert res.score("loan", "income", "psi", model_version="3") < 0.1
    # the windows keep each version's own buckets
    win = fleet.service().source.evaluate(fleet.t).windows[float(W)]
    for b in (LOAN3, LOAN4):
        key = next(k for k in win.labels if (k.model_version, k.name) == (b.model_version, "age"))
        assert len(win.labels[key]) == len(b.features["age"].edges) + 1


def test_baselines_are_read_again_only_when_they_may_have_changed(fleet: Fleet) -> None:
    src = fleet.service().source
    cold = src.evaluate(fleet.t)
    assert cold.baseline_read and cold.queries == len(src.queries()) == 18
    warm = src.evaluate(fleet.t)  # the baseline gauges are not asked for again
    assert not warm.baseline_read and warm.queries == 13
    assert list(warm.scores.items()) == list(cold.scores.items())
    assert dict(warm.samples) == dict(cold.samples) and len(warm.scores) > 50
    # an evaluation time outside [read, read + refresh) reads them again
    short = fleet.service(baseline_refresh=5).source
    assert [short.evaluate(fleet.t - dt).baseline_read for dt in (6, 3, 1, 0.5, 7)] == [
        True, False, True, False, True]
    # refresh 0: every evaluation reads them
    always = fleet.service(baseline_refresh=0).source
    assert all(always.evaluate(fleet.t).baseline_read for _ in range(2))


def test_ha_exporters_at_the_same_evaluation_time_export_identical_values(fleet: Fleet) -> None:
    # two replicas of the exporter whose clocks differ: both round down to the same t
    a = fleet.service(clock=lambda: fleet.t + 0.2)
    b = fleet.service(clock=lambda: fleet.t + 0.9)
    assert a.evaluation_time() == b.evaluation_time() == fleet.t
    ra, rb = a.evaluate_once(), b.evaluate_once()
    assert ra.info["evaluation_time"] == rb.info["evaluation_time"] == fleet.t
    assert list(ra.scores.items()) == list(rb.scores.items())
    assert dict(ra.samples) == dict(rb.samples)
    assert len(ra.scores) > 50
    texts = []
    for svc in (a, b):
        host, port = svc.serve("127.0.0.1", 0)
        try:
            body = requests.get(f"http://{host}:{port}/metrics", timeout=10).text
        finally:
            svc.stop()
        texts.append([ln for ln in body.splitlines()
                      if ln.startswith(("modelmon_drift_score", "modelmon_prediction_drift_score",
                                        "modelmon_drift_window_samples"))])
    assert texts[0] == texts[1] and len(texts[0]) > 50


def test_served_metrics_are_the_results(fleet: Fleet) -> None:
    svc = fleet.service()
    res = svc.evaluate_once(at=fleet.t)
    host, port = svc.serve("127.0.0.1", 0)
    try:
        assert requests.get(f"http://{host}:{port}/-/ready", timeout=5).status_code == 200
        text = requests.get(f"http://{host}:{port}/metrics", timeout=10).text
    finally:
        svc.stop()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    got = {}
    for fam, kind, label in (("modelmon_drift_score", "feature", "feature"),
                             ("modelmon_prediction_drift_score", "output", "output")):
        for s in fams[fam].samples:
            lab = s.labels
            got[ScoreKey(lab["model"], lab["model_version"], kind, lab[label], lab["method"],
                         lab["reference"])] = s.value
    assert got == dict(res.scores)
    up = fams["modelmon_drift_source_up"].samples
    assert [(s.labels, s.value) for s in up] == [({"source": fleet.store.url}, 1.0)]
    skipped = {s.labels["reason"]: s.value for s in fams["modelmon_drift_skipped"].samples
               if s.name.endswith("_total")}
    assert skipped == {r: 0.0 for r in DRIFT_SKIP_REASONS}
    errors = {s.labels["reason"]: s.value for s in fams["modelmon_drift_query_errors"].samples
              if s.name.endswith("_total")}
    assert errors == {r: 0.0 for r in DRIFT_QUERY_ERROR_REASONS}
    assert fams["modelmon_drift_last_success_timestamp_seconds"].samples[0].value == \
        res.last_success_timestamp


def test_per_model_window_min_samples_and_methods(fleet: Fleet) -> None:
    svc = fleet.service(models={
        "churn": ModelSettings(window=2 * W, methods=("psi", "hellinger")),
        "loan": ModelSettings(min_samples=10**9)})
    queries = svc.source.queries()
    assert 'model!~"churn"' in queries[f"{W}s/current/feature_value"]
    assert 'model=~"churn"' in queries[f"{2 * W}s/current/feature_value"]
    assert f"[{2 * W}s] offset {2 * W}s" in queries[f"{2 * W}s/previous/feature_value"]
    res = svc.evaluate_once(at=fleet.t)
    # loan: below its min_samples, only the sample gauges
    assert not [k for k in res.scores if k.model == "loan"]
    assert res.samples[("loan", "3", "feature", "age", "baseline")] > 0
    # churn: its own window, only its methods, against the counts over that window
    churn = [k for k in res.scores if k.model == "churn"]
    assert {k.method for k in churn} == {"psi", "hellinger"}
    for kind, name in series_of(CHURN):
        cur = read_back(fleet.store, CHURN, kind, name, fleet.t, 2 * W)
        assert res.samples[("churn", "1", kind, name, "baseline")] == pytest.approx(cur.sum(),
                                                                                    rel=1e-12)
        want = drift_scores(reference(CHURN, kind, name), cur, edges_of(CHURN, kind, name))
        for method in ("psi", "hellinger"):
            assert_score(res.score("churn", name, method, model_version="1"),
                         float(want[method]), f"churn {name} {method}")


def test_baseline_file_overrides_the_store_gauges(fleet: Fleet) -> None:
    other = loan_baseline("3", bins=10, seed=1234)  # same version, different training data
    res = fleet.service(baselines=[other]).evaluate_once(at=fleet.t)
    # its buckets differ from the live histograms': skipped, not mixed
    assert res.skipped.get("baseline_mismatch", 0) >= 3
    assert not [k for k in res.scores if k.model_version == "3" and k.name in ("age", "income")]
    # categorical series compare by label: scored against the file's ratios
    cur = read_back(fleet.store, other, "feature", "purpose", fleet.t, W)  # in the file's order
    want = drift_scores(np.asarray(other.features["purpose"].counts, dtype=float), cur)
    assert_score(res.score("loan", "purpose", "psi", model_version="3"), float(want["psi"]),
                 "purpose psi vs the file's baseline")


# ---------------------------------------------------------------- outage


@pytest.mark.parametrize("kind", STORES)
def test_store_outage_is_reported_survived_and_recovered(kind: str, tmp_path: Path) -> None:
    lv = start_sidecar([LOAN3])
    store = make_store(kind, tmp_path / kind, [target(lv)])
    svc = DriftQueryService(store.url, window=30, interval=1, min_samples=1)
    try:
        rng = np.random.default_rng(5)
        store.wait_for("count(modelmon_predictions_total)",
                       lambda r: r and float(r[0]["value"][1]) == 1)
        post(lv, "loan", loan_events(rng, 500))
        host, port = svc.serve("127.0.0.1", 0)
        base = f"http://{host}:{port}"
        svc.start()

        def scored() -> bool:
            res = svc.latest
            return bool(res is not None and res.all_sources_up
                        and res.score("loan", "age", "psi") is not None)

        wait_until(scored, "first scores")
        good = svc.latest
        assert good is not None

        store.kill()  # keeps the port and the data directory
        wait_until(lambda: svc.latest is not None and not svc.latest.all_sources_up,
                   "source_up 0")
        down1 = svc.latest
        wait_until(lambda: svc.latest.evaluations > down1.evaluations + 1,  # type: ignore[union-attr]
                   "more failed evaluations")
        down2 = svc.latest
        assert down2 is not None and not down2.all_sources_up
        # the last complete results stay visible; last_success does not advance
        assert down2.last_success_timestamp == down1.last_success_timestamp
        assert down2.last_success_timestamp is not None
        assert down2.scores.keys() == svc.latest.scores.keys()  # type: ignore[union-attr]
        assert down2.score("loan", "age", "psi") is not None
        assert down2.query_errors.get("connection", 0) > down1.query_errors.get("connection", 0)
        assert set(down2.query_errors) <= set(DRIFT_QUERY_ERROR_REASONS)
        # the process stays live and ready, and says so
        assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
        assert requests.get(base + "/-/ready", timeout=5).status_code == 200
        text = requests.get(base + "/metrics", timeout=5).text
        assert f'modelmon_drift_source_up{{source="{store.url}"}} 0.0' in text
        assert 'modelmon_drift_query_errors_total{reason="connection"}' in text
        assert 'modelmon_drift_score{feature="age",method="psi"' in text

        store.start()
        post(lv, "loan", loan_events(rng, 200))
        wait_until(lambda: svc.latest.all_sources_up  # type: ignore[union-attr]
                   and svc.latest.last_success_timestamp > down2.last_success_timestamp,
                   "recovery")
        wait_until(scored, "scores after recovery")
        text = requests.get(base + "/metrics", timeout=5).text
        assert f'modelmon_drift_source_up{{source="{store.url}"}} 1.0' in text
    finally:
        svc.stop()
        store.stop()
        lv.server.stop()


# ------------------------------------------------------------ skipped series


class Target:
    """A loopback /metrics endpoint serving whatever text it is given (a hand-made replica)."""

    def __init__(self) -> None:
        self.body = ""
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = me.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.target = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _hist(model: str, feature: str, buckets: dict[str, float | str]) -> list[str]:
    return [f'modelmon_feature_value_bucket{{model="{model}",model_version="1",feature="{feature}",'
            f'le="{le}"}} {v}' for le, v in buckets.items()]


def _exposition(phase: int, replica: int) -> str:
    """Hand-made series; ``phase`` 0 is all zeros, phase 1 the increase."""
    k = float(phase)
    lines = ['modelmon_model_info{model="edge",model_version="1",baseline_id="b1"} 1',
             f'modelmon_model_info{{model="clash",model_version="1",baseline_id="c{replica}"}} 1']
    for feature in ("ok", "nanf", "partial", "nonmono", "noinf", "mismatch"):
        for le, r in (("1", 0.3), ("2", 0.6), ("+Inf", 1.0)):
            lines.append(f'modelmon_baseline_bucket_ratio{{model="edge",model_version="1",'
                         f'feature="{feature}",le="{le}"}} {r}')
        lines.append(f'modelmon_baseline_samples{{model="edge",model_version="1",'
                     f'feature="{feature}"}} 1000')
    for le, r in (("1", 0.5), ("+Inf", 1.0)):
        lines.append(f'modelmon_baseline_bucket_ratio{{model="clash",model_version="1",'
                     f'feature="x",le="{le}"}} {r}')
    lines += _hist("edge", "ok", {"1": 30 * k, "2": 60 * k, "+Inf": 100 * k})
    lines += _hist("edge", "nobase", {"1": 30 * k, "+Inf": 100 * k})
    lines += _hist("clash", "x", {"1": 30 * k, "+Inf": 100 * k})
    if replica == 0:
        lines += _hist("edge", "nanf", {"1": "NaN" if phase else 0, "2": 60 * k, "+Inf": 100 * k})
        lines += _hist("edge", "partial", {"1": 30 * k, "2": 60 * k, "+Inf": 100 * k})
        lines += _hist("edge", "nonmono", {"1": 80 * k, "2": 90 * k, "+Inf": 20 * k})
        lines += _hist("edge", "noinf", {"1": 30 * k, "2": 60 * k})
        lines += _hist("edge", "mismatch", {"0.5": 30 * k, "+Inf": 100 * k})
    else:
        lines += _hist("edge", "partial", {"1": 30 * k, "+Inf": 100 * k})  # no le="2"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", STORES)
def test_unusable_series_are_skipped_and_counted_by_reason(kind: str, tmp_path: Path) -> None:
    targets = [Target(), Target()]
    for i, tg in enumerate(targets):
        tg.body = _exposition(0, i)
    store = make_store(kind, tmp_path / kind, [tg.target for tg in targets])
    try:
        store.wait_for('count(modelmon_feature_value_bucket{feature="ok"})',
                       lambda r: r and float(r[0]["value"][1]) == 6)
        more_samples(store, 'modelmon_feature_value_bucket{feature="ok"}', 3)  # a few at zero
        for i, tg in enumerate(targets):
            tg.body = _exposition(1, i)
        store.wait_for('sum(modelmon_feature_value_bucket{feature="ok",le="+Inf"})',
                       lambda r: r and float(r[0]["value"][1]) == 200)
        more_samples(store, 'modelmon_feature_value_bucket{feature="ok"}', 2)
        svc = DriftQueryService(store.url, window=60, interval=1, min_samples=1)
        res = svc.evaluate_once(at=time.time() - 0.5)
        assert res.all_sources_up
        want = {"non_finite": 1, "partial_buckets": 1, "non_monotonic": 1,
                "missing_buckets": 1, "baseline_mismatch": 1, "no_baseline": 1,
                "baseline_conflict": 1}
        good = {("edge", "ok")}
        if kind == "victoria-metrics":
            # VictoriaMetrics drops NaN samples at ingestion: the NaN never reaches a query, and
            # the bucket keeps its last number (0), which is a valid histogram.
            del want["non_finite"]
            good.add(("edge", "nanf"))
        assert {(k.model, k.name) for k in res.scores} == good
        assert dict(res.skipped) == want
        assert set(res.skipped) <= set(DRIFT_SKIP_REASONS)
        # the samples gauge of the good series, and a cumulative counter over evaluations
        assert res.samples[("edge", "1", "feature", "ok", "baseline")] > 0
        res2 = svc.evaluate_once(at=time.time() - 0.5)
        assert dict(res2.skipped) == {r: 2 * n for r, n in want.items()}
        assert set(res.scores) == set(res2.scores)
        assert DRIFT_METHODS  # every method of the good series is exported
        assert {k.method for k in res.scores if k.reference == "baseline"} == set(DRIFT_METHODS)
    finally:
        store.stop()
        for tg in targets:
            tg.close()


def _versions_exposition(versions: list[str], count: float) -> str:
    lines = []
    for v in versions:
        lines.append(f'modelmon_model_info{{model="a",model_version="{v}",baseline_id="id{v}"}} 1')
        for le, r, c in (("1", 0.4, 0.4), ("+Inf", 1.0, 1.0)):
            lab = f'model="a",model_version="{v}",feature="x",le="{le}"'
            lines.append(f"modelmon_baseline_bucket_ratio{{{lab}}} {r}")
            lines.append(f"modelmon_feature_value_bucket{{{lab}}} {c * count}")
        lines.append(f'modelmon_baseline_samples{{model="a",model_version="{v}",feature="x"}} 500')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", STORES)
def test_a_new_version_makes_the_exporter_read_the_baselines_again(kind: str,
                                                                    tmp_path: Path) -> None:
    tg = Target()
    tg.body = _versions_exposition(["1"], 0)
    store = make_store(kind, tmp_path / kind, [tg.target])
    try:
        store.wait_for('count(modelmon_feature_value_bucket{model="a"})',
                       lambda r: r and float(r[0]["value"][1]) == 2)
        more_samples(store, 'modelmon_feature_value_bucket{model="a"}', 2)
        tg.body = _versions_exposition(["1"], 100)
        store.wait_for('sum(modelmon_feature_value_bucket{le="+Inf"})',
                       lambda r: r and float(r[0]["value"][1]) == 100)
        more_samples(store, 'modelmon_feature_value_bucket{model="a"}', 2)
        svc = DriftQueryService(store.url, window=60, interval=1, min_samples=1)
        first = svc.evaluate_once(at=time.time() - 0.5)
        second = svc.evaluate_once(at=time.time() - 0.5)
        assert (first.info["baseline_read"], first.info["queries"]) == (True, 18)
        assert (second.info["baseline_read"], second.info["queries"]) == (False, 13)
        assert dict(second.skipped) == {} and second.score("a", "x") is not None
        # a rolling deploy starts: version 2 and its baseline appear
        tg.body = _versions_exposition(["1", "2"], 100)
        store.wait_for('count(modelmon_model_info{model="a"})',
                       lambda r: r and float(r[0]["value"][1]) == 2)
        more_samples(store, 'modelmon_model_info{model="a"}', 2)
        third = svc.evaluate_once(at=time.time() - 0.5)
        assert (third.info["baseline_read"], third.info["queries"]) == (True, 18)
        assert set(third.info["models"]) == {("a", "1"), ("a", "2")}  # type: ignore[arg-type]
        assert dict(third.skipped) == {}  # version 2 found its baseline at once
        assert ("a", "2", "feature", "x", "baseline") in third.samples
    finally:
        store.stop()
        tg.close()


CAL_LES = ("0.25", "0.5", "0.75", "+Inf")
CAL = {"rows": (400, 300, 200, 100), "positives": (40, 90, 120, 80),
       "predicted_positive": (0, 30, 200, 100), "true_positive": (0, 10, 120, 80)}
LIVE = (10.0, 20.0, 30.0, 40.0)  # live scores per bucket in the window


def _calibrated_exposition(phase: int) -> str:
    mv = 'model="clf",model_version="2"'
    lines = [f'modelmon_model_info{{{mv},baseline_id="c1"}} 1']
    cum = np.cumsum(LIVE) * phase
    total = float(sum(CAL["rows"]))
    ratios = np.cumsum(CAL["rows"]) / total
    for j, le in enumerate(CAL_LES):
        lines.append(f'modelmon_prediction_value_bucket{{{mv},output="score",le="{le}"}} {cum[j]}')
        lines.append(f'modelmon_baseline_bucket_ratio{{{mv},feature="score",le="{le}"}} '
                     f"{ratios[j]}")
        for q, counts in CAL.items():
            lines.append(f'modelmon_baseline_calibration{{{mv},output="score",le="{le}",'
                         f'quantity="{q}"}} {counts[j]}')
    lines.append(f'modelmon_baseline_samples{{{mv},feature="score"}} {total}')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", STORES)
def test_estimated_performance_is_the_calibration_applied_to_the_live_window(
        kind: str, tmp_path: Path) -> None:
    from modelmon.stats import estimate_performance

    tg = Target()
    tg.body = _calibrated_exposition(0)
    store = make_store(kind, tmp_path / kind, [tg.target])
    try:
        store.wait_for('count(modelmon_prediction_value_bucket{model="clf"})',
                       lambda r: r and float(r[0]["value"][1]) == 4)
        more_samples(store, 'modelmon_prediction_value_bucket{model="clf"}', 3)
        tg.body = _calibrated_exposition(1)
        store.wait_for('sum(modelmon_prediction_value_bucket{le="+Inf"})',
                       lambda r: r and float(r[0]["value"][1]) == sum(LIVE))
        more_samples(store, 'modelmon_prediction_value_bucket{model="clf"}', 2)
        svc = DriftQueryService(store.url, window=60, interval=1, min_samples=1)
        res = svc.evaluate_once(at=time.time() - 0.5)
        assert res.all_sources_up and dict(res.skipped) == {}
        want = estimate_performance(np.array(LIVE), *(np.array(c) for c in CAL.values()))
        got = res.estimates[("clf", "2")]
        for metric in ("accuracy", "precision", "recall", "f1"):
            assert got[metric] == pytest.approx(float(getattr(want, metric)), rel=1e-9), metric
        # by hand: E[TP] = 10*0/400 + 20*10/300 + 30*120/200 + 40*80/100 = 50.67 of 100
        assert got["accuracy"] == pytest.approx(
            (20 * 10 / 300 + 30 * 120 / 200 + 40 * 80 / 100
             + 10 * 360 / 400 + 20 * 190 / 300 + 30 * 0 / 200 + 40 * 0 / 100) / 100, rel=1e-9)
        # and it is exported
        host, port = svc.serve("127.0.0.1", 0)
        text = requests.get(f"http://{host}:{port}/metrics", timeout=5).text
        assert ('modelmon_estimated_performance{metric="accuracy",model="clf",'
                'model_version="2"}') in text
        svc.stop()
        # below min_samples there is no estimate
        quiet = DriftQueryService(store.url, window=60, interval=1, min_samples=1000)
        assert quiet.evaluate_once(at=time.time() - 0.5).estimates == {}
    finally:
        store.stop()
        tg.close()


@pytest.mark.parametrize("kind", STORES)
def test_store_errors_are_typed(kind: str, tmp_path: Path) -> None:
    from modelmon.drift import PromClient, QueryError

    lv = start_sidecar([LOAN3])
    store = make_store(kind, tmp_path / kind, [target(lv)])
    try:
        client = PromClient(store.url)
        assert client.query("vector(1)", time.time()).samples[0].value == 1.0
        with pytest.raises(QueryError) as err:
            client.query("sum(", time.time())  # the store rejects the PromQL
        assert err.value.reason == "query_error"
        with pytest.raises(QueryError) as err:
            PromClient(store.url + "/no/such/prefix").query("up", time.time())
        assert err.value.reason == "http_4xx"
        # NaN from the store is kept apart, never returned as a value (VictoriaMetrics leaves
        # NaN results out of its answers altogether)
        vec = client.query("vector(0) / 0", time.time())
        assert vec.samples == ()
        assert len(vec.non_finite) == (1 if kind == "prometheus" else 0)
    finally:
        store.stop()
        lv.server.stop()


def expected_verdicts(fleet: Fleet, b: Baseline, res: Any) -> dict[tuple[str, str], tuple]:
    """``(kind, name) -> (drifted, threshold, method)`` of one model version against its
    baseline, from modelmon.stats alone, on the counts read back from the store."""
    rows = []
    for (kind, name) in series_of(b):
        cur = read_back(fleet.store, b, kind, name, fleet.t, W)
        ref = reference(b, kind, name)
        edges = edges_of(b, kind, name)
        method = DEFAULT_METHOD["numeric" if edges is not None else "categorical"]
        score = float(drift_scores(ref, cur, edges)[method])
        null = null_model(method, ref, cur.sum(), edges=edges)
        rows.append((kind, name, method, score, null, float(null.pvalue(score)[0])))
    levels, rejected = holm_levels([r[5] for r in rows], [0] * len(rows), DEFAULT_ALPHA)
    out = {}
    for (kind, name, method, score, null, _), level, rej in zip(rows, levels, rejected):
        floor = DEFAULT_EFFECT[method]
        threshold = max(floor, float(null.threshold(level)[0]))
        out[(kind, name)] = (bool(rej and score > floor), threshold, method)
    return out


def test_served_verdicts_equal_stats_on_the_read_back_counts(fleet: Fleet) -> None:
    svc = fleet.service()
    res = svc.evaluate_once(at=fleet.t)
    host, port = svc.serve("127.0.0.1", 0)
    try:
        text = requests.get(f"http://{host}:{port}/metrics", timeout=10).text
    finally:
        svc.stop()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    served: dict[tuple[str, str, str, str], list[Any]] = {}
    for fam, kind, label in (("modelmon_drift_detected", "feature", "feature"),
                             ("modelmon_prediction_drift_detected", "output", "output")):
        for s in fams[fam].samples:
            if s.labels["reference"] == "baseline":
                lab = s.labels
                served.setdefault((lab["model"], lab["model_version"], kind, lab[label]),
                                  [None, None, None])[0] = s.value
    for fam, kind, label in (("modelmon_drift_threshold", "feature", "feature"),
                             ("modelmon_prediction_drift_threshold", "output", "output")):
        for s in fams[fam].samples:
            if s.labels["reference"] == "baseline":
                lab = s.labels
                row = served[(lab["model"], lab["model_version"], kind, lab[label])]
                row[1], row[2] = s.value, lab["method"]
    drifted_any = False
    for b in (LOAN3, LOAN4, CHURN):
        want = expected_verdicts(fleet, b, res)
        for (kind, name), (drifted, threshold, method) in want.items():
            got = served[(b.model, b.model_version, kind, name)]
            what = f"{b.model} v{b.model_version} {kind} {name}"
            assert got[0] == float(drifted), what
            assert got[1] == pytest.approx(threshold, rel=1e-6), what
            assert got[2] == method, what
            drifted_any |= drifted
        # dataset drift: the share of the version's features with a verdict
        feats = [d for (kind, _), (d, _, _) in want.items() if kind == "feature"]
        share = [s.value for s in fams["modelmon_drift_share"].samples
                 if s.labels == {"model": b.model, "model_version": b.model_version,
                                 "reference": "baseline"}]
        assert share == [pytest.approx(sum(feats) / len(feats))], b.model
    # the replica shifted by 1.5 sd makes age (and only age) of loan v3 drift
    assert res.verdict("loan", "age", model_version="3").drifted
    assert not res.verdict("loan", "income", model_version="3").drifted
    assert drifted_any
