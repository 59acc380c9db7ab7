"""``modelmon drift --prometheus-url``: settings, config file, store connection options.

The connection options are checked where they arrive: at a small loopback HTTP
(and HTTPS, with ``trustme`` certificates) server that answers like the query
API and records every request, and at the transport adapter of a
``requests.Session`` passed through the constructor. Nothing is monkeypatched.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter

from modelmon.baseline import Baseline
from modelmon.catalogue import DRIFT_METHODS
from modelmon.drift import DriftQueryService, ModelSettings, QueryOptions
from modelmon.drift.cli import (
    QUERY_DEFAULTS,
    ConfigError,
    add_arguments,
    build_service,
    load_config_file,
    resolve,
    run,
)
from modelmon.drift.promql import PromClient, QueryError, source_label
from modelmon.drift.query import promql_duration, window_queries
from modelmon.drift.verdict import DEFAULT_VERDICT, VerdictSettings
from modelmon.stats.verdict import DEFAULT_EFFECT

URL = "http://prom.example:9090"
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def write(tmp_path: Path, text: str, name: str = "drift.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ----------------------------------------------------------------- API server


class FakeAPI:
    """A loopback server answering ``/api/v1/query`` like the query API, recording each request.

    ``mode``: ``"ok"`` (an empty vector), ``"500"``, ``"401"``, ``"bad_data"`` (HTTP 400 with a
    Prometheus error body), ``"garbage"`` (not JSON), ``"matrix"`` (wrong result type),
    ``"slow"`` (answers after ``delay`` seconds).
    """

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                peer = None
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert()
                with api.lock:
                    api.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "form": form, "peer": peer})
                mode = api.mode
                if mode == "slow":
                    time.sleep(api.delay)
                code, body = 200, json.dumps(EMPTY).encode()
                if mode == "500":
                    code, body = 500, b"internal error"
                elif mode == "401":
                    code, body = 401, b"unauthorized"
                elif mode == "bad_data":
                    code, body = 400, json.dumps({"status": "error", "errorType": "bad_data",
                                                  "error": "parse error"}).encode()
                elif mode == "garbage":
                    body = b"<html>not the API</html>"
                elif mode == "matrix":
                    body = json.dumps({"status": "success", "data": {"resultType": "matrix",
                                                                     "result": []}}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and left: expected in the "slow" mode

        self.server = Server(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        scheme = "https" if context is not None else "http"
        host = "localhost" if context is not None else "127.0.0.1"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.requests = self.requests, []
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    a = FakeAPI()
    yield a
    a.close()


class PKI:
    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(root / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.server = self.ca.issue_cert("localhost", "127.0.0.1")
        self.client_ca = trustme.CA()
        client = self.client_ca.issue_cert("drift-exporter@example.org")
        self.client_cert = str(root / "client.crt")
        self.client_key = str(root / "client.key")
        client.private_key_pem.write_to_path(self.client_key)
        Path(self.client_cert).write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))

    def server_context(self, require_client_cert: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(ctx)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.client_ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------- settings


def test_query_mode_defaults():
    cfg = resolve(parse("--prometheus-url", URL), {})
    assert cfg.mode == "query" and cfg.scrape == () and cfg.prometheus_url == URL
    assert (cfg.window, cfg.interval, cfg.min_samples) == (3600.0, 60.0, 100)
    assert QUERY_DEFAULTS["window"] == "1h" and QUERY_DEFAULTS["interval"] == "1m"
    assert cfg.query_options == QueryOptions(timeout=30.0)
    assert (cfg.concurrency, cfg.evaluation_delay, cfg.baseline_refresh) == (4, 10.0, 900.0)
    assert cfg.methods == DRIFT_METHODS and cfg.models == {} and cfg.baselines == ()
    # scrape mode keeps its own defaults
    cfg = resolve(parse("--scrape", "http://a/metrics"), {})
    assert (cfg.mode, cfg.window, cfg.interval) == ("scrape", 900.0, 15.0)


def test_query_mode_settings_from_the_environment_and_flags_win(tmp_path):
    token = write(tmp_path, "tok-1\n", "token")
    env = {"MODELMON_PROMETHEUS_URL": URL, "MODELMON_WINDOW": "2h", "MODELMON_INTERVAL": "30s",
           "MODELMON_MIN_SAMPLES": "500", "MODELMON_PROMETHEUS_TIMEOUT": "5s",
           "MODELMON_PROMETHEUS_HEADER": "X-Scope-OrgID: team-a\nX-Extra:  yes ",
           "MODELMON_PROMETHEUS_BEARER_TOKEN_FILE": token,
           "MODELMON_PROMETHEUS_CONCURRENCY": "2", "MODELMON_EVALUATION_DELAY": "0",
           "MODELMON_BASELINE_REFRESH": "0s"}
    cfg = resolve(parse(), env)
    assert cfg.prometheus_url == URL
    assert (cfg.window, cfg.interval, cfg.min_samples) == (7200.0, 30.0, 500)
    opts = cfg.query_options
    assert opts is not None
    assert opts.headers == (("X-Scope-OrgID", "team-a"), ("X-Extra", "yes"))
    assert (opts.bearer_token_file, opts.timeout) == (token, 5.0)
    assert (cfg.concurrency, cfg.evaluation_delay, cfg.baseline_refresh) == (2, 0.0, 0.0)

    cfg = resolve(parse("--prometheus-url", "http://other:9090", "--window", "10m",
                        "--prometheus.header", "X-Scope-OrgID: team-b",
                        "--prometheus.timeout", "1m", "--evaluation-delay", "30s",
                        "--baseline-refresh", "1h"), env)
    assert cfg.prometheus_url == "http://other:9090"
    assert cfg.window == 600.0
    assert cfg.query_options.headers == (("X-Scope-OrgID", "team-b"),)  # type: ignore[union-attr]
    assert cfg.query_options.timeout == 30.0  # type: ignore[union-attr]  # capped at --interval
    assert cfg.evaluation_delay == 30.0
    assert cfg.baseline_refresh == 3600.0
    assert build_service(cfg).source.baseline_refresh == 3600.0


@pytest.mark.parametrize("argv, env, message", [
    (("--scrape", "http://a/m", "--prometheus-url", URL), {},
     "--scrape and --prometheus-url: choose one mode"),
    (("--prometheus-url", URL), {"MODELMON_SCRAPE": "http://a/m"},
     "MODELMON_SCRAPE and --prometheus-url: choose one mode"),
    (("--scrape", "http://a/m"), {"MODELMON_PROMETHEUS_URL": URL},
     "--scrape and MODELMON_PROMETHEUS_URL: choose one mode"),
    ((), {}, "or --prometheus-url / MODELMON_PROMETHEUS_URL for query mode"),
    (("--scrape", "http://a/m", "--config", "x.yaml"), {},
     "--config: x.yaml: cannot read"),
    (("--scrape", "http://a/m"), {"MODELMON_PROMETHEUS_HEADER": "A: b"},
     "MODELMON_PROMETHEUS_HEADER: only used in query mode"),
    (("--scrape", "http://a/m", "--prometheus.timeout", "5s"), {},
     "--prometheus.timeout: only used in query mode"),
    (("--prometheus-url", URL, "--timeout", "5s"), {},
     "--timeout: the scrape timeout is for --scrape only; in query mode use --prometheus.timeout"),
    (("--prometheus-url", "prom:9090"), {}, "--prometheus-url: expected an http:// or https://"),
    (("--prometheus-url", URL + "/?x=1"), {}, "--prometheus-url: expected a base URL without"),
    (("--prometheus-url", URL, "--window", "soon"), {}, "--window: invalid duration 'soon'"),
    (("--prometheus-url", URL, "--interval", "2h"), {}, "must not be longer than --window"),
    (("--prometheus-url", URL), {"MODELMON_PROMETHEUS_TIMEOUT": "x"},
     "MODELMON_PROMETHEUS_TIMEOUT: invalid duration 'x'"),
    (("--prometheus-url", URL, "--prometheus.concurrency", "0"), {},
     "--prometheus.concurrency: expected a whole number >= 1"),
    (("--prometheus-url", URL, "--evaluation-delay=-1s"), {},
     "--evaluation-delay: invalid duration"),
    (("--prometheus-url", URL, "--baseline-refresh", "often"), {},
     "--baseline-refresh: invalid duration 'often'"),
    (("--scrape", "http://a/m", "--baseline-refresh", "1m"), {},
     "--baseline-refresh: only used in query mode"),
    (("--prometheus-url", URL, "--prometheus.header", "X-Ok: 1", "--prometheus.header", "bad"),
     {}, "--prometheus.header (#2): expected 'Name: value'"),
    (("--prometheus-url", URL, "--prometheus.header", "Bad Name: 1"), {},
     "--prometheus.header (#1): header name 'Bad Name' is not a valid"),
    (("--prometheus-url", URL, "--prometheus.header", "A: 1", "--prometheus.header", "a: 2"), {},
     "--prometheus.header: header 'a' given more than once"),
    (("--prometheus-url", URL, "--prometheus.basic-auth-user", "u"), {},
     "--prometheus.basic-auth-user: needs --prometheus.basic-auth-password-file as well"),
    (("--prometheus-url", URL), {"MODELMON_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE": "/x"},
     "MODELMON_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE: needs --prometheus.basic-auth-user"),
    (("--prometheus-url", URL, "--prometheus.bearer-token-file", "/nonexistent/token"), {},
     "--prometheus.bearer-token-file: cannot read /nonexistent/token"),
    (("--prometheus-url", URL, "--prometheus.cert-file", "c.pem"), {},
     "--prometheus.cert-file: needs --prometheus.key-file as well"),
    (("--prometheus-url", URL, "--prometheus.ca-file", "ca.pem"), {},
     "--prometheus.ca-file: TLS options need an https:// URL in --prometheus-url"),
    (("--prometheus-url", URL, "--prometheus.insecure-skip-verify"), {},
     "--prometheus.insecure-skip-verify: TLS options need an https:// URL"),
    (("--prometheus-url", "https://p:9090"), {"MODELMON_PROMETHEUS_INSECURE_SKIP_VERIFY": "maybe"},
     "MODELMON_PROMETHEUS_INSECURE_SKIP_VERIFY: expected true or false, got 'maybe'"),
    (("--prometheus-url", "https://p:9090", "--prometheus.ca-file", "/nonexistent/ca.pem"), {},
     "--prometheus.ca-file: cannot read /nonexistent/ca.pem"),
    (("--prometheus-url", URL, "--config", "/nonexistent/drift.yaml"), {},
     "--config: /nonexistent/drift.yaml: cannot read"),
    (("--prometheus-url", URL), {"MODELMON_DRIFT_CONFIG": "/nonexistent/d.yaml"},
     "MODELMON_DRIFT_CONFIG: /nonexistent/d.yaml: cannot read"),
    (("--prometheus-url", URL, "--baseline", "/nonexistent/b.yaml"), {},
     "--baseline: /nonexistent/b.yaml: cannot read"),
])
def test_bad_settings_name_the_flag_or_variable(argv, env, message):
    with pytest.raises(ConfigError) as err:
        resolve(parse(*argv), env)
    assert message in str(err.value)


def test_secrets_never_appear_in_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve(parse("--prometheus-url", URL, "--prometheus.header", "Authorization Bearer s3cr3t"),
                {})
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve(parse("--prometheus-url", "ftp://user:pa55@prom:9090"), {})
    assert "pa55" not in str(err.value)
    token = write(tmp_path, "tok", "token")
    with pytest.raises(ConfigError, match="an Authorization header cannot be combined"):
        resolve(parse("--prometheus-url", URL, "--prometheus.header", "Authorization: Basic x",
                      "--prometheus.bearer-token-file", token), {})
    pw = write(tmp_path, "pw", "pw")
    with pytest.raises(ConfigError, match="use a bearer token or basic auth, not both"):
        resolve(parse("--prometheus-url", URL, "--prometheus.basic-auth-user", "u",
                      "--prometheus.basic-auth-password-file", pw,
                      "--prometheus.bearer-token-file", token), {})
    empty = write(tmp_path, "\n", "empty-token")
    with pytest.raises(ConfigError, match=f"--prometheus.bearer-token-file: {empty} is empty"):
        resolve(parse("--prometheus-url", URL, "--prometheus.bearer-token-file", empty), {})


def test_tls_files_are_checked(tmp_path, pki):
    not_pem = write(tmp_path, "not a certificate\n", "bad.pem")
    with pytest.raises(ConfigError, match="--prometheus.ca-file: .* is not a PEM CA bundle"):
        resolve(parse("--prometheus-url", "https://p", "--prometheus.ca-file", not_pem), {})
    with pytest.raises(ConfigError, match="--prometheus.cert-file/--prometheus.key-file: cannot "
                                          "load the client certificate"):
        resolve(parse("--prometheus-url", "https://p", "--prometheus.cert-file", not_pem,
                      "--prometheus.key-file", pki.client_key), {})
    cfg = resolve(parse("--prometheus-url", "https://p", "--prometheus.ca-file", pki.ca_file,
                        "--prometheus.cert-file", pki.client_cert,
                        "--prometheus.key-file", pki.client_key), {})
    assert cfg.query_options is not None
    assert (cfg.query_options.ca_file, cfg.query_options.cert_file,
            cfg.query_options.key_file) == (pki.ca_file, pki.client_cert, pki.client_key)


# ----------------------------------------------------------------- config file


def test_config_file_per_model_settings(tmp_path):
    path = write(tmp_path, """
methods: [psi, jensen_shannon, ks, hellinger]
models:
  loan:
    window: 2h
    min_samples: 500
    methods: [jensen_shannon, psi]
  churn:
    window: 90
  fraud:
""")
    methods, models, verdict = load_config_file(path)
    assert verdict == DEFAULT_VERDICT
    assert methods == ("psi", "jensen_shannon", "hellinger", "ks")  # catalogue order
    assert models == {"loan": ModelSettings(7200.0, 500, ("psi", "jensen_shannon")),
                      "churn": ModelSettings(window=90.0), "fraud": ModelSettings()}
    cfg = resolve(parse("--prometheus-url", URL, "--config", path), {})
    assert cfg.models == models and cfg.methods == methods and cfg.config_file == path
    svc = build_service(cfg)
    assert isinstance(svc, DriftQueryService)
    src = svc.source
    assert (src.window_of("loan"), src.min_samples_of("loan"),
            src.methods_of("loan")) == (7200.0, 500, ("psi", "jensen_shannon"))
    assert (src.window_of("fraud"), src.min_samples_of("fraud"),
            src.methods_of("fraud")) == (3600.0, 100, methods)
    # one group of queries per distinct window
    q = src.queries()
    assert q["3600s/current/feature_value"] == (
        'sum by (model, model_version, feature, le) '
        '(increase(modelmon_feature_value_bucket{model!~"churn|loan"}[3600s]))')
    assert q["7200s/previous/feature_category"] == (
        'sum by (model, model_version, feature, category) '
        '(increase(modelmon_feature_category_total{model=~"loan"}[7200s] offset 7200s))')
    assert 'model=~"churn"' in q["90s/current/predicted_class"]
    assert len(q) == 6 + 3 * 12
    assert load_config_file(write(tmp_path, "", "empty.yaml")) == (DRIFT_METHODS, {},
                                                                    DEFAULT_VERDICT)


@pytest.mark.parametrize("text, message", [
    ("modles: {}\n", "key 'modles': unknown key (expected one of scrape, prometheus_url, window"),
    ("models: {loan: {windw: 2h}}\n",
     "key 'models.loan.windw': unknown key (expected one of window, min_samples, methods, verdict)"),
    ("models: {loan: {methods: [psi, bogus]}}\n", "key 'models.loan.methods': unknown method 'bogus'"),
    ("models: {loan: {methods: []}}\n", "key 'models.loan.methods': expected a non-empty list"),
    ("models: {loan: {methods: [psi, psi]}}\n", "key 'models.loan.methods': a method is listed twice"),
    ("models: {loan: {window: soon}}\n", "key 'models.loan.window': invalid duration 'soon'"),
    ("models: {loan: {window: [1]}}\n", "key 'models.loan.window': expected a duration"),
    ("models: {loan: {min_samples: -1}}\n", "key 'models.loan.min_samples': expected a whole number"),
    ("models: {loan: {min_samples: yes}}\n", "key 'models.loan.min_samples': expected a whole number"),
    ("models: {loan: 5}\n", "key 'models.loan': expected a mapping"),
    ("models: [loan]\n", "key 'models': expected a mapping of model name to settings"),
    ("methods: chi2\n", "key 'methods': expected a non-empty list"),
    ("- a\n- b\n", "expected a mapping with keys scrape, prometheus_url, window"),
    ("models: {loan: [\n", "not valid YAML"),
    ("verdict: {metod: psi}\n", "key 'verdict.metod': unknown key (expected one of method, "
                                "effect, alpha)"),
    ("verdict: {method: chi2_pvalue}\n", "key 'verdict.method': unknown method 'chi2_pvalue'"),
    ("verdict: {method: {categorical: ks}}\n",
     "key 'verdict.method.categorical': expected one of jensen_shannon, hellinger, psi, got 'ks'"),
    ("verdict: {method: {ordinal: psi}}\n", "key 'verdict.method.ordinal': unknown key"),
    ("verdict: {effect: 0.2}\n", "key 'verdict.effect': a single number needs a single method"),
    ("verdict: {effect: {psi: -1}}\n", "key 'verdict.effect.psi': expected a number >= 0"),
    ("verdict: {effect: {w: 1}}\n", "key 'verdict.effect.w': unknown method"),
    ("verdict: {alpha: 1.5}\n", "key 'verdict.alpha': expected a probability between 0 and 1"),
    ("verdict: {alpha: yes}\n", "key 'verdict.alpha': expected a probability"),
    ("verdict: 0.01\n", "key 'verdict': expected a mapping with method, effect, alpha"),
    ("models: {loan: {verdict: {alpha: 0}}}\n", "key 'models.loan.verdict.alpha': expected a "
                                                "probability"),
])
def test_config_file_errors_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        resolve(parse("--prometheus-url", URL, "--config", path), {})
    assert str(err.value).startswith(f"--config: {path}: ")
    assert message in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve(parse("--prometheus-url", URL), {"MODELMON_DRIFT_CONFIG": path})
    assert str(err.value).startswith(f"MODELMON_DRIFT_CONFIG: {path}: ")


def test_verdict_settings_from_the_config_file_in_both_modes(tmp_path):
    path = write(tmp_path, """
verdict:
  method: {numeric: ks, categorical: psi}
  effect: {ks: 0.1}
  alpha: 0.01
models:
  loan:
    verdict: {method: hellinger, effect: 0.07}
  churn:
    verdict: {alpha: 0.001}
""")
    top = VerdictSettings(numeric="ks", categorical="psi", effect={"ks": 0.1}, alpha=0.01)
    cfg = resolve(parse("--prometheus-url", URL, "--config", path), {})
    assert cfg.verdict == top
    src = build_service(cfg).source
    loan, churn, other = src.verdict_of("loan"), src.verdict_of("churn"), src.verdict_of("x")
    assert (loan.numeric, loan.categorical, loan.floor("hellinger"), loan.floor("ks"),
            loan.alpha) == ("hellinger", "hellinger", 0.07, 0.1, 0.01)
    assert (churn.numeric, churn.categorical, churn.alpha) == ("ks", "psi", 0.001)
    assert other == top and other.floor("psi") == DEFAULT_EFFECT["psi"]
    # scrape mode takes the verdict too, and refuses the query-mode keys
    svc = build_service(resolve(parse("--scrape", "http://a/m", "--config", path), {}))
    assert svc.verdict_of("loan") == loan and svc.verdict_of("x") == top
    bad = write(tmp_path, "models: {loan: {window: 2h}}\n", "bad.yaml")
    with pytest.raises(ConfigError, match="key 'models.loan.window': only used in query mode"):
        resolve(parse("--scrape", "http://a/m", "--config", bad), {})
    # a single numeric-only method leaves the categories' method alone
    one = write(tmp_path, "verdict: {method: wasserstein_normed, effect: 0.2}\n", "one.yaml")
    v = load_config_file(one).verdict
    assert (v.numeric, v.categorical, v.floor("wasserstein_normed")) == (
        "wasserstein_normed", "jensen_shannon", 0.2)


def test_baseline_files(tmp_path):
    rng = np.random.default_rng(3)
    a = Baseline.build({"x": rng.normal(size=300)}, model="m", model_version="1", bins=4)
    b = Baseline.build({"x": rng.normal(size=300)}, model="m", model_version="2", bins=4)
    pa, pb = a.save(tmp_path / "a.yaml"), b.save(tmp_path / "b.yaml")
    cfg = resolve(parse("--prometheus-url", URL, "--baseline", str(pa), "--baseline", str(pb)), {})
    assert [x.id for x in cfg.baselines] == [a.id, b.id]
    cfg = resolve(parse("--prometheus-url", URL), {"MODELMON_BASELINE": f"{pa}, {pb}"})
    assert len(cfg.baselines) == 2
    c = a.save(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"--baseline: .*c.yaml and .*a.yaml are both for model "
                                          r"'m' version '1'"):
        resolve(parse("--prometheus-url", URL, "--baseline", str(pa), "--baseline", str(c)), {})
    bad = write(tmp_path, "schema_version: 99\n", "bad.yaml")
    with pytest.raises(ConfigError, match=f"--baseline: {re.escape(bad)}: key 'schema_version'"):
        resolve(parse("--prometheus-url", URL, "--baseline", bad), {})


# ---------------------------------------------------------- the connection


def test_headers_and_bearer_token_reach_the_store_and_the_token_is_reread(tmp_path, api):
    token = write(tmp_path, "token-1\n", "token")
    cfg = resolve(parse("--prometheus-url", api.url + "/prefix/", "--interval", "10s",
                        "--prometheus.header", "X-Scope-OrgID: team-a",
                        "--prometheus.bearer-token-file", token), {})
    svc = build_service(cfg, clock=lambda: 1_700_000_015.5)
    res = svc.evaluate_once()
    assert res.all_sources_up and res.sources_up == {api.url + "/prefix": True}
    reqs = api.take()
    assert len(reqs) == len(svc.source.queries()) == 18
    for r in reqs:
        assert r["path"] == "/prefix/api/v1/query"
        assert r["headers"]["X-Scope-OrgID"] == "team-a"
        assert r["headers"]["Authorization"] == "Bearer token-1"
        # every query at the one evaluation time: (clock - 10s delay) on the 10 s grid
        assert r["form"]["time"] == "1700000000.000"
    assert {r["form"]["query"] for r in reqs} == set(svc.source.queries().values())
    Path(token).write_text("token-2\n")  # rotated: the next evaluation uses the new one
    svc.evaluate_once()
    assert {r["headers"]["Authorization"] for r in api.take()} == {"Bearer token-2"}
    Path(token).unlink()  # unreadable: the last token is kept
    assert svc.evaluate_once().all_sources_up
    assert {r["headers"]["Authorization"] for r in api.take()} == {"Bearer token-2"}


def test_basic_auth_reaches_the_store(tmp_path, api):
    pw = write(tmp_path, "pa55word\n", "pw")
    cfg = resolve(parse("--prometheus-url", api.url, "--prometheus.basic-auth-user", "drift",
                        "--prometheus.basic-auth-password-file", pw), {})
    build_service(cfg).evaluate_once()
    want = "Basic " + base64.b64encode(b"drift:pa55word").decode()
    assert {r["headers"]["Authorization"] for r in api.take()} == {want}


def test_credentials_in_the_url_are_used_but_never_shown(api):
    url = api.url.replace("http://", "http://drift:s3cret@")
    svc = DriftQueryService(url)
    res = svc.evaluate_once()
    assert list(res.sources_up) == [api.url]
    want = "Basic " + base64.b64encode(b"drift:s3cret").decode()
    assert {r["headers"]["Authorization"] for r in api.take()} == {want}
    assert source_label(url) == api.url


def test_tls_with_a_ca_file_and_a_client_certificate(pki):
    server = FakeAPI(pki.server_context(require_client_cert=True))
    try:
        cfg = resolve(parse("--prometheus-url", server.url, "--prometheus.ca-file", pki.ca_file,
                            "--prometheus.cert-file", pki.client_cert,
                            "--prometheus.key-file", pki.client_key), {})
        assert build_service(cfg).evaluate_once().all_sources_up
        peers = {r["peer"]["subjectAltName"] for r in server.take()}
        assert peers == {(("email", "drift-exporter@example.org"),)}
        # without the client certificate the server refuses the handshake
        cfg = resolve(parse("--prometheus-url", server.url, "--prometheus.ca-file", pki.ca_file),
                      {})
        res = build_service(cfg).evaluate_once()
        assert not res.all_sources_up and set(res.query_errors) == {"connection"}
        # at most --prometheus.concurrency queries were in flight when the first one failed
        assert 1 <= res.query_errors["connection"] <= cfg.concurrency
    finally:
        server.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_verification_and_insecure_skip_verify(pki):
    server = FakeAPI(pki.server_context(require_client_cert=False))
    try:
        # the system CAs do not know the throwaway CA
        res = build_service(resolve(parse("--prometheus-url", server.url), {})).evaluate_once()
        assert not res.all_sources_up and set(res.query_errors) == {"connection"}
        assert "SSL" in res.source_errors[server.url]
        cfg = resolve(parse("--prometheus-url", server.url, "--prometheus.ca-file", pki.ca_file),
                      {})
        assert build_service(cfg).evaluate_once().all_sources_up
        cfg = resolve(parse("--prometheus-url", server.url,
                            "--prometheus.insecure-skip-verify"), {})
        assert build_service(cfg).evaluate_once().all_sources_up
    finally:
        server.close()


class RecordingAdapter(HTTPAdapter):
    """A transport that records what ``send`` was given and answers an empty vector."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,  # type: ignore[override]
             proxies=None):
        self.calls.append({"url": request.url, "timeout": timeout, "verify": verify, "cert": cert,
                           "headers": dict(request.headers), "body": request.body})
        resp = requests.Response()
        resp.status_code = 200
        resp._content = json.dumps(EMPTY).encode()
        resp.request = request
        resp.url = request.url
        return resp


def test_options_reach_the_session_passed_in(tmp_path, pki):
    session = requests.Session()
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    opts = QueryOptions(headers=(("X-Scope-OrgID", "t"),), ca_file=pki.ca_file,
                        cert_file=pki.client_cert, key_file=pki.client_key, timeout=7.0)
    client = PromClient("https://store.example/api/prom", opts, session)
    vec = client.query('sum(up{job="x"})', 1_700_000_000.25)
    assert vec.samples == ()
    [call] = adapter.calls
    assert call["url"] == "https://store.example/api/prom/api/v1/query"
    assert (call["timeout"], call["verify"], call["cert"]) == (
        7.0, pki.ca_file, (pki.client_cert, pki.client_key))
    assert call["headers"]["X-Scope-OrgID"] == "t"
    form = parse_qs(call["body"])
    assert form == {"query": ['sum(up{job="x"})'], "time": ["1700000000.250"],
                    "timeout": ["7s"]}
    assert not session.headers.get("X-Scope-OrgID")  # the session itself is left alone


@pytest.mark.parametrize("mode, reason", [
    ("500", "http_5xx"), ("401", "http_4xx"), ("bad_data", "query_error"),
    ("garbage", "bad_response"), ("matrix", "bad_response"), ("slow", "timeout"),
])
def test_failed_queries_are_typed(api, mode, reason):
    api.mode, api.delay = mode, 1.0
    client = PromClient(api.url, QueryOptions(timeout=0.3))
    with pytest.raises(QueryError) as err:
        client.query("up", 1_700_000_000)
    assert err.value.reason == reason
    svc = DriftQueryService(api.url, options=QueryOptions(timeout=0.3), concurrency=1)
    res = svc.evaluate_once()
    assert not res.all_sources_up
    # after the first failure no further query is started
    assert res.query_errors == {reason: 1}


def test_connection_refused_is_a_connection_error():
    from tests.conftest import free_port

    client = PromClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(QueryError) as err:
        client.query("up", 1_700_000_000)
    assert err.value.reason == "connection"


def test_query_builders():
    assert promql_duration(3600) == "3600s" and promql_duration(0.25) == "250ms"
    q = window_queries(90, previous=True)
    assert q["feature_value"] == ("sum by (model, model_version, feature, le) "
                                  "(increase(modelmon_feature_value_bucket[90s] offset 90s))")
    assert q["predicted_class"] == ("sum by (model, model_version, class) "
                                    "(increase(modelmon_predicted_class_total[90s] offset 90s))")
    with pytest.raises(ValueError, match="methods"):
        ModelSettings(methods=("psi", "nope"))


# ------------------------------------------------------------------ the command


def test_run_returns_2_on_bad_settings(tmp_path, capsys):
    path = write(tmp_path, "models: {loan: {windw: 1h}}\n")
    assert run(parse("--prometheus-url", URL, "--config", path)) == 2
    err = capsys.readouterr().err
    assert f"--config: {path}: key 'models.loan.windw': unknown key" in err


def test_modelmon_drift_query_mode_serves_and_stops_cleanly_on_sigterm(api):
    url = api.url.replace("http://", "http://drift:s3cret@")
    env = dict(os.environ, MODELMON_PROMETHEUS_URL=url, MODELMON_INTERVAL="1s",
               MODELMON_WINDOW="1m", PYTHONUNBUFFERED="1")
    for k in ("MODELMON_SCRAPE", "MODELMON_TIMEOUT"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelmon", "drift", "--listen", "127.0.0.1:0",
         "--evaluation-delay", "0s", "--prometheus.header", "X-Scope-OrgID: team-a"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            m = re.search(r"event=started mode=query listen=127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "no start line:\n" + "".join(lines)
        assert f"source={api.url} " in lines[-1]
        assert "store_headers=X-Scope-OrgID" in lines[-1]
        base = f"http://127.0.0.1:{port}"
        text = ""
        while time.monotonic() < deadline:
            if requests.get(base + "/-/ready", timeout=2).status_code == 200:
                text = requests.get(base + "/metrics", timeout=2).text
                if f'modelmon_drift_source_up{{source="{api.url}"}} 1.0' in text:
                    break
            time.sleep(0.05)
        assert f'modelmon_drift_source_up{{source="{api.url}"}} 1.0' in text
        assert 'modelmon_drift_query_errors_total{reason="timeout"} 0.0' in text
        assert 'modelmon_drift_skipped_total{reason="non_finite"} 0.0' in text
        assert {r["headers"]["X-Scope-OrgID"] for r in api.take()} == {"team-a"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out = proc.stdout.read()  # type: ignore[union-attr]
    assert "event=shutdown signal=SIGTERM" in out
    assert "event=stopped" in out
    assert "s3cret" not in "".join(lines) + out


# ------------------------------------------------------- scrape mode counts too


class Page:
    """A loopback /metrics page with a given status and body."""

    def __init__(self, code: int, body: str) -> None:
        page = self
        self.code, self.body = code, body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = page.body.encode()
                self.send_response(page.code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_scrape_mode_counts_failed_scrapes_and_skipped_series():
    from tests.conftest import free_port

    from modelmon.drift import DriftScrapeService

    no_baseline = ('modelmon_feature_value_bucket{model="m",model_version="1",feature="x",le="1"} 1\n'
                   'modelmon_feature_value_bucket{model="m",model_version="1",feature="x",le="+Inf"} 2\n')
    pages = [Page(200, no_baseline), Page(503, "down"), Page(404, "nope"),
             Page(200, "<html>not metrics {{</html>\n")]
    try:
        urls = [p.url for p in pages] + [f"http://127.0.0.1:{free_port()}/metrics"]
        svc = DriftScrapeService(urls, window=60, interval=15, timeout=2)
        svc.evaluate_once()
        res = svc.evaluate_once()
        assert res.query_errors == {"http_5xx": 2, "http_4xx": 2, "bad_response": 2,
                                    "connection": 2}
        assert res.skipped == {"no_baseline": 2}
        text = "".join(f.name for f in svc.registry.collect())
        assert "modelmon_drift_skipped" in text and "modelmon_drift_query_errors" in text
    finally:
        for p in pages:
            p.close()
