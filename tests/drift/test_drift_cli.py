"""``modelmon drift``: settings from flags and MODELMON_* variables, and a real run."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.baseline import Baseline
from modelmon.drift.cli import ConfigError, add_arguments, resolve, run
from modelmon.drift.config import parse_duration, parse_listen
from modelmon.monitor import Monitor


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("text, seconds", [
    ("15m", 900.0), ("15s", 15.0), ("1h", 3600.0), ("500ms", 0.5), ("90", 90.0),
    ("1h30m", 5400.0), ("2.5s", 2.5), ("1d", 86400.0), (" 30s ", 30.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "m", "-5s", "0", "0s", "1m1h", "15 m", "1.5.2s",
                                  "s15", "15ms5h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_listen():
    assert parse_listen("0.0.0.0:10381") == ("0.0.0.0", 10381)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::]:9000") == ("::", 9000)
    for bad in ("host:port", "1.2.3.4:70000", "::1", "[::1", ""):
        with pytest.raises(ValueError, match="listen address"):
            parse_listen(bad)


def test_settings_from_the_environment_and_flags_win():
    env = {"MODELMON_SCRAPE": "http://a:8000/metrics, http://b:8000/metrics",
           "MODELMON_WINDOW": "1h", "MODELMON_INTERVAL": "30s", "MODELMON_MIN_SAMPLES": "500",
           "MODELMON_LISTEN": ":9999", "MODELMON_TIMEOUT": "2s"}
    cfg = resolve(parse(), env)
    assert cfg.scrape == ("http://a:8000/metrics", "http://b:8000/metrics")
    assert (cfg.window, cfg.interval, cfg.min_samples) == (3600.0, 30.0, 500)
    assert (cfg.host, cfg.port, cfg.timeout) == ("0.0.0.0", 9999, 2.0)

    cfg = resolve(parse("--scrape", "http://c/metrics", "--scrape", "http://d/metrics",
                        "--window", "10m", "--min-samples", "7"), env)
    assert cfg.scrape == ("http://c/metrics", "http://d/metrics")
    assert (cfg.window, cfg.interval, cfg.min_samples) == (600.0, 30.0, 7)

    cfg = resolve(parse("--scrape", "http://c/metrics"), {})
    assert (cfg.window, cfg.interval, cfg.min_samples) == (900.0, 15.0, 100)
    assert (cfg.host, cfg.port, cfg.timeout) == ("0.0.0.0", 10381, 10.0)


@pytest.mark.parametrize("argv, env, message", [
    ((), {}, "--scrape / MODELMON_SCRAPE: expected at least one"),
    (("--scrape", "model:8000/metrics"), {}, "--scrape: expected http"),
    ((), {"MODELMON_SCRAPE": "http://a/m,http://a/m"}, "given twice"),
    (("--scrape", "http://a/m"), {"MODELMON_WINDOW": "15 minutes"},
     "MODELMON_WINDOW: invalid duration '15 minutes'"),
    (("--scrape", "http://a/m", "--interval", "abc"), {}, "--interval: invalid duration"),
    (("--scrape", "http://a/m", "--interval", "1h"), {}, "must not be longer than --window"),
    (("--scrape", "http://a/m"), {"MODELMON_MIN_SAMPLES": "-3"},
     "MODELMON_MIN_SAMPLES: expected a whole number"),
    (("--scrape", "http://a/m", "--listen", "nohost:port"), {}, "--listen: invalid listen"),
])
def test_bad_settings_name_the_flag_or_variable(argv, env, message):
    with pytest.raises(ConfigError) as err:
        resolve(parse(*argv), env)
    assert message in str(err.value)


def test_run_returns_2_on_bad_settings(monkeypatch, capsys):
    monkeypatch.setenv("MODELMON_WINDOW", "soon")
    assert run(parse("--scrape", "http://127.0.0.1:1/metrics")) == 2
    assert "MODELMON_WINDOW: invalid duration 'soon'" in capsys.readouterr().err


def test_modelmon_drift_serves_and_stops_cleanly_on_sigterm():
    rng = np.random.default_rng(11)
    b = Baseline.build({"x": rng.normal(size=500)}, model="m", bins=5)
    reg = CollectorRegistry()
    mon = Monitor(b, registry=reg)
    mon.observe_batch({"x": rng.normal(size=50)})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = generate_latest(reg)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    env = dict(os.environ, MODELMON_SCRAPE=url, MODELMON_INTERVAL="200ms",
               MODELMON_MIN_SAMPLES="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelmon", "drift", "--listen", "127.0.0.1:0", "--window", "5s"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            m = re.search(r"event=started listen=127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "no start line:\n" + "".join(lines)
        base = f"http://127.0.0.1:{port}"
        ready = 0
        while time.monotonic() < deadline:
            ready = requests.get(base + "/-/ready", timeout=2).status_code
            if ready == 200:
                break
            time.sleep(0.05)
        assert ready == 200
        mon.observe_batch({"x": rng.normal(size=50)})
        text = ""
        while time.monotonic() < deadline and 'feature="x",method="psi"' not in text:
            text = requests.get(base + "/metrics", timeout=2).text
            time.sleep(0.05)
        assert 'modelmon_drift_score{feature="x",method="psi"' in text
        assert f'modelmon_drift_source_up{{source="{url}"}} 1.0' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out = proc.stdout.read()  # type: ignore[union-attr]
        server.shutdown()
        server.server_close()
    assert "event=shutdown signal=SIGTERM" in out
    assert "event=stopped" in out
