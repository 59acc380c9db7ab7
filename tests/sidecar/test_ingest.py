"""Ingestor: decoding, validation and exact counts, without HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from modelmon import Baseline, Monitor
from modelmon.sidecar.ingest import MAX_ERRORS, Ingestor, RequestError

from .conftest import make_baseline


@pytest.fixture
def setup() -> tuple[Baseline, Ingestor, CollectorRegistry]:
    b = make_baseline()
    reg = CollectorRegistry()
    return b, Ingestor(b, Monitor(b, registry=reg), max_events=50), reg


def val(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, {"model": "loan", "model_version": "3", **labels})
    return 0.0 if v is None else v


def bucket_counts(edges: list[float], values: list[float]) -> list[int]:
    """Cumulative counts at each ``le`` (the oracle: value <= bound)."""
    v = np.asarray(values)
    return [int((v <= e).sum()) for e in edges] + [len(values)]


def body(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_valid_batch_counts_every_bucket_exactly(setup) -> None:
    b, ing, reg = setup
    rng = np.random.default_rng(3)
    ages = rng.normal(40, 12, 40).round(2).tolist()
    events = [{"features": {"age": a, "income": 20000.0, "purpose": "car"}, "prediction": "yes",
               "probabilities": 0.25, "latency_seconds": 0.003} for a in ages]
    r = ing.ingest_json(body(*events))
    assert r.reply() == {"accepted": 40, "rejected": []}
    edges = list(b.features["age"].edges)
    from modelmon.catalogue import le_labels
    got = [val(reg, "modelmon_feature_value_bucket", feature="age", le=le)
           for le in le_labels(edges)]
    assert got == bucket_counts(edges, ages)
    assert val(reg, "modelmon_feature_value_sum", feature="age") == pytest.approx(sum(ages))
    assert val(reg, "modelmon_predictions_total") == 40
    assert val(reg, "modelmon_feature_category_total", feature="purpose", category="car") == 40
    assert val(reg, "modelmon_predicted_class_total", **{"class": "yes"}) == 40
    assert val(reg, "modelmon_inference_latency_seconds_count") == 40


def test_bad_events_are_rejected_with_path_and_the_rest_counted(setup) -> None:
    _, ing, reg = setup
    events = [
        {"features": {"age": 30}},                                  # 0 ok
        {"features": {"age": "abc"}},                               # 1 wrong type
        {"features": {"age": 31, "purpose": {"x": 1}}},             # 2 categorical object
        7,                                                          # 3 not an object
        {"features": {"age": 32}, "prediciton": "yes"},             # 4 unknown field (typo)
        {"features": {"age": 33}, "id": "x" * 129},                 # 5 id too long
        {"features": {"age": 34}, "latency_seconds": -1},           # 6 negative latency
        {"features": {"age": 35}, "timestamp": "yesterday"},        # 7 bad timestamp
        {"features": {"age": 36}, "probabilities": [0.1, 0.9]},     # 8 two scores for one
        {"features": {"age": 37}, "probabilities": {"p_no": 0.1}},  # 9 unknown score column
        {"features": [1, 2]},                                       # 10 features not an object
        {"prediction": "yes"},                                      # 11 no features
        {"features": {"age": 38}, "timestamp": "2026-11-25T10:00:00Z", "id": "a-1"},  # 12 ok
    ]
    r = ing.ingest_json(body(*events)).reply()
    assert r["accepted"] == 2
    fields = {e["index"]: (e["field"], e["error"]) for e in r["rejected"]}
    assert sorted(fields) == list(range(1, 12))
    assert fields[1] == ("events[1].features.age", 'expected a number, got "abc"')
    assert fields[2][0] == "events[2].features.purpose"
    assert fields[3] == ("events[3]", "expected an event object, got a number")
    assert fields[4][0] == "events[4].prediciton" and "unknown field" in fields[4][1]
    assert fields[5][0] == "events[5].id" and "128" in fields[5][1]
    assert fields[6][0] == "events[6].latency_seconds"
    assert fields[7][0] == "events[7].timestamp" and "RFC 3339" in fields[7][1]
    assert fields[8] == ("events[8].probabilities", "expected 1 values ['p_yes'], got 2")
    assert fields[9][0] == "events[9].probabilities" and "p_no" in fields[9][1]
    assert fields[10][0] == "events[10].features"
    assert fields[11] == ("events[11].features", "required field is missing")
    assert val(reg, "modelmon_feature_value_count", feature="age") == 2
    assert val(reg, "modelmon_feature_value_sum", feature="age") == 68
    assert val(reg, "modelmon_schema_violations_total", feature="age", reason="wrong_type") == 1
    assert val(reg, "modelmon_schema_violations_total", feature="purpose",
               reason="wrong_type") == 1


def test_unknown_feature_warns_and_still_counts(setup) -> None:
    _, ing, reg = setup
    r = ing.ingest_json(body({"features": {"age": 30, "colour": "red"}})).reply()
    assert r["accepted"] == 1 and r["rejected"] == []
    assert r["warnings"][0]["field"] == "events[0].features.colour"
    assert val(reg, "modelmon_schema_violations_total", feature="__unknown__",
               reason="unknown_feature") == 1
    assert val(reg, "modelmon_feature_value_count", feature="age") == 1


def test_missing_and_unknown_category(setup) -> None:
    _, ing, reg = setup
    r = ing.ingest_json(body({"features": {"age": None, "purpose": "yacht"}},
                             {"features": {}})).reply()
    assert r == {"accepted": 2, "rejected": []}
    assert val(reg, "modelmon_feature_missing_total", feature="age") == 2
    assert val(reg, "modelmon_feature_missing_total", feature="purpose") == 1
    assert val(reg, "modelmon_feature_category_total", feature="purpose",
               category="__other__") == 1


def test_numbers_out_of_range_are_rejected_not_counted(setup) -> None:
    _, ing, reg = setup
    raw = (b'{"events": [{"features": {"age": 1e999}}, {"features": {"age": 1' + b"0" * 400
           + b'}}, {"features": {"age": 5}}]}')
    r = ing.ingest_json(raw).reply()
    assert r["accepted"] == 1
    assert [(e["index"], e["field"]) for e in r["rejected"]] == [
        (0, "events[0].features.age"), (1, "events[1].features.age")]
    assert val(reg, "modelmon_schema_violations_total", feature="age", reason="non_finite") == 2
    assert val(reg, "modelmon_feature_value_count", feature="age") == 1


@pytest.mark.parametrize("raw, code, fragment", [
    (b'{"events": [{"features": {}},]}', "malformed_json", "line 1, column 30"),
    (b'{"events": [\n{"features": {"age": NaN}}]}', "malformed_json", "line 2, column 22"),
    (b'{"events": [{"features"', "malformed_json", "truncated"),
    (b"[]", "invalid_body", "expected a JSON object"),
    (b'{"events": {}}', "invalid_body", "expected an array"),
    (b'{"evnts": []}', "invalid_body", "unknown key"),
    (b"[" * 50000 + b"]" * 50000, "malformed_json", "nested too deeply"),
    (b'{"events": [{"features": {"purpose": "\xff"}}]}', "malformed_json", "UTF-8"),
])
def test_whole_request_errors(setup, raw: bytes, code: str, fragment: str) -> None:
    _, ing, reg = setup
    with pytest.raises(RequestError) as ei:
        ing.ingest_json(raw)
    assert ei.value.status == 400 and ei.value.code == code
    assert fragment in ei.value.message
    assert val(reg, "modelmon_predictions_total") == 0


def test_event_limit_counts_nothing(setup) -> None:
    _, ing, reg = setup
    with pytest.raises(RequestError) as ei:
        ing.ingest_json(body(*[{"features": {"age": 1}}] * 51))
    assert ei.value.status == 413 and ei.value.code == "too_many_events"
    with pytest.raises(RequestError):
        ing.ingest_ndjson(b'{"features": {}}\n' * 51)
    assert val(reg, "modelmon_predictions_total") == 0
    assert ing.ingest_json(body(*[{"features": {"age": 1}}] * 50)).accepted == 50


def test_ndjson_bad_line_costs_only_itself(setup) -> None:
    _, ing, reg = setup
    raw = b'{"features": {"age": 1}}\n{oops\n\n  \n{"features": {"age": 2}}\n[1]\n{"features": {"age": 3}}'
    r = ing.ingest_ndjson(raw).reply()
    assert r["accepted"] == 3
    assert [(e["index"], e["field"]) for e in r["rejected"]] == [(1, "events[1]"),
                                                                  (3, "events[3]")]
    assert "malformed JSON at column 2" in r["rejected"][0]["error"]
    assert val(reg, "modelmon_feature_value_sum", feature="age") == 6


def test_rejected_list_is_capped(setup) -> None:
    b = make_baseline()
    ing = Ingestor(b, Monitor(b, registry=CollectorRegistry()), max_events=5000)
    r = ing.ingest_json(body(*[{"features": {"age": "x", "income": "y"}}] * 2000)).reply()
    assert len(r["rejected"]) == MAX_ERRORS and r["truncated"] is True
    assert r["rejected_events"] == 2000 and r["accepted"] == 0


def test_regression_prediction_must_be_a_number() -> None:
    rng = np.random.default_rng(1)
    b = Baseline.build({"x": rng.random(200), "y_hat": rng.random(200)}, model="reg",
                       prediction="y_hat", bins=4)
    reg = CollectorRegistry()
    ing = Ingestor(b, Monitor(b, registry=reg))
    r = ing.ingest_json(body({"features": {"x": 0.5}, "prediction": 0.7},
                             {"features": {"x": 0.5}, "prediction": "high"})).reply()
    assert r["accepted"] == 1
    assert r["rejected"] == [{"index": 1, "field": "events[1].prediction",
                              "error": 'expected a number, got "high"'}]
    assert reg.get_sample_value("modelmon_prediction_value_count",
                                {"model": "reg", "model_version": "1", "output": "y_hat"}) == 1
