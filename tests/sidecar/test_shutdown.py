"""SIGTERM: in-flight requests finish, counts stay visible to a last scrape, exit 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from ..conftest import free_port

pytestmark = pytest.mark.slow


def _start(baseline_file, delay: str) -> tuple[subprocess.Popen, str, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelmon", "sidecar", "--baseline", str(baseline_file),
         "--listen", f"127.0.0.1:{port}", "--shutdown-delay", delay],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url, port
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "no output")
        time.sleep(0.1)


def _half_sent_request(port: int, n: int) -> tuple[socket.socket, bytes]:
    """A POST whose headers and first half of the body are sent; returns the rest."""
    body = json.dumps({"events": [{"features": {"age": 30.0}}] * n}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/models/loan/events HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
              + b"\r\n\r\n" + body[: len(body) // 2])
    return s, body[len(body) // 2:]


def _finish(s: socket.socket, rest: bytes) -> str:
    s.sendall(rest)
    data = b""
    while not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


def _predictions(url: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("modelmon_predictions_total{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no modelmon_predictions_total")


@pytest.fixture
def baseline_file(baseline, tmp_path):
    return baseline.save(tmp_path / "loan.yaml")


def test_sigterm_drains_then_exits_zero(baseline_file) -> None:
    proc, url, port = _start(baseline_file, "2s")
    try:
        assert requests.post(f"{url}/v1/models/loan/events",
                             json={"events": [{"features": {"age": 1.0}}] * 10}).status_code == 200
        s, rest = _half_sent_request(port, 25)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        reply = _finish(s, rest)  # the in-flight request completes
        assert reply.startswith("HTTP/1.1 200") and '"accepted":25' in reply
        # draining: not ready, but events and scrapes are still served
        assert requests.get(f"{url}/-/ready", timeout=5).status_code == 503
        r = requests.post(f"{url}/v1/models/loan/events",
                          json={"events": [{"features": {"age": 2.0}}] * 5}, timeout=5)
        assert r.status_code == 200
        assert _predictions(url) == 40  # the last scrape sees every count
        assert proc.wait(15) == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
        # it waited for the delay (its own clock says so), then stopped
        assert "event=draining signal=SIGTERM delay_seconds=2" in out and "Traceback" not in out
        assert out.index("event=draining") < out.index("event=drained delay_seconds=2")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_without_delay_finishes_in_flight_requests(baseline_file) -> None:
    proc, url, port = _start(baseline_file, "0")
    try:
        s, rest = _half_sent_request(port, 7)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        reply = _finish(s, rest)
        assert reply.startswith("HTTP/1.1 200") and '"accepted":7' in reply
        assert proc.wait(15) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/-/healthy", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
