"""The type check is part of the test suite (the README's one test command runs it):
mypy over the files ``[tool.mypy]`` in pyproject.toml lists, the strict modules and
``user_code.py`` (the public API as a user calls it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import require_module

REPO = Path(__file__).resolve().parents[2]


def test_mypy_passes_on_the_strict_modules_and_the_user_code() -> None:
    require_module("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
