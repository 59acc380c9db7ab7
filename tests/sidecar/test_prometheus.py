"""A real Prometheus scrapes the sidecar; its query API returns the posted events' buckets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelmon.monitor.collector import le_labels

from ..conftest import Prometheus
from .conftest import PURPOSES, start_sidecar

pytestmark = pytest.mark.integration


def test_prometheus_sees_exactly_the_posted_bucket_counts(baseline, prometheus_binary, tmp_path):
    lv = start_sidecar([baseline])
    host, port = lv.server.address
    prom = Prometheus(prometheus_binary, tmp_path / "prom", [f"{host}:{port}"])
    try:
        rng = np.random.default_rng(11)
        ages = rng.normal(42, 11, 1500).round(1)
        purposes = rng.choice(PURPOSES + ["yacht"], 1500)
        evs = [{"features": {"age": float(a), "purpose": str(p)}, "prediction": "yes"}
               for a, p in zip(ages, purposes)]
        for i in range(0, 1500, 500):  # JSON and NDJSON, three batches
            if i == 500:
                body = b"\n".join(json.dumps(e).encode() for e in evs[i:i + 500])
                r = lv.post("loan", body, "application/x-ndjson")
            else:
                r = lv.post("loan", json.dumps({"events": evs[i:i + 500]}).encode())
            assert r.status_code == 200 and r.json()["accepted"] == 500
        sel = 'model="loan",model_version="3"'
        prom.wait_for(f"modelmon_predictions_total{{{sel}}}",
                      lambda res: res and float(res[0]["value"][1]) == 1500)

        res = prom.query(f'modelmon_feature_value_bucket{{{sel},feature="age"}}')
        got = {s["metric"]["le"]: float(s["value"][1]) for s in res}
        edges = list(baseline.features["age"].edges)
        expected = {le: float((ages <= e).sum()) for le, e in zip(le_labels(edges), edges)}
        expected["+Inf"] = 1500.0
        assert got == expected
        assert all(s["metric"]["job"] == "modelmon" for s in res)

        res = prom.query(f'modelmon_feature_category_total{{{sel},feature="purpose"}}')
        got = {s["metric"]["category"]: float(s["value"][1]) for s in res}
        for p in PURPOSES:
            assert got[p] == float((purposes == p).sum())
        assert got["__other__"] == float((purposes == "yacht").sum())

        res = prom.query(f'sum(modelmon_feature_value_count{{{sel},feature="age"}})')
        assert float(res[0]["value"][1]) == 1500
        res = prom.query('up{job="modelmon"}')
        assert float(res[0]["value"][1]) == 1
    finally:
        prom.stop()
        lv.server.stop()
