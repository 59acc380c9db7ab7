"""Property-based: thousands of generated bodies at the live sidecar.

The server never answers 5xx and never dies; the counts of the valid events
are exactly right (checked against an oracle computed here from the posted
values); the number of exposed series stays bounded whatever strings arrive.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmon.baseline import Baseline
from modelmon.catalogue import le_labels
from modelmon.sidecar.config import Limits

from .conftest import PURPOSES, Live, make_baseline, start_sidecar

pytestmark = pytest.mark.slow

OK_CODES = {200, 400, 404, 405, 413, 415}
SETTINGS = settings(max_examples=1200, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
text = st.text(max_size=30)


@st.composite
def valid_event(draw: st.DrawFn) -> dict:
    feats: dict = {}
    if draw(st.booleans()):
        feats["age"] = draw(st.one_of(finite, st.integers(-10**6, 10**6), st.none()))
    if draw(st.booleans()):
        feats["income"] = draw(finite)
    if draw(st.booleans()):
        feats["purpose"] = draw(st.one_of(st.sampled_from(PURPOSES), text, st.none(),
                                          st.integers(-5, 5), st.booleans()))
    ev: dict = {"features": feats}
    if draw(st.booleans()):
        ev["prediction"] = draw(st.sampled_from(["yes", "no", "maybe"]))
    if draw(st.booleans()):
        ev["probabilities"] = draw(st.one_of(st.floats(0, 1), st.just({"p_yes": 0.5}),
                                             st.just([0.25])))
    if draw(st.booleans()):
        ev["latency_seconds"] = draw(st.floats(0, 100))
    if draw(st.booleans()):
        ev["id"] = draw(st.text(max_size=128))
    if draw(st.booleans()):
        ev["timestamp"] = draw(st.one_of(st.floats(0, 4e9), st.just("2026-11-25T10:00:00Z"),
                                         st.just("2026-11-25T10:00:00.123+01:00")))
    return ev


json_values = st.recursive(st.none() | st.booleans() | finite | text,
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=4),
                           max_leaves=12)


@st.composite
def invalid_event(draw: st.DrawFn) -> object:
    base = draw(valid_event())
    kind = draw(st.integers(0, 9))
    if kind == 0:
        base["features"]["age"] = draw(st.one_of(text, st.lists(finite, max_size=3),
                                                 st.dictionaries(text, finite, max_size=2)))
    elif kind == 1:
        base["features"]["purpose"] = draw(st.one_of(st.lists(text, max_size=2),
                                                     st.dictionaries(text, text, max_size=2)))
    elif kind == 2:
        return draw(st.one_of(st.none(), finite, text, st.lists(json_values, max_size=3)))
    elif kind == 3:
        base[draw(st.sampled_from(["prediciton", "feature", "extra", "model"]))] = 1
    elif kind == 4:
        base["id"] = "x" * draw(st.integers(129, 300))
    elif kind == 5:
        base["latency_seconds"] = draw(st.floats(max_value=-0.001, allow_infinity=False))
    elif kind == 6:
        base["timestamp"] = draw(st.sampled_from(["yesterday", "2026-13-01", "", "12:00"]))
    elif kind == 7:
        base["probabilities"] = draw(st.sampled_from([[0.1, 0.2], {"p_no": 0.3}, "high"]))
    elif kind == 8:
        base["prediction"] = draw(st.one_of(st.lists(text, max_size=2), st.just({"c": 1})))
    else:
        base["features"] = draw(st.one_of(st.lists(finite, max_size=2), text, st.none()))
    return base


class Oracle:
    """Expected counts of the valid events, computed independently of the Monitor."""

    def __init__(self) -> None:
        self.ages: list[float] = []
        self.incomes: list[float] = []
        self.events = 0
        self.rejected = 0

    def add(self, ev: dict) -> None:
        self.events += 1
        f = ev["features"]
        if f.get("age") is not None:
            self.ages.append(float(f["age"]))
        if f.get("income") is not None:
            self.incomes.append(float(f["income"]))


@pytest.fixture(scope="module")
def setup():
    lv = start_sidecar([make_baseline(), make_baseline("junk", seed=8)],
                       Limits(max_body_bytes=2 * 1024 * 1024, max_events_per_request=200))
    state = {"oracle": Oracle(), "junk_accepted": 0,
             "series0": _series(lv)}
    yield lv, state
    lv.http.close()
    lv.server.stop()


def _label_series(b: Baseline) -> int:
    """Series a model adds once it has seen a prediction id (all at 0 until labels come)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from modelmon.monitor import Monitor

    counts = []
    for with_id in (False, True):
        reg = CollectorRegistry()
        mon = Monitor(b, registry=reg)
        mon.observe({}, id="x" if with_id else None)
        counts.append(sum(1 for ln in generate_latest(reg).decode().splitlines()
                          if ln and not ln.startswith("#")))
    return counts[1] - counts[0]


def _series(lv: Live) -> int:
    r = lv.http.get(f"{lv.url}/metrics", timeout=30)
    assert r.status_code == 200
    return sum(1 for ln in r.text.splitlines() if ln and not ln.startswith("#"))


@SETTINGS
@given(batch=st.lists(st.tuples(st.booleans(), st.data()), min_size=0, max_size=12),
       ndjson=st.booleans())
def test_mixed_batches_count_exactly_the_valid_events(setup, batch, ndjson) -> None:
    lv, state = setup
    evs, valid_idx = [], []
    for i, (ok, data) in enumerate(batch):
        ev = data.draw(valid_event() if ok else invalid_event())
        evs.append(ev)
        if ok:
            valid_idx.append(i)
    if ndjson:
        body = b"\n".join(json.dumps(e).encode() for e in evs)
        r = lv.post("loan", body, "application/x-ndjson")
    else:
        r = lv.post("loan", json.dumps({"events": evs}).encode())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] == len(valid_idx)
    assert sorted({e["index"] for e in doc["rejected"]}) == sorted(
        set(range(len(evs))) - set(valid_idx))
    for i in valid_idx:
        state["oracle"].add(evs[i])


@SETTINGS
@given(body=st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.just("events"), st.lists(json_values, max_size=5)).map(
        lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"events": [{"features": {"age": NaN}}]}',
                     b'{"events": [{"features": {"age": Infinity}}]}',
                     b'{"events": [{"features": {"age": -Infinity}}]}',
                     b'{"features": {"age": NaN}}\n{"features": {"age": 1}}',
                     b"[" * 20000 + b"]" * 20000,
                     b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
                     b'{"events": [{"features": {"purpose": "' + b"x" * 1_000_000 + b'"}}]}',
                     b'{"events": [{"features": {"age": 1e400}}]}'])),
       ctype=st.sampled_from(["application/json", "application/x-ndjson", "text/plain"]),
       model=st.sampled_from(["junk", "junk", "unknown-model", "../etc", "junk%2Floan"]))
def test_arbitrary_bodies_never_5xx(setup, body, ctype, model) -> None:
    lv, state = setup
    r = lv.post(model, body, ctype)
    assert r.status_code in OK_CODES, (r.status_code, r.text[:300])
    doc = r.json()
    if r.status_code == 200:
        assert set(doc) <= {"accepted", "rejected", "warnings", "truncated", "rejected_events"}
        state["junk_accepted"] += doc["accepted"]
    else:
        assert isinstance(doc["error"], str) and isinstance(doc["message"], str)


def test_100k_distinct_categories_keep_series_bounded(setup) -> None:
    lv, state = setup
    for k in range(500):
        body = b"\n".join(json.dumps({"features": {"purpose": f"cat-{k}-{i}", "zz" + str(i): 1}})
                          .encode() for i in range(200))
        r = lv.post("junk", body, "application/x-ndjson")
        assert r.status_code == 200
        state["junk_accepted"] += r.json()["accepted"]
    text = lv.http.get(f"{lv.url}/metrics").text
    assert "cat-" not in text and "zz1" not in text


def test_zz_totals_match_the_oracle(setup) -> None:
    """Runs last in this module (pytest keeps file order): compare every count."""
    lv, state = setup
    o: Oracle = state["oracle"]
    assert o.events > 500  # the property tests really posted valid events
    assert lv.value("modelmon_predictions_total", model="loan", model_version="3") == o.events
    assert lv.value("modelmon_predictions_total", model="junk",
                    model_version="3") == state["junk_accepted"]
    b = lv.app.monitor.models["loan"]
    for feat, values in (("age", o.ages), ("income", o.incomes)):
        edges = list(b.features[feat].edges)
        v = np.asarray(values)
        expected = [int((v <= e).sum()) for e in edges] + [len(values)]
        got = [lv.value("modelmon_feature_value_bucket", model="loan", model_version="3",
                        feature=feat, le=le) for le in le_labels(edges)]
        assert got == expected, feat
        assert math.isclose(lv.value("modelmon_feature_value_sum", model="loan",
                                     model_version="3", feature=feat),
                            float(np.sum(v)), rel_tol=1e-9, abs_tol=1e-3)
    # bounded: only request-code series for codes the server can answer may appear, and the
    # ground-truth series of each model once an event with an id came (a fixed set per model)
    assert _series(lv) <= state["series0"] + 6 * 5 + sum(
        _label_series(b) for b in lv.app.monitor.models.values())
    text = lv.http.get(f"{lv.url}/metrics").text
    codes = set(re.findall(r'code="(\d+)"', text))
    assert codes <= {str(c) for c in OK_CODES | {500}}
    assert lv.value("modelmon_sidecar_requests_total", endpoint="events", code="500") == 0
