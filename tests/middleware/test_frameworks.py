"""One suite for both middlewares: the same app, requests and counts on ASGI (Starlette)
and WSGI (Flask). What only one protocol has (raw ASGI messages, the WSGI iterable,
``write``, ``close``) is tested in ``test_asgi.py`` and ``test_wsgi.py``."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon import Baseline, Monitor
from modelmon.middleware import ASGIMiddleware, WSGIMiddleware
from tests.support import require_module

STREAM = (b'{"prediction"', b': "q", ', b'"score": 0.2}')
STREAM_TEXT = (b"line 1\n", b"line 2\n", b"\x00\xff")


def baseline(name: str = "m") -> Baseline:
    return Baseline.build(
        {"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"], "y": ["p", "q", "p", "p"],
         "s": [0.1, 0.2, 0.8, 0.9]},
        model=name, prediction="y", probability="s", bins=2)  # x edge 2.5, s edge 0.5


def val(reg: CollectorRegistry, name: str, model: str = "m", **labels: str) -> float:
    v = reg.get_sample_value(name, {"model": model, "model_version": "1", **labels})
    assert v is not None, f"no sample {name}{labels}"
    return v


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _predict(body: bytes) -> dict[str, Any]:
    x = json.loads(body)["features"]["x"]
    return {"prediction": "p" if x < 2.5 else "q", "score": 0.7}


def _batch(body: bytes) -> dict[str, Any]:
    inst = json.loads(body)["instances"]
    return {"predictions": ["p" if e["x"] < 2.5 else "q" for e in inst],
            "scores": [0.1 * (i + 1) for i in range(len(inst))]}


class Reply:
    """A response of either test client: status, JSON and raw body."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.content = body

    def json(self) -> Any:
        return json.loads(self.content)


class Stack:
    """One framework with the same routes as the other: ``/predict`` (POST and GET),
    ``/other``, ``/batch``, ``/text``, ``/error`` (500), ``/stream``, ``/stream_text``."""

    name = ""
    middleware: type

    def client(self, mon: Monitor, *, clock: FakeClock | None = None, delay: float = 0.0,
               **kw: Any) -> tuple[Callable[..., Reply], list[bytes]]:
        """``(post, seen)``: ``post(path, json=..., raw=..., method=...)`` and the request
        bodies the app saw."""
        seen: list[bytes] = []

        def handle(body: bytes) -> None:
            seen.append(body)
            if clock is not None:
                clock.t += delay

        opts: dict[str, Any] = {"probabilities": "score", **kw}
        if clock is not None:
            opts["clock"] = clock
        return self._client(mon, handle, opts), seen

    def _client(self, mon: Monitor, handle: Callable[[bytes], None],
                opts: dict[str, Any]) -> Callable[..., Reply]:
        raise NotImplementedError


class Starlette(Stack):
    name = "asgi"
    middleware = ASGIMiddleware

    def _client(self, mon: Monitor, handle: Callable[[bytes], None],
                opts: dict[str, Any]) -> Callable[..., Reply]:
        require_module("starlette")
        require_module("httpx")
        from starlette.applications import Starlette as App
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
        from starlette.routing import Route

        with warnings.catch_warnings():  # starlette>=1 prefers httpx2; httpx still works
            warnings.filterwarnings("ignore", message="Using `httpx`")
            from starlette.testclient import TestClient

        async def predict(request: Request) -> Any:
            body = await request.body()
            handle(body)
            if request.method == "GET":
                return JSONResponse({"prediction": "p", "score": 0.7})
            return JSONResponse(_predict(body))

        async def batch(request: Request) -> Any:
            body = await request.body()
            handle(body)
            return JSONResponse(_batch(body))

        async def text(request: Request) -> Any:
            await request.body()
            return PlainTextResponse("prediction: p")

        async def error(request: Request) -> Any:
            await request.body()
            return JSONResponse({"prediction": "p"}, status_code=500)

        def streamed(parts: tuple[bytes, ...], media: str) -> Any:
            async def route(request: Request) -> Any:
                await request.body()

                async def gen() -> Any:
                    for part in parts:
                        yield part
                return StreamingResponse(gen(), media_type=media)
            return route

        app = App(routes=[
            Route("/predict", predict, methods=["POST", "GET"]),
            Route("/other", predict, methods=["POST"]), Route("/batch", batch, methods=["POST"]),
            Route("/text", text, methods=["POST"]), Route("/error", error, methods=["POST"]),
            Route("/stream", streamed(STREAM, "application/json"), methods=["POST"]),
            Route("/stream_text", streamed(STREAM_TEXT, "application/octet-stream"),
                  methods=["POST"])])
        app.add_middleware(ASGIMiddleware, monitor=mon, **opts)
        client = TestClient(app)

        def post(path: str, json: Any = None, raw: bytes | None = None,
                 method: str = "POST") -> Reply:
            if raw is not None:
                r = client.request(method, path, content=raw,
                                   headers={"content-type": "application/json"})
            else:
                r = client.request(method, path, json=json)
            return Reply(r.status_code, r.content)
        return post


class Flask(Stack):
    name = "wsgi"
    middleware = WSGIMiddleware

    def _client(self, mon: Monitor, handle: Callable[[bytes], None],
                opts: dict[str, Any]) -> Callable[..., Reply]:
        flask = require_module("flask")
        app = flask.Flask(__name__)

        @app.post("/predict")
        @app.post("/other")
        def predict() -> Any:
            body = flask.request.get_data()
            handle(body)
            return flask.jsonify(_predict(body))

        @app.get("/predict")
        def predict_get() -> Any:
            handle(flask.request.get_data())
            return flask.jsonify({"prediction": "p", "score": 0.7})

        @app.post("/batch")
        def batch() -> Any:
            body = flask.request.get_data()
            handle(body)
            return flask.jsonify(_batch(body))

        @app.post("/text")
        def text() -> Any:
            flask.request.get_data()
            return "prediction: p", 200, {"Content-Type": "text/plain"}

        @app.post("/error")
        def error() -> Any:
            flask.request.get_data()
            return flask.jsonify({"prediction": "p"}), 500

        def streamed(parts: tuple[bytes, ...], media: str) -> Callable[[], Any]:
            def route() -> Any:
                flask.request.get_data()
                return flask.Response(iter(parts), mimetype=media)
            return route

        app.add_url_rule("/stream", "stream", streamed(STREAM, "application/json"),
                         methods=["POST"])
        app.add_url_rule("/stream_text", "stream_text",
                         streamed(STREAM_TEXT, "application/octet-stream"), methods=["POST"])
        app.wsgi_app = WSGIMiddleware(app.wsgi_app, mon, **opts)  # type: ignore[method-assign]
        client = app.test_client()

        def post(path: str, json: Any = None, raw: bytes | None = None,
                 method: str = "POST") -> Reply:
            if raw is not None:
                r = client.open(path, method=method, data=raw, content_type="application/json")
            else:
                r = client.open(path, method=method, json=json)
            return Reply(r.status_code, r.data)
        return post


@pytest.fixture(params=[Starlette(), Flask()], ids=lambda s: s.name)
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.param  # type: ignore[no-any-return]


def test_single_event_is_counted(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg))
    r = post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == 200 and r.json() == {"prediction": "p", "score": 0.7}
    assert val(reg, "modelmon_predictions_total") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="2.5") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="+Inf") == 1
    assert val(reg, "modelmon_feature_category_total", feature="c", category="a") == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 0
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="+Inf") == 1
    assert val(reg, "modelmon_inference_latency_seconds_count") == 1


def test_batch_is_counted_by_position(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg), path="/batch",
                           features="instances[*]", prediction="predictions[*]",
                           probabilities="scores[*]")
    inst = [{"x": 1.0, "c": "a"}, {"x": 3.0, "c": "b"}, {"x": 4.0, "c": "zzz"}]
    r = post("/batch", json={"instances": inst})
    assert r.status_code == 200 and r.json()["predictions"] == ["p", "q", "q"]
    assert val(reg, "modelmon_predictions_total") == 3
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="2.5") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="+Inf") == 3
    assert val(reg, "modelmon_feature_category_total", feature="c", category="__other__") == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 2
    # scores 0.1, 0.2, 0.3: all at or below 0.5
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 3
    assert val(reg, "modelmon_inference_latency_seconds_count") == 3


@pytest.mark.parametrize("route", ["/text", "/error"])
def test_non_json_and_error_responses_count_nothing(stack: Stack, route: str) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg), path=route)
    r = post(route, json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == (200 if route == "/text" else 500)
    assert val(reg, "modelmon_predictions_total") == 0
    assert val(reg, "modelmon_inference_latency_seconds_count") == 0


def test_streaming_responses_are_forwarded_unchanged_and_json_is_counted(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg), path=["/stream", "/stream_text"])
    r = post("/stream", json={"features": {"x": 3.0, "c": "b"}})
    assert r.content == b"".join(STREAM)
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 1
    r = post("/stream_text", json={"features": {"x": 3.0, "c": "b"}})
    assert r.content == b"".join(STREAM_TEXT)
    assert val(reg, "modelmon_predictions_total") == 1


class Boom(Monitor):
    def observe(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("monitor is broken")

    def observe_batch(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("monitor is broken")


def test_a_failing_monitor_never_breaks_the_response(stack: Stack,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    reg = CollectorRegistry()
    post, seen = stack.client(Boom(baseline(), registry=reg))
    with caplog.at_level(logging.WARNING, logger="modelmon.middleware"):
        for _ in range(3):
            r = post("/predict", json={"features": {"x": 1.0, "c": "a"}})
            assert r.status_code == 200 and r.json() == {"prediction": "p", "score": 0.7}
    assert len(seen) == 3
    msgs = [r for r in caplog.records if "monitoring failed" in r.getMessage()]
    assert len(msgs) == 1  # rate-limited


def test_the_app_sees_the_identical_request_body(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, seen = stack.client(Monitor(baseline(), registry=reg))
    raw = b'{ "features" : {"x": 1.0,\n "c": "a", "extra": "\xc3\xa9"}  }  '
    r = post("/predict", raw=raw)
    assert r.status_code == 200 and r.json()["prediction"] == "p"
    assert seen == [raw]
    assert val(reg, "modelmon_predictions_total") == 1


def test_other_paths_and_methods_are_not_counted(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, seen = stack.client(Monitor(baseline(), registry=reg))
    assert post("/other", json={"features": {"x": 1.0, "c": "a"}}).status_code == 200
    # GET /predict with a body: the method is not monitored
    r = post("/predict", raw=json.dumps({"features": {"x": 1.0}}).encode(), method="GET")
    assert r.status_code == 200
    assert len(seen) == 2
    assert val(reg, "modelmon_predictions_total") == 0


def test_latency_from_a_fake_clock_lands_in_its_bucket(stack: Stack) -> None:
    reg = CollectorRegistry()
    clock = FakeClock()
    post, _ = stack.client(Monitor(baseline(), registry=reg), clock=clock, delay=0.3,
                           path="/batch", features="instances[*]",
                           prediction="predictions[*]", probabilities=None)
    r = post("/batch", json={"instances": [{"x": 1.0, "c": "a"}, {"x": 2.0, "c": "a"}]})
    assert len(r.json()["predictions"]) == 2
    assert val(reg, "modelmon_inference_latency_seconds_count") == 2
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.25") == 0
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.5") == 2
    assert val(reg, "modelmon_inference_latency_seconds_sum") == pytest.approx(0.6)


def test_bodies_over_the_limit_are_not_counted_and_not_touched(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, seen = stack.client(Monitor(baseline(), registry=reg), max_body_bytes=20)
    r = post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == 200 and r.json()["prediction"] == "p"
    assert json.loads(seen[0]) == {"features": {"x": 1.0, "c": "a"}}
    assert val(reg, "modelmon_predictions_total") == 0


@pytest.mark.parametrize("prediction", [lambda body: ["p"], "predictions[0]"],
                         ids=["callable", "path"])
def test_batch_length_mismatch_counts_nothing_and_warns_once(
        stack: Stack, prediction: Any, caplog: pytest.LogCaptureFixture) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg), path="/batch",
                           features="instances[*]", prediction=prediction, probabilities=None)
    with caplog.at_level(logging.WARNING, logger="modelmon.middleware"):
        for _ in range(2):
            r = post("/batch", json={"instances": [{"x": 1.0, "c": "a"}] * 2})
            assert r.status_code == 200 and len(r.content) > 0
    assert val(reg, "modelmon_predictions_total") == 0
    assert len([r for r in caplog.records if "batch of 2" in r.getMessage()]) == 1


def test_missing_path_in_the_response_counts_nothing(stack: Stack) -> None:
    reg = CollectorRegistry()
    post, _ = stack.client(Monitor(baseline(), registry=reg), prediction="output.label")
    assert post("/predict", json={"features": {"x": 1.0, "c": "a"}}).status_code == 200
    assert val(reg, "modelmon_predictions_total") == 0


def test_named_model_of_a_multi_model_monitor(stack: Stack) -> None:
    reg = CollectorRegistry()
    mon = Monitor([baseline("a"), baseline("b")], registry=reg)
    post, _ = stack.client(mon, model="b")
    post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert val(reg, "modelmon_predictions_total", model="b") == 1
    assert val(reg, "modelmon_predictions_total", model="a") == 0
    with pytest.raises(ValueError, match="'zz'"):
        stack.middleware(None, mon, model="zz")
    with pytest.raises(ValueError, match="several models"):
        stack.middleware(None, mon)


@pytest.mark.parametrize("option, bad", [
    *[("features", b) for b in ["a..b", "a[", "a[x]", "a.", "$x", "a[*].b[*]", "a]b"]],
    *[("prediction", b) for b in ["a..b", "x[1", "[*]]", ".a"]],
])
def test_a_malformed_path_fails_at_construction_naming_it(stack: Stack, option: str,
                                                          bad: str) -> None:
    mon = Monitor(baseline(), registry=CollectorRegistry())
    with pytest.raises(ValueError, match=re.escape(f"{option}: path {bad!r}")):
        stack.middleware(None, mon, **{option: bad})
