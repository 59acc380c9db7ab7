"""The PromQL-only PSI fallback (alerts/modelmon-drift.rules.yml).

* ``promtool check rules`` and ``promtool test rules`` on the checked-in files;
* the expected values of the promtool unit tests agree with :func:`modelmon.stats.psi`;
* a generated promtool test at the largest bucket count ``Baseline.build`` makes (201);
* a real Prometheus with a short-window copy of the rules scrapes a sidecar fed a seeded
  stream: the recorded PSI equals ``modelmon.stats.psi`` of the same window's counts as
  read back with ``increase(...)``, and of the posted counts.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from modelmon import Baseline
from modelmon.stats import psi
from modelmon.stats.binning import bucket_counts

from ..conftest import Prometheus
from ..sidecar.conftest import PURPOSES, make_baseline, start_sidecar

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "modelmon-drift.rules.yml"
UNIT = ROOT / "alerts" / "tests" / "modelmon-drift.rules.test.yaml"
WINDOW_NAMES = ("model_feature:modelmon_psi:1h",
                "model_feature:modelmon_feature_value:psi1h",
                "model_feature:modelmon_feature_category:psi1h")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def short_window(tmp_path: Path, window: str = "30s") -> Path:
    """A copy of the rules with a short window, evaluated every second."""
    text = RULES.read_text()
    exprs = [r["expr"] for r in yaml.safe_load(text)["groups"][0]["rules"]]
    assert sum(e.count("[1h]") for e in exprs) == 2  # the window, as documented
    assert text.count("interval: 1m") == 1
    out = tmp_path / "modelmon-drift.rules.yml"
    out.write_text(text.replace("[1h]", f"[{window}]").replace("interval: 1m", "interval: 1s"))
    return out


# --- promtool -------------------------------------------------------------------------


def test_promtool_check_rules(promtool):
    r = run(promtool, "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 19 rules found" in r.stdout


def test_promtool_unit_tests(promtool):
    r = run(promtool, "test", "rules", str(UNIT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_short_window_variant_is_valid(promtool, tmp_path):
    r = run(promtool, "check", "rules", str(short_window(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_group_layout():
    doc = yaml.safe_load(RULES.read_text())
    (group,) = doc["groups"]
    assert group["name"] == "modelmon-drift-psi" and group["interval"] == "1m"
    records = [r["record"] for r in group["rules"]]
    assert records[-1] == "model_feature:modelmon_psi:1h"
    assert set(WINDOW_NAMES) <= set(records)
    # Every rule reads only raw metrics or series recorded by an EARLIER rule.
    for i, rule in enumerate(group["rules"]):
        used = set(re.findall(r"\b[a-z_]+:[a-z_:0-9]+", rule["expr"]))
        assert used <= set(records[:i]), (rule["record"], used - set(records[:i]))


_SEL = re.compile(r"(\w+)\{(.*)\}")
_LAB = re.compile(r'(\w+)="([^"]*)"')


def _series(doc: dict) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for s in doc["tests"][0]["input_series"]:
        m = _SEL.fullmatch(s["series"])
        assert m, s["series"]
        out.append((m.group(1), dict(_LAB.findall(m.group(2))), s["values"]))
    return out


def test_unit_test_expectations_match_modelmon_stats_psi():
    """The promtool expectations, recomputed from its input series with modelmon.stats.psi."""
    doc = yaml.safe_load(UNIT.read_text())
    live: dict[str, dict[str, float]] = {}
    base: dict[str, dict[str, float]] = {}
    kind: dict[str, str] = {}
    for name, labels, values in _series(doc):
        f = labels["feature"]
        key = labels.get("le", labels.get("category"))
        if name in ("modelmon_feature_value_bucket", "modelmon_feature_category_total"):
            m = re.fullmatch(r"(\d+)\+(\d+)x\d+", values)
            slope = float(m.group(2)) if m else 0.0  # flat series: no increase
            live.setdefault(f, {}).setdefault(key, 0.0)
            live[f][key] += slope  # summed over replicas
            kind[f] = "numeric" if name.endswith("_bucket") else "categorical"
        else:
            base.setdefault(f, {})[key] = float(values.split("x")[0])  # same on every replica
    expected = {}
    for f, cum in live.items():
        if kind[f] == "numeric":
            if set(cum) != set(base[f]):
                continue  # an incomplete baseline gets no PSI
            les = sorted(cum, key=float)  # float("+Inf") sorts last
            q = np.diff([0.0] + [cum[le] for le in les])
            p = np.diff([0.0] + [base[f][le] for le in les])
        else:
            cats = sorted(set(cum) | set(base[f]))
            q = np.array([cum.get(c, 0.0) for c in cats])
            p = np.array([base[f].get(c, 0.0) for c in cats])
        if q.sum() > 0:
            expected[f] = float(psi(p, q))
    tests = doc["tests"][0]["promql_expr_test"]
    (psi_test,) = [t for t in tests if t["expr"].startswith("round(model_feature:modelmon_psi")]
    got = {dict(_LAB.findall(s["labels"]))["feature"]: s["value"]
           for s in psi_test["exp_samples"]}
    assert set(got) == set(expected) == {"c", "w", "x", "y"}
    for f, v in expected.items():
        assert got[f] == round(v, 10), f


def test_largest_baseline_fits_the_rank_and_promtool_agrees(promtool, tmp_path):
    """201 buckets (bins=200, the most Baseline.build allows): PSI as modelmon.stats.psi."""
    from modelmon.catalogue import le_labels

    rng = np.random.default_rng(5)
    b = Baseline.build({"v": rng.integers(0, 200, 5000).astype(float)}, model="m",
                       model_version="1", bins=200)
    s = b.features["v"]
    les = le_labels(s.edges)
    assert len(les) == 201
    rules = {r["record"]: r["expr"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}
    ks = [int(k) for k in re.findall(r"\((\d+), model_feature",
                                      rules["model_feature:modelmon_feature_value_bucket:block1h"])]
    assert ks == list(range(16, 16 * len(ks) + 1, 16)) and ks[-1] >= 201
    fine = [int(k) for k in re.findall(r"\((\d+), model_feature",
                                        rules["model_feature:modelmon_feature_value_bucket:rank1h"])]
    assert fine == list(range(1, 17))

    ref = np.asarray(s.counts, dtype=float)
    live = rng.integers(0, 4, 201)
    live[[0, 1, 2, 50, 51, 200]] = 0  # empty live buckets; the last is empty in training too
    assert ref[-1] == 0 and ref[:-1].min() > 0
    ratios = np.cumsum(ref) / ref.sum()
    sel = 'model="m",model_version="1",feature="v"'
    lines = [f"rule_files: [{str(RULES)!r}]", "evaluation_interval: 1m", "tests:",
             "  - interval: 1m", "    input_series:"]
    for le, c, r in zip(les, np.cumsum(live), ratios):
        lines += [f"      - series: 'modelmon_feature_value_bucket{{{sel},le=\"{le}\"}}'",
                  f"        values: '0+{int(c)}x70'",
                  f"      - series: 'modelmon_baseline_bucket_ratio{{{sel},le=\"{le}\"}}'",
                  f"        values: '{float(r)!r}x70'"]
    # A bucket empty on both sides has the (P, Q) of the one before it: they merge.
    ranked = 201 - sum(1 for k in range(1, 201) if ref[k] == 0 and live[k] == 0)
    want = float(psi(ref, live))
    lines += ["    promql_expr_test:",
              f"      - expr: abs(model_feature:modelmon_psi:1h - {want!r}) < bool 1e-9",
              "        eval_time: 65m",
              "        exp_samples:",
              f"          - labels: '{{{sel}}}'",
              "            value: 1",
              "      - expr: count(model_feature:modelmon_feature_value_bucket:rank1h)",
              "        eval_time: 65m",
              "        exp_samples:",
              "          - labels: '{}'",
              f"            value: {ranked}"]
    test = tmp_path / "big.test.yml"
    test.write_text("\n".join(lines) + "\n")
    r = run(promtool, "test", "rules", str(test))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


# --- a real Prometheus ----------------------------------------------------------------


def _query_at(prom: Prometheus, expr: str, t: float) -> list[dict]:
    r = prom.http.get(f"{prom.url}/api/v1/query", params={"query": expr, "time": repr(t)},
                      timeout=10)
    doc = r.json()
    assert doc.get("status") == "success", doc
    return doc["data"]["result"]


def _last_sample(prom: Prometheus, expr: str) -> tuple[float, float]:
    """Timestamp and value of the newest sample of a single recorded series."""
    (series,) = prom.query(f"{expr}[10s]")
    ts, v = series["values"][-1]
    return float(ts), float(v)


@pytest.mark.integration
def test_prometheus_records_the_psi_of_the_window(prometheus_binary, tmp_path):
    baseline = make_baseline()
    lv = start_sidecar([baseline])
    host, port = lv.server.address
    window = "60s"  # the stream must stay inside it until the checks: ample margin
    prom = Prometheus(prometheus_binary, tmp_path / "prom", [f"{host}:{port}"],
                      rule_files=[short_window(tmp_path, window)])
    sel = 'model="loan",model_version="3"'
    try:
        # Zeros scraped before the first event: the window starts from them.
        prom.wait_for(f"count_over_time(modelmon_predictions_total{{{sel}}}[1m])",
                      lambda res: res and float(res[0]["value"][1]) >= 2)
        rng = np.random.default_rng(2024)
        n = 1800
        ages = rng.normal(46, 12, n).round(1)          # drifted (baseline: 40, 10)
        incomes = rng.lognormal(10, 0.5, n).round(2)   # as in training
        purposes = rng.choice(PURPOSES + ["yacht"], n, p=[0.4, 0.2, 0.2, 0.1, 0.1])
        evs = [{"features": {"age": float(a), "income": float(i), "purpose": str(p)},
                "prediction": "yes"} for a, i, p in zip(ages, incomes, purposes)]
        for k in range(0, n, 600):
            r = lv.post("loan", json.dumps({"events": evs[k:k + 600]}).encode())
            assert r.status_code == 200 and r.json()["accepted"] == 600
        prom.wait_for(f"modelmon_predictions_total{{{sel}}}",
                      lambda res: res and float(res[0]["value"][1]) == n)
        time.sleep(2.5)  # a few rule evaluations after the last change
        res = prom.wait_for("model_feature:modelmon_psi:1h",
                            lambda res: len(res) == 3, timeout=30)
        assert {s["metric"]["feature"] for s in res} == {"age", "income", "purpose"}
        assert all(set(s["metric"]) == {"__name__", "model", "model_version", "feature"}
                   for s in res)

        def counts_at(t: float, feature: str) -> tuple[np.ndarray, np.ndarray]:
            """Per-bucket window counts and baseline fractions, as Prometheus has them."""
            f = f'{sel},feature="{feature}"'
            if feature == "purpose":
                live = {s["metric"]["category"]: float(s["value"][1]) for s in _query_at(
                    prom, f"sum by (category) (increase(modelmon_feature_category_total"
                          f"{{{f}}}[{window}]))", t)}
                ref = {s["metric"]["category"]: float(s["value"][1]) for s in _query_at(
                    prom, f"max by (category) (modelmon_baseline_category_ratio{{{f}}})", t)}
                cats = sorted(ref)
                assert set(live) == set(ref)
                return (np.array([ref[c] for c in cats]), np.array([live[c] for c in cats]))
            live = {s["metric"]["le"]: float(s["value"][1]) for s in _query_at(
                prom, f"sum by (le) (increase(modelmon_feature_value_bucket{{{f}}}"
                      f"[{window}]))", t)}
            ref = {s["metric"]["le"]: float(s["value"][1]) for s in _query_at(
                prom, f"max by (le) (modelmon_baseline_bucket_ratio{{{f}}})", t)}
            les = sorted(ref, key=float)
            assert set(live) == set(ref) and les[-1] == "+Inf"
            return (np.diff([0.0] + [ref[le] for le in les]),
                    np.diff([0.0] + [live[le] for le in les]))

        posted = {
            "age": (baseline.features["age"].counts,
                    bucket_counts(baseline.features["age"].edges, ages)),
            "income": (baseline.features["income"].counts,
                       bucket_counts(baseline.features["income"].edges, incomes)),
        }
        cat = baseline.features["purpose"]
        labels = list(cat.categories) + ["__other__"]
        posted["purpose"] = (
            cat.counts,
            [int((purposes == c).sum()) for c in cat.categories]
            + [int((~np.isin(purposes, cat.categories)).sum())])
        assert len(labels) == len(cat.counts)
        for feature, (ref_counts, live_counts) in posted.items():
            ts, got = _last_sample(prom, f'model_feature:modelmon_psi:1h{{feature="{feature}"}}')
            p, q = counts_at(ts, feature)
            assert q.sum() > 0
            # Same window, same counts: the rules compute modelmon.stats.psi.
            assert got == pytest.approx(float(psi(p, q)), rel=1e-9, abs=1e-12), feature
            # The window holds the whole stream (zeros before it, nothing after it), and
            # increase() extrapolates every bucket by the same factor: the fractions,
            # hence the PSI, are those of the posted counts.
            if feature == "purpose":
                order = np.argsort(labels)  # counts_at sorts categories by name
                ref_counts = np.asarray(ref_counts)[order]
                live_counts = np.asarray(live_counts)[order]
            assert got == pytest.approx(float(psi(ref_counts, live_counts)), rel=1e-6), feature
        # The drifted feature stands out; the others stay low.
        scores = {s["metric"]["feature"]: float(s["value"][1]) for s in res}
        assert scores["age"] > 0.1 and scores["income"] < 0.05, scores
        assert math.isfinite(scores["purpose"]) and scores["purpose"] > 0.1
    finally:
        prom.stop()
        lv.server.stop()
