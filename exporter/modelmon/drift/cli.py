"""``modelmon drift``: the drift exporter's command line.

Every flag can also be set through an environment variable ``MODELMON_<FLAG>``
(``MODELMON_SCRAPE`` takes comma-separated URLs); a flag given on the command
line wins over the variable. ``--web.config.file`` (variable
``MODELMON_WEB_CONFIG_FILE``) turns on TLS and basic auth, see ``docs/security.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

from ..webconfig import WebConfig, WebConfigError, load_web_config
from .config import format_duration, parse_duration, parse_listen

__all__ = ["add_arguments", "run", "resolve", "DriftConfig", "ConfigError"]

log = logging.getLogger("modelmon.drift")

DEFAULTS = {
    "window": "15m",
    "interval": "15s",
    "min_samples": "100",
    "listen": "0.0.0.0:10381",
    "timeout": "10s",
}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the flag and its variable."""


@dataclass(frozen=True)
class DriftConfig:
    scrape: tuple[str, ...]
    window: float
    interval: float
    min_samples: int
    host: str
    port: int
    timeout: float
    web_config: WebConfig | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``modelmon drift`` flags to ``parser``."""
    parser.description = (
        "Drift exporter in scrape mode: reads /metrics of the monitored replicas every "
        "--interval, sums them, and exports drift scores of the last --window against the "
        "baseline and against the window before it.")
    parser.add_argument("--scrape", action="append", metavar="URL", default=None,
                        help="/metrics URL of a monitored replica; repeat for each replica "
                             "(their counts are summed). Env MODELMON_SCRAPE, comma-separated.")
    parser.add_argument("--window", metavar="DURATION", default=None,
                        help=f"window length, e.g. 15m, 1h, 90 (seconds) "
                             f"(default {DEFAULTS['window']}; env MODELMON_WINDOW)")
    parser.add_argument("--interval", metavar="DURATION", default=None,
                        help=f"time between evaluations (default {DEFAULTS['interval']}; "
                             "env MODELMON_INTERVAL)")
    parser.add_argument("--min-samples", metavar="N", default=None,
                        help=f"export no scores for a feature whose window holds fewer samples "
                             f"(default {DEFAULTS['min_samples']}; env MODELMON_MIN_SAMPLES)")
    parser.add_argument("--listen", metavar="HOST:PORT", default=None,
                        help=f"address of /metrics, /-/healthy and /-/ready "
                             f"(default {DEFAULTS['listen']}; env MODELMON_LISTEN)")
    parser.add_argument("--timeout", metavar="DURATION", default=None,
                        help=f"timeout of each scrape (default {DEFAULTS['timeout']}, at most "
                             "--interval; env MODELMON_TIMEOUT)")
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="PATH",
                        default=None,
                        help="YAML file (Prometheus exporter-toolkit format) that turns on TLS "
                             "and/or basic auth; /-/healthy and /-/ready stay open "
                             "(default: none, plain HTTP without auth; env "
                             "MODELMON_WEB_CONFIG_FILE)")


def _pick(args: argparse.Namespace, env: Mapping[str, str], attr: str) -> tuple[str, str]:
    """(value, where) of a setting: the flag, else the variable, else the default."""
    flag = "--" + attr.replace("_", "-")
    var = "MODELMON_" + attr.upper()
    v = getattr(args, attr, None)
    if v is not None:
        return str(v), flag
    if env.get(var, "").strip():
        return env[var].strip(), var
    return DEFAULTS[attr], f"{flag} (default)"


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
    if not urls:
        raise ConfigError("--scrape / MODELMON_SCRAPE: expected at least one /metrics URL "
                          "(e.g. --scrape http://model-0:8000/metrics)")
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: expected http:// or https:// URLs, got {u!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"{where}: a URL is given twice (its counts would be summed twice)")

    def duration(attr: str) -> float:
        text, src = _pick(args, env, attr)
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"{src}: {exc}") from None

    window = duration("window")
    interval = duration("interval")
    timeout = duration("timeout")
    if interval > window:
        raise ConfigError(f"--interval ({format_duration(interval)}) must not be longer than "
                          f"--window ({format_duration(window)})")
    text, src = _pick(args, env, "min_samples")
    try:
        min_samples = int(text)
        if min_samples < 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{src}: expected a whole number >= 0, got {text!r}") from None
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
    return DriftConfig(scrape=tuple(urls), window=window, interval=interval,
                       min_samples=min_samples, host=host, port=port,
                       timeout=min(timeout, interval), web_config=web_config)


def run(args: argparse.Namespace) -> int:
    """Run the exporter until SIGTERM or SIGINT; 0 on a clean stop, 2 on bad settings."""
    from .service import DriftService

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="ts=%(asctime)s level=%(levelname)s logger=%(name)s "
                                   "msg=%(message)s")
    try:
        cfg = resolve(args)
    except ConfigError as exc:
        print(f"modelmon drift: error: {exc}", file=sys.stderr)
        return 2
    svc = DriftService(cfg.scrape, window=cfg.window, interval=cfg.interval,
                       min_samples=cfg.min_samples, timeout=cfg.timeout)
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
    log.info("event=started listen=%s:%d sources=%d window=%s interval=%s min_samples=%d "
             "tls=%s basic_auth=%s",
             host, port, len(cfg.scrape), format_duration(cfg.window),
             format_duration(cfg.interval), cfg.min_samples,
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
