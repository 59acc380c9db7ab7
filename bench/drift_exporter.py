"""Drift exporter in query mode: time of one evaluation against a real store.

    python bench/drift_exporter.py                  # 100, 1,000 and 10,000 (model, feature) pairs
    python bench/drift_exporter.py --pairs 100,1000 --quick
    python bench/drift_exporter.py --evidently-python /path/to/venv/bin/python

For each size a fresh VictoriaMetrics (Debian ``victoria-metrics``) is loaded
through ``/api/v1/import`` with synthetic series as the sidecars would have
produced them: per (model, feature) a 20-bucket ``modelmon_feature_value_bucket``
histogram with samples every ``window / 4`` over the last two windows, its
``modelmon_baseline_bucket_ratio`` / ``modelmon_baseline_samples`` gauges and a
``modelmon_model_info`` per model (20 features per model). Then
:class:`modelmon.drift.query.QuerySource` evaluates at one instant, split into
the query time (``fetch``: every batched PromQL query, 4 in flight) and the
compute time (``score``: parsing the vectors, forming windows, all 7 methods
against the baseline and the previous window). Best of ``--repeats``.

The comparison line runs Evidently's ``DataDriftPreset`` on a 10,000-row
window of the same 20 features (against a 10,000-row reference), in this
interpreter when Evidently is importable, else in ``--evidently-python``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests

from prometheus_client import CollectorRegistry, generate_latest

from modelmon.catalogue import DRIFT_METHODS
from modelmon.drift.collector import DriftCollector, score_exposition
from modelmon.drift.columns import decode_columns
from modelmon.drift.evaluate import DriftResults
from modelmon.drift.promql import PromClient
from modelmon.drift.query import QuerySource
from modelmon.catalogue import le_labels

FEATURES_PER_MODEL = 20
BUCKETS = 20
SEED = 20261125


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def victoria_metrics(binary: str) -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="modelmon-bench-vm-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={work / 'data'}",
         "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR",
         "-retentionPeriod=1y", "-search.maxUniqueTimeseries=10000000",
         "-search.maxSamplesPerQuery=1000000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("victoria-metrics did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def synthetic_lines(pairs: int, t: float, window: float, rng: np.random.Generator) -> Iterator[bytes]:
    """JSON lines for ``/api/v1/import``: every series the sidecars of ``pairs`` pairs export."""
    step = window / 4
    ts = [int((t - 2 * window - step + k * step) * 1000) for k in range(10)]
    n_models = max(1, pairs // FEATURES_PER_MODEL)
    per_model = min(FEATURES_PER_MODEL, pairs)
    edges = np.round(np.linspace(-3, 3, BUCKETS - 1), 6)
    les = le_labels(edges)
    for m in range(n_models):
        model = f"model-{m:04d}"
        base = {"model": model, "model_version": "1"}
        yield json.dumps({"metric": {"__name__": "modelmon_model_info", **base,
                                     "baseline_id": f"{m:016x}"},
                          "values": [1] * len(ts), "timestamps": ts}).encode()
        for f in range(per_model):
            lab = {**base, "feature": f"f{f:02d}"}
            ref = rng.dirichlet(np.full(BUCKETS, 5.0))
            cum_ref = np.cumsum(ref)
            cum_ref[-1] = 1.0
            # live traffic: the reference with a small random shift, 50 events per step per bucket-ish
            live = rng.dirichlet(ref * 200 + 1)
            per_step = rng.multinomial(1000, live, size=len(ts)).cumsum(axis=0).cumsum(axis=1)
            for j, le in enumerate(les):
                yield json.dumps({"metric": {"__name__": "modelmon_feature_value_bucket", **lab,
                                             "le": le},
                                  "values": per_step[:, j].tolist(), "timestamps": ts}).encode()
                yield json.dumps({"metric": {"__name__": "modelmon_baseline_bucket_ratio", **lab,
                                             "le": le},
                                  "values": [float(cum_ref[j])] * len(ts),
                                  "timestamps": ts}).encode()
            yield json.dumps({"metric": {"__name__": "modelmon_baseline_samples", **lab},
                              "values": [10000.0] * len(ts), "timestamps": ts}).encode()


def load(url: str, pairs: int, t: float, window: float) -> int:
    rng = np.random.default_rng(SEED + pairs)
    n = 0
    buf: list[bytes] = []
    s = requests.Session()
    for line in synthetic_lines(pairs, t, window, rng):
        buf.append(line)
        n += 1
        if len(buf) >= 20000:
            s.post(f"{url}/api/v1/import", data=b"\n".join(buf), timeout=300).raise_for_status()
            buf = []
    if buf:
        s.post(f"{url}/api/v1/import", data=b"\n".join(buf), timeout=300).raise_for_status()
    s.get(f"{url}/internal/force_flush", timeout=60)
    return n


def evidently_seconds(python: str | None) -> tuple[float | None, str]:
    """Seconds of Evidently's DataDriftPreset on 10k x 20 vs 10k x 20, and where it ran."""
    code = r'''
import time, warnings, numpy as np, pandas as pd
warnings.filterwarnings("ignore")
rng = np.random.default_rng(1)
ref = pd.DataFrame(rng.normal(size=(10000, 20)), columns=[f"f{i:02d}" for i in range(20)])
cur = pd.DataFrame(rng.normal(0.1, 1.0, size=(10000, 20)), columns=ref.columns)
try:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    run = lambda: Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
except ImportError:
    from evidently.report import Report
    from evidently.metric_preset import DataDriftPreset
    def run():
        r = Report(metrics=[DataDriftPreset()]); r.run(reference_data=ref, current_data=cur)
run()
best = min((lambda t0: (run(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
print(best)
'''
    env = {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    for py in ([sys.executable] + ([python] if python else [])):
        try:
            out = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=600,
                                 env=env, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return float(out.stdout.strip().splitlines()[-1]), py
    return None, "Evidently not installed (pip install evidently, or --evidently-python)"


class TimedClient(PromClient):
    """The production client, keeping each answer's body to time its decoding apart."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.bodies: list[tuple[bytes, tuple[str, ...], str | None]] = []

    def query_columns(self, expr, time, key_labels, bucket_label=None):  # type: ignore[no-untyped-def]
        code, body = self._post(expr, time)
        self.bodies.append((body, key_labels, bucket_label))
        cols = decode_columns(body, key_labels, bucket_label)
        assert code == 200 and cols is not None, body[:200]
        return cols


def render_ms(res) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """ms of the exporter's /metrics body: first scrape after an evaluation, later scrapes."""
    collector = DriftCollector(lambda: res)
    reg = CollectorRegistry()
    reg.register(collector)
    times = []
    for _ in range(2):  # as the HTTP handler renders it
        t0 = time.perf_counter()
        with collector.split(res):
            body = generate_latest(reg)
        body += score_exposition(res)
        times.append((time.perf_counter() - t0) * 1000)
    return times[0], times[1], len(body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="100,1000,10000", help="comma-separated sizes")
    ap.add_argument("--window", type=float, default=900.0, help="window in seconds (15m)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat, no Evidently")
    ap.add_argument("--evidently-python", default=None,
                    help="a Python with Evidently installed, for the comparison line")
    args = ap.parse_args(argv)
    binary = shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")
    if binary is None:
        print("bench/drift_exporter.py needs VictoriaMetrics: apt-get install victoria-metrics",
              file=sys.stderr)
        return 2
    repeats = 1 if args.quick else args.repeats
    sizes = [int(x) for x in args.pairs.split(",") if x.strip()]
    rows = []
    for pairs in sizes:
        t = float(int(time.time()))
        with victoria_metrics(binary) as url:
            t_load = time.perf_counter()
            series = load(url, pairs, t, args.window)
            t_load = time.perf_counter() - t_load
            best: dict[str, float] = {}

            def keep(name: str, seconds: float) -> None:
                best[name] = min(best.get(name, float("inf")), seconds)

            res = None
            for _ in range(repeats):
                for phase in ("cold", "steady"):
                    client = TimedClient(url)
                    src = QuerySource(client, window=args.window, min_samples=0)
                    if phase == "steady":  # the baselines were read by an earlier evaluation
                        src.score(t, src.fetch(t))
                        client.bodies.clear()
                    gc.collect()
                    t0 = time.perf_counter()
                    vectors = src.fetch(t)
                    t1 = time.perf_counter()
                    ev = src.score(t, vectors)
                    t2 = time.perf_counter()
                    for body, kl, bl in client.bodies:
                        decode_columns(body, kl, bl)
                    t3 = time.perf_counter()
                    keep(f"{phase}_query", t1 - t0)
                    keep(f"{phase}_compute", t2 - t1)
                    keep(f"{phase}_decode", t3 - t2)
                    if phase == "steady":
                        assert not ev.baseline_read
                        res = ev
            assert res is not None
            scored = {(k.model, k.name) for k in res.scores
                      if k.reference == "baseline" and k.method == "psi"}
            expected = max(1, pairs // FEATURES_PER_MODEL) * min(FEATURES_PER_MODEL, pairs)
            check = "✓" if len(scored) == expected and not res.skipped else "✗"
            results = DriftResults(timestamp=t, scored=res.scored, sources_up={url: True},
                                   source_errors={}, last_success_timestamp=t,
                                   window_seconds=args.window,
                                   previous_window_seconds=args.window, evaluations=1,
                                   duration_seconds=0.0)
            render, again, size = render_ms(results)
            rows.append((pairs, series, best, rss_mb(), (render, again), size, len(res.scores),
                         check))
            print(f"{check} {pairs:>6} pairs: {series:,} series loaded in {t_load:.1f} s; "
                  f"steady: query {best['steady_query'] * 1000:.0f} ms (decode "
                  f"{best['steady_decode'] * 1000:.0f}), compute "
                  f"{best['steady_compute'] * 1000:.1f} ms; cold: query "
                  f"{best['cold_query'] * 1000:.0f} ms, compute "
                  f"{best['cold_compute'] * 1000:.1f} ms; /metrics {render:.0f} ms once, then "
                  f"{again:.1f} ms ({size / 1e6:.1f} MB); {len(res.scores):,} scores, "
                  f"skipped {dict(res.skipped) or 0}", flush=True)
    print()
    print(f"One evaluation, window {args.window:g} s, {len(DRIFT_METHODS)} methods × "
          f"(baseline, previous); best of {repeats}. Steady: the baselines cached from an "
          "earlier evaluation (the usual case); cold: read too (first evaluation, new "
          "model, version or baseline id, and every 15 min).")
    print()
    print("| (model, feature) pairs | series in the store | steady query ms (of it decode) "
          "| steady compute ms | steady total ms | µs per pair | cold query ms | cold compute ms "
          "| /metrics ms (first scrape, later) | exporter RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for pairs, series, b, rss, render, _size, _n, _ck in rows:
        total = b["steady_query"] + b["steady_compute"]
        print(f"| {pairs:,} | {series:,} | {b['steady_query'] * 1000:.0f} "
              f"({b['steady_decode'] * 1000:.0f}) | {b['steady_compute'] * 1000:.1f} | "
              f"{total * 1000:.0f} | {total / pairs * 1e6:.0f} | {b['cold_query'] * 1000:.0f} | "
              f"{b['cold_compute'] * 1000:.1f} | {render[0]:.0f}, {render[1]:.1f} | {rss:.0f} |")
    if rows and rows[-1][0] >= 10000:
        c10k = rows[-1][2]["steady_compute"]
        print(f"\nat {rows[-1][0]:,} pairs: compute {c10k * 1000:.1f} ms per evaluation "
              f"(target < 50 ms: {'met' if c10k < 0.05 else 'NOT met'})")
    if not args.quick:
        sec, where = evidently_seconds(args.evidently_python)
        small = next((r for r in rows if r[0] >= 20), None)
        if sec is None:
            print(f"Evidently: {where}")
        elif small is not None:
            ours = small[2]["steady_query"] + small[2]["steady_compute"]
            print(f"Evidently DataDriftPreset, 10,000-row window × 20 features: {sec:.2f} s "
                  f"({where}); modelmon's whole evaluation of {small[0]:,} pairs "
                  f"(query + compute): {ours * 1000:.0f} ms, {sec / ours:.0f}× less time")
    return 0 if all(r[7] == "✓" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
