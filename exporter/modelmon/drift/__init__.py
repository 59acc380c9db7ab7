"""The drift exporter: windows of live counts scored against the baseline.

Scrape mode (no metrics store): :class:`DriftScrapeService` reads the replicas'
``/metrics``, sums them, keeps a bounded ring of snapshots to form the windows
(see :mod:`modelmon.drift.scrape` for the window rules), scores every series
with :func:`modelmon.stats.drift_scores`, and exposes the results through
:class:`DriftCollector` and :attr:`DriftScrapeService.latest`.

Query mode (a Prometheus-compatible store holds every replica's series):
:class:`DriftQueryService` reads the windows and baselines through the query
API (:mod:`modelmon.drift.query`, client in :mod:`modelmon.drift.promql`) and
scores them with the same code. See ``docs/drift.md``.

Both modes judge every scored series with the same verdict
(:mod:`modelmon.drift.verdict` over :mod:`modelmon.stats.verdict`): drifted
when the verdict method's score is above its effect floor and its null
quantile at the window's size and Holm-adjusted level (:class:`VerdictSettings`
per model, :meth:`DriftResults.verdicts` for the results).
"""

from .collector import DriftCollector
from .config import parse_duration, parse_listen
from .evaluate import DriftResults, Judged, SampleKey, ScoreKey
from .exposition import SeriesKey, parse_exposition
from .promql import PromClient, QueryError, QueryOptions
from .query import ModelSettings, QuerySource
from .scrape import Windows, WindowStore
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import (
        BaseDriftService,
        DriftApp,
        DriftHTTPServer,
        DriftQueryService,
        DriftScrapeService,
        DriftService,
    )

#: The services serve HTTP (uvicorn): imported on first use, so that scoring windows with
#: this package (QuerySource, the statistics, the results) does not load a web server.
_SERVICE_NAMES = frozenset({"BaseDriftService", "DriftApp", "DriftHTTPServer",
                            "DriftQueryService", "DriftScrapeService", "DriftService"})


def __getattr__(name: str) -> Any:
    if name in _SERVICE_NAMES:
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
from .verdict import VerdictSettings

__all__ = [
    "DriftScrapeService",
    "DriftService",
    "DriftApp",
    "DriftQueryService",
    "BaseDriftService",
    "ModelSettings",
    "QuerySource",
    "PromClient",
    "QueryOptions",
    "QueryError",
    "DriftHTTPServer",
    "DriftCollector",
    "DriftResults",
    "Judged",
    "VerdictSettings",
    "ScoreKey",
    "SampleKey",
    "SeriesKey",
    "WindowStore",
    "Windows",
    "parse_exposition",
    "parse_duration",
    "parse_listen",
]
