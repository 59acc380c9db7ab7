"""Opt-in TLS and basic auth from a ``--web.config.file`` (the exporter-toolkit format).

modelmon reads a subset of the YAML file that Prometheus exporters accept
through ``--web.config.file`` (github.com/prometheus/exporter-toolkit), so the
same file can serve node_exporter and modelmon::

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12             # TLS12 (default) or TLS13; max_version likewise
    basic_auth_users:
      prometheus: $2b$12$...         # bcrypt hash of the password

``http_server_config`` and ``headers`` are accepted and ignored with a logged
warning (so a file shared with other exporters loads); any other top-level key,
and any ``tls_server_config`` key outside the subset above, is an error.

Every endpoint except :data:`EXEMPT_PATHS` (the health and readiness probes,
which kubelets call without credentials) needs basic auth when
``basic_auth_users`` is set.

Examples
--------
>>> import base64, bcrypt
>>> h = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
>>> cfg = WebConfig(tls=None, users={"prometheus": h})
>>> cfg.authorized("Basic " + base64.b64encode(b"prometheus:s3cret").decode())
True
>>> cfg.authorized("Basic " + base64.b64encode(b"prometheus:wrong").decode())
False
>>> cfg.authorized(None)
False
>>> WebConfig(tls=None, users={}).authorized(None)   # no users: no auth
True
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import logging
import os
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bcrypt
import yaml

__all__ = [
    "EXEMPT_PATHS",
    "BasicAuthASGI",
    "TLSConfig",
    "WebConfig",
    "WebConfigError",
    "load_web_config",
]

log = logging.getLogger("modelmon.webconfig")

#: Paths served without credentials even when ``basic_auth_users`` is set.
EXEMPT_PATHS: tuple[str, ...] = ("/-/healthy", "/-/ready")

#: Value of the ``WWW-Authenticate`` header of a 401.
WWW_AUTHENTICATE = 'Basic realm="modelmon"'

CLIENT_AUTH_TYPES: dict[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    # Python's ssl cannot ask for a certificate without verifying it; modelmon never
    # reads the client's identity, so not asking at all lets in the same clients.
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNSUPPORTED_CLIENT_AUTH_TYPES = ("RequireAnyClientCert", "RequireClientCert")
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
            "max_version")
IGNORED_TOP_LEVEL = ("http_server_config", "headers")
TOP_LEVEL = ("tls_server_config", "basic_auth_users") + IGNORED_TOP_LEVEL

_BCRYPT_RE = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_CACHE_SIZE = 100  # as exporter-toolkit


class WebConfigError(ValueError):
    """A web config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class TLSConfig:
    """The ``tls_server_config`` section.

    Attributes
    ----------
    cert_file, key_file : str
        PEM server certificate (chain) and its private key (absolute paths).
    client_ca_file : str or None
        PEM CAs that client certificates are verified against.
    client_auth_type : str
        ``NoClientCert`` (default), ``RequestClientCert`` (served like
        ``NoClientCert``), ``VerifyClientCertIfGiven`` or
        ``RequireAndVerifyClientCert``.
    min_version, max_version : str or None
        ``TLS12`` or ``TLS13``; the minimum defaults to ``TLS12``, no maximum.
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str | None = None

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return CLIENT_AUTH_TYPES[self.client_auth_type]

    def apply_versions(self, ctx: ssl.SSLContext) -> ssl.SSLContext:
        """Set the minimum and maximum protocol versions on ``ctx``; returns ``ctx``."""
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version is not None:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        return ctx

    def ssl_context(self) -> ssl.SSLContext:
        """A new server-side :class:`ssl.SSLContext` (raises ``ssl.SSLError``/``OSError``)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=self.client_ca_file)
        ctx.verify_mode = self.verify_mode
        return self.apply_versions(ctx)


@dataclass(frozen=True)
class WebConfig:
    """TLS and basic-auth settings; both optional (``WebConfig(None, {})`` allows everything).

    Attributes
    ----------
    tls : TLSConfig or None
        Serve HTTPS with these settings; plain HTTP when None.
    users : mapping of str to str
        Username to bcrypt hash; when empty no credentials are needed.
    checkpw : callable
        ``checkpw(password, hash) -> bool``; :func:`bcrypt.checkpw` (a seam for tests).

    Notes
    -----
    A successful check is cached (bounded LRU of 100 entries keyed by the
    SHA-256 of user, password and hash) so that bcrypt's deliberate slowness
    (~100 ms at cost 10-12) is paid once per credential, not per scrape, as
    exporter-toolkit does. Failed checks are not cached, and bcrypt runs one at
    a time, which bounds the CPU a password-guessing client can take.
    """

    tls: TLSConfig | None
    users: Mapping[str, str] = field(default_factory=dict)
    checkpw: Callable[[bytes, bytes], bool] = field(default=bcrypt.checkpw, compare=False,
                                                    repr=False)
    _cache: OrderedDict[bytes, None] = field(default_factory=OrderedDict, init=False,
                                             compare=False, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                        compare=False, repr=False)
    _bcrypt_lock: threading.Lock = field(default_factory=threading.Lock, init=False,
                                         compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", MappingProxyType(dict(self.users)))

    # -- TLS ------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """A new server-side context, or None when TLS is not configured."""
        return self.tls.ssl_context() if self.tls is not None else None

    def uvicorn_kwargs(self) -> dict[str, object]:
        """Keyword arguments for :class:`uvicorn.Config` that serve TLS as configured.

        ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs`` and ``ssl_ca_certs``,
        plus ``ssl_context_factory`` (which sets ``min_version``/``max_version``)
        when this uvicorn has it; ``{}`` when TLS is not configured.
        """
        tls = self.tls
        if tls is None:
            return {}
        kw: dict[str, object] = {
            "ssl_certfile": tls.cert_file,
            "ssl_keyfile": tls.key_file,
            "ssl_cert_reqs": int(tls.verify_mode),
            "ssl_ca_certs": tls.client_ca_file,
            "ssl_version": int(ssl.PROTOCOL_TLS_SERVER),
        }
        import uvicorn

        if "ssl_context_factory" in inspect.signature(uvicorn.Config).parameters:
            def factory(config: object, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
                return tls.apply_versions(default())

            kw["ssl_context_factory"] = factory
        elif tls.min_version != "TLS12" or tls.max_version is not None:
            raise WebConfigError("tls_server_config.min_version/max_version: this uvicorn "
                                 f"({uvicorn.__version__}) has no ssl_context_factory; "
                                 "upgrade uvicorn or remove the keys")
        return kw

    # -- basic auth -----------------------------------------------------------------------

    @staticmethod
    def _credentials(header: str | None) -> tuple[str, str] | None:
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None

    @staticmethod
    def _key(user: str, password: str, hashed: str) -> bytes:
        h = hashlib.sha256()
        for part in (user, password, hashed):
            b = part.encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "big"))
            h.update(b)
        return h.digest()

    def _cached(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = self._key(user, password, hashed)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
        return False

    def authorized_cached(self, authorization_header: str | None) -> bool | None:
        """True/False when the answer needs no bcrypt, None when :meth:`authorized` must run.

        Lets an event loop answer cached and missing credentials inline and send
        only the slow checks to a thread.
        """
        if not self.users:
            return True
        creds = self._credentials(authorization_header)
        if creds is None:
            return False
        return True if self._cached(*creds) else None

    def authorized(self, authorization_header: str | None) -> bool:
        """Whether an ``Authorization`` header value grants access.

        True when no users are configured; otherwise the header must be
        ``Basic base64(user:password)`` of a configured user. Thread-safe.
        """
        if not self.users:
            return True
        creds = self._credentials(authorization_header)
        if creds is None:
            return False
        user, password = creds
        if self._cached(user, password):
            return True
        hashed = self.users.get(user)
        valid_user = hashed is not None
        if hashed is None:
            # check against a real hash anyway so that unknown users take as long
            hashed = next(iter(self.users.values()))
        try:
            with self._bcrypt_lock:
                ok = bool(self.checkpw(password.encode("utf-8", "surrogatepass"),
                                       hashed.encode("ascii")))
        except ValueError:  # e.g. a password longer than bcrypt's 72 bytes
            ok = False
        ok = ok and valid_user
        if ok:
            key = self._key(user, password, hashed)
            with self._cache_lock:
                self._cache[key] = None
                self._cache.move_to_end(key)
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return ok


# -- loading ----------------------------------------------------------------------------


def _file(name: str, key: str, value: object, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebConfigError(f"{name}: key {key!r}: expected a path to a readable file, "
                             f"got {value!r}")
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        why = "not found"
    elif not p.is_file():
        why = "not a file"
    elif not os.access(p, os.R_OK):
        why = "not readable"
    else:
        return str(p)
    raise WebConfigError(f"{name}: key {key!r}: expected a path to a readable file, "
                         f"got {value!r} ({why})")


def _choice(name: str, key: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise WebConfigError(f"{name}: key {key!r}: expected one of {', '.join(choices)}, "
                             f"got {value!r}")
    return value


def _tls(name: str, doc: object, base: Path) -> TLSConfig:
    sec = "tls_server_config"
    if not isinstance(doc, dict):
        raise WebConfigError(f"{name}: key {sec!r}: expected a mapping with cert_file and "
                             f"key_file, got {doc!r}")
    unknown = sorted(str(k) for k in doc if k not in TLS_KEYS)
    if unknown:
        raise WebConfigError(f"{name}: key {sec + '.' + unknown[0]!r}: not supported by "
                             f"modelmon (unknown keys: {', '.join(unknown)}; supported: "
                             f"{', '.join(TLS_KEYS)})")
    for k in ("cert_file", "key_file"):
        if doc.get(k) is None:
            raise WebConfigError(f"{name}: key {sec + '.' + k!r}: expected a path to a "
                                 "readable file, got nothing (required with tls_server_config)")
    cert = _file(name, f"{sec}.cert_file", doc["cert_file"], base)
    key = _file(name, f"{sec}.key_file", doc["key_file"], base)
    auth_key = f"{sec}.client_auth_type"
    auth = doc.get("client_auth_type")
    if auth is None or auth == "":
        auth = "NoClientCert"
    if auth in UNSUPPORTED_CLIENT_AUTH_TYPES:
        raise WebConfigError(f"{name}: key {auth_key!r}: {auth} is not supported (Python's ssl "
                             "cannot require a client certificate without verifying it); "
                             "use RequireAndVerifyClientCert with client_ca_file")
    auth = _choice(name, auth_key, auth, tuple(CLIENT_AUTH_TYPES))
    ca_key = f"{sec}.client_ca_file"
    ca = doc.get("client_ca_file")
    if ca is not None and ca != "":
        ca = _file(name, ca_key, ca, base)
        if auth == "NoClientCert":
            raise WebConfigError(f"{name}: key {ca_key!r}: set without a client_auth_type that "
                                 "verifies client certificates (expected client_auth_type "
                                 "VerifyClientCertIfGiven or RequireAndVerifyClientCert)")
    else:
        ca = None
        if CLIENT_AUTH_TYPES[auth] != ssl.CERT_NONE:
            raise WebConfigError(f"{name}: key {ca_key!r}: expected a path to a readable file "
                                 f"(required with client_auth_type {auth}), got nothing")
    lo = doc.get("min_version")
    lo = "TLS12" if lo is None else _choice(name, f"{sec}.min_version", lo, tuple(TLS_VERSIONS))
    hi = doc.get("max_version")
    if hi is not None:
        hi = _choice(name, f"{sec}.max_version", hi, tuple(TLS_VERSIONS))
        if TLS_VERSIONS[hi] < TLS_VERSIONS[lo]:
            raise WebConfigError(f"{name}: key {sec + '.max_version'!r}: expected a version >= "
                                 f"min_version {lo}, got {hi!r}")
    tls = TLSConfig(cert_file=cert, key_file=key, client_ca_file=ca, client_auth_type=auth,
                    min_version=lo, max_version=hi)
    _check_loads(name, tls, doc)
    return tls


def _check_loads(name: str, tls: TLSConfig, doc: Mapping[str, Any]) -> None:
    """Build the context once so a bad PEM is reported at start-up, naming its key."""
    sec = "tls_server_config"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        text = Path(tls.cert_file).read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in text:
            k, v, what = "cert_file", doc["cert_file"], "a PEM certificate"
        elif "KEY_VALUES_MISMATCH" in str(exc) or "values mismatch" in str(exc):
            k, v, what = "key_file", doc["key_file"], "the private key of cert_file"
        else:
            k, v, what = "key_file", doc["key_file"], "an unencrypted PEM private key"
        raise WebConfigError(f"{name}: key {sec + '.' + k!r}: expected {what}, got {v!r} "
                             f"({exc})") from None
    if tls.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise WebConfigError(f"{name}: key {sec + '.client_ca_file'!r}: expected PEM CA "
                                 f"certificates, got {doc['client_ca_file']!r} ({exc})") from None


def _users(name: str, doc: object) -> dict[str, str]:
    sec = "basic_auth_users"
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise WebConfigError(f"{name}: key {sec!r}: expected a mapping of username to bcrypt "
                             f"hash, got {doc!r}")
    users: dict[str, str] = {}
    for user, hashed in doc.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise WebConfigError(f"{name}: key {sec + '.' + str(user)!r}: expected a non-empty "
                                 f"username without ':', got {user!r}")
        k = f"{sec}.{user}"
        if not isinstance(hashed, str) or not _BCRYPT_RE.match(hashed.strip()):
            # the value is not shown: it may well be the password itself
            got = (f"a string of {len(hashed)} characters" if isinstance(hashed, str)
                   else type(hashed).__name__)
            raise WebConfigError(
                f"{name}: key {k!r}: expected a bcrypt hash ($2a$, $2b$ or $2y$, 60 "
                f"characters; make one with: python -c \"import bcrypt; print(bcrypt.hashpw("
                f"b'secret', bcrypt.gensalt()).decode())\"), got {got} (not shown)")
        users[user] = hashed.strip()
    return users


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read a ``--web.config.file``; :class:`WebConfigError` names the file and the key.

    Parameters
    ----------
    path : str or path-like
        The YAML file. Relative paths inside it are relative to its directory.
        An empty file means no TLS and no auth.

    Returns
    -------
    WebConfig
    """
    name = os.fspath(path)
    p = Path(name)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WebConfigError(f"{name}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"{name}: cannot be read: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise WebConfigError(f"{name}: YAML syntax error{where}: {problem}") from None
    if doc is None:
        return WebConfig(tls=None, users={})
    if not isinstance(doc, dict):
        raise WebConfigError(f"{name}: expected a mapping with keys {', '.join(TOP_LEVEL)}, "
                             f"got {type(doc).__name__}")
    unknown = sorted(str(k) for k in doc if k not in TOP_LEVEL)
    if unknown:
        raise WebConfigError(f"{name}: unknown key {unknown[0]!r} (all unknown: "
                             f"{', '.join(unknown)}; expected {', '.join(TOP_LEVEL)})")
    for k in IGNORED_TOP_LEVEL:
        if doc.get(k) is not None:
            log.warning("event=web_config_key_ignored file=%s key=%s reason=%r", name, k,
                        "not supported by modelmon")
    base = p.resolve().parent
    tls = _tls(name, doc["tls_server_config"], base) if doc.get(
        "tls_server_config") is not None else None
    return WebConfig(tls=tls, users=_users(name, doc.get("basic_auth_users")))


# -- ASGI -------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def unauthorized_body(message: str) -> bytes:
    """The JSON body of a 401."""
    return json.dumps({"error": "unauthorized", "message": message}).encode() + b"\n"


def unauthorized_message(header: str | None) -> str:
    if not header:
        return "credentials required (HTTP basic auth)"
    return "invalid credentials"


class BasicAuthASGI:
    """ASGI middleware: HTTP basic auth on every path except ``exempt``.

    Answers 401 with ``WWW-Authenticate: Basic realm="modelmon"`` and a JSON
    body ``{"error": "unauthorized", "message": ...}`` when
    ``config.authorized(header)`` is False. Lifespan scopes pass through;
    websocket connections are checked too (closed with 1008 before accepting)
    so they are no way around the check. Cached credentials are answered on
    the event loop; a bcrypt check runs in the default executor.

    Parameters
    ----------
    app : ASGI application
    config : WebConfig
    exempt : sequence of str
        Paths served without credentials (exact match), default :data:`EXEMPT_PATHS`.
    """

    def __init__(self, app: ASGIApp, config: WebConfig,
                 exempt: Sequence[str] = EXEMPT_PATHS) -> None:
        self.app = app
        self.config = config
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if (kind not in ("http", "websocket") or not self.config.users
                or scope.get("path") in self.exempt):
            await self.app(scope, receive, send)
            return
        header: str | None = None
        for k, v in scope.get("headers") or ():
            if k.lower() == b"authorization":
                header = v.decode("latin-1")
                break
        ok = self.config.authorized_cached(header)
        if ok is None:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(None, self.config.authorized, header)
        if ok:
            await self.app(scope, receive, send)
            return
        log.debug("event=unauthorized path=%s client=%s", scope.get("path"), scope.get("client"))
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = unauthorized_body(unauthorized_message(header))
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", WWW_AUTHENTICATE.encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
