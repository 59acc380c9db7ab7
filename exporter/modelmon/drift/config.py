"""Old home of the duration and listen-address parsers: they live in :mod:`modelmon.settings`.

Kept so ``from modelmon.drift.config import parse_duration`` goes on working.
"""

from __future__ import annotations

from ..settings import format_duration, parse_duration, parse_listen

__all__ = ["parse_duration", "parse_listen", "format_duration"]
