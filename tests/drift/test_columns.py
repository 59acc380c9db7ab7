"""Answers as columns: the fast decoder agrees with the general path, and the vectorised
histogram grouping agrees with a plain loop per series on shuffled, damaged answers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from modelmon.drift.columns import (
    SLOT,
    Columns,
    columns_of,
    decode_columns,
    group_histograms,
)
from modelmon.drift.promql import parse_vector

KEY = ("model", "model_version", "feature")


def answer(items: list[tuple[dict[str, str], str]]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [1700000000.5, v]} for m, v in items]}}).encode()


def general(body: bytes, key: tuple[str, ...], bucket: str | None) -> Columns:
    vec = parse_vector(json.loads(body))
    pairs = [(s.labels, s.value) for s in vec.samples] + [(m, math.nan) for m in vec.non_finite]
    return columns_of(pairs, key, bucket)


def as_rows(c: Columns) -> list[tuple[Any, ...]]:
    buckets = c.buckets if c.bucket_label else [None] * len(c)
    return sorted((repr(c.keys[s]), repr(b), "nan" if math.isnan(v) else v)
                  for s, b, v in zip(c.series.tolist(), buckets, c.values.tolist()))


def test_fast_decoder_and_general_path_agree() -> None:
    items = [({"__name__": "x", "model": "m", "model_version": "1", "feature": "a", "le": "1",
               "instance": "ignored"}, "3"),
             ({"model": "m", "model_version": "1", "feature": "a", "le": "+Inf"}, "5.5"),
             ({"model": "m", "model_version": "2", "feature": "a", "le": "1"}, "NaN"),
             ({"model": "m", "feature": "b", "le": "0.5"}, "1e3"),  # no model_version
             ({"model": "m", "model_version": "1", "feature": "c"}, "2")]  # no le
    body = answer(items)
    fast = decode_columns(body, KEY, "le")
    assert fast is not None
    assert as_rows(fast) == as_rows(general(body, KEY, "le"))
    assert fast.keys == [("m", "1", "a"), ("m", "2", "a"), ("m", None, "b"), ("m", "1", "c")]
    assert fast.buckets == ["1", "+Inf", "1", "0.5", None]
    assert fast.values[0] == 3.0 and math.isnan(fast.values[2])


@pytest.mark.parametrize("body", [
    answer([({"model": "m"}, "+Inf")]),  # a quoted infinity: the general path reads it
    b'{"status":"error","errorType":"bad_data","error":"parse error"}',
    b'{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}',
    b'{"status":"success","data":{"resultType":"matrix","result":[]}}',
    b"not json",
])
def test_anything_but_a_plain_vector_goes_the_general_way(body: bytes) -> None:
    assert decode_columns(body, ("model",)) is None


def test_key_values_and_a_single_key_label() -> None:
    c = decode_columns(answer([({"model": "a"}, "1"), ({"model": "b"}, "0")]), ("model",))
    assert c is not None and c.key_values() == {("a",): 1.0, ("b",): 0.0}
    assert c.buckets == [] and c.bucket_ids.size == 0
    with pytest.raises(ValueError, match="not one of"):
        decode_columns(b"{}", ("pod",))


def reference_grouping(c: Columns) -> tuple[dict[tuple[Any, ...], tuple[list[float], list[float]]],
                                             dict[tuple[Any, ...], str]]:
    """What group_histograms must find, written as the obvious loop per series."""
    per: dict[tuple[Any, ...], list[tuple[str | None, float]]] = {}
    for s, b, v in zip(c.series.tolist(), c.buckets, c.values.tolist()):
        per.setdefault(c.keys[s], []).append((b, v))
    good, bad = {}, {}
    for key, samples in per.items():
        if None in key:
            continue
        les = []
        for b, _ in samples:
            try:
                les.append(float(b) if b is not None else math.nan)
            except ValueError:
                les.append(math.nan)
        values = [v for _, v in samples]
        if any(not math.isfinite(v) for v in values):
            bad[key] = "non_finite"
        elif any(math.isnan(x) for x in les):
            bad[key] = "missing_buckets"
        elif len(set(les)) != len(les):
            bad[key] = "partial_buckets"
        elif len(les) < 2 or max(les) != math.inf:
            bad[key] = "missing_buckets"
        else:
            order = sorted(range(len(les)), key=les.__getitem__)
            good[key] = ([les[i] for i in order], [values[i] for i in order])
    return good, bad


@pytest.mark.parametrize("seed", range(6))
def test_grouping_equals_a_loop_per_series_on_shuffled_damaged_answers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items: list[tuple[dict[str, str], str]] = []
    for f in range(60):
        k = int(rng.integers(1, 7))
        bounds = sorted(rng.choice(np.arange(-5, 20), size=k - 1, replace=False).tolist())
        les = [repr(float(b)) if rng.random() < 0.5 else str(b) for b in bounds] + ["+Inf"]
        labels = {"model": f"m{f % 3}", "model_version": str(f % 2), "feature": f"f{f}"}
        damage = rng.random()
        cum = np.cumsum(rng.integers(0, 50, size=len(les))).tolist()
        for j, (le, v) in enumerate(zip(les, cum)):
            lab = dict(labels, le=le)
            value = str(v)
            if damage < 0.08 and j == 0:
                value = "NaN"
            elif damage < 0.16 and j == 0:
                del lab["le"]
            elif damage < 0.24 and j == 0:
                lab["le"] = "abc"
            elif damage < 0.30 and j == 0:
                del lab["model_version"]
            elif damage < 0.38 and j == len(les) - 1:
                continue  # no +Inf
            items.append((lab, value))
            if damage > 0.95 and j == 0:
                items.append((dict(lab), value))  # the same bound twice
    order = rng.permutation(len(items))
    body = answer([items[i] for i in order])
    cols = decode_columns(body, KEY, "le")
    assert cols is not None
    hist = group_histograms(cols)
    good, bad = reference_grouping(cols)
    assert good and bad  # the damage reached both outcomes
    assert {hist.keys[i]: r for i, r in hist.bad.items()} == bad
    got = {}
    for k, g in hist.groups.items():
        assert g.les.shape == g.cumulative.shape == (g.index.size, k)
        for r, i in enumerate(g.index.tolist()):
            got[hist.keys[i]] = (g.les[r].tolist(), g.cumulative[r].tolist())
            assert hist.slots[i] == k * SLOT + r
    assert got == good
    # locating the same keys in another order goes through the lookup
    keys = list(reversed(hist.keys)) + [("nope", "1", "x")]
    assert hist.locate(keys).tolist() == list(reversed(hist.slots.tolist())) + [-1]
    assert hist.locate(list(hist.keys)) is hist.slots
