"""Scrape mode: read ``/metrics`` of the monitored replicas and keep window snapshots.

Without a metrics store the exporter forms the windows itself:

1. Each evaluation reads every source (one URL per replica). For every series
   (a histogram, or the counters of one categorical feature or of the
   predicted class) it keeps the source's previous raw values and adds the
   increase to a running total shared by all replicas, so replicas are summed.
   The increase follows Prometheus ``increase()``: ``cur - prev``, or ``cur``
   when the series went down (a counter reset: the process restarted). Reset
   detection is per series *group*: if any bucket (or any category) of it went
   down, the whole group restarted, so every bucket takes ``cur``. That is
   stricter than bucket-by-bucket resets, which would mix the two rules within
   one histogram after a restart.
2. The first successful read of a source only records its values (counts of
   unknown age are never attributed to a window, as in Prometheus, where the
   first sample of a series has no increase). The same holds when the source's
   last successful read is older than the window (a long outage). A series that
   appears on a source already being read counts in full (it started since the
   last read). A source that fails keeps its previous values, so when it comes
   back its counts are compared with those: lower means restarted.
3. After reading, the running totals are appended to a bounded ring of
   snapshots ``(timestamp, totals)``.

Windows, with ``now`` the time of the newest snapshot and ``W`` the window:

* current = totals(now) - totals(S1), where S1 is the newest snapshot taken at
  or before ``now - W``; while the history is shorter than ``W``, S1 is the
  oldest snapshot (so the current window covers all history so far).
* previous = totals(S1) - totals(S2), S2 the newest snapshot at or before
  ``now - 2W``; only once the history covers ``2W`` (S2 exists and differs from
  S1). Before that there is no previous window.

The ring keeps the newest snapshot at or before ``now - 2W`` and everything
after it, and never more than ``2 * ceil(W / interval) + 4`` snapshots. The
totals of a snapshot are one flat array shared with the layout (series ->
slice) of the evaluation that made it, so a snapshot costs one float per
bucket.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import requests

from .exposition import Exposition, SeriesKey, parse_exposition

__all__ = ["ScrapeError", "fetch", "WindowStore", "Windows", "Snapshot", "ACCEPT"]

log = logging.getLogger("modelmon.drift")

#: Ask for the classic text format: it is what prometheus_client's parser reads.
ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"
#: Refuse pages larger than this (a misconfigured URL pointing at a big file).
MAX_BYTES = 64 * 1024 * 1024


class ScrapeError(Exception):
    """A source that could not be read; the message says why, in one line."""


def fetch(session: requests.Session, url: str, timeout: float) -> Exposition:
    """Read and parse one ``/metrics`` page; every failure is a :class:`ScrapeError`."""
    try:
        resp = session.get(url, timeout=timeout, headers={"Accept": ACCEPT})
    except requests.Timeout:
        raise ScrapeError(f"timeout after {timeout:g}s") from None
    except requests.RequestException as exc:
        raise ScrapeError(f"request failed: {type(exc).__name__}: {_one_line(exc)}") from None
    try:
        if resp.status_code != 200:
            raise ScrapeError(f"HTTP {resp.status_code}")
        body = resp.content
        if len(body) > MAX_BYTES:
            raise ScrapeError(f"response too large ({len(body)} bytes)")
        try:
            text = body.decode(resp.encoding or "utf-8")
        except (LookupError, UnicodeDecodeError) as exc:
            raise ScrapeError(f"cannot decode response: {_one_line(exc)}") from None
    finally:
        resp.close()
    try:
        return parse_exposition(text)
    except Exception as exc:  # the parser raises ValueError and, on odd input, others
        raise ScrapeError(f"unparsable exposition: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    s = " ".join(str(exc).split())
    return s[:200] + ("..." if len(s) > 200 else "")


@dataclass(frozen=True)
class _Layout:
    """Where each series' totals sit in a snapshot's flat array."""

    keys: tuple[SeriesKey, ...]
    slices: Mapping[SeriesKey, slice]
    size: int


@dataclass(frozen=True)
class Snapshot:
    """Running totals (summed over replicas) at one evaluation."""

    timestamp: float
    layout: _Layout
    totals: np.ndarray  # flat, read-only

    def get(self, key: SeriesKey, n: int) -> np.ndarray | None:
        sl = self.layout.slices.get(key)
        if sl is None or sl.stop - sl.start != n:
            return None
        return self.totals[sl]


@dataclass(frozen=True)
class Windows:
    """Per-bucket counts of the current and (when the history allows) previous window.

    ``labels[key]`` are the buckets (``le`` floats, ``inf`` last) of a
    histogram or the category/class labels; ``current[key]`` and
    ``previous[key]`` the counts per bucket in that order.
    """

    labels: Mapping[SeriesKey, tuple[float | str, ...]]
    current: Mapping[SeriesKey, np.ndarray]
    previous: Mapping[SeriesKey, np.ndarray] | None
    current_seconds: float
    previous_seconds: float | None


@dataclass
class _Source:
    prev: dict[SeriesKey, np.ndarray] = field(default_factory=dict)
    last_success: float | None = None


class WindowStore:
    """Running totals over replicas, and the ring of snapshots that forms the windows.

    Not thread-safe: one evaluation at a time (the service holds a lock).
    """

    def __init__(self, window: float, interval: float) -> None:
        if not window > 0 or not interval > 0:
            raise ValueError("window and interval must be greater than zero")
        self.window = float(window)
        self.interval = float(interval)
        self.max_snapshots = 2 * math.ceil(self.window / self.interval) + 4
        self._ring: deque[Snapshot] = deque(maxlen=self.max_snapshots)
        self._labels: dict[SeriesKey, tuple[float | str, ...]] = {}
        self._totals: dict[SeriesKey, np.ndarray] = {}
        self._last_seen: dict[SeriesKey, float] = {}
        self._sources: dict[str, _Source] = {}
        self._layout: _Layout | None = None
        self._logged: set[tuple[str, ...]] = set()

    # -- reading sources ----------------------------------------------------------

    def ingest(self, source: str, expo: Exposition, now: float) -> None:
        """Add one successful read of ``source`` to the running totals."""
        st = self._sources.setdefault(source, _Source())
        fresh = st.last_success is None or now - st.last_success > self.window
        for key, values in expo.live.items():
            if key.numeric:
                cand: tuple[float | str, ...] = tuple(sorted(values))  # type: ignore[type-var]
                if len(cand) < 2 or cand[-1] != math.inf:
                    self._log_once("bad_histogram", source, key,
                                   reason="needs at least one finite le and le=+Inf")
                    continue
            else:
                cand = tuple(values)
            labels = self._labels.get(key)
            if labels is None:
                labels = cand
                self._labels[key] = labels
                self._totals[key] = np.zeros(len(labels))
                self._layout = None
            elif (cand != labels) if key.numeric else (
                    len(cand) != len(labels) or set(cand) != set(labels)):
                self._log_once("bucket_mismatch", source, key,
                               reason="buckets or categories differ from another replica's")
                continue
            arr = np.fromiter((values[lab] for lab in labels), dtype=np.float64,
                              count=len(labels))
            prev = st.prev.get(key)
            if not fresh:
                if prev is None or (arr < prev).any():
                    self._totals[key] += arr  # new series, or restarted since the last read
                else:
                    self._totals[key] += arr - prev
            st.prev[key] = arr
            self._last_seen[key] = now
        st.last_success = now

    def snapshot(self, now: float) -> Snapshot:
        """Append the current totals to the ring (and forget old series and snapshots)."""
        if self._ring and now < self._ring[-1].timestamp:
            log.warning("event=clock_went_backwards now=%r last=%r", now, self._ring[-1].timestamp)
            now = self._ring[-1].timestamp
        self._prune(now)
        layout = self._layout
        if layout is None:
            keys = tuple(self._labels)
            slices: dict[SeriesKey, slice] = {}
            pos = 0
            for k in keys:
                n = len(self._labels[k])
                slices[k] = slice(pos, pos + n)
                pos += n
            layout = self._layout = _Layout(keys, MappingProxyType(slices), pos)
        flat = (np.concatenate([self._totals[k] for k in layout.keys]) if layout.keys
                else np.zeros(0))
        flat.flags.writeable = False
        snap = Snapshot(float(now), layout, flat)
        self._ring.append(snap)
        cut = now - 2 * self.window
        while len(self._ring) >= 2 and self._ring[1].timestamp <= cut:
            self._ring.popleft()
        return snap

    def _prune(self, now: float) -> None:
        """Forget series no source has shown for longer than both windows."""
        horizon = now - 2 * self.window - self.interval
        stale = [k for k, t in self._last_seen.items() if t < horizon]
        for k in stale:
            del self._labels[k], self._totals[k], self._last_seen[k]
            for st in self._sources.values():
                st.prev.pop(k, None)
        if stale:
            self._layout = None

    # -- windows -------------------------------------------------------------------

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        return tuple(self._ring)

    def windows(self) -> Windows:
        """The current and previous windows as of the newest snapshot (see the module doc)."""
        if not self._ring:
            raise RuntimeError("no snapshot yet")
        ring = self._ring
        newest = ring[-1]
        t = newest.timestamp
        s1 = _at_or_before(ring, t - self.window)
        s2 = _at_or_before(ring, t - 2 * self.window) if s1 is not None else None
        if s1 is None:
            s1 = ring[0]
        labels = {k: self._labels[k] for k in newest.layout.keys if k in self._labels}
        current = _diff(newest, s1, labels)
        previous = None
        prev_seconds = None
        if s2 is not None and s2 is not s1:
            previous = _diff(s1, s2, labels)
            prev_seconds = s1.timestamp - s2.timestamp
        return Windows(
            labels=MappingProxyType(labels),
            current=MappingProxyType(current),
            previous=None if previous is None else MappingProxyType(previous),
            current_seconds=t - s1.timestamp,
            previous_seconds=prev_seconds,
        )

    def _log_once(self, event: str, source: str, key: SeriesKey, **fields: str) -> None:
        tag = (event, source) + tuple(key)
        if tag in self._logged:
            return
        self._logged.add(tag)
        extra = " ".join(f"{k}={v!r}" for k, v in fields.items())
        log.warning("event=%s source=%s model=%r model_version=%r series=%s/%r %s (skipped)",
                    event, source, key.model, key.model_version, key.family, key.name, extra)


def _at_or_before(ring: Iterable[Snapshot], t: float) -> Snapshot | None:
    found = None
    for s in ring:
        if s.timestamp <= t:
            found = s
        else:
            break
    return found


def _diff(new: Snapshot, old: Snapshot,
          labels: Mapping[SeriesKey, tuple[float | str, ...]]) -> dict[SeriesKey, np.ndarray]:
    """Per-bucket counts between two snapshots, for the series of ``new``."""
    out: dict[SeriesKey, np.ndarray] = {}
    same = new.layout is old.layout
    d = new.totals - old.totals if same else None
    for key, labs in labels.items():
        n = len(labs)
        sl = new.layout.slices[key]
        if d is not None:
            cum = d[sl]
        else:
            before = old.get(key, n)
            cum = new.totals[sl] - before if before is not None else new.totals[sl].copy()
        per = np.diff(cum, prepend=0.0) if key.numeric else cum
        out[key] = np.maximum(per, 0.0)
    return out
