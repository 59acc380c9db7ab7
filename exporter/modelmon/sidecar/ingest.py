"""Decoding and validation of event batches: bytes in, counts and per-event errors out.

No HTTP here. :class:`Ingestor` turns a JSON (``{"events": [...]}``) or NDJSON
body into validated columns for the Monitor (:class:`ValidatedColumns`), and a
reply listing every rejected event with the JSON path of the bad field. A bad
event never costs the valid ones: the batch is decoded in one typed pass
(msgspec, in C) and, only when that fails, event by event.

An event is *rejected* (not counted, listed in the reply) when a field has the
wrong type, a number is out of range, ``id``/``timestamp``/``latency_seconds``
are invalid, or it has a field other than those documented. The values that
broke the baseline's schema are still counted in
``modelmon_schema_violations_total`` so dashboards see a broken pipeline.
Unknown feature names do not reject the event (they are reported as warnings
and counted as ``__unknown__``); missing features count as missing; categories
the baseline does not know count as ``__other__``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import attrgetter
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
import numpy as np

from ..baseline import Baseline, CategoricalSummary
from ..catalogue import MAX_PREDICTION_ID_LENGTH, UNKNOWN
from ..monitor import Monitor
from ..monitor.columns import ValidatedColumns, tuple_getter

__all__ = ["MAX_ERRORS", "Event", "IngestResult", "Ingestor", "RequestError"]

#: Most entries listed in ``rejected`` (and in ``warnings``) of one reply.
MAX_ERRORS = 1000
#: Clean batches smaller than this wait in the Monitor's buffer and are counted in bulk
#: (at its ``flush_at`` waiting events, or before a scrape, whichever comes first).
SMALL_BATCH = 256


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One prediction event as posted to the sidecar."""

    features: dict[str, Any]
    id: Annotated[str, msgspec.Meta(max_length=MAX_PREDICTION_ID_LENGTH)] | None = None
    timestamp: float | str | None = None
    prediction: bool | int | float | str | None = None
    probabilities: float | dict[str, float] | list[float] | None = None
    latency_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[Event]


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]


class _RawFeatures(msgspec.Struct):
    features: dict[str, msgspec.Raw]


_BATCH = msgspec.json.Decoder(_Batch)
_RAW_BATCH = msgspec.json.Decoder(_RawBatch)
_EVENT = msgspec.json.Decoder(Event)
_ANY = msgspec.json.Decoder()
_RAW_FEATURES = msgspec.json.Decoder(_RawFeatures)


def _bad_feature(raw: bytes) -> str | None:
    """Name of the first feature whose value msgspec cannot decode (a number out of range)."""
    try:
        feats = _RAW_FEATURES.decode(raw).features
    except (msgspec.ValidationError, msgspec.DecodeError):  # pragma: no cover - defensive
        return None
    for k, v in feats.items():
        try:
            _ANY.decode(v)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return k
    return None  # pragma: no cover


class RequestError(Exception):
    """A whole-request problem: HTTP ``status``, machine-readable ``code``, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class IngestResult:
    """What happened to one request's events."""

    accepted: int = 0
    rejected_events: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    reasons: dict[str, int] = field(default_factory=dict)

    def reply(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"accepted": self.accepted, "rejected": self.rejected}
        if self.warnings:
            doc["warnings"] = self.warnings
        if self.truncated:
            doc["truncated"] = True
            doc["rejected_events"] = self.rejected_events
        return doc


def _short(v: Any, limit: int = 60) -> str:
    """A value as it would look in JSON, cut to ``limit`` characters."""
    try:
        text = msgspec.json.encode(v).decode()
    except (TypeError, msgspec.EncodeError, OverflowError):  # pragma: no cover - defensive
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__  # pragma: no cover


def _raw_kind(raw: bytes) -> str:
    """What a JSON value is (an array, a number...), from its first byte."""
    first = raw.lstrip()[:1]
    return {b"[": "an array", b'"': "a string", b"t": "a bool", b"f": "a bool",
            b"n": "null"}.get(first, "a number")


T = TypeVar("T")
_AT = re.compile(r" - at `\$(.*)`$")
_BYTE = re.compile(r"\(byte (\d+)\)")
_EXPECTED = re.compile(r"Expected `([^`]*)`, got `([^`]*)`")


def _position(body: bytes, message: str) -> tuple[int, int]:
    """1-based (line, column) of a msgspec decode error in ``body``."""
    m = _BYTE.search(message)
    pos = int(m.group(1)) if m else len(body)
    pos = min(pos, len(body))
    line = body.count(b"\n", 0, pos) + 1
    col = pos - (body.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def _decode_error(body: bytes, exc: Exception) -> str:
    msg = str(exc)
    line, col = _position(body, msg)
    detail = _BYTE.sub("", msg).replace("JSON is malformed: ", "").strip().rstrip(".")
    return f"malformed JSON at line {line}, column {col}: {detail[:1].lower() + detail[1:]}"


def _utf8_error(body: bytes, exc: UnicodeDecodeError) -> str:
    # msgspec reports the offset inside the string it was decoding, not in the body
    return f"malformed JSON: a string is not valid UTF-8 ({exc.reason})"


def _validation_error(prefix: str, exc: msgspec.ValidationError) -> tuple[str, str, str]:
    """(field, error, reason) of a msgspec validation error inside event ``prefix``."""
    msg = str(exc)
    m = _AT.search(msg)
    path = m.group(1) if m else ""
    text = _AT.sub("", msg)
    unknown = re.match(r"Object contains unknown field `(.*)`", text)
    missing = re.match(r"Object missing required field `(.*)`", text)
    if unknown:
        name = unknown.group(1)
        return (f"{prefix}{path}.{name}", ("unknown field; expected id, timestamp, features, "
                "prediction, probabilities, latency_seconds"), "invalid_field")
    if missing:
        return f"{prefix}{path}.{missing.group(1)}", "required field is missing", "invalid_field"
    field_path = prefix + path.replace("[...]", "")
    top = path.split(".")[1].split("[")[0] if path.startswith(".") else ""
    if "out of range" in text:
        return field_path, "number out of range (not finite)", "non_finite"
    em = _EXPECTED.search(text)
    if em:
        want = em.group(1).replace("| null", "").replace("null", "").strip(" |")
        text = f"expected {want}, got {em.group(2)}"
    elif text:
        text = text[:1].lower() + text[1:]
    text = text.replace("`", "")
    reason = "wrong_type" if top in ("features", "prediction", "probabilities") else "invalid_field"
    return field_path, text, reason


def _seconds(ts: float | str | None) -> float | None:
    """An event's timestamp as seconds since the epoch (validated before: a number >= 0 or
    an RFC 3339 time with a zone)."""
    if ts is None or isinstance(ts, float):
        return ts
    if isinstance(ts, int):
        return float(ts)
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:  # pragma: no cover - rejected before counting
        return None


def body_shape_error(body: bytes, key: str) -> RequestError:
    """The 400 for valid JSON that is not ``{key: [...]}`` (events or labels)."""
    try:
        doc = _ANY.decode(body)
    except RecursionError:
        return RequestError(400, "malformed_json", "JSON nested too deeply")
    except (msgspec.DecodeError, UnicodeDecodeError):  # pragma: no cover - decoded before
        doc = None
    if not isinstance(doc, dict):
        return RequestError(400, "invalid_body",
                            f'expected a JSON object {{"{key}": [...]}}, got {_kind(doc)}')
    extra = sorted(k for k in doc if k != key)
    if extra:
        return RequestError(400, "invalid_body",
                            f'unknown key(s) {extra[:5]} in the body; expected only "{key}"')
    if key not in doc:
        return RequestError(400, "invalid_body", f'missing "{key}": expected {{"{key}": [...]}}')
    return RequestError(400, "invalid_body",
                        f'"{key}": expected an array of {key}, got {_kind(doc[key])}')


def decode_body(body: bytes, decode: Callable[[bytes], T], slow: Callable[[bytes], T]) -> T:
    """``decode(body)``; ``slow(body)`` (entry by entry) when the typed decode finds a bad
    entry; a 400 :class:`RequestError` for a body that is not JSON at all."""
    try:
        return decode(body)
    except msgspec.ValidationError:
        return slow(body)
    except msgspec.DecodeError as exc:
        raise RequestError(400, "malformed_json", _decode_error(body, exc)) from None
    except RecursionError:
        raise RequestError(400, "malformed_json", "JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise RequestError(400, "malformed_json", _utf8_error(body, exc)) from None


def _rfc3339(text: str) -> bool:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return False
    return dt.tzinfo is not None and "T" in text.upper()


_NUM_OK = frozenset({float, int, type(None), bool})
_CAT_OK = frozenset({str, int, float, bool, type(None)})


class Ingestor:
    """Validates and counts the events of one model.

    Parameters
    ----------
    baseline : Baseline
        The model's baseline: its features and outputs define what is valid.
    monitor : Monitor
        Where accepted events are counted.
    max_events : int
        Most events in one request; more is a whole-request ``413``.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> b = Baseline.build({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]},
    ...                    model="m", bins=2)
    >>> ing = Ingestor(b, Monitor(b, registry=CollectorRegistry()))
    >>> r = ing.ingest_json(b'{"events": [{"features": {"x": 1.5, "c": "a"}},'
    ...                     b' {"features": {"x": "abc", "c": "b"}}]}')
    >>> r.reply()
    {'accepted': 1, 'rejected': [{'index': 1, 'field': 'events[1].features.x', 'error': 'expected a number, got "abc"'}]}
    """

    def __init__(self, baseline: Baseline, monitor: Monitor, max_events: int = 10_000) -> None:
        self.baseline = baseline
        self.monitor = monitor
        self.model = baseline.model
        self.max_events = max_events
        self.numeric = list(baseline.numeric_features)
        self.categorical = list(baseline.categorical_features)
        self.known = frozenset(baseline.features)
        self.n_features = len(self.known)
        pred = baseline.prediction
        self.pred_name = pred.name if pred is not None else None
        self.pred_categorical = isinstance(pred, CategoricalSummary)
        self.prob_names = list(baseline.probabilities)
        self.prob_set = frozenset(self.prob_names)
        self._typed_batch, self._typed_event = _typed_decoders(baseline)
        # the typed decoder's feature fields are f0, f1, ...: numeric ones first
        fields = [f"f{i}" for i in range(len(self.numeric) + len(self.categorical))]
        self._num_get = tuple_getter(fields[:len(self.numeric)], attrgetter)
        self._cat_get = tuple_getter(fields[len(self.numeric):], attrgetter)

    # -- decoding -----------------------------------------------------------------

    def _too_many(self, n: int) -> RequestError:
        return RequestError(413, "too_many_events", f"{n} events in one request; the limit is "
                            f"{self.max_events} (max_events_per_request): split the batch")

    def ingest_json(self, body: bytes) -> IngestResult:
        """Count the events of an ``application/json`` body ``{"events": [...]}``.

        Raises
        ------
        RequestError
            400 for malformed JSON or a body that is not ``{"events": [...]}``,
            413 for more than ``max_events`` events.
        """
        try:
            typed = self._typed_batch.decode(body).events
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            pass
        else:
            if len(typed) > self.max_events:
                raise self._too_many(len(typed))
            return self._process(typed, {}, typed=True)
        events, errors = decode_body(body, lambda b: (list(_BATCH.decode(b).events), {}),
                                     self._json_slow)
        if len(events) > self.max_events:
            raise self._too_many(len(events))
        return self._process(events, errors)

    def _json_slow(self, body: bytes) -> tuple[list[Event | None], dict[int, list[tuple[str, str, str]]]]:
        try:
            raw = _RAW_BATCH.decode(body).events
        except RecursionError:
            raise RequestError(400, "malformed_json", "JSON nested too deeply") from None
        except msgspec.ValidationError:
            raise body_shape_error(body, "events") from None
        if len(raw) > self.max_events:
            raise self._too_many(len(raw))
        events: list[Event | None] = []
        errors: dict[int, list[tuple[str, str, str]]] = {}
        for i, r in enumerate(raw):
            events.append(self._decode_one(i, bytes(r), errors, ndjson=False))
        return events, errors

    def _decode_one(self, i: int, raw: bytes, errors: dict[int, list[tuple[str, str, str]]],
                    *, ndjson: bool) -> Event | None:
        """One event, or ``None`` with its problem added to ``errors``."""
        where = f"events[{i}]"
        try:
            return _EVENT.decode(raw)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if text.startswith("Expected `object`") and " - at " not in text:
                errors[i] = [(where, f"expected an event object, got {_raw_kind(raw)}",
                              "malformed")]
            elif text.endswith("- at `$.features[...]`"):
                name = _bad_feature(raw)
                errors[i] = [(f"{where}.features.{name}" if name is not None
                              else f"{where}.features",
                              "number out of range (not finite)", "non_finite")]
            else:
                errors[i] = [_validation_error(where, exc)]
        except msgspec.DecodeError as exc:
            if not ndjson:  # pragma: no cover - the batch decoded, so its parts do
                raise
            errors[i] = [(where, _decode_error(raw, exc).replace("at line 1, column", "at column"),
                          "malformed")]
        except RecursionError:
            errors[i] = [(where, "nested too deeply", "malformed")]
        except UnicodeDecodeError as exc:
            errors[i] = [(where, _utf8_error(raw, exc), "malformed")]
        return None

    def ingest_ndjson(self, body: bytes) -> IngestResult:
        """Count the events of an ``application/x-ndjson`` body, one event per line.

        A line that is not valid JSON rejects only that event. Blank lines are
        skipped; ``index`` counts the non-blank lines from 0.
        """
        try:
            typed = self._typed_event.decode_lines(body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            pass
        else:
            if len(typed) > self.max_events:
                raise self._too_many(len(typed))
            return self._process(typed, {}, typed=True)
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        if len(lines) > self.max_events:
            raise self._too_many(len(lines))
        try:
            return self._process(list(_EVENT.decode_lines(b"\n".join(lines))), {})
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            pass
        errors: dict[int, list[tuple[str, str, str]]] = {}
        events = [self._decode_one(i, ln, errors, ndjson=True) for i, ln in enumerate(lines)]
        return self._process(events, errors)

    # -- validation and counting ----------------------------------------------------

    def _process(self, events: list[Any], errors: dict[int, list[tuple[str, str, str]]],
                 typed: bool = False) -> IngestResult:
        n_all = len(events)
        if errors:
            idx = [i for i, e in enumerate(events) if e is not None]
            evs: list[Event] = [events[i] for i in idx]  # type: ignore[misc]
        else:
            idx = None
            evs = events  # type: ignore[assignment]
        bad: dict[int, list[tuple[str, str, str]]] = {}  # position in evs -> problems
        warnings: list[tuple[int, str, str]] = []
        violations: dict[tuple[str, str], int] = {}
        for entries in errors.values():  # out-of-range feature values found while decoding
            for f, _msg, reason in entries:
                name = f.partition(".features.")[2]
                if reason == "non_finite" and name in self.known:
                    violations[(name, reason)] = violations.get((name, reason), 0) + 1
        feats = [e.features for e in evs]
        n = len(evs)
        if typed:
            preds, probs = self._tail_checks(evs, n, bad, warnings, violations)
            if not bad and not violations and n < SMALL_BATCH:
                # checked now, counted in bulk with the other small batches
                self.monitor.submit(self.model, evs, self.decode_clean)
                return IngestResult(accepted=n)
            numeric, categorical = self._typed_columns(feats, n)
        else:
            numeric, categorical = self._generic_columns(feats, n, bad, warnings, violations)
            preds, probs = self._tail_checks(evs, n, bad, warnings, violations)
        return self._count(evs, n, n_all, idx, errors, bad, warnings, violations, numeric,
                           categorical, preds, probs)

    def decode_clean(self, evs: list[Any]) -> ValidatedColumns:
        """Columns of typed events already checked clean (the Monitor's decoder for the
        small batches it buffers)."""
        n = len(evs)
        preds, probs = self._tail_checks(evs, n, {}, [], {})  # all valid already
        numeric, categorical = self._typed_columns([e.features for e in evs], n)
        return self._columns(evs, n, {}, {}, numeric, categorical, preds, probs)

    def _typed_columns(self, feats: list[Any], n: int) -> tuple[Any, dict[str, list[Any]]]:
        """Columns of features decoded into the baseline's own struct: no unknown
        feature, numeric values are floats or None, categorical ones scalars."""
        numeric: Any = {}
        categorical: dict[str, list[Any]] = {}
        if self.numeric and n:
            numeric = np.array(list(map(self._num_get, feats)),
                               dtype=np.float64).reshape(n, len(self.numeric))
        elif self.numeric:
            numeric = {name: np.empty(0) for name in self.numeric}
        if self.categorical:
            cols = list(zip(*map(self._cat_get, feats))) if n else []
            categorical = {name: list(cols[j]) if n else []
                           for j, name in enumerate(self.categorical)}
        return numeric, categorical

    def _generic_columns(self, feats: list[dict[str, Any]], n: int,
                         bad: dict[int, list[tuple[str, str, str]]],
                         warnings: list[tuple[int, str, str]],
                         violations: dict[tuple[str, str], int],
                         ) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
        """Columns of free-form feature mappings, with every problem recorded."""
        # unknown feature names: warn and count, keep the event
        known = self.known
        for j, f in enumerate(feats):
            if not f.keys() <= known:
                for k in f:
                    if k not in known:
                        warnings.append((j, f"features.{k}", ("unknown feature (not in the "
                                         f"baseline {self.baseline.id}); ignored")))
                        violations[(UNKNOWN, "unknown_feature")] = (
                            violations.get((UNKNOWN, "unknown_feature"), 0) + 1)

        numeric: dict[str, np.ndarray] = {}
        for name in self.numeric:
            col = [f.get(name) for f in feats]
            arr = None
            if set(map(type, col)) <= _NUM_OK:
                try:
                    arr = np.array(col, dtype=np.float64)
                except OverflowError:
                    arr = None
            if arr is None:
                arr = np.full(n, np.nan)
                for j, v in enumerate(col):
                    if v is None:
                        continue
                    if isinstance(v, (int, float)):
                        try:
                            fv = float(v)
                        except OverflowError:
                            fv = math.inf
                        if math.isfinite(fv):
                            arr[j] = fv
                            continue
                        bad.setdefault(j, []).append(
                            (f"features.{name}", "number out of range (not finite)", "non_finite"))
                        violations[(name, "non_finite")] = violations.get((name, "non_finite"), 0) + 1
                    else:
                        bad.setdefault(j, []).append(
                            (f"features.{name}", f"expected a number, got {_short(v)}",
                             "wrong_type"))
                        violations[(name, "wrong_type")] = violations.get((name, "wrong_type"), 0) + 1
            numeric[name] = arr

        categorical: dict[str, list[Any]] = {}
        for name in self.categorical:
            col = [f.get(name) for f in feats]
            if not set(map(type, col)) <= _CAT_OK:
                for j, v in enumerate(col):
                    if type(v) not in _CAT_OK:
                        bad.setdefault(j, []).append(
                            (f"features.{name}", (f"expected a string, number or bool, got "
                             f"{_kind(v)} {_short(v, 40)}"), "wrong_type"))
                        violations[(name, "wrong_type")] = violations.get((name, "wrong_type"), 0) + 1
                        col[j] = None
            categorical[name] = col
        return numeric, categorical

    def _tail_checks(self, evs: list[Any], n: int, bad: dict[int, list[tuple[str, str, str]]],
                     warnings: list[tuple[int, str, str]],
                     violations: dict[tuple[str, str], int]) -> tuple[list[Any], list[Any]]:
        """Prediction, probabilities and timestamp checks (shared by both paths);
        returns the prediction and probability columns (empty when absent)."""
        preds: list[Any] = [e.prediction for e in evs]
        if preds.count(None) == n:
            preds = []
        elif self.pred_name is None:
            for j, p in enumerate(preds):
                if p is not None:
                    warnings.append((j, "prediction",
                                     "the baseline has no prediction column; ignored"))
                    violations[(UNKNOWN, "unknown_feature")] = (
                        violations.get((UNKNOWN, "unknown_feature"), 0) + 1)
            preds = []
        elif not self.pred_categorical and not set(map(type, preds)) <= _NUM_OK - {bool}:
            for j, p in enumerate(preds):
                if p is not None and type(p) not in (int, float):
                    bad.setdefault(j, []).append(
                        ("prediction", f"expected a number, got {_short(p)}", "wrong_type"))
                    key = (self.pred_name, "wrong_type")
                    violations[key] = violations.get(key, 0) + 1

        probs: list[Any] = [e.probabilities for e in evs]
        k = len(self.prob_names)
        if probs.count(None) == n:
            probs = []
        elif not (k == 1 and set(map(type, probs)) <= {float, type(None)}):
            for j, p in enumerate(probs):
                problem = None
                if p is None:
                    continue
                if k == 0:
                    problem = "the baseline has no score outputs"
                elif isinstance(p, float):
                    if k != 1:
                        problem = (f"expected an object {{score column: value}} for the "
                                   f"{k} score outputs {self.prob_names}, got a single number")
                elif isinstance(p, list):
                    if len(p) != k:
                        problem = f"expected {k} values {self.prob_names}, got {len(p)}"
                elif not p.keys() <= self.prob_set:
                    extra = sorted(set(p) - self.prob_set)[:3]
                    problem = (f"unknown score column(s) {extra}; expected keys among "
                               f"{self.prob_names}")
                if problem:
                    bad.setdefault(j, []).append(("probabilities", problem, "wrong_type"))
                    violations[(UNKNOWN, "unknown_feature")] = (
                        violations.get((UNKNOWN, "unknown_feature"), 0) + 1)

        tss = [e.timestamp for e in evs]
        types = set(map(type, tss))
        if str in types or (float in types and min(t for t in tss if type(t) is float) < 0):
            for j, ts in enumerate(tss):
                if isinstance(ts, str):
                    if not _rfc3339(ts):
                        bad.setdefault(j, []).append(
                            ("timestamp", ("expected seconds since the epoch or an RFC 3339 "
                             f"time such as 2026-01-02T03:04:05Z, got {_short(ts)}"),
                             "invalid_field"))
                elif ts is not None and not ts >= 0:
                    bad.setdefault(j, []).append(
                        ("timestamp", f"expected seconds since the epoch (>= 0), got {ts}",
                         "invalid_field"))
        return preds, probs

    def _columns(self, evs: list[Any], n: int, bad: dict[int, list[tuple[str, str, str]]],
                 violations: dict[tuple[str, str], int], numeric: Any,
                 categorical: dict[str, list[Any]], preds: list[Any],
                 probs: list[Any]) -> ValidatedColumns:
        """The good events' columns (``bad`` ones left out) for the Monitor."""
        lats: Any = [e.latency_seconds for e in evs]
        if lats.count(None) == n:
            lats = []
        ids: list[Any] = [e.id for e in evs]
        if ids.count(None) == n:
            ids = []
        tss: list[Any] | None = None
        if ids:
            tss = [_seconds(e.timestamp) for e in evs]
        if bad:
            keep = [j not in bad for j in range(n)]
            mask = np.asarray(keep, dtype=bool)
            numeric = (numeric[mask] if isinstance(numeric, np.ndarray)
                       else {k: a[mask] for k, a in numeric.items()})
            categorical = {k: list(compress(c, keep)) for k, c in categorical.items()}
            preds = list(compress(preds, keep)) if preds else preds
            probs = list(compress(probs, keep)) if probs else probs
            lats = list(compress(lats, keep)) if lats else lats
            ids = list(compress(ids, keep)) if ids else ids
            tss = list(compress(tss, keep)) if tss is not None else None
        if lats and None not in lats:
            lats = np.asarray(lats, dtype=np.float64)  # typed decode: floats >= 0
        return ValidatedColumns(n - len(bad), numeric, categorical, predictions=preds,
                                probabilities=probs, latency_seconds=lats,
                                violations=violations, ids=ids, timestamps=tss)

    def _count(self, evs: list[Any], n: int, n_all: int, idx: list[int] | None,
               errors: dict[int, list[tuple[str, str, str]]],
               bad: dict[int, list[tuple[str, str, str]]], warnings: list[tuple[int, str, str]],
               violations: dict[tuple[str, str], int], numeric: Any,
               categorical: dict[str, list[Any]], preds: list[Any],
               probs: list[Any]) -> IngestResult:
        """Count the good events in the Monitor and build the reply."""
        self.monitor.observe_validated(
            self.model, self._columns(evs, n, bad, violations, numeric, categorical, preds,
                                      probs))
        accepted = n - len(bad)
        res = IngestResult(accepted=accepted, rejected_events=len(errors) + len(bad))
        if not (errors or bad or warnings):
            return res
        merged: dict[int, list[tuple[str, str, str]]] = dict(errors)
        pos = idx if idx is not None else range(n_all)
        for j, problems in bad.items():
            i = pos[j]
            merged[i] = [(f"events[{i}].{f}", msg, reason) for f, msg, reason in problems]
        for i in sorted(merged):
            entries = merged[i]
            res.reasons[entries[0][2]] = res.reasons.get(entries[0][2], 0) + 1
            for f, msg, _reason in entries:
                if len(res.rejected) >= MAX_ERRORS:
                    res.truncated = True
                    break
                res.rejected.append({"index": i, "field": f, "error": msg})
        for j, f, msg in warnings[:MAX_ERRORS]:
            i = pos[j]
            res.warnings.append({"index": i, "field": f"events[{i}].{f}", "warning": msg})
        if len(warnings) > MAX_ERRORS:
            res.truncated = True
        return res


_CAT_TYPE = bool | int | float | str | None


def _typed_decoders(b: Baseline) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """Decoders of a batch and of one event whose features are the baseline's own struct.

    Field names are ``f0``, ``f1``... renamed to the feature names, so any feature
    name works. A body these reject is decoded again by the generic path.
    """
    numeric = list(b.numeric_features)
    categorical = list(b.categorical_features)
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, name in enumerate(numeric + categorical):
        fields.append((f"f{i}", float | None if i < len(numeric) else _CAT_TYPE, None))
        rename[f"f{i}"] = name
    feats = msgspec.defstruct("Features", fields, rename=rename, forbid_unknown_fields=True,
                              gc=False)
    pred: Any = _CAT_TYPE if isinstance(b.prediction, CategoricalSummary) else float | None
    event = msgspec.defstruct("TypedEvent", [
        ("features", feats),
        ("id", Annotated[str, msgspec.Meta(max_length=MAX_PREDICTION_ID_LENGTH)] | None, None),
        ("timestamp", float | str | None, None),
        ("prediction", pred, None),
        ("probabilities", float | dict[str, float] | list[float] | None, None),
        ("latency_seconds", Annotated[float, msgspec.Meta(ge=0)] | None, None),
    ], forbid_unknown_fields=True, gc=False)
    batch = msgspec.defstruct("TypedBatch", [("events", list[event])],  # type: ignore[valid-type]
                              forbid_unknown_fields=True)
    return msgspec.json.Decoder(batch), msgspec.json.Decoder(event)

