"""Pure ASGI middleware: counts the features and predictions of a JSON prediction route.

Needs no framework (Starlette and FastAPI apps are plain ASGI apps).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._paths import MiddlewareBase, countable_response, identity_encoding

__all__ = ["ASGIMiddleware"]


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]



class ASGIMiddleware(MiddlewareBase):
    """Count the events of a JSON prediction endpoint of an ASGI app.

    The request body is copied as the app reads it (it is never read ahead and
    the app sees exactly what the client sent) and the response body is copied
    as it is forwarded, unchanged and at once. When a 2xx JSON response has been
    sent in full, features are read from the request and the prediction (and
    scores) from the response through the configured paths, and passed to
    ``monitor.observe``. Anything that goes wrong in monitoring is caught and
    logged (rate-limited); the request and response are never affected.

    Parameters
    ----------
    app : ASGI application
    monitor : Monitor
    path : str or sequence of str
        Exact request path(s) (``scope["path"]``) to monitor; others pass through.
    methods : sequence of str
        HTTP methods to monitor.
    features : str or callable
        Path of the features in the request JSON (``"features"`` for one event
        per request, ``"instances[*]"`` for a batch, ``"$"`` for the whole body),
        or a function of the decoded body. See :mod:`modelmon.middleware`.
    prediction : str, callable or None
        Path of the prediction in the response JSON (``"predictions[*]"`` for a
        batch); None to count features only (the response is then not copied).
    probabilities : str, callable or None
        Path of the class score(s) in the response JSON.
    model : str, optional
        Model name, for a Monitor that serves several models.
    max_body_bytes : int
        Requests or responses larger than this are not copied and not counted.
    clock : callable
        Seconds, for latency: from the call of the middleware to the end of the
        response body. Every event of a batch gets the latency of its request.

    Notes
    -----
    Put this middleware inside any compression middleware: responses (or
    requests) with a ``Content-Encoding`` other than identity are not counted.
    Decoding and counting run on the event loop after the response has been
    sent (a few microseconds per event; up to ``max_body_bytes`` of JSON).

    Examples
    --------
    With Starlette or FastAPI (``docs/middleware.md`` has more)::

        app.add_middleware(ASGIMiddleware, monitor=mon, path="/predict",
                           features="instances[*]", prediction="predictions[*]")
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope.get("type") != "http" or scope.get("method") not in self.methods
                or scope.get("path") not in self.paths):
            await self.app(scope, receive, send)
            return
        try:
            req = _Request(self, scope, receive, send)
        except Exception as exc:  # noqa: BLE001
            self._log.report("setup", "modelmon middleware: monitoring disabled for a request "
                              "(%s: %s)", type(exc).__name__, exc)
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, req.receive, req.send)
        finally:
            req.finish()


class _Request:
    """Copies of one request's bodies, as they pass."""

    __slots__ = (
        "_receive",
        "_send",
        "complete",
        "copy_resp",
        "mw",
        "req_chunks",
        "req_done",
        "req_size",
        "resp_chunks",
        "resp_size",
        "skip",
        "status",
        "t0",
        "t_end",
    )

    def __init__(self, mw: ASGIMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.mw = mw
        self._receive = receive
        self._send = send
        self.t0 = mw.clock()
        self.t_end: float | None = None
        self.skip = False
        self.req_chunks: list[bytes] = []
        self.req_size = 0
        self.req_done = False
        self.resp_chunks: list[bytes] = []
        self.resp_size = 0
        self.copy_resp = mw.extractor.needs_response
        self.status = 0
        self.complete = False
        for k, v in scope.get("headers") or ():
            if k.lower() == b"content-encoding" and not identity_encoding(v):
                self.skip = True

    def _fail(self, exc: BaseException) -> None:
        self.skip = True
        self.req_chunks = []
        self.resp_chunks = []
        self.mw._log.report("copy", "modelmon middleware: monitoring disabled for a request "
                             "(%s: %s)", type(exc).__name__, exc)

    async def receive(self) -> Message:
        message = await self._receive()
        if not self.skip:
            try:
                self._see_request(message)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
        return message

    def _see_request(self, message: Message) -> None:
        t = message.get("type")
        if t == "http.request":
            body = message.get("body") or b""
            if body:
                self.req_size += len(body)
                if self.req_size > self.mw.max_body_bytes:
                    self.skip = True
                    self.req_chunks = []
                    return
                self.req_chunks.append(body if type(body) is bytes else bytes(body))
            if not message.get("more_body", False):
                self.req_done = True
        elif t == "http.disconnect" and not self.complete:
            # The client left before the whole response was sent. (A disconnect
            # after the response, as Starlette's StreamingResponse listens for, is fine.)
            self.skip = True

    async def send(self, message: Message) -> None:
        await self._send(message)
        if not self.skip:
            try:
                self._see_response(message)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)

    def _see_response(self, message: Message) -> None:
        t = message.get("type")
        if t == "http.response.start":
            self.status = int(message.get("status", 0))
            if not countable_response(self.status, message.get("headers") or (),
                                      self.copy_resp):
                self.skip = True
                return
        elif t == "http.response.body":
            if self.copy_resp:
                body = message.get("body") or b""
                if body:
                    self.resp_size += len(body)
                    if self.resp_size > self.mw.max_body_bytes:
                        self.skip = True
                        self.resp_chunks = []
                        return
                    self.resp_chunks.append(body if type(body) is bytes else bytes(body))
            if not message.get("more_body", False):
                self.t_end = self.mw.clock()
                self.complete = True

    def finish(self) -> None:
        """Count the request's events if it completed normally. Never raises."""
        try:
            if self.skip or not self.complete or not self.req_done or self.status == 0:
                return
            latency = max(0.0, float(self.t_end) - float(self.t0))  # type: ignore[arg-type]
            resp = b"".join(self.resp_chunks) if self.copy_resp else None
            self.mw.extractor.observe(b"".join(self.req_chunks), resp, latency)
        except Exception as exc:  # noqa: BLE001
            self.mw._log.report("finish", "modelmon middleware: monitoring failed (%s: %s)",
                                 type(exc).__name__, exc)
        finally:
            self.req_chunks = []
            self.resp_chunks = []
