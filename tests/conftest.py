"""Shared fixtures: real binaries are found here, and missing ones fail under CI."""

from __future__ import annotations

import os
import shutil
import socket

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
