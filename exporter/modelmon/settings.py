"""One settings layer for every long-running command: flags, ``MODELMON_*`` variables, a YAML file.

Each command (``modelmon sidecar``, ``modelmon drift``) declares its settings
in one table of :class:`Setting` rows: the flag (old spellings follow it as
aliases), the environment variable (likewise), the key in the command's YAML
file and the default. One resolver, :class:`Settings`, reads them all the same
way:

**flag > ``MODELMON_*`` variable > YAML file (``--config.file``) > default.**

A variable set to blanks counts as unset. Every value keeps its
:class:`Source`, so an unusable one raises :class:`SettingsError` naming where
it came from: the flag as it was typed (``--listen`` or
``--web.listen-address``), the variable (``MODELMON_LISTEN``), or the file and
the key (``--config: /etc/modelmon/sidecar.yaml: key 'limits.max_body_bytes'``;
the flag or variable that named the file comes first), and what was expected.

The file's schema is a tree of :class:`msgspec.Struct` classes with
``forbid_unknown_fields=True``; :func:`convert` turns msgspec's errors (paths
such as ``$.models[0].weight``) into the file's key path
(``key 'models[0].weight': unknown key (expected one of ...)``).

Durations (:func:`parse_duration`) are seconds (``90``) or numbers with units
``ms, s, m, h, d, w`` from the largest to the smallest (``1h30m``). **Zero**, in
any spelling (``0``, ``0s``, ``0ms``, ``0.0``, ``0m``), is accepted only by a
setting whose documentation says what zero does (the sidecar's
``shutdown_delay``, the drift exporter's ``evaluation_delay`` and
``baseline_refresh``); every other duration must be greater than zero.

Nothing of modelmon is imported here (docs/architecture.md): the commands load
baselines and web config files themselves.

Examples
--------
>>> import argparse
>>> table = (Setting("window", ("--window",), ("MODELMON_WINDOW",), ("window",), "15m",
...                  "window length"),)
>>> p = argparse.ArgumentParser()
>>> add_arguments(p, table)
>>> s = Settings(table, p.parse_args([]), {"MODELMON_WINDOW": "1h"})
>>> s.duration("window"), str(s.value("window").source)
(3600.0, 'MODELMON_WINDOW')
>>> Settings(table, p.parse_args(["--window", "2h"]), {"MODELMON_WINDOW": "1h"}).duration("window")
7200.0
>>> Settings(table, p.parse_args(["--window", "soon"]), {}).duration("window")
Traceback (most recent call last):
...
modelmon.settings.SettingsError: --window: invalid duration 'soon': expected seconds (90) or a number with a unit ms, s, m, h, d, w (500ms, 15s, 15m, 1h30m)
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import yaml

__all__ = [
    "ConfigFile",
    "config_file_setting",
    "config_path",
    "load_yaml",
    "Setting",
    "Settings",
    "SettingsError",
    "Source",
    "Value",
    "add_arguments",
    "convert",
    "format_duration",
    "parse_bool",
    "parse_duration",
    "parse_listen",
    "parse_size",
    "read_config",
    "web_settings",
]

S = TypeVar("S", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names its source and what was expected."""


# --------------------------------------------------------------------------- values

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, allow_zero: bool = False) -> float:
    """Seconds in a duration such as ``15s``, ``15m``, ``1h30m``, ``500ms`` or ``90``.

    A bare number is seconds. Units: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``
    (as in Prometheus), combined from the largest to the smallest, once each.

    Parameters
    ----------
    text : str
        The duration.
    allow_zero : bool
        Whether zero (in any spelling: ``0``, ``0s``, ``0ms``, ``0.0``, ``0m``)
        is a valid value; otherwise a duration must be greater than zero.

    Returns
    -------
    float
        Seconds.

    Raises
    ------
    ValueError
        With a message that starts ``invalid duration``.

    Examples
    --------
    >>> [parse_duration(t) for t in ("15s", "15m", "1h", "500ms", "90", "1h30m", "2.5s")]
    [15.0, 900.0, 3600.0, 0.5, 90.0, 5400.0, 2.5]
    >>> [parse_duration(t, allow_zero=True) for t in ("0", "0s", "0ms", "0.0", "0m")]
    [0.0, 0.0, 0.0, 0.0, 0.0]
    >>> parse_duration("0s")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration '0s': must be greater than zero
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
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return value


def format_duration(seconds: float) -> str:
    """A short human form of a duration, for logs.

    >>> [format_duration(s) for s in (900, 15, 0.5, 5400, 7200, 0)]
    ['15m', '15s', '500ms', '90m', '2h', '0s']
    """
    if seconds == 0:
        return "0s"
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


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
_SCALE = {None: 1, "b": 1, "kb": 1000, "kib": 1 << 10, "mb": 1000**2, "mib": 1 << 20,
          "gb": 1000**3, "gib": 1 << 30}


def parse_size(text: object) -> int:
    """Bytes in a size such as ``8MiB``, ``512KiB``, ``1MB`` or ``1048576``.

    >>> [parse_size(t) for t in ("8MiB", "512KiB", "1MB", 1048576, "100b")]
    [8388608, 524288, 1000000, 1048576, 100]
    >>> parse_size("eight")
    Traceback (most recent call last):
    ...
    ValueError: expected a size in bytes such as 8MiB, 512KiB or 1048576, got 'eight'
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a size in bytes such as 8MiB, 512KiB or 1048576, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.fullmatch(str(text).strip())
        if not m:
            raise ValueError(
                f"expected a size in bytes such as 8MiB, 512KiB or 1048576, got {text!r}")
        value = int(float(m.group(1)) * _SCALE[(m.group(2) or "").lower() or None])
    if value <= 0:
        raise ValueError(f"expected a size greater than zero, got {text!r}")
    return value


def parse_bool(value: object) -> bool:
    """``true``/``false`` (also ``1/0``, ``yes/no``, ``on/off`` and YAML booleans).

    >>> [parse_bool(v) for v in ("true", "0", True, " Yes ")]
    [True, False, True, True]
    """
    if isinstance(value, bool):
        return value
    t = str(value).strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    """One row of a command's settings table.

    Attributes
    ----------
    name : str
        The ``argparse`` destination and the name the command reads it by.
    flags : tuple of str
        The flag, then its old spellings (aliases, still accepted).
    env : tuple of str
        The ``MODELMON_*`` variable, then its old names (aliases; the first set wins).
    key : tuple of str or None
        The key path in the command's YAML file; None when the file has no such key.
    default : str or None
        The default, as it would be typed; None when the setting is optional.
    help : str
        What it does (``--help``; ``%`` written ``%%``).
    metavar : str
        The flag's value in ``--help``.
    multiple : bool
        Repeatable flag; the variable holds several values split at ``separator``;
        the file holds a YAML list.
    separator : str
        See ``multiple``.
    switch : bool
        A flag without a value (true when given); the variable and the file
        take ``true``/``false``.
    path : bool
        A file path: relative to the config file's directory when it comes from the file.
    group : str or None
        Title of the ``--help`` group the flag is listed in.
    """

    name: str
    flags: tuple[str, ...]
    env: tuple[str, ...]
    key: tuple[str, ...] | None
    default: str | None
    help: str
    metavar: str = "VALUE"
    multiple: bool = False
    separator: str = ","
    switch: bool = False
    path: bool = False
    group: str | None = None

    @property
    def flag(self) -> str:
        """The flag's current spelling."""
        return self.flags[0]

    @property
    def var(self) -> str:
        """The variable's current name."""
        return self.env[0]

    @property
    def file_key(self) -> str | None:
        """The dotted file key, e.g. ``limits.max_body_bytes``."""
        return ".".join(self.key) if self.key else None


def web_settings(default_port: int) -> tuple[Setting, ...]:
    """The ``--web.*`` settings every HTTP server of modelmon shares.

    ``--listen`` and ``MODELMON_LISTEN`` stay as aliases of
    ``--web.listen-address`` and ``MODELMON_WEB_LISTEN_ADDRESS``.

    >>> [s.flags for s in web_settings(10380)]
    [('--web.listen-address', '--listen'), ('--web.config.file',)]
    """
    return (
        Setting("listen", ("--web.listen-address", "--listen"),
                ("MODELMON_WEB_LISTEN_ADDRESS", "MODELMON_LISTEN"), ("listen",),
                f"0.0.0.0:{default_port}", "address to serve on (host:port, :port or port)",
                metavar="HOST:PORT"),
        Setting("web_config_file", ("--web.config.file",), ("MODELMON_WEB_CONFIG_FILE",),
                ("web_config_file",), None,
                "TLS and basic auth, Prometheus exporter-toolkit format; /-/healthy and "
                "/-/ready stay open (docs/security.md)", metavar="FILE", path=True),
    )


def config_file_setting(env: tuple[str, ...], help: str, name: str = "config_file") -> Setting:
    """The ``--config.file`` setting (alias ``--config``) naming the command's YAML file."""
    return Setting(name, ("--config.file", "--config"), env, None, None, help,
                   metavar="FILE", path=True)


# --------------------------------------------------------------------------- flags

_SPELLING = "_modelmon_flag_spelling"


def _record(namespace: argparse.Namespace, dest: str, option: str | None) -> None:
    spelled: dict[str, str] = vars(namespace).setdefault(_SPELLING, {})
    if option:
        spelled[dest] = option


class _Store(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        _record(namespace, self.dest, option_string)


class _Append(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(values)
        setattr(namespace, self.dest, items)
        _record(namespace, self.dest, option_string)


class _Switch(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("metavar", None)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)
        _record(namespace, self.dest, option_string)


def _help(s: Setting) -> str:
    parts = []
    if s.default is not None:
        parts.append(f"default {s.default}")
    parts.append(f"env {s.var}" + (f" (old name {', '.join(s.env[1:])})" if s.env[1:] else ""))
    if s.file_key:
        parts.append(f"file key {s.file_key}")
    if len(s.flags) > 1:
        parts.append("old spelling " + ", ".join(s.flags[1:]))
    return f"{s.help} ({'; '.join(parts)})"


def add_arguments(parser: argparse.ArgumentParser, table: Iterable[Setting]) -> None:
    """Add one flag (with its aliases) per setting of ``table`` to ``parser``.

    Every flag defaults to None (not given), so the resolver can tell a flag
    from the variables, the file and the default; the spelling used is
    remembered for the error messages.
    """
    groups: dict[str, Any] = {}
    for s in table:
        target: Any = parser
        if s.group is not None:
            if s.group not in groups:
                groups[s.group] = parser.add_argument_group(s.group)
            target = groups[s.group]
        action = _Switch if s.switch else _Append if s.multiple else _Store
        kwargs: dict[str, Any] = {"dest": s.name, "default": None, "action": action,
                                  "help": _help(s)}
        if not s.switch:
            kwargs["metavar"] = s.metavar
        target.add_argument(*s.flags, **kwargs)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """Where a value came from; ``str()`` is the prefix of its error messages.

    >>> str(Source("file", "limits.max_body_bytes", file="c.yaml", via="--config"))
    "--config: c.yaml: key 'limits.max_body_bytes'"
    >>> str(Source("flag", "--listen")), str(Source("default", "--window"))
    ('--listen', '--window (default)')
    """

    kind: Literal["flag", "env", "file", "default"]
    name: str
    file: str | None = None
    via: str | None = None

    def __str__(self) -> str:
        if self.kind == "file":
            head = f"{self.via}: {self.file}" if self.via else str(self.file)
            return f"{head}: key '{self.name}'"
        if self.kind == "default":
            return f"{self.name} (default)"
        return self.name


@dataclass(frozen=True)
class Value:
    """A raw value (str, list of str, bool or what YAML gave) and its source."""

    raw: Any
    source: Source

    def error(self, message: str) -> SettingsError:
        """A :class:`SettingsError` ``"<source>: <message>"``."""
        return SettingsError(f"{self.source}: {message}")


# --------------------------------------------------------------------------- the file


def _type_at(info: Any, at: str) -> Any:
    """msgspec type info of the node at a msgspec path such as ``.limits`` or ``.models[0]``."""
    for token in re.findall(r"\.([^.\[]+)|\[[^\]]*\]", at):
        while isinstance(info, msgspec.inspect.UnionType):
            info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)),
                        info.types[0])
        if token:  # a field name
            if not isinstance(info, msgspec.inspect.StructType):
                return None
            info = next((f.type for f in info.fields if f.encode_name == token), None)
        else:  # an index
            info = getattr(info, "item_type", getattr(info, "value_type", None))
        if info is None:
            return None
    while isinstance(info, msgspec.inspect.UnionType):
        info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)),
                    info.types[0])
    return info


def _keys(info: Any) -> str:
    if isinstance(info, msgspec.inspect.StructType):
        return ", ".join(f.encode_name for f in info.fields)
    return ""


_MSGSPEC_ERROR = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.S)
_KINDS = {"object": "a mapping", "array": "a list", "str": "a string", "int": "a whole number",
          "float": "a number", "bool": "true or false", "null": "nothing"}
_PY_KINDS = {"object": "mapping", "array": "list"}


def convert(doc: Any, schema: type[S], where: str, prefix: str = "") -> S:
    """``doc`` (parsed YAML) as ``schema``; :class:`SettingsError` naming ``where`` and the key path.

    Parameters
    ----------
    doc : Any
        What ``yaml.safe_load`` returned (or a part of it).
    schema : type
        A :class:`msgspec.Struct` with ``forbid_unknown_fields=True``.
    where : str
        The file, e.g. ``--config: /etc/modelmon/sidecar.yaml``.
    prefix : str
        The key path of ``doc`` in the file, when it is a part of it (``models[0]``).

    Examples
    --------
    >>> Limits = msgspec.defstruct("Limits", [("max_body_bytes", Any, None)],
    ...                            forbid_unknown_fields=True)
    >>> File = msgspec.defstruct("File", [("listen", Any, None), ("limits", Limits | None, None)],
    ...                          forbid_unknown_fields=True)
    >>> convert({"limits": {"max_body": 1}}, File, "c.yaml")
    Traceback (most recent call last):
    ...
    modelmon.settings.SettingsError: c.yaml: key 'limits.max_body': unknown key (expected one of max_body_bytes)
    >>> convert({"limits": 5}, File, "c.yaml")
    Traceback (most recent call last):
    ...
    modelmon.settings.SettingsError: c.yaml: key 'limits': expected a mapping with keys max_body_bytes, got int
    """
    try:
        return msgspec.convert(doc, schema)
    except msgspec.ValidationError as exc:
        m = _MSGSPEC_ERROR.match(str(exc))
        assert m is not None
        msg, at = m.group("msg"), m.group("at") or ""
        info = _type_at(msgspec.inspect.type_info(schema), at)
        path = (prefix + at) if prefix else at.lstrip(".")
        head = f"{where}: key '{path}'" if path else where
        unknown = re.fullmatch(r"Object contains unknown field `(.*)`", msg)
        missing = re.fullmatch(r"Object missing required field `(.*)`", msg)
        wrong = re.fullmatch(r"Expected `(.*?)`, got `(.*)`", msg)
        if unknown:
            key = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
            text = f"{where}: key '{key}': unknown key (expected one of {_keys(info)})"
        elif missing:
            key = f"{path}.{missing.group(1)}" if path else missing.group(1)
            text = f"{where}: key '{key}': missing"
        elif wrong:
            want = wrong.group(1).split(" | ")[0]
            got = _PY_KINDS.get(wrong.group(2), wrong.group(2))
            if isinstance(info, msgspec.inspect.StructType):
                text = f"{head}: expected a mapping with keys {_keys(info)}, got {got}"
            else:
                text = f"{head}: expected {_KINDS.get(want, want)}, got {got}"
        else:
            text = f"{head}: {msg[:1].lower()}{msg[1:]}"
        raise SettingsError(text) from None


@dataclass(frozen=True)
class ConfigFile:
    """A command's YAML file, read and checked against its schema.

    Attributes
    ----------
    path : str
        As given.
    via : str
        The flag or variable that named it (the head of its error messages).
    doc : msgspec.Struct
        The file's contents; every field None that the file does not set.
    """

    path: str
    via: str
    doc: msgspec.Struct

    @property
    def where(self) -> str:
        """``"<flag or variable>: <path>"``, the head of this file's error messages."""
        return f"{self.via}: {self.path}" if self.via else self.path

    @property
    def directory(self) -> Path:
        """The file's directory, which relative paths in it are relative to."""
        return Path(self.path).resolve().parent

    def lookup(self, key: Sequence[str]) -> Any:
        """The value at ``key`` (None when the file does not set it)."""
        cur: Any = self.doc
        for k in key:
            if cur is None:
                return None
            cur = cur.get(k) if isinstance(cur, Mapping) else getattr(cur, k, None)
        return cur

    def error(self, key: str, message: str) -> SettingsError:
        """A :class:`SettingsError` naming this file and ``key``."""
        return SettingsError(f"{self.where}: key '{key}': {message}")


def load_yaml(path: str, where: str) -> Any:
    """The parsed YAML of ``path``; :class:`SettingsError` ``"<where>: <path>: ..."`` if unusable."""
    head = f"{where}: {path}" if where else path
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise SettingsError(f"{head}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{head}: not UTF-8 text (byte {exc.start}): expected a YAML file "
                            "in UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise SettingsError(f"{head}: not valid YAML{at}: {problem}") from None


def read_config(path: str, via: str, schema: type[S]) -> ConfigFile:
    """Read ``path`` (named by the flag or variable ``via``) as ``schema``.

    An empty file sets nothing. Any problem raises :class:`SettingsError`
    naming ``via``, the file and the key.
    """
    doc = load_yaml(path, via)
    if doc is None:
        doc = {}
    return ConfigFile(path, via, convert(doc, schema, f"{via}: {path}" if via else path))


# --------------------------------------------------------------------------- the resolver


class Settings:
    """The values of one command's settings table: flag > variable > file > default.

    Parameters
    ----------
    table : iterable of Setting
        The command's table.
    args : argparse.Namespace
        The parsed flags (flags not given are None).
    environ : mapping
        The environment (``os.environ`` when None).
    file : ConfigFile or None
        The command's YAML file, if any.
    defaults : mapping, optional
        Defaults that replace the table's (e.g. those of the drift exporter's query mode).
    """

    def __init__(self, table: Iterable[Setting], args: argparse.Namespace,
                 environ: Mapping[str, str] | None = None, file: ConfigFile | None = None,
                 defaults: Mapping[str, str] | None = None) -> None:
        self.table = {s.name: s for s in table}
        self.args = args
        self.env = os.environ if environ is None else environ
        self.file = file
        self.defaults = dict(defaults or {})

    # -- raw values

    def _flag_value(self, s: Setting) -> Value | None:
        v = getattr(self.args, s.name, None)
        if v is None or (s.multiple and not v):
            return None
        spelled = vars(self.args).get(_SPELLING, {}).get(s.name, s.flag)
        if s.multiple:
            v = [p.strip() for item in v for p in str(item).split(s.separator) if p.strip()]
        return Value(v, Source("flag", spelled))

    def _env_value(self, s: Setting) -> Value | None:
        for var in s.env:
            text = self.env.get(var, "")
            if text.strip():
                v: Any = text.strip()
                if s.multiple:
                    v = [p.strip() for p in text.split(s.separator) if p.strip()]
                return Value(v, Source("env", var))
        return None

    def _file_value(self, s: Setting) -> Value | None:
        if self.file is None or s.key is None:
            return None
        v = self.file.lookup(s.key)
        if v is None:
            return None
        src = Source("file", ".".join(s.key), file=self.file.path, via=self.file.via)
        if s.multiple:
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or any(isinstance(x, (dict, list)) or x is None
                                              for x in v):
                raise Value(v, src).error(f"expected a list of values, got {v!r}"[:300])
            v = [str(x).strip() for x in v]
        return Value(v, src)

    def given(self, name: str) -> Value | None:
        """The value of ``name`` from its flag, variable or the file; None if none sets it."""
        s = self.table[name]
        return self._flag_value(s) or self._env_value(s) or self._file_value(s)

    def value(self, name: str) -> Value:
        """The value of ``name``: flag, variable, file, default (``raw`` None if none)."""
        got = self.given(name)
        if got is not None:
            return got
        s = self.table[name]
        return Value(self.defaults.get(name, s.default), Source("default", s.flag))

    # -- typed values

    def text(self, name: str) -> tuple[str | None, Source]:
        """A string setting (None when unset and without default)."""
        v = self.value(name)
        if v.raw is None:
            return None, v.source
        if isinstance(v.raw, (bool, list, dict)):
            raise v.error(f"expected a string, got {v.raw!r}"[:300])
        return str(v.raw).strip(), v.source

    def items(self, name: str) -> tuple[list[str], Source]:
        """A repeatable setting's values (empty when unset)."""
        v = self.value(name)
        return (list(v.raw) if v.raw else []), v.source

    def path(self, name: str) -> tuple[str | None, Source]:
        """A file path; relative to the config file's directory when it comes from the file."""
        text, src = self.text(name)
        return (self._relative(text, src) if text is not None else None), src

    def paths(self, name: str) -> tuple[list[str], Source]:
        """A repeatable file path setting (see :meth:`path`)."""
        items, src = self.items(name)
        return [self._relative(p, src) for p in items], src

    def _relative(self, path: str, src: Source) -> str:
        if src.kind == "file" and self.file is not None and not os.path.isabs(path):
            return str(self.file.directory / path)
        return path

    def duration(self, name: str, allow_zero: bool = False) -> float:
        """Seconds of a duration setting (zero only with ``allow_zero``)."""
        v = self.value(name)
        if isinstance(v.raw, bool) or not isinstance(v.raw, (str, int, float)):
            raise v.error(f"expected a duration such as 15s, 1h or 90, got {v.raw!r}")
        try:
            return parse_duration(str(v.raw), allow_zero=allow_zero)
        except ValueError as exc:
            raise v.error(str(exc)) from None

    def whole(self, name: str, minimum: int) -> int:
        """A whole number ``>= minimum``."""
        v = self.value(name)
        try:
            if isinstance(v.raw, bool) or isinstance(v.raw, float):
                raise ValueError
            n = int(str(v.raw).strip())
            if n < minimum:
                raise ValueError
        except ValueError:
            raise v.error(f"expected a whole number >= {minimum}, got {v.raw!r}") from None
        return n

    def size(self, name: str) -> int:
        """Bytes of a size setting (``8MiB``)."""
        v = self.value(name)
        try:
            return parse_size(v.raw)
        except ValueError as exc:
            raise v.error(str(exc)) from None

    def boolean(self, name: str) -> bool:
        """A switch: true or false (false when unset)."""
        v = self.value(name)
        if v.raw is None:
            return False
        try:
            return parse_bool(v.raw)
        except ValueError as exc:
            raise v.error(str(exc)) from None

    def listen(self, name: str = "listen", default_port: int = 10381) -> tuple[str, int]:
        """``(host, port)`` of a listen address setting."""
        v = self.value(name)
        try:
            if isinstance(v.raw, bool) or v.raw is None:
                raise ValueError(f"invalid listen address {v.raw!r}: expected host:port, :port "
                                 f"or port (e.g. 0.0.0.0:{default_port})")
            return parse_listen(str(v.raw), default_port=default_port)
        except ValueError as exc:
            raise v.error(str(exc)) from None

    def web_config_file(self, name: str = "web_config_file") -> tuple[str | None, Source]:
        """The path of the web config file (checked to exist), or None."""
        path, src = self.path(name)
        if path is not None and not os.path.isfile(path):
            raise SettingsError(f"{src}: expected the path of a web config file, got {path!r} "
                                "(not found)")
        return path, src


def config_path(table: Iterable[Setting], args: argparse.Namespace,
                environ: Mapping[str, str] | None = None,
                name: str = "config_file") -> tuple[str | None, str]:
    """``(path, where)`` of the config file named by flag or variable (path None if neither)."""
    s = Settings(table, args, environ)
    v = s.given(name)
    if v is None:
        return None, s.table[name].flag
    return str(v.raw).strip(), str(v.source)
