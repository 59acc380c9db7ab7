"""Parsing of the drift exporter's settings: durations and listen addresses."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "parse_listen", "format_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``15s``, ``15m``, ``1h30m``, ``500ms`` or ``90``.

    A bare number is seconds. Units: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``
    (as in Prometheus), combined from the largest to the smallest.

    >>> [parse_duration(t) for t in ("15s", "15m", "1h", "500ms", "90", "1h30m", "2.5s")]
    [15.0, 900.0, 3600.0, 0.5, 90.0, 5400.0, 2.5]
    >>> parse_duration("15x")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration '15x': expected seconds (90) or a number with a unit ms, s, m, h, d, w (500ms, 15s, 15m, 1h30m)
    """
    s = str(text).strip()
    err = ValueError(f"invalid duration {text!r}: expected seconds (90) or a number with a unit "
                     "ms, s, m, h, d, w (500ms, 15s, 15m, 1h30m)")
    if not s:
        raise err
    if _NUMBER.fullmatch(s):
        value = float(s)
    else:
        pos = 0
        value = 0.0
        last_scale = math.inf
        for m in _PART.finditer(s):
            if m.start() != pos:
                raise err
            scale = _UNITS[m.group(2)]
            if scale >= last_scale:  # units must go from largest to smallest, once each
                raise err
            last_scale = scale
            value += float(m.group(1)) * scale
            pos = m.end()
        if pos != len(s) or pos == 0:
            raise err
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return value


def format_duration(seconds: float) -> str:
    """A short human form of a duration, for logs.

    >>> [format_duration(s) for s in (900, 15, 0.5, 5400, 7200)]
    ['15m', '15s', '500ms', '90m', '2h']
    """
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def parse_listen(text: str, default_port: int = 10381) -> tuple[str, int]:
    """``(host, port)`` of a listen address: ``0.0.0.0:10381``, ``:10381``, ``[::]:10381``, ``10381``.

    >>> [parse_listen(t) for t in ("0.0.0.0:10381", ":9000", "[::1]:80", "127.0.0.1", "8080")]
    [('0.0.0.0', 10381), ('0.0.0.0', 9000), ('::1', 80), ('127.0.0.1', 10381), ('0.0.0.0', 8080)]
    """
    s = str(text).strip()
    err = ValueError(f"invalid listen address {text!r}: expected host:port, :port or port "
                     f"(e.g. 0.0.0.0:{default_port})")
    if not s:
        raise err
    if s.isdigit():
        host, port_s = "0.0.0.0", s
    elif s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise err
        host = s[1:end]
        rest = s[end + 1:]
        if rest and not rest.startswith(":"):
            raise err
        port_s = rest[1:] if rest else str(default_port)
    elif s.count(":") == 1:
        host, port_s = s.split(":")
        host = host or "0.0.0.0"
    elif ":" in s:
        raise err  # a bare IPv6 address needs brackets
    else:
        host, port_s = s, str(default_port)
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise err
    return host, int(port_s)
