"""The echo ceiling of ``bench/ingest.py``: HTTP + JSON in Python, nothing else.

A bare ASGI app served exactly as ``modelmon sidecar`` serves its app (see
``modelmon.sidecar.server.SidecarServer``): a listener bound by hand with
``TCP_NODELAY`` (accepted sockets inherit it; without it every reply waits 40 ms
for the client's delayed ACK) and ``uvicorn.Config(app, log_level="warning",
access_log=False, lifespan="on", server_header=False, proxy_headers=False)``,
so uvicorn picks the same loop (uvloop) and HTTP parser (httptools) for both.

Every POST reads the whole body, decodes it with msgspec, generic and untyped
(``{"events": [...]}`` for ``application/json``, one value per line for
``application/x-ndjson``), and answers ``{"accepted": n}`` encoded with msgspec:
the same server, the same HTTP, the same JSON library as the sidecar, without
validation and without counting. ``GET /-/ready`` answers ``ready`` and the
event loop's class (both run through uvicorn's ``Server.run``, which picks uvloop
when it is installed).

    python bench/echo_app.py --listen 127.0.0.1:18081
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Callable
from typing import Any

import msgspec
import uvicorn

from modelmon.sidecar.app import lifespan

__all__ = ["EchoApp", "serve"]

_decode = msgspec.json.decode
_decode_lines = msgspec.json.Decoder().decode_lines
_encode = msgspec.json.Encoder().encode


async def _reply(send: Callable[..., Any], status: int, ctype: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class EchoApp:
    """Read the body, decode it, answer ``{"accepted": n}``."""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":  # /-/ready and anything else: say which loop serves
            loop = type(asyncio.get_running_loop())
            await _reply(send, 200, b"text/plain; charset=utf-8",
                         f"ready (event loop {loop.__module__}.{loop.__qualname__})\n".encode())
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        ndjson = False
        for k, v in scope["headers"]:
            if k.lower() == b"content-type":
                ndjson = b"ndjson" in v
                break
        try:
            n = len(_decode_lines(body)) if ndjson else len(_decode(body)["events"])
        except (msgspec.DecodeError, KeyError, TypeError):
            await _reply(send, 400, b"application/json", b'{"error":"malformed_json"}\n')
            return
        await _reply(send, 200, b"application/json", _encode({"accepted": n}))


def serve(host: str, port: int) -> None:
    """Serve :class:`EchoApp` in the foreground until SIGINT/SIGTERM."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config(EchoApp(), log_level="warning", access_log=False, lifespan="on",
                            server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:18081", help="host:port (default %(default)s)")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    serve(host.strip("[]") or "127.0.0.1", int(port))


if __name__ == "__main__":
    main()
