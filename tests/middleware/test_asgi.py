"""What only the ASGI middleware has: raw ASGI messages, scopes, compressed and streamed
bodies, JSON paths. The behaviour both middlewares share is in ``test_frameworks.py``."""

import asyncio
import json
import re
import warnings

import pytest

from tests.support import require_module
from prometheus_client import CollectorRegistry

require_module("starlette")
require_module("httpx")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

with warnings.catch_warnings():  # starlette>=1 prefers httpx2; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient

from modelmon import Baseline, Monitor
from modelmon.middleware import ASGIMiddleware


def baseline(name="m"):
    return Baseline.build(
        {"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"], "y": ["p", "q", "p", "p"],
         "s": [0.1, 0.2, 0.8, 0.9]},
        model=name, prediction="y", probability="s", bins=2)  # x edge 2.5, s edge 0.5


def val(reg, name, model="m", **labels):
    v = reg.get_sample_value(name, {"model": model, "model_version": "1", **labels})
    assert v is not None, f"no sample {name}{labels}"
    return v


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Seen:
    def __init__(self):
        self.bodies = []


def make_client(mon, *, clock=None, seen=None, delay=0.0, **kw):
    seen = seen if seen is not None else Seen()

    async def predict(request: Request):
        body = await request.body()
        seen.bodies.append(body)
        if clock is not None:
            clock.t += delay
        data = json.loads(body)
        return JSONResponse({"prediction": "p" if data["features"]["x"] < 2.5 else "q",
                             "score": 0.7})

    async def batch(request: Request):
        body = await request.body()
        seen.bodies.append(body)
        if clock is not None:
            clock.t += delay
        inst = json.loads(body)["instances"]
        return JSONResponse({"predictions": ["p" if e["x"] < 2.5 else "q" for e in inst],
                             "scores": [0.1 * (i + 1) for i in range(len(inst))]})

    async def text(request: Request):
        await request.body()
        return PlainTextResponse("prediction: p")

    async def error(request: Request):
        await request.body()
        return JSONResponse({"prediction": "p"}, status_code=500)

    async def stream(request: Request):
        await request.body()

        async def gen():
            for part in (b'{"prediction"', b': "q", ', b'"score": 0.2}'):
                yield part
        return StreamingResponse(gen(), media_type="application/json")

    async def stream_text(request: Request):
        await request.body()

        async def gen():
            for part in (b"line 1\n", b"line 2\n", b"\x00\xff"):
                yield part
        return StreamingResponse(gen(), media_type="application/octet-stream")

    routes = [Route("/predict", predict, methods=["POST", "GET"]),
              Route("/other", predict, methods=["POST"]),
              Route("/batch", batch, methods=["POST"]),
              Route("/text", text, methods=["POST"]), Route("/error", error, methods=["POST"]),
              Route("/stream", stream, methods=["POST"]),
              Route("/stream_text", stream_text, methods=["POST"])]
    app = Starlette(routes=routes)
    opts = {"probabilities": "score"}
    opts.update(kw)
    if clock is not None:
        opts["clock"] = clock
    app.add_middleware(ASGIMiddleware, monitor=mon, **opts)
    return TestClient(app), seen


def test_positional_rows_take_the_baseline_feature_order():
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path="/batch",
                            features=lambda body: [[e["x"], e["c"]] for e in body["instances"]],
                            prediction="predictions", probabilities=None)
    client.post("/batch", json={"instances": [{"x": 1.0, "c": "b"}, {"x": 2.0, "c": "b"}]})
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="2.5") == 2
    assert val(reg, "modelmon_feature_category_total", feature="c", category="b") == 2
    assert val(reg, "modelmon_schema_violations_total", feature="__unknown__",
               reason="unknown_feature") == 0


class RaisingClock(FakeClock):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("clock")
        return self.t


def test_a_raising_clock_never_breaks_the_response():
    clock = RaisingClock()
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), clock=clock)
    r = client.post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == 200 and r.json()["prediction"] == "p"
    assert val(reg, "modelmon_predictions_total") == 0


@pytest.mark.parametrize("spec, body, expect", [
    ("$", {"a": 1}, {"a": 1}),
    ("", [1, 2], [1, 2]),
    ("a.b", {"a": {"b": 3}}, 3),
    ("$.a.b", {"a": {"b": 3}}, 3),
    ("a[1]", {"a": [5, 6]}, 6),
    ("a[-1].x", {"a": [{"x": 1}, {"x": 2}]}, 2),
    ("[*]", [1, 2], [1, 2]),
    ("$[*].x", [{"x": 1}, {"x": 2}], [1, 2]),
    ("out[*].p[0]", {"out": [{"p": [0.1, 0.9]}, {"p": [0.3, 0.7]}]}, [0.1, 0.3]),
    ("with space.k", {"with space": {"k": "v"}}, "v"),
])
def test_paths(spec, body, expect):
    from modelmon.middleware import JsonPath

    p = JsonPath(spec)
    assert p.get(body) == expect
    assert p.batch == ("[*]" in spec)


@pytest.mark.parametrize("spec, body", [("a.b", {"a": 1}), ("a[2]", {"a": [1]}),
                                        ("a[*]", {"a": {}}), ("x", [1]), ("a[0]", {"a": {}})])
def test_paths_that_do_not_match_raise_path_errors(spec, body):
    from modelmon.middleware import JsonPath
    from modelmon.middleware._paths import PathError

    with pytest.raises(PathError, match=re.escape(repr(spec))):
        JsonPath(spec).get(body)


# -- the raw ASGI protocol -----------------------------------------------------


def run(coro):
    return asyncio.run(coro)


def test_chunked_request_and_response_messages_pass_through_identically():
    reg = CollectorRegistry()
    mon = Monitor(baseline(), registry=reg)
    chunks = [b'{"features": {"x"', b': 3.0, "c": "b"}}']
    incoming = [{"type": "http.request", "body": chunks[0], "more_body": True},
                {"type": "http.request", "body": chunks[1], "more_body": False}]
    outgoing = [{"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"application/json; charset=utf-8")]},
                {"type": "http.response.body", "body": b'{"prediction": ', "more_body": True},
                {"type": "http.response.body", "body": b'"q"}', "more_body": False}]
    app_saw, client_got = [], []

    async def app(scope, receive, send):
        while True:
            m = await receive()
            app_saw.append(m)
            if not m.get("more_body"):
                break
        for m in outgoing:
            await send(m)

    async def receive():
        return incoming.pop(0)

    async def send(m):
        client_got.append(m)

    expected_in = list(incoming)
    mw = ASGIMiddleware(app, mon, probabilities=None)
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    run(mw(scope, receive, send))
    assert all(a is b for a, b in zip(app_saw, expected_in)) and len(app_saw) == 2
    assert all(a is b for a, b in zip(client_got, outgoing)) and len(client_got) == 3
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="+Inf") == 1


def test_an_app_that_does_not_read_the_body_is_not_counted():
    reg = CollectorRegistry()
    mon = Monitor(baseline(), registry=reg)

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"prediction": "p"}'})

    async def receive():  # pragma: no cover - must not be called
        raise AssertionError("the middleware read the body ahead of the app")

    async def send(m):
        pass

    run(ASGIMiddleware(app, mon)({"type": "http", "method": "POST", "path": "/predict"},
                                 receive, send))
    assert val(reg, "modelmon_predictions_total") == 0


@pytest.mark.parametrize("scope", [{"type": "lifespan"},
                                   {"type": "websocket", "path": "/predict"}])
def test_non_http_scopes_pass_straight_through(scope):
    got = []

    async def app(s, receive, send):
        got.append((s, receive, send))

    async def receive():  # pragma: no cover
        return {}

    async def send(m):  # pragma: no cover
        pass

    mon = Monitor(baseline(), registry=CollectorRegistry())
    run(ASGIMiddleware(app, mon)(scope, receive, send))
    assert got == [(scope, receive, send)]
    assert got[0][1] is receive and got[0][2] is send


def test_an_app_exception_propagates_unchanged():
    async def app(scope, receive, send):
        await receive()
        raise KeyError("app bug")

    async def receive():
        return {"type": "http.request", "body": b'{"features": {}}'}

    async def send(m):  # pragma: no cover
        pass

    mon = Monitor(baseline(), registry=CollectorRegistry())
    with pytest.raises(KeyError, match="app bug"):
        run(ASGIMiddleware(app, mon)({"type": "http", "method": "POST", "path": "/predict"},
                                     receive, send))


def test_compressed_responses_are_forwarded_and_not_counted():
    reg = CollectorRegistry()
    mon = Monitor(baseline(), registry=reg)

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-encoding", b"gzip")]})
        await send({"type": "http.response.body", "body": b"\x1f\x8b..."})

    async def receive():
        return {"type": "http.request", "body": b'{"features": {"x": 1.0}}'}

    sent = []

    async def send(m):
        sent.append(m)

    run(ASGIMiddleware(app, mon)({"type": "http", "method": "POST", "path": "/predict"},
                                 receive, send))
    assert sent[1]["body"] == b"\x1f\x8b..."
    assert val(reg, "modelmon_predictions_total") == 0


def test_features_only_without_reading_the_response():
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path="/text",
                            prediction=None, probabilities=None)
    client.post("/text", json={"features": {"x": 1.0, "c": "a"}})
    assert val(reg, "modelmon_predictions_total") == 1


def test_response_is_plain_starlette_response_bytes():
    # A Response with an explicit JSON media type and an odd body is still forwarded as is.
    async def raw(request):
        await request.body()
        return Response(b'{"prediction":"p","score":0.9}   ', media_type="application/json")

    reg = CollectorRegistry()
    app = Starlette(routes=[Route("/predict", raw, methods=["POST"])])
    app.add_middleware(ASGIMiddleware, monitor=Monitor(baseline(), registry=reg),
                       probabilities="score")
    r = TestClient(app).post("/predict", json={"features": {"x": 4.0, "c": "b"}})
    assert r.content == b'{"prediction":"p","score":0.9}   '
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="+Inf") == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 0
