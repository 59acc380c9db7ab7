import io
import json
import logging
import re

import pytest

from tests.support import require_module
from prometheus_client import CollectorRegistry

flask = require_module("flask")

from modelmon import Baseline, Monitor
from modelmon.middleware import WSGIMiddleware


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


def make_client(mon, *, clock=None, delay=0.0, seen=None, **kw):
    seen = seen if seen is not None else []
    app = flask.Flask(__name__)

    @app.post("/predict")
    @app.post("/other")
    def predict():
        body = flask.request.get_data()
        seen.append(body)
        if clock is not None:
            clock.t += delay
        x = json.loads(body)["features"]["x"]
        return flask.jsonify({"prediction": "p" if x < 2.5 else "q", "score": 0.7})

    @app.get("/predict")
    def predict_get():
        seen.append(flask.request.get_data())
        return flask.jsonify({"prediction": "p", "score": 0.7})

    @app.post("/batch")
    def batch():
        body = flask.request.get_data()
        seen.append(body)
        if clock is not None:
            clock.t += delay
        inst = json.loads(body)["instances"]
        return flask.jsonify({"predictions": ["p" if e["x"] < 2.5 else "q" for e in inst],
                              "scores": [0.1 * (i + 1) for i in range(len(inst))]})

    @app.post("/text")
    def text():
        flask.request.get_data()
        return "prediction: p", 200, {"Content-Type": "text/plain"}

    @app.post("/error")
    def error():
        flask.request.get_data()
        return flask.jsonify({"prediction": "p"}), 500

    @app.post("/stream")
    def stream():
        flask.request.get_data()

        def gen():
            yield b'{"prediction"'
            yield b': "q", '
            yield b'"score": 0.2}'
        return flask.Response(gen(), mimetype="application/json")

    @app.post("/stream_text")
    def stream_text():
        flask.request.get_data()

        def gen():
            yield b"line 1\n"
            yield b"\x00\xff"
        return flask.Response(gen(), mimetype="application/octet-stream")

    opts = {"probabilities": "score"}
    opts.update(kw)
    if clock is not None:
        opts["clock"] = clock
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, mon, **opts)
    return app.test_client(), seen


def test_single_event_is_counted():
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg))
    r = client.post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == 200 and r.get_json() == {"prediction": "p", "score": 0.7}
    assert val(reg, "modelmon_predictions_total") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="2.5") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="+Inf") == 1
    assert val(reg, "modelmon_feature_category_total", feature="c", category="a") == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 0
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="+Inf") == 1
    assert val(reg, "modelmon_inference_latency_seconds_count") == 1


def test_batch_is_counted_by_position():
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path="/batch",
                            features="instances[*]", prediction="predictions[*]",
                            probabilities="scores[*]")
    inst = [{"x": 1.0, "c": "a"}, {"x": 3.0, "c": "b"}, {"x": 4.0, "c": "zzz"}]
    r = client.post("/batch", json={"instances": inst})
    assert r.status_code == 200 and r.get_json()["predictions"] == ["p", "q", "q"]
    assert val(reg, "modelmon_predictions_total") == 3
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="2.5") == 1
    assert val(reg, "modelmon_feature_value_bucket", feature="x", le="+Inf") == 3
    assert val(reg, "modelmon_feature_category_total", feature="c", category="__other__") == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 2
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 3
    assert val(reg, "modelmon_inference_latency_seconds_count") == 3


@pytest.mark.parametrize("route", ["/text", "/error"])
def test_non_json_and_error_responses_count_nothing(route):
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path=route)
    r = client.post(route, json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == (200 if route == "/text" else 500)
    assert val(reg, "modelmon_predictions_total") == 0
    assert val(reg, "modelmon_inference_latency_seconds_count") == 0


def test_streaming_responses_are_forwarded_unchanged():
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path=["/stream", "/stream_text"])
    r = client.post("/stream", json={"features": {"x": 3.0, "c": "b"}})
    assert r.data == b'{"prediction": "q", "score": 0.2}'
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 1
    r = client.post("/stream_text", json={"features": {"x": 3.0, "c": "b"}})
    assert r.data == b"line 1\n\x00\xff"
    assert val(reg, "modelmon_predictions_total") == 1


class Boom(Monitor):
    def observe(self, *args, **kwargs):
        raise RuntimeError("monitor is broken")

    def observe_batch(self, *args, **kwargs):
        raise RuntimeError("monitor is broken")


def test_a_failing_monitor_never_breaks_the_response(caplog):
    reg = CollectorRegistry()
    client, seen = make_client(Boom(baseline(), registry=reg))
    with caplog.at_level(logging.WARNING, logger="modelmon.middleware"):
        for _ in range(3):
            r = client.post("/predict", json={"features": {"x": 1.0, "c": "a"}})
            assert r.status_code == 200 and r.get_json() == {"prediction": "p", "score": 0.7}
    assert len(seen) == 3
    assert len([r for r in caplog.records if "monitoring failed" in r.getMessage()]) == 1


def test_the_app_sees_the_identical_request_body():
    reg = CollectorRegistry()
    client, seen = make_client(Monitor(baseline(), registry=reg))
    raw = b'{ "features" : {"x": 1.0,\n "c": "a", "extra": "\xc3\xa9"}  }  '
    r = client.post("/predict", data=raw, content_type="application/json")
    assert r.status_code == 200 and r.get_json()["prediction"] == "p"
    assert seen == [raw]
    assert val(reg, "modelmon_predictions_total") == 1


def test_other_paths_and_methods_are_not_counted():
    reg = CollectorRegistry()
    client, seen = make_client(Monitor(baseline(), registry=reg))
    assert client.post("/other", json={"features": {"x": 1.0, "c": "a"}}).status_code == 200
    assert client.get("/predict", data=b'{"features": {"x": 1.0}}').status_code == 200
    assert len(seen) == 2
    assert val(reg, "modelmon_predictions_total") == 0


def test_latency_from_a_fake_clock_lands_in_its_bucket():
    reg = CollectorRegistry()
    clock = FakeClock()
    client, _ = make_client(Monitor(baseline(), registry=reg), clock=clock, delay=0.3,
                            path="/batch", features="instances[*]",
                            prediction="predictions[*]", probabilities=None)
    r = client.post("/batch", json={"instances": [{"x": 1.0, "c": "a"}, {"x": 2.0, "c": "a"}]})
    assert len(r.get_json()["predictions"]) == 2
    assert val(reg, "modelmon_inference_latency_seconds_count") == 2
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.25") == 0
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.5") == 2
    assert val(reg, "modelmon_inference_latency_seconds_sum") == pytest.approx(0.6)


def test_bodies_over_the_limit_are_not_counted_and_not_touched():
    reg = CollectorRegistry()
    client, seen = make_client(Monitor(baseline(), registry=reg), max_body_bytes=20)
    r = client.post("/predict", json={"features": {"x": 1.0, "c": "a"}})
    assert r.status_code == 200 and r.get_json()["prediction"] == "p"
    assert json.loads(seen[0]) == {"features": {"x": 1.0, "c": "a"}}
    assert val(reg, "modelmon_predictions_total") == 0


def test_batch_length_mismatch_counts_nothing_and_warns_once(caplog):
    reg = CollectorRegistry()
    client, _ = make_client(Monitor(baseline(), registry=reg), path="/batch",
                            features="instances[*]", prediction="predictions[0]",
                            probabilities=None)
    with caplog.at_level(logging.WARNING, logger="modelmon.middleware"):
        for _ in range(2):
            r = client.post("/batch", json={"instances": [{"x": 1.0, "c": "a"}] * 2})
            assert r.status_code == 200 and len(r.data) > 0
    assert val(reg, "modelmon_predictions_total") == 0
    assert len([r for r in caplog.records if "batch of 2" in r.getMessage()]) == 1


@pytest.mark.parametrize("bad", ["a..b", "x[1", "[*]]", ".a"])
def test_a_malformed_path_fails_at_construction_naming_it(bad):
    mon = Monitor(baseline(), registry=CollectorRegistry())
    with pytest.raises(ValueError, match=re.escape(f"prediction: path {bad!r}")):
        WSGIMiddleware(None, mon, prediction=bad)


# -- the raw WSGI protocol -----------------------------------------------------


class ClosingBody:
    def __init__(self, chunks):
        self.chunks = chunks
        self.closed = 0

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.closed += 1


def environ_for(body, path="/predict", **extra):
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
           "CONTENT_TYPE": "application/json", "wsgi.input": io.BytesIO(body)}
    env.update(extra)
    return env


def serve(app, environ):
    """Drive a WSGI app as a server does: start_response, iterate, close."""
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, headers
        return lambda data: got.setdefault("written", []).append(data)

    result = app(environ, start_response)
    try:
        got["body"] = list(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return got


def test_the_app_iterable_is_closed_and_chunks_pass_unchanged():
    reg = CollectorRegistry()
    body = ClosingBody([b'{"prediction": ', b'"q", "score": 0.9}'])
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "application/json")])
        return body

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=reg), probabilities="score")
    got = serve(mw, environ_for(b'{"features": {"x": 3.0, "c": "b"}}'))
    assert got["body"] == body.chunks and all(a is b for a, b in zip(got["body"], body.chunks))
    assert body.closed == 1
    assert seen == [b'{"features": {"x": 3.0, "c": "b"}}']
    assert val(reg, "modelmon_predicted_class_total", **{"class": "q"}) == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="+Inf") == 1


def test_close_is_called_when_the_response_is_not_counted():
    reg = CollectorRegistry()
    body = ClosingBody([b"nope"])

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return body

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=reg))
    got = serve(mw, environ_for(b'{"features": {"x": 3.0}}'))
    assert got["body"] == [b"nope"] and body.closed == 1
    assert val(reg, "modelmon_predictions_total") == 0


def test_an_iteration_abandoned_by_the_server_is_not_counted():
    reg = CollectorRegistry()
    body = ClosingBody([b'{"prediction": ', b'"q"}'])

    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return body

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=reg), probabilities=None)
    result = mw(environ_for(b'{"features": {"x": 3.0, "c": "b"}}'), lambda s, h, e=None: None)
    next(iter(result))
    result.close()  # client went away after the first chunk
    assert body.closed == 1
    assert val(reg, "modelmon_predictions_total") == 0


def test_generator_apps_and_the_write_callable():
    reg = CollectorRegistry()

    def app(environ, start_response):  # start_response called on first iteration
        environ["wsgi.input"].read()
        write = start_response("200 OK", [("Content-Type", "application/json")])
        write(b'{"prediction": "p", ')
        yield b'"score": 0.1}'

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=reg), probabilities="score")
    got = serve(mw, environ_for(b'{"features": {"x": 1.0, "c": "a"}}'))
    assert got["written"] == [b'{"prediction": "p", '] and got["body"] == [b'"score": 0.1}']
    assert val(reg, "modelmon_predicted_class_total", **{"class": "p"}) == 1
    assert val(reg, "modelmon_prediction_value_bucket", output="s", le="0.5") == 1


def test_requests_without_content_length_pass_through_untouched():
    reg = CollectorRegistry()
    stream = io.BytesIO(b'{"features": {"x": 1.0}}')
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"prediction": "p"}']

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=reg))
    serve(mw, environ_for(b"", CONTENT_LENGTH="", **{"wsgi.input": stream}))
    assert seen == [stream] and stream.tell() == 0
    assert val(reg, "modelmon_predictions_total") == 0


def test_an_input_error_reaches_the_app_after_the_bytes_read():
    class Flaky(io.RawIOBase):
        def __init__(self):
            self.sent = False

        def read(self, n=-1):
            if not self.sent:
                self.sent = True
                return b'{"feat'
            raise OSError("connection reset")

    seen = []

    def app(environ, start_response):
        inp = environ["wsgi.input"]
        seen.append(inp.read(3))
        seen.append(inp.read(100))
        try:
            inp.read(100)
        except OSError as exc:
            seen.append(str(exc))
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"bad"]

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=CollectorRegistry()))
    got = serve(mw, environ_for(b"x" * 40, **{"wsgi.input": Flaky()}))
    assert got["status"] == "400 Bad Request"
    assert seen == [b'{"f', b'eat', "connection reset"]


def test_an_app_exception_propagates_unchanged():
    def app(environ, start_response):
        raise KeyError("app bug")

    mw = WSGIMiddleware(app, Monitor(baseline(), registry=CollectorRegistry()))
    with pytest.raises(KeyError, match="app bug"):
        serve(mw, environ_for(b'{"features": {}}'))


def test_whole_body_path_and_named_model():
    reg = CollectorRegistry()
    mon = Monitor([baseline("a"), baseline("b")], registry=reg)

    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/vnd.api+json")])
        return [b'[{"label": "q"}]']

    mw = WSGIMiddleware(app, mon, features="$", prediction="[*].label", model="b")
    serve(mw, environ_for(b'{"x": 3.0, "c": "b"}'))
    assert val(reg, "modelmon_predicted_class_total", model="b", **{"class": "q"}) == 1
    assert val(reg, "modelmon_predictions_total", model="a") == 0
