"""Sidecar ingest benchmark: events/s and latency of ``POST /v1/models/{model}/events``.

    python bench/ingest.py              # best of 3 × 5 s per cell and server, ~5 minutes
    python bench/ingest.py --quick      # 1 × 2 s per cell and server, ~1 minute, noisier
    python bench/ingest.py --markdown   # also print the table as Markdown

For each format (JSON ``{"events": [...]}`` and NDJSON) and batch size (1, 100,
500 events per request) ``wrk`` (one thread, 8 connections, pinned to CPU 1)
POSTs one fixed, pre-generated body as fast as the server answers, to

* ``modelmon sidecar`` started as its own process (``python -m modelmon
  sidecar``), pinned to CPU 0, and
* the echo ceiling (``bench/echo_app.py``), pinned to CPU 0 as well: a bare
  ASGI app on the same uvicorn stack that reads the body, decodes it with
  msgspec (generic, untyped) and answers ``{"accepted": n}``: what HTTP plus
  JSON costs in Python here, without validation and counting.

Each cell: a warm-up of each server, then ``--repeats`` measured runs that
alternate sidecar and echo (so a noisy neighbour hits both alike); the best run
of each is reported. The wrk script stops sending at the deadline and waits for
the replies in flight, so no request is cut off; events/s = replies × batch /
(first request .. last reply). Around every sidecar run its ``/metrics`` is
scraped: ``modelmon_predictions_total`` must have grown by exactly replies ×
batch (and the events requests answered 200 by replies), else the script fails.

Workload (seeded): a loan model, 10 numeric features (normal, lognormal, uniform,
integer counts), 3 categorical features (6, 4 and 20 categories), a class
prediction (``decision``) and one score column (``p_default``); baseline from
20,000 training rows, 20 bins. Events are plain JSON as a client would send
them: features rounded as they would be in a request, the score at full
precision, ``latency_seconds`` set. All events are valid and distinct within a
body.

Targets (issue): at batch 500, at least 100,000 events/s on one core and at
least 50 % of the echo ceiling.

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``; macOS: ``brew install
wrk``); exits 2 without it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from modelmon import Baseline
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
MODEL = "loan"
VERSION = "1"
SEED = 20240611
N_TRAIN = 20_000
BATCHES = (1, 100, 500)
FORMATS = ("json", "ndjson")
CTYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}
TARGET_EPS = 100_000
TARGET_RATIO = 0.5

PURPOSES = ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "other"]
HOME = ["rent", "mortgage", "own", "other"]
STATES = ["CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI",
          "NJ", "VA", "WA", "AZ", "MA", "TN", "IN", "MO", "MD", "WI"]
DECISIONS = ["approve", "review", "deny"]

# ---------------------------------------------------------------------------
# Workload


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


def make_data(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    """Columns of the loan model: 10 numeric, 3 categorical, a decision and a score."""
    income = rng.lognormal(10.9 + shift * 0.1, 0.5, n)
    data: dict[str, Any] = {
        "age": np.clip(rng.normal(41 + shift * 2, 11, n), 18, 90).round(0),
        "income": income.round(2),
        "loan_amount": (rng.lognormal(9.4, 0.7, n)).round(2),
        "term_months": rng.choice([12, 24, 36, 48, 60], n, p=[.1, .2, .35, .15, .2]),
        "credit_score": np.clip(rng.normal(690 - shift * 10, 55, n), 300, 850).round(0),
        "debt_to_income": np.clip(rng.normal(0.32 + shift * 0.02, 0.12, n), 0, 1.5).round(4),
        "num_accounts": rng.poisson(7, n),
        "utilization": rng.uniform(0, 1, n).round(4),
        "years_employed": rng.exponential(6, n).round(1),
        "delinquencies": rng.poisson(0.4, n),
        "purpose": rng.choice(PURPOSES, n, p=_zipf(len(PURPOSES))).tolist(),
        "home_ownership": rng.choice(HOME, n, p=[.45, .38, .12, .05]).tolist(),
        "state": rng.choice(STATES, n, p=_zipf(len(STATES))).tolist(),
    }
    z = (data["credit_score"] - 690) / 55 - (data["debt_to_income"] - 0.32) / 0.12
    p_default = 1.0 / (1.0 + np.exp(1.5 + z + rng.normal(0, 0.5, n)))
    data["p_default"] = p_default
    data["decision"] = np.where(p_default < 0.15, "approve",
                                np.where(p_default < 0.35, "review", "deny")).tolist()
    return data


NUMERIC = ["age", "income", "loan_amount", "term_months", "credit_score", "debt_to_income",
           "num_accounts", "utilization", "years_employed", "delinquencies"]
CATEGORICAL = ["purpose", "home_ownership", "state"]
INTS = {"term_months", "num_accounts", "delinquencies", "age", "credit_score"}


def make_baseline() -> Baseline:
    data = make_data(np.random.default_rng(SEED), N_TRAIN)
    return Baseline.build(data, model=MODEL, model_version=VERSION, prediction="decision",
                          probability=["p_default"], categorical=CATEGORICAL, bins=20)


def make_events(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct events as a client would post them (plain Python values)."""
    rng = np.random.default_rng(seed)
    d = make_data(rng, n, shift=0.3)
    lat = rng.lognormal(-4.5, 0.4, n).round(6)
    out = []
    for i in range(n):
        feats: dict[str, Any] = {}
        for k in NUMERIC:
            v = d[k][i]
            feats[k] = int(v) if k in INTS else float(v)
        for k in CATEGORICAL:
            feats[k] = d[k][i]
        out.append({"features": feats, "prediction": d["decision"][i],
                    "probabilities": float(d["p_default"][i]),
                    "latency_seconds": float(lat[i])})
    return out


def make_body(fmt: str, events: list[dict[str, Any]]) -> bytes:
    if fmt == "json":
        return msgspec.json.encode({"events": events})
    return b"\n".join(msgspec.json.encode(e) for e in events) + b"\n"


# ---------------------------------------------------------------------------
# wrk

WRK_SCRIPT = r"""
-- bench/ingest.py: POST one fixed body (args: body file, content type, seconds).
-- At the deadline each connection stops sending (delay() returns a day) and wrk
-- only waits, so no request is in flight when it ends and the sidecar's counts
-- must match the replies exactly. Rates are taken over first request..last reply.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } mm_timespec;
int clock_gettime(int clk_id, mm_timespec *tp);
]]
local ts = ffi.new("mm_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

started, last, replies, bad = -1, -1, 0, 0
local deadline, duration = nil, 0

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = args[2]
  duration = tonumber(args[3])
end

function delay()
  local t = now()
  if deadline == nil then started = t; deadline = t + duration end
  if t >= deadline then return 86400000 end
  return 0
end

function response(status, headers, body)
  replies = replies + 1
  if status ~= 200 then bad = bad + 1 end
  last = now()
end

function done(summary, latency, requests)
  local n, nbad, t0, t1 = 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    n = n + t:get("replies")
    nbad = nbad + t:get("bad")
    local s, l = t:get("started"), t:get("last")
    if s >= 0 and s < t0 then t0 = s end
    if l > t1 then t1 = l end
  end
  local e = summary.errors
  io.write(string.format(
    'MMBENCH {"replies": %d, "wrk_requests": %d, "seconds": %.6f, "bad_status": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    n, summary.requests, t1 - t0, nbad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Run:
    replies: int
    seconds: float
    p50_ms: float
    p99_ms: float

    def eps(self, batch: int) -> float:
        return self.replies * batch / self.seconds if self.seconds > 0 else 0.0


class BenchError(RuntimeError):
    pass


def _pin(cpu: int | None):  # type: ignore[no-untyped-def]
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_wrk(wrk: str, url: str, script: Path, body: Path, ctype: str, seconds: float,
            connections: int, cpu: int | None) -> Run:
    """One wrk run: ``seconds`` of sending, then the replies in flight."""
    # wrk runs whole seconds; the script stops sending after ``seconds`` and the
    # rest (at least half a second) is for the replies in flight
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{math.ceil(seconds + 0.5)}s", "--timeout", "10s",
           "-s", str(script), url, "--", str(body), ctype, f"{seconds:g}"]
    # the driver runs no threads, so preexec_fn is safe here
    p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_pin(cpu),
                       check=False)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("MMBENCH ")), None)
    if p.returncode != 0 or line is None:
        raise BenchError(f"wrk failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = json.loads(line[8:])
    errs = {k: v for k, v in r["errors"].items() if v}
    if errs or r["bad_status"] or r["replies"] != r["wrk_requests"]:
        raise BenchError(f"wrk saw errors against {url}: {r}")
    return Run(r["replies"], r["seconds"], r["p50_us"] / 1000, r["p99_us"] / 1000)


# ---------------------------------------------------------------------------
# the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, ctype: str | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextlib.contextmanager
def server(name: str, cmd: list[str], base: str, cpu: int | None, log: Path) -> Iterator[None]:
    """Start ``cmd`` pinned to ``cpu``, wait for ``base/-/ready``, stop it (SIGTERM) after."""
    with open(log, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=_pin(cpu))  # noqa: PLW1509 (no threads)
    try:
        deadline = time.monotonic() + 60
        while True:
            if p.poll() is not None:
                raise BenchError(f"{name} exited with {p.returncode}:\n{log.read_text()}")
            try:
                if http("GET", f"{base}/-/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready after 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def scrape(base: str) -> tuple[float, float]:
    """(modelmon_predictions_total, events requests answered 200) of the sidecar."""
    status, body = http("GET", f"{base}/metrics")
    if status != 200:
        raise BenchError(f"GET {base}/metrics: {status}")
    preds = reqs = 0.0
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if s.name == "modelmon_predictions_total" and s.labels.get("model") == MODEL:
                preds += s.value
            elif (s.name == "modelmon_sidecar_requests_total"
                  and s.labels.get("endpoint") == "events" and s.labels.get("code") == "200"):
                reqs += s.value
    return preds, reqs


def check_reply(name: str, url: str, body: bytes, ctype: str, batch: int) -> None:
    status, reply = http("POST", url, body, ctype)
    doc = json.loads(reply) if status == 200 else {}
    if status != 200 or doc.get("accepted") != batch or doc.get("rejected", []):
        raise BenchError(f"{name}: expected 200 with {batch} accepted and none rejected, "
                         f"got {status} {reply[:500]!r}")


# ---------------------------------------------------------------------------
# output


@dataclass
class Cell:
    fmt: str
    batch: int
    body_bytes: int
    sidecar: Run
    echo: Run

    @property
    def ratio(self) -> float:
        e = self.echo.eps(self.batch)
        return self.sidecar.eps(self.batch) / e if e else 0.0


HEAD = ["format", "batch", "sidecar events/s", "sidecar p50 / p99 ms", "echo events/s",
        "echo p50 / p99 ms", "sidecar / echo", "sidecar µs/event", "over echo µs/event"]


def rows(cells: list[Cell]) -> list[list[str]]:
    out = []
    for c in cells:
        s, e = c.sidecar.eps(c.batch), c.echo.eps(c.batch)
        out.append([
            "JSON" if c.fmt == "json" else "NDJSON", f"{c.batch:,}", f"{s:,.0f}",
            f"{c.sidecar.p50_ms:.2f} / {c.sidecar.p99_ms:.2f}", f"{e:,.0f}",
            f"{c.echo.p50_ms:.2f} / {c.echo.p99_ms:.2f}", f"{c.ratio:.0%}",
            f"{1e6 / s:.2f}", f"{1e6 / s - 1e6 / e:+.2f}"])
    return out


def markdown(cells: list[Cell]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |",
             "|---|" + "---:|" * (len(HEAD) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(cells)]
    return "\n".join(lines)


def print_table(cells: list[Cell], title: str) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        data = [HEAD] + rows(cells)
        widths = [max(len(r[i]) for r in data) for i in range(len(HEAD))]
        print(title)
        for k, r in enumerate(data):
            print("  ".join(v.rjust(w) if i > 1 else v.ljust(w)
                            for i, (v, w) in enumerate(zip(r, widths))))
            if k == 0:
                print("  ".join("-" * w for w in widths))
        return
    t = Table(title=title)
    for i, h in enumerate(HEAD):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in rows(cells):
        t.add_row(*r)
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=170)
    console.print(t)


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(wrk: str, args: argparse.Namespace, pinned: bool, loop: str = "") -> str:
    wrk_v = subprocess.run([wrk, "--version"], capture_output=True, text=True,
                           check=False).stdout
    wrk_v = wrk_v.splitlines()[0].split(" [")[0] if wrk_v else "wrk"
    cpus = (f"sidecar/echo on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}" if pinned
            else "not pinned (fewer than 2 CPUs)")
    return (f"{cpu_model()}, {os.cpu_count()} CPUs ({cpus}); Python {platform.python_version()}, "
            f"uvicorn {version('uvicorn')}, uvloop {version('uvloop')}, httptools "
            f"{version('httptools')}, msgspec {version('msgspec')}, numpy {version('numpy')}, "
            f"modelmon {version('modelmon')}{loop}; {wrk_v}, 1 thread, {args.connections} connections, "
            f"best of {args.repeats} × {args.duration:g} s runs per cell after {args.warmup:g} s "
            "warm-up")


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="2 s per cell, 1 s warm-up")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 5)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up per cell (default 2)")
    ap.add_argument("--repeats", type=int, help="measured runs per cell and server, the best "
                    "is reported (default 3; 1 with --quick)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)),
                    help="comma-separated batch sizes (default %(default)s)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="json,ndjson (default)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU of the servers (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk (default 1)")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = ap.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.repeats = max(1, args.repeats or (1 if args.quick else 3))
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    batches = [int(b) for b in args.batches.split(",")]
    formats = [f.strip().lower() for f in args.formats.split(",")]
    if not set(formats) <= set(FORMATS):
        ap.error(f"--formats: choose among {FORMATS}")

    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench/ingest.py needs the load generator wrk, which is not installed:\n"
              "  Debian/Ubuntu: sudo apt-get install wrk\n"
              "  Fedora:        sudo dnf install wrk\n"
              "  macOS:         brew install wrk\n"
              "  from source:   https://github.com/wg/wrk", file=sys.stderr)
        return 2

    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    pinned = {args.server_cpu, args.client_cpu} <= cpus and args.server_cpu != args.client_cpu
    if not pinned:
        print(f"note: CPUs {args.server_cpu} and {args.client_cpu} not both available "
              f"({sorted(cpus)}); not pinning", file=sys.stderr)
    server_cpu = args.server_cpu if pinned else None
    client_cpu = args.client_cpu if pinned else None
    if client_cpu is not None:  # this driver mostly sleeps; keep it off the server's CPU
        os.sched_setaffinity(0, {client_cpu})

    tmp = Path(tempfile.mkdtemp(prefix="modelmon-bench-ingest-"))
    loop = env = ""
    try:
        baseline_path = make_baseline().save(tmp / "loan.yaml")
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        bodies: dict[tuple[str, int], Path] = {}
        for b in batches:
            events = make_events(b, SEED + b)
            for fmt in formats:
                p = tmp / f"body-{fmt}-{b}.bin"
                p.write_bytes(make_body(fmt, events))
                bodies[(fmt, b)] = p

        sp, ep = free_port(), free_port()
        side_base, echo_base = f"http://127.0.0.1:{sp}", f"http://127.0.0.1:{ep}"
        side_url, echo_url = f"{side_base}/v1/models/{MODEL}/events", f"{echo_base}/events"
        side_cmd = [sys.executable, "-m", "modelmon", "sidecar", "--baseline",
                    str(baseline_path), "--listen", f"127.0.0.1:{sp}", "--shutdown-delay", "0"]
        echo_cmd = [sys.executable, str(HERE / "echo_app.py"), "--listen", f"127.0.0.1:{ep}"]
        print("bodies: " + ", ".join(f"{fmt} × {b}: {p.stat().st_size:,} bytes"
                                     for (fmt, b), p in bodies.items()), flush=True)

        cells: list[Cell] = []
        failed = False
        with server("modelmon sidecar", side_cmd, side_base, server_cpu, tmp / "sidecar.log"), \
                server("echo", echo_cmd, echo_base, server_cpu, tmp / "echo.log"):
            ready = http("GET", f"{echo_base}/-/ready")[1].decode()
            if "event loop " in ready:
                loop = ready.split("event loop ", 1)[1].rstrip(")\n")
                loop = f", event loop {loop} (echo; the sidecar's server starts it the same way)"
            env = environment(wrk, args, pinned, loop)
            print(f"environment: {env}", flush=True)
            for fmt in formats:
                for b in batches:
                    body, ctype = bodies[(fmt, b)], CTYPES[fmt]
                    size = body.stat().st_size
                    check_reply("sidecar", side_url, body.read_bytes(), ctype, b)
                    check_reply("echo", echo_url, body.read_bytes(), ctype, b)

                    def warm(url: str, body: Path = body, ctype: str = ctype) -> None:
                        if args.warmup > 0:
                            run_wrk(wrk, url, script, body, ctype, args.warmup,
                                    args.connections, client_cpu)

                    def measure(url: str, body: Path = body, ctype: str = ctype) -> Run:
                        return run_wrk(wrk, url, script, body, ctype, args.duration,
                                       args.connections, client_cpu)

                    warm(side_url)
                    warm(echo_url)
                    sides: list[Run] = []
                    echos: list[Run] = []
                    label = f"{fmt:6s} batch {b:>4}"
                    for rep in range(args.repeats):  # alternate, so drift hits both alike
                        p0, r0 = scrape(side_base)
                        side = measure(side_url)
                        p1, r1 = scrape(side_base)
                        sides.append(side)
                        echos.append(measure(echo_url))
                        # wrk drained its connections: every request sent was answered
                        want = side.replies * b
                        if p1 - p0 == want and r1 - r0 == side.replies:
                            print(f"✓ {label} run {rep + 1}: modelmon_predictions_total "
                                  f"+{p1 - p0:,.0f} = {side.replies:,} requests × {b}; "
                                  f"sidecar {side.eps(b):,.0f} ev/s, echo "
                                  f"{echos[-1].eps(b):,.0f} ev/s", flush=True)
                        else:
                            failed = True
                            print(f"✗ {label} run {rep + 1}: FAILED — "
                                  f"modelmon_predictions_total grew by {p1 - p0:,.0f} and events "
                                  f"requests (200) by {r1 - r0:,.0f}; expected {side.replies:,} "
                                  f"requests × {b} = {want:,}", file=sys.stderr, flush=True)
                    best = max(sides, key=lambda r: r.eps(b))
                    cell = Cell(fmt, b, size, best, max(echos, key=lambda r: r.eps(b)))
                    cells.append(cell)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print_table(cells, f"modelmon sidecar ingest vs echo ceiling ({args.connections} "
                       f"connections, best of {args.repeats} × {args.duration:g} s)")
    print("µs/event = 1e6 / events/s on the one server core; 'over echo' = sidecar µs/event "
          "minus echo µs/event (what validation and counting add).")
    for c in cells:
        if c.batch == 500:
            s = c.sidecar.eps(c.batch)
            print(f"target {c.fmt} batch 500: {s:,.0f} events/s (≥ {TARGET_EPS:,}: "
                  f"{'met' if s >= TARGET_EPS else 'NOT met'}), {c.ratio:.0%} of echo "
                  f"(≥ {TARGET_RATIO:.0%}: {'met' if c.ratio >= TARGET_RATIO else 'NOT met'})")
    if args.markdown:
        print()
        print(markdown(cells))
        print()
        print(f"Environment: {env}.")
    if failed:
        print("error: the sidecar's counts did not match the requests (see ✗ above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
