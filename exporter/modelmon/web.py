"""The HTTP shell every modelmon server shares: one ASGI app and one uvicorn server.

``modelmon sidecar`` and ``modelmon drift`` serve HTTP the same way; what they
have in common is here, once:

:class:`WebApp` (ASGI)
    ``GET|HEAD /metrics`` (Prometheus text or OpenMetrics, chosen from
    ``Accept`` by prometheus_client's ``choose_encoder``; gzip when
    ``Accept-Encoding`` has it; ``Vary: Accept, Accept-Encoding``),
    ``/-/healthy`` and ``/-/ready`` (503 with the reason in the body while not
    ready), 405 with ``Allow`` for a wrong method, 404 for unknown paths, a
    bounded request-body reader (413 beyond the limit), one request hook
    (endpoint, status, seconds) called before each reply leaves, and a 500
    (logged) for any exception of a route: one request never takes the
    process down. A command adds its own routes with :meth:`WebApp.route`,
    and may override :meth:`WebApp.metrics_body` (what ``/metrics`` holds)
    and :meth:`WebApp.error_body` (the body of its error replies).
:class:`WebServer`
    uvicorn on a socket bound up front (``port=0`` picks a free port;
    ``TCP_NODELAY``; IPv6 when the host has a ``:``), TLS and basic auth from
    a :class:`~modelmon.webconfig.WebConfig` (every path but the health
    checks needs credentials), :meth:`WebServer.run` in the foreground with
    the SIGTERM drain, or :meth:`WebServer.start` in a background thread.

Examples
--------
>>> import asyncio
>>> app = WebApp(readiness=lambda: "no evaluation yet")
>>> async def hello(req):
...     await req.respond(200, b"text/plain", b"hello " + req.params["name"].encode() + b"\\n")
>>> app.route("/hello/{name}", hello, methods=("GET",))
>>> asyncio.run(call(app, "GET", "/hello/you"))
(200, b'hello you\\n')
>>> asyncio.run(call(app, "GET", "/-/ready"))
(503, b'not ready: no evaluation yet\\n')
>>> asyncio.run(call(app, "POST", "/hello/you"))[0]
405
>>> asyncio.run(call(app, "GET", "/nope"))
(404, b'{"error":"not_found","message":"no endpoint /nope; endpoints: GET /hello/{name}, GET /metrics, GET /-/healthy, GET /-/ready"}\\n')
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from .webconfig import EXEMPT_PATHS, BasicAuthASGI, WebConfig

__all__ = ["HTTPError", "Request", "WebApp", "WebServer", "call", "lifespan"]

log = logging.getLogger("modelmon.web")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Handler = Callable[["Request"], Awaitable[None]]
#: ``(endpoint, status, seconds)``, called once per request before its reply leaves.
RequestHook = Callable[[str, int, float], None]

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"
GET = ("GET", "HEAD")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class HTTPError(Exception):
    """Raised in a route (or the shell) to answer at once with an error.

    ``code`` is a short machine-readable name (``not_found``,
    ``method_not_allowed``, ``body_too_large``, ...); :meth:`WebApp.error_body`
    turns it and ``message`` into the reply's body.
    """

    def __init__(self, status: int, code: str, message: str,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass(frozen=True)
class Route:
    """One route: an exact path or a ``{name}`` pattern (a name matches one path segment)."""

    path: str
    handler: Handler
    methods: tuple[str, ...]
    endpoint: str
    pattern: re.Pattern[str] | None


class Request:
    """One HTTP request as a route sees it.

    Attributes
    ----------
    method, path : str
    params : dict of str to str
        The ``{name}`` parts of the route's path.
    endpoint : str
        The route's endpoint name (what the request hook counts).
    scope, receive :
        The raw ASGI scope and receive callable.
    """

    __slots__ = ("app", "scope", "receive", "_send", "method", "path", "params", "endpoint",
                 "t0", "started", "_headers")

    def __init__(self, app: WebApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.params: dict[str, str] = {}
        self.endpoint = "other"
        self.t0 = app.clock() if app.on_request is not None else 0.0
        self.started = False
        self._headers: dict[bytes, bytes] | None = None

    @property
    def head(self) -> bool:
        return self.method == "HEAD"

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Request headers, names lower-cased (the last of repeated headers wins)."""
        h = self._headers
        if h is None:
            h = self._headers = {k.lower(): v for k, v in self.scope["headers"]}
        return h

    def header(self, name: bytes, default: bytes = b"") -> bytes:
        return self.headers.get(name, default)

    async def respond(self, status: int, content_type: bytes, body: bytes,
                      headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Send the whole reply (no body for HEAD, with the GET's Content-Length)."""
        hdrs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        hdrs.extend(headers)
        self.count(status)
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": hdrs})
        await self._send({"type": "http.response.body",
                          "body": b"" if self.method == "HEAD" else body})

    def count(self, status: int) -> None:
        """Report the request to the app's hook (once); :meth:`respond` does it."""
        hook = self.app.on_request
        if hook is not None and not self.started:
            hook(self.endpoint, status, max(0.0, self.app.clock() - self.t0))

    async def body(self, limit: int | None = None,
                   on_chunk: Callable[[bytes, list[bytes]], None] | None = None) -> bytes:
        """The request body; :class:`HTTPError` 413 as soon as it is over ``limit`` bytes.

        ``limit`` defaults to the app's ``max_body_bytes``. A ``Content-Length``
        over the limit is refused before anything is read. ``on_chunk(chunk,
        chunks)`` is called after each chunk is kept and may raise
        :class:`HTTPError` (e.g. a count of records). A client that goes away
        mid-body gets 400.
        """
        app = self.app
        if limit is None:
            limit = app.max_body_bytes
        length = self.headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPError(413, "body_too_large", f"body of {int(length)} bytes is over the "
                            f"limit of {limit} bytes{app.body_limit_hint}")
        receive = self.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise HTTPError(400, "incomplete_body", "the client closed the connection "
                                "before the body was complete")
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise HTTPError(413, "body_too_large", f"body is over the limit of {limit} "
                                    f"bytes{app.body_limit_hint}")
                chunks.append(chunk)
                if on_chunk is not None:
                    on_chunk(chunk, chunks)
            if not msg.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class WebApp:
    """The ASGI application shell: ``/metrics``, health, readiness, routing, errors, limits.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        What ``/metrics`` renders (see :meth:`metrics_body`); a new empty one when None.
    readiness : callable, optional
        ``readiness() -> str | None``: None when ready, else why not (the
        503's body is ``not ready: <reason>``). Independently of it, the app
        is not ready once :attr:`ready` is set False (the server does that on
        SIGTERM: ``not ready: shutting down``).
    max_body_bytes : int
        Default limit of :meth:`Request.body`.
    on_request : callable, optional
        ``on_request(endpoint, status, seconds)``, called once per request
        just before its reply's headers leave (so a scrape right after a reply
        sees it); ``endpoint`` is the route's, ``metrics``, ``health`` or
        ``other`` (unknown paths). Not called for requests the auth middleware
        refuses.
    clock : callable
        Monotonic clock of the request durations.
    metrics_in_thread : bool
        Render ``/metrics`` in a worker thread, so a slow render does not hold
        up other requests (the event loop keeps serving).
    name : str
        How the 500's message names the server.
    """

    #: Appended to the 413 messages (after the limit), e.g. which setting to raise.
    body_limit_hint = ""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 readiness: Callable[[], str | None] | None = None,
                 max_body_bytes: int = 1 << 20,
                 on_request: RequestHook | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 metrics_in_thread: bool = False,
                 name: str = "modelmon") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.readiness = readiness
        self.max_body_bytes = int(max_body_bytes)
        self.on_request = on_request
        self.clock = clock
        self.metrics_in_thread = metrics_in_thread
        self.name = name
        self._ready = True
        self._exact: dict[str, Route] = {}
        self._patterns: list[Route] = []
        self._order: list[Route] = []
        self._builtin: list[Route] = [
            self._make_route("/metrics", self._metrics, GET, "metrics"),
            self._make_route("/-/healthy", self._healthy, GET, "health"),
            self._make_route("/-/ready", self._ready_route, GET, "health"),
        ]
        for r in self._builtin:
            self._exact[r.path] = r

    # -- routes -------------------------------------------------------------------------

    @staticmethod
    def _make_route(path: str, handler: Handler, methods: Sequence[str],
                    endpoint: str | None) -> Route:
        if not path.startswith("/"):
            raise ValueError(f"route {path!r}: a path starts with '/'")
        pattern = None
        if _PARAM.search(path):
            regex = "".join(
                f"(?P<{part}>[^/]*)" if i % 2 else re.escape(part)
                for i, part in enumerate(_PARAM.split(path)))
            pattern = re.compile(regex + r"\Z")
        return Route(path, handler, tuple(m.upper() for m in methods),
                     endpoint if endpoint is not None else "other", pattern)

    def route(self, path: str, handler: Handler, methods: Sequence[str] = GET,
              endpoint: str | None = None) -> None:
        """Serve ``path`` with ``async handler(request)``.

        ``path`` is exact (``/v1/models``) or has ``{name}`` parts that match
        one path segment each (``/v1/models/{model}/events``; the handler finds
        them in ``request.params``). Exact paths are looked up first, then the
        patterns in the order they were added. Another method gets 405 with
        ``Allow``. A route replaces a built-in one of the same path.
        """
        r = self._make_route(path, handler, methods, endpoint)
        if r.pattern is None:
            self._exact[path] = r
        else:
            self._patterns.append(r)
        self._builtin = [b for b in self._builtin if b.path != path]
        self._order.append(r)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route of ``path`` and its parameters, or None."""
        r = self._exact.get(path)
        if r is not None:
            return r, {}
        for r in self._patterns:
            m = r.pattern.match(path)  # type: ignore[union-attr]
            if m is not None:
                return r, m.groupdict()
        return None

    def endpoints(self) -> list[str]:
        """``METHOD path`` of every route, the command's first (for the 404's message)."""
        return [f"{'/'.join(m for m in r.methods if m != 'HEAD') or 'HEAD'} {r.path}"
                for r in self._order + self._builtin]

    # -- readiness ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """False once the server is shutting down (set by :class:`WebServer`)."""
        return self._ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self._ready = bool(value)

    def not_ready_reason(self) -> str | None:
        """None when ready, else why not."""
        if not self.ready:
            return "shutting down"
        return self.readiness() if self.readiness is not None else None

    # -- hooks a command overrides --------------------------------------------------------

    def metrics_body(self, encoder: Callable[[CollectorRegistry], bytes],
                     content_type: str) -> bytes:
        """The body of ``/metrics`` in the negotiated format; default: the registry's."""
        return encoder(self.registry)

    def error_body(self, request: Request, error: HTTPError) -> tuple[bytes, bytes]:
        """``(content_type, body)`` of an error reply; default
        ``{"error": code, "message": message}``."""
        return JSON, json.dumps({"error": error.code, "message": error.message},
                                separators=(",", ":")).encode() + b"\n"

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":  # websocket: not served
            return
        req = Request(self, scope, receive, send)
        try:
            found = self.match(req.path)
            if found is None:
                raise HTTPError(404, "not_found", f"no endpoint {req.path[:200]}; endpoints: "
                                + ", ".join(self.endpoints()))
            route, req.params = found
            req.endpoint = route.endpoint
            if req.method not in route.methods:
                raise HTTPError(405, "method_not_allowed",
                                f"method {req.method} is not allowed here; use "
                                f"{' or '.join(route.methods)}",
                                [(b"allow", ", ".join(route.methods).encode())])
            await route.handler(req)
        except HTTPError as e:
            await self._error(req, e)
        except Exception:  # never let one request take the process down
            log.exception("event=request_failed server=%s path=%s", self.name, req.path[:200])
            await self._error(req, HTTPError(500, "internal_error", f"the {self.name} failed "
                                             "to handle this request; see its log"))
        if not req.started:  # a route that sent nothing: count what uvicorn answers (500)
            req.count(500)

    async def _error(self, req: Request, e: HTTPError) -> None:
        if req.started:  # the reply is under way: uvicorn closes the connection
            log.warning("event=error_after_reply_started server=%s path=%s status=%d",
                        self.name, req.path[:200], e.status)
            return
        ctype, body = self.error_body(req, e)
        await req.respond(e.status, ctype, body, e.headers)

    # -- built-in routes ----------------------------------------------------------------

    async def _metrics(self, req: Request) -> None:
        encoder, content_type = choose_encoder(req.header(b"accept").decode("latin-1"))
        gz = b"gzip" in req.header(b"accept-encoding").lower()

        def render() -> bytes:
            body = self.metrics_body(encoder, content_type)
            return gzip.compress(body, compresslevel=6) if gz else body

        if self.metrics_in_thread:
            body = await asyncio.get_running_loop().run_in_executor(None, render)
        else:
            body = render()
        extra = [(b"vary", b"Accept, Accept-Encoding")]
        if gz:
            extra.append((b"content-encoding", b"gzip"))
        await req.respond(200, content_type.encode(), body, extra)

    async def _healthy(self, req: Request) -> None:
        await req.respond(200, TEXT, b"OK\n")

    async def _ready_route(self, req: Request) -> None:
        reason = self.not_ready_reason()
        if reason is None:
            await req.respond(200, TEXT, b"ready\n")
        else:
            await req.respond(503, TEXT, f"not ready: {reason}\n".encode())


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol of an app with nothing to start or stop."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def call(app: Any, method: str, path: str, body: bytes = b"",
               headers: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """Call an ASGI app in memory with one request; ``(status, body)`` (docs and tests)."""
    sent: list[MutableMapping[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers),
             "query_string": b""}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), b"".join(m.get("body", b"") for m in sent
                                         if m["type"] == "http.response.body")


# -- the server -----------------------------------------------------------------------


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Any, delay: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay = delay
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if hasattr(self._app, "ready"):
            self._app.ready = False
        if sig == signal.SIGTERM and self._delay > 0 and self._drain_until is None \
                and not self.should_exit:
            self._drain_until = time.monotonic() + self._delay
            log.info("event=draining signal=SIGTERM delay_seconds=%g", self._delay)
            return
        # a signal is worth a line; a stop() from the embedding program (tests, the demo) is not
        log.log(logging.INFO if sig else logging.DEBUG, "event=shutdown signal=%s",
                signal.Signals(sig).name if sig else "stop")
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until \
                and not self.should_exit:
            log.info("event=drained delay_seconds=%g", self._delay)
            self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the captured signal after shutdown (so the process
        # dies by it); a server that stopped cleanly should exit 0 instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in originals.items():
                signal.signal(s, h)


class WebServer:
    """Serves an ASGI app (normally a :class:`WebApp`) with uvicorn on an already bound socket.

    The socket is bound in the constructor (an ``OSError`` such as "address in
    use" comes from there), with ``TCP_NODELAY``, as IPv6 when ``host`` has a
    ``:``.

    On SIGTERM (:meth:`run` in the main thread) or :meth:`shutdown` the app
    turns not ready (``/-/ready`` answers 503) but everything is still served
    for ``shutdown_delay`` seconds; then uvicorn stops accepting connections,
    lets in-flight requests finish (at most ``graceful_timeout`` seconds), and
    :meth:`run` returns 0. SIGINT skips the delay; a second signal stops at once.

    Parameters
    ----------
    app : ASGI application
        With a settable ``ready`` attribute to be turned not ready on SIGTERM.
    host, port : str, int
        Where to listen; ``port=0`` picks a free port (see :attr:`address`).
    web_config : WebConfig, optional
        TLS (``tls``) and basic auth (``users``) from ``--web.config.file``;
        basic auth covers every path but ``exempt``.
    shutdown_delay : float
        Seconds to keep serving, not ready, after SIGTERM.
    graceful_timeout : float
        Longest wait for in-flight requests once the listener is closed.
    exempt : sequence of str
        Paths served without credentials (default: the health checks).
    thread_name : str
        Name of the thread of :meth:`start`.
    """

    def __init__(self, app: Any, host: str = "0.0.0.0", port: int = 0, *,
                 web_config: WebConfig | None = None, shutdown_delay: float = 0.0,
                 graceful_timeout: float = 30.0, exempt: Sequence[str] = EXEMPT_PATHS,
                 thread_name: str = "modelmon-http") -> None:
        self.app = app
        self.web_config = web_config
        self.thread_name = thread_name
        asgi: Any = app
        kwargs: dict[str, Any] = {}
        if web_config is not None:
            kwargs = web_config.uvicorn_kwargs()
            if web_config.users:
                asgi = BasicAuthASGI(app, web_config, exempt)
        self.tls = bool(kwargs)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted sockets inherit TCP_NODELAY from the listener on Linux. Without
            # it the reply's body (written after its headers) waits for the client's
            # delayed ACK: 40 ms per request on loopback.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self.sock = sock
        bound = sock.getsockname()
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        config = uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=int(graceful_timeout),
                                server_header=False, proxy_headers=False, **kwargs)
        self.server = _Server(config, app, shutdown_delay)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def run(self) -> int:
        """Serve in the foreground until SIGTERM/SIGINT (or :meth:`stop`); returns 0."""
        try:
            # uvicorn's own runner: uvloop when installed (the [standard] extra).
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()
        return 0

    def start(self) -> tuple[str, int]:
        """Serve in a background daemon thread; returns the bound ``(host, port)``."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server on {self.url} did not start")
            time.sleep(0.01)
        return self.address

    def shutdown(self) -> None:
        """What SIGTERM does: not ready, keep serving for ``shutdown_delay``, then stop."""
        self.server.handle_exit(signal.SIGTERM, None)

    def stop(self, timeout: float = 10.0, grace: float = 1.0) -> None:
        """Stop now and wait for the thread of :meth:`start`.

        In-flight requests get ``grace`` seconds to finish; then the server stops
        waiting (a TLS connection whose peer never answers the close would
        otherwise hold the shutdown until the TLS close timeout).
        """
        self.server.handle_exit(0, None)  # logged as signal=stop; no drain, like SIGINT
        if self._thread is None:  # never served: only the socket to close
            self.sock.close()
        else:
            self._thread.join(min(grace, timeout))
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout)
