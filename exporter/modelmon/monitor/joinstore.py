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

import atexit
import logging
import math
import operator
import os
import sqlite3
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import NamedTuple, Any, Protocol, runtime_checkable

import msgspec

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

log = logging.getLogger("modelmon.joinstore")

MAX_ID_LENGTH = 128
DEFAULT_TTL_SECONDS = 7 * 86400.0

Key = tuple[str, str, str]


class Remembered(NamedTuple):
    """What the join needs of one prediction (a named tuple: made by the million, cheaply)."""

    model_version: str
    predicted: str | float | None   # predicted class (str) or regression value (float)
    score: float | None             # positive-class score of a binary classifier, else None
    segments: tuple[str, ...]       # segment label values of this prediction (never "all")
    timestamp: float                # prediction time, seconds since the epoch


class JoinStoreError(RuntimeError):
    """The store cannot do what was asked (backend unreachable, closed, unusable file)."""


@runtime_checkable
class JoinStore(Protocol):
    ttl_seconds: float

    def put(self, model: str, ids: Sequence[str], rows: Sequence[Remembered]) -> None: ...

    def take(self, model: str, ids: Sequence[str]) -> list[Remembered | None]: ...

    def expired(self) -> dict[Key, int]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...


# ---------------------------------------------------------------------------
# Validation (shared)

_STR_ONLY = {str}
_ROW_ONLY = {Remembered}


def _check_model(model: object) -> None:
    if type(model) is not str or not model:
        raise ValueError(f"model must be a non-empty str, got {model!r}")


def _check_ids(ids: Sequence[str]) -> Sequence[str]:
    """``ids`` as a sequence of plain str, or ValueError naming the first bad index.

    Fast path in C (``set(map(type, ...))``, ``min``/``max`` of lengths): about 30 ns
    per id at batch 500."""
    if isinstance(ids, (str, bytes)):
        raise ValueError("ids must be a sequence of str, not a single str")  # noqa: TRY004
    if len(ids) == 0:
        return ids
    if set(map(type, ids)) != _STR_ONLY:
        for i, x in enumerate(ids):
            if not isinstance(x, str):
                raise ValueError(f"ids[{i}] must be a str, got {type(x).__name__}")  # noqa: TRY004
        ids = [str(x) for x in ids]  # str subclasses (numpy.str_): plain str
    lens = list(map(len, ids))
    if min(lens) == 0 or max(lens) > MAX_ID_LENGTH:
        for i, n in enumerate(lens):
            if n == 0 or n > MAX_ID_LENGTH:
                raise ValueError(f"ids[{i}] must be 1 to {MAX_ID_LENGTH} characters, "
                                 f"got {n}")
    return ids


def _check_put(model: str, ids: Sequence[str], rows: Sequence[Remembered]) -> Sequence[str]:
    _check_model(model)
    ids = _check_ids(ids)
    if len(ids) != len(rows):
        raise ValueError(f"put: {len(ids)} ids but {len(rows)} rows")
    if rows and set(map(type, rows)) != _ROW_ONLY:
        for i, r in enumerate(rows):
            if type(r) is not Remembered:
                raise ValueError(f"rows[{i}] must be a Remembered, got {type(r).__name__}")
    return ids


def _positive(name: str, v: Any, *, integer: bool = False) -> Any:
    ok_types = (int,) if integer else (int, float)
    if isinstance(v, bool) or not isinstance(v, ok_types) or not v > 0 or not math.isfinite(v):
        kind = "a positive int" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {v!r}")
    return v


def _join_results(ids: Sequence[str], found: Mapping[str, tuple[float, Remembered]],
                  now: float, ttl: float, model: str, expired: Counter) -> list[Remembered | None]:
    """Rows in the order of ``ids``; None for misses, expired rows (counted) and repeats."""
    out: list[Remembered | None] = [None] * len(ids)
    seen: set[str] = set()
    cutoff = now - ttl
    for i, k in enumerate(ids):
        if k in seen:
            continue
        seen.add(k)
        hit = found.get(k)
        if hit is None:
            continue
        at, row = hit
        if at < cutoff:
            expired[(model, row.model_version, "ttl")] += 1
        else:
            out[i] = row
    return out


# ---------------------------------------------------------------------------
# Memory


class _ExpiredCounts:
    """``expired()`` over a ``_expired`` Counter guarded by ``_lock``; nothing to flush."""

    _lock: threading.Lock
    _expired: Counter[Key]

    def expired(self) -> dict[Key, int]:
        with self._lock:
            out = dict(self._expired)
            self._expired.clear()
        return out

    def flush(self) -> None:
        pass


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

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
-- model names and model versions, interned to small ints
CREATE TABLE IF NOT EXISTS names (n INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);
-- segment value tuples (msgpack arrays), interned to small ints
CREATE TABLE IF NOT EXISTS segs (n INTEGER PRIMARY KEY, v BLOB NOT NULL UNIQUE);
-- at: put time (store clock, whole seconds, rounded up) for TTL and the row cap;
-- pred: str or float (no column affinity: SQLite keeps the type); ts: prediction time
CREATE TABLE IF NOT EXISTS rows (
  model INTEGER NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, ver INTEGER NOT NULL,
  seg INTEGER NOT NULL, pred, score REAL, ts REAL NOT NULL,
  PRIMARY KEY (model, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_at ON rows (at);
"""

_INSERT = "INSERT OR IGNORE INTO rows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
_UPDATE = ("UPDATE rows SET at = ?3, ver = ?4, seg = ?5, pred = ?6, score = ?7, ts = ?8 "
           "WHERE model = ?1 AND id = ?2")
_DELETE_KEY = "DELETE FROM rows WHERE model = ? AND id = ?"
_TAKE_CHUNKS = (8, 32, 128, 512)  # placeholder counts: few distinct statements to cache
_SWEEP_LIMIT = 100_000            # expired rows removed per committer cycle at most

_by_id = operator.itemgetter(1)
_pred_of, _score_of, _ts_of = (operator.itemgetter(i) for i in (5, 6, 7))
_PRED_TYPES = {str, float, int, type(None)}
_SCORE_TYPES = {float, int, type(None)}
_TS_TYPES = {float, int}
_segs_encode = msgspec.msgpack.Encoder().encode
_segs_decode = msgspec.msgpack.Decoder(list[str]).decode


def _plain_predicted(v: Any) -> str | float | int | None:
    if v is None or type(v) in (str, float, int):
        return v
    if isinstance(v, str):
        return str(v)
    try:
        return float(v)  # numpy scalars and other numbers
    except (TypeError, ValueError):
        return str(v)


def _at(now: float) -> int:
    return math.ceil(now)


class SQLiteJoinStore:
    """Join store in a SQLite file (WAL, ``synchronous=NORMAL``), one per pod volume.

    ``put`` only adds the rows to an in-memory pending map (one dict update, no I/O);
    a daemon thread commits the pending rows every ``commit_interval`` seconds in one
    transaction (``executemany``) and then sweeps: rows older than ``ttl_seconds``
    (at most 100,000 per cycle) and, over ``max_rows``, the oldest rows are deleted
    and counted ``ttl`` / ``cap``. ``flush()`` commits and sweeps now; ``close()``
    commits and stops the thread. A crash (SIGKILL) loses what was put since the last
    commit: at most ``commit_interval`` plus the time one commit takes. ``take`` sees
    pending rows too; its deletes are committed with the next batch.

    Two locks, always taken in the order db -> pending: the *pending* lock guards the
    pending map and counters and is held only for dict operations (puts never wait
    on disk I/O); the *db* lock guards the connection, and is held by the committer
    from the moment it swaps out the pending map until that batch is committed, so
    a ``take`` (which takes the db lock first) always finds every row put either in
    the pending map or in the database.

    The row count is read once at open (``count(*)``) and then tracked; ``len()``
    adds the pending rows (an id put again before its commit counts twice).
    Needs SQLite >= 3.35 (``DELETE ... RETURNING``).
    """

    def __init__(self, path: str | os.PathLike[str], *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 max_rows: int = 10_000_000, commit_interval: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = float(_positive("ttl_seconds", ttl_seconds))
        self.max_rows = _positive("max_rows", max_rows, integer=True)
        self.commit_interval = float(_positive("commit_interval", commit_interval))
        self.path = os.fspath(path)
        if sqlite3.sqlite_version_info < (3, 35):
            raise JoinStoreError(f"the SQLite join store needs SQLite >= 3.35, this Python "
                                 f"has {sqlite3.sqlite_version}")
        self._clock = clock
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise JoinStoreError(f"cannot open join store {self.path!r}: {e}") from e
        try:
            self._setup()
        except sqlite3.Error as e:
            self._conn.close()
            raise JoinStoreError(f"cannot open join store {self.path!r}: {e}") from e
        self._db_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        # model -> (id -> row, id -> put time): two dicts rather than (at, row) tuples,
        # so a put allocates nothing per row (no tuples for the cyclic GC to chase).
        self._pending: dict[str, tuple[dict[str, Remembered], dict[str, int]]] = {}
        self._expired: Counter[Key] = Counter()
        self._in_tx = False
        self._closed = False
        self._last_error_log = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelmon-joinstore-commit",
                                        daemon=True)
        self._thread.start()
        # Commit on interpreter exit if the owner forgot close() (weakly: no leak).
        ref = weakref.ref(self)

        def _at_exit() -> None:
            store = ref()
            if store is not None:
                store.close()

        self._at_exit = _at_exit
        atexit.register(_at_exit)

    # -- setup -------------------------------------------------------------

    def _setup(self) -> None:
        c = self._conn
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL (journal_mode={mode})")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL to 64 MiB
        c.execute("PRAGMA cache_size=-32768")  # 32 MiB of page cache (default 2 MiB)
        c.executescript(_SCHEMA)
        row = c.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            c.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
        elif row[0] != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {row[0]}, this modelmon reads "
                                        f"{_SCHEMA_VERSION}")
        self._load_interned()
        self._count = int(c.execute("SELECT count(*) FROM rows").fetchone()[0])

    def _load_interned(self) -> None:
        self._names: dict[str, int] = {}
        self._name_of: dict[int, str] = {}
        for n, s in self._conn.execute("SELECT n, s FROM names"):
            self._names[s] = n
            self._name_of[n] = s
        self._segs: dict[tuple[str, ...], int] = {}
        self._segs_of: dict[int, tuple[str, ...]] = {}
        for n, v in self._conn.execute("SELECT n, v FROM segs"):
            t = tuple(_segs_decode(v))
            self._segs[t] = n
            self._segs_of[n] = t

    def _name(self, s: str) -> int:
        n = self._names.get(s)
        if n is None:
            n = self._conn.execute("INSERT INTO names (s) VALUES (?)", (s,)).lastrowid
            self._names[s] = n
            self._name_of[n] = s
        return n

    def _seg(self, t: tuple[str, ...]) -> int:
        n = self._segs.get(t)
        if n is None:
            n = self._conn.execute("INSERT INTO segs (v) VALUES (?)",
                                   (_segs_encode(list(t)),)).lastrowid
            self._segs[t] = n
            self._segs_of[n] = t
        return n

    # -- API ---------------------------------------------------------------

    def __len__(self) -> int:
        with self._pending_lock:
            return self._count + sum(len(p[0]) for p in self._pending.values())

    def put(self, model: str, ids: Sequence[str], rows: Sequence[Remembered]) -> None:
        ids = _check_put(model, ids, rows)
        at = _at(self._clock())
        with self._pending_lock:
            if self._closed:
                raise JoinStoreError("join store is closed")
            p = self._pending.get(model)
            if p is None:
                p = self._pending[model] = ({}, {})
            p[0].update(zip(ids, rows))
            p[1].update(zip(ids, repeat(at)))

    def take(self, model: str, ids: Sequence[str]) -> list[Remembered | None]:
        _check_model(model)
        ids = _check_ids(ids)
        now = self._clock()
        found: dict[str, tuple[float, Remembered]] = {}
        expired: Counter[Key] = Counter()
        with self._db_lock:
            with self._pending_lock:
                if self._closed:
                    raise JoinStoreError("join store is closed")
                p = self._pending.get(model)
                if p and p[0]:
                    pend, pend_at = p
                    for k in ids:
                        hit = pend.pop(k, None)
                        if hit is not None:
                            found[k] = (pend_at.pop(k), hit)
            m = self._names.get(model)
            if m is not None:
                # Delete in the database too, pending hit or not: an older row of the
                # same id may be committed there (latest wins).
                try:
                    self._take_db(m, list(dict.fromkeys(ids)), found)
                except sqlite3.Error as e:
                    raise JoinStoreError(f"join store {self.path!r}: take failed: {e}") from e
        out = _join_results(ids, found, now, self.ttl_seconds, model, expired)
        if expired:
            with self._pending_lock:
                self._expired.update(expired)
        return out

    def _take_db(self, m: int, uniq: list[str],
                 found: dict[str, tuple[float, Remembered]]) -> None:
        c = self._conn
        if not self._in_tx:
            c.execute("BEGIN")
            self._in_tx = True
        name_of, segs_of = self._name_of, self._segs_of
        removed = 0
        i = 0
        while i < len(uniq):
            chunk = uniq[i:i + _TAKE_CHUNKS[-1]]
            i += len(chunk)
            size = next(s for s in _TAKE_CHUNKS if s >= len(chunk))
            chunk += [chunk[-1]] * (size - len(chunk))  # pad: same statement text
            sql = (f"DELETE FROM rows WHERE model = ? AND id IN ({','.join('?' * size)}) "
                   "RETURNING id, at, ver, seg, pred, score, ts")
            for k, at, ver, seg, pred, score, ts in c.execute(sql, (m, *chunk)):
                removed += 1
                if k not in found:  # a pending row is newer
                    found[k] = (at, Remembered(name_of[ver], pred, score, segs_of[seg], ts))
        self._count -= removed

    def expired(self) -> dict[Key, int]:
        with self._pending_lock:
            out = dict(self._expired)
            self._expired.clear()
        return out

    def flush(self) -> None:
        """Commit everything put so far, then sweep (TTL, cap)."""
        with self._db_lock:
            if self._closed:
                raise JoinStoreError("join store is closed")
            self._commit_and_sweep(raise_errors=True)

    def close(self) -> None:
        """Commit, stop the committer and close the file. Idempotent."""
        atexit.unregister(self._at_exit)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        with self._db_lock:
            if self._closed:
                return
            try:
                self._commit_and_sweep(raise_errors=True)
            finally:
                with self._pending_lock:
                    self._closed = True
                    self._pending.clear()
                self._conn.close()

    # -- committer ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.commit_interval):
            with self._db_lock:
                if self._closed:
                    return
                try:
                    self._commit_and_sweep(raise_errors=False)
                except Exception:  # pragma: no cover - a bug; keep committing
                    log.exception("join store %r: committer error", self.path)

    def _commit_and_sweep(self, *, raise_errors: bool) -> None:
        """Under the db lock: write the pending map, sweep, commit (one transaction)."""
        with self._pending_lock:
            snap, self._pending = self._pending, {}
        c = self._conn
        added = 0
        try:
            if not self._in_tx:
                c.execute("BEGIN")
                self._in_tx = True
            for model, (d, d_at) in snap.items():
                if not d:
                    continue
                added += self._write(self._name(model), d, d_at)
            self._count += added
            swept = self._sweep(self._clock())
            c.execute("COMMIT")
            self._in_tx = False
        except sqlite3.Error as e:
            self._count -= added
            self._recover(snap)
            if raise_errors:
                raise JoinStoreError(f"join store {self.path!r}: commit failed: {e}") from e
            now = time.monotonic()
            if now - self._last_error_log > 60:
                self._last_error_log = now
                log.error("join store %r: commit failed (will retry): %s", self.path, e)
            return
        if swept:
            with self._pending_lock:
                self._expired.update(swept)

    def _write(self, m: int, d: dict[str, Remembered], d_at: dict[str, int]) -> int:
        """Insert or replace one model's pending rows; the number of new rows."""
        c = self._conn
        name, seg = self._name, self._seg
        names, segs = self._names, self._segs
        c.execute("SAVEPOINT batch")
        try:
            params = [(m, k, d_at[k], names.get(r.model_version) or name(r.model_version),
                       segs.get(r.segments) or seg(r.segments), r.predicted, r.score,
                       r.timestamp) for k, r in d.items()]
            # sqlite3 would store numpy scalars as BLOBs (buffer protocol): check.
            if not (set(map(type, map(_pred_of, params))) <= _PRED_TYPES
                    and set(map(type, map(_score_of, params))) <= _SCORE_TYPES
                    and set(map(type, map(_ts_of, params))) <= _TS_TYPES):
                raise TypeError("a predicted, score or timestamp value of another type")
            # In key order: B-tree inserts then touch neighbouring pages (random ids in
            # arrival order cost about 3x more once the table is large).
            params.sort(key=_by_id)
            n = c.executemany(_INSERT, params).rowcount
        except (TypeError, ValueError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                sqlite3.IntegrityError) as e:
            # A row of the wrong types (numpy scalars, a list of segments, ...): one
            # bad row must not block every later commit. Coerce, drop what cannot be.
            c.execute("ROLLBACK TO batch")
            self._load_interned()  # names interned since the savepoint are gone
            name, seg = self._name, self._seg
            names, segs = self._names, self._segs
            log.warning("join store %r: coercing rows of unexpected types (%s)", self.path, e)
            params = []
            for k, r in d.items():
                try:
                    sg = tuple(map(str, r.segments))
                    params.append((m, k, d_at[k], name(str(r.model_version)),
                                   segs.get(sg) or seg(sg), _plain_predicted(r.predicted),
                                   None if r.score is None else float(r.score),
                                   float(r.timestamp)))
                except (TypeError, ValueError) as e2:
                    log.warning("join store %r: dropping the row of id %r: %s", self.path,
                                k, e2)
            params.sort(key=_by_id)
            n = c.executemany(_INSERT, params).rowcount
        if n < len(params):  # some ids were committed before: latest wins
            c.executemany(_UPDATE, params)
        c.execute("RELEASE batch")
        return n

    def _recover(self, snap: dict[str, tuple[dict[str, Remembered], dict[str, int]]]) -> None:
        """After a failed commit: roll back, put the batch back under newer puts."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:  # pragma: no cover - nothing more to do
            pass
        self._in_tx = False
        with self._pending_lock:
            for model, (d, d_at) in snap.items():
                newer = self._pending.get(model)
                if newer:
                    d.update(newer[0])
                    d_at.update(newer[1])
                self._pending[model] = (d, d_at)
        try:
            self._load_interned()  # names interned in the rolled-back transaction
            self._count = int(self._conn.execute("SELECT count(*) FROM rows").fetchone()[0])
        except sqlite3.Error:  # pragma: no cover
            pass

    def _sweep(self, now: float) -> Counter[Key]:
        c = self._conn
        counts: Counter[Key] = Counter()
        name_of = self._name_of
        cutoff = now - self.ttl_seconds  # expired: at < now - ttl
        old = c.execute("SELECT model, id, ver FROM rows WHERE at < ? ORDER BY at LIMIT ?",
                        (cutoff, _SWEEP_LIMIT)).fetchall()
        for reason, victims in (("ttl", old), ("cap", None)):
            if victims is None:
                excess = self._count - self.max_rows
                if excess <= 0:
                    break
                victims = c.execute("SELECT model, id, ver FROM rows ORDER BY at LIMIT ?",
                                    (excess,)).fetchall()
            if not victims:
                continue
            c.executemany(_DELETE_KEY, [(m, k) for m, k, _ in victims])
            self._count -= len(victims)
            for (m, v), n in Counter((m, v) for m, _, v in victims).items():
                counts[(name_of[m], name_of[v], reason)] += n
        return counts


# ---------------------------------------------------------------------------
# Redis

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
