"""Pure WSGI middleware (PEP 3333): counts the features and predictions of a JSON route.

Needs no framework; with Flask: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app, monitor, ...)``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._paths import MiddlewareBase, countable_response, identity_encoding

__all__ = ["WSGIMiddleware"]


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIMiddleware(MiddlewareBase):
    """Count the events of a JSON prediction endpoint of a WSGI app.

    The request body (``CONTENT_LENGTH`` bytes, at most ``max_body_bytes``) is
    read from ``wsgi.input`` and put back as a ``BytesIO`` of the same bytes, so
    the app reads exactly what the client sent. The response iterable is
    wrapped: chunks are passed on unchanged while being copied, and its
    ``close()`` is called (PEP 3333). When a 2xx JSON response has been
    iterated in full, features are read from the request and the prediction
    (and scores) from the response through the configured paths and passed to
    ``monitor.observe`` (when the server asks for the chunk after the last one;
    a response abandoned half-way is not counted). Anything that
    goes wrong in monitoring is caught and logged (rate-limited); the request
    and response are never affected.

    Parameters are those of :class:`~modelmon.middleware.ASGIMiddleware`;
    ``path`` is matched against ``PATH_INFO``. Requests without a
    ``CONTENT_LENGTH`` (chunked uploads) or with a ``Content-Encoding`` other
    than identity pass through uncounted, their input untouched. Latency is
    measured from the call of the middleware to the end of the response
    iteration; every event of a batch gets the latency of its request.

    Examples
    --------
    With Flask (``docs/middleware.md`` has more)::

        app.wsgi_app = WSGIMiddleware(app.wsgi_app, mon, path="/predict",
                                      features="instances[*]", prediction="predictions[*]")
    """

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") not in self.methods
                or environ.get("PATH_INFO") not in self.paths):
            return self.app(environ, start_response)
        req: _Request | None
        try:
            req = _Request(self, environ)
        except Exception as exc:  # noqa: BLE001
            self._log.report("setup", "modelmon middleware: monitoring disabled for a request "
                              "(%s: %s)", type(exc).__name__, exc)
            req = None
        if req is None or req.skip:
            return self.app(environ, start_response)

        def _start_response(status: str, headers: list[tuple[str, str]],
                            exc_info: Any = None) -> Callable[[bytes], Any]:
            write = (start_response(status, headers) if exc_info is None
                     else start_response(status, headers, exc_info))
            req.start(status, headers)

            def _write(data: bytes) -> Any:
                out = write(data)
                req.chunk(data)
                return out
            return _write

        result = self.app(environ, _start_response)
        if req.skip:  # known already not to be counted: hand back the app's own iterable
            return result
        return _Body(result, req)


class _Request:
    __slots__ = (
        "body",
        "complete",
        "copy_resp",
        "done",
        "mw",
        "resp_chunks",
        "resp_size",
        "skip",
        "started",
        "t0",
        "t_end",
    )

    def __init__(self, mw: WSGIMiddleware, environ: dict[str, Any]) -> None:
        self.mw = mw
        self.t0 = mw.clock()
        self.t_end: float | None = None
        self.skip = False
        self.body = b""
        self.resp_chunks: list[bytes] = []
        self.resp_size = 0
        self.copy_resp = mw.extractor.needs_response
        self.started = False
        self.complete = False
        self.done = False
        if not identity_encoding(str(environ.get("HTTP_CONTENT_ENCODING", ""))):
            self.skip = True
            return
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length <= 0 or length > mw.max_body_bytes:
            self.skip = True
            return
        self.body = _read_body(environ, length)
        if len(self.body) != length:
            self.skip = True

    def _fail(self, exc: BaseException) -> None:
        self.skip = True
        self.body = b""
        self.resp_chunks = []
        self.mw._log.report("copy", "modelmon middleware: monitoring disabled for a request "
                             "(%s: %s)", type(exc).__name__, exc)

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        if self.skip:
            return
        try:
            self.started = True
            self.resp_chunks = []  # start_response may be called again with exc_info
            self.resp_size = 0
            code = int(str(status).split(None, 1)[0])
            if not countable_response(code, headers, self.copy_resp):
                self.skip = True
                return
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def chunk(self, data: bytes) -> None:
        if self.skip or not self.copy_resp or not data:
            return
        try:
            self.resp_size += len(data)
            if self.resp_size > self.mw.max_body_bytes:
                self.skip = True
                self.resp_chunks = []
                return
            self.resp_chunks.append(data if type(data) is bytes else bytes(data))
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def end(self) -> None:
        """The response iterable is exhausted: the body has been handed to the server."""
        if not self.complete:
            try:
                self.t_end = self.mw.clock()
                self.complete = True
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)

    def finish(self) -> None:
        """Count the request's events if the response completed. Never raises."""
        if self.done:
            return
        self.done = True
        try:
            if self.skip or not self.complete or not self.started:
                return
            latency = max(0.0, float(self.t_end) - float(self.t0))  # type: ignore[arg-type]
            resp = b"".join(self.resp_chunks) if self.copy_resp else None
            self.mw.extractor.observe(self.body, resp, latency)
        except Exception as exc:  # noqa: BLE001
            self.mw._log.report("finish", "modelmon middleware: monitoring failed (%s: %s)",
                                 type(exc).__name__, exc)
        finally:
            self.body = b""
            self.resp_chunks = []


class _Body:
    """The app's response iterable, copied as it is iterated; counts when it is exhausted."""

    __slots__ = ("_it", "_req", "_result")

    def __init__(self, result: Iterable[bytes], req: _Request) -> None:
        self._result = result
        self._it: Iterator[bytes] | None = None
        self._req = req

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        if self._it is None:
            self._it = iter(self._result)
        try:
            chunk = next(self._it)
        except StopIteration:
            # The server has written every chunk: count now (servers call close()
            # after finishing the response, but not every caller calls close()).
            self._req.end()
            self._req.finish()
            raise
        except BaseException:
            self._req.skip = True
            raise
        self._req.chunk(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._req.finish()


def _read_body(environ: dict[str, Any], length: int) -> bytes:
    """Read ``length`` bytes of ``wsgi.input`` and put them back for the app.

    If reading fails, the app gets the bytes read so far and then the same error.
    """
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    got = 0
    try:
        while got < length:
            data = stream.read(length - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
    except Exception as exc:  # noqa: BLE001
        environ["wsgi.input"] = _ReplayThenRaise(b"".join(parts), exc)
        return b""
    body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class _ReplayThenRaise(io.BytesIO):
    """Gives back the bytes read before an input error, then raises that error."""

    def __init__(self, data: bytes, exc: Exception) -> None:
        super().__init__(data)
        self._exc = exc
        self._len = len(data)

    def _check(self, n: int | None) -> None:
        if self.tell() >= self._len and n != 0:
            raise self._exc

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        if not out:
            self._check(size)
        return out

    def readline(self, size: int | None = -1) -> bytes:
        out = super().readline(size)
        if not out:
            self._check(size)
        return out
