"""The sidecar's ASGI application: event ingest, model list, /metrics, health.

A plain ASGI callable (no framework) so the hot path is: read the body with a
limit, decode and validate it in one msgspec pass, fold the columns into the
Monitor, reply. Served by uvicorn (see :mod:`modelmon.sidecar.server`).

Endpoints
---------
``POST /v1/models/{model}/events``
    ``application/json`` ``{"events": [...]}`` or ``application/x-ndjson``;
    optionally ``Content-Encoding: gzip``. ``200 {"accepted": n, "rejected":
    [...]}``; whole-request problems: 400, 404, 405, 413, 415.
``POST /v1/models/{model}/labels``
    Ground-truth labels ``{"labels": [{"id", "label", "timestamp"?}]}`` or
    NDJSON, joined to the predictions posted with the same ``id``: ``200
    {"accepted", "matched", "unmatched", "rejected": [...]}``; the same
    whole-request errors.
``GET /v1/models``
    The configured models with their baseline ids.
``GET /metrics``
    Prometheus text format, or OpenMetrics when asked for; gzip when accepted.
``GET /-/healthy``, ``GET /-/ready``
    Liveness, and readiness (503 while shutting down).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from ..baseline import Baseline
from ..catalogue import (
    REQUEST_BUCKETS,
    SIDECAR_ENDPOINTS,
    SIDECAR_EVENTS_REJECTED,
    SIDECAR_READY,
    SIDECAR_REJECT_REASONS,
    SIDECAR_REQUEST_DURATION_SECONDS,
    SIDECAR_REQUESTS,
    le_labels,
)
from ..monitor import Monitor
from ..monitor.joinstore import JoinStore
from ..monitor.outcomes import Segment
from .config import Limits
from .ingest import Ingestor, RequestError
from .labels import LabelIngestor

__all__ = ["SidecarApp", "SidecarCollector", "default_registry", "lifespan"]

log = logging.getLogger("modelmon.sidecar")

_JSON_TYPES = {"application/json"}
_NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
                 "application/x-jsonlines", "application/jsonlines"}
# Series that exist from the start (at 0); others appear when first answered.
_INITIAL_REQUESTS = ([(e, c) for e in ("events", "labels")
                      for c in ("200", "400", "404", "413", "415", "500")]
                     + [(e, "200") for e in ("models", "metrics", "health")])
_encode = msgspec.json.Encoder().encode


def default_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors."""
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    return reg


class SidecarCollector(Collector):
    """Request, duration and rejection counts of the sidecar, exported per scrape.

    Every series of the bounded label sets exists from the start (at 0), so
    ``rate()`` and alerts work before the first error.
    """

    def __init__(self, models: Mapping[str, str]) -> None:
        self.lock = threading.Lock()
        self.requests = dict.fromkeys(_INITIAL_REQUESTS, 0)
        self.durations = {e: np.zeros(len(REQUEST_BUCKETS) + 1, dtype=np.int64)
                          for e in SIDECAR_ENDPOINTS}
        self.duration_sums = {e: 0.0 for e in SIDECAR_ENDPOINTS}
        self.rejected = {(m, v, r): 0 for m, v in models.items() for r in SIDECAR_REJECT_REASONS}
        self.versions = dict(models)
        self.ready = True
        self._les = le_labels(REQUEST_BUCKETS)

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        key = (endpoint, str(code))
        b = bisect_left(REQUEST_BUCKETS, seconds)  # le bucket; per request, so no numpy call
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            self.durations[endpoint][b] += 1
            self.duration_sums[endpoint] += seconds

    def reject(self, model: str, reasons: Mapping[str, int]) -> None:
        v = self.versions[model]
        with self.lock:
            for r, n in reasons.items():
                self.rejected[(model, v, r)] += n

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            requests = dict(self.requests)
            durations = {e: a.copy() for e, a in self.durations.items()}
            sums = dict(self.duration_sums)
            rejected = dict(self.rejected)
            ready = self.ready
        fam = SIDECAR_REQUESTS.family()
        for (e, c), n in sorted(requests.items()):
            fam.add_metric([e, c], n)
        yield fam
        hist = SIDECAR_REQUEST_DURATION_SECONDS.family()
        for e in SIDECAR_ENDPOINTS:
            hist.add([e], self._les, np.cumsum(durations[e]).tolist(), sums[e])
        yield hist
        fam = SIDECAR_EVENTS_REJECTED.family()
        for (m, v, r), n in sorted(rejected.items()):
            fam.add_metric([m, v, r], n)
        yield fam
        g = SIDECAR_READY.family()
        g.add_metric([], 1.0 if ready else 0.0)
        yield g


class _Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class SidecarApp:
    """ASGI application of ``modelmon sidecar``.

    Parameters
    ----------
    baselines : sequence of Baseline
        One per model; the URL name of a model is its baseline's ``model``.
    limits : Limits
        Body size and events-per-request limits.
    registry : CollectorRegistry, optional
        Where the Monitor and the sidecar's own metrics are registered
        (default: a fresh registry with process, platform and GC metrics).
    clock : callable
        Monotonic clock for request durations.
    join_store : JoinStore, optional
        Where predictions with an ``id`` wait for their labels (default: a
        bounded in-memory store; the command line opens SQLite or Redis).
    segments : mapping of model name to Segment sequences, optional
        Segments of the labelled-prediction metrics, per model.
    """

    def __init__(
        self,
        baselines: Sequence[Baseline],
        *,
        limits: Limits | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.perf_counter,
        join_store: JoinStore | None = None,
        segments: Mapping[str, Sequence[Segment]] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.registry = registry if registry is not None else default_registry()
        # small clean batches wait in the Monitor's buffer: counted in bulk at 2,048
        # waiting events or before a scrape, whichever comes first
        self.monitor = Monitor(list(baselines), registry=self.registry, join_store=join_store,
                               segments=dict(segments or {}), flush_at=2048)
        self.ingestors = {b.model: Ingestor(b, self.monitor, self.limits.max_events_per_request)
                          for b in baselines}
        self.label_ingestors = {b.model: LabelIngestor(b.model, self.monitor,
                                                       self.limits.max_events_per_request)
                                for b in baselines}
        self.own_metrics = SidecarCollector({b.model: b.model_version for b in baselines})
        self.registry.register(self.own_metrics)
        self.clock = clock
        self._models_body = _encode({"models": [
            {"name": b.model, "version": b.model_version, "baseline_id": b.id,
             "features": list(b.features),
             "prediction": b.prediction.name if b.prediction is not None else None,
             "probabilities": list(b.probabilities),
             "events_url": f"/v1/models/{b.model}/events",
             "labels_url": f"/v1/models/{b.model}/labels"} for b in baselines]}) + b"\n"

    # -- readiness ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.own_metrics.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.own_metrics.ready = bool(value)

    # -- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":  # websocket: not served
            return
        t0 = self.clock()
        path: str = scope["path"]
        method: str = scope["method"]
        endpoint = "other"
        status = 500
        outer_send = send
        counted = False

        async def send(msg: dict[str, Any]) -> None:  # noqa: F811 - counts, then sends
            # Count the request before its reply leaves, so a client that reads
            # /metrics right after the reply always sees it.
            nonlocal counted
            if not counted and msg["type"] == "http.response.start":
                counted = True
                self.own_metrics.request(endpoint, msg["status"], max(0.0, self.clock() - t0))
            await outer_send(msg)

        try:
            if path.startswith("/v1/models/") and path.endswith("/events"):
                endpoint = "events"
                status = await self._ingest(scope, receive, send, path[11:-7], "events")
            elif path.startswith("/v1/models/") and path.endswith("/labels"):
                endpoint = "labels"
                status = await self._ingest(scope, receive, send, path[11:-7], "labels")
            elif path in ("/v1/models", "/v1/models/"):
                endpoint = "models"
                self._allow(method, ("GET", "HEAD"))
                status = await _send(send, 200, b"application/json", self._models_body,
                                     head=method == "HEAD")
            elif path == "/metrics":
                endpoint = "metrics"
                self._allow(method, ("GET", "HEAD"))
                status = await self._metrics(scope, send, head=method == "HEAD")
            elif path == "/-/healthy":
                endpoint = "health"
                self._allow(method, ("GET", "HEAD"))
                status = await _send(send, 200, b"text/plain; charset=utf-8", b"OK\n")
            elif path == "/-/ready":
                endpoint = "health"
                self._allow(method, ("GET", "HEAD"))
                if self.ready:
                    status = await _send(send, 200, b"text/plain; charset=utf-8", b"ready\n")
                else:
                    status = await _send(send, 503, b"text/plain; charset=utf-8",
                                         b"not ready: shutting down\n")
            else:
                raise _Reply(404, "not_found", f"no endpoint {path[:200]}; endpoints: POST "
                             "/v1/models/{model}/events, POST /v1/models/{model}/labels, GET "
                             "/v1/models, /metrics, /-/healthy, /-/ready")
        except _Reply as r:
            status = await _error(send, r.status, r.code, r.message, r.headers)
        except Exception:  # never let one request take the process down
            log.exception("event=request_failed path=%s", path[:200])
            status = await _error(send, 500, "internal_error",
                                  "the sidecar failed to handle this request; see its log")
        if not counted:  # pragma: no cover - every path replies
            self.own_metrics.request(endpoint, status, max(0.0, self.clock() - t0))

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise _Reply(405, "method_not_allowed",
                         f"method {method} is not allowed here; use {' or '.join(allowed)}",
                         [(b"allow", ", ".join(allowed).encode())])


    async def _metrics(self, scope: dict[str, Any], send: Callable[..., Any], head: bool) -> int:
        headers = _headers(scope)
        encoder, content_type = choose_encoder(headers.get(b"accept", b"").decode("latin-1"))
        body = encoder(self.registry)
        extra: list[tuple[bytes, bytes]] = [(b"vary", b"Accept, Accept-Encoding")]
        if b"gzip" in headers.get(b"accept-encoding", b"").lower():
            body = gzip.compress(body, compresslevel=6)
            extra.append((b"content-encoding", b"gzip"))
        return await _send(send, 200, content_type.encode(), body, extra, head=head)

    async def _ingest(self, scope: dict[str, Any], receive: Callable[..., Any],
                      send: Callable[..., Any], model: str, what: str) -> int:
        """``POST /v1/models/{model}/events`` or ``.../labels`` (``what``)."""
        ingestors: Mapping[str, Ingestor | LabelIngestor] = (
            self.ingestors if what == "events" else self.label_ingestors)
        body, ndjson = await self._request_body(scope, receive, model, what)
        ing = ingestors[model]
        try:
            result = ing.ingest_ndjson(body) if ndjson else ing.ingest_json(body)
        except RequestError as e:
            raise _Reply(e.status, e.code, e.message) from None
        reasons = getattr(result, "reasons", None)
        if reasons:
            self.own_metrics.reject(model, reasons)
        return await _send(send, 200, b"application/json", _encode(result.reply()))

    async def _request_body(self, scope: dict[str, Any], receive: Callable[..., Any],
                            model: str, what: str) -> tuple[bytes, bool]:
        """The checked, decompressed body of a POST of ``what`` (events or labels) to a
        known model, and whether it is NDJSON; a :class:`_Reply` for anything else."""
        self._allow(scope["method"], ("POST",))
        if model not in self.ingestors:
            known = sorted(self.ingestors)
            raise _Reply(404, "unknown_model", f"unknown model {model[:128]!r}; this sidecar "
                         f"serves {known}")
        headers = _headers(scope)
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if ctype in _JSON_TYPES:
            ndjson = False
        elif ctype in _NDJSON_TYPES:
            ndjson = True
        else:
            raise _Reply(415, "unsupported_media_type",
                         f"Content-Type {ctype or '(none)'!r} is not accepted; send "
                         f"application/json ({{\"{what}\": [...]}}) or application/x-ndjson "
                         f"(one {what[:-1]} per line)")
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b""):
            raise _Reply(415, "unsupported_encoding",
                         f"Content-Encoding {encoding.decode('latin-1')!r} is not accepted; "
                         "send identity or gzip")
        limit = self.limits.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _Reply(413, "body_too_large", f"body of {int(length)} bytes is over the "
                         f"limit of {limit} bytes (max_body_bytes); split the batch")
        body = await self._read_body(receive, limit, ndjson and encoding != b"gzip")
        if encoding == b"gzip":
            body = _gunzip(body, limit)
        return body, ndjson

    async def _read_body(self, receive: Callable[..., Any], limit: int, count_lines: bool) -> bytes:
        """The request body; 413 as soon as it passes ``limit`` (or the event limit)."""
        chunks: list[bytes] = []
        size = 0
        newlines = 0
        max_events = self.limits.max_events_per_request
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Reply(400, "incomplete_body", "the client closed the connection before "
                             "the body was complete")
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _Reply(413, "body_too_large", f"body is over the limit of {limit} "
                                 "bytes (max_body_bytes); split the batch")
                chunks.append(chunk)
                if count_lines:
                    newlines += chunk.count(b"\n")
                    if newlines > max_events:
                        events = sum(1 for ln in b"".join(chunks).split(b"\n") if ln.strip())
                        if events > max_events:
                            raise _Reply(413, "too_many_events", f"more than {max_events} events "
                                         "in one request (max_events_per_request); split the "
                                         "batch")
            if not msg.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def lifespan(receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answer the ASGI lifespan protocol of an app with nothing to start or stop."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _gunzip(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _Reply(400, "malformed_gzip", f"Content-Encoding gzip: the body is not valid "
                     f"gzip ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise _Reply(413, "body_too_large", f"the decompressed body is over the limit of {limit} "
                     "bytes (max_body_bytes); split the batch")
    if not d.eof:
        raise _Reply(400, "malformed_gzip", "Content-Encoding gzip: the gzip stream is cut off "
                     "before its end")
    return out


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


async def _send(send: Callable[..., Any], status: int, content_type: bytes, body: bytes,
                extra: Sequence[tuple[bytes, bytes]] = (), head: bool = False) -> int:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
    return status


async def _error(send: Callable[..., Any], status: int, code: str, message: str,
                 extra: Sequence[tuple[bytes, bytes]] = ()) -> int:
    body = _encode({"error": code, "message": message}) + b"\n"
    return await _send(send, status, b"application/json", body, extra)
