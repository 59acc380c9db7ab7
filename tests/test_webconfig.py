"""``--web.config.file``: parsing, and TLS + basic auth on real servers (drift exporter, uvicorn).

Certificates come from ``trustme`` (a throwaway CA), bcrypt hashes use
rounds=4 so each check takes about a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from modelmon.web import lifespan
import requests
import trustme
import uvicorn
from modelmon.drift import DriftScrapeService
from modelmon.drift.cli import ConfigError, add_arguments, resolve
from modelmon.webconfig import (
    EXEMPT_PATHS,
    BasicAuthASGI,
    TLSConfig,
    WebConfig,
    WebConfigError,
    load_web_config,
)
from prometheus_client import CollectorRegistry

from .conftest import free_port

USER, PASSWORD = "prometheus", "s3cret-pw"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


# --------------------------------------------------------------------------- fixtures


class PKI:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = trustme.CA()
        self.ca_file = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert_file = root / "server.crt"
        self.key_file = root / "server.key"
        server.private_key_pem.write_to_path(str(self.key_file))
        self.cert_file.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
        self.client_ca = trustme.CA()
        self.client_ca_file = root / "client-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))
        client = self.client_ca.issue_cert("prometheus@example.org")
        self.client_cert = root / "client.crt"
        self.client_key = root / "client.key"
        client.private_key_pem.write_to_path(str(self.client_key))
        self.client_cert.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
        self.not_pem = root / "not-a-cert.pem"
        self.not_pem.write_text("not a certificate\n")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def write(tmp_path: Path, text: str, name: str = "web.yml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def tls_block(pki: PKI, extra: str = "") -> str:
    return (f"tls_server_config:\n  cert_file: {pki.cert_file}\n  key_file: {pki.key_file}\n"
            + extra)


USERS_BLOCK = f"basic_auth_users:\n  {USER}: '{HASH}'\n"


# --------------------------------------------------------------------------- parsing


def test_valid_file_with_tls_and_users(tmp_path, pki):
    p = write(tmp_path, tls_block(pki, f"  client_auth_type: RequireAndVerifyClientCert\n"
                                       f"  client_ca_file: {pki.client_ca_file}\n"
                                       f"  min_version: TLS13\n") + USERS_BLOCK)
    cfg = load_web_config(p)
    assert cfg.tls == TLSConfig(cert_file=str(pki.cert_file), key_file=str(pki.key_file),
                                client_ca_file=str(pki.client_ca_file),
                                client_auth_type="RequireAndVerifyClientCert",
                                min_version="TLS13")
    assert dict(cfg.users) == {USER: HASH}
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    kw = cfg.uvicorn_kwargs()
    assert kw["ssl_certfile"] == str(pki.cert_file)
    assert kw["ssl_keyfile"] == str(pki.key_file)
    assert kw["ssl_ca_certs"] == str(pki.client_ca_file)
    assert kw["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_relative_paths_are_relative_to_the_file(tmp_path, pki):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "s.crt").write_bytes(pki.cert_file.read_bytes())
    (d / "s.key").write_bytes(pki.key_file.read_bytes())
    cfg = load_web_config(write(d, "tls_server_config: {cert_file: s.crt, key_file: s.key}\n"))
    assert cfg.tls is not None and cfg.tls.cert_file == str(d / "s.crt")
    assert cfg.tls.client_auth_type == "NoClientCert"
    assert cfg.ssl_context().verify_mode == ssl.CERT_NONE  # type: ignore[union-attr]
    assert not cfg.users


@pytest.mark.parametrize("text", ["", "# nothing\n", "---\n"])
def test_empty_file_means_no_tls_no_auth(tmp_path, text):
    cfg = load_web_config(write(tmp_path, text))
    assert cfg.tls is None and not cfg.users
    assert cfg.ssl_context() is None and cfg.uvicorn_kwargs() == {}
    assert cfg.authorized(None)


def test_ignored_sections_are_logged(tmp_path, caplog):
    p = write(tmp_path, "http_server_config:\n  http2: false\nheaders:\n  X-Frame-Options: deny\n"
              + USERS_BLOCK)
    with caplog.at_level("WARNING", logger="modelmon.webconfig"):
        cfg = load_web_config(p)
    assert cfg.users and cfg.tls is None
    text = caplog.text
    assert "http_server_config" in text and "headers" in text


BAD = [
    # (content given pki, key named in the message, other words expected)
    (lambda k: "tls_server_config:\n  cert_file: x.pem\n  key_file: " + str(k.key_file),
     "tls_server_config.cert_file", "not found"),
    (lambda k: tls_block(k).replace(str(k.key_file), "/nonexistent/server.key"),
     "tls_server_config.key_file", "not found"),
    (lambda k: f"tls_server_config:\n  cert_file: {k.cert_file}\n",
     "tls_server_config.key_file", "required"),
    (lambda k: tls_block(k, "  client_auth_type: Sometimes\n"),
     "tls_server_config.client_auth_type", "RequireAndVerifyClientCert"),
    (lambda k: tls_block(k, "  client_auth_type: RequireAnyClientCert\n"),
     "tls_server_config.client_auth_type", "not supported"),
    (lambda k: tls_block(k, "  client_auth_type: RequireAndVerifyClientCert\n"),
     "tls_server_config.client_ca_file", "required"),
    (lambda k: tls_block(k, f"  client_ca_file: {k.client_ca_file}\n"),
     "tls_server_config.client_ca_file", "client_auth_type"),
    (lambda k: tls_block(k, "  min_version: TLS10\n"), "tls_server_config.min_version", "TLS12"),
    (lambda k: tls_block(k, "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
     "tls_server_config.cipher_suites", "not supported"),
    (lambda k: tls_block(k).replace(str(k.key_file), str(k.client_key)),
     "tls_server_config.key_file", "private key"),
    (lambda k: tls_block(k).replace(str(k.cert_file), str(k.not_pem)),
     "tls_server_config.cert_file", "PEM certificate"),
    (lambda k: "tls_server_config: [a, b]\n", "tls_server_config", "mapping"),
    (lambda k: "tls_server_config:\n  cert_file: 42\n  key_file: y\n",
     "tls_server_config.cert_file", "42"),
    (lambda k: "basic_auth_users:\n  alice: plaintext-password\n", "basic_auth_users.alice",
     "bcrypt hash"),
    (lambda k: "basic_auth_users:\n  alice: '$1$abc$defghijklmnopqrstuvwxyz'\n",
     "basic_auth_users.alice", "bcrypt"),
    (lambda k: "basic_auth_users:\n  alice: 12345\n", "basic_auth_users.alice", "bcrypt"),
    (lambda k: "basic_auth_users:\n  - alice\n", "basic_auth_users", "mapping"),
    (lambda k: "basic_auth_users: secret\n", "basic_auth_users", "mapping"),
    (lambda k: f"basic_auth_users:\n  'a:b': '{HASH}'\n", "basic_auth_users.a:b", "':'"),
    (lambda k: "tls_config:\n  cert_file: x\n", "tls_config", "unknown key"),
    (lambda k: "- just\n- a list\n", None, "mapping"),
    (lambda k: "basic_auth_users:\n  alice: [unclosed\n", None, "YAML syntax error at line"),
]


@pytest.mark.parametrize("make, key, words", BAD)
def test_bad_files_name_the_file_and_the_key(tmp_path, pki, make, key, words):
    p = write(tmp_path, make(pki))
    with pytest.raises(WebConfigError) as ei:
        load_web_config(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: "), msg
    if key is not None:
        assert f"key {key!r}" in msg, msg
    assert words in msg, msg


def test_missing_file(tmp_path):
    with pytest.raises(WebConfigError, match=r"web\.yml: not found"):
        load_web_config(tmp_path / "web.yml")


def test_2a_and_2y_hashes_are_accepted(tmp_path):
    y = HASH.replace("$2b$", "$2y$", 1)
    a = HASH.replace("$2b$", "$2a$", 1)
    cfg = load_web_config(write(tmp_path, f"basic_auth_users:\n  y: '{y}'\n  a: '{a}'\n"))
    assert cfg.authorized(basic("y", PASSWORD)) and cfg.authorized(basic("a", PASSWORD))


# --------------------------------------------------------------------------- authorized()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class CountingCheckpw:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        with self.lock:
            self.calls += 1
        return bcrypt.checkpw(password, hashed)


def test_success_is_cached_and_failures_are_not():
    spy = CountingCheckpw()
    cfg = WebConfig(tls=None, users={USER: HASH}, checkpw=spy)
    assert cfg.authorized(basic(USER, PASSWORD))
    assert spy.calls == 1
    for _ in range(5):
        assert cfg.authorized(basic(USER, PASSWORD))
    assert spy.calls == 1  # cached: bcrypt not run again
    assert cfg.authorized_cached(basic(USER, PASSWORD)) is True
    for i in range(3):
        assert not cfg.authorized(basic(USER, "wrong"))
        assert spy.calls == 2 + i  # every failure pays bcrypt again
    assert cfg.authorized_cached(basic(USER, "wrong")) is None
    # an unknown user is checked against a real hash too (same timing), and fails
    assert not cfg.authorized(basic("mallory", PASSWORD))
    assert spy.calls == 5
    # no, or malformed, credentials fail without bcrypt
    for header in (None, "", "Bearer abc", "Basic !!!", "Basic " + "YWxpY2U=", "Basic"):
        assert not cfg.authorized(header)
    assert spy.calls == 5


def test_cache_is_bounded_and_keyed_by_hash():
    users = {f"u{i}": HASH for i in range(150)}
    spy = CountingCheckpw()
    cfg = WebConfig(tls=None, users=users, checkpw=spy)
    for u in users:
        assert cfg.authorized(basic(u, PASSWORD))
    assert len(cfg._cache) == 100
    assert cfg.authorized(basic("u149", PASSWORD)) and spy.calls == 150  # recent: cached
    assert cfg.authorized(basic("u0", PASSWORD)) and spy.calls == 151   # evicted: checked
    # a changed hash for the same user is not served from the cache
    other = WebConfig(tls=None, users={USER: bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()})
    assert not other.authorized(basic(USER, PASSWORD))


def test_authorized_is_thread_safe():
    spy = CountingCheckpw()
    cfg = WebConfig(tls=None, users={USER: HASH}, checkpw=spy)
    results: list[bool] = []

    def worker(i: int) -> None:
        pw = PASSWORD if i % 2 == 0 else "nope"
        for _ in range(20):
            results.append(cfg.authorized(basic(USER, pw)) == (i % 2 == 0))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160 and all(results)


def test_overlong_password_is_refused_not_raised():
    cfg = WebConfig(tls=None, users={USER: HASH})
    assert not cfg.authorized(basic(USER, "x" * 100))


# --------------------------------------------------------------------------- drift exporter


@pytest.fixture
def drift() -> Iterator:
    started: list[DriftScrapeService] = []

    def start(web_config: WebConfig | None) -> str:
        svc = DriftScrapeService([f"http://127.0.0.1:{free_port()}/metrics"], window=60, interval=5,
                           registry=CollectorRegistry())
        started.append(svc)
        host, port = svc.serve("127.0.0.1", 0, web_config=web_config)
        return f"{host}:{port}"

    yield start
    for svc in started:
        svc.stop()


def tls_auth_config(tmp_path: Path, pki: PKI, extra: str = "", users: bool = True) -> WebConfig:
    return load_web_config(write(tmp_path, tls_block(pki, extra) + (USERS_BLOCK if users else "")))


def assert_unauthorized(r: requests.Response) -> None:
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="modelmon"'
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["error"] == "unauthorized" and doc["message"]


def assert_refused_plain_http(addr: str) -> None:
    try:
        r = requests.get(f"http://{addr}/metrics", auth=(USER, PASSWORD), timeout=5)
    except requests.ConnectionError:
        return
    assert r.status_code != 200  # pragma: no cover - servers may answer 400 instead


def test_drift_exporter_tls_and_basic_auth(tmp_path, pki, drift):
    addr = drift(tls_auth_config(tmp_path, pki))
    url = f"https://{addr}"
    ca = str(pki.ca_file)
    assert_unauthorized(requests.get(url + "/metrics", auth=(USER, "wrong"), verify=ca, timeout=5))
    assert_unauthorized(requests.get(url + "/metrics", verify=ca, timeout=5))
    assert_unauthorized(requests.get(url + "/nope", verify=ca, timeout=5))
    assert_unauthorized(requests.post(url + "/metrics", verify=ca, timeout=5))
    assert_refused_plain_http(addr)
    r = requests.get(url + "/metrics", auth=(USER, PASSWORD), verify=ca, timeout=5)
    assert r.status_code == 200
    assert "modelmon_drift_evaluations_total" in r.text
    h = requests.head(url + "/metrics", auth=(USER, PASSWORD), verify=ca, timeout=5)
    assert h.status_code == 200
    r = requests.get(url + "/-/healthy", verify=ca, timeout=5)
    assert r.status_code == 200 and r.text == "OK\n"
    r = requests.get(url + "/-/ready", verify=ca, timeout=5)
    assert r.status_code == 503  # exempt from auth; not ready: no evaluation yet
    # the server is untrusted without the CA
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/-/healthy", timeout=5)


def test_drift_exporter_stays_responsive_while_a_client_stalls_the_handshake(tmp_path, pki,
                                                                             drift):
    addr = drift(tls_auth_config(tmp_path, pki))
    host, port = addr.split(":")
    with socket.create_connection((host, int(port))):  # connects, sends nothing
        # answered within the request's timeout (it raises otherwise), not after the stall
        r = requests.get(f"https://{addr}/-/healthy", verify=str(pki.ca_file), timeout=2)
        assert r.status_code == 200


def test_drift_exporter_basic_auth_only(tmp_path, drift):
    addr = drift(load_web_config(write(tmp_path, USERS_BLOCK)))
    url = f"http://{addr}"
    assert_unauthorized(requests.get(url + "/metrics", auth=(USER, "wrong"), timeout=5))
    assert_unauthorized(requests.get(url + "/metrics", timeout=5))
    r = requests.get(url + "/metrics", auth=(USER, PASSWORD), timeout=5)
    assert r.status_code == 200 and "modelmon_drift_evaluations_total" in r.text
    assert requests.get(url + "/-/healthy", timeout=5).status_code == 200


def test_drift_exporter_tls_only(tmp_path, pki, drift):
    addr = drift(tls_auth_config(tmp_path, pki, users=False))
    r = requests.get(f"https://{addr}/metrics", verify=str(pki.ca_file), timeout=5)
    assert r.status_code == 200 and "modelmon_drift_evaluations_total" in r.text
    assert_refused_plain_http(addr)


def test_drift_exporter_without_web_config_is_unchanged(drift):
    addr = drift(None)
    r = requests.get(f"http://{addr}/metrics", timeout=5)
    assert r.status_code == 200


def test_drift_exporter_client_certificate_required(tmp_path, pki, drift):
    cfg = tls_auth_config(tmp_path, pki, "  client_auth_type: RequireAndVerifyClientCert\n"
                                         f"  client_ca_file: {pki.client_ca_file}\n")
    addr = drift(cfg)
    url = f"https://{addr}/metrics"
    ca = str(pki.ca_file)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, auth=(USER, PASSWORD), verify=ca, timeout=5)
    r = requests.get(url, auth=(USER, PASSWORD), verify=ca, timeout=5,
                     cert=(str(pki.client_cert), str(pki.client_key)))
    assert r.status_code == 200 and "modelmon_drift_evaluations_total" in r.text
    # a certificate from another CA is refused too
    other = trustme.CA().issue_cert("someone@example.org")
    other.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "other.pem"))
    with pytest.raises(requests.ConnectionError):
        requests.get(url, auth=(USER, PASSWORD), verify=ca, timeout=5,
                     cert=str(tmp_path / "other.pem"))


# --------------------------------------------------------------------------- CLI


def parse(*argv: str):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def test_cli_flag_and_environment(tmp_path):
    good = write(tmp_path, USERS_BLOCK)
    bad = write(tmp_path, "basic_auth_users:\n  alice: nope\n", "bad.yml")
    scrape = ("--scrape", "http://a:8000/metrics")
    assert resolve(parse(*scrape), {}).web_config is None
    cfg = resolve(parse(*scrape, "--web.config.file", str(good)), {})
    assert cfg.web_config is not None and USER in cfg.web_config.users
    cfg = resolve(parse(*scrape), {"MODELMON_WEB_CONFIG_FILE": str(good)})
    assert cfg.web_config is not None and USER in cfg.web_config.users
    # the flag wins over the variable
    cfg = resolve(parse(*scrape, "--web.config.file", str(good)),
                  {"MODELMON_WEB_CONFIG_FILE": str(bad)})
    assert cfg.web_config is not None
    with pytest.raises(ConfigError, match=r"^--web\.config\.file: .*bad\.yml: key "
                                          r"'basic_auth_users\.alice'"):
        resolve(parse(*scrape, "--web.config.file", str(bad)), {})
    with pytest.raises(ConfigError, match=r"^MODELMON_WEB_CONFIG_FILE: .*bad\.yml"):
        resolve(parse(*scrape), {"MODELMON_WEB_CONFIG_FILE": str(bad)})


# --------------------------------------------------------------------------- ASGI + uvicorn


async def tiny_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = f"hello {scope['path']}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def uvicorn_server() -> Iterator:
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(cfg: WebConfig) -> str:
        port = free_port()
        config = uvicorn.Config(BasicAuthASGI(tiny_app, cfg), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="on", **cfg.uvicorn_kwargs())
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        running.append((server, t))
        deadline = time.monotonic() + 10
        while not server.started:
            assert t.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"127.0.0.1:{port}"

    yield start
    gc.collect()  # drop responses still holding keep-alive connections (uvicorn waits for them)
    for server, t in running:
        server.should_exit = True
        t.join(10)


def test_asgi_middleware_tls_and_basic_auth(tmp_path, pki, uvicorn_server):
    spy = CountingCheckpw()
    loaded = tls_auth_config(tmp_path, pki)
    cfg = WebConfig(tls=loaded.tls, users=loaded.users, checkpw=spy)
    addr = uvicorn_server(cfg)
    url = f"https://{addr}"
    ca = str(pki.ca_file)
    assert_unauthorized(requests.get(url + "/metrics", auth=(USER, "wrong"), verify=ca, timeout=5))
    assert_unauthorized(requests.get(url + "/metrics", verify=ca, timeout=5))
    assert_refused_plain_http(addr)
    for _ in range(3):
        r = requests.get(url + "/metrics", auth=(USER, PASSWORD), verify=ca, timeout=5)
        assert r.status_code == 200 and r.text == "hello /metrics\n"
    assert spy.calls == 2  # the wrong password and the first good request; then cached
    for path in EXEMPT_PATHS:
        r = requests.get(url + path, verify=ca, timeout=5)
        assert r.status_code == 200 and r.text == f"hello {path}\n"


def test_asgi_middleware_auth_only(tmp_path, uvicorn_server):
    addr = uvicorn_server(load_web_config(write(tmp_path, USERS_BLOCK)))
    url = f"http://{addr}"
    r = requests.get(url + "/x", auth=(USER, "wrong"), timeout=5)
    assert_unauthorized(r)
    assert json.loads(r.content)["error"] == "unauthorized"
    assert_unauthorized(requests.get(url + "/x", timeout=5))
    assert requests.get(url + "/x", auth=(USER, PASSWORD), timeout=5).text == "hello /x\n"
    assert requests.get(url + "/-/ready", timeout=5).status_code == 200


def test_asgi_middleware_client_certificate_required(tmp_path, pki, uvicorn_server):
    cfg = tls_auth_config(tmp_path, pki, "  client_auth_type: RequireAndVerifyClientCert\n"
                                         f"  client_ca_file: {pki.client_ca_file}\n"
                                         "  min_version: TLS13\n")
    addr = uvicorn_server(cfg)
    url = f"https://{addr}/x"
    ca = str(pki.ca_file)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, auth=(USER, PASSWORD), verify=ca, timeout=5)
    r = requests.get(url, auth=(USER, PASSWORD), verify=ca, timeout=5,
                     cert=(str(pki.client_cert), str(pki.client_key)))
    assert r.status_code == 200


def test_asgi_middleware_min_version_is_applied(tmp_path, pki, uvicorn_server):
    addr = uvicorn_server(tls_auth_config(tmp_path, pki, "  min_version: TLS13\n", users=False))
    host, port = addr.split(":")
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    ctx13 = ssl.create_default_context(cafile=str(pki.ca_file))
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            ctx13.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.version() == "TLSv1.3"


def test_asgi_middleware_without_users_passes_everything():
    calls: list[str] = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    mw = BasicAuthASGI(app, WebConfig(tls=None, users={}))
    asyncio.run(mw({"type": "http", "path": "/x", "headers": []}, None, None))  # type: ignore[arg-type]
    mw = BasicAuthASGI(app, WebConfig(tls=None, users={USER: HASH}))
    asyncio.run(mw({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert calls == ["http", "lifespan"]

    sent: list[dict] = []

    async def send(msg):
        sent.append(msg)

    asyncio.run(mw({"type": "websocket", "path": "/ws", "headers": []}, None, send))  # type: ignore[arg-type]
    assert calls == ["http", "lifespan"] and sent == [{"type": "websocket.close", "code": 1008}]


def test_a_plaintext_password_in_place_of_a_hash_is_not_echoed(tmp_path):
    p = write(tmp_path, "basic_auth_users:\n  alice: hunter2-plaintext\n")
    with pytest.raises(WebConfigError) as ei:
        load_web_config(p)
    assert "hunter2" not in str(ei.value)
    assert "a string of 17 characters" in str(ei.value)
