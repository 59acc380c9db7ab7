"""Join stores: the shared contract over memory, SQLite and a real Redis, then each
store's own guarantees (SQLite durability under SIGKILL, Redis across replicas)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from modelmon.monitor.joinstore import (
    JoinStore,
    JoinStoreError,
    MemoryJoinStore,
    RedisJoinStore,
    Remembered,
    SQLiteJoinStore,
    open_join_store,
)

from ..conftest import RedisServer, free_port, require_binary

M = "churn"
T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def row(i: int, version: str = "v1") -> Remembered:
    """Rows of every shape the lead stores: class/float/None predictions, scores or not."""
    kind = i % 3
    predicted = ("yes", float(i) + 0.25, None)[kind]
    score = (0.5 + i / 1e6, None, 0.125)[kind]
    segments = (("eu", "web"), (), ("us",))[kind]
    return Remembered(version, predicted, score, segments, T0 - i * 0.001)


def ids_of(n: int, start: int = 0, prefix: str = "p") -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + n)]


KINDS = ["memory", "sqlite", "redis"]


@pytest.fixture
def make(request, tmp_path):
    """``make(kind, **options)``: a store with a fake clock (``store.test_clock``),
    closed at the end of the test. Redis stores share the session server; each test
    gets an empty database and its own key prefix."""
    made: list[JoinStore] = []
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    state = {"flushed": False}

    def make(kind: str, clock: FakeClock | None = None, **kw):
        clock = clock or FakeClock()
        if kind == "memory":
            store = MemoryJoinStore(clock=clock, **kw)
        elif kind == "sqlite":
            kw.setdefault("commit_interval", 3600)  # tests commit with flush()
            store = SQLiteJoinStore(kw.pop("path", tmp_path / "join.db"), clock=clock, **kw)
        else:
            server = request.getfixturevalue("redis_server")
            kw.setdefault("key_prefix", prefix)
            store = RedisJoinStore(server.url, clock=clock, **kw)
            if not state["flushed"]:
                store._client.flushdb()
                state["flushed"] = True
        store.test_clock = clock
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture(params=KINDS)
def store(request, make):
    return make(request.param, ttl_seconds=100)


def no_cap(kind: str) -> None:
    if kind == "redis":
        pytest.skip("redis: no max_rows by design (Redis maxmemory + volatile-ttl bound it)")


# ---------------------------------------------------------------------------
# The shared contract


def test_store_satisfies_the_protocol(store):
    assert isinstance(store, JoinStore)
    assert store.ttl_seconds == 100


def test_put_then_take_returns_rows_in_the_order_asked_and_removes_them(store):
    ids = ids_of(6)
    rows = [row(i) for i in range(6)]
    store.put(M, ids, rows)
    assert len(store) == 6
    asked = ["p4", "nope", "p0", "p5", "p2"]
    assert store.take(M, asked) == [rows[4], None, rows[0], rows[5], rows[2]]
    assert len(store) == 2
    assert store.take(M, asked) == [None] * 5      # taken: a second label is unmatched
    assert store.take(M, ["p1", "p3"]) == [rows[1], rows[3]]
    assert store.take(M, []) == []
    assert store.expired() == {}


def test_values_round_trip_exactly(store):
    rows = [Remembered("2024-06-01+abc", "class with spaces é", 0.1234567890123, ("eu", "ios"),
                       1717171717.123456),
            Remembered("1", -3.5e-7, None, (), 0.0),
            Remembered("1", None, None, ("a",) * 5, T0)]
    store.put(M, ["a", "b", "c"], rows)
    store.flush()
    got = store.take(M, ["a", "b", "c"])
    assert got == rows
    assert type(got[1].predicted) is float and type(got[0].segments) is tuple


@pytest.mark.parametrize("flush_between", [False, True], ids=["pending", "committed"])
def test_latest_put_wins(store, flush_between):
    store.put(M, ["x", "y"], [row(1, "old"), row(2, "old")])
    if flush_between:
        store.flush()
    store.put(M, ["x"], [row(3, "new")])
    store.flush()
    assert store.take(M, ["x"]) == [row(3, "new")]
    assert store.take(M, ["x"]) == [None]   # the older row went with it
    assert store.take(M, ["y"]) == [row(2, "old")]


def test_same_id_twice_in_one_put_keeps_the_last(store):
    store.put(M, ["x", "x"], [row(1), row(2)])
    assert store.take(M, ["x"]) == [row(2)]


def test_duplicate_label_in_one_take_gets_none_after_the_first(store):
    store.put(M, ["a", "b"], [row(0), row(1)])
    store.flush()
    assert store.take(M, ["a", "a", "b", "a", "b"]) == [row(0), None, row(1), None, None]


def test_models_are_separate_namespaces(store):
    store.put("m1", ["same"], [row(1)])
    store.put("m:2", ["same"], [row(2)])     # a ':' in the model name is not ambiguous
    store.put("m", [":2:same"], [row(3)])
    assert store.take("m1", ["same"]) == [row(1)]
    assert store.take("m:2", ["same"]) == [row(2)]
    assert store.take("other", ["same"]) == [None]
    assert store.take("m", [":2:same"]) == [row(3)]


def test_ttl_expiry_with_a_fake_clock(store):
    """Memory/SQLite/Redis alike: a row older than the TTL on the store's clock is not
    returned and is counted ``ttl`` with its model_version. (Redis also sets a real
    ``PX`` on the key: see test_redis_expiry_is_redis_own.)"""
    clock = store.test_clock
    store.put(M, ["old"], [row(1, "v1")])
    clock.advance(50)
    store.put(M, ["young"], [row(2, "v2")])
    store.flush()
    clock.advance(51)                        # old: 101 s > 100 s; young: 51 s
    assert store.take(M, ["old", "young"]) == [None, row(2, "v2")]
    assert store.expired() == {(M, "v1", "ttl"): 1}
    assert store.expired() == {}             # the call resets the counts
    assert store.take(M, ["old"]) == [None]  # and the expired row is gone
    assert store.expired() == {}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_expired_rows_are_swept_without_a_label(make, kind):
    s = make(kind, ttl_seconds=100)
    s.put(M, ids_of(3), [row(0, "a"), row(1, "b"), row(2, "b")])
    s.flush()
    s.test_clock.advance(101)
    s.put(M, ["fresh"], [row(9)])            # memory sweeps on put, SQLite in the committer
    s.flush()
    assert len(s) == 1
    assert s.expired() == {(M, "a", "ttl"): 1, (M, "b", "ttl"): 2}
    assert s.take(M, ids_of(3) + ["fresh"]) == [None, None, None, row(9)]
    assert s.expired() == {}


@pytest.mark.parametrize("kind", KINDS)
def test_row_cap_evicts_the_oldest_and_counts_them(make, kind):
    no_cap(kind)
    s = make(kind, max_rows=10)
    for b in range(5):                       # five batches of 5, one second apart
        s.put(M, ids_of(5, 5 * b), [row(i, f"v{b}") for i in range(5 * b, 5 * b + 5)])
        s.test_clock.advance(1)
        s.flush()
    assert len(s) == 10
    assert s.expired() == {(M, "v0", "cap"): 5, (M, "v1", "cap"): 5, (M, "v2", "cap"): 5}
    assert s.expired() == {}
    got = s.take(M, ids_of(25))
    assert got[:15] == [None] * 15
    assert got[15:] == [row(i, f"v{i // 5}") for i in range(15, 25)]


def test_wrong_types_raise_value_error_with_the_index(store):
    with pytest.raises(ValueError, match=r"ids\[1\] must be a str, got int"):
        store.put(M, ["a", 7], [row(0), row(1)])
    with pytest.raises(ValueError, match=r"ids\[2\] must be 1 to 128"):
        store.put(M, ["a", "b", ""], [row(0), row(1), row(2)])
    with pytest.raises(ValueError, match=r"ids\[0\] must be 1 to 128 characters, got 129"):
        store.take(M, ["x" * 129])
    with pytest.raises(ValueError, match=r"ids\[1\] must be a str, got NoneType"):
        store.take(M, ["a", None])
    with pytest.raises(ValueError, match="2 ids but 1 rows"):
        store.put(M, ["a", "b"], [row(0)])
    with pytest.raises(ValueError, match=r"rows\[1\] must be a Remembered, got dict"):
        store.put(M, ["a", "b"], [row(0), {}])
    with pytest.raises(ValueError, match="not a single str"):
        store.take(M, "abc")
    with pytest.raises(ValueError, match="model must be a non-empty str"):
        store.put("", ["a"], [row(0)])
    store.put(M, ["x" * 128], [row(0)])      # the longest id is fine
    assert store.take(M, ["x" * 128]) == [row(0)]
    assert len(store) == 0


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_numpy_values_are_stored_as_plain_values(make, kind):
    """Rows built from numpy scalars do not poison the store (SQLite: the commit
    coerces them rather than failing the batch forever; Redis: encoded via .item())."""
    import numpy as np

    s = make(kind)
    s.put(M, ["a", "b"], [Remembered("np", np.float32(0.5), np.float64(0.25), ("eu",), T0),
                          row(1)])
    s.flush()
    if kind == "sqlite":                      # names interned by the failed try are redone
        s.close()
        s = make(kind)
    assert s.take(M, ["a", "b"]) == [Remembered("np", 0.5, 0.25, ("eu",), T0), row(1)]
    s.put(M, ["c"], [row(2)])                 # and later batches still commit
    s.flush()
    assert s.take(M, ["c"]) == [row(2)]


def test_str_subclass_ids_are_accepted(store):
    class Id(str):
        pass

    store.put(M, [Id("a")], [row(0)])
    assert store.take(M, ["a"]) == [row(0)]


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_put_then_take_never_loses_a_row(make, kind):
    """Threads put and immediately take their own ids while the SQLite committer swaps
    batches out every 10 ms: every row is found exactly once."""
    opts = {"commit_interval": 0.01} if kind == "sqlite" else {}
    s = make(kind, **opts)
    errors: list[str] = []

    def work(t: int) -> None:
        rng = random.Random(t)
        for b in range(40):
            ids = ids_of(rng.randint(1, 50), 1000 * b, prefix=f"t{t}-")
            s.put(M, ids, [row(i) for i in range(len(ids))])
            got = s.take(M, ids)
            if any(g is None for g in got):
                errors.append(f"thread {t} batch {b}: {got.count(None)} rows missing")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    s.flush()
    assert errors == []
    assert len(s) == 0


def test_closed_store_refuses_work(make):
    for kind in ("memory", "sqlite"):
        s = make(kind)
        s.close()
        s.close()                             # idempotent
        with pytest.raises(JoinStoreError, match="closed"):
            s.put(M, ["a"], [row(0)])
        with pytest.raises(JoinStoreError, match="closed"):
            s.take(M, ["a"])


# ---------------------------------------------------------------------------
# Memory


def test_memory_flood_stays_bounded():
    s = MemoryJoinStore(max_rows=1000, clock=FakeClock())
    for b in range(20):                       # 10x max_rows
        s.put(M, ids_of(500, 500 * b), [row(0)] * 500)
        assert len(s) <= 1000
    assert s.expired() == {(M, "v1", "cap"): 9000}
    assert len(s._rows) == 1000


def test_memory_sweep_is_incremental():
    """A put sweeps at most 2 * batch + 1000 expired rows: no full scan per put."""
    clock = FakeClock()
    s = MemoryJoinStore(ttl_seconds=10, clock=clock)
    s.put(M, ids_of(5000), [row(0)] * 5000)
    clock.advance(11)
    s.put(M, ["a"], [row(1)])
    assert len(s) == 5001 - 1002
    assert s.expired() == {(M, "v1", "ttl"): 1002}


# ---------------------------------------------------------------------------
# SQLite


def test_sqlite_take_sees_pending_rows_and_len_counts_them(tmp_path):
    s = SQLiteJoinStore(tmp_path / "j.db", commit_interval=3600)
    try:
        s.put(M, ids_of(10), [row(i) for i in range(10)])
        assert len(s) == 10
        with sqlite3.connect(tmp_path / "j.db") as other:
            assert other.execute("SELECT count(*) FROM rows").fetchone()[0] == 0
        assert s.take(M, ["p3"]) == [row(3)]
        assert len(s) == 9
    finally:
        s.close()


def test_sqlite_committer_commits_in_the_background(tmp_path):
    s = SQLiteJoinStore(tmp_path / "j.db", commit_interval=0.05)
    try:
        s.put(M, ids_of(100), [row(i) for i in range(100)])
        deadline = time.monotonic() + 30
        with sqlite3.connect(tmp_path / "j.db") as other:
            while other.execute("SELECT count(*) FROM rows").fetchone()[0] < 100:
                assert time.monotonic() < deadline, "committer never committed"
                time.sleep(0.02)
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        s.close()


def test_sqlite_reopen_finds_committed_rows_and_not_taken_ones(tmp_path):
    path = tmp_path / "j.db"
    s = SQLiteJoinStore(path)
    s.put(M, ids_of(50), [row(i, f"v{i % 4}") for i in range(50)])
    s.put("other", ["p1"], [row(99)])
    s.flush()
    # Another process's view (no close yet): committed is committed.
    s2 = SQLiteJoinStore(path)
    assert len(s2) == 51
    s2.close()
    assert s.take(M, ["p0", "p1"]) == [row(0, "v0"), row(1, "v1")]
    s.close()
    s3 = SQLiteJoinStore(path)
    try:
        assert len(s3) == 49
        assert s3.take(M, ["p0", "p1", "p2"]) == [None, None, row(2, "v2")]
        assert s3.take("other", ["p1"]) == [row(99)]
    finally:
        s3.close()


def test_sqlite_flood_keeps_len_and_file_bounded(tmp_path):
    path = tmp_path / "j.db"
    clock = FakeClock()
    s = SQLiteJoinStore(path, max_rows=1000, commit_interval=3600, clock=clock)
    sizes = []
    try:
        for rnd in range(10):                 # 10x max_rows, flushed every 1000 puts
            for b in range(2):
                start = 1000 * rnd + 500 * b
                s.put(M, ids_of(500, start), [row(i) for i in range(start, start + 500)])
            clock.advance(1)
            s.flush()
            assert len(s) <= 1000
            sizes.append(os.path.getsize(path))
        assert len(s) == 1000
        assert s.expired() == {(M, "v1", "cap"): 9000}
        # SQLite reuses the pages of deleted rows: the file stops growing.
        assert sizes[-1] <= 2 * sizes[1], sizes
        wal = tmp_path / "j.db-wal"
        assert not wal.exists() or os.path.getsize(wal) <= 64 * 2**20
        got = s.take(M, ids_of(10_000))
        assert got.count(None) == 9000 and got[9000:] == [row(i) for i in range(9000, 10_000)]
    finally:
        s.close()


def test_sqlite_unusable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "j.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(JoinStoreError, match="cannot open join store"):
        SQLiteJoinStore(path)


_CHILD = textwrap.dedent("""
    import os, sys, time
    from modelmon.monitor.joinstore import Remembered, SQLiteJoinStore

    path, log = sys.argv[1], sys.argv[2]
    store = SQLiteJoinStore(path, commit_interval=float(sys.argv[3]))
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    r = Remembered("v1", "yes", 0.5, ("eu",), 1.0)
    n = 0
    while True:
        ids = [f"r{i}" for i in range(n, n + 100)]
        store.put("m", ids, [r] * 100)
        n += 100
        # rows r0..r{n-1} were put before this instant (an unbuffered write: a
        # SIGKILL cannot lose it)
        os.write(fd, f"{n} {time.monotonic()}\\n".encode())
        time.sleep(0.002)
""")


@pytest.mark.slow
def test_sqlite_sigkill_loses_at_most_the_last_commit_interval(tmp_path):
    """A child puts rows continuously (never flushing) and logs, after each put, how
    many rows it had put and when. SIGKILL it: every row put more than
    commit_interval + margin before the kill is in the file, which opens cleanly."""
    interval, margin = 0.25, 2.0
    path, log = tmp_path / "j.db", tmp_path / "child.log"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(log), str(interval)])
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.stat().st_size > 0):
            assert proc.poll() is None, "child died"
            assert time.monotonic() < deadline, "child never started putting"
            time.sleep(0.05)
        time.sleep(interval + margin + 2.0)   # several commits, and rows old enough
        assert proc.poll() is None, "child died"
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [ln.split() for ln in log.read_text().splitlines() if ln.strip()]
    put = [(int(n), float(t)) for n, t in lines]
    safe = max((n for n, t in put if t <= killed_at - interval - margin), default=0)
    assert safe > 0, "nothing was put long enough before the kill"

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s = SQLiteJoinStore(path)
    try:
        kept = len(s)
        assert kept >= safe
        got = []
        for start in range(0, safe, 5000):
            got += s.take("m", [f"r{i}" for i in range(start, min(safe, start + 5000))])
        assert got.count(None) == 0
    finally:
        s.close()
    # How much was lost, in seconds of puts before the kill (shown with -s / -rP).
    first_lost_at = min((t for n, t in put if n > kept), default=killed_at)
    print(f"\nSIGKILL: put {put[-1][0]} rows, {kept} survived; lost the puts of the last "
          f"{killed_at - first_lost_at:.3f} s (commit_interval {interval} s)")


# ---------------------------------------------------------------------------
# Redis


def test_redis_a_label_at_replica_b_finds_the_prediction_made_at_replica_a(redis_server):
    prefix = f"x:{uuid.uuid4().hex[:8]}:"
    a = RedisJoinStore(redis_server.url, key_prefix=prefix)
    b = RedisJoinStore(redis_server.url, key_prefix=prefix)
    try:
        assert a._client is not b._client
        a.put(M, ids_of(300), [row(i) for i in range(300)])
        got = b.take(M, ids_of(300)[::-1])
        assert got == [row(i) for i in range(300)][::-1]
        assert a.take(M, ["p0"]) == [None]    # taken at B: gone for A too
    finally:
        a.close()
        b.close()


def test_redis_expiry_is_redis_own(redis_server):
    """A real PX TTL: the key vanishes in Redis, so ``expired()`` cannot see it (the
    label shows up as unmatched). This is where Redis differs from the others."""
    import redis

    prefix = f"x:{uuid.uuid4().hex[:8]}:"
    s = RedisJoinStore(redis_server.url, ttl_seconds=0.3, key_prefix=prefix)
    raw = redis.Redis.from_url(redis_server.url)
    try:
        s.put(M, ["a", "b"], [row(0), row(1)])
        assert 0 < raw.pttl(f"{prefix}{M}:a") <= 300
        deadline = time.monotonic() + 10
        while raw.exists(f"{prefix}{M}:a"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert s.take(M, ["a", "b"]) == [None, None]
        assert s.expired() == {}
    finally:
        s.close()
        raw.close()


def test_redis_key_layout_and_value_are_compact(redis_server):
    import redis

    s = RedisJoinStore(redis_server.url, key_prefix="kl:")
    raw = redis.Redis.from_url(redis_server.url)
    try:
        s.put("a:b%c", ["id1"], [Remembered("3", "yes", 0.75, ("eu", "web"), T0)])
        key = "kl:a%3Ab%25c:id1"
        assert raw.exists(key)
        assert raw.strlen(key) <= 40, raw.get(key)
        assert s.take("a:b%c", ["id1"])[0].score == 0.75
    finally:
        s.close()
        raw.close()


def test_redis_unreachable_is_a_join_store_error():
    s = RedisJoinStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(JoinStoreError, match=(r"Redis join store at redis://127\.0\.0\.1:\d+/0"
                                                  r": put failed: ConnectionError")):
            s.put(M, ["a"], [row(0)])
        with pytest.raises(JoinStoreError, match="take failed"):
            s.take(M, ["a"])
        with pytest.raises(JoinStoreError, match="DBSIZE failed"):
            len(s)
    finally:
        s.close()


def test_redis_server_lost_midway_is_a_join_store_error(tmp_path):
    server = RedisServer(require_binary("redis-server"), tmp_path / "redis")
    s = RedisJoinStore(server.url)
    try:
        s.put(M, ["a"], [row(0)])
        server.stop()
        with pytest.raises(JoinStoreError, match="take failed"):
            s.take(M, ["a"])
        with pytest.raises(JoinStoreError, match="put failed"):
            s.put(M, ["b"], [row(1)])
    finally:
        s.close()
        server.stop()


# ---------------------------------------------------------------------------
# Config


def test_open_join_store_builds_each_type(tmp_path, redis_server):
    m = open_join_store({"type": "memory", "ttl_seconds": 60, "max_rows": 5})
    assert isinstance(m, MemoryJoinStore) and m.max_rows == 5 and m.ttl_seconds == 60
    q = open_join_store({"type": "sqlite", "path": str(tmp_path / "c.db"), "commit_interval": 0.5})
    assert isinstance(q, SQLiteJoinStore) and q.commit_interval == 0.5
    r = open_join_store({"type": "redis", "url": redis_server.url, "key_prefix": "cfg:"})
    assert isinstance(r, RedisJoinStore) and r.key_prefix == "cfg:"
    for s in (m, q, r):
        s.put(M, ["a"], [row(0)])
        assert s.take(M, ["a"]) == [row(0)]
        s.close()


@pytest.mark.parametrize("spec, message", [
    ({}, r"'type' must be one of \['memory', 'redis', 'sqlite'\], got None"),
    ({"type": "disk"}, "got 'disk'"),
    ({"type": "memory", "path": "x"}, (r"option 'path' is not valid for type 'memory' "
                                       r"\(valid: max_rows, ttl_seconds\)")),
    ({"type": "redis", "max_rows": 5}, "option 'max_rows' is not valid for type 'redis'"),
    ({"type": "sqlite"}, "option 'path' is required"),
    ({"type": "sqlite", "path": ""}, "option 'path' must be a non-empty string"),
    ({"type": "memory", "ttl_seconds": 0}, "option ttl_seconds must be a positive number"),
    ({"type": "memory", "max_rows": 1.5}, "option max_rows must be a positive int"),
    ({"type": "memory", "max_rows": True}, "option max_rows must be a positive int"),
    ({"type": "sqlite", "path": "x", "commit_interval": "1"}, "commit_interval must be"),
    ({"type": "redis", "url": 5}, "option 'url' must be a non-empty string"),
    ("memory", "must be a mapping"),
])
def test_open_join_store_names_the_bad_key(spec, message):
    with pytest.raises(ValueError, match=message):
        open_join_store(spec)
