"""What only the WSGI middleware has: the raw protocol (iterables, ``close``, ``write``,
``wsgi.input``). The behaviour both middlewares share is in ``test_frameworks.py``."""

import io

import pytest
from prometheus_client import CollectorRegistry

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
