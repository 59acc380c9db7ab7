"""The HTTP shell both servers share (modelmon.web): WebApp on a live WebServer on loopback."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import threading
import time
from collections.abc import Iterator

import bcrypt
import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from modelmon.drift import DriftScrapeService
from modelmon.drift.service import DriftApp, DriftHTTPServer
from modelmon.sidecar.app import SidecarApp
from modelmon.sidecar.server import SidecarServer
from modelmon.web import HTTPError, Request, WebApp, WebServer, call
from modelmon.webconfig import WebConfig

from .support import free_port
from .sidecar.conftest import make_baseline

USER, PASSWORD = "prometheus", "pw"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


class Shell:
    """A WebApp with a few routes of its own, served on loopback."""

    def __init__(self, web_config: WebConfig | None = None, **kwargs: object) -> None:
        self.registry = CollectorRegistry()
        self.hits = Counter("web_test_hits", "hits", registry=self.registry)
        self.counted: list[tuple[str, int, float]] = []
        self.reason: str | None = None
        self.app = WebApp(self.registry, readiness=lambda: self.reason, max_body_bytes=1000,
                          on_request=lambda e, s, d: self.counted.append((e, s, d)),
                          **kwargs)  # type: ignore[arg-type]
        self.app.route("/echo/{name}", self.echo, ("POST",), "echo")
        self.app.route("/boom", self.boom, ("GET",), "boom")
        self.app.route("/teapot", self.teapot, ("GET", "HEAD", "DELETE"), "teapot")
        self.server = WebServer(self.app, "127.0.0.1", 0, web_config=web_config)
        self.server.start()
        self.url = self.server.url
        self.http = requests.Session()

    async def echo(self, req: Request) -> None:
        body = await req.body()
        self.hits.inc()
        await req.respond(200, b"text/plain", req.params["name"].encode() + b":" + body)

    async def boom(self, req: Request) -> None:
        raise ZeroDivisionError("a bug in a route")

    async def teapot(self, req: Request) -> None:
        raise HTTPError(418, "teapot", "short and stout", [(b"x-pot", b"tea")])

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def shell() -> Iterator[Shell]:
    s = Shell()
    yield s
    s.close()


def test_metrics_text_openmetrics_gzip_vary_and_head(shell: Shell) -> None:
    shell.hits.inc(3)
    r = shell.http.get(f"{shell.url}/metrics", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert r.headers["Vary"] == "Accept, Accept-Encoding"
    assert "Content-Encoding" not in r.headers
    assert "web_test_hits_total 3.0" in r.text
    om = shell.http.get(f"{shell.url}/metrics",
                        headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n") and "web_test_hits_total 3.0" in om.text
    gz = shell.http.get(f"{shell.url}/metrics", headers={"Accept-Encoding": "gzip"},
                        stream=True)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.raw.read()) == r.content
    head = shell.http.head(f"{shell.url}/metrics", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(r.content))


def test_health_and_readiness_with_the_reason(shell: Shell) -> None:
    r = shell.http.get(f"{shell.url}/-/healthy")
    assert (r.status_code, r.text) == (200, "OK\n")
    r = shell.http.get(f"{shell.url}/-/ready")
    assert (r.status_code, r.text) == (200, "ready\n")
    shell.reason = "no evaluation yet"
    r = shell.http.get(f"{shell.url}/-/ready")
    assert (r.status_code, r.text) == (503, "not ready: no evaluation yet\n")
    assert shell.http.head(f"{shell.url}/-/ready").status_code == 503
    shell.reason = None
    shell.app.ready = False  # what the server does on SIGTERM
    r = shell.http.get(f"{shell.url}/-/ready")
    assert (r.status_code, r.text) == (503, "not ready: shutting down\n")
    assert shell.http.get(f"{shell.url}/-/healthy").status_code == 200


def test_routes_params_405_404_and_error_replies(shell: Shell) -> None:
    r = shell.http.post(f"{shell.url}/echo/abc", data=b"hello")
    assert (r.status_code, r.content) == (200, b"abc:hello")
    r = shell.http.get(f"{shell.url}/echo/abc")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert r.json()["error"] == "method_not_allowed"
    r = shell.http.post(f"{shell.url}/metrics")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    r = shell.http.delete(f"{shell.url}/-/healthy")
    assert r.status_code == 405
    r = shell.http.get(f"{shell.url}/echo/a/b")  # a {param} is one path segment
    assert r.status_code == 404
    r = shell.http.get(f"{shell.url}/nope")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert doc["error"] == "not_found"
    assert "POST /echo/{name}" in doc["message"] and "GET /metrics" in doc["message"]
    r = shell.http.get(f"{shell.url}/teapot")
    assert r.status_code == 418 and r.headers["X-Pot"] == "tea"
    assert r.json() == {"error": "teapot", "message": "short and stout"}
    assert shell.http.head(f"{shell.url}/teapot").content == b""


def test_413_by_content_length_and_while_streaming(shell: Shell) -> None:
    r = shell.http.post(f"{shell.url}/echo/x", data=b"x" * 1001)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert "1001 bytes" in r.json()["message"] and "limit of 1000 bytes" in r.json()["message"]

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 100
    r = shell.http.post(f"{shell.url}/echo/x", data=chunks())  # chunked: no Content-Length
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    r = shell.http.post(f"{shell.url}/echo/x", data=b"z" * 1000)  # at the limit: fine
    assert r.status_code == 200 and r.content == b"x:" + b"z" * 1000


def test_an_exception_in_a_route_is_a_logged_500_and_the_server_keeps_serving(
        shell: Shell, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="modelmon.web"):
        r = shell.http.get(f"{shell.url}/boom")  # on a keep-alive connection
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert "see its log" in r.json()["message"]
    failed = [rec for rec in caplog.records if "event=request_failed" in rec.getMessage()]
    assert failed and failed[0].exc_info and failed[0].exc_info[0] is ZeroDivisionError
    # the same connection and new ones are served
    assert shell.http.post(f"{shell.url}/echo/ok", data=b"1").status_code == 200
    assert requests.get(f"{shell.url}/-/healthy", timeout=5).status_code == 200


def test_the_request_hook_counts_every_reply_before_it_leaves(shell: Shell) -> None:
    shell.http.post(f"{shell.url}/echo/a", data=b"")
    shell.http.get(f"{shell.url}/metrics")
    shell.http.get(f"{shell.url}/-/healthy")
    shell.http.get(f"{shell.url}/nope")
    shell.http.get(f"{shell.url}/boom")
    shell.http.get(f"{shell.url}/echo/a")
    got = [(e, s) for e, s, _ in shell.counted]
    assert got == [("echo", 200), ("metrics", 200), ("health", 200), ("other", 404),
                   ("boom", 500), ("echo", 405)]
    assert all(d >= 0 for _, _, d in shell.counted)


def test_basic_auth_on_every_path_but_the_exempt_ones() -> None:
    s = Shell(WebConfig(tls=None, users={USER: HASH}))
    try:
        for path in ("/metrics", "/nope", "/boom"):
            r = s.http.get(s.url + path)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", path
            assert r.headers["WWW-Authenticate"] == 'Basic realm="modelmon"'
        assert s.http.post(s.url + "/echo/a", data=b"x").status_code == 401
        assert s.http.get(s.url + "/metrics", auth=(USER, PASSWORD)).status_code == 200
        assert s.http.post(s.url + "/echo/a", data=b"x", auth=(USER, PASSWORD)).content == b"a:x"
        assert s.http.get(s.url + "/-/healthy").status_code == 200
        assert s.http.get(s.url + "/-/ready").status_code == 200
        assert not s.counted or all(code != 401 for _, code, _ in s.counted)
    finally:
        s.close()


def test_a_slow_metrics_render_in_a_thread_does_not_hold_up_other_requests() -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(WebApp):
        def metrics_body(self, encoder, content_type):  # type: ignore[no-untyped-def]
            started.set()
            release.wait(10)
            return b"slow 1\n"

    server = WebServer(Slow(metrics_in_thread=True), "127.0.0.1", 0)
    server.start()
    try:
        result: list[requests.Response] = []
        t = threading.Thread(target=lambda: result.append(
            requests.get(server.url + "/metrics", timeout=10)))
        t.start()
        assert started.wait(5)
        # answered within the request's timeout (it raises otherwise) while /metrics is held
        assert requests.get(server.url + "/-/healthy", timeout=2).status_code == 200
        release.set()
        t.join(10)
        assert result[0].text == "slow 1\n"
    finally:
        release.set()
        server.stop()


def test_shutdown_drains_not_ready_then_stops() -> None:
    app = WebApp()
    server = WebServer(app, "127.0.0.1", 0, shutdown_delay=0.6)
    host, port = server.start()
    url = server.url
    assert url == f"http://127.0.0.1:{port}" and host == "127.0.0.1"
    server.shutdown()
    assert app.ready is False
    r = requests.get(url + "/-/ready", timeout=5)
    assert (r.status_code, r.text) == (503, "not ready: shutting down\n")
    assert requests.get(url + "/metrics", timeout=5).status_code == 200  # still serving
    deadline = time.monotonic() + 10
    while server._thread is not None and server._thread.is_alive():
        assert time.monotonic() < deadline, "the server did not stop after the delay"
        time.sleep(0.05)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/-/healthy", timeout=2)
    server.stop()  # idempotent


def test_listener_options_and_a_taken_port() -> None:
    server = WebServer(WebApp(), "127.0.0.1", 0)
    try:
        assert server.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(OSError):
            WebServer(WebApp(), "127.0.0.1", server.address[1])
    finally:
        server.stop()  # never started: the socket is closed


def test_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = WebServer(WebApp(), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server.start()
    try:
        assert server.sock.family == socket.AF_INET6 and server.url.startswith("http://[::1]:")
        assert requests.get(server.url + "/-/healthy", timeout=5).text == "OK\n"
    finally:
        server.stop()


def test_in_memory_call_and_lifespan() -> None:
    app = WebApp()
    assert asyncio.run(call(app, "GET", "/-/healthy")) == (200, b"OK\n")
    msgs = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, str]] = []

    async def receive():  # type: ignore[no-untyped-def]
        return msgs.pop(0)

    async def send(m):  # type: ignore[no-untyped-def]
        sent.append(m)
    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                          "lifespan.shutdown.complete"]


def test_route_validation_and_replacing_a_builtin() -> None:
    app = WebApp()
    with pytest.raises(ValueError, match="starts with"):
        app.route("metrics", lambda req: None)  # type: ignore[arg-type,return-value]

    async def mine(req: Request) -> None:
        await req.respond(200, b"text/plain", b"mine\n")
    app.route("/-/healthy", mine)
    assert asyncio.run(call(app, "GET", "/-/healthy")) == (200, b"mine\n")
    assert sum(e.endswith(" /-/healthy") for e in app.endpoints()) == 1


# --------------------------------------------------------------------------- both commands


def test_both_commands_are_served_by_the_shell() -> None:
    sidecar_app = SidecarApp([make_baseline(rows=500)], registry=CollectorRegistry())
    sidecar = SidecarServer(sidecar_app, "127.0.0.1", 0)
    svc = DriftScrapeService([f"http://127.0.0.1:{free_port()}/metrics"], window=60, interval=5,
                       registry=CollectorRegistry())
    assert isinstance(sidecar_app, WebApp) and isinstance(sidecar, WebServer)
    sidecar.start()
    try:
        host, port = svc.serve("127.0.0.1", 0)
        http = svc._http
        assert isinstance(http, DriftHTTPServer) and isinstance(http, WebServer)
        assert isinstance(http.app, DriftApp) and http.server_address == (host, port)
        drift = f"http://{host}:{port}"
        for base in (sidecar.url, drift):
            assert requests.get(base + "/-/healthy", timeout=5).text == "OK\n"
            r = requests.get(base + "/metrics", timeout=5, headers={"Accept-Encoding": "gzip"})
            assert r.headers["Content-Encoding"] == "gzip"
            assert r.headers["Vary"] == "Accept, Accept-Encoding"
            assert requests.post(base + "/metrics", timeout=5).headers["Allow"] == "GET, HEAD"
        # each command keeps its own error bodies and readiness reason
        assert requests.get(sidecar.url + "/nope", timeout=5).json()["error"] == "not_found"
        nf = requests.get(drift + "/nope", timeout=5).json()
        assert nf == {"error": "not found", "path": "/nope",
                      "endpoints": ["/metrics", "/-/healthy", "/-/ready"]}
        assert requests.post(drift + "/metrics", timeout=5).json() == {
            "error": "method not allowed", "method": "POST"}
        r = requests.get(drift + "/-/ready", timeout=5)
        assert (r.status_code, r.text) == (503, "not ready: no evaluation yet\n")
        assert requests.get(sidecar.url + "/-/ready", timeout=5).text == "ready\n"
        # the sidecar counts its requests per endpoint through the shell's hook
        assert sidecar_app.registry.get_sample_value(
            "modelmon_sidecar_requests_total", {"endpoint": "other", "code": "404"}) == 1
        with pytest.raises(RuntimeError, match="already serving"):
            svc.serve("127.0.0.1", 0)
    finally:
        svc.stop()
        sidecar.stop()
    assert svc._http is None
    with pytest.raises(requests.ConnectionError):
        requests.get(drift + "/-/healthy", timeout=2)


def test_exempt_paths_are_the_servers_choice() -> None:
    app = WebApp()
    server = WebServer(app, "127.0.0.1", 0, web_config=WebConfig(tls=None, users={USER: HASH}),
                       exempt=("/-/healthy",))
    server.start()
    try:
        assert requests.get(server.url + "/-/healthy", timeout=5).status_code == 200
        assert requests.get(server.url + "/-/ready", timeout=5).status_code == 401
        assert requests.get(server.url + "/-/ready", auth=(USER, PASSWORD),
                            timeout=5).status_code == 200
    finally:
        server.stop()


def test_body_reader_chunk_check_and_a_client_gone_mid_body() -> None:
    app = WebApp(max_body_bytes=100)

    def at_most_two_lines(chunk: bytes, chunks: list[bytes]) -> None:
        if b"".join(chunks).count(b"\n") > 2:
            raise HTTPError(413, "too_many_lines", "more than 2 lines")

    async def lines(req: Request) -> None:
        body = await req.body(on_chunk=at_most_two_lines)
        await req.respond(200, b"text/plain", body)
    app.route("/lines", lines, ("POST",))

    async def run(messages: list[dict[str, object]]) -> tuple[int, bytes]:
        sent: list[dict[str, object]] = []

        async def receive():  # type: ignore[no-untyped-def]
            return messages.pop(0)

        async def send(m):  # type: ignore[no-untyped-def]
            sent.append(m)
        await app({"type": "http", "method": "POST", "path": "/lines", "headers": []},
                  receive, send)
        return sent[0]["status"], sent[1]["body"]  # type: ignore[return-value]

    def chunked(*parts: bytes) -> list[dict[str, object]]:
        return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)]
    assert asyncio.run(run(chunked(b"a\n", b"b\n"))) == (200, b"a\nb\n")
    status, body = asyncio.run(run(chunked(b"a\n", b"b\n", b"c\n", b"d\n")))
    assert status == 413 and b'"too_many_lines"' in body
    status, body = asyncio.run(run(chunked(b"x" * 60, b"y" * 60)))
    assert status == 413 and b'"body_too_large"' in body
    status, body = asyncio.run(run([{"type": "http.request", "body": b"a", "more_body": True},
                                    {"type": "http.disconnect"}]))
    assert status == 400 and b'"incomplete_body"' in body
