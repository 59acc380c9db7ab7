"""Concurrent posting while /metrics is scraped: final counts equal what was sent."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import requests

from modelmon.catalogue import le_labels
from modelmon.sidecar.config import Limits

from .conftest import start_sidecar

pytestmark = pytest.mark.slow

CLIENTS, REQUESTS, BATCH = 8, 150, 50


def test_concurrent_clients_and_scrapes_lose_nothing(baseline) -> None:
    lv = start_sidecar([baseline], Limits(max_events_per_request=1000))
    url = f"{lv.url}/v1/models/loan/events"
    sent: list[np.ndarray] = [np.empty(0)] * CLIENTS
    failures: list[str] = []
    scrapes = [0]
    done = threading.Event()

    def client(k: int) -> None:
        rng = np.random.default_rng(100 + k)
        ages = rng.normal(40, 10, REQUESTS * BATCH).round(2)
        sent[k] = ages
        s = requests.Session()
        for i in range(REQUESTS):
            chunk = ages[i * BATCH:(i + 1) * BATCH]
            evs = [{"features": {"age": float(a), "purpose": "car"}, "latency_seconds": 0.002}
                   for a in chunk]
            if i % 2:
                body = b"\n".join(json.dumps(e).encode() for e in evs)
                r = s.post(url, data=body, headers={"Content-Type": "application/x-ndjson"},
                           timeout=30)
            else:
                r = s.post(url, json={"events": evs}, timeout=30)
            if r.status_code != 200 or r.json()["accepted"] != BATCH:
                failures.append(f"client {k} request {i}: {r.status_code} {r.text[:200]}")
        s.close()

    def scraper() -> None:
        s = requests.Session()
        last = -1.0
        while not done.is_set():
            text = s.get(f"{lv.url}/metrics", timeout=30).text
            for line in text.splitlines():
                if line.startswith("modelmon_predictions_total{"):
                    v = float(line.rsplit(" ", 1)[1])
                    if v < last:  # a counter never goes backwards
                        failures.append(f"predictions_total went from {last} to {v}")
                    last = v
            scrapes[0] += 1
        s.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    scr = threading.Thread(target=scraper)
    scr.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    scr.join(30)
    try:
        assert not failures, failures[:5]
        assert scrapes[0] > 3  # scrapes really ran during the load
        total = CLIENTS * REQUESTS * BATCH
        mv = {"model": "loan", "model_version": "3"}
        assert lv.value("modelmon_predictions_total", **mv) == total
        assert lv.value("modelmon_inference_latency_seconds_count", **mv) == total
        assert lv.value("modelmon_feature_category_total", feature="purpose", category="car",
                        **mv) == total
        ages = np.concatenate(sent)
        edges = list(baseline.features["age"].edges)
        got = [lv.value("modelmon_feature_value_bucket", feature="age", le=le, **mv)
               for le in le_labels(edges)]
        assert got == [float((ages <= e).sum()) for e in edges] + [float(total)]
        assert lv.value("modelmon_sidecar_requests_total", endpoint="events",
                        code="200") == CLIENTS * REQUESTS
    finally:
        lv.http.close()
        lv.server.stop()
