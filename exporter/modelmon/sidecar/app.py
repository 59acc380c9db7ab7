"""The sidecar's ASGI application: event ingest, model list, /metrics, health.

A plain ASGI callable (no framework) so the hot path is: read the body with a
limit, decode and validate it in one msgspec pass, fold the columns into the
Monitor, reply. The sidecar's own routes sit on the HTTP shell every modelmon
server shares (:class:`modelmon.web.WebApp`: ``/metrics``, health, readiness,
errors, the body limit), served by uvicorn (see :mod:`modelmon.sidecar.server`).

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

import logging
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence

import msgspec
import numpy as np
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
from ..web import HTTPError, Request, WebApp, lifespan
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


class SidecarApp(WebApp):
    """ASGI application of ``modelmon sidecar``: its routes on the shared HTTP shell.

    ``/metrics``, ``/-/healthy``, ``/-/ready``, 404/405/500 and the body limit
    come from :class:`modelmon.web.WebApp`; every request is counted per
    endpoint in :class:`SidecarCollector`.

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

    body_limit_hint = " (max_body_bytes); split the batch"

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
        registry = registry if registry is not None else default_registry()
        # small clean batches wait in the Monitor's buffer: counted in bulk at 2,048
        # waiting events or before a scrape, whichever comes first
        self.monitor = Monitor(list(baselines), registry=registry, join_store=join_store,
                               segments=dict(segments or {}), flush_at=2048)
        self.ingestors = {b.model: Ingestor(b, self.monitor, self.limits.max_events_per_request)
                          for b in baselines}
        self.label_ingestors = {b.model: LabelIngestor(b.model, self.monitor,
                                                       self.limits.max_events_per_request)
                                for b in baselines}
        self.own_metrics = SidecarCollector({b.model: b.model_version for b in baselines})
        registry.register(self.own_metrics)
        super().__init__(registry, max_body_bytes=self.limits.max_body_bytes,
                         on_request=self.own_metrics.request, clock=clock, name="sidecar")
        self._models_body = _encode({"models": [
            {"name": b.model, "version": b.model_version, "baseline_id": b.id,
             "features": list(b.features),
             "prediction": b.prediction.name if b.prediction is not None else None,
             "probabilities": list(b.probabilities),
             "events_url": f"/v1/models/{b.model}/events",
             "labels_url": f"/v1/models/{b.model}/labels"} for b in baselines]}) + b"\n"
        self.route("/v1/models/{model}/events", self._events, ("POST",), "events")
        self.route("/v1/models/{model}/labels", self._labels, ("POST",), "labels")
        self.route("/v1/models", self._models, ("GET", "HEAD"), "models")
        self.route("/v1/models/", self._models, ("GET", "HEAD"), "models")

    # -- readiness ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """False while shutting down; mirrored by ``modelmon_sidecar_ready``."""
        return self.own_metrics.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.own_metrics.ready = bool(value)

    # -- routes ---------------------------------------------------------------------

    async def _models(self, req: Request) -> None:
        await req.respond(200, b"application/json", self._models_body)

    async def _events(self, req: Request) -> None:
        await self._ingest(req, "events")

    async def _labels(self, req: Request) -> None:
        await self._ingest(req, "labels")

    async def _ingest(self, req: Request, what: str) -> None:
        """``POST /v1/models/{model}/events`` or ``.../labels`` (``what``)."""
        model = req.params["model"]
        ingestors: Mapping[str, Ingestor | LabelIngestor] = (
            self.ingestors if what == "events" else self.label_ingestors)
        body, ndjson = await self._request_body(req, model, what)
        ing = ingestors[model]
        try:
            result = ing.ingest_ndjson(body) if ndjson else ing.ingest_json(body)
        except RequestError as e:
            raise HTTPError(e.status, e.code, e.message) from None
        reasons = getattr(result, "reasons", None)
        if reasons:
            self.own_metrics.reject(model, reasons)
        await req.respond(200, b"application/json", _encode(result.reply()))

    async def _request_body(self, req: Request, model: str, what: str) -> tuple[bytes, bool]:
        """The checked, decompressed body of a POST of ``what`` (events or labels) to a
        known model, and whether it is NDJSON; an :class:`HTTPError` for anything else."""
        if model not in self.ingestors:
            known = sorted(self.ingestors)
            raise HTTPError(404, "unknown_model", f"unknown model {model[:128]!r}; this "
                            f"sidecar serves {known}")
        headers = req.headers
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if ctype in _JSON_TYPES:
            ndjson = False
        elif ctype in _NDJSON_TYPES:
            ndjson = True
        else:
            raise HTTPError(415, "unsupported_media_type",
                            f"Content-Type {ctype or '(none)'!r} is not accepted; send "
                            f"application/json ({{\"{what}\": [...]}}) or application/x-ndjson "
                            f"(one {what[:-1]} per line)")
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b""):
            raise HTTPError(415, "unsupported_encoding",
                            f"Content-Encoding {encoding.decode('latin-1')!r} is not accepted; "
                            "send identity or gzip")
        limit = self.limits.max_body_bytes
        on_chunk = self._line_counter() if ndjson and encoding != b"gzip" else None
        body = await req.body(limit, on_chunk)
        if encoding == b"gzip":
            body = _gunzip(body, limit)
        return body, ndjson

    def _line_counter(self) -> Callable[[bytes, list[bytes]], None]:
        """An ``on_chunk`` of :meth:`Request.body`: 413 as soon as an NDJSON body has
        more events than ``max_events_per_request``."""
        max_events = self.limits.max_events_per_request
        newlines = 0

        def on_chunk(chunk: bytes, chunks: list[bytes]) -> None:
            nonlocal newlines
            newlines += chunk.count(b"\n")
            if newlines > max_events:
                events = sum(1 for ln in b"".join(chunks).split(b"\n") if ln.strip())
                if events > max_events:
                    raise HTTPError(413, "too_many_events", f"more than {max_events} events "
                                    "in one request (max_events_per_request); split the batch")
        return on_chunk


def _gunzip(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HTTPError(400, "malformed_gzip", f"Content-Encoding gzip: the body is not valid "
                        f"gzip ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise HTTPError(413, "body_too_large", f"the decompressed body is over the limit of "
                        f"{limit} bytes (max_body_bytes); split the batch")
    if not d.eof:
        raise HTTPError(400, "malformed_gzip", "Content-Encoding gzip: the gzip stream is cut "
                        "off before its end")
    return out
