"""``modelmon drift``: the drift exporter's command line.

Two modes, chosen by the source:

* scrape mode, ``--scrape URL`` (repeatable): reads the replicas' ``/metrics``;
* query mode, ``--prometheus-url URL``: reads a Prometheus-compatible store
  through its query API; per-model settings come from ``--config``, baselines
  can be overridden with ``--baseline``, and the ``--prometheus.*`` flags set
  headers, auth and TLS of the store connection.

Every flag can also be set through an environment variable ``MODELMON_<FLAG>``
(dots and dashes become underscores: ``--prometheus.ca-file`` is
``MODELMON_PROMETHEUS_CA_FILE``; ``--config`` is ``MODELMON_DRIFT_CONFIG``).
``MODELMON_SCRAPE`` and ``MODELMON_BASELINE`` take comma-separated values,
``MODELMON_PROMETHEUS_HEADER`` one header per line. A flag given on the command
line wins over the variable. ``--web.config.file`` (variable
``MODELMON_WEB_CONFIG_FILE``) turns on TLS and basic auth, see
``docs/security.md``; the user guide is ``docs/drift.md``.
"""

from __future__ import annotations

import argparse
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

import yaml

from ..baseline import Baseline, BaselineError
from ..catalogue import DRIFT_METHODS
from ..webconfig import WebConfig, WebConfigError, load_web_config
from .config import format_duration, parse_duration, parse_listen
from .promql import QueryOptions, options_summary, parse_header, source_label
from .query import BASELINE_REFRESH_SECONDS, DEFAULT_CONCURRENCY, ModelSettings
from .verdict import DEFAULT_VERDICT, VerdictSettings
from ..stats.verdict import NUMERIC_ONLY_VERDICT_METHODS, VERDICT_METHODS

if TYPE_CHECKING:
    from .service import BaseDriftService

__all__ = ["add_arguments", "run", "resolve", "build_service", "load_config_file",
           "DriftConfig", "FileSettings", "ConfigError", "QUERY_DEFAULTS"]

log = logging.getLogger("modelmon.drift")

DEFAULTS = {
    "window": "15m",
    "interval": "15s",
    "min_samples": "100",
    "listen": "0.0.0.0:10381",
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


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the flag and its variable."""


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
    """Add the ``modelmon drift`` flags to ``parser``."""
    parser.description = (
        "Drift exporter. Scrape mode (--scrape): reads /metrics of the monitored replicas "
        "every --interval and sums them. Query mode (--prometheus-url): reads the replicas' "
        "histograms from a Prometheus-compatible store (Prometheus, Thanos, Mimir, "
        "VictoriaMetrics) through its query API. Both export drift scores of the last "
        "--window against the baseline and against the window before it. See docs/drift.md.")
    parser.add_argument("--scrape", action="append", metavar="URL", default=None,
                        help="scrape mode: /metrics URL of a monitored replica; repeat for each "
                             "replica (their counts are summed). Env MODELMON_SCRAPE, "
                             "comma-separated.")
    parser.add_argument("--prometheus-url", dest="prometheus_url", metavar="URL", default=None,
                        help="query mode: base URL of a Prometheus-compatible query API, e.g. "
                             "http://prometheus:9090 (not with --scrape; env "
                             "MODELMON_PROMETHEUS_URL)")
    parser.add_argument("--window", metavar="DURATION", default=None,
                        help=f"window length, e.g. 15m, 1h, 90 (seconds) "
                             f"(default {DEFAULTS['window']} in scrape mode, "
                             f"{QUERY_DEFAULTS['window']} in query mode; env MODELMON_WINDOW)")
    parser.add_argument("--interval", metavar="DURATION", default=None,
                        help=f"time between evaluations (default {DEFAULTS['interval']} in "
                             f"scrape mode, {QUERY_DEFAULTS['interval']} in query mode; "
                             "env MODELMON_INTERVAL)")
    parser.add_argument("--min-samples", metavar="N", default=None,
                        help=f"below this many samples in a window a feature gets no scores "
                             f"and no verdict, only its sample count ('too few samples'); the "
                             f"default is where the verdict finds a 0.5 sd shift with 95%% "
                             f"probability (default {DEFAULTS['min_samples']}; env "
                             f"MODELMON_MIN_SAMPLES)")
    parser.add_argument("--listen", metavar="HOST:PORT", default=None,
                        help=f"address of /metrics, /-/healthy and /-/ready "
                             f"(default {DEFAULTS['listen']}; env MODELMON_LISTEN)")
    parser.add_argument("--timeout", metavar="DURATION", default=None,
                        help=f"scrape mode: timeout of each scrape (default "
                             f"{DEFAULTS['timeout']}, at most --interval; env MODELMON_TIMEOUT)")
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="PATH",
                        default=None,
                        help="YAML file (Prometheus exporter-toolkit format) that turns on TLS "
                             "and/or basic auth; /-/healthy and /-/ready stay open "
                             "(default: none, plain HTTP without auth; env "
                             "MODELMON_WEB_CONFIG_FILE)")
    q = parser.add_argument_group(
        "query mode", "Settings of --prometheus-url only; each also as MODELMON_<NAME> "
        "(dots and dashes as underscores).")
    parser.add_argument("--config", dest="drift_config", metavar="FILE", default=None,
                        help="YAML file with the drift verdict (verdict: {method, effect, "
                             "alpha}) and per-model settings: models: {<model>: {verdict: {...}, "
                             "window: 2h, min_samples: 500, methods: [psi, jensen_shannon]}} "
                             "(window, min_samples and methods in query mode only), and an "
                             "optional top-level methods: list (query mode); see docs/drift.md "
                             "(env MODELMON_DRIFT_CONFIG)")
    q.add_argument("--baseline", dest="baseline", action="append", metavar="FILE",
                   default=None,
                   help="baseline file that replaces the store's modelmon_baseline_* gauges for "
                        "its model and version; repeatable (env MODELMON_BASELINE, "
                        "comma-separated)")
    q.add_argument("--prometheus.header", dest="prometheus_header", action="append",
                   metavar="'NAME: VALUE'", default=None,
                   help="extra HTTP header of every query, e.g. 'X-Scope-OrgID: team-a'; "
                        "repeatable (env MODELMON_PROMETHEUS_HEADER, one per line)")
    q.add_argument("--prometheus.bearer-token-file", dest="prometheus_bearer_token_file",
                   metavar="FILE", default=None,
                   help="file with a bearer token, re-read before every evaluation "
                        "(env MODELMON_PROMETHEUS_BEARER_TOKEN_FILE)")
    q.add_argument("--prometheus.basic-auth-user", dest="prometheus_basic_auth_user",
                   metavar="USER", default=None,
                   help="basic auth user; needs --prometheus.basic-auth-password-file "
                        "(env MODELMON_PROMETHEUS_BASIC_AUTH_USER)")
    q.add_argument("--prometheus.basic-auth-password-file",
                   dest="prometheus_basic_auth_password_file", metavar="FILE", default=None,
                   help="file with the basic auth password, re-read before every evaluation "
                        "(env MODELMON_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE)")
    q.add_argument("--prometheus.ca-file", dest="prometheus_ca_file", metavar="FILE",
                   default=None,
                   help="CA bundle (PEM) that verifies the store's certificate instead of the "
                        "system CAs (env MODELMON_PROMETHEUS_CA_FILE)")
    q.add_argument("--prometheus.cert-file", dest="prometheus_cert_file", metavar="FILE",
                   default=None,
                   help="client certificate (PEM) for mutual TLS; needs --prometheus.key-file "
                        "(env MODELMON_PROMETHEUS_CERT_FILE)")
    q.add_argument("--prometheus.key-file", dest="prometheus_key_file", metavar="FILE",
                   default=None,
                   help="private key (PEM, unencrypted) of --prometheus.cert-file "
                        "(env MODELMON_PROMETHEUS_KEY_FILE)")
    q.add_argument("--prometheus.insecure-skip-verify", dest="prometheus_insecure_skip_verify",
                   action="store_true", default=None,
                   help="do not verify the store's certificate (testing only; env "
                        "MODELMON_PROMETHEUS_INSECURE_SKIP_VERIFY=true)")
    q.add_argument("--prometheus.timeout", dest="prometheus_timeout", metavar="DURATION",
                   default=None,
                   help=f"timeout of each query (default {QUERY_DEFAULTS['prometheus_timeout']}, "
                        "at most --interval; env MODELMON_PROMETHEUS_TIMEOUT)")
    q.add_argument("--prometheus.concurrency", dest="prometheus_concurrency", metavar="N",
                   default=None,
                   help=f"queries in flight at once (default "
                        f"{QUERY_DEFAULTS['prometheus_concurrency']}; env "
                        "MODELMON_PROMETHEUS_CONCURRENCY)")
    q.add_argument("--evaluation-delay", dest="evaluation_delay", metavar="DURATION",
                   default=None,
                   help=f"evaluate at this long ago, rounded down to a multiple of --interval, so "
                        f"the store has ingested the newest scrapes and HA replicas evaluate at "
                        f"the same time (default {QUERY_DEFAULTS['evaluation_delay']}; env "
                        "MODELMON_EVALUATION_DELAY)")
    q.add_argument("--baseline-refresh", dest="baseline_refresh", metavar="DURATION",
                   default=None,
                   help="read the baseline gauges again at least this often; between reads "
                        "they are read only when modelmon_model_info shows a new model, version "
                        "or baseline id (default "
                        f"{QUERY_DEFAULTS['baseline_refresh']}; 0s reads them at every "
                        "evaluation; env MODELMON_BASELINE_REFRESH)")


#: Flag spelling of the settings whose flag is not ``--`` + attr with dashes.
_FLAGS = {
    "drift_config": "--config",
    "baseline": "--baseline",
    **{a: "--prometheus." + a.removeprefix("prometheus_").replace("_", "-") for a in (
        "prometheus_header", "prometheus_bearer_token_file", "prometheus_basic_auth_user",
        "prometheus_basic_auth_password_file", "prometheus_ca_file", "prometheus_cert_file",
        "prometheus_key_file", "prometheus_insecure_skip_verify", "prometheus_timeout",
        "prometheus_concurrency")},
}
#: Settings of query mode only (refused in scrape mode).
_QUERY_ONLY = ("baseline", "evaluation_delay", "baseline_refresh") + tuple(
    a for a in _FLAGS if a.startswith("prometheus_"))


def _flag(attr: str) -> str:
    return _FLAGS.get(attr, "--" + attr.replace("_", "-"))


def _var(attr: str) -> str:
    return "MODELMON_" + attr.upper()


def _pick(args: argparse.Namespace, env: Mapping[str, str], attr: str,
          defaults: Mapping[str, str] = DEFAULTS) -> tuple[str, str]:
    """(value, where) of a setting: the flag, else the variable, else the default."""
    flag = _flag(attr)
    var = _var(attr)
    v = getattr(args, attr, None)
    if v is not None:
        return str(v), flag
    if env.get(var, "").strip():
        return env[var].strip(), var
    return defaults[attr], f"{flag} (default)"


def _given(args: argparse.Namespace, env: Mapping[str, str], attr: str) -> str | None:
    """Where an optional setting was given (its flag or variable), None if nowhere."""
    if getattr(args, attr, None) is not None:
        return _flag(attr)
    if env.get(_var(attr), "").strip():
        return _var(attr)
    return None


def _optional(args: argparse.Namespace, env: Mapping[str, str],
              attr: str) -> tuple[str | None, str]:
    where = _given(args, env, attr)
    if where is None:
        return None, _flag(attr)
    v = getattr(args, attr, None)
    return (str(v) if v is not None else env[_var(attr)].strip()), where


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> DriftConfig:
    """The settings from the parsed flags and the environment; :class:`ConfigError` if unusable."""
    env = os.environ if environ is None else environ
    urls: list[str] = []
    if getattr(args, "scrape", None):
        for item in args.scrape:
            urls += [u.strip() for u in str(item).split(",") if u.strip()]
        where = "--scrape"
    else:
        urls = [u.strip() for u in env.get("MODELMON_SCRAPE", "").split(",") if u.strip()]
        where = "MODELMON_SCRAPE"
    prom_url, prom_where = _optional(args, env, "prometheus_url")
    if prom_url is not None:
        if urls:
            raise ConfigError(f"{where} and {prom_where}: choose one mode, scrape (--scrape) or "
                              "query (--prometheus-url), not both")
        return _resolve_query(args, env, prom_url, prom_where)
    if not urls:
        raise ConfigError("--scrape / MODELMON_SCRAPE: expected at least one /metrics URL "
                          "(e.g. --scrape http://model-0:8000/metrics), or --prometheus-url / "
                          "MODELMON_PROMETHEUS_URL for query mode")
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: expected http:// or https:// URLs, got {u!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"{where}: a URL is given twice (its counts would be summed twice)")
    for attr in _QUERY_ONLY:
        given = _given(args, env, attr)
        if given is not None:
            raise ConfigError(f"{given}: only used in query mode (--prometheus-url), not with "
                              f"{where}")

    window, interval, min_samples = _common_window(args, env, DEFAULTS)
    timeout = _duration(args, env, "timeout", DEFAULTS)
    host, port, web_config = _listen_and_web(args, env)
    file, cfg_path, cfg_where = _config_file(args, env)
    if cfg_path is not None:
        for name, ms in file.models.items():
            for key in ("window", "min_samples", "methods"):
                if getattr(ms, key) is not None:
                    raise ConfigError(f"{cfg_where}: {cfg_path}: key 'models.{name}.{key}': only "
                                      f"used in query mode (--prometheus-url), not with {where}")
        if file.methods != DRIFT_METHODS:
            raise ConfigError(f"{cfg_where}: {cfg_path}: key 'methods': only used in query mode "
                              f"(--prometheus-url), not with {where}")
    return DriftConfig(scrape=tuple(urls), window=window, interval=interval,
                       min_samples=min_samples, host=host, port=port,
                       timeout=min(timeout, interval), web_config=web_config,
                       models=file.models, verdict=file.verdict, config_file=cfg_path)


def _duration(args: argparse.Namespace, env: Mapping[str, str], attr: str,
              defaults: Mapping[str, str], zero_ok: bool = False) -> float:
    text, src = _pick(args, env, attr, defaults)
    if zero_ok and text.strip() in ("0", "0s", "0ms"):
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None


def _whole(args: argparse.Namespace, env: Mapping[str, str], attr: str,
           defaults: Mapping[str, str], minimum: int) -> int:
    text, src = _pick(args, env, attr, defaults)
    try:
        n = int(text)
        if n < minimum:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{src}: expected a whole number >= {minimum}, got {text!r}") from None
    return n


def _common_window(args: argparse.Namespace, env: Mapping[str, str],
                   defaults: Mapping[str, str]) -> tuple[float, float, int]:
    window = _duration(args, env, "window", defaults)
    interval = _duration(args, env, "interval", defaults)
    if interval > window:
        raise ConfigError(f"--interval ({format_duration(interval)}) must not be longer than "
                          f"--window ({format_duration(window)})")
    min_samples = _whole(args, env, "min_samples", defaults, 0)
    return window, interval, min_samples


def _listen_and_web(args: argparse.Namespace,
                    env: Mapping[str, str]) -> tuple[str, int, WebConfig | None]:
    text, src = _pick(args, env, "listen")
    try:
        host, port = parse_listen(text)
    except ValueError as exc:
        raise ConfigError(f"{src}: {exc}") from None
    web_config = None
    path = getattr(args, "web_config_file", None)
    src = "--web.config.file"
    if path is None and env.get("MODELMON_WEB_CONFIG_FILE", "").strip():
        path, src = env["MODELMON_WEB_CONFIG_FILE"].strip(), "MODELMON_WEB_CONFIG_FILE"
    if path is not None:
        try:
            web_config = load_web_config(path)
        except WebConfigError as exc:
            raise ConfigError(f"{src}: {exc}") from None
    return host, port, web_config


def _config_file(args: argparse.Namespace,
                 env: Mapping[str, str]) -> tuple[FileSettings, str | None, str]:
    """``(settings, path, where)`` of ``--config``; the defaults and None when not given."""
    path, where = _optional(args, env, "drift_config")
    if path is None:
        return FileSettings(DRIFT_METHODS, {}, DEFAULT_VERDICT), None, where
    try:
        return load_config_file(path), path, where
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _readable(path: str, where: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    return path


def _resolve_query(args: argparse.Namespace, env: Mapping[str, str], url: str,
                   url_where: str) -> DriftConfig:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ConfigError(f"{url_where}: expected an http:// or https:// URL, got "
                          f"{source_label(url) if u.netloc else url!r}")
    if u.query or u.fragment:
        raise ConfigError(f"{url_where}: expected a base URL without ?query or #fragment, got "
                          f"{source_label(url)}?...")
    given = _given(args, env, "timeout")
    if given is not None:
        raise ConfigError(f"{given}: the scrape timeout is for --scrape only; in query mode use "
                          "--prometheus.timeout")
    d = QUERY_DEFAULTS
    window, interval, min_samples = _common_window(args, env, d)
    host, port, web_config = _listen_and_web(args, env)
    timeout = _duration(args, env, "prometheus_timeout", d)
    concurrency = _whole(args, env, "prometheus_concurrency", d, 1)
    delay = _duration(args, env, "evaluation_delay", d, zero_ok=True)
    refresh = _duration(args, env, "baseline_refresh", d, zero_ok=True)

    # headers
    headers: list[tuple[str, str]] = []
    if getattr(args, "prometheus_header", None):
        raw, hwhere = list(args.prometheus_header), "--prometheus.header"
    else:
        raw = [h for h in env.get("MODELMON_PROMETHEUS_HEADER", "").splitlines() if h.strip()]
        hwhere = "MODELMON_PROMETHEUS_HEADER"
    for i, h in enumerate(raw, 1):
        try:
            headers.append(parse_header(h))
        except ValueError as exc:
            raise ConfigError(f"{hwhere} (#{i}): {exc}") from None
    names = [n.lower() for n, _ in headers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{hwhere}: header {dup[0]!r} given more than once")

    token, token_where = _optional(args, env, "prometheus_bearer_token_file")
    user, user_where = _optional(args, env, "prometheus_basic_auth_user")
    pw, pw_where = _optional(args, env, "prometheus_basic_auth_password_file")
    ca, ca_where = _optional(args, env, "prometheus_ca_file")
    cert, cert_where = _optional(args, env, "prometheus_cert_file")
    key, key_where = _optional(args, env, "prometheus_key_file")
    insecure_text, insecure_where = _optional(args, env, "prometheus_insecure_skip_verify")
    insecure = False
    if insecure_text is not None:
        t = insecure_text.strip().lower()
        if t in ("true", "1", "yes", "on"):
            insecure = True
        elif t not in ("false", "0", "no", "off"):
            raise ConfigError(f"{insecure_where}: expected true or false, got {insecure_text!r}")
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

    # per-model config file
    file, cfg_path, _ = _config_file(args, env)
    methods, models = file.methods, file.models

    # baseline overrides
    if getattr(args, "baseline", None):
        paths, bwhere = [p for item in args.baseline for p in str(item).split(",") if p.strip()], \
            "--baseline"
    else:
        paths = [p for p in env.get("MODELMON_BASELINE", "").split(",") if p.strip()]
        bwhere = "MODELMON_BASELINE"
    baselines: list[Baseline] = []
    seen: dict[tuple[str, str], str] = {}
    for p in (p.strip() for p in paths):
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
                       prometheus_url=url, query_options=options, methods=methods,
                       models=models, baselines=tuple(baselines), concurrency=concurrency,
                       evaluation_delay=delay, baseline_refresh=refresh, config_file=cfg_path,
                       verdict=file.verdict)


class FileSettings(NamedTuple):
    """What a ``--config`` file sets."""

    methods: tuple[str, ...]
    models: dict[str, ModelSettings]
    verdict: VerdictSettings


def load_config_file(path: str) -> FileSettings:
    """The settings of a drift config file.

    The file::

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
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if doc is None:
        return FileSettings(DRIFT_METHODS, {}, DEFAULT_VERDICT)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a mapping with the keys models, methods and "
                          f"verdict, got {type(doc).__name__}")
    for k in doc:
        if k not in ("models", "methods", "verdict"):
            raise ConfigError(f"{path}: key {k!r}: unknown key (expected models, methods or "
                              "verdict)")

    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path}: key {key!r}: {msg}")

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

    verdict = verdict_of(doc.get("verdict"), "verdict", DEFAULT_VERDICT)
    methods = methods_of(doc["methods"], "methods") if "methods" in doc else DRIFT_METHODS
    raw_models = doc.get("models") or {}
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
    from .service import DriftQueryService, DriftService

    if cfg.prometheus_url is None:
        return DriftService(cfg.scrape, window=cfg.window, interval=cfg.interval,
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
        print(f"modelmon drift: error: --listen {cfg.host}:{cfg.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous: dict[signal.Signals, object] = {}

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
