"""RedisJoinStore: shared by every replica of a model."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .base import (
    DEFAULT_TTL_SECONDS,
    JoinStoreError,
    Key,
    Remembered,
    _ExpiredCounts,
    _at,
    _check_ids,
    _check_model,
    _check_put,
    _join_results,
    _positive,
)


def _enc_hook(obj: Any) -> Any:
    """numpy scalars (and anything else with ``.item()``) as plain Python values."""
    item = getattr(obj, "item", None)
    if item is not None:
        return item()
    raise TypeError(f"cannot remember a value of type {type(obj).__name__}")


_redis_encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
_redis_decode = msgspec.msgpack.Decoder().decode


class RedisJoinStore(_ExpiredCounts):
    """Join store in Redis, shared by every replica.

    One key per ``(model, id)``: ``{key_prefix}{model}:{id}`` (``%`` and ``:`` in the
    model are percent-escaped), value a msgpack array ``[model_version, predicted,
    score, segments, timestamp, put_at]``, written with ``SET ... PX ttl`` in one pipelined round
    trip per ``put`` (``transaction=False``); ``take`` is one pipeline of ``GETDEL``
    (Redis >= 6.2).

    Differences from the other stores, by design:

    * Expiry is Redis's: a key that expired in Redis is simply gone, so ``expired()``
      cannot count it; its label shows up as unmatched. (A row that Redis still holds
      but that is older than ``ttl_seconds`` on this store's clock - replica clocks
      differ - is counted ``ttl`` as elsewhere.)
    * No ``max_rows``: bound memory on the Redis side with ``maxmemory`` and
      ``maxmemory-policy volatile-ttl`` (evicts the keys closest to expiry); those
      evictions are invisible here too.
    * ``len()`` is Redis's ``DBSIZE`` (O(1)): every key of the database, so give the
      join store a database of its own (the ``/N`` of the URL).
    * ``flush()`` does nothing: every ``put`` is written before it returns.

    Errors talking to Redis (connection refused or lost, timeouts, an unknown command
    on Redis < 6.2) raise :class:`JoinStoreError`, never redis-py's own exceptions.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *,
                 ttl_seconds: float = DEFAULT_TTL_SECONDS, key_prefix: str = "modelmon:join:",
                 client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = float(_positive("ttl_seconds", ttl_seconds))
        if not isinstance(key_prefix, str):
            raise ValueError(f"key_prefix must be a str, got {key_prefix!r}")  # noqa: TRY004
        self.key_prefix = key_prefix
        self.url = url
        self._ttl_ms = max(1, math.ceil(self.ttl_seconds * 1000))
        self._clock = clock
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise JoinStoreError("the Redis join store needs redis-py: "
                                 "pip install 'modelmon[redis]'") from e
        self._redis_error = redis.RedisError
        self._own_client = client is None
        if client is None:
            try:
                client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                              health_check_interval=30)
            except ValueError as e:
                raise ValueError(f"bad Redis url {url!r}: {e}") from e
        self._client = client
        self._prefixes: dict[str, str] = {}
        self._expired: Counter[Key] = Counter()
        self._lock = threading.Lock()

    def _prefix(self, model: str) -> str:
        p = self._prefixes.get(model)
        if p is None:
            p = self.key_prefix + model.replace("%", "%25").replace(":", "%3A") + ":"
            self._prefixes[model] = p
        return p

    def _error(self, what: str, e: Exception) -> JoinStoreError:
        msg = str(e)
        if "unknown command" in msg.lower():
            msg += " (the Redis join store needs Redis >= 6.2 for GETDEL)"
        return JoinStoreError(f"Redis join store at {self.url}: {what} failed: "
                              f"{type(e).__name__}: {msg}")

    def __len__(self) -> int:
        try:
            return int(self._client.dbsize())
        except self._redis_error as e:
            raise self._error("DBSIZE", e) from e

    def put(self, model: str, ids: Sequence[str], rows: Sequence[Remembered]) -> None:
        ids = _check_put(model, ids, rows)
        if not ids:
            return
        at = _at(self._clock())
        p = self._prefix(model)
        px = self._ttl_ms
        enc = _redis_encode
        pipe = self._client.pipeline(transaction=False)
        pset = pipe.set
        for k, r in zip(ids, rows):
            pset(p + k, enc((r.model_version, r.predicted, r.score, r.segments, r.timestamp,
                             at)), px=px)
        try:
            pipe.execute()
        except self._redis_error as e:
            raise self._error("put", e) from e

    def take(self, model: str, ids: Sequence[str]) -> list[Remembered | None]:
        _check_model(model)
        ids = _check_ids(ids)
        if not ids:
            return []
        now = self._clock()
        uniq = list(dict.fromkeys(ids))
        p = self._prefix(model)
        pipe = self._client.pipeline(transaction=False)
        for k in uniq:
            pipe.getdel(p + k)
        try:
            values = pipe.execute()
        except self._redis_error as e:
            raise self._error("take", e) from e
        found: dict[str, tuple[float, Remembered]] = {}
        for k, v in zip(uniq, values):
            if v is not None:
                ver, pred, score, segs, ts, at = _redis_decode(v)
                found[k] = (at, Remembered(ver, pred, score, tuple(segs), ts))
        expired: Counter[Key] = Counter()
        out = _join_results(ids, found, now, self.ttl_seconds, model, expired)
        if expired:
            with self._lock:
                self._expired.update(expired)
        return out


    def close(self) -> None:
        if self._own_client:
            try:
                self._client.close()
            except self._redis_error:  # pragma: no cover
                pass


# ---------------------------------------------------------------------------
# Config

