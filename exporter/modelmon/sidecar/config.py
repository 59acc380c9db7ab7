"""Settings of ``modelmon sidecar``: a YAML file, flags and ``MODELMON_*`` variables.

Each setting is a row of :data:`SIDECAR_SETTINGS`, resolved by
:class:`modelmon.settings.Settings` like the drift exporter's: its flag, else its
environment variable, else the config file (``--config.file``, old spelling
``--config``), else the default. An unusable setting raises :class:`ConfigError`
whose message names where it came from (the flag as typed, the variable, or the
file and the key) and what was expected, so the sidecar stops before it starts
serving.

The file (schema :class:`SidecarFile`; an unknown key is an error naming its path)::

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ..baseline import Baseline, BaselineError
from ..monitor.outcomes import Segment
from ..settings import (
    ConfigFile,
    Setting,
    Settings,
    SettingsError,
    config_file_setting,
    config_path,
    convert,
    format_duration,
    parse_size,
    read_config,
    web_settings,
)
from ..settings import add_arguments as add_settings

__all__ = [
    "DEFAULT_PORT",
    "SIDECAR_SETTINGS",
    "ConfigError",
    "Limits",
    "ModelEntry",
    "SidecarConfig",
    "SidecarFile",
    "parse_size",
    "resolve",
]

DEFAULT_PORT = 10380
MiB = 1 << 20


#: ``--join-store``'s default: a SQLite file in the user's state directory, never the
#: working directory. ``$XDG_STATE_HOME`` is that variable, else ``~/.local/state`` (the
#: container image sets ``XDG_STATE_HOME=/var/lib``).
DEFAULT_JOIN_STORE = "sqlite:$XDG_STATE_HOME/modelmon/join.sqlite"


def state_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME`` when set to an absolute path, else ``~/.local/state``.

    >>> str(state_home({"XDG_STATE_HOME": "/var/lib"}))
    '/var/lib'
    """
    base = environ.get("XDG_STATE_HOME", "").strip()
    return Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"


def default_join_store(environ: Mapping[str, str] = os.environ) -> str:
    """The default join store with its directory resolved.

    >>> default_join_store({"XDG_STATE_HOME": "/var/lib"})
    'sqlite:/var/lib/modelmon/join.sqlite'
    """
    return "sqlite:" + _sqlite_path(DEFAULT_JOIN_STORE.removeprefix("sqlite:"), environ)


def _sqlite_path(path: str, environ: Mapping[str, str]) -> str:
    """``~`` and a leading ``$XDG_STATE_HOME`` (:func:`state_home`) expanded."""
    if path.startswith("$XDG_STATE_HOME"):
        path = str(state_home(environ)) + path[len("$XDG_STATE_HOME"):]
    return os.path.expanduser(path)


#: The settings of ``modelmon sidecar``: flag > ``MODELMON_*`` variable > file key > default.
SIDECAR_SETTINGS: tuple[Setting, ...] = (
    config_file_setting(("MODELMON_CONFIG_FILE", "MODELMON_CONFIG"),
                        "YAML file with models:, listen:, limits:, labels: ... (docs/sidecar.md)",
                        name="config"),  # args.config, as before
    Setting("baseline", ("--baseline",), ("MODELMON_BASELINE",), None, None,
            "baseline of one model; repeat for several (the variable comma-separated); "
            "replaces the file's models:", metavar="FILE", multiple=True),
    *web_settings(DEFAULT_PORT),
    Setting("max_body_bytes", ("--max-body-bytes",), ("MODELMON_MAX_BODY_BYTES",),
            ("limits", "max_body_bytes"), "8MiB",
            "largest request body, e.g. 8MiB (413 above it)", metavar="SIZE"),
    Setting("max_events_per_request", ("--max-events-per-request",),
            ("MODELMON_MAX_EVENTS_PER_REQUEST",), ("limits", "max_events_per_request"), "10000",
            "most events in one request (413 above it)", metavar="N"),
    Setting("shutdown_delay", ("--shutdown-delay",), ("MODELMON_SHUTDOWN_DELAY",),
            ("shutdown_delay",), "5s",
            "after SIGTERM, keep serving (not ready) this long so a last scrape sees every "
            "count; 0 to stop at once", metavar="DURATION"),
    Setting("join_store", ("--join-store",), ("MODELMON_JOIN_STORE",), ("labels", "join_store"),
            DEFAULT_JOIN_STORE,
            "where predictions with an id wait for their labels: memory, sqlite:PATH (a file on "
            "the pod's volume; default in $XDG_STATE_HOME/modelmon or ~/.local/state/modelmon) "
            "or redis://host:port/db (shared by replicas)", metavar="STORE"),
    Setting("join_ttl", ("--join-ttl",), ("MODELMON_JOIN_TTL",), ("labels", "ttl"), "7d",
            "how long a prediction waits for its label", metavar="DURATION"),
    Setting("join_max_rows", ("--join-max-rows",), ("MODELMON_JOIN_MAX_ROWS",),
            ("labels", "max_rows"), "10000000",
            "most predictions remembered (memory, SQLite); the oldest go first", metavar="N"),
    Setting("join_commit_interval", ("--join-commit-interval",),
            ("MODELMON_JOIN_COMMIT_INTERVAL",), ("labels", "commit_interval"), "1s",
            "SQLite: commit this often; a crash loses at most this much", metavar="DURATION"),
)

#: ``setting -> (flag, variable, file key path, default)`` under the spellings the sidecar
#: has always had (``--listen``, ``MODELMON_LISTEN``); the table is :data:`SIDECAR_SETTINGS`.
_SETTINGS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    s.name: (s.flags[-1], s.env[-1], s.key, s.default) for s in SIDECAR_SETTINGS
    if s.key is not None
}


class ConfigError(SettingsError):
    """A setting that cannot be used; the message names its source and the expectation."""


class LimitsFile(msgspec.Struct, forbid_unknown_fields=True):
    """``limits:`` of the sidecar's file."""

    max_body_bytes: Any = None
    max_events_per_request: Any = None


class LabelsFile(msgspec.Struct, forbid_unknown_fields=True):
    """``labels:`` of the sidecar's file."""

    join_store: Any = None
    ttl: Any = None
    max_rows: Any = None
    commit_interval: Any = None


class ModelFile(msgspec.Struct, forbid_unknown_fields=True):
    """One entry of ``models:`` (a bare string is ``{baseline: <it>}``)."""

    baseline: Any = None
    name: Any = None
    version: Any = None
    segments: Any = None


class SidecarFile(msgspec.Struct, forbid_unknown_fields=True):
    """The sidecar's YAML file (``--config.file``)."""

    listen: Any = None
    models: Any = None
    limits: LimitsFile | None = None
    shutdown_delay: Any = None
    web_config_file: Any = None
    labels: LabelsFile | None = None


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
    #: Where ``web_config_file`` came from (the head of its error messages).
    web_config_source: str = "--web.config.file"


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


def _models_from_file(file: ConfigFile) -> list[ModelEntry]:
    raw = file.lookup(("models",))
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise file.error("models", f"expected a non-empty list of {{name, version, baseline}}, "
                                   f"got {raw!r}"[:300])
    out: list[ModelEntry] = []
    for i, item in enumerate(raw):
        key = f"models[{i}]"
        entry = convert({"baseline": item} if isinstance(item, str) else item, ModelFile,
                        file.where, key)
        bpath = entry.baseline
        if not isinstance(bpath, str) or not bpath.strip():
            raise file.error(f"{key}.baseline", f"expected the path of a baseline YAML file, got "
                                                f"{bpath!r}")
        full = str(file.directory / bpath) if not os.path.isabs(bpath) else bpath
        b = _load_baseline(full, f"{file.where}: key '{key}.baseline'")
        if entry.name is not None and str(entry.name) != b.model:
            raise file.error(f"{key}.name", f"{entry.name!r} does not match the model "
                                            f"{b.model!r} of baseline {bpath}")
        if entry.version is not None and str(entry.version) != b.model_version:
            raise file.error(f"{key}.version", f"{str(entry.version)!r} does not match the "
                                               f"model_version {b.model_version!r} of baseline "
                                               f"{bpath}")
        for j, prev in enumerate(out):
            if prev.name == b.model:
                raise file.error(f"{key}.baseline", f"model {b.model!r} is already given by "
                                                    f"models[{j}] ({prev.path}); a sidecar "
                                                    "serves one version per model")
        out.append(ModelEntry(b.model, b, full, _segments(entry.segments, b,
                                                          f"{file.where}: key '{key}.segments'")))
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
                out.append(Segment(str(feature), bins=tuple(float(x) for x in bins)))
            else:
                values = item["values"]
                if not isinstance(values, list):
                    raise ValueError("values must be a list")
                out.append(Segment(str(feature), values=tuple(str(v) for v in values)))
        except ValueError as exc:
            raise ConfigError(f"{at}: {exc}") from None
    names = [sg.feature for sg in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a feature is listed twice")
    return tuple(out)


def join_store_spec(text: str, ttl: float, max_rows: int, commit_interval: float,
                    base_dir: Path | None = None,
                    environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The join store spec of ``--join-store``: ``memory``, ``sqlite:PATH`` or a Redis URL.

    A SQLite path may start with ``~`` or ``$XDG_STATE_HOME`` (see :func:`state_home`).

    >>> join_store_spec("sqlite:/data/j.sqlite", 60.0, 100, 1.0)["path"]
    '/data/j.sqlite'
    >>> join_store_spec("sqlite:$XDG_STATE_HOME/m/j.sqlite", 60.0, 100, 1.0,
    ...                 environ={"XDG_STATE_HOME": "/srv/state"})["path"]
    '/srv/state/m/j.sqlite'
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
        p = _sqlite_path(p, environ)
        if base_dir is not None and not os.path.isabs(p):
            p = str(base_dir / p)
        return {"type": "sqlite", "path": p, "ttl_seconds": ttl, "max_rows": max_rows,
                "commit_interval": commit_interval}
    if t.startswith(("redis://", "rediss://", "unix://")):
        return {"type": "redis", "url": t, "ttl_seconds": ttl}
    raise ValueError(f"expected memory, sqlite:PATH or redis://host:port/db, got {text!r}")


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> SidecarConfig:
    """The sidecar's settings: flag > ``MODELMON_*`` variable > config file > default.

    Raises
    ------
    ConfigError
        With a message naming the source (flag as typed, variable, or the file
        and the key) and what was expected.
    """
    env = os.environ if environ is None else environ
    try:
        return _resolve(args, env)
    except ConfigError:
        raise
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def _resolve(args: argparse.Namespace, env: Mapping[str, str]) -> SidecarConfig:
    path, via = config_path(SIDECAR_SETTINGS, args, env, name="config")
    file = read_config(path, via, SidecarFile) if path else None
    s = Settings(SIDECAR_SETTINGS, args, env, file)

    models: list[ModelEntry]
    given = s.given("baseline")
    if given is not None and given.source.kind in ("flag", "env"):
        models = [ModelEntry((b := _load_baseline(p, f"{given.source} {p}")).model, b, p)
                  for p in given.raw]
    else:
        models = _models_from_file(file) if file is not None else []
    if not models:
        if file is not None:
            raise file.error("models", "missing; expected a list of {name, version, baseline} "
                                       "(or give --baseline FILE / MODELMON_BASELINE)")
        raise ConfigError("no model to monitor: give --baseline FILE (or MODELMON_BASELINE), or "
                          "--config.file FILE (or --config, MODELMON_CONFIG_FILE, "
                          "MODELMON_CONFIG) with a 'models:' list")
    seen: dict[str, str] = {}
    for m in models:
        if m.name in seen:
            raise ConfigError(f"model {m.name!r} is given twice ({seen[m.name]} and {m.path}); "
                              "a sidecar serves one version per model")
        seen[m.name] = m.path

    host, port = s.listen("listen", DEFAULT_PORT)
    limits = Limits(max_body_bytes=s.size("max_body_bytes"),
                    max_events_per_request=s.whole("max_events_per_request", 1))
    delay = s.duration("shutdown_delay", allow_zero=True)
    web, web_src = s.web_config_file()
    ttl = s.duration("join_ttl")
    max_rows = s.whole("join_max_rows", 1)
    commit = s.duration("join_commit_interval")
    store = s.value("join_store")
    try:
        spec = join_store_spec(str(store.raw), ttl, max_rows, commit,
                               file.directory if file is not None and store.source.kind == "file"
                               else None, environ=env)
    except ValueError as exc:
        raise store.error(str(exc)) from None
    return SidecarConfig(models=tuple(models), limits=limits, host=host, port=port,
                         shutdown_delay=delay, web_config_file=web, join_store=spec,
                         web_config_source=str(web_src))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``modelmon sidecar`` flags (:data:`SIDECAR_SETTINGS`) to ``parser``."""
    parser.description = (
        "HTTP sidecar: models POST prediction events (JSON or NDJSON) to "
        "/v1/models/{model}/events and Prometheus scrapes /metrics. Each setting comes from "
        "its flag, else its MODELMON_* variable, else the --config.file, else the default.")
    add_settings(parser, SIDECAR_SETTINGS)


def describe(cfg: SidecarConfig) -> str:
    """One log line of the effective settings."""
    models = ",".join(f"{m.name}@{m.baseline.model_version}" for m in cfg.models)
    return (f"listen={cfg.host}:{cfg.port} models={models} max_body_bytes={cfg.limits.max_body_bytes}"
            f" max_events_per_request={cfg.limits.max_events_per_request} "
            f"shutdown_delay={format_duration(cfg.shutdown_delay) if cfg.shutdown_delay else '0s'}"
            f" tls_or_auth={'yes' if cfg.web_config_file else 'no'}"
            f" join_store={cfg.join_store.get('type')}")
