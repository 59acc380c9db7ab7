"""Paths into JSON bodies, and the extraction shared by the ASGI and WSGI middlewares.

A path is parsed once, when a middleware is built; a malformed one raises
``ValueError`` naming it. The syntax is deliberately small:

``$`` or ``""``
    the whole body.
``features``, ``$.features``, ``inputs.features``
    dotted keys into JSON objects.
``instances[0]``, ``outputs[-1].label``
    ``[N]`` picks element N of an array (negative counts from the end).
``instances[*]``, ``[*]``, ``outputs[*].label``
    ``[*]`` means "each element": the path yields a list (a batch). At most one
    ``[*]`` per path.

A callable ``(body) -> value`` can be given instead of a path.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "MiddlewareBase",
    "countable_response",
    "Extractor",
    "JsonPath",
    "PathError",
    "RateLimitedLog",
    "compile_path",
    "is_json_media_type",
]

_STAR = object()  # the [*] step
_TOKEN = re.compile(r"\.|\[(\*|-?\d+)\]|[^.\[\]]+")


class PathError(LookupError):
    """A path does not match the body it is applied to."""


class JsonPath:
    """A compiled path into a decoded JSON body.

    Parameters
    ----------
    spec : str
        The path, e.g. ``"instances[*]"`` (see the module docstring).

    Attributes
    ----------
    batch : bool
        True when the path contains ``[*]`` (it yields a list).

    Examples
    --------
    >>> JsonPath("instances[*].x").get({"instances": [{"x": 1}, {"x": 2}]})
    [1, 2]
    >>> JsonPath("$").get([1, 2])
    [1, 2]
    >>> JsonPath("a..b")
    Traceback (most recent call last):
    ...
    ValueError: path 'a..b': empty key at character 2
    """

    __slots__ = ("batch", "spec", "steps")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.steps = _parse(spec)
        self.batch = any(s is _STAR for s in self.steps)

    def __repr__(self) -> str:
        return f"JsonPath({self.spec!r})"

    def get(self, body: Any) -> Any:
        """The value at this path; raises :class:`PathError` when it is not there."""
        return _walk(body, self.steps, 0, self.spec)


def _parse(spec: str) -> tuple[Any, ...]:
    if not isinstance(spec, str):
        raise TypeError(f"path {spec!r}: expected a string or a callable")
    s = spec.strip()
    if s in ("", "$"):
        return ()
    pos = 0
    if s.startswith("$"):
        pos = 1
        if s[1:2] == ".":
            pos = 2
        elif s[1:2] != "[":
            raise ValueError(f"path {spec!r}: '$' must be followed by '.' or '['")
    steps: list[Any] = []
    need_key = pos == 2 or pos == 0 and not s.startswith("[")
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None:
            raise ValueError(f"path {spec!r}: unexpected {s[pos]!r} at character {pos} "
                             "(use dotted keys, [N] and [*])")
        tok = m.group(0)
        if tok == ".":
            if need_key:
                raise ValueError(f"path {spec!r}: empty key at character {pos}")
            need_key = True
        elif tok.startswith("["):
            if need_key:
                raise ValueError(f"path {spec!r}: empty key at character {pos}")
            steps.append(_STAR if m.group(1) == "*" else int(m.group(1)))
        else:
            if not need_key and steps:
                raise ValueError(f"path {spec!r}: expected '.' or '[' at character {pos}")
            steps.append(tok)
            need_key = False
        pos = m.end()
    if need_key:
        raise ValueError(f"path {spec!r}: ends with '.' (an empty key)")
    if sum(1 for x in steps if x is _STAR) > 1:
        raise ValueError(f"path {spec!r}: at most one [*] is supported")
    return tuple(steps)


def _walk(body: Any, steps: tuple[Any, ...], i: int, spec: str) -> Any:
    for j in range(i, len(steps)):
        step = steps[j]
        if step is _STAR:
            if not isinstance(body, list):
                raise PathError(f"path {spec!r}: expected an array for [*], got "
                                f"{type(body).__name__}")
            return [_walk(e, steps, j + 1, spec) for e in body]
        if isinstance(step, int):
            if not isinstance(body, list):
                raise PathError(f"path {spec!r}: expected an array for [{step}], got "
                                f"{type(body).__name__}")
            try:
                body = body[step]
            except IndexError:
                raise PathError(f"path {spec!r}: index [{step}] out of range "
                                f"(array of {len(body)})") from None
        else:
            if not isinstance(body, Mapping):
                raise PathError(f"path {spec!r}: expected an object for key {step!r}, got "
                                f"{type(body).__name__}")
            if step not in body:
                raise PathError(f"path {spec!r}: no key {step!r}")
            body = body[step]
    return body


class _CallablePath:
    """A user function standing in for a path; batch-ness is read from its result."""

    __slots__ = ("batch", "fn", "spec")

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.spec = getattr(fn, "__name__", repr(fn))
        self.batch = False

    def get(self, body: Any) -> Any:
        return self.fn(body)


def compile_path(spec: str | Callable[[Any], Any] | None,
                 what: str) -> JsonPath | _CallablePath | None:
    """Compile a path option; ``None`` stays ``None``.

    Raises ``ValueError`` naming the option and path when the path is malformed.
    """
    if spec is None:
        return None
    if callable(spec):
        return _CallablePath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"{what}: expected a path string or a callable, got "
                        f"{type(spec).__name__}")
    try:
        return JsonPath(spec)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def is_json_media_type(content_type: str | bytes | None) -> bool:
    """``application/json`` or any ``+json`` media type (parameters ignored)."""
    if not content_type:
        return False
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class RateLimitedLog:
    """Log a warning per key at most once per ``interval`` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            n = self._suppressed.pop(key, 0)
        if n:
            msg += f" ({n} similar message(s) suppressed in the last {self.interval:g}s)"
        self.logger.warning(msg, *args, exc_info=exc_info)


def _is_row(v: Any) -> bool:
    return isinstance(v, (Mapping, list, tuple))


class Extractor:
    """Turns a request and a response body into monitor events, and counts them.

    Shared by :class:`~modelmon.middleware.ASGIMiddleware` and
    :class:`~modelmon.middleware.WSGIMiddleware`. :meth:`observe` never raises.

    Batch rules: the request is a batch when the features path contains
    ``[*]``, or (path without ``[*]`` or callable) the value is a list whose
    elements are objects or arrays (an empty list is an empty batch). A list of
    scalars from a path without ``[*]`` is one positional row. Positional rows
    (arrays) are named with the baseline's feature order when their length
    matches. For a batch, prediction and probabilities must be lists of the
    same length (aligned by position); otherwise nothing is counted for that
    request. For one event, a ``[*]`` output path must yield exactly one element.
    """

    def __init__(self, monitor: Any, *, features: Any, prediction: Any, probabilities: Any,
                 model: str | None, logger: logging.Logger) -> None:
        if not hasattr(monitor, "observe"):
            raise TypeError(f"monitor: expected a modelmon Monitor, got {type(monitor).__name__}")
        self.monitor = monitor
        f = compile_path(features, "features")
        if f is None:
            raise ValueError("features: a path or callable is required")
        self.features = f
        self.prediction = compile_path(prediction, "prediction")
        self.probabilities = compile_path(probabilities, "probabilities")
        self.model = model
        self.needs_response = self.prediction is not None or self.probabilities is not None
        models = getattr(monitor, "models", None)
        names: list[str] | None = None
        if isinstance(models, Mapping) and models:
            if model is not None and model not in models:
                raise ValueError(f"model: {model!r} is not served by the monitor "
                                 f"(models: {sorted(models)})")
            if model is None and len(models) > 1:
                raise ValueError(f"model: the monitor serves several models; pass model= one "
                                 f"of {sorted(models)}")
            b = models[model] if model is not None else (
                next(iter(models.values())) if len(models) == 1 else None)
            if b is not None:
                names = list(b.features)
        self.feature_names = names
        self.log = RateLimitedLog(logger)

    # -- extraction -----------------------------------------------------------

    def _row(self, e: Any) -> Any:
        names = self.feature_names
        if isinstance(e, (list, tuple)) and names is not None and len(e) == len(names):
            return dict(zip(names, e))
        return e

    def events(self, request: Any, response: Any) -> list[tuple[Any, Any, Any]] | None:
        """``(features, prediction, probabilities)`` per event, or None to count nothing."""
        feats = self.features.get(request)
        batch = self.features.batch or (
            isinstance(feats, list) and all(_is_row(e) for e in feats))
        outs: dict[str, Any] = {}
        for name, p in (("prediction", self.prediction), ("probabilities", self.probabilities)):
            if p is None:
                continue
            v = p.get(response)
            if batch:
                if not isinstance(v, (list, tuple)) or len(v) != len(feats):
                    got = len(v) if isinstance(v, (list, tuple)) else type(v).__name__
                    self.log.report(
                        f"mismatch:{name}",
                        "modelmon middleware: %s path %r gave %s for a batch of %d events; "
                        "nothing counted for this request", name, p.spec, got, len(feats))
                    return None
            elif p.batch:
                if len(v) != 1:
                    self.log.report(
                        f"mismatch:{name}",
                        "modelmon middleware: %s path %r gave %d values for a single event; "
                        "nothing counted for this request", name, p.spec, len(v))
                    return None
                v = v[0]
            outs[name] = v
        if not batch:
            return [(self._row(feats), outs.get("prediction"), outs.get("probabilities"))]
        n = len(feats)
        preds = outs.get("prediction") or [None] * n
        probs = outs.get("probabilities") or [None] * n
        return [(self._row(f), p, q) for f, p, q in zip(feats, preds, probs)]

    def observe(self, request: bytes, response: bytes | None, latency: float | None) -> int:
        """Decode, extract and count; returns the number of events counted. Never raises."""
        try:
            try:
                req = json.loads(request)
            except ValueError:
                self.log.report("request-json", "modelmon middleware: request body is not "
                                 "JSON; nothing counted for this request")
                return 0
            resp = None
            if self.needs_response:
                try:
                    resp = json.loads(response or b"")
                except ValueError:
                    self.log.report("response-json", "modelmon middleware: response body is "
                                     "not JSON; nothing counted for this request")
                    return 0
            try:
                events = self.events(req, resp)
            except PathError as exc:
                self.log.report("path", "modelmon middleware: %s; nothing counted for this "
                                 "request", exc)
                return 0
            if not events:
                return 0
            observe = self.monitor.observe
            model = self.model
            for f, p, q in events:
                observe(f, prediction=p, probabilities=q, latency_seconds=latency, model=model)
            return len(events)
        except Exception as exc:  # noqa: BLE001 - never let monitoring break serving
            self.log.report("observe", "modelmon middleware: monitoring failed (%s: %s); the "
                             "request was served normally", type(exc).__name__, exc,
                             exc_info=True)
            return 0


def normalise_paths(path: str | Sequence[str]) -> frozenset[str]:
    """The exact request paths to monitor."""
    if isinstance(path, str):
        return frozenset([path])
    paths = frozenset(path)
    if not paths or not all(isinstance(p, str) for p in paths):
        raise ValueError(f"path: expected a path string or a sequence of them, got {path!r}")
    return paths


def normalise_methods(methods: str | Sequence[str]) -> frozenset[str]:
    """Upper-cased HTTP methods to monitor."""
    if isinstance(methods, str):
        methods = [methods]
    out = frozenset(m.upper() for m in methods)
    if not out:
        raise ValueError("methods: expected at least one HTTP method")
    return out


def check_max_body(max_body_bytes: int) -> int:
    if not isinstance(max_body_bytes, int) or isinstance(max_body_bytes, bool) \
            or max_body_bytes < 0:
        raise ValueError(f"max_body_bytes: expected a non-negative integer, got "
                         f"{max_body_bytes!r}")
    return max_body_bytes


_log = logging.getLogger("modelmon.middleware")
_IDENTITY = ("", "identity")


def _text(v: str | bytes) -> str:
    return v.decode("latin-1") if isinstance(v, bytes) else v


def identity_encoding(value: str | bytes | None) -> bool:
    """True when a ``Content-Encoding`` value leaves the body readable as is."""
    return _text(value or "").strip().lower() in _IDENTITY


def countable_response(status: int, headers: Iterable[tuple[str | bytes, str | bytes]],
                       reads_body: bool) -> bool:
    """Whether a response can be counted: 2xx and, when its body is read, JSON with no
    content encoding. ``headers`` are ASGI (bytes) or WSGI (str) pairs."""
    if not 200 <= status < 300:
        return False
    if not reads_body:
        return True
    ctype: str | bytes = ""
    for k, v in headers:
        k = _text(k).lower()
        if k == "content-type":
            ctype = v
        elif k == "content-encoding" and not identity_encoding(v):
            return False
    return is_json_media_type(ctype)


class MiddlewareBase:
    """Options shared by :class:`ASGIMiddleware` and :class:`WSGIMiddleware` (see their
    docstrings for the parameters)."""

    def __init__(
        self,
        app: Any,
        monitor: Any,
        *,
        path: str | Sequence[str] = "/predict",
        methods: str | Sequence[str] = ("POST",),
        features: str | Callable[[Any], Any] = "features",
        prediction: str | Callable[[Any], Any] | None = "prediction",
        probabilities: str | Callable[[Any], Any] | None = None,
        model: str | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.paths = normalise_paths(path)
        self.methods = normalise_methods(methods)
        self.extractor = Extractor(monitor, features=features, prediction=prediction,
                                   probabilities=probabilities, model=model, logger=_log)
        self.max_body_bytes = check_max_body(max_body_bytes)
        self.clock = clock
        self._log = RateLimitedLog(_log)
