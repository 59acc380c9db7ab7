"""Decoding and validation of ground-truth label batches for ``POST /v1/models/{model}/labels``.

The body is ``{"labels": [{"id": "...", "label": ..., "timestamp": ...}]}``
(``application/json``) or one such object per line (``application/x-ndjson``).
As for events, a bad entry never costs the good ones: it is listed in the
reply with the JSON path of its bad field and the rest are joined. The reply
is ``{"accepted", "matched", "unmatched", "rejected"}``: ``accepted`` labels
were valid; of them ``matched`` found their prediction and were counted,
``unmatched`` did not (never seen, expired, or already labelled; counted in
``modelmon_labels_unmatched_total``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from ..catalogue import MAX_PREDICTION_ID_LENGTH
from ..monitor import Monitor
from .ingest import (
    MAX_ERRORS,
    RequestError,
    body_shape_error,
    decode_body,
    _decode_error,
    _raw_kind,
    _rfc3339,
    _seconds,
    _short,
    _utf8_error,
    _validation_error,
)

__all__ = ["LabelEntry", "LabelIngestor", "LabelReply"]

_FIELDS = "id, label, timestamp"


class LabelEntry(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One ground-truth label as posted to the sidecar."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PREDICTION_ID_LENGTH)]
    label: bool | int | float | str
    timestamp: float | str | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    labels: list[LabelEntry]


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    labels: list[msgspec.Raw]


_BATCH = msgspec.json.Decoder(_Batch)
_RAW_BATCH = msgspec.json.Decoder(_RawBatch)
_ENTRY = msgspec.json.Decoder(LabelEntry)


@dataclass
class LabelReply:
    """What happened to one request's labels."""

    matched: int = 0
    unmatched: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_labels: int = 0
    truncated: bool = False

    def reply(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"accepted": self.matched + self.unmatched,
                               "matched": self.matched, "unmatched": self.unmatched,
                               "rejected": self.rejected}
        if self.truncated:
            doc["truncated"] = True
            doc["rejected_labels"] = self.rejected_labels
        return doc


class LabelIngestor:
    """Validates the labels of one model and joins them in the Monitor.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> from modelmon.baseline import Baseline
    >>> b = Baseline.build({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]},
    ...                    model="m", bins=2, prediction="y")
    >>> mon = Monitor(b, registry=CollectorRegistry())
    >>> mon.observe({"x": 1.5}, prediction="a", id="p1")
    >>> LabelIngestor("m", mon).ingest_json(
    ...     b'{"labels": [{"id": "p1", "label": "b"}, {"id": "p2", "label": "a"}, {"id": 7}]}'
    ... ).reply()  # doctest: +NORMALIZE_WHITESPACE
    {'accepted': 2, 'matched': 1, 'unmatched': 1,
     'rejected': [{'index': 2, 'field': 'labels[2].id', 'error': 'expected str, got int'}]}
    """

    def __init__(self, model: str, monitor: Monitor, max_labels: int = 10_000) -> None:
        self.model = model
        self.monitor = monitor
        self.max_labels = max_labels

    def _too_many(self, n: int) -> RequestError:
        return RequestError(413, "too_many_labels", f"{n} labels in one request; the limit is "
                            f"{self.max_labels} (max_events_per_request): split the batch")

    def ingest_json(self, body: bytes) -> LabelReply:
        """Join the labels of an ``application/json`` body ``{"labels": [...]}``."""
        errors: dict[int, tuple[str, str]] = {}
        entries: list[LabelEntry | None] = decode_body(
            body, lambda b: list(_BATCH.decode(b).labels), lambda b: self._json_slow(b, errors))
        if len(entries) > self.max_labels:
            raise self._too_many(len(entries))
        return self._join(entries, errors)

    def ingest_ndjson(self, body: bytes) -> LabelReply:
        """Join the labels of an ``application/x-ndjson`` body, one label object per line."""
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        if len(lines) > self.max_labels:
            raise self._too_many(len(lines))
        errors: dict[int, tuple[str, str]] = {}
        try:
            entries: list[LabelEntry | None] = list(_ENTRY.decode_lines(b"\n".join(lines)))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            entries = [self._decode_one(i, ln, errors, ndjson=True) for i, ln in enumerate(lines)]
        return self._join(entries, errors)

    def _json_slow(self, body: bytes, errors: dict[int, tuple[str, str]]) -> list[LabelEntry | None]:
        try:
            raw = _RAW_BATCH.decode(body).labels
        except RecursionError:
            raise RequestError(400, "malformed_json", "JSON nested too deeply") from None
        except msgspec.ValidationError:
            raise body_shape_error(body, "labels") from None
        if len(raw) > self.max_labels:
            raise self._too_many(len(raw))
        return [self._decode_one(i, bytes(r), errors, ndjson=False) for i, r in enumerate(raw)]

    def _decode_one(self, i: int, raw: bytes, errors: dict[int, tuple[str, str]], *,
                    ndjson: bool) -> LabelEntry | None:
        where = f"labels[{i}]"
        try:
            return _ENTRY.decode(raw)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if text.startswith("Expected `object`") and " - at " not in text:
                errors[i] = (where, f"expected a label object {{{_FIELDS}}}, got "
                                    f"{_raw_kind(raw)}")
            else:
                f, msg, _reason = _validation_error(where, exc)
                if "unknown field" in msg:
                    msg = f"unknown field; expected {_FIELDS}"
                errors[i] = (f, msg)
        except msgspec.DecodeError as exc:
            errors[i] = (where, _decode_error(raw, exc).replace("at line 1, column", "at column"))
        except RecursionError:
            errors[i] = (where, "nested too deeply")
        except UnicodeDecodeError as exc:
            errors[i] = (where, _utf8_error(raw, exc))
        return None

    def _join(self, entries: list[LabelEntry | None],
              errors: dict[int, tuple[str, str]]) -> LabelReply:
        pos: list[int] = []
        ids: list[str] = []
        labels: list[Any] = []
        tss: list[float | None] = []
        for i, e in enumerate(entries):
            if e is None:
                continue
            ts = e.timestamp
            if isinstance(ts, str) and not _rfc3339(ts):
                errors[i] = (f"labels[{i}].timestamp", "expected seconds since the epoch or an "
                             f"RFC 3339 time such as 2026-01-02T03:04:05Z, got {_short(ts)}")
                continue
            if isinstance(ts, (int, float)) and not ts >= 0:
                errors[i] = (f"labels[{i}].timestamp",
                             f"expected seconds since the epoch (>= 0), got {ts}")
                continue
            pos.append(i)
            ids.append(e.id)
            labels.append(e.label)
            tss.append(_seconds(ts))
        out = LabelReply()
        if ids:
            res = self.monitor.record_labels(ids, labels, model=self.model, timestamps=tss)
            out.matched, out.unmatched = res.matched, res.unmatched
            for j, f, msg in res.rejected or ():
                i = pos[j]
                errors[i] = (f"labels[{i}].{f}", msg)
        out.rejected_labels = len(errors)
        for i in sorted(errors):
            if len(out.rejected) >= MAX_ERRORS:
                out.truncated = True
                break
            f, msg = errors[i]
            out.rejected.append({"index": i, "field": f, "error": msg})
        return out
