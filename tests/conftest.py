"""Shared fixtures: real binaries are found here, and missing ones fail under CI."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Sequence
from typing import BinaryIO

import pytest

# re-exported for the modules that import them from here
from .support import (  # noqa: F401
    IN_CI,
    end_process,
    free_port,
    require_binary,
    require_module,
    wait_until,
)

#: Fixtures that find or start a real server binary ...
SERVER_FIXTURES = frozenset({"promtool", "prometheus_binary", "victoria_metrics_binary",
                             "redis_server", "alertmanager_binary", "amtool", "populated"})
#: ... and the helpers a module starts one with (its tests start real servers).
SERVER_HELPERS = frozenset({"require_binary", "Prometheus", "VictoriaMetrics", "RedisServer",
                            "Alertmanager"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test that uses a server fixture or starts a real server
    itself, so ``-m "not integration"`` is the quick unit run."""
    for item in items:
        function = getattr(item, "function", None)
        code = getattr(function, "__code__", None)
        names = set(code.co_names) if code is not None else set()
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) or \
                SERVER_HELPERS & names:
            item.add_marker(pytest.mark.integration)


# Sidecars the tests start as processes keep their label join in memory unless a test
# chooses a store: the default (a SQLite file in the user's state directory) would be
# shared between unrelated sidecars and outlive the run.
os.environ.setdefault("MODELMON_JOIN_STORE", "memory")


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


class _StoreServer:
    """A real metrics store (Prometheus or VictoriaMetrics) on a free loopback port,
    scraping ``targets`` (job ``modelmon``) every ``scrape_interval``.

    ``kill()`` stops it and ``start()`` starts it again on the same port and data
    directory (``restart()`` does both); ``stop()`` ends it for good.
    """

    name = ""
    health_path = ""
    config_name = ""

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
        self.config = self.work / self.config_name
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: modelmon\n"
            f"    scheme: {scheme}\n"
            "    static_configs:\n"
            f"      - targets: {targets!r}\n" + extra_scrape + self._extra_config())
        self.http = requests.Session()
        self.log: BinaryIO | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _extra_config(self) -> str:
        return ""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        import time

        import requests

        self.log = open(self.work / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(self._command(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(self.url + self.health_path, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start: "
                                   + (self.work / f"{self.name}.log").read_text()[-2000:])
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
        last: list[list[dict]] = []

        def check() -> tuple[list[dict]] | None:  # a tuple: true even for an empty result
            last[:] = [self.query(expr)]
            return (last[0],) if predicate(last[0]) else None

        return wait_until(check, repr(expr), timeout, interval=0.2,
                          detail=lambda: f"last result {last[0] if last else None}")[0]

    def kill(self) -> None:
        """Stop the server (gracefully: buffered samples reach the disk), keeping its port
        and data directory for :meth:`start`."""
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
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        self.http.close()


class Prometheus(_StoreServer):
    """A real Prometheus; ``rule_files`` are loaded into its config."""

    name = "prometheus"
    health_path = "/-/ready"
    config_name = "prometheus.yml"

    def __init__(self, binary: str, workdir: os.PathLike[str] | str, targets: list[str],
                 scrape_interval: str = "1s", scheme: str = "http", extra_scrape: str = "",
                 rule_files: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.rule_files = list(rule_files)
        super().__init__(binary, workdir, targets, scrape_interval, scheme, extra_scrape)

    def _extra_config(self) -> str:
        if not self.rule_files:
            return ""
        return "rule_files:\n" + "".join(f"  - {os.fspath(f)!r}\n" for f in self.rule_files)

    def _command(self) -> list[str]:
        return [self.binary, f"--config.file={self.config}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--log.level=warn"]


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus")


class VictoriaMetrics(_StoreServer):
    """A real single-node VictoriaMetrics scraping with ``-promscrape.config``.

    Started with ``-search.latencyOffset=0s`` (by default VictoriaMetrics hides the
    last 30 s of samples from queries, which would hide everything a test with 1 s
    scrapes just posted) and ``-search.disableCache`` (no stale cached results while a
    test polls).
    """

    name = "victoria-metrics"
    health_path = "/health"
    config_name = "scrape.yml"

    def _command(self) -> list[str]:
        return [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.work / 'data'}", f"-promscrape.config={self.config}",
                "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=WARN"]


@pytest.fixture(scope="session")
def victoria_metrics_binary() -> str:
    return require_binary("victoria-metrics")


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence
    (``--save '' --appendonly no``), working in ``workdir``; ``url`` is database 0.

    Readiness is a raw ``PING`` over the socket (no client library needed).
    """

    def __init__(self, binary: str, workdir: os.PathLike[str] | str) -> None:
        import time
        from pathlib import Path

        self.work = Path(workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = open(self.work / "redis.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start: "
                                   + (self.work / "redis.log").read_text()[-2000:])
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        end_process(self.proc)
        self.log.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """One real redis-server for the session (skips loudly outside CI if missing)."""
    server = RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


class Alertmanager:
    """A real Alertmanager (Debian's binary is ``prometheus-alertmanager``) on a free
    loopback port, with ``config_text`` as its configuration, its data in ``workdir``
    and clustering off (``--cluster.listen-address=``: no gossip port, no peers).

    ``alerts()`` is ``GET /api/v2/alerts`` (every alert, with its ``status``:
    ``state``, ``inhibitedBy``, ``silencedBy``); ``post_alerts()`` is
    ``POST /api/v2/alerts``; ``stop()`` ends it.
    """

    def __init__(self, binary: str, workdir: os.PathLike[str] | str, config_text: str) -> None:
        import time
        from pathlib import Path

        import requests

        self.work = Path(workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.work / "alertmanager.yml"
        self.config.write_text(config_text)
        self.http = requests.Session()
        self.log_path = self.work / "alertmanager.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.path={self.work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=debug"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("alertmanager did not start: " + self.log_text())
            time.sleep(0.1)

    def log_text(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def alerts(self, **params: str) -> list[dict]:
        """``GET /api/v2/alerts`` (query parameters such as ``filter`` pass through)."""
        r = self.http.get(f"{self.url}/api/v2/alerts", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def post_alerts(self, alerts: list[dict]) -> None:
        """``POST /api/v2/alerts`` (each alert: ``labels``, optional ``annotations``,
        ``startsAt``, ``endsAt``); raises on an error status."""
        r = self.http.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        if r.status_code != 200:
            raise AssertionError(f"POST /api/v2/alerts: {r.status_code} {r.text}")

    def stop(self) -> None:
        end_process(self.proc)
        self.log.close()
        self.http.close()


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    return require_binary("prometheus-alertmanager")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_binary("amtool")
