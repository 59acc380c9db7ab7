import math
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.support import require_module
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmon import Baseline, Monitor
from modelmon.monitor import SchemaViolationError
from modelmon.stats import bucket_counts

DATA = Path(__file__).parent / "data"


def tiny_baseline() -> Baseline:
    return Baseline.build(
        {"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", None], "y": ["p", "q", "p", "p"],
         "s": [0.1, 0.2, 0.8, 0.9]},
        model="m", prediction="y", probability="s", bins=2)


def value(reg, name, **labels):
    labels = {"model": "m", "model_version": "1", **labels}
    v = reg.get_sample_value(name, labels)
    assert v is not None, f"no sample {name}{labels}"
    return v


def test_exact_exposition_for_a_tiny_baseline_is_pinned():
    """The /metrics text is a contract: names, label sets, le strings, _sum/_count."""
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg)
    mon.observe({"x": 2.0, "c": "a"}, prediction="p", probabilities=0.7, latency_seconds=0.003)
    mon.observe({"x": 10.0, "c": "zzz", "extra": 1}, prediction="r", probabilities=0.2)
    mon.observe({"c": None}, prediction="q")
    assert generate_latest(reg).decode() == (DATA / "tiny_metrics.txt").read_text()


def test_negative_bounds_still_emit_sum_and_count():
    rng = np.random.default_rng(1)
    b = Baseline.build({"z": rng.normal(-5, 1, 1000)}, model="m")
    assert b.features["z"].edges[0] < 0
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg)
    mon.observe({"z": -5.0})
    mon.observe({"z": -4.0})
    assert value(reg, "modelmon_feature_value_count", feature="z") == 2
    assert value(reg, "modelmon_feature_value_sum", feature="z") == -9.0


def test_counts_equal_an_independent_reference_for_random_streams():
    rng = np.random.default_rng(7)
    train = {"a": rng.normal(0, 1, 5000), "b": rng.exponential(2, 5000),
             "k": rng.choice(list("uvwxyz"), 5000)}
    b = Baseline.build(train, model="m", bins=10, max_categories=4)
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg, flush_at=97)  # folds mid-stream, at odd sizes
    n = 3000
    a = rng.normal(0.3, 1.2, n)
    bb = rng.exponential(2, n)
    k = rng.choice(list("uvwxyzQ"), n)
    for i in range(n):
        mon.observe({"a": float(a[i]), "b": float(bb[i]), "k": str(k[i])})
    out = text_string_to_metric_families(generate_latest(reg).decode())
    fams = {f.name: f for f in out}
    for name, vals in (("a", a), ("b", bb)):
        edges = b.features[name].edges
        expect = np.cumsum(bucket_counts(edges, vals)).tolist()
        got = [s.value for s in fams["modelmon_feature_value"].samples
               if s.name.endswith("_bucket") and s.labels["feature"] == name]
        assert got == expect
        assert value(reg, "modelmon_feature_value_sum", feature=name) == pytest.approx(vals.sum())
        oor = int(((vals < b.features[name].min) | (vals > b.features[name].max)).sum())
        assert value(reg, "modelmon_feature_out_of_range_total", feature=name) == oor
    kept = b.features["k"].categories
    for cat in kept:
        assert value(reg, "modelmon_feature_category_total", feature="k", category=cat) == (k == cat).sum()
    other = (~np.isin(k, kept)).sum()
    assert value(reg, "modelmon_feature_category_total", feature="k", category="__other__") == other
    assert value(reg, "modelmon_predictions_total") == n


def test_observe_batch_equals_observe_per_event():
    rng = np.random.default_rng(3)
    train = {"a": rng.normal(0, 1, 2000), "k": rng.choice(["p", "q", "r"], 2000),
             "score": rng.random(2000)}
    b = Baseline.build(train, model="m", probability="score", bins=8)
    n = 1500
    a = rng.normal(0, 2, n)
    a[::50] = np.nan
    k = rng.choice(["p", "q", "r", "s"], n).astype(object)
    k[::70] = None
    score = rng.random(n)
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    m1, m2 = Monitor(b, registry=r1), Monitor(b, registry=r2)
    for i in range(n):
        m1.observe({"a": float(a[i]), "k": k[i]}, probabilities=float(score[i]))
    m2.observe_batch({"a": a, "k": k}, probabilities=score)

    def split(reg):  # float sums depend on summation order (fold boundaries): compare apart
        lines = generate_latest(reg).decode().splitlines()
        sums = [float(x.rsplit(" ", 1)[1]) for x in lines if "_sum{" in x]
        return [x for x in lines if "_sum{" not in x], sums

    (l1, s1), (l2, s2) = split(r1), split(r2)
    assert l1 == l2
    assert s1 == pytest.approx(s2, rel=1e-12)
    assert value(r1, "modelmon_schema_violations_total", feature="a", reason="non_finite") == 30
    assert value(r1, "modelmon_feature_missing_total", feature="a") == 30
    assert value(r1, "modelmon_feature_missing_total", feature="k") == 22


def test_observe_batch_takes_a_dataframe():
    pd = require_module("pandas")
    b = tiny_baseline()
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg)
    df = pd.DataFrame({"x": [1.0, 3.0, None], "c": pd.Series(["a", "b", None], dtype="category")})
    mon.observe_batch(df, predictions=["p", "q", "p"], latency_seconds=[0.01, 0.02, 0.03])
    assert value(reg, "modelmon_feature_value_count", feature="x") == 2
    assert value(reg, "modelmon_feature_category_total", feature="c", category="b") == 1
    assert value(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 2
    assert value(reg, "modelmon_inference_latency_seconds_count") == 3


@pytest.mark.parametrize("features, feature, reason", [
    ({"x": "abc", "c": "a"}, "x", "wrong_type"),
    ({"x": "1.5", "c": "a"}, "x", "wrong_type"),          # a string is never parsed
    ({"x": [1.0], "c": "a"}, "x", "wrong_type"),
    ({"x": float("nan"), "c": "a"}, "x", "non_finite"),
    ({"x": float("inf"), "c": "a"}, "x", "non_finite"),
    ({"x": 1.0, "c": {"nested": 1}}, "c", "wrong_type"),
    ({"x": 1.0, "c": float("nan")}, "c", "non_finite"),
    ({"c": "a"}, "x", "missing_required"),
    ({"x": None, "c": "a"}, "x", "missing_required"),
    ({"x": 1.0, "c": "a", "zz": 3}, "__unknown__", "unknown_feature"),
])
def test_each_bad_value_is_counted_under_its_reason_and_the_rest_still_counts(features, feature, reason):
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg)
    mon.observe(features, prediction="p")
    assert value(reg, "modelmon_schema_violations_total", feature=feature, reason=reason) == 1
    total = sum(s.value for f in text_string_to_metric_families(generate_latest(reg).decode())
                if f.name == "modelmon_schema_violations" for s in f.samples)
    assert total == 1
    assert value(reg, "modelmon_predictions_total") == 1
    assert value(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    if feature != "x":   # x was fine: still in its histogram
        assert value(reg, "modelmon_feature_value_count", feature="x") == 1
    if feature != "c":
        assert value(reg, "modelmon_feature_category_total", feature="c", category="a") == 1


def test_strict_mode_raises_after_counting():
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg, strict=True)
    mon.observe({"x": 1.0, "c": "a"})
    with pytest.raises(SchemaViolationError, match="x: wrong_type"):
        mon.observe({"x": "bad", "c": "a"})
    assert value(reg, "modelmon_schema_violations_total", feature="x", reason="wrong_type") == 1
    assert value(reg, "modelmon_predictions_total") == 2


def test_non_mapping_features_never_raise():
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg)
    mon.observe(["not", "a", "mapping"])  # type: ignore[arg-type]
    mon.observe({"x": 1.0, "c": "a"})
    assert value(reg, "modelmon_predictions_total") == 2
    assert value(reg, "modelmon_feature_value_count", feature="x") == 1


def test_100k_distinct_category_strings_do_not_grow_the_series_count():
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg)
    mon.observe({"x": 1.0, "c": "a"})
    before = len(generate_latest(reg).splitlines())
    rng = np.random.default_rng(0)
    for i in range(100_000):
        mon.observe({"x": 1.0, "c": f"cat-{rng.integers(1 << 62)}-{i}", f"feat{i}": 1},
                    prediction=f"class-{i}")
    text = generate_latest(reg).decode()
    assert len(text.splitlines()) == before
    assert value(reg, "modelmon_feature_category_total", feature="c", category="__other__") == 100_000
    assert value(reg, "modelmon_predicted_class_total", **{"class": "__other__"}) == 100_000
    assert value(reg, "modelmon_schema_violations_total", feature="__unknown__",
                 reason="unknown_feature") == 100_000


def test_huge_strings_in_a_numeric_feature_are_wrong_type_not_memory():
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg)
    big = "9" * 1_000_000
    for _ in range(500):
        mon.observe({"x": big, "c": "a"})
    assert value(reg, "modelmon_schema_violations_total", feature="x", reason="wrong_type") == 500


def test_concurrent_observers_and_scrapes_count_exactly():
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg, flush_at=64)
    threads, per = 8, 5000
    stop = threading.Event()

    def scrape():
        while not stop.is_set():
            generate_latest(reg)

    def work(t):
        for i in range(per):
            mon.observe({"x": float(i % 5), "c": "a" if i % 2 else "b"}, prediction="p")

    scraper = threading.Thread(target=scrape)
    scraper.start()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    scraper.join()
    assert value(reg, "modelmon_predictions_total") == threads * per
    assert value(reg, "modelmon_feature_value_count", feature="x") == threads * per
    assert value(reg, "modelmon_feature_category_total", feature="c", category="a") == threads * per / 2


def test_several_models_in_one_monitor():
    b1 = tiny_baseline()
    b2 = Baseline.build({"q": [1.0, 2.0, 3.0]}, model="other", model_version="7", bins=2)
    reg = CollectorRegistry()
    mon = Monitor([b1, b2], registry=reg)
    with pytest.raises(ValueError, match="several models"):
        mon.observe({"x": 1.0})
    with pytest.raises(KeyError, match="unknown model"):
        mon.observe({"x": 1.0}, model="nope")
    mon.observe({"q": 2.0}, model="other")
    assert reg.get_sample_value("modelmon_predictions_total",
                                {"model": "other", "model_version": "7"}) == 1
    assert reg.get_sample_value("modelmon_predictions_total",
                                {"model": "m", "model_version": "1"}) == 0


def test_probabilities_as_mapping_and_sequence():
    rng = np.random.default_rng(0)
    b = Baseline.build({"x": rng.random(100), "pa": rng.random(100), "pb": rng.random(100)},
                       model="m", probability=["pa", "pb"], bins=4)
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg)
    mon.observe({"x": 0.5}, probabilities={"pa": 0.1, "pb": 0.9})
    mon.observe({"x": 0.5}, probabilities=[0.2, 0.8])
    mon.observe({"x": 0.5}, probabilities={"pc": 0.3})
    mon.observe({"x": 0.5}, probabilities=0.3)
    assert value(reg, "modelmon_prediction_value_count", output="pa") == 2
    assert value(reg, "modelmon_prediction_value_count", output="pb") == 2
    assert value(reg, "modelmon_schema_violations_total", feature="__unknown__",
                 reason="unknown_feature") == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(
    st.sampled_from(["x", "c", "junk"]),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
              st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2))),
    max_size=40))
def test_any_input_is_counted_never_raises(events):
    reg = CollectorRegistry()
    mon = Monitor(tiny_baseline(), registry=reg, flush_at=7)
    for e in events:
        mon.observe(e)
    assert value(reg, "modelmon_predictions_total") == len(events)
    # every event lands exactly once for x: in the histogram or as missing
    counted = value(reg, "modelmon_feature_value_count", feature="x")
    missing = value(reg, "modelmon_feature_missing_total", feature="x")
    assert counted + missing == len(events)
    good = [e["x"] for e in events if "x" in e and isinstance(e["x"], (int, float))
            and math.isfinite(e["x"])]
    assert counted == len(good)


def test_promtool_check_metrics_passes_on_live_output(promtool):
    rng = np.random.default_rng(5)
    b = Baseline.build({"a": rng.normal(-1, 1, 500), "k": rng.choice(["u", "v"], 500),
                        "y": rng.choice(["yes", "no"], 500), "p": rng.random(500)},
                       model="m", prediction="y", probability="p")
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg)
    for i in range(100):
        mon.observe({"a": float(rng.normal()), "k": "u", "bogus": 1}, prediction="yes",
                    probabilities=0.4, latency_seconds=0.01)
    proc = subprocess.run([promtool, "check", "metrics"], input=generate_latest(reg),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def test_le_strings_match_between_histogram_and_baseline_gauge():
    rng = np.random.default_rng(9)
    b = Baseline.build({"big": rng.lognormal(14, 2, 2000), "small": rng.normal(0, 1e-5, 2000)},
                       model="m")
    reg = CollectorRegistry()
    Monitor(b, registry=reg).observe({"big": 1e6, "small": 0.0})
    text = generate_latest(reg).decode()
    for feat in ("big", "small"):
        hist = re.findall(rf'modelmon_feature_value_bucket{{feature="{feat}",le="([^"]+)"', text)
        base = re.findall(rf'modelmon_baseline_bucket_ratio{{feature="{feat}",le="([^"]+)"', text)
        assert hist == base and len(hist) == len(b.features[feat].edges) + 1
        assert [float(x) for x in hist[:-1]] == list(b.features[feat].edges)
