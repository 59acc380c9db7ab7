"""``modelmon drift``: the drift exporter's command line.

Two modes, chosen by the source:

* scrape mode, ``--scrape URL`` (repeatable): reads the replicas' ``/metrics``;
* query mode, ``--prometheus-url URL``: reads a Prometheus-compatible store
  through its query API; baselines can be overridden with ``--baseline``, and
  the ``--prometheus.*`` flags set headers, auth and TLS of the store connection.

Every setting is one row of :data:`DRIFT_SETTINGS` and is resolved by
:class:`modelmon.settings.Settings` like every command's: its flag, else its
``MODELMON_*`` variable (dots and dashes become underscores:
``--prometheus.ca-file`` is ``MODELMON_PROMETHEUS_CA_FILE``), else its key in
the ``--config.file`` (old spelling ``--config``; variable
``MODELMON_CONFIG_FILE``, old name ``MODELMON_DRIFT_CONFIG``), else the default.
``MODELMON_SCRAPE`` and ``MODELMON_BASELINE`` take comma-separated values,
``MODELMON_PROMETHEUS_HEADER`` one header per line. The file also holds the
verdict and the per-model settings (``verdict:``, ``methods:``, ``models:``, see
:func:`load_config_file`). ``--web.listen-address`` (old spelling ``--listen``)
and ``--web.config.file`` are shared with the sidecar; the user guide is
``docs/drift.md``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from ..baseline import Baseline, BaselineError
from ..catalogue import DRIFT_METHODS
from ..settings import (
    ConfigFile,
    Setting,
    Settings,
    SettingsError,
    Source,
    config_file_setting,
    config_path,
    format_duration,
    parse_duration,
    read_config,
    web_settings,
)
from ..settings import add_arguments as add_settings
from ..webconfig import WebConfig, WebConfigError, load_web_config
from .promql import QueryOptions, options_summary, parse_header, source_label
from .query import BASELINE_REFRESH_SECONDS, DEFAULT_CONCURRENCY, ModelSettings
from .verdict import DEFAULT_VERDICT, VerdictSettings
from ..stats.verdict import NUMERIC_ONLY_VERDICT_METHODS, VERDICT_METHODS

if TYPE_CHECKING:
    from .service import BaseDriftService

__all__ = ["add_arguments", "run", "resolve", "build_service", "load_config_file",
           "DriftConfig", "DriftFile", "FileSettings", "ConfigError", "QUERY_DEFAULTS",
           "DRIFT_SETTINGS"]

log = logging.getLogger("modelmon.drift")

DEFAULT_PORT = 10381
DEFAULTS = {
    "window": "15m",
    "interval": "15s",
    "min_samples": "100",
    "listen": f"0.0.0.0:{DEFAULT_PORT}",
    "timeout": "10s",
}
#: Defaults that differ in query mode (the store keeps the history: longer windows are cheap).
QUERY_DEFAULTS = {
    **DEFAULTS,
    "window": "1h",
    "interval": "1m",
    "prometheus_timeout": "30s",
    "prometheus_concurrency": str(DEFAULT_CONCURRENCY),
    "evaluation_delay": "10s",
    "baseline_refresh": "15m",
}
#: Keys of a model in the --config file.
MODEL_KEYS = ("window", "min_samples", "methods", "verdict")
#: Keys of a ``verdict:`` section (top level or per model).
VERDICT_KEYS = ("method", "effect", "alpha")

_QUERY = "query mode"

#: The settings of ``modelmon drift``: flag > ``MODELMON_*`` variable > file key > default
#: (query mode's defaults are :data:`QUERY_DEFAULTS`).
DRIFT_SETTINGS: tuple[Setting, ...] = (
    config_file_setting(
        ("MODELMON_CONFIG_FILE", "MODELMON_DRIFT_CONFIG"),
        "YAML file with any of the settings below (their file keys), the drift verdict "
        "(verdict: {method, effect, alpha}) and per-model settings (models: {<model>: "
        "{verdict, window, min_samples, methods}}); see docs/drift.md"),
    Setting("scrape", ("--scrape",), ("MODELMON_SCRAPE",), ("scrape",), None,
            "scrape mode: /metrics URL of a monitored replica; repeat for each replica (their "
            "counts are summed; the variable comma-separated)", metavar="URL", multiple=True),
    Setting("prometheus_url", ("--prometheus-url",), ("MODELMON_PROMETHEUS_URL",),
            ("prometheus_url",), None,
            "query mode: base URL of a Prometheus-compatible query API, e.g. "
            "http://prometheus:9090 (not with --scrape)", metavar="URL"),
    Setting("window", ("--window",), ("MODELMON_WINDOW",), ("window",), DEFAULTS["window"],
            f"window length, e.g. 15m, 1h, 90 (seconds); {QUERY_DEFAULTS['window']} in query "
            "mode", metavar="DURATION"),
    Setting("interval", ("--interval",), ("MODELMON_INTERVAL",), ("interval",),
            DEFAULTS["interval"],
            f"time between evaluations; {QUERY_DEFAULTS['interval']} in query mode",
            metavar="DURATION"),
    Setting("min_samples", ("--min-samples",), ("MODELMON_MIN_SAMPLES",), ("min_samples",),
            DEFAULTS["min_samples"],
            "below this many samples in a window a feature gets no scores and no verdict, only "
            "its sample count ('too few samples'); the default is where the verdict finds a "
            "0.5 sd shift with 95%% probability", metavar="N"),
    *web_settings(DEFAULT_PORT),
    Setting("timeout", ("--timeout",), ("MODELMON_TIMEOUT",), ("timeout",), DEFAULTS["timeout"],
            "scrape mode: timeout of each scrape, at most --interval", metavar="DURATION"),
    Setting("baseline", ("--baseline",), ("MODELMON_BASELINE",), ("baselines",), None,
            "baseline file that replaces the store's modelmon_baseline_* gauges for its model "
            "and version; repeatable (the variable comma-separated)", metavar="FILE",
            multiple=True, path=True, group=_QUERY),
    Setting("prometheus_header", ("--prometheus.header",), ("MODELMON_PROMETHEUS_HEADER",),
            ("prometheus", "headers"), None,
            "extra HTTP header of every query, e.g. 'X-Scope-OrgID: team-a'; repeatable (the "
            "variable one per line)", metavar="'NAME: VALUE'", multiple=True, separator="\n",
            group=_QUERY),
    Setting("prometheus_bearer_token_file", ("--prometheus.bearer-token-file",),
            ("MODELMON_PROMETHEUS_BEARER_TOKEN_FILE",), ("prometheus", "bearer_token_file"), None,
            "file with a bearer token, re-read before every evaluation", metavar="FILE",
            path=True, group=_QUERY),
    Setting("prometheus_basic_auth_user", ("--prometheus.basic-auth-user",),
            ("MODELMON_PROMETHEUS_BASIC_AUTH_USER",), ("prometheus", "basic_auth_user"), None,
            "basic auth user; needs --prometheus.basic-auth-password-file", metavar="USER",
            group=_QUERY),
    Setting("prometheus_basic_auth_password_file", ("--prometheus.basic-auth-password-file",),
            ("MODELMON_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",),
            ("prometheus", "basic_auth_password_file"), None,
            "file with the basic auth password, re-read before every evaluation",
            metavar="FILE", path=True, group=_QUERY),
    Setting("prometheus_ca_file", ("--prometheus.ca-file",), ("MODELMON_PROMETHEUS_CA_FILE",),
            ("prometheus", "ca_file"), None,
            "CA bundle (PEM) that verifies the store's certificate instead of the system CAs",
            metavar="FILE", path=True, group=_QUERY),
    Setting("prometheus_cert_file", ("--prometheus.cert-file",),
            ("MODELMON_PROMETHEUS_CERT_FILE",), ("prometheus", "cert_file"), None,
            "client certificate (PEM) for mutual TLS; needs --prometheus.key-file",
            metavar="FILE", path=True, group=_QUERY),
    Setting("prometheus_key_file", ("--prometheus.key-file",), ("MODELMON_PROMETHEUS_KEY_FILE",),
            ("prometheus", "key_file"), None,
            "private key (PEM, unencrypted) of --prometheus.cert-file", metavar="FILE",
            path=True, group=_QUERY),
    Setting("prometheus_insecure_skip_verify", ("--prometheus.insecure-skip-verify",),
            ("MODELMON_PROMETHEUS_INSECURE_SKIP_VERIFY",), ("prometheus", "insecure_skip_verify"),
            None, "do not verify the store's certificate (testing only; the variable and the "
            "file take true or false)", switch=True, group=_QUERY),
    Setting("prometheus_timeout", ("--prometheus.timeout",), ("MODELMON_PROMETHEUS_TIMEOUT",),
            ("prometheus", "timeout"), QUERY_DEFAULTS["prometheus_timeout"],
            "timeout of each query, at most --interval", metavar="DURATION", group=_QUERY),
    Setting("prometheus_concurrency", ("--prometheus.concurrency",),
            ("MODELMON_PROMETHEUS_CONCURRENCY",), ("prometheus", "concurrency"),
            QUERY_DEFAULTS["prometheus_concurrency"], "queries in flight at once", metavar="N",
            group=_QUERY),
    Setting("evaluation_delay", ("--evaluation-delay",), ("MODELMON_EVALUATION_DELAY",),
            ("evaluation_delay",), QUERY_DEFAULTS["evaluation_delay"],
            "evaluate at this long ago, rounded down to a multiple of --interval, so the store "
            "has ingested the newest scrapes and HA replicas evaluate at the same time; 0 "
            "evaluates at the current time", metavar="DURATION", group=_QUERY),
    Setting("baseline_refresh", ("--baseline-refresh",), ("MODELMON_BASELINE_REFRESH",),
            ("baseline_refresh",), QUERY_DEFAULTS["baseline_refresh"],
            "read the baseline gauges again at least this often; between reads they are read "
            "only when modelmon_model_info shows a new model, version or baseline id; 0 reads "
            "them at every evaluation", metavar="DURATION", group=_QUERY),
)
#: Settings of query mode only (refused in scrape mode).
_QUERY_ONLY = tuple(s.name for s in DRIFT_SETTINGS if s.group == _QUERY)


class ConfigError(SettingsError):
    """A setting that cannot be used; the message names its source and what was expected."""


class PrometheusFile(msgspec.Struct, forbid_unknown_fields=True):
    """``prometheus:`` of the drift exporter's file: the store connection (query mode)."""

    headers: Any = None
    bearer_token_file: Any = None
    basic_auth_user: Any = None
    basic_auth_password_file: Any = None
    ca_file: Any = None
    cert_file: Any = None
    key_file: Any = None
    insecure_skip_verify: Any = None
    timeout: Any = None
    concurrency: Any = None


class DriftFile(msgspec.Struct, forbid_unknown_fields=True):
    """The drift exporter's YAML file (``--config.file``).

    ``verdict``, ``methods`` and ``models`` are checked by :func:`load_config_file`.
    """

    scrape: Any = None
    prometheus_url: Any = None
    window: Any = None
    interval: Any = None
    min_samples: Any = None
    listen: Any = None
    web_config_file: Any = None
    timeout: Any = None
    baselines: Any = None
    prometheus: PrometheusFile | None = None
    evaluation_delay: Any = None
    baseline_refresh: Any = None
    verdict: Any = None
    methods: Any = None
    models: Any = None


@dataclass(frozen=True)
class DriftConfig:
    """Resolved settings. ``scrape`` is empty in query mode, ``prometheus_url`` None in scrape mode."""

    scrape: tuple[str, ...]
    window: float
    interval: float
    min_samples: int
    host: str
    port: int
    timeout: float
    web_config: WebConfig | None = None
    prometheus_url: str | None = None
    query_options: QueryOptions | None = None
    methods: tuple[str, ...] = DRIFT_METHODS
    models: Mapping[str, ModelSettings] = field(default_factory=dict)
    baselines: tuple[Baseline, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    evaluation_delay: float = 0.0
    baseline_refresh: float = BASELINE_REFRESH_SECONDS
    config_file: str | None = None
    #: The verdict of every model without one of its own (``models[m].verdict``).
    verdict: VerdictSettings = DEFAULT_VERDICT

    @property
    def mode(self) -> str:
        """``"query"`` or ``"scrape"``."""
        return "query" if self.prometheus_url is not None else "scrape"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``modelmon drift`` flags (:data:`DRIFT_SETTINGS`) to ``parser``."""
    parser.description = (
        "Drift exporter. Scrape mode (--scrape): reads /metrics of the monitored replicas "
        "every --interval and sums them. Query mode (--prometheus-url): reads the replicas' "
        "histograms from a Prometheus-compatible store (Prometheus, Thanos, Mimir, "
        "VictoriaMetrics) through its query API. Both export drift scores of the last "
        "--window against the baseline and against the window before it. Each setting comes "
        "from its flag, else its MODELMON_* variable, else the --config.file, else the "
        "default. See docs/drift.md.")
    add_settings(parser, DRIFT_SETTINGS)


def _where(src: Source) -> str:
    """A source for a message about a relation: the flag itself when it is the default."""
    return src.name if src.kind == "default" else str(src)


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> DriftConfig:
    """The settings from flags, environment and config file; :class:`ConfigError` if unusable."""
    env = os.environ if environ is None else environ
    try:
        return _resolve(args, env)
    except ConfigError:
        raise
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def _resolve(args: argparse.Namespace, env: Mapping[str, str]) -> DriftConfig:
    path, via = config_path(DRIFT_SETTINGS, args, env)
    file = read_config(path, via, DriftFile) if path else None
    per_model = _per_model(file) if file is not None else FileSettings(DRIFT_METHODS, {},
                                                                        DEFAULT_VERDICT)
    s = Settings(DRIFT_SETTINGS, args, env, file)
    scrape = s.given("scrape")
    prom = s.given("prometheus_url")
    if prom is not None:
        if scrape is not None:
            raise ConfigError(f"{scrape.source} and {prom.source}: choose one mode, scrape "
                              "(--scrape) or query (--prometheus-url), not both")
        return _resolve_query(Settings(DRIFT_SETTINGS, args, env, file, QUERY_DEFAULTS),
                              per_model, file)
    urls: list[str] = list(scrape.raw) if scrape is not None else []
    if scrape is None or not urls:
        raise ConfigError("--scrape / MODELMON_SCRAPE: expected at least one /metrics URL "
                          "(e.g. --scrape http://model-0:8000/metrics), or --prometheus-url / "
                          "MODELMON_PROMETHEUS_URL for query mode (or scrape: / "
                          "prometheus_url: in the --config.file)")
    where = str(scrape.source)
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: expected http:// or https:// URLs, got {u!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"{where}: a URL is given twice (its counts would be summed twice)")
    for name in _QUERY_ONLY:
        given = s.given(name)
        if given is not None:
            raise ConfigError(f"{given.source}: only used in query mode (--prometheus-url), not "
                              f"with {where}")

    window, interval, min_samples = _common_window(s)
    timeout = s.duration("timeout")
    host, port, web_config = _listen_and_web(s)
    if file is not None:
        for name, ms in per_model.models.items():
            for key in ("window", "min_samples", "methods"):
                if getattr(ms, key) is not None:
                    raise file.error(f"models.{name}.{key}", "only used in query mode "
                                                             f"(--prometheus-url), not with {where}")
        if per_model.methods != DRIFT_METHODS:
            raise file.error("methods", "only used in query mode (--prometheus-url), not with "
                                        f"{where}")
    return DriftConfig(scrape=tuple(urls), window=window, interval=interval,
                       min_samples=min_samples, host=host, port=port,
                       timeout=min(timeout, interval), web_config=web_config,
                       models=per_model.models, verdict=per_model.verdict, config_file=path)


def _common_window(s: Settings) -> tuple[float, float, int]:
    window = s.duration("window")
    interval = s.duration("interval")
    if interval > window:
        raise ConfigError(f"{_where(s.value('interval').source)} ({format_duration(interval)}) "
                          f"must not be longer than {_where(s.value('window').source)} "
                          f"({format_duration(window)})")
    min_samples = s.whole("min_samples", 0)
    return window, interval, min_samples


def _listen_and_web(s: Settings) -> tuple[str, int, WebConfig | None]:
    host, port = s.listen("listen", DEFAULT_PORT)
    path, src = s.web_config_file()
    web_config = None
    if path is not None:
        try:
            web_config = load_web_config(path)
        except WebConfigError as exc:
            raise ConfigError(f"{src}: {exc}") from None
    return host, port, web_config


def _readable(path: str, where: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    return path


def _resolve_query(s: Settings, per_model: FileSettings, file: ConfigFile | None) -> DriftConfig:
    from urllib.parse import urlsplit

    url, url_src = s.text("prometheus_url")
    assert url is not None
    url_where = str(url_src)
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ConfigError(f"{url_where}: expected an http:// or https:// URL, got "
                          f"{source_label(url) if u.netloc else url!r}")
    if u.query or u.fragment:
        raise ConfigError(f"{url_where}: expected a base URL without ?query or #fragment, got "
                          f"{source_label(url)}?...")
    given = s.given("timeout")
    if given is not None:
        raise ConfigError(f"{given.source}: the scrape timeout is for --scrape only; in query "
                          "mode use --prometheus.timeout")
    window, interval, min_samples = _common_window(s)
    host, port, web_config = _listen_and_web(s)
    timeout = s.duration("prometheus_timeout")
    concurrency = s.whole("prometheus_concurrency", 1)
    delay = s.duration("evaluation_delay", allow_zero=True)
    refresh = s.duration("baseline_refresh", allow_zero=True)

    # headers
    raw, hsrc = s.items("prometheus_header")
    hwhere = _where(hsrc)
    headers: list[tuple[str, str]] = []
    for i, h in enumerate(raw, 1):
        try:
            headers.append(parse_header(h))
        except ValueError as exc:
            raise ConfigError(f"{hwhere} (#{i}): {exc}") from None
    names = [n.lower() for n, _ in headers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{hwhere}: header {dup[0]!r} given more than once")

    def opt(name: str, path: bool = True) -> tuple[str | None, str]:
        v, src = s.path(name) if path else s.text(name)
        return v, _where(src)

    token, token_where = opt("prometheus_bearer_token_file")
    user, user_where = opt("prometheus_basic_auth_user", path=False)
    pw, pw_where = opt("prometheus_basic_auth_password_file")
    ca, ca_where = opt("prometheus_ca_file")
    cert, cert_where = opt("prometheus_cert_file")
    key, key_where = opt("prometheus_key_file")
    insecure = s.boolean("prometheus_insecure_skip_verify")
    insecure_where = _where(s.value("prometheus_insecure_skip_verify").source)
    if (user is None) != (pw is None):
        missing = pw_where if pw is None else user_where
        have = user_where if pw is None else pw_where
        raise ConfigError(f"{have}: needs {missing} as well")
    if token is not None and user is not None:
        raise ConfigError(f"{token_where} and {user_where}: use a bearer token or basic auth, "
                          "not both")
    if (token is not None or user is not None) and "authorization" in names:
        raise ConfigError(f"{hwhere}: an Authorization header cannot be combined with "
                          f"{token_where if token is not None else user_where}")
    if (cert is None) != (key is None):
        raise ConfigError(f"{cert_where if cert is not None else key_where}: needs "
                          f"{key_where if cert is not None else cert_where} as well")
    if token is not None:
        _readable(token, token_where)
        try:
            if not Path(token).read_text(encoding="utf-8").strip():
                raise ConfigError(f"{token_where}: {token} is empty")
        except UnicodeDecodeError:
            raise ConfigError(f"{token_where}: {token} is not UTF-8 text") from None
    if pw is not None:
        _readable(pw, pw_where)
    tls_given = [w for v, w in ((ca, ca_where), (cert, cert_where), (key, key_where)) if v]
    if insecure:
        tls_given.append(insecure_where)
    if tls_given and u.scheme != "https":
        raise ConfigError(f"{tls_given[0]}: TLS options need an https:// URL in {url_where}, "
                          f"got {source_label(url)}")
    if ca is not None:
        _readable(ca, ca_where)
        try:
            ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{ca_where}: {ca} is not a PEM CA bundle: {exc}") from None
    if cert is not None and key is not None:
        _readable(cert, cert_where)
        _readable(key, key_where)
        try:
            ssl.create_default_context().load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{cert_where}/{key_where}: cannot load the client certificate "
                              f"and key: {exc}") from None
    options = QueryOptions(
        headers=tuple(headers), bearer_token_file=token, basic_auth_user=user,
        basic_auth_password_file=pw, ca_file=ca, cert_file=cert, key_file=key,
        insecure_skip_verify=insecure, timeout=min(timeout, interval))

    # baseline overrides
    paths, bsrc = s.paths("baseline")
    bwhere = str(bsrc)
    baselines: list[Baseline] = []
    seen: dict[tuple[str, str], str] = {}
    for p in paths:
        try:
            b = Baseline.load(p)
        except BaselineError as exc:
            raise ConfigError(f"{bwhere}: {exc}") from None
        pair = (b.model, b.model_version)
        if pair in seen:
            raise ConfigError(f"{bwhere}: {p} and {seen[pair]} are both for model {b.model!r} "
                              f"version {b.model_version!r}")
        seen[pair] = p
        baselines.append(b)
    return DriftConfig(scrape=(), window=window, interval=interval, min_samples=min_samples,
                       host=host, port=port, timeout=options.timeout, web_config=web_config,
                       prometheus_url=url, query_options=options, methods=per_model.methods,
                       models=per_model.models, baselines=tuple(baselines),
                       concurrency=concurrency, evaluation_delay=delay, baseline_refresh=refresh,
                       config_file=file.path if file is not None else None,
                       verdict=per_model.verdict)


class FileSettings(NamedTuple):
    """What a ``--config`` file sets."""

    methods: tuple[str, ...]
    models: dict[str, ModelSettings]
    verdict: VerdictSettings


def load_config_file(path: str) -> FileSettings:
    """The verdict and per-model settings of a drift config file (``--config.file``).

    The file may hold every setting of :data:`DRIFT_SETTINGS` under its file key
    (read by :func:`resolve`); this reads the verdict and per-model part::

        verdict:                               # optional: the verdict of every model
          method: {numeric: wasserstein_normed, categorical: jensen_shannon}
          effect: {wasserstein_normed: 0.15, jensen_shannon: 0.05}
          alpha: 0.005
        methods: [psi, jensen_shannon, ks]     # optional: default methods of every model
        models:
          loan:
            window: 2h                         # a duration (or seconds)
            min_samples: 500
            methods: [psi, jensen_shannon]
            verdict: {method: psi, effect: 0.1, alpha: 0.01}   # over the top-level verdict

    ``verdict.method`` is one method (used for the series it applies to:
    ``wasserstein_normed`` and ``ks`` need ordered buckets, so categories keep
    theirs) or a mapping ``{numeric, categorical}``; ``effect`` a mapping of
    method to floor, or one number when ``method`` names one method.
    :class:`ConfigError` names the file and the key of any problem.
    """
    try:
        return _per_model(read_config(path, "", DriftFile))
    except ConfigError:
        raise
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def _per_model(file: ConfigFile) -> FileSettings:
    """``verdict:``, ``methods:`` and ``models:`` of a read drift config file."""
    doc = file.doc
    assert isinstance(doc, DriftFile)

    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{file.where}: key {key!r}: {msg}")

    def methods_of(v: Any, key: str) -> tuple[str, ...]:
        if not isinstance(v, list) or not v:
            raise fail(key, f"expected a non-empty list of methods ({', '.join(DRIFT_METHODS)}), "
                            f"got {v!r}")
        for m in v:
            if m not in DRIFT_METHODS:
                raise fail(key, f"unknown method {m!r} (expected some of "
                                f"{', '.join(DRIFT_METHODS)})")
        if len(set(v)) != len(v):
            raise fail(key, "a method is listed twice")
        return tuple(m for m in DRIFT_METHODS if m in v)

    def verdict_of(v: Any, key: str, base: VerdictSettings) -> VerdictSettings:
        if v is None:
            return base
        if not isinstance(v, Mapping):
            raise fail(key, f"expected a mapping with {', '.join(VERDICT_KEYS)}, got "
                            f"{type(v).__name__}")
        for k in v:
            if k not in VERDICT_KEYS:
                raise fail(f"{key}.{k}", f"unknown key (expected one of {', '.join(VERDICT_KEYS)})")
        numeric, categorical = base.numeric, base.categorical
        single: str | None = None
        if "method" in v:
            m = v["method"]
            if isinstance(m, str):
                if m not in VERDICT_METHODS:
                    raise fail(f"{key}.method", f"unknown method {m!r} (expected one of "
                                                f"{', '.join(VERDICT_METHODS)})")
                single = numeric = m
                if m not in NUMERIC_ONLY_VERDICT_METHODS:
                    categorical = m
            elif isinstance(m, Mapping):
                for kind, name in m.items():
                    if kind not in ("numeric", "categorical"):
                        raise fail(f"{key}.method.{kind}", "unknown key (expected numeric or "
                                                           "categorical)")
                    allowed = VERDICT_METHODS if kind == "numeric" else tuple(
                        x for x in VERDICT_METHODS if x not in NUMERIC_ONLY_VERDICT_METHODS)
                    if name not in allowed:
                        raise fail(f"{key}.method.{kind}", f"expected one of "
                                                           f"{', '.join(allowed)}, got {name!r}")
                numeric = m.get("numeric", numeric)
                categorical = m.get("categorical", categorical)
            else:
                raise fail(f"{key}.method", f"expected a method name or a mapping "
                                            f"{{numeric: ..., categorical: ...}}, got {m!r}")
        effect = dict(base.effect)
        if "effect" in v:
            e = v["effect"]
            if isinstance(e, Mapping):
                for name, floor in e.items():
                    if name not in VERDICT_METHODS:
                        raise fail(f"{key}.effect.{name}", f"unknown method (expected some of "
                                                           f"{', '.join(VERDICT_METHODS)})")
                    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or \
                            not floor >= 0 or floor == float("inf"):
                        raise fail(f"{key}.effect.{name}", f"expected a number >= 0, got "
                                                           f"{floor!r}")
                    effect[name] = float(floor)
            elif isinstance(e, (int, float)) and not isinstance(e, bool):
                if single is None:
                    raise fail(f"{key}.effect", "a single number needs a single method: give "
                                                "method: <name>, or effect per method "
                                                "({wasserstein_normed: 0.2, ...})")
                if not e >= 0 or e == float("inf"):
                    raise fail(f"{key}.effect", f"expected a number >= 0, got {e!r}")
                effect[single] = float(e)
            else:
                raise fail(f"{key}.effect", f"expected a number or a mapping of method to "
                                            f"number, got {e!r}")
        alpha = base.alpha
        if "alpha" in v:
            a = v["alpha"]
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 1:
                raise fail(f"{key}.alpha", f"expected a probability between 0 and 1 "
                                           f"(exclusive), got {a!r}")
            alpha = float(a)
        return VerdictSettings(numeric=numeric, categorical=categorical,
                               effect=MappingProxyType(effect), alpha=alpha)

    verdict = verdict_of(doc.verdict, "verdict", DEFAULT_VERDICT)
    methods = methods_of(doc.methods, "methods") if doc.methods is not None else DRIFT_METHODS
    raw_models = doc.models or {}
    if not isinstance(raw_models, Mapping):
        raise fail("models", f"expected a mapping of model name to settings, got "
                             f"{type(raw_models).__name__}")
    models: dict[str, ModelSettings] = {}
    for name, settings in raw_models.items():
        if not isinstance(name, str) or not name:
            raise fail(f"models.{name}", "model names must be non-empty strings")
        base = f"models.{name}"
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise fail(base, f"expected a mapping with {', '.join(MODEL_KEYS)}, got "
                             f"{type(settings).__name__}")
        window = min_samples = None
        ms: tuple[str, ...] | None = None
        mv: VerdictSettings | None = None
        for k, v in settings.items():
            key = f"{base}.{k}"
            if k == "window":
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise fail(key, f"expected a duration such as 2h or 90s, got {v!r}")
                try:
                    window = parse_duration(str(v))
                except ValueError as exc:
                    raise fail(key, str(exc)) from None
            elif k == "min_samples":
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise fail(key, f"expected a whole number >= 0, got {v!r}")
                min_samples = v
            elif k == "methods":
                ms = methods_of(v, key)
            elif k == "verdict":
                mv = verdict_of(v, key, verdict)
            else:
                raise fail(key, f"unknown key (expected one of {', '.join(MODEL_KEYS)})")
        models[name] = ModelSettings(window=window, min_samples=min_samples, methods=ms,
                                     verdict=mv)
    return FileSettings(methods, models, verdict)


def build_service(cfg: DriftConfig, **kwargs: Any) -> "BaseDriftService":
    """The service of ``cfg``'s mode (``kwargs`` go to its constructor, e.g. ``session``)."""
    from .service import DriftQueryService, DriftScrapeService

    if cfg.prometheus_url is None:
        return DriftScrapeService(cfg.scrape, window=cfg.window, interval=cfg.interval,
                            min_samples=cfg.min_samples, timeout=cfg.timeout,
                            verdict=cfg.verdict, models=cfg.models, **kwargs)
    return DriftQueryService(
        cfg.prometheus_url, window=cfg.window, interval=cfg.interval,
        min_samples=cfg.min_samples, methods=cfg.methods, models=cfg.models,
        verdict=cfg.verdict,
        baselines=cfg.baselines, options=cfg.query_options, concurrency=cfg.concurrency,
        evaluation_delay=cfg.evaluation_delay, baseline_refresh=cfg.baseline_refresh, **kwargs)


def run(args: argparse.Namespace) -> int:
    """Run the exporter until SIGTERM or SIGINT; 0 on a clean stop, 2 on bad settings."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="ts=%(asctime)s level=%(levelname)s logger=%(name)s "
                                   "msg=%(message)s")
    try:
        cfg = resolve(args)
    except ConfigError as exc:
        print(f"modelmon drift: error: {exc}", file=sys.stderr)
        return 2
    try:
        svc = build_service(cfg)
    except (ValueError, OSError) as exc:  # e.g. a secret file that vanished since resolve()
        print(f"modelmon drift: error: {exc}", file=sys.stderr)
        return 2
    try:
        host, port = svc.serve(cfg.host, cfg.port, web_config=cfg.web_config)
    except OSError as exc:
        print(f"modelmon drift: error: --web.listen-address {cfg.host}:{cfg.port}: {exc}",
              file=sys.stderr)
        return 1
    stop = threading.Event()
    previous: dict[signal.Signals, object] = {}
    # Everything built so far (modules, the HTTP shell, baselines) lives as long as the
    # process: keep it out of the cyclic GC's full collections, which would otherwise walk
    # it during every evaluation (as the sidecar does).
    gc.collect()
    gc.freeze()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("event=shutdown signal=%s", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    wc = cfg.web_config
    if cfg.prometheus_url is None:
        log.info("event=started listen=%s:%d sources=%d window=%s interval=%s min_samples=%d "
                 "tls=%s basic_auth=%s",
                 host, port, len(cfg.scrape), format_duration(cfg.window),
                 format_duration(cfg.interval), cfg.min_samples,
                 "on" if wc is not None and wc.tls is not None else "off",
                 "on" if wc is not None and wc.users else "off")
    else:
        assert cfg.query_options is not None
        store = " ".join(f"store_{k}={v}" for k, v in options_summary(cfg.query_options).items())
        windows = sorted({cfg.window} | {m.window for m in cfg.models.values()
                                         if m.window is not None})
        log.info("event=started mode=query listen=%s:%d source=%s window=%s interval=%s "
                 "min_samples=%d models_configured=%d baselines=%d evaluation_delay=%s "
                 "baseline_refresh=%s %s "
                 "tls=%s basic_auth=%s",
                 host, port, source_label(cfg.prometheus_url),
                 ",".join(format_duration(w) for w in windows), format_duration(cfg.interval),
                 cfg.min_samples, len(cfg.models), len(cfg.baselines),
                 format_duration(cfg.evaluation_delay) if cfg.evaluation_delay else "0s",
                 format_duration(cfg.baseline_refresh) if cfg.baseline_refresh else "0s", store,
                 "on" if wc is not None and wc.tls is not None else "off",
                 "on" if wc is not None and wc.users else "off")
    try:
        svc.start()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        svc.stop()
    log.info("event=stopped evaluations=%d", svc.latest.evaluations if svc.latest else 0)
    return 0
