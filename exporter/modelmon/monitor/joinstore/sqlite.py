"""SQLiteJoinStore: a file on the pod's volume, committed by a background thread."""

from __future__ import annotations

import atexit
import operator
import os
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import msgspec

from .base import (
    DEFAULT_TTL_SECONDS,
    JoinStoreError,
    Key,
    Remembered,
    _at,
    _check_ids,
    _check_model,
    _check_put,
    _join_results,
    _positive,
    log,
)


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
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)  # like Prometheus' data directory
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=30)
        except (sqlite3.Error, OSError) as e:
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

