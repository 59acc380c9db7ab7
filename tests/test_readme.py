"""The README's middleware snippets run as written (with a small prelude per framework)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from modelmon import Baseline

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _block(marker: str) -> str:
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, f"README has {len(found)} python blocks with {marker!r}"
    return found[0]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] > 0).astype(int)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(x, y)
    Baseline.build({"a": x[:, 0], "b": x[:, 1], "label": model.predict(x).tolist()},
                   model="m", prediction="label", categorical=["label"]).save(
        tmp_path / "baseline.yaml")
    monkeypatch.chdir(tmp_path)  # the snippets load "baseline.yaml" from the working directory
    before = set(REGISTRY._collector_to_names)
    yield {"model": model, "x": x}
    for c in set(REGISTRY._collector_to_names) - before:  # the snippets use the global registry
        REGISTRY.unregister(c)


def test_fastapi_starlette_snippet(workdir) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def predict(request):
        body = await request.json()
        return JSONResponse({"predictions": [int(i["a"] > 0) for i in body["instances"]]})

    ns = {"app": Starlette(routes=[Route("/predict", predict, methods=["POST"])])}
    exec(_block("ASGIMiddleware"), ns)
    with TestClient(ns["app"]) as client:
        r = client.post("/predict", json={"instances": [{"a": 0.5, "b": 1.0}, {"a": -1, "b": 0}]})
    assert r.json() == {"predictions": [1, 0]}
    assert REGISTRY.get_sample_value("modelmon_predictions_total",
                                     {"model": "m", "model_version": "1"}) == 2


def test_flask_snippet(workdir) -> None:
    from flask import Flask, jsonify, request

    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        f = request.get_json()["features"]
        return jsonify({"prediction": int(f["a"] > 0)})

    ns = {"app": app}
    exec(_block("WSGIMiddleware"), ns)
    r = app.test_client().post("/predict", json={"features": {"a": 1.5, "b": 0.0}})
    assert r.get_json() == {"prediction": 1}
    assert REGISTRY.get_sample_value("modelmon_predictions_total",
                                     {"model": "m", "model_version": "1"}) == 1


def test_wrap_snippet(workdir) -> None:
    ns = {"trained_model": workdir["model"], "X": workdir["x"][:50]}
    exec(_block("modelmon.wrap"), ns)
    np.testing.assert_array_equal(ns["proba"], workdir["model"].predict_proba(workdir["x"][:50]))
    assert REGISTRY.get_sample_value("modelmon_feature_value_count",
                                     {"model": "m", "model_version": "1", "feature": "a"}) == 50
