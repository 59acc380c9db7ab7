"""MemoryJoinStore: one process, bounded (``max_rows``), lost on restart."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from itertools import repeat

from .base import (
    DEFAULT_TTL_SECONDS,
    JoinStoreError,
    Key,
    Remembered,
    _ExpiredCounts,
    _check_ids,
    _check_model,
    _check_put,
    _join_results,
    _positive,
)


class MemoryJoinStore(_ExpiredCounts):
    """In-process join store: an insertion-ordered map, oldest put first.

    Bounded by ``max_rows``: putting more evicts the oldest rows (counted ``cap``).
    Rows older than ``ttl_seconds`` are swept from the old end on every put/take, at
    most ``2 * batch + 1000`` per call (amortised O(1) per row, never a full scan),
    and counted ``ttl``; a row that is found expired by ``take`` is counted then.
    """

    def __init__(self, *, ttl_seconds: float = DEFAULT_TTL_SECONDS, max_rows: int = 1_000_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = float(_positive("ttl_seconds", ttl_seconds))
        self.max_rows = _positive("max_rows", max_rows, integer=True)
        self._clock = clock
        self._rows: OrderedDict[tuple[str, str], tuple[float, Remembered]] = OrderedDict()
        self._expired: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        return len(self._rows)

    def _sweep(self, now: float, budget: int) -> None:
        d = self._rows
        cutoff = now - self.ttl_seconds
        while d and budget > 0:
            key = next(iter(d))
            at, row = d[key]
            if at >= cutoff:
                break
            del d[key]
            self._expired[(key[0], row.model_version, "ttl")] += 1
            budget -= 1
        while len(d) > self.max_rows:
            (model, _), (_, row) = d.popitem(last=False)
            self._expired[(model, row.model_version, "cap")] += 1

    def put(self, model: str, ids: Sequence[str], rows: Sequence[Remembered]) -> None:
        ids = _check_put(model, ids, rows)
        now = self._clock()
        d = self._rows
        with self._lock:
            if self._closed:
                raise JoinStoreError("join store is closed")
            before = len(d)
            keys = list(zip(repeat(model), ids))
            d.update(zip(keys, zip(repeat(now), rows)))
            if len(d) - before < len(keys):
                # Some ids were there already: they keep their old place in the order
                # unless moved, and the old end must stay the oldest put (rare path).
                for k in keys:
                    d.move_to_end(k)
            self._sweep(now, 2 * len(keys) + 1000)

    def take(self, model: str, ids: Sequence[str]) -> list[Remembered | None]:
        _check_model(model)
        ids = _check_ids(ids)
        now = self._clock()
        with self._lock:
            if self._closed:
                raise JoinStoreError("join store is closed")
            pop = self._rows.pop
            found = {}
            for k in ids:
                hit = pop((model, k), None)
                if hit is not None:
                    found[k] = hit
            out = _join_results(ids, found, now, self.ttl_seconds, model, self._expired)
            self._sweep(now, 2 * len(ids) + 1000)
        return out


    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._rows.clear()


# ---------------------------------------------------------------------------
# SQLite

