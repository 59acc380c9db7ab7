"""Fixtures of the sidecar tests: a seeded baseline and a live sidecar on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry

from modelmon import Baseline
from modelmon.sidecar.app import SidecarApp
from modelmon.sidecar.config import Limits
from modelmon.sidecar.server import SidecarServer

PURPOSES = ["car", "home", "edu", "travel"]


def make_baseline(model: str = "loan", seed: int = 7, rows: int = 4000) -> Baseline:
    """Two numeric features, one categorical, a class prediction and one score column."""
    rng = np.random.default_rng(seed)
    data = {
        "age": rng.normal(40, 10, rows).round(1),
        "income": rng.lognormal(10, 0.5, rows).round(2),
        "purpose": rng.choice(PURPOSES, rows).tolist(),
        "approved": rng.choice(["yes", "no"], rows).tolist(),
        "p_yes": rng.random(rows).round(4),
    }
    return Baseline.build(data, model=model, model_version="3", prediction="approved",
                          probability=["p_yes"], categorical=["purpose"], bins=10)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return make_baseline()


class Live:
    """A running sidecar: its URL, app, registry and a keep-alive session."""

    def __init__(self, server: SidecarServer, registry: CollectorRegistry) -> None:
        self.server = server
        self.app = server.app
        self.registry = registry
        self.url = server.url
        self.http = requests.Session()

    def post(self, model: str, body: bytes, ctype: str = "application/json",
             **headers: str) -> requests.Response:
        return self.http.post(f"{self.url}/v1/models/{model}/events", data=body,
                              headers={"Content-Type": ctype, **headers}, timeout=30)

    def post_labels(self, model: str, body: bytes, ctype: str = "application/json",
                    **headers: str) -> requests.Response:
        return self.http.post(f"{self.url}/v1/models/{model}/labels", data=body,
                              headers={"Content-Type": ctype, **headers}, timeout=30)

    def value(self, name: str, **labels: str) -> float:
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v


def start_sidecar(baselines: list[Baseline], limits: Limits | None = None,
                  app_kwargs: dict[str, object] | None = None, **kwargs: object) -> Live:
    registry = CollectorRegistry()
    app = SidecarApp(baselines, limits=limits, registry=registry,
                     **(app_kwargs or {}))  # type: ignore[arg-type]
    server = SidecarServer(app, "127.0.0.1", 0, **kwargs)  # type: ignore[arg-type]
    server.start()
    return Live(server, registry)


@pytest.fixture
def live(baseline: Baseline) -> Iterator[Live]:
    lv = start_sidecar([baseline], Limits(max_body_bytes=64 * 1024, max_events_per_request=100))
    yield lv
    lv.http.close()
    lv.server.stop()
