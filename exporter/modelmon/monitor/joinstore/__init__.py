"""Join stores: what a prediction must leave behind until its ground-truth label comes.

Predictions carry an ``id``; the label for that id arrives hours or days later,
possibly at another replica. A join store remembers, per ``(model, id)``, only
what the join needs (:class:`Remembered`) until the label takes it or a TTL ends.

Three implementations of :class:`JoinStore`:

* :class:`MemoryJoinStore` - one process, bounded (``max_rows``), lost on restart.
* :class:`SQLiteJoinStore` - a file on the pod's volume (WAL); puts are buffered in
  memory and committed by a background thread every ``commit_interval`` seconds,
  so a crash loses at most about that much.
* :class:`RedisJoinStore` - shared by all replicas: a label posted at replica B
  finds the prediction made at replica A.

Semantics shared by all three:

* ``put`` of an id already remembered replaces the older row (latest wins).
* ``take`` removes and returns rows in the order of the ids asked; ``None`` for an
  id with no row, an expired row, or an id repeated within the same call after its
  first occurrence (a duplicate label).
* TTL is counted from when the row was **put**, on the store's clock (as Redis's
  ``PX`` does), not from ``Remembered.timestamp``: prediction timestamps come from
  clients whose clocks may be off, and backfilled predictions must not expire on
  arrival. Rows older than ``ttl_seconds`` are never returned.
* ``expired()`` counts rows dropped without a label, keyed by
  ``(model, model_version, reason)`` with reason ``"ttl"`` or ``"cap"``, and resets.

``open_join_store({"type": "sqlite", "path": ...})`` builds one from config.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import MAX_ID_LENGTH, JoinStore, JoinStoreError, Remembered, _positive
from .memory import MemoryJoinStore
from .redis import RedisJoinStore
from .sqlite import SQLiteJoinStore

__all__ = [
    "MAX_ID_LENGTH",
    "JoinStore",
    "JoinStoreError",
    "MemoryJoinStore",
    "RedisJoinStore",
    "Remembered",
    "SQLiteJoinStore",
    "open_join_store",
]

_OPTIONS: dict[str, dict[str, str]] = {
    "memory": {"ttl_seconds": "number", "max_rows": "int"},
    "sqlite": {"path": "str", "ttl_seconds": "number", "max_rows": "int",
               "commit_interval": "number"},
    "redis": {"url": "str", "ttl_seconds": "number", "key_prefix": "str"},
}


def open_join_store(spec: Mapping[str, Any]) -> JoinStore:
    """A join store from config: ``{"type": "memory" | "sqlite" | "redis", **options}``.

    Options: memory ``ttl_seconds``, ``max_rows``; sqlite ``path`` (required),
    ``ttl_seconds``, ``max_rows``, ``commit_interval``; redis ``url``, ``ttl_seconds``,
    ``key_prefix``. Unknown keys and bad values raise ValueError naming the key.
    """
    if not isinstance(spec, Mapping):
        got = type(spec).__name__
        raise ValueError(f"join store config must be a mapping, got {got}")  # noqa: TRY004
    kind = spec.get("type")
    if kind not in _OPTIONS:
        raise ValueError(f"join store 'type' must be one of {sorted(_OPTIONS)}, got {kind!r}")
    allowed = _OPTIONS[kind]
    opts: dict[str, Any] = {}
    for key, v in spec.items():
        if key == "type":
            continue
        want = allowed.get(key)
        if want is None:
            raise ValueError(f"join store option {key!r} is not valid for type {kind!r} "
                             f"(valid: {', '.join(sorted(allowed))})")
        if want == "str":
            if not isinstance(v, str) or not (v or key == "key_prefix"):
                raise ValueError(f"join store option {key!r} must be a non-empty string, "
                                 f"got {v!r}")
        else:
            try:
                _positive(key, v, integer=want == "int")
            except ValueError as e:
                raise ValueError(f"join store option {e}") from None
        opts[key] = v
    if kind == "memory":
        return MemoryJoinStore(**opts)
    if kind == "sqlite":
        if "path" not in opts:
            raise ValueError("join store option 'path' is required for type 'sqlite'")
        return SQLiteJoinStore(opts.pop("path"), **opts)
    return RedisJoinStore(**opts)
