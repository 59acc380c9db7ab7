"""The exporter's own counters by reason, and the collector that renders one evaluation whole.

``modelmon_drift_skipped_total{reason}`` and
``modelmon_drift_query_errors_total{reason}`` are exposed for every reason of
their bounded sets (:data:`~modelmon.catalogue.DRIFT_SKIP_REASONS`,
:data:`~modelmon.catalogue.DRIFT_QUERY_ERROR_REASONS`), at 0 until something
happens, so ``rate()`` and ``increase()`` see the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..catalogue import DRIFT_QUERY_ERROR_REASONS, DRIFT_SKIP_REASONS, by_name
from .collector import DriftCollector
from .evaluate import DriftResults

__all__ = ["ResultsCollector", "reason_families"]

_SKIPPED = by_name("modelmon_drift_skipped_total")
_QUERY_ERRORS = by_name("modelmon_drift_query_errors_total")


def reason_families(res: DriftResults | None) -> list[Metric]:
    """The two by-reason counter families of ``res`` (zeros before the first evaluation)."""
    skipped = cast(CounterMetricFamily, _SKIPPED.family())
    errors = cast(CounterMetricFamily, _QUERY_ERRORS.family())
    for reason in DRIFT_SKIP_REASONS:
        skipped.add_metric([reason], float(res.skipped.get(reason, 0)) if res else 0.0)
    for reason in DRIFT_QUERY_ERROR_REASONS:
        errors.add_metric([reason], float(res.query_errors.get(reason, 0)) if res else 0.0)
    return [skipped, errors]


class ResultsCollector(Collector):
    """Every ``modelmon_drift_*`` family, all from one :class:`DriftResults` per scrape.

    Reads ``results()`` once per collect and renders :class:`DriftCollector`'s
    families and the by-reason counters from that one object, so a scrape never
    mixes two evaluations.
    """

    def __init__(self, results: Callable[[], DriftResults | None]) -> None:
        self._results = results

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        res = self._results()
        yield from DriftCollector(lambda: res).collect()
        yield from reason_families(res)
