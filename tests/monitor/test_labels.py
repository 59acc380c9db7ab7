"""Ground truth in the Monitor: predictions remembered by id, labels joined, counted per
class and segment, with every count checked against an independent tally."""

from __future__ import annotations

import subprocess
from collections import Counter
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmon.baseline import Baseline
from modelmon.monitor import Monitor
from modelmon.monitor.joinstore import MemoryJoinStore
from modelmon.monitor import Segment

CLASSES = ["approve", "reject", "review"]


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def classifier_baseline() -> Baseline:
    rng = np.random.default_rng(1)
    n = 3000
    score = rng.uniform(0, 1, n)
    return Baseline.build(
        {"age": rng.uniform(18, 80, n), "region": rng.choice(["eu", "us", "apac"], n),
         "decision": rng.choice(CLASSES[:2], n), "score": score},
        model="loan", model_version="3", bins=5, prediction="decision", probability="score")


def regressor_baseline() -> Baseline:
    rng = np.random.default_rng(2)
    n = 3000
    return Baseline.build({"rooms": rng.integers(1, 8, n).astype(float),
                           "price": rng.normal(300.0, 50.0, n)},
                          model="house", model_version="1", bins=5, prediction="price")


def samples(reg: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def segment_of(age: float, region: str) -> tuple[str, str]:
    a = "age<=30" if age <= 30 else ("age=(30,50]" if age <= 50 else "age>50")
    r = f"region={region}" if region in ("eu", "us") else "region=__other__"
    return a, r


def test_classifier_confusion_per_class_and_segment_equals_an_independent_tally() -> None:
    clock = Clock()
    reg = CollectorRegistry()
    mon = Monitor(classifier_baseline(), registry=reg, clock=clock,
                  segments=[Segment("age", bins=(30, 50)), Segment("region", values=("eu", "us"))])
    rng = np.random.default_rng(7)
    n = 400
    ages = rng.uniform(18, 80, n)
    regions = rng.choice(["eu", "us", "apac"], n)
    preds = rng.choice(CLASSES[:2], n)
    scores = rng.uniform(0, 1, n)
    for i in range(n):  # one at a time, as a web handler would
        mon.observe({"age": float(ages[i]), "region": str(regions[i])}, prediction=str(preds[i]),
                    probabilities=float(scores[i]), id=f"p{i}")
    clock.t += 3600.0
    # labels for 300 of them, in another order; two unknown classes become __other__
    order = rng.permutation(n)[:300]
    actual = rng.choice(CLASSES + ["maybe"], 300, p=[0.45, 0.45, 0.05, 0.05])
    res = mon.record_labels([f"p{i}" for i in order], [str(a) for a in actual])
    assert (res.matched, res.unmatched, res.rejected) == (300, 0, [])

    want: Counter[tuple[str, str, str]] = Counter()
    for i, a in zip(order.tolist(), actual.tolist()):
        a = a if a in CLASSES[:2] else "__other__"  # the baseline's classes: approve, reject
        for seg in ("all",) + segment_of(float(ages[i]), str(regions[i])):
            want[(seg, a, str(preds[i]))] += 1
    got = samples(reg, "modelmon_confusion_total")
    classes = ["approve", "reject", "__other__"]
    segs = ["all", "age<=30", "age=(30,50]", "age>50", "age=__missing__", "region=eu",
            "region=us", "region=__other__", "region=__missing__"]
    # every (segment, actual, predicted) series exists, at 0 when nothing was counted
    assert len(got) == len(segs) * len(classes) ** 2
    for seg in segs:
        for a in classes:
            for p in classes:
                key = (("actual", a), ("model", "loan"), ("model_version", "3"),
                       ("predicted", p), ("segment", seg))
                assert got[key] == want[(seg, a, p)], (seg, a, p)
    assert samples(reg, "modelmon_labels_total") == {
        (("model", "loan"), ("model_version", "3")): 300.0}
    # the label delay: every label came an hour after its prediction
    delay = samples(reg, "modelmon_label_delay_seconds_bucket")
    assert delay[(("le", "900.0"), ("model", "loan"), ("model_version", "3"))] == 0
    assert delay[(("le", "3600.0"), ("model", "loan"), ("model_version", "3"))] == 300
    # the score histogram by actual class, in the score's baseline buckets
    hist = samples(reg, "modelmon_labeled_score_count")
    for a in classes:
        key = (("actual", a), ("model", "loan"), ("model_version", "3"), ("segment", "all"))
        assert hist[key] == sum(v for (s, aa, _), v in want.items() if s == "all" and aa == a)


def test_unmatched_duplicate_and_rejected_labels() -> None:
    reg = CollectorRegistry()
    mon = Monitor(classifier_baseline(), registry=reg, concept_drift=False)
    mon.observe({"age": 40.0}, prediction="approve", id="a")
    mon.observe({"age": 40.0}, prediction="reject", id="b")
    res = mon.record_labels(["a", "a", "zzz", "b", 7, "x" * 129],
                            ["reject", "reject", "approve", ["not", "a", "class"], "approve",
                             "approve"])
    assert res.matched == 1 and res.unmatched == 2  # the second "a" and the unknown id
    assert [(i, f) for i, f, _ in res.rejected] == [(3, "label"), (4, "id"), (5, "id")]
    # b's prediction is still remembered: a correct label later joins it
    assert mon.record_label("b", "reject") is True
    assert mon.record_label("b", "reject") is False  # already labelled
    with pytest.raises(ValueError, match="label: expected a class"):
        mon.record_label("b", None)
    assert samples(reg, "modelmon_labels_unmatched_total") == {
        (("model", "loan"), ("model_version", "3")): 3.0}
    assert samples(reg, "modelmon_labels_total") == {
        (("model", "loan"), ("model_version", "3")): 2.0}


def test_regression_errors_per_segment() -> None:
    reg = CollectorRegistry()
    mon = Monitor(regressor_baseline(), registry=reg,
                  segments=[Segment("rooms", bins=(2, 4))])
    rng = np.random.default_rng(3)
    n = 200
    rooms = rng.integers(1, 8, n).astype(float)
    pred = rng.normal(300, 50, n)
    actual = pred + rng.normal(0, 20, n)
    mon.observe_batch({"rooms": rooms}, predictions=pred, ids=[f"h{i}" for i in range(n)])
    assert mon.record_labels([f"h{i}" for i in range(n)], actual.tolist()).matched == n
    err = pred - actual
    seg = np.where(rooms <= 2, "rooms<=2", np.where(rooms <= 4, "rooms=(2,4]", "rooms>4"))
    abs_sum = samples(reg, "modelmon_prediction_absolute_error_total")
    sq_sum = samples(reg, "modelmon_prediction_squared_error_total")
    count = samples(reg, "modelmon_prediction_error_count")
    for s, mask in [("all", np.ones(n, bool))] + [(v, seg == v) for v in np.unique(seg)]:
        key = (("model", "house"), ("model_version", "1"), ("segment", str(s)))
        assert abs_sum[key] == pytest.approx(np.abs(err[mask]).sum(), rel=1e-12)
        assert sq_sum[key] == pytest.approx((err[mask] ** 2).sum(), rel=1e-12)
        assert count[key] == mask.sum()
    # a label that is not a number is rejected, not counted
    res = mon.record_labels(["h0"], ["cheap"])
    assert res.rejected == [(0, "label", "expected a finite number")]


def test_expired_predictions_are_counted_and_their_labels_unmatched() -> None:
    clock = Clock()
    reg = CollectorRegistry()
    store = MemoryJoinStore(ttl_seconds=60.0, max_rows=3, clock=clock)
    mon = Monitor(classifier_baseline(), registry=reg, clock=clock, join_store=store)
    for i in range(5):  # the cap is 3: the two oldest are evicted
        mon.observe({"age": 30.0}, prediction="approve", id=f"e{i}")
    mon.flush()
    clock.t += 120.0  # past the TTL: the rest expire
    assert mon.record_labels(["e0", "e4"], ["approve", "approve"]).unmatched == 2
    got = samples(reg, "modelmon_predictions_expired_total")
    assert got[(("model", "loan"), ("model_version", "3"), ("reason", "cap"))] == 2
    assert got[(("model", "loan"), ("model_version", "3"), ("reason", "ttl"))] >= 1


def test_a_flood_of_unknown_labels_creates_no_series_and_the_output_passes_promtool(
        promtool: str) -> None:
    reg = CollectorRegistry()
    mon = Monitor(classifier_baseline(), registry=reg)
    mon.observe({"age": 30.0}, prediction="approve", probabilities=0.2, id="only")
    before = len(generate_latest(reg).splitlines())
    res = mon.record_labels([f"x{i}" for i in range(5000)], [f"class-{i}" for i in range(5000)])
    assert res.unmatched == 5000
    text = generate_latest(reg)
    assert len(text.splitlines()) == before
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_model_without_prediction_rejects_labels() -> None:
    b = Baseline.build({"x": [1.0, 2.0, 3.0]}, model="m", bins=2)
    mon = Monitor(b, registry=None)
    mon.observe({"x": 1.0}, id="a")
    res = mon.record_labels(["a"], [1])
    assert res.matched == 0 and res.rejected and "no prediction" in res.rejected[0][2]


def test_segment_configuration_errors() -> None:
    b = classifier_baseline()
    with pytest.raises(ValueError, match="in no model's baseline"):
        Monitor(b, registry=None, segments=[Segment("colour", values=("red",))])
    with pytest.raises(ValueError, match="numeric; give bins"):
        Monitor(b, registry=None, segments=[Segment("age", values=("1",))])
    with pytest.raises(ValueError, match="either values"):
        Segment("age")
    with pytest.raises(ValueError, match="strictly increasing"):
        Segment("age", bins=(5, 1))


def _stream(mon: Monitor, preds: np.ndarray, actual: np.ndarray, batch: int = 2000) -> None:
    for k in range(0, len(preds), batch):
        ids = [f"s{i}" for i in range(k, min(k + batch, len(preds)))]
        mon.observe_batch({"rooms": np.full(len(ids), 3.0)} if preds.dtype.kind == "f"
                          else {"age": np.full(len(ids), 40.0)},
                          predictions=preds[k:k + batch], ids=ids)
        mon.record_labels(ids, actual[k:k + batch].tolist())


def detections(reg: CollectorRegistry, model: str) -> dict[str, float]:
    return {dict(k)["detector"]: v
            for k, v in samples(reg, "modelmon_concept_drift_detections_total").items()
            if dict(k)["model"] == model}


def test_concept_change_in_a_classifier_is_detected_and_a_stationary_stream_is_not() -> None:
    rng = np.random.default_rng(11)
    n = 60_000
    preds = rng.choice(CLASSES[:2], n)
    other = np.where(preds == "approve", "reject", "approve")
    # error rate 0.1 for 40,000 labels, then 0.3 (the model's concept went stale)
    wrong = np.concatenate([rng.random(40_000) < 0.1, rng.random(20_000) < 0.3])
    actual = np.where(wrong, other, preds)
    reg = CollectorRegistry()
    _stream(Monitor(classifier_baseline(), registry=reg), preds, actual)
    found = detections(reg, "loan")
    assert found["page_hinkley"] >= 1 and found["adwin"] >= 1
    # the same model with a stationary error rate over 100,000 labels: nothing
    n = 100_000
    preds = rng.choice(CLASSES[:2], n)
    wrong = rng.random(n) < 0.1
    reg = CollectorRegistry()
    _stream(Monitor(classifier_baseline(), registry=reg), preds,
            np.where(wrong, np.where(preds == "approve", "reject", "approve"), preds))
    assert detections(reg, "loan") == {"page_hinkley": 0.0, "adwin": 0.0}


def test_regression_errors_of_any_scale_raise_no_false_alarm() -> None:
    rng = np.random.default_rng(12)
    n = 100_000
    preds = rng.normal(300.0, 50.0, n)
    reg = CollectorRegistry()
    _stream(Monitor(regressor_baseline(), registry=reg), preds, preds + rng.normal(0, 40.0, n))
    assert detections(reg, "house") == {"page_hinkley": 0.0, "adwin": 0.0}
    # a doubling of the error is found
    reg = CollectorRegistry()
    noise = np.concatenate([rng.normal(0, 40.0, 30_000), rng.normal(0, 80.0, 10_000)])
    _stream(Monitor(regressor_baseline(), registry=reg), preds[:40_000], preds[:40_000] + noise)
    assert min(detections(reg, "house").values()) >= 1
