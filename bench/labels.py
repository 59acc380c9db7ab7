"""Label join stores: what remembering a prediction costs, and how fast labels join.

    python bench/labels.py                 # 500,000 predictions, batch 500, all stores
    python bench/labels.py --quick         # 100,000 predictions
    python bench/labels.py --stores sqlite --rows 1000000

For each join store (memory; SQLite in a temp file; Redis on a private
``redis-server`` on a free loopback port, skipped with a line saying so when the
binary is missing) the same seeded workload, generated before any timing:
``--rows`` predictions with 32-hex-digit ids and realistic rows (a class or a
float, a score, two segment values, a timestamp).

* **put µs/event**: ``put`` in batches of ``--batch``, time of the calls only
  (the prediction path's overhead). For SQLite the background committer runs as
  in production (``commit_interval`` 1 s) and competes for the GIL.
* **+commit µs/event**: SQLite only, the time of the final ``flush()`` per event:
  the remaining background work (the committer had done part of it during the
  puts), so put + commit is the full CPU cost of a durable put.
* **labels/s**: then every id is taken once, in a shuffled order, in batches of
  ``--batch``; every take must find its row.
* **bytes/row**: memory: growth of the process RSS; SQLite: file + WAL size;
  Redis: growth of ``used_memory``.

Best of ``--repeats`` (fresh store each time) for the timings.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from modelmon.monitor.joinstore import (
    JoinStore,
    MemoryJoinStore,
    RedisJoinStore,
    Remembered,
    SQLiteJoinStore,
)

SEED = 20260314
MODEL = "churn"
_RUNS = itertools.count()


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(binary: str) -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="modelmon-bench-redis-"))
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def workload(n: int, seed: int) -> tuple[list[str], list[Remembered], list[str]]:
    rng = random.Random(seed)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(n)]
    classes = ["churn", "stay"]
    segments = [("eu", "web"), ("eu", "ios"), ("us", "web"), ("us", "android")]
    t0 = 1_760_000_000.0
    rows = []
    for i in range(n):
        score = rng.random()
        rows.append(Remembered("2026-03-01", classes[score > 0.5], score,
                               segments[rng.randrange(4)], t0 + i * 0.001))
    shuffled = ids[:]
    rng.shuffle(shuffled)
    return ids, rows, shuffled


def run_once(make: Callable[[], JoinStore], ids: list[str], rows: list[Remembered],
             shuffled: list[str], batch: int, size_of: Callable[[JoinStore], int]) -> dict:
    gc.collect()
    store = make()
    try:
        base = size_of(store)
        t_put = 0.0
        for i in range(0, len(ids), batch):
            b_ids, b_rows = ids[i:i + batch], rows[i:i + batch]
            t = time.perf_counter()
            store.put(MODEL, b_ids, b_rows)
            t_put += time.perf_counter() - t
        t = time.perf_counter()
        store.flush()
        t_flush = time.perf_counter() - t
        size = size_of(store) - base
        matched = 0
        t = time.perf_counter()
        for i in range(0, len(shuffled), batch):
            got = store.take(MODEL, shuffled[i:i + batch])
            matched += len(got) - got.count(None)
        t_take = time.perf_counter() - t
        if matched != len(ids):
            raise AssertionError(f"{type(store).__name__}: {matched} of {len(ids)} labels joined")
    finally:
        store.close()
    n = len(ids)
    return {"put": t_put / n * 1e6, "commit": t_flush / n * 1e6, "labels_s": n / t_take,
            "bytes_row": size / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=500_000, help="predictions put (500,000)")
    ap.add_argument("--batch", type=int, default=500, help="put and take batch size (500)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N (3)")
    ap.add_argument("--stores", default="memory,sqlite,redis",
                    help="comma-separated subset of memory,sqlite,redis")
    ap.add_argument("--quick", action="store_true", help="100,000 predictions, best of 2")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    if args.quick:
        args.rows, args.repeats = min(args.rows, 100_000), 2
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]

    ids, rows, shuffled = workload(args.rows, args.seed)
    print(f"{args.rows:,} predictions, batch {args.batch}, best of {args.repeats} "
          f"(seed {args.seed})\n")
    results: list[tuple[str, dict]] = []
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="modelmon-bench-labels-"))
    try:
        for kind in stores:
            if kind == "memory":
                results.append(("memory", best(lambda: MemoryJoinStore(max_rows=args.rows),
                                               ids, rows, shuffled, args,
                                               lambda s: rss_bytes())))
            elif kind == "sqlite":
                def make() -> JoinStore:
                    return SQLiteJoinStore(tmp / f"join{next(_RUNS)}.db", max_rows=args.rows)

                def size_of(s: JoinStore) -> int:
                    p = Path(s.path)
                    wal = Path(str(p) + "-wal")
                    return p.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

                results.append(("SQLite (file, WAL)", best(make, ids, rows, shuffled, args,
                                                           size_of)))
            elif kind == "redis":
                binary = shutil.which("redis-server")
                if binary is None:
                    notes.append("Redis: skipped, `redis-server` is not on PATH "
                                 "(apt-get install redis-server)")
                    continue
                with redis_server(binary) as url:
                    def make() -> JoinStore:
                        s = RedisJoinStore(url)
                        s._client.flushdb()
                        return s

                    def size_of(s: JoinStore) -> int:
                        return int(s._client.info("memory")["used_memory"])

                    results.append(("Redis (loopback)", best(make, ids, rows, shuffled, args,
                                                             size_of)))
            else:
                raise SystemExit(f"unknown store {kind!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("| store | put µs/event | +commit µs/event | labels joined/s | bytes/row |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results:
        commit = f"{r['commit']:.2f}" if name.startswith("SQLite") else "-"
        print(f"| {name} | {r['put']:.2f} | {commit} | {r['labels_s']:,.0f} | "
              f"{r['bytes_row']:.0f} |")
    for note in notes:
        print(f"\n{note}")
    if "sqlite" in stores:
        try:
            monitor_path(args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def monitor_path(args: argparse.Namespace, tmp: Path) -> None:
    """What the join costs through the Monitor: ``observe_batch`` of 20 numeric features, a
    class and a score with and without ids (SQLite store), and ``record_labels`` per second."""
    import numpy as np

    from modelmon.baseline import Baseline
    from modelmon.monitor import Monitor

    rng = np.random.default_rng(args.seed)
    n = 20_000
    data: dict[str, object] = {f"f{i}": rng.normal(size=n) for i in range(20)}
    data["decision"] = rng.choice(["approve", "reject"], n)
    data["score"] = rng.random(n)
    b = Baseline.build(data, model="m", prediction="decision", probability="score", bins=20)
    batch = args.batch
    feats = {f"f{i}": data[f"f{i}"][:batch] for i in range(20)}  # type: ignore[index]
    preds, scores = data["decision"][:batch], data["score"][:batch]  # type: ignore[index]
    reps = max(20, args.rows // batch // 5)
    tmp.mkdir(parents=True, exist_ok=True)
    out = {"plain": [], "ids": [], "labels": []}
    for r in range(args.repeats):
        store = SQLiteJoinStore(tmp / f"monitor{r}.db", max_rows=10 * reps * batch)
        mon = Monitor(b, registry=None, join_store=store)
        idss = [[f"{r}-{k}-{i}" for i in range(batch)] for k in range(reps)]
        t0 = time.perf_counter()
        for _ in range(reps):
            mon.observe_batch(feats, predictions=preds, probabilities=scores)
        out["plain"].append((time.perf_counter() - t0) / (reps * batch) * 1e6)
        t0 = time.perf_counter()
        for ids in idss:
            mon.observe_batch(feats, predictions=preds, probabilities=scores, ids=ids)
        out["ids"].append((time.perf_counter() - t0) / (reps * batch) * 1e6)
        store.flush()
        labels = ["approve"] * batch
        t0 = time.perf_counter()
        for ids in idss:
            mon.record_labels(ids, labels)
        out["labels"].append(reps * batch / (time.perf_counter() - t0))
        store.close()
    plain, ids_ = min(out["plain"]), min(out["ids"])
    print(f"\nThrough the Monitor (SQLite store, batch {batch}, 20 numeric features + class + "
          f"score, best of {args.repeats}): observe_batch {plain:.2f} µs/event without ids, "
          f"{ids_:.2f} with ids (+{ids_ - plain:.2f}); record_labels "
          f"{max(out['labels']):,.0f} labels/s (join, confusion and score counts, "
          "Page-Hinkley and ADWIN)")


def best(make, ids, rows, shuffled, args, size_of) -> dict:
    runs = [run_once(make, ids, rows, shuffled, args.batch, size_of)
            for _ in range(args.repeats)]
    return {"put": min(r["put"] for r in runs), "commit": min(r["commit"] for r in runs),
            "labels_s": max(r["labels_s"] for r in runs),
            "bytes_row": runs[0]["bytes_row"]}


if __name__ == "__main__":
    main()
