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
    labels:                   # delayed ground truth joined by prediction id
      join_store: sqlite:/var/lib/modelmon/join.sqlite   # or memory, redis://host:6379/0
      ttl: 7d                 # how long a prediction waits for its label
      max_rows: 10000000      # SQLite/memory row cap (oldest evicted, counted)
      commit_interval: 1s     # SQLite: what a crash can lose at most

Per model, ``segments:`` (a list of ``{feature, values: [...]}`` for a
categorical feature or ``{feature, bins: [...]}`` for a numeric one) adds
segment labels to the labelled-prediction metrics.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..baseline import Baseline, BaselineError
from ..drift.config import format_duration, parse_duration, parse_listen
from ..monitor.outcomes import Segment

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
    "join_store": ("--join-store", "MODELMON_JOIN_STORE", ("labels", "join_store"),
                   "sqlite:modelmon-join.sqlite"),
    "join_ttl": ("--join-ttl", "MODELMON_JOIN_TTL", ("labels", "ttl"), "7d"),
    "join_max_rows": ("--join-max-rows", "MODELMON_JOIN_MAX_ROWS", ("labels", "max_rows"),
                      "10000000"),
    "join_commit_interval": ("--join-commit-interval", "MODELMON_JOIN_COMMIT_INTERVAL",
                             ("labels", "commit_interval"), "1s"),
}
_TOP_KEYS = {"listen", "models", "limits", "shutdown_delay", "web_config_file", "labels"}
_LIMIT_KEYS = {"max_body_bytes", "max_events_per_request"}
_LABEL_KEYS = {"join_store", "ttl", "max_rows", "commit_interval"}
_MODEL_KEYS = {"name", "version", "baseline", "segments"}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names its source and the expectation."""


@dataclass(frozen=True)
class ModelEntry:
    """One monitored model: the URL name, its loaded baseline, its label segments."""

    name: str
    baseline: Baseline
    path: str
    segments: tuple[Segment, ...] = ()


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
    #: ``open_join_store`` spec: ``{"type": "memory" | "sqlite" | "redis", ...}``.
    join_store: Mapping[str, Any] = field(default_factory=lambda: {"type": "memory"})


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
    labels = doc.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            raise ConfigError(f"{path}: key 'labels': expected a mapping with keys "
                              f"{sorted(_LABEL_KEYS)}, got {type(labels).__name__}")
        unknown = sorted(str(k) for k in labels if k not in _LABEL_KEYS)
        if unknown:
            raise ConfigError(f"{path}: key 'labels': unknown key(s) {unknown}; expected some of "
                              f"{sorted(_LABEL_KEYS)}")
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


def _whole(value: Any, src: str) -> int:
    """A whole number > 0 of a setting, or the ConfigError naming where it came from."""
    try:
        if isinstance(value, bool):
            raise ValueError
        n = int(str(value).strip())
        if n <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{src}: expected a whole number > 0, got {value!r}") from None
    return n


def _duration(value: Any, src: str) -> float:
    """A duration (seconds) of a setting, or the ConfigError naming where it came from."""
    try:
        if isinstance(value, bool):
            raise ValueError(f"expected a duration such as 1s or 7d, got {value!r}")
        return parse_duration(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None


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
        out.append(ModelEntry(b.model, b, full, _segments(item.get("segments"), b,
                                                          f"{path}: key '{key}.segments'")))
    return out


def _segments(raw: Any, b: Baseline, where: str) -> tuple[Segment, ...]:
    """The ``segments:`` list of one model entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of {{feature, values}} or "
                          f"{{feature, bins}}, got {type(raw).__name__}")
    out = []
    for j, item in enumerate(raw):
        at = f"{where}[{j}]"
        if not isinstance(item, dict) or set(item) - {"feature", "values", "bins"}:
            raise ConfigError(f"{at}: expected a mapping with the keys feature and values (a "
                              f"categorical feature) or bins (a numeric one), got {item!r}"[:300])
        feature = item.get("feature")
        if feature not in b.features:
            raise ConfigError(f"{at}.feature: {feature!r} is not a feature of the baseline of "
                              f"model {b.model!r}")
        numeric = feature in b.numeric_features
        if numeric and ("bins" not in item or "values" in item):
            raise ConfigError(f"{at}: {feature!r} is numeric: give bins (upper bounds), e.g. "
                              "bins: [30, 45, 60]")
        if not numeric and ("values" not in item or "bins" in item):
            raise ConfigError(f"{at}: {feature!r} is categorical: give values, e.g. "
                              "values: [eu, us]")
        try:
            if numeric:
                bins = item["bins"]
                if not isinstance(bins, list) or any(isinstance(x, bool) or not isinstance(
                        x, (int, float)) for x in bins):
                    raise ValueError("bins must be a list of numbers")
                out.append(Segment(feature, bins=tuple(float(x) for x in bins)))
            else:
                values = item["values"]
                if not isinstance(values, list):
                    raise ValueError("values must be a list")
                out.append(Segment(feature, values=tuple(str(v) for v in values)))
        except ValueError as exc:
            raise ConfigError(f"{at}: {exc}") from None
    names = [sg.feature for sg in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a feature is listed twice")
    return tuple(out)


def join_store_spec(text: str, ttl: float, max_rows: int, commit_interval: float,
                    base_dir: Path | None = None) -> dict[str, Any]:
    """The join store spec of ``--join-store``: ``memory``, ``sqlite:PATH`` or a Redis URL.

    >>> join_store_spec("sqlite:/data/j.sqlite", 60.0, 100, 1.0)["path"]
    '/data/j.sqlite'
    >>> join_store_spec("redis://r:6379/0", 60.0, 100, 1.0)["type"]
    'redis'
    """
    t = text.strip()
    if t == "memory":
        return {"type": "memory", "ttl_seconds": ttl, "max_rows": max_rows}
    if t.startswith("sqlite:"):
        p = t[len("sqlite:"):]
        if p.startswith("//"):
            p = p[2:]
        if not p:
            raise ValueError("sqlite: needs a file path, e.g. sqlite:/var/lib/modelmon/join.sqlite")
        if base_dir is not None and not os.path.isabs(p):
            p = str(base_dir / p)
        return {"type": "sqlite", "path": p, "ttl_seconds": ttl, "max_rows": max_rows,
                "commit_interval": commit_interval}
    if t.startswith(("redis://", "rediss://", "unix://")):
        return {"type": "redis", "url": t, "ttl_seconds": ttl}
    raise ValueError(f"expected memory, sqlite:PATH or redis://host:port/db, got {text!r}")


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

    max_events = _whole(*_pick("max_events_per_request", args, env, doc, path))

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
    ttl = _duration(*_pick("join_ttl", args, env, doc, path))
    max_rows = _whole(*_pick("join_max_rows", args, env, doc, path))
    commit = _duration(*_pick("join_commit_interval", args, env, doc, path))
    value, src = _pick("join_store", args, env, doc, path)
    try:
        spec = join_store_spec(str(value), ttl, max_rows, commit,
                               Path(path).resolve().parent if path and src.startswith(path)
                               else None)
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None
    return SidecarConfig(models=tuple(models),
                         limits=Limits(max_body_bytes=max_body, max_events_per_request=max_events),
                         host=host, port=port, shutdown_delay=delay, web_config_file=web,
                         join_store=spec)


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
                 "web_config_file", "join_store", "join_ttl", "join_max_rows",
                 "join_commit_interval"):
        flag, var, keys, default = _SETTINGS[name]
        helps = {
            "listen": "address to serve on",
            "max_body_bytes": "largest request body, e.g. 8MiB (413 above it)",
            "max_events_per_request": "most events in one request (413 above it)",
            "shutdown_delay": ("after SIGTERM, keep serving (not ready) this long so a last "
                               "scrape sees every count; 0 to stop at once"),
            "web_config_file": "TLS and basic auth, exporter-toolkit format (docs/security.md)",
            "join_store": ("where predictions with an id wait for their labels: memory, "
                           "sqlite:PATH (a file on the pod's volume) or redis://host:port/db "
                           "(shared by replicas)"),
            "join_ttl": "how long a prediction waits for its label",
            "join_max_rows": "most predictions remembered (memory, SQLite); the oldest go first",
            "join_commit_interval": ("SQLite: commit this often; a crash loses at most this "
                                     "much"),
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
            f" tls_or_auth={'yes' if cfg.web_config_file else 'no'}"
            f" join_store={cfg.join_store.get('type')}")
