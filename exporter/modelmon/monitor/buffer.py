"""The one write buffer of a model: what callers handed over, waiting to be counted in bulk.

Counting in vectorised batches is what makes the hot path cheap, so events are
not counted one by one as they come: :class:`Pending` keeps them until
``flush_at`` are waiting or a scrape comes, and the Monitor then folds them all
at once. Two kinds of rows wait in it:

* single events from :meth:`Monitor.observe` (``(features, prediction,
  probabilities, latency)`` tuples, checked when folded), and
* rows from a front end that has already checked them (the sidecar's small
  clean batches, later CloudEvents), each kind with its *decoder*: a pure
  function from a list of such rows to :class:`~.columns.ValidatedColumns`.
  Rows are decoded in bulk when folded, never one request at a time.

No front end keeps a buffer of its own, so nothing calls back into one when
the counts are read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .columns import ValidatedColumns
from .counts import RawEvent

__all__ = ["Decoder", "Pending"]

#: Turns rows a front end submitted into validated columns (pure: no counting).
Decoder = Callable[[list[Any]], ValidatedColumns]


class Pending:
    """Events and decoded-later rows of one model, with their total count.

    >>> p = Pending()
    >>> p.add_event(({"x": 1.0}, None, None, None))
    1
    >>> p.add_rows([1, 2, 3], len)      # any decoder; rows of one decoder are kept together
    4
    >>> events, rows = p.take()
    >>> len(events), {d.__name__: r for d, r in rows.items()}, p.size
    (1, {'len': [1, 2, 3]}, 0)
    """

    __slots__ = ("lock", "events", "rows", "size")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[RawEvent] = []
        self.rows: dict[Decoder, list[Any]] = {}
        self.size = 0

    def add_event(self, event: RawEvent) -> int:
        """Queue one single event; returns how many rows now wait."""
        with self.lock:
            self.events.append(event)
            self.size += 1
            return self.size

    def add_rows(self, rows: list[Any], decoder: Decoder) -> int:
        """Queue checked rows that ``decoder`` turns into columns; returns how many wait."""
        with self.lock:
            mine = self.rows.get(decoder)
            if mine is None:
                self.rows[decoder] = list(rows)
            else:
                mine.extend(rows)
            self.size += len(rows)
            return self.size

    def take(self) -> tuple[list[RawEvent], dict[Decoder, list[Any]]]:
        """Everything waiting (the buffer is emptied)."""
        with self.lock:
            events, rows = self.events, self.rows
            self.events, self.rows, self.size = [], {}, 0
        return events, rows
