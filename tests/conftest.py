"""Shared fixtures: real binaries are found here, and missing ones fail under CI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from typing import BinaryIO

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(name: str) -> str:
    """Path of a real binary; skips loudly outside CI, fails under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    msg = (f"REQUIRED BINARY MISSING: {name!r} is not on PATH. Install the Debian package "
           f"(see .ci/run) to run this test.")
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


class Prometheus:
    """A real Prometheus server on a free loopback port, scraping ``targets`` every second."""

    def __init__(self, binary: str, workdir: "os.PathLike[str] | str", targets: list[str],
                 scrape_interval: str = "1s", scheme: str = "http",
                 extra_scrape: str = "",
                 rule_files: Sequence[str | os.PathLike[str]] = ()) -> None:
        import subprocess
        import time
        from pathlib import Path

        import requests

        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = work / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: modelmon\n"
            f"    scheme: {scheme}\n"
            "    static_configs:\n"
            f"      - targets: {targets!r}\n" + extra_scrape
            + ("rule_files:\n" + "".join(f"  - {os.fspath(f)!r}\n" for f in rule_files)
               if rule_files else ""))
        self.log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.http = requests.Session()
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("prometheus did not start: "
                                   + (work / "prometheus.log").read_text()[-2000:])
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict]:
        """Instant query result (``data.result``); raises on an API error."""
        r = self.http.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        doc = r.json()
        if doc.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {doc}")
        return doc["data"]["result"]

    def wait_for(self, expr: str, predicate, timeout: float = 30.0) -> list[dict]:
        """Poll ``expr`` until ``predicate(result)`` holds; the last result otherwise fails."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            res = self.query(expr)
            if predicate(res):
                return res
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {expr!r}; last result {res}")
            time.sleep(0.2)

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
        self.http.close()
        self.log.close()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus")


class VictoriaMetrics:
    """A real single-node VictoriaMetrics on a free loopback port, scraping ``targets``.

    Same interface as :class:`Prometheus` (``url``, ``port``, ``query``, ``wait_for``,
    ``stop``) plus ``restart()``, which stops the server and starts it again on the same
    port and data directory. Started with ``-search.latencyOffset=0s`` (by default
    VictoriaMetrics hides the last 30 s of samples from queries, which would hide
    everything a test with 1 s scrapes just posted) and ``-search.disableCache`` (no
    stale cached results while a test polls).
    """

    def __init__(self, binary: str, workdir: os.PathLike[str] | str, targets: list[str],
                 scrape_interval: str = "1s", scheme: str = "http",
                 extra_scrape: str = "") -> None:
        from pathlib import Path

        import requests

        self.binary = binary
        self.work = Path(workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.work / "scrape.yml"
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: modelmon\n"
            f"    scheme: {scheme}\n"
            "    static_configs:\n"
            f"      - targets: {targets!r}\n" + extra_scrape)
        self.http = requests.Session()
        self.log: BinaryIO | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._start()

    def _start(self) -> None:
        import time

        import requests

        self.log = open(self.work / "victoria-metrics.log", "ab")  # noqa: SIM115 - stop()
        self.proc = subprocess.Popen(
            [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.work / 'data'}", f"-promscrape.config={self.config}",
             "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("victoria-metrics did not start: "
                                   + (self.work / "victoria-metrics.log").read_text()[-2000:])
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict]:
        """Instant query result (``data.result``); raises on an API error."""
        r = self.http.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        doc = r.json()
        if doc.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {doc}")
        return doc["data"]["result"]

    def wait_for(self, expr: str, predicate, timeout: float = 30.0) -> list[dict]:
        """Poll ``expr`` until ``predicate(result)`` holds; the last result otherwise fails."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            res = self.query(expr)
            if predicate(res):
                return res
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {expr!r}; last result {res}")
            time.sleep(0.2)

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()

    def restart(self) -> None:
        """Stop (gracefully: buffered samples are flushed to disk) and start again."""
        self._terminate()
        self._start()

    def stop(self) -> None:
        self._terminate()
        self.http.close()


@pytest.fixture(scope="session")
def victoria_metrics_binary() -> str:
    return require_binary("victoria-metrics")
