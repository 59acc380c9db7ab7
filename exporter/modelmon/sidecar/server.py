"""Serving :class:`SidecarApp` with uvicorn, and a clean stop on SIGTERM.

The server is the one every modelmon command shares,
:class:`modelmon.web.WebServer`; :class:`SidecarServer` only sets the
sidecar's default port and thread name.

On SIGTERM the sidecar turns not-ready (``/-/ready`` answers 503) but keeps
serving everything, events included, for ``shutdown_delay`` seconds: in a
Kubernetes pod the model container is stopping at the same time and may still
post its last events, and Prometheus gets a last scrape that sees them. Then
uvicorn stops accepting connections, lets in-flight requests finish, and the
process exits 0. SIGINT (Ctrl-C) skips the delay; a second signal stops at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..web import WebServer

if TYPE_CHECKING:
    from ..webconfig import WebConfig
    from .app import SidecarApp

__all__ = ["SidecarServer"]


class SidecarServer(WebServer):
    """Runs a :class:`SidecarApp` under uvicorn on an already bound socket.

    See :class:`modelmon.web.WebServer` (``run``, ``start``, ``shutdown``,
    ``stop``, ``address``, ``url``).

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

    app: SidecarApp

    def __init__(self, app: SidecarApp, host: str = "0.0.0.0", port: int = 10380, *,
                 web_config: WebConfig | None = None, shutdown_delay: float = 0.0,
                 graceful_timeout: float = 30.0) -> None:
        super().__init__(app, host, port, web_config=web_config, shutdown_delay=shutdown_delay,
                         graceful_timeout=graceful_timeout, thread_name="modelmon-sidecar")
