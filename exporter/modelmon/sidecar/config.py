"""Settings of ``modelmon sidecar``: a YAML file, flags and ``MODELMON_*`` variables.

Each setting is taken from the first of: its flag, its environment variable, the
config file, the default. An unusable setting raises :class:`ConfigError` whose
message names where it came from (file and key, flag or variable) and what was
expected, so the sidecar stops before it starts serving.

The file::

    listen: 0.0.0.0:10380
    models:
      - name: loan            # optional; must match the baseline's model
        version: "3"          # optional; must match the baseline's model_version
        baseline: loan.yaml   # relative to this file
    limits:
      max_body_bytes: 8MiB
      max_events_per_request: 10000
    shutdown_delay: 5s
    web_config_file: web.yml
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..baseline import Baseline, BaselineError
from ..drift.config import format_duration, parse_duration, parse_listen

__all__ = [
    "DEFAULT_PORT",
    "ConfigError",
    "Limits",
    "ModelEntry",
    "SidecarConfig",
    "parse_size",
    "resolve",
]

DEFAULT_PORT = 10380
MiB = 1 << 20

# setting -> (flag, environment variable, file key path, default)
_SETTINGS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "listen": ("--listen", "MODELMON_LISTEN", ("listen",), f"0.0.0.0:{DEFAULT_PORT}"),
    "max_body_bytes": ("--max-body-bytes", "MODELMON_MAX_BODY_BYTES",
                       ("limits", "max_body_bytes"), "8MiB"),
    "max_events_per_request": ("--max-events-per-request", "MODELMON_MAX_EVENTS_PER_REQUEST",
                               ("limits", "max_events_per_request"), "10000"),
    "shutdown_delay": ("--shutdown-delay", "MODELMON_SHUTDOWN_DELAY", ("shutdown_delay",), "5s"),
    "web_config_file": ("--web.config.file", "MODELMON_WEB_CONFIG_FILE", ("web_config_file",),
                        None),
}
_TOP_KEYS = {"listen", "models", "limits", "shutdown_delay", "web_config_file"}
_LIMIT_KEYS = {"max_body_bytes", "max_events_per_request"}
_MODEL_KEYS = {"name", "version", "baseline"}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names its source and the expectation."""


@dataclass(frozen=True)
class ModelEntry:
    """One monitored model: the URL name, and its loaded baseline."""

    name: str
    baseline: Baseline
    path: str


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * MiB
    max_events_per_request: int = 10_000


@dataclass(frozen=True)
class SidecarConfig:
    models: tuple[ModelEntry, ...]
    limits: Limits
    host: str
    port: int
    shutdown_delay: float
    web_config_file: str | None


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
_SCALE = {None: 1, "b": 1, "kb": 1000, "kib": 1 << 10, "mb": 1000**2, "mib": MiB,
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


def _load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): expected a YAML file in "
                          "UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {sorted(_TOP_KEYS)}, "
                          f"got {type(doc).__name__}")
    unknown = sorted(str(k) for k in doc if k not in _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; expected some of {sorted(_TOP_KEYS)}")
    limits = doc.get("limits")
    if limits is not None:
        if not isinstance(limits, dict):
            raise ConfigError(f"{path}: key 'limits': expected a mapping with keys "
                              f"{sorted(_LIMIT_KEYS)}, got {type(limits).__name__}")
        unknown = sorted(str(k) for k in limits if k not in _LIMIT_KEYS)
        if unknown:
            raise ConfigError(f"{path}: key 'limits': unknown key(s) {unknown}; expected some of "
                              f"{sorted(_LIMIT_KEYS)}")
    return doc


def _lookup(doc: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, Mapping) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _pick(name: str, args: argparse.Namespace, env: Mapping[str, str],
          doc: Mapping[str, Any], path: str | None) -> tuple[Any, str]:
    """(value, where) of one setting: flag, variable, file key, default."""
    flag, var, keys, default = _SETTINGS[name]
    v = getattr(args, name, None)
    if v is not None:
        return v, flag
    if env.get(var, "").strip():
        return env[var].strip(), var
    fv = _lookup(doc, keys)
    if fv is not None:
        return fv, f"{path}: key '{'.'.join(keys)}'"
    return default, f"{flag} (default)"


def _load_baseline(path: str, where: str) -> Baseline:
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read baseline {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: baseline {path!r} is not UTF-8 text (byte {exc.start}): "
                          "expected a baseline YAML file") from None


def _models_from_file(doc: Mapping[str, Any], path: str) -> list[ModelEntry]:
    raw = doc.get("models")
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: key 'models': expected a non-empty list of "
                          f"{{name, version, baseline}}, got {raw!r}"[:300])
    base_dir = Path(path).resolve().parent
    out = []
    for i, item in enumerate(raw):
        key = f"models[{i}]"
        if isinstance(item, str):
            item = {"baseline": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: key '{key}': expected a mapping with keys "
                              f"{sorted(_MODEL_KEYS)}, got {type(item).__name__}")
        unknown = sorted(str(k) for k in item if k not in _MODEL_KEYS)
        if unknown:
            raise ConfigError(f"{path}: key '{key}': unknown key(s) {unknown}; expected some of "
                              f"{sorted(_MODEL_KEYS)}")
        bpath = item.get("baseline")
        if not isinstance(bpath, str) or not bpath.strip():
            raise ConfigError(f"{path}: key '{key}.baseline': expected the path of a baseline "
                              f"YAML file, got {bpath!r}")
        full = str(base_dir / bpath) if not os.path.isabs(bpath) else bpath
        b = _load_baseline(full, f"{path}: key '{key}.baseline'")
        name = item.get("name")
        if name is not None and str(name) != b.model:
            raise ConfigError(f"{path}: key '{key}.name': {name!r} does not match the model "
                              f"{b.model!r} of baseline {bpath}")
        version = item.get("version")
        if version is not None and str(version) != b.model_version:
            raise ConfigError(f"{path}: key '{key}.version': {str(version)!r} does not match the "
                              f"model_version {b.model_version!r} of baseline {bpath}")
        for j, prev in enumerate(out):
            if prev.name == b.model:
                raise ConfigError(f"{path}: key '{key}.baseline': model {b.model!r} is already "
                                  f"given by models[{j}] ({prev.path}); a sidecar serves one "
                                  "version per model")
        out.append(ModelEntry(b.model, b, full))
    return out


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> SidecarConfig:
    """The sidecar's settings from flags, environment and config file.

    Raises
    ------
    ConfigError
        With a message naming the source (file and key, flag or variable) and
        what was expected.
    """
    env = os.environ if environ is None else environ
    path = getattr(args, "config", None) or env.get("MODELMON_CONFIG", "").strip() or None
    doc = _load_file(path) if path else {}

    models: list[ModelEntry]
    flag_baselines: Sequence[str] | None = getattr(args, "baseline", None)
    if flag_baselines:
        models = [ModelEntry((b := _load_baseline(p, f"--baseline {p}")).model, b, p)
                  for p in flag_baselines]
    elif env.get("MODELMON_BASELINE", "").strip():
        paths = [p.strip() for p in env["MODELMON_BASELINE"].split(",") if p.strip()]
        models = [ModelEntry((b := _load_baseline(p, f"MODELMON_BASELINE {p}")).model, b, p)
                  for p in paths]
    else:
        models = _models_from_file(doc, path) if path else []
    if not models:
        if path:
            raise ConfigError(f"{path}: key 'models': missing; expected a list of "
                              "{name, version, baseline} (or give --baseline FILE / "
                              "MODELMON_BASELINE)")
        raise ConfigError("no model to monitor: give --baseline FILE (or MODELMON_BASELINE), or "
                          "--config FILE (or MODELMON_CONFIG) with a 'models:' list")
    seen: dict[str, str] = {}
    for m in models:
        if m.name in seen:
            raise ConfigError(f"model {m.name!r} is given twice ({seen[m.name]} and {m.path}); "
                              "a sidecar serves one version per model")
        seen[m.name] = m.path

    text, src = _pick("listen", args, env, doc, path)
    try:
        if isinstance(text, bool):
            raise ValueError(f"invalid listen address {text!r}: expected host:port, :port or "
                             f"port (e.g. 0.0.0.0:{DEFAULT_PORT})")
        host, port = parse_listen(str(text), default_port=DEFAULT_PORT)
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None

    value, src = _pick("max_body_bytes", args, env, doc, path)
    try:
        max_body = parse_size(value)
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None

    value, src = _pick("max_events_per_request", args, env, doc, path)
    try:
        if isinstance(value, bool):
            raise ValueError
        max_events = int(str(value).strip())
        if max_events <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{src}: expected a whole number > 0, got {value!r}") from None

    value, src = _pick("shutdown_delay", args, env, doc, path)
    if isinstance(value, bool):
        raise ConfigError(f"{src}: expected a duration such as 5s or 0, got {value!r}")
    text = str(value).strip()
    # Zero in any spelling of the duration syntax (0, 0s, 0ms, 0.0, 0m) means "stop at once".
    if re.fullmatch(r"(0+(\.0*)?(ms|s|m|h|d|w)?)+", text):
        delay = 0.0
    else:
        try:
            delay = parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"{src}: {exc}") from None

    web, src = _pick("web_config_file", args, env, doc, path)
    if web is not None:
        web = str(web)
        if path and src.startswith(path) and not os.path.isabs(web):
            web = str(Path(path).resolve().parent / web)
        if not os.path.isfile(web):
            raise ConfigError(f"{src}: expected the path of a web config file, got {web!r} "
                              "(not found)")
    return SidecarConfig(models=tuple(models),
                         limits=Limits(max_body_bytes=max_body, max_events_per_request=max_events),
                         host=host, port=port, shutdown_delay=delay, web_config_file=web)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``modelmon sidecar`` flags to ``parser``."""
    parser.description = (
        "HTTP sidecar: models POST prediction events (JSON or NDJSON) to "
        "/v1/models/{model}/events and Prometheus scrapes /metrics.")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="YAML config with models:, limits:, listen: (env MODELMON_CONFIG)")
    parser.add_argument("--baseline", action="append", metavar="FILE", default=None,
                        help="baseline of one model; repeat for several (env MODELMON_BASELINE, "
                             "comma-separated). Overrides the config file's models:")
    for name in ("listen", "max_body_bytes", "max_events_per_request", "shutdown_delay",
                 "web_config_file"):
        flag, var, keys, default = _SETTINGS[name]
        helps = {
            "listen": "address to serve on",
            "max_body_bytes": "largest request body, e.g. 8MiB (413 above it)",
            "max_events_per_request": "most events in one request (413 above it)",
            "shutdown_delay": ("after SIGTERM, keep serving (not ready) this long so a last "
                               "scrape sees every count; 0 to stop at once"),
            "web_config_file": "TLS and basic auth, exporter-toolkit format (docs/security.md)",
        }
        d = f"default {default}; " if default else ""
        parser.add_argument(flag, dest=name, metavar="VALUE", default=None,
                            help=f"{helps[name]} ({d}env {var}; file key {'.'.join(keys)})")


def describe(cfg: SidecarConfig) -> str:
    """One log line of the effective settings."""
    models = ",".join(f"{m.name}@{m.baseline.model_version}" for m in cfg.models)
    return (f"listen={cfg.host}:{cfg.port} models={models} max_body_bytes={cfg.limits.max_body_bytes}"
            f" max_events_per_request={cfg.limits.max_events_per_request} "
            f"shutdown_delay={format_duration(cfg.shutdown_delay) if cfg.shutdown_delay else '0s'}"
            f" tls_or_auth={'yes' if cfg.web_config_file else 'no'}")
