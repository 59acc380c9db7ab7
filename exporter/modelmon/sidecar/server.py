"""Serving :class:`SidecarApp` with uvicorn, and a clean stop on SIGTERM.

On SIGTERM the sidecar turns not-ready (``/-/ready`` answers 503) but keeps
serving everything, events included, for ``shutdown_delay`` seconds: in a
Kubernetes pod the model container is stopping at the same time and may still
post its last events, and Prometheus gets a last scrape that sees them. Then
uvicorn stops accepting connections, lets in-flight requests finish, and the
process exits 0. SIGINT (Ctrl-C) skips the delay; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Generator
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from .app import SidecarApp

if TYPE_CHECKING:
    from ..webconfig import WebConfig

__all__ = ["SidecarServer"]

log = logging.getLogger("modelmon.sidecar")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: SidecarApp, delay: float) -> None:
        super().__init__(config)
        self._sidecar = app
        self._delay = delay
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._sidecar.ready = False
        if sig == signal.SIGTERM and self._delay > 0 and self._drain_until is None \
                and not self.should_exit:
            self._drain_until = time.monotonic() + self._delay
            log.info("event=draining signal=SIGTERM delay_seconds=%g", self._delay)
            return
        log.info("event=shutdown signal=%s", signal.Signals(sig).name if sig else "stop")
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the captured signal after shutdown (so the process
        # dies by it); a sidecar that stopped cleanly should exit 0 instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in originals.items():
                signal.signal(s, h)


class SidecarServer:
    """Runs a :class:`SidecarApp` under uvicorn on an already bound socket.

    Parameters
    ----------
    app : SidecarApp
    host, port : str, int
        Where to listen; ``port=0`` picks a free port (see :attr:`address`).
    web_config : WebConfig, optional
        TLS and basic auth (``--web.config.file``).
    shutdown_delay : float
        Seconds to keep serving, not ready, after SIGTERM.
    graceful_timeout : float
        Longest wait for in-flight requests once the listener is closed.
    """

    def __init__(self, app: SidecarApp, host: str = "0.0.0.0", port: int = 10380, *,
                 web_config: WebConfig | None = None, shutdown_delay: float = 0.0,
                 graceful_timeout: float = 30.0) -> None:
        self.app = app
        asgi: Any = app
        kwargs: dict[str, Any] = {}
        if web_config is not None:
            from ..webconfig import BasicAuthASGI

            kwargs = web_config.uvicorn_kwargs()
            if web_config.users:
                asgi = BasicAuthASGI(app, web_config)
        self.tls = bool(kwargs)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY from the listener on Linux. Without
        # it the reply's body (written after its headers) waits for the client's
        # delayed ACK: 40 ms per request on loopback.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)
        sock.set_inheritable(True)
        self.sock = sock
        bound = sock.getsockname()
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        config = uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=int(graceful_timeout),
                                server_header=False, proxy_headers=False, **kwargs)
        self.server = _Server(config, app, shutdown_delay)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def run(self) -> int:
        """Serve in the foreground until SIGTERM/SIGINT; returns the exit code."""
        try:
            # uvicorn's own runner: uvloop when installed (the [standard] extra).
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()
        return 0

    def start(self) -> tuple[str, int]:
        """Serve in a background thread (tests, embedding); returns the bound address."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self.run, name="modelmon-sidecar", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sidecar did not start")
            time.sleep(0.01)
        return self.address

    def shutdown(self) -> None:
        """What SIGTERM does: not ready, keep serving for ``shutdown_delay``, then stop."""
        self.server.handle_exit(signal.SIGTERM, None)

    def stop(self, timeout: float = 10.0, grace: float = 1.0) -> None:
        """Stop now and wait for the thread.

        In-flight requests get ``grace`` seconds to finish; then the server stops
        waiting (a TLS connection whose peer never answers the close would
        otherwise hold the shutdown until the TLS close timeout).
        """
        self.server.handle_exit(signal.SIGINT, None)
        if self._thread is not None:
            self._thread.join(min(grace, timeout))
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout)
