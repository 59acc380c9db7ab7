"""A real store scrapes the sidecar; its query API returns the posted events' buckets.

Run on Prometheus and on VictoriaMetrics (single node, ``-promscrape.config``),
through the :class:`tests.conftest.Prometheus` / ``VictoriaMetrics`` helpers; a
restart of the store keeps the samples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelmon.catalogue import le_labels

from ..conftest import Prometheus, VictoriaMetrics, require_binary
from .conftest import PURPOSES, start_sidecar

pytestmark = pytest.mark.integration

SEL = 'model="loan",model_version="3"'
STORES = {"prometheus": Prometheus, "victoria-metrics": VictoriaMetrics}


@pytest.mark.parametrize("kind", list(STORES))
def test_store_sees_exactly_the_posted_bucket_counts(baseline, tmp_path, kind):
    binary = require_binary(kind)
    lv = start_sidecar([baseline])
    host, port = lv.server.address
    store = STORES[kind](binary, tmp_path / "store", [f"{host}:{port}"])
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
        store.wait_for(f"modelmon_predictions_total{{{SEL}}}",
                       lambda res: res and float(res[0]["value"][1]) == 1500)

        edges = list(baseline.features["age"].edges)
        expected = {le: float((ages <= e).sum()) for le, e in zip(le_labels(edges), edges)}
        expected["+Inf"] = 1500.0

        def buckets() -> dict[str, float]:
            res = store.query(f'modelmon_feature_value_bucket{{{SEL},feature="age"}}')
            assert all(s["metric"]["job"] == "modelmon" for s in res)
            return {s["metric"]["le"]: float(s["value"][1]) for s in res}

        assert buckets() == expected

        res = store.query(f'modelmon_feature_category_total{{{SEL},feature="purpose"}}')
        got = {s["metric"]["category"]: float(s["value"][1]) for s in res}
        for p in PURPOSES:
            assert got[p] == float((purposes == p).sum())
        assert got["__other__"] == float((purposes == "yacht").sum())

        res = store.query(f'sum(modelmon_feature_value_count{{{SEL},feature="age"}})')
        assert float(res[0]["value"][1]) == 1500
        res = store.query('up{job="modelmon"}')
        assert float(res[0]["value"][1]) == 1

        # The per-le sum over replicas, as the drift exporter asks for it.
        res = store.query(f'sum by (le) (modelmon_feature_value_bucket{{{SEL},feature="age"}})')
        assert {s["metric"]["le"]: float(s["value"][1]) for s in res} == expected

        # A restart reopens the same storage on the same port.
        old_url = store.url
        store.restart()
        assert store.url == old_url
        store.wait_for(f"modelmon_predictions_total{{{SEL}}}",
                       lambda res: res and float(res[0]["value"][1]) == 1500)
        assert buckets() == expected
    finally:
        store.stop()
        lv.server.stop()
