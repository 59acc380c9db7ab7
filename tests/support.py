"""What every test module may need: real binaries and test packages, ports, processes, waiting.

Imported by the tests directly (``from tests.support import wait_until``); the
server classes and fixtures built on these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() == "true"

__all__ = ["IN_CI", "end_process", "free_port", "require_binary", "require_module",
           "wait_until"]


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


def require_module(name: str, package: str | None = None) -> Any:
    """An importable test dependency of the [test] extra; skips loudly outside CI (at
    module level too), fails under CI=true, where a missing install step is a bug."""
    try:
        return importlib.import_module(name)
    except ImportError:
        msg = (f"REQUIRED PACKAGE MISSING: {package or name!r} (module {name!r}); "
               "pip install -e '.[test]' installs it.")
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


def end_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T], what: str, timeout: float = 60.0,
               interval: float = 0.1, detail: Callable[[], str] | None = None) -> T:
    """Poll ``check()`` until it returns something true, and return that.

    On timeout, fail naming ``what`` (and ``detail()``, e.g. a server's log). The
    one way tests wait for a condition: never a fixed sleep where a condition
    or a sentinel can be waited on.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)
