"""The drift exporter services, their loop and their HTTP endpoints.

:class:`DriftScrapeService` is scrape mode (reads the replicas' ``/metrics``);
:class:`DriftQueryService` is query mode (reads a Prometheus-compatible store
through its query API, see :mod:`modelmon.drift.query`). Both share
:class:`BaseDriftService`: the results swap, the loop, the self-monitoring
counters and the HTTP server.

In-process use (what the demo does)::

    svc = DriftScrapeService(["http://127.0.0.1:8000/metrics"], window=60, interval=5,
                       min_samples=50)
    host, port = svc.serve("127.0.0.1", 0)   # /metrics, /-/healthy, /-/ready
    svc.start()                               # evaluates every `interval` in a daemon thread
    ...
    res = svc.latest                          # DriftResults or None before the first evaluation
    res.scores[ScoreKey("m", "1", "feature", "x", "psi", "baseline")]
    svc.stop()

Tests call :meth:`DriftScrapeService.evaluate_once` directly with a fake clock.

Query mode::

    svc = DriftQueryService("http://prometheus:9090", window=3600, interval=60)
    svc.serve("0.0.0.0", 10381)
    svc.start()                               # evaluates at every multiple of `interval`
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import MappingProxyType
from urllib.parse import urlsplit

import numpy as np
import requests
from prometheus_client.registry import CollectorRegistry

from ..baseline import Baseline
from ..catalogue import DRIFT_METHODS
from ..web import HTTPError, Request, WebApp, WebServer
from ..webconfig import WebConfig
from .collector import DURATION_BUCKETS, DURATION_LES, DriftCollector, score_exposition
from .evaluate import EMPTY_SCORES, BaselineTable, DriftResults, compute_scores, estimate
from .exposition import FAMILY_PREDICTION_VALUE, SeriesKey
from .exposition import Exposition
from .promql import PromClient, QueryOptions
from .query import (
    BASELINE_REFRESH_SECONDS,
    DEFAULT_CONCURRENCY,
    EvaluationFailed,
    ModelSettings,
    QuerySource,
)
from .scrape import ScrapeError, WindowStore, fetch
from .verdict import DEFAULT_VERDICT, VerdictSettings

__all__ = ["BaseDriftService", "DriftScrapeService", "DriftService", "DriftQueryService", "DriftApp", "DriftHTTPServer"]

log = logging.getLogger("modelmon.drift")


class BaseDriftService:
    """What both modes share: results, evaluation loop, self-monitoring and HTTP.

    A subclass implements :meth:`evaluate_once`, which must publish its
    :class:`DriftResults` with one reference assignment to ``self._latest``
    (scrapes see that evaluation or the one before, never a mix).

    ``/-/ready`` answers 200 once the first evaluation has finished, whether or
    not its sources answered (its metrics then say ``source_up 0``); it does
    not go back to 503 when a source fails later.
    """

    def __init__(self, *, interval: float, registry: CollectorRegistry | None,
                 clock: Callable[[], float]) -> None:
        self.interval = float(interval)
        self.clock = clock
        self.registry = registry if registry is not None else CollectorRegistry()
        #: Renders the latest results (scores, self-monitoring, by-reason counters).
        self.collector = DriftCollector(lambda: self._latest)
        self.registry.register(self.collector)

        self._latest: DriftResults | None = None
        self._eval_lock = threading.Lock()
        self._evaluations = 0
        self._last_success: float | None = None
        self._dur_counts = np.zeros(len(DURATION_LES))
        self._dur_sum = 0.0
        self._skipped: Counter[str] = Counter()
        self._query_errors: Counter[str] = Counter()
        self._skips_logged: set[tuple[str, ...]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: DriftHTTPServer | None = None

    # -- results ----------------------------------------------------------------------

    @property
    def latest(self) -> DriftResults | None:
        """The results of the last evaluation (immutable), None before the first."""
        return self._latest

    @property
    def ready(self) -> bool:
        return self._latest is not None

    def evaluate_once(self) -> DriftResults:  # pragma: no cover - abstract
        raise NotImplementedError

    def _observe_duration(self, duration: float) -> None:
        i = int(np.searchsorted(DURATION_BUCKETS, duration, side="left"))
        self._dur_counts[i] += 1
        self._dur_sum += duration

    def _duration_fields(self) -> dict[str, object]:
        return {"duration_les": DURATION_LES,
                "duration_cumulative": tuple(np.cumsum(self._dur_counts).tolist()),
                "duration_sum": self._dur_sum}

    def _on_skip(self, key: SeriesKey, reason: str) -> None:
        self._skipped[reason] += 1
        tag = (reason,) + tuple(key)
        if tag not in self._skips_logged:
            self._skips_logged.add(tag)
            log.warning("event=series_skipped reason=%s model=%r model_version=%r series=%s/%r",
                        reason, key.model, key.model_version, key.family, key.name)

    # -- loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Evaluate now and then every ``interval`` seconds, in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="modelmon-drift", daemon=True)
        self._thread.start()

    def _evaluate_logged(self) -> None:
        try:
            self.evaluate_once()
        except Exception:  # a bug must not end the loop; it is logged with its traceback
            log.exception("event=evaluation_failed")

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._evaluate_logged()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind: skip the missed ticks instead of bursting
                next_at = time.monotonic()
                delay = 0.0
            if self._stop.wait(delay):
                break

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and the HTTP server (if any); waits for a running evaluation."""
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout)
            self._thread = None
        http = self._http
        if http is not None:
            http.stop(timeout)
            self._http = None

    # -- HTTP -------------------------------------------------------------------------

    def serve(self, host: str = "0.0.0.0", port: int = 10381,
              web_config: WebConfig | None = None) -> tuple[str, int]:
        """Serve ``/metrics``, ``/-/healthy`` and ``/-/ready`` in a daemon thread.

        Returns the bound ``(host, port)`` (pass ``port=0`` for a free port).
        :meth:`stop` shuts the server down. With ``web_config`` (see
        :func:`modelmon.webconfig.load_web_config`) the server speaks TLS when
        ``web_config.tls`` is set, and every endpoint but ``/-/healthy`` and
        ``/-/ready`` needs basic auth when ``web_config.users`` is not empty.
        The server is the one the sidecar uses too (:mod:`modelmon.web`).
        """
        if self._http is not None:
            raise RuntimeError("already serving")
        server = DriftHTTPServer((host, port), self, web_config)
        self._http = server
        return server.start()


def _scrape_reason(message: str) -> str:
    """The query-error reason of a scrape failure message of :func:`~modelmon.drift.scrape.fetch`."""
    if message.startswith("timeout"):
        return "timeout"
    if message.startswith("request failed"):
        return "connection"
    if message.startswith("HTTP "):
        code = message[5:8]
        if code.startswith("5"):
            return "http_5xx"
        if code.startswith("4"):
            return "http_4xx"
    return "bad_response"


class DriftScrapeService(BaseDriftService):
    """Scrapes the replicas' ``/metrics``, forms windows, scores drift, exposes the results.

    Parameters
    ----------
    sources : sequence of str
        ``/metrics`` URLs of the replicas (their counts are summed).
    window : float
        Window length ``W`` in seconds (see :mod:`modelmon.drift.scrape`).
    interval : float
        Seconds between evaluations of the background loop.
    min_samples : int
        Scores are exported only when the current window (and, against the
        previous window, both windows) hold at least this many samples.
    registry : CollectorRegistry or None
        Where the :class:`DriftCollector` is registered; a new registry when None.
    clock : callable
        Unix time in seconds; timestamps and windows use it (a seam for tests).
    session : requests.Session or None
        HTTP session for the scrapes; a new one when None.
    timeout : float or None
        Per-scrape timeout in seconds; default ``min(10, interval)``.
    verdict : VerdictSettings
        The drift verdict of every model without one of its own.
    models : mapping of model name to ModelSettings
        Per-model settings; only ``verdict`` is used in scrape mode.
    """

    def __init__(
        self,
        sources: Sequence[str],
        *,
        window: float = 900.0,
        interval: float = 15.0,
        min_samples: int = 100,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        timeout: float | None = None,
        verdict: VerdictSettings = DEFAULT_VERDICT,
        models: Mapping[str, ModelSettings] | None = None,
    ) -> None:
        srcs = [str(s) for s in sources]
        if not srcs:
            raise ValueError("sources: at least one /metrics URL is needed")
        for s in srcs:
            u = urlsplit(s)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise ValueError(f"sources: {s!r} is not an http(s) URL")
        dupes = sorted({s for s in srcs if srcs.count(s) > 1})
        if dupes:
            raise ValueError(f"sources: given more than once (their counts would be summed "
                             f"twice): {', '.join(dupes)}")
        if not window > 0:
            raise ValueError(f"window: expected seconds > 0, got {window!r}")
        if not interval > 0:
            raise ValueError(f"interval: expected seconds > 0, got {interval!r}")
        if not isinstance(min_samples, int) or min_samples < 0:
            raise ValueError(f"min_samples: expected an integer >= 0, got {min_samples!r}")
        super().__init__(interval=interval, registry=registry, clock=clock)
        self.sources: tuple[str, ...] = tuple(srcs)
        self.window = float(window)
        self.min_samples = min_samples
        self.timeout = float(timeout) if timeout is not None else min(10.0, self.interval)
        self.session = session if session is not None else requests.Session()
        self.verdict = verdict
        self._verdicts = {m: s.verdict for m, s in (models or {}).items()
                          if s.verdict is not None}

        self._store = WindowStore(self.window, self.interval)
        self._baseline = BaselineTable()
        self._source_ok: dict[str, bool | None] = {s: None for s in self.sources}

    def verdict_of(self, model: str) -> VerdictSettings:
        """The verdict settings of ``model``."""
        return self._verdicts.get(model, self.verdict)

    @property
    def snapshots(self) -> int:
        """Snapshots currently kept in the ring."""
        return len(self._store.snapshots)

    # -- one evaluation -----------------------------------------------------------------

    def evaluate_once(self) -> DriftResults:
        """Scrape every source, update the windows, score, and publish the results."""
        with self._eval_lock:
            t0 = time.perf_counter()
            fetched = self._scrape_all()
            now = float(self.clock())
            ok: dict[str, Exposition] = {}
            errors: dict[str, str] = {}
            for src in self.sources:
                r = fetched[src]
                if isinstance(r, Exposition):
                    ok[src] = r
                    self._store.ingest(src, r, now)
                else:
                    errors[src] = r
                    self._query_errors[_scrape_reason(r)] += 1
                self._note_source(src, r)
            snap = self._store.snapshot(now)
            self._baseline.update(ok[s] for s in self.sources if s in ok)
            windows = self._store.windows()
            scored = compute_scores(windows, self._baseline, self.min_samples, self._on_skip,
                                    settings_of=self.verdict_of)
            estimates = {}
            for (m, v), cal in self._baseline.calibrations.items():
                key = SeriesKey(m, v, FAMILY_PREDICTION_VALUE, cal.output)
                if key in windows.current:
                    est = estimate(cal, windows.labels[key], windows.current[key],
                                   self.min_samples)
                    if est is not None:
                        estimates[(m, v)] = MappingProxyType(est)
            duration = time.perf_counter() - t0
            self._evaluations += 1
            self._observe_duration(duration)
            finished = max(float(self.clock()), snap.timestamp)
            if not errors:
                self._last_success = finished
            res = DriftResults(
                timestamp=finished,
                scored=scored,
                estimates=MappingProxyType(estimates),
                sources_up=MappingProxyType({s: s not in errors for s in self.sources}),
                source_errors=MappingProxyType(errors),
                last_success_timestamp=self._last_success,
                window_seconds=windows.current_seconds,
                previous_window_seconds=windows.previous_seconds,
                evaluations=self._evaluations,
                duration_seconds=duration,
                min_samples=self.min_samples,
                skipped=MappingProxyType(dict(self._skipped)),
                query_errors=MappingProxyType(dict(self._query_errors)),
                **self._duration_fields(),  # type: ignore[arg-type]
            )
            self._latest = res  # one reference swap: scrapes see this or the previous one
            return res

    def _scrape_all(self) -> dict[str, Exposition | str]:
        def one(src: str) -> Exposition | str:
            try:
                return fetch(self.session, src, self.timeout)
            except ScrapeError as exc:
                return str(exc)
            except Exception as exc:  # never let one source break the evaluation
                return f"unexpected error: {type(exc).__name__}: {exc}"

        if len(self.sources) == 1:
            return {self.sources[0]: one(self.sources[0])}
        with ThreadPoolExecutor(max_workers=min(8, len(self.sources)),
                                thread_name_prefix="modelmon-drift-scrape") as pool:
            return dict(zip(self.sources, pool.map(one, self.sources)))

    def _note_source(self, src: str, r: Exposition | str) -> None:
        was = self._source_ok[src]
        if isinstance(r, str):
            if was is not False:
                log.warning("event=source_down source=%s error=%r", src, r)
            else:
                log.debug("event=source_down source=%s error=%r", src, r)
            self._source_ok[src] = False
        else:
            if was is False:
                log.info("event=source_up source=%s", src)
            if r.rejected and ("rejected", src) not in self._skips_logged:
                self._skips_logged.add(("rejected", src))
                log.warning("event=samples_rejected source=%s count=%d reason=%r", src, r.rejected,
                            "missing labels, bad le or negative/non-finite value")
            self._source_ok[src] = True


#: The old name of :class:`DriftScrapeService` (scrape mode), kept for code that imports it.
DriftService = DriftScrapeService


class DriftQueryService(BaseDriftService):
    """Query mode: drift of the whole fleet from a Prometheus-compatible store.

    Every evaluation reads the windows and the baselines at one evaluation
    time ``t`` through the query API (see :mod:`modelmon.drift.query`) and
    scores them with the same code as scrape mode.

    ``t`` is the clock minus ``evaluation_delay``, rounded down to a multiple
    of ``interval``: two exporters (HA) with the same settings evaluate at the
    same ``t`` and so export identical values; the delay leaves the store time
    to ingest the newest scrapes. The loop wakes up at each such ``t`` plus the
    delay.

    When a query fails, the evaluation is dropped whole: the scores and sample
    gauges of the last successful evaluation stay exported unchanged,
    ``modelmon_drift_source_up`` is 0, ``modelmon_drift_last_success_timestamp_seconds``
    stops advancing and ``modelmon_drift_query_errors_total{reason}`` counts
    the failures. The next evaluation that succeeds replaces everything.

    Parameters
    ----------
    url : str
        Base URL of the query API (``/api/v1/query`` is appended).
    window, interval, min_samples, methods :
        Defaults for every model (seconds, seconds, samples, drift methods).
    models : mapping of model name to ModelSettings
        Per-model window, min_samples, methods and verdict.
    verdict : VerdictSettings
        The drift verdict of every model without one of its own.
    baselines : sequence of Baseline
        Each replaces the store's baseline gauges of its model version.
    options : QueryOptions or None
        Headers, auth, TLS and timeout of the store connection.
    session : requests.Session or None
        HTTP session (a seam for tests); a new one when None.
    registry, clock :
        As for :class:`DriftScrapeService`.
    concurrency : int
        Queries in flight at once.
    evaluation_delay : float
        Seconds the evaluation time lags the clock.
    baseline_refresh : float
        Seconds a read of the baseline gauges is reused at most (see
        :class:`~modelmon.drift.query.QuerySource`).
    """

    def __init__(
        self,
        url: str,
        *,
        window: float = 3600.0,
        interval: float = 60.0,
        min_samples: int = 100,
        methods: Sequence[str] = DRIFT_METHODS,
        models: Mapping[str, ModelSettings] | None = None,
        baselines: Sequence[Baseline] = (),
        options: QueryOptions | None = None,
        session: requests.Session | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        concurrency: int = DEFAULT_CONCURRENCY,
        evaluation_delay: float = 0.0,
        baseline_refresh: float = BASELINE_REFRESH_SECONDS,
        verdict: VerdictSettings = DEFAULT_VERDICT,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval: expected seconds > 0, got {interval!r}")
        if not evaluation_delay >= 0:
            raise ValueError(f"evaluation_delay: expected seconds >= 0, got {evaluation_delay!r}")
        client = PromClient(url, options, session)
        source = QuerySource(client, window=window, min_samples=min_samples, methods=methods,
                             models=models, baselines=baselines, concurrency=concurrency,
                             on_skip=self._on_skip, baseline_refresh=baseline_refresh,
                             verdict=verdict)
        super().__init__(interval=interval, registry=registry, clock=clock)
        self.client = client
        self.source = source
        self.url = client.source  # without credentials: the source_up label
        self.window = source.window
        self.min_samples = source.min_samples
        self.evaluation_delay = float(evaluation_delay)
        self._good: DriftResults | None = None
        self._up: bool | None = None

    def evaluation_time(self) -> float:
        """The evaluation time for now: ``clock() - evaluation_delay`` rounded down to the interval grid."""
        t = float(self.clock()) - self.evaluation_delay
        return math.floor(t / self.interval) * self.interval

    def evaluate_once(self, at: float | None = None) -> DriftResults:
        """Query the store at ``at`` (default :meth:`evaluation_time`), score, publish."""
        with self._eval_lock:
            t0 = time.perf_counter()
            t = self.evaluation_time() if at is None else float(at)
            self.client.reload_credentials()
            try:
                ev = self.source.evaluate(t)
                failed: EvaluationFailed | None = None
            except EvaluationFailed as exc:
                ev, failed = None, exc
            duration = time.perf_counter() - t0
            self._evaluations += 1
            self._observe_duration(duration)
            finished = float(self.clock())
            src = self.url
            if failed is None:
                assert ev is not None
                self._last_success = finished
                if self._up is False:
                    log.info("event=source_up source=%s", src)
                self._up = True
                res = DriftResults(
                    timestamp=finished,
                    scored=ev.scored,
                    estimates=ev.estimates,
                    sources_up=MappingProxyType({src: True}),
                    source_errors=MappingProxyType({}),
                    last_success_timestamp=finished,
                    window_seconds=self.window,
                    previous_window_seconds=self.window,
                    evaluations=self._evaluations,
                    duration_seconds=duration,
                    min_samples=self.min_samples,
                    info=MappingProxyType({"mode": "query", "evaluation_time": t,
                                           "models": ev.models, "queries": ev.queries,
                                           "baseline_read": ev.baseline_read}),
                    skipped=MappingProxyType(dict(self._skipped)),
                    query_errors=MappingProxyType(dict(self._query_errors)),
                    **self._duration_fields(),  # type: ignore[arg-type]
                )
                self._good = res
            else:
                for err in failed.errors:
                    self._query_errors[err.reason] += 1
                level = logging.WARNING if self._up is not False else logging.DEBUG
                log.log(level, "event=source_down source=%s error=%r", src, str(failed))
                self._up = False
                fields: dict[str, object] = {
                    "timestamp": finished,
                    "sources_up": MappingProxyType({src: False}),
                    "source_errors": MappingProxyType({src: str(failed)}),
                    "last_success_timestamp": self._last_success,
                    "evaluations": self._evaluations,
                    "duration_seconds": duration,
                    "skipped": MappingProxyType(dict(self._skipped)),
                    "query_errors": MappingProxyType(dict(self._query_errors)),
                    **self._duration_fields(),
                }
                good = self._good
                if good is not None:  # keep the last complete results, marked down
                    info = {**good.info, "failed_evaluation_time": t}
                    res = replace(good, info=MappingProxyType(info), **fields)  # type: ignore[arg-type]
                else:
                    res = DriftResults(
                        scored=EMPTY_SCORES,
                        window_seconds=self.window,
                        previous_window_seconds=self.window,
                        min_samples=self.min_samples,
                        info=MappingProxyType({"mode": "query", "failed_evaluation_time": t}),
                        **fields,  # type: ignore[arg-type]
                    )
            self._latest = res  # one reference swap: scrapes see this or the previous one
            return res

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._evaluate_logged()
            now = float(self.clock())
            t = now - self.evaluation_delay
            nxt = (math.floor(t / self.interval) + 1) * self.interval + self.evaluation_delay
            delay = min(max(nxt - now, 0.0), self.interval)
            if self._stop.wait(delay + 0.001):
                break


class DriftApp(WebApp):
    """The drift exporter's ASGI app: the shared shell (:class:`modelmon.web.WebApp`) with
    the drift exporter's ``/metrics`` body, readiness and error bodies.

    ``/metrics`` renders the registry and the pre-rendered score lines of the
    same results object (in a worker thread); ``/-/ready`` is 503 ``not ready:
    no evaluation yet`` until the first evaluation; errors are
    ``{"error": "not found", "path": ..., "endpoints": [...]}`` (404) and
    ``{"error": "method not allowed", "method": ...}`` (405).
    """

    def __init__(self, service: BaseDriftService) -> None:
        super().__init__(service.registry, readiness=self._readiness, metrics_in_thread=True,
                         name="drift exporter")
        self.service = service

    def _readiness(self) -> str | None:
        return None if self.service.ready else "no evaluation yet"

    def metrics_body(self, encoder: Callable[[CollectorRegistry], bytes],
                     content_type: str) -> bytes:
        svc = self.service
        openmetrics = content_type.startswith("application/openmetrics-text")
        res = svc.latest  # one results object for the whole scrape
        with svc.collector.split(res):
            body = encoder(svc.registry)
        scores = score_exposition(res, openmetrics)
        if scores:
            eof = b"# EOF\n"
            if openmetrics and body.endswith(eof):
                body = body[:-len(eof)] + scores + eof
            else:
                body += scores
        return body

    def error_body(self, request: Request, error: HTTPError) -> tuple[bytes, bytes]:
        doc: dict[str, object]
        if error.status == 404:
            doc = {"error": "not found", "path": request.path,
                   "endpoints": ["/metrics", "/-/healthy", "/-/ready"]}
        elif error.status == 405:
            doc = {"error": "method not allowed", "method": request.method}
        else:
            doc = {"error": error.code.replace("_", " "), "message": error.message}
        return b"application/json", json.dumps(doc).encode() + b"\n"


class DriftHTTPServer(WebServer):
    """The drift exporter's HTTP server: the shared :class:`modelmon.web.WebServer`
    serving a :class:`DriftApp` (kept under this name for ``modelmon.drift``'s API).

    With a :class:`~modelmon.webconfig.WebConfig`: TLS when it has ``tls``
    (uvicorn runs each handshake on its own connection, so a client that never
    completes it holds up no one), and basic auth on every path but
    :data:`~modelmon.webconfig.EXEMPT_PATHS` when it has ``users``.
    :meth:`~modelmon.web.WebServer.start` serves in a background thread.
    """

    def __init__(self, address: tuple[str, int], service: BaseDriftService,
                 web_config: WebConfig | None = None) -> None:
        super().__init__(DriftApp(service), address[0], address[1], web_config=web_config,
                         graceful_timeout=10.0, thread_name="modelmon-drift-http")
        self.service = service

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (as :class:`http.server.HTTPServer` names it)."""
        return self.address
