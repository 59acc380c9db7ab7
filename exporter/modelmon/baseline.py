"""The baseline: what training data looked like, as the contract with production.

A :class:`Baseline` holds, per numeric feature, bucket edges at the training
quantiles with the training count in each bucket, min/max/mean/std and the
missing fraction; per categorical feature, the most frequent categories with
their counts (the rest is ``__other__``); the same for the model's outputs;
and the class priors or target distribution where a target is given. For a
binary classifier with one score column and a binary target it also holds a
:class:`Calibration`: outcome and prediction counts per score bucket, from
which a live score histogram gives the expected accuracy, precision, recall
and F1 before labels arrive (:meth:`Calibration.estimate`).

It is saved as versioned YAML with a content hash as its ``id``::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> b = Baseline.build({"age": rng.normal(40, 10, 1000),
    ...                     "region": rng.choice(["north", "south"], 1000)},
    ...                    model="loans", bins=4)
    >>> b.features["age"].edges
    (33.0957, 39.2518, 46.1515)
    >>> b.features["age"].counts
    (250, 250, 250, 250)
    >>> b.features["region"].categories
    ('south', 'north')
    >>> Baseline.from_dict(b.to_dict()).id == b.id
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import numpy as np
import yaml

from .catalogue import OTHER
from .stats.binning import bucket_counts, bucket_index, quantile_edges
from .stats.estimation import PerformanceEstimate, estimate_performance

__all__ = [
    "Baseline",
    "BaselineError",
    "Calibration",
    "NumericSummary",
    "CategoricalSummary",
    "Summary",
    "category_key",
    "SCHEMA_VERSION",
    "OTHER",
]

SCHEMA_VERSION = 1
# OTHER (the category label of everything the baseline did not keep) lives in the catalogue
# with the other label values; imported above and re-exported here for the callers of old.
#: Category strings longer than this are cut at build time and never become labels.
MAX_CATEGORY_LENGTH = 128


class _Dumper(yaml.SafeDumper):
    """Safe YAML with lists of scalars (edges, counts) on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, (int, float, str)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


class BaselineError(ValueError):
    """A baseline that cannot be built, loaded or used; the message names the key."""


def category_key(value: Any) -> str | None:
    """The category string of a value, or None for missing.

    Bools are ``"true"``/``"false"`` (as in JSON), integral floats print as
    integers (``3.0`` → ``"3"``, as a pandas int column with gaps reads back),
    NaN and None are missing. Anything else that is not a str, number or bool
    raises ``TypeError``.

    >>> [category_key(v) for v in ["a", True, 3, 3.0, 2.5, None, float("nan")]]
    ['a', 'true', '3', '3', '2.5', None, None]
    """
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return None
    if t is bool or t is np.bool_:
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return None
        if math.isinf(f):
            raise TypeError("infinite value is not a category")
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    if isinstance(value, (np.str_, bytes)):
        return value.decode() if isinstance(value, bytes) else str(value)
    raise TypeError(f"expected a string, number or bool, got {type(value).__name__}")


@dataclass(frozen=True)
class NumericSummary:
    """Training distribution of a numeric column."""

    name: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    min: float
    max: float
    mean: float
    std: float
    missing_fraction: float
    kind: str = field(default="numeric", init=False)

    @property
    def samples(self) -> int:
        """Non-missing training values."""
        return int(sum(self.counts))

    @property
    def ratios(self) -> np.ndarray:
        """Training fraction per bucket (sums to 1)."""
        c = np.asarray(self.counts, dtype=np.float64)
        return c / c.sum() if c.sum() else c

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "numeric",
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "min": float(self.min), "max": float(self.max),
            "mean": float(self.mean), "std": float(self.std),
            "missing_fraction": float(self.missing_fraction),
        }


@dataclass(frozen=True)
class CategoricalSummary:
    """Training distribution of a categorical column.

    ``counts`` has one entry per category and a last one for ``__other__``.
    """

    name: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    missing_fraction: float
    kind: str = field(default="categorical", init=False)

    @property
    def labels(self) -> tuple[str, ...]:
        """Categories in label order, ``__other__`` last."""
        return self.categories + (OTHER,)

    @property
    def samples(self) -> int:
        return int(sum(self.counts))

    @property
    def ratios(self) -> np.ndarray:
        c = np.asarray(self.counts, dtype=np.float64)
        return c / c.sum() if c.sum() else c

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "categories": {c: int(n) for c, n in zip(self.categories, self.counts)},
            "other_count": int(self.counts[-1]),
            "missing_fraction": float(self.missing_fraction),
        }


Summary = Union[NumericSummary, CategoricalSummary]


@dataclass(frozen=True)
class Calibration:
    """Outcome and prediction rates per score bucket of a binary classifier.

    Built from labelled training rows for label-free performance estimation
    (see :func:`modelmon.stats.estimation.estimate_performance`). The buckets
    are those of the score column's :class:`NumericSummary` (``edges``, ``le``
    convention), so ``len(rows) == len(edges) + 1``; a live histogram of the
    score with the same edges gives the expected confusion matrix.

    Attributes
    ----------
    score : str
        The probability (score) column whose buckets these are.
    positive : str
        The positive class, as its category string (``"1"``, ``"true"``, ``"yes"``).
    prediction : str or None
        The prediction column the predicted class was read from, or None when
        it came from ``score >= threshold``.
    threshold : float or None
        The threshold of the score when ``prediction`` is None, else None.
    rows : tuple of int
        Labelled training rows per bucket (target, score and, when used, the
        prediction present).
    positives : tuple of int
        Of them, actually positive.
    predicted_positive : tuple of int
        Of them, predicted positive.
    true_positive : tuple of int
        Of them, actually and predicted positive.
    """

    score: str
    positive: str
    prediction: str | None
    threshold: float | None
    rows: tuple[int, ...]
    positives: tuple[int, ...]
    predicted_positive: tuple[int, ...]
    true_positive: tuple[int, ...]

    @property
    def samples(self) -> int:
        """Labelled training rows in the table."""
        return int(sum(self.rows))

    def estimate(self, score_counts: Any) -> PerformanceEstimate:
        """Expected accuracy, precision, recall and F1 of live score counts ``(..., B)``.

        See :func:`modelmon.stats.estimation.estimate_performance`.
        """
        return estimate_performance(score_counts, self.rows, self.positives,
                                    self.predicted_positive, self.true_positive)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"score": self.score, "positive": self.positive}
        if self.prediction is not None:
            doc["prediction"] = self.prediction
        else:
            doc["threshold"] = float(self.threshold)  # type: ignore[arg-type]
        doc.update({
            "rows": [int(c) for c in self.rows],
            "positives": [int(c) for c in self.positives],
            "predicted_positive": [int(c) for c in self.predicted_positive],
            "true_positive": [int(c) for c in self.true_positive],
        })
        return doc


# ---------------------------------------------------------------------------
# Building


def _column_array(name: str, values: Any) -> np.ndarray:
    try:
        if isinstance(values, np.ndarray) or hasattr(values, "__array__"):
            arr = np.asarray(values)
        else:
            # A Python sequence: keep each value's own type (np.asarray would turn a
            # list mixing numbers and strings into strings).
            items = list(values)
            types = set(map(type, items))
            arr = (np.asarray(items, dtype=np.float64) if types and types <= {int, float}
                   else np.asarray(items, dtype=object))
    except Exception as exc:  # ragged or exotic input
        raise BaselineError(f"column {name!r}: cannot read as a 1-D column: {exc}") from None
    if arr.ndim == 0:
        raise BaselineError(f"column {name!r}: expected a column of values, got a scalar")
    if arr.ndim != 1:
        raise BaselineError(f"column {name!r}: expected a 1-D column, got shape {arr.shape}")
    if arr.dtype.kind in "mM":
        raise BaselineError(
            f"column {name!r}: dates and durations are not supported; convert them to "
            "numbers (e.g. age in days) or exclude the column")
    return arr


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _summarise(name: str, values: Any, *, categorical: bool, bins: int,
               max_categories: int) -> Summary:
    arr = _column_array(name, values)
    n = arr.size
    if n == 0:
        raise BaselineError(f"column {name!r}: no rows")
    kind = arr.dtype.kind
    if not categorical and kind in "iuf":
        return _numeric(name, arr.astype(np.float64), n, bins)
    if not categorical and kind == "O":
        items = arr.tolist()
        present = [v for v in items if v is not None and not (isinstance(v, float) and math.isnan(v))]
        numbers = sum(1 for v in present if _is_number(v))
        if present and numbers == len(present):
            return _numeric(name, np.array([np.nan if v is None else v for v in items],
                                           dtype=np.float64), n, bins)
        if numbers:
            example = next((v for v in present if not _is_number(v)))
            raise BaselineError(
                f"column {name!r}: mixes numbers ({numbers} values) and other values "
                f"(e.g. {str(example)[:40]!r}); clean the column, or declare it categorical "
                f"(categorical=[...] / --categorical {name})")
    return _categorical(name, arr, n, max_categories)


def _numeric(name: str, v: np.ndarray, n: int, bins: int) -> NumericSummary:
    inf = np.isinf(v)
    if inf.any():
        raise BaselineError(
            f"column {name!r}: {int(inf.sum())} infinite values; training data must be finite "
            "(use NaN for missing)")
    finite = v[~np.isnan(v)]
    if finite.size == 0:
        raise BaselineError(
            f"column {name!r}: all {n} values are missing; exclude it (exclude=[...] / "
            f"--exclude {name}) or fix the data")
    edges = quantile_edges(finite, bins)
    counts = bucket_counts(edges, finite)
    return NumericSummary(
        name=name,
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        min=float(finite.min()), max=float(finite.max()),
        mean=float(finite.mean()), std=float(finite.std()),
        missing_fraction=float((n - finite.size) / n),
    )


def _categorical(name: str, arr: np.ndarray, n: int, max_categories: int) -> CategoricalSummary:
    counter: Counter[str] = Counter()
    missing = 0
    for i, v in enumerate(arr.tolist()):
        try:
            key = category_key(v)
        except TypeError as exc:
            raise BaselineError(f"column {name!r}, row {i}: {exc}") from None
        if key is None:
            missing += 1
        else:
            counter[key[:MAX_CATEGORY_LENGTH]] += 1
    if not counter:
        raise BaselineError(
            f"column {name!r}: all {n} values are missing; exclude it or fix the data")
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [kv for kv in ranked[:max_categories] if kv[0] != OTHER]
    other = n - missing - sum(c for _, c in kept)
    return CategoricalSummary(
        name=name,
        categories=tuple(k for k, _ in kept),
        counts=tuple(c for _, c in kept) + (other,),
        missing_fraction=float(missing / n),
    )


def columns_of(data: Any) -> dict[str, Any]:
    """Columns of a mapping or a pandas DataFrame (nullable dtypes read as objects, missing as None)."""
    if hasattr(data, "columns") and hasattr(data, "__getitem__") and not isinstance(data, Mapping):
        # pandas DataFrame (duck-typed, so pandas stays optional).
        out: dict[str, Any] = {}
        for c in data.columns:
            col = data[c]
            if str(getattr(col, "dtype", "")) in ("category", "string", "boolean") or \
                    str(getattr(col, "dtype", "")).startswith(("Int", "UInt", "Float")):
                col = col.astype(object).where(col.notna(), None)
            out[str(c)] = col.to_numpy()
        return out
    if isinstance(data, Mapping):
        return {str(k): v for k, v in data.items()}
    raise BaselineError(
        f"data: expected a mapping of column name to values or a pandas DataFrame, "
        f"got {type(data).__name__}")


def _names(arg: str | Sequence[str] | None) -> list[str]:
    if arg is None:
        return []
    if isinstance(arg, str):
        return [arg]
    return [str(a) for a in arg]


# ---------------------------------------------------------------------------
# Calibration of a binary classifier's score

#: Binary target classes whose positive class goes without saying.
_IMPLICIT_POSITIVE = {frozenset({"0", "1"}): "1", frozenset({"false", "true"}): "true"}


def _keys(name: str, values: Any) -> np.ndarray:
    """Category string of each value (None for missing), as an object array."""
    arr = _column_array(name, values)
    if arr.dtype.kind in "biuf":
        # Vectorised through the distinct values (NaN comes out of np.unique as
        # one or more NaN entries, each mapping to None).
        uniq, inverse = np.unique(arr, return_inverse=True)
        keys = np.array([category_key(v) for v in uniq.tolist()], dtype=object)
        return keys[inverse.reshape(-1)]
    out = np.empty(arr.size, dtype=object)
    for i, v in enumerate(arr.tolist()):
        try:
            k = category_key(v)
        except TypeError as exc:
            raise BaselineError(f"column {name!r}, row {i}: {exc}") from None
        out[i] = None if k is None else k[:MAX_CATEGORY_LENGTH]
    return out


def _present(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-missing keys."""
    return np.fromiter((k is not None for k in keys.tolist()), dtype=bool, count=keys.size)


def _floats(name: str, values: Any) -> np.ndarray:
    """A numeric column as float64, missing as NaN (the column was summarised as numeric)."""
    arr = _column_array(name, values)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64)
    return np.array([np.nan if v is None else v for v in arr.tolist()], dtype=np.float64)


def _calibration(cols: Mapping[str, Any], *, score: NumericSummary, target: str,
                 prediction: str | None, positive: Any,
                 threshold: float | None) -> Calibration | None:
    """The calibration table, or None when the data cannot give one.

    None (no calibration, silently) when the target does not have exactly two
    classes, or when the prediction column's classes are not target classes
    (e.g. ``approve``/``reject`` for a 0/1 target) and no threshold is given.
    When ``positive`` or ``threshold`` was passed, the caller asked for a
    calibration, so those cases raise instead.
    """
    explicit = positive is not None or threshold is not None
    raw = _column_array(target, cols[target])
    if raw.dtype.kind in "iuf" and not explicit:
        # A regression target: skip the category strings of a million distinct values.
        distinct = np.unique(raw)
        if distinct[~np.isnan(distinct)].size != 2 if raw.dtype.kind == "f" else distinct.size != 2:
            return None
    y_keys = _keys(target, raw)
    classes = sorted({k for k in y_keys.tolist() if k is not None})
    if len(classes) != 2:
        if explicit:
            raise BaselineError(
                f"positive, threshold: the score calibration needs a binary target; column "
                f"{target!r} has {len(classes)} classes")
        return None
    if positive is None:
        pos = _IMPLICIT_POSITIVE.get(frozenset(classes))
        if pos is None:
            raise BaselineError(
                f"positive: the target {target!r} has the classes {classes[0]!r} and "
                f"{classes[1]!r}; say which one is positive (positive={classes[1]!r}) for the "
                "score calibration")
    else:
        try:
            pos = category_key(positive)
        except TypeError as exc:
            raise BaselineError(f"positive: {exc}") from None
        if pos is None or pos not in classes:
            raise BaselineError(
                f"positive: expected one of the target classes {classes[0]!r} and "
                f"{classes[1]!r}, got {positive!r}")
    s = _floats(score.name, cols[score.name])
    actual = y_keys == pos
    ok = _present(y_keys) & np.isfinite(s)
    pred_col: str | None = None
    if threshold is not None:
        predicted = s >= threshold
    elif prediction is not None:
        p_keys = _keys(prediction, cols[prediction])
        p_classes = {k for k in p_keys[ok].tolist() if k is not None}
        if not p_classes <= set(classes):
            if explicit:
                shown = ", ".join(repr(c) for c in sorted(p_classes)[:5])
                raise BaselineError(
                    f"column {prediction!r}: the predicted classes ({shown}) are not the target "
                    f"classes {classes[0]!r} and {classes[1]!r}; pass threshold= to predict "
                    "positive from the score instead")
            return None
        predicted = p_keys == pos
        ok &= _present(p_keys)
        pred_col = prediction
    else:
        threshold = 0.5
        predicted = s >= threshold
    if not ok.any():
        if explicit:
            raise BaselineError(f"column {target!r}: no row has both a label and a score")
        return None
    nb = len(score.edges) + 1
    idx = bucket_index(score.edges, s[ok])

    def count(mask: np.ndarray | None = None) -> tuple[int, ...]:
        sel = idx if mask is None else idx[mask[ok]]
        return tuple(int(c) for c in np.bincount(sel, minlength=nb))

    return Calibration(
        score=score.name, positive=pos, prediction=pred_col,
        threshold=None if pred_col is not None else float(threshold),  # type: ignore[arg-type]
        rows=count(), positives=count(actual), predicted_positive=count(predicted),
        true_positive=count(actual & predicted))


# ---------------------------------------------------------------------------
# Validation of a loaded document


def _fail(where: str, key: str, expected: str, got: Any) -> BaselineError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return BaselineError(f"{where}key '{key}': expected {expected}, got {shown}")


def _req(d: Mapping[str, Any], key: str, path: str, where: str) -> Any:
    if key not in d:
        return _raise(BaselineError(f"{where}key '{path}{key}': missing"))
    return d[key]


def _raise(exc: Exception) -> Any:
    raise exc


def _num(v: Any, key: str, where: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if not _is_number(v) or not math.isfinite(float(v)):
        raise _fail(where, key, "a finite number", v)
    f = float(v)
    if (lo is not None and f < lo) or (hi is not None and f > hi):
        raise _fail(where, key, f"a number in [{lo}, {hi}]", v)
    return f


def _counts(v: Any, key: str, where: str, length: int | None = None) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                          for c in v):
        raise _fail(where, key, "a list of non-negative integers", v)
    if length is not None and len(v) != length:
        raise _fail(where, key, f"{length} counts (one per bucket, len(edges) + 1)", v)
    return tuple(v)


def _summary_from_dict(name: str, d: Any, path: str, where: str) -> Summary:
    if not isinstance(d, Mapping):
        raise _fail(where, path.rstrip("."), "a mapping", d)
    kind = _req(d, "type", path, where)
    mf = _num(_req(d, "missing_fraction", path, where), path + "missing_fraction", where, lo=0, hi=1)
    if kind == "numeric":
        edges = _req(d, "edges", path, where)
        if (not isinstance(edges, list) or not edges
                or not all(_is_number(e) and math.isfinite(e) for e in edges)
                or any(b <= a for a, b in zip(edges, edges[1:]))):
            raise _fail(where, path + "edges", "a non-empty, strictly increasing list of finite numbers",
                        edges)
        counts = _counts(_req(d, "counts", path, where), path + "counts", where, len(edges) + 1)
        vals = {k: _num(_req(d, k, path, where), path + k, where)
                for k in ("min", "max", "mean", "std")}
        if vals["min"] > vals["max"]:
            raise _fail(where, path + "min", f"a number <= max ({vals['max']})", vals["min"])
        return NumericSummary(name=name, edges=tuple(float(e) for e in edges), counts=counts,
                              min=vals["min"], max=vals["max"], mean=vals["mean"],
                              std=vals["std"], missing_fraction=mf)
    if kind == "categorical":
        cats = _req(d, "categories", path, where)
        if not isinstance(cats, Mapping) or not all(
                isinstance(k, str) and isinstance(c, int) and c >= 0 for k, c in cats.items()):
            raise _fail(where, path + "categories",
                        "a mapping of category string to non-negative count", cats)
        if OTHER in cats:
            raise _fail(where, path + "categories", f"no category named {OTHER!r}", OTHER)
        other = _req(d, "other_count", path, where)
        if not isinstance(other, int) or other < 0:
            raise _fail(where, path + "other_count", "a non-negative integer", other)
        return CategoricalSummary(name=name, categories=tuple(cats), counts=tuple(cats.values()) + (other,),
                                  missing_fraction=mf)
    raise _fail(where, path + "type", "'numeric' or 'categorical'", kind)


def _calibration_from_dict(d: Any, probs: Mapping[str, NumericSummary], pred: Summary | None,
                           tgt: Summary | None, where: str) -> Calibration:
    path = "calibration."
    if not isinstance(d, Mapping):
        raise _fail(where, "calibration", "a mapping", d)
    if tgt is None:
        raise _fail(where, "calibration", "no calibration in a baseline without a target",
                    "calibration")
    score = _req(d, "score", path, where)
    if not isinstance(score, str) or score not in probs:
        raise _fail(where, path + "score",
                    f"the name of a probability column ({', '.join(sorted(probs)) or 'none'})",
                    score)
    positive = _req(d, "positive", path, where)
    if not isinstance(positive, str) or not positive:
        raise _fail(where, path + "positive", "the positive class as a non-empty string", positive)
    prediction = d.get("prediction")
    threshold = d.get("threshold")
    if (prediction is None) == (threshold is None):
        raise _fail(where, path + "prediction",
                    "exactly one of 'prediction' (column) and 'threshold' (number)",
                    {"prediction": prediction, "threshold": threshold})
    if prediction is not None and (pred is None or prediction != pred.name):
        raise _fail(where, path + "prediction",
                    f"the prediction column ({pred.name!r})" if pred is not None
                    else "no prediction (the baseline has no prediction column)", prediction)
    thr = None if threshold is None else _num(threshold, path + "threshold", where)
    nb = len(probs[score].edges) + 1
    arrays = {k: _counts(_req(d, k, path, where), path + k, where, nb)
              for k in ("rows", "positives", "predicted_positive", "true_positive")}
    n, pos, pp, tp = (np.asarray(arrays[k], dtype=np.int64) for k in
                      ("rows", "positives", "predicted_positive", "true_positive"))
    for key, bad, rule in (
            ("positives", pos > n, "at most rows"),
            ("predicted_positive", pp > n, "at most rows"),
            ("true_positive", (tp > pos) | (tp > pp), "at most positives and predicted_positive"),
            ("rows", pos + pp - tp > n, "at least positives + predicted_positive - true_positive")):
        if bad.any():
            b = int(np.argmax(bad))
            raise _fail(where, path + key, f"{rule} in every bucket (bucket {b})", arrays[key])
    return Calibration(score=score, positive=positive, prediction=prediction, threshold=thr,
                       **arrays)


# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Training-time distributions of one model version.

    Build one with :meth:`build`, persist it with :meth:`save`, read it with
    :meth:`load`. ``id`` is a content hash (the same data gives the same id).
    """

    model: str
    model_version: str
    features: Mapping[str, Summary]
    prediction: Summary | None = None
    probabilities: Mapping[str, NumericSummary] = field(default_factory=dict)
    target: Summary | None = None
    rows: int = 0
    created_at: str = ""
    id: str = ""
    calibration: Calibration | None = None

    # -- construction -------------------------------------------------------

    @classmethod
    def build(
        cls,
        data: Any,
        *,
        model: str,
        model_version: str = "1",
        features: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        prediction: str | None = None,
        probability: str | Sequence[str] | None = None,
        target: str | None = None,
        exclude: Sequence[str] | None = None,
        bins: int = 20,
        max_categories: int = 50,
        positive: Any = None,
        threshold: float | None = None,
    ) -> "Baseline":
        """Summarise training data into a baseline.

        Parameters
        ----------
        data : mapping of column name to array-like, or pandas.DataFrame
        model, model_version : str
            Become the ``model`` and ``model_version`` labels.
        features : sequence of str, optional
            Feature columns; default every column that is not an output, the
            target, or excluded.
        categorical : sequence of str, optional
            Columns to treat as categorical even when numeric. Strings and bools
            are categorical anyway.
        prediction : str, optional
            The model output: a predicted class (categorical) or value (numeric).
        probability : str or sequence of str, optional
            Score column(s): one for the positive class of a binary model, or
            one per class.
        target : str, optional
            Ground truth: class priors (categorical) or target distribution.
        exclude : sequence of str, optional
            Columns to leave out.
        bins : int
            Buckets per numeric column (each holds about ``1/bins`` of the rows).
        max_categories : int
            Categories kept per categorical column; the rest is ``__other__``.
        positive : str, int or bool, optional
            The positive class of a binary target. Default ``1`` / ``True``
            when the classes are 0 and 1 (or ``"0"`` and ``"1"``) or False and
            True; any other pair of classes needs it.
        threshold : float, optional
            Predict positive when ``score >= threshold`` for the calibration.
            Default: the ``prediction`` column when its classes are the
            target's, else 0.5 when there is no prediction column.

        Notes
        -----
        With a binary ``target`` (exactly two classes) and exactly one
        ``probability`` column, the baseline also gets a :class:`Calibration`
        over that score's buckets (``calibration``), for label-free
        performance estimation. The predicted class comes from ``threshold``
        when given, else from the ``prediction`` column when its classes are
        target classes, else (no prediction column) from ``score >= 0.5``. A
        prediction column with other classes (``approve``/``reject`` for a 0/1
        target) and no threshold gives no calibration. Rows missing the
        target, the score or the prediction it uses are left out of it.
        """
        if not isinstance(model, str) or not model:
            raise BaselineError("model: expected a non-empty string")
        if not isinstance(bins, int) or not 2 <= bins <= 200:
            raise BaselineError(f"bins: expected an integer from 2 to 200, got {bins!r}")
        if not isinstance(max_categories, int) or not 1 <= max_categories <= 1000:
            raise BaselineError(f"max_categories: expected an integer from 1 to 1000, got {max_categories!r}")
        cols = columns_of(data)
        if not cols:
            raise BaselineError("data: no columns")
        lengths = {k: len(v) for k, v in cols.items() if hasattr(v, "__len__")}
        if len(set(lengths.values())) > 1:
            raise BaselineError(f"data: columns have different lengths: {lengths}")
        rows = next(iter(lengths.values()), 0)
        if rows == 0:
            raise BaselineError("data: no rows")
        probs = _names(probability)
        cat = set(_names(categorical))
        outputs = set(probs) | ({prediction} if prediction else set()) | ({target} if target else set())
        for name in sorted(outputs | cat | set(_names(exclude)) | set(_names(features))):
            if name not in cols:
                raise BaselineError(f"column {name!r}: not in the data (columns: "
                                    f"{', '.join(sorted(cols)[:20])})")
        excluded = set(_names(exclude)) | outputs
        names = [f for f in (_names(features) or list(cols)) if f not in excluded]
        if not names:
            raise BaselineError("features: no feature columns left")
        summ = {name: _summarise(name, cols[name], categorical=name in cat, bins=bins,
                                 max_categories=max_categories) for name in names}
        pred = (_summarise(prediction, cols[prediction], categorical=prediction in cat, bins=bins,
                           max_categories=max_categories) if prediction else None)
        prob: dict[str, NumericSummary] = {}
        for p in probs:
            s = _summarise(p, cols[p], categorical=False, bins=bins, max_categories=max_categories)
            if not isinstance(s, NumericSummary):
                raise BaselineError(f"column {p!r}: a probability column must be numeric")
            prob[p] = s
        tgt = (_summarise(target, cols[target], categorical=target in cat, bins=bins,
                          max_categories=max_categories) if target else None)
        if threshold is not None and not (_is_number(threshold) and math.isfinite(threshold)):
            raise BaselineError(f"threshold: expected a finite number, got {threshold!r}")
        cal = None
        if target and len(prob) == 1:
            cal = _calibration(cols, score=next(iter(prob.values())), target=target,
                               prediction=prediction, positive=positive,
                               threshold=None if threshold is None else float(threshold))
        elif positive is not None or threshold is not None:
            raise BaselineError(
                "positive, threshold: the score calibration needs a target and exactly one "
                f"probability column, got {len(prob)} probability columns"
                + ("" if target else " and no target"))
        b = cls(model=model, model_version=str(model_version), features=summ, prediction=pred,
                probabilities=prob, target=tgt, rows=int(rows), calibration=cal,
                created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat())
        return b._with_id()

    def _content(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "model_version": self.model_version,
            "rows": self.rows,
            "features": {n: s.to_dict() for n, s in self.features.items()},
        }
        if self.prediction is not None:
            doc["prediction"] = {"column": self.prediction.name, **self.prediction.to_dict()}
        if self.probabilities:
            doc["probabilities"] = {n: s.to_dict() for n, s in self.probabilities.items()}
        if self.target is not None:
            doc["target"] = {"column": self.target.name, **self.target.to_dict()}
        if self.calibration is not None:
            doc["calibration"] = self.calibration.to_dict()
        return doc

    def _with_id(self) -> "Baseline":
        blob = json.dumps(self._content(), sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        return Baseline(**{**self.__dict__, "id": digest})

    # -- persistence --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The YAML document as a dict (``id`` and ``created_at`` first)."""
        content = self._content()
        return {"schema_version": SCHEMA_VERSION, "id": self.id, "created_at": self.created_at,
                **{k: v for k, v in content.items() if k != "schema_version"}}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the baseline as YAML; returns the path."""
        p = Path(path)
        text = yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         width=120)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Baseline":
        """Read and validate a baseline file.

        Raises :class:`BaselineError` naming the file, the key and what was expected.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise BaselineError(f"{p}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise BaselineError(f"{p}: not UTF-8 text (byte {exc.start}): expected a baseline "
                                "YAML file") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BaselineError(f"{p}: not valid YAML: {exc}") from None
        return cls.from_dict(doc, source=str(p))

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = "") -> "Baseline":
        """Validate a parsed document (see :meth:`to_dict`)."""
        where = f"{source}: " if source else ""
        if not isinstance(doc, Mapping):
            raise BaselineError(f"{where}expected a YAML mapping at the top level, got "
                                f"{type(doc).__name__}")
        sv = _req(doc, "schema_version", "", where)
        if sv != SCHEMA_VERSION:
            raise _fail(where, "schema_version", f"{SCHEMA_VERSION} (this modelmon reads schema "
                        f"version {SCHEMA_VERSION})", sv)
        model = _req(doc, "model", "", where)
        if not isinstance(model, str) or not model:
            raise _fail(where, "model", "a non-empty string", model)
        version = _req(doc, "model_version", "", where)
        if not isinstance(version, (str, int)) or isinstance(version, bool) or str(version) == "":
            raise _fail(where, "model_version", "a non-empty string", version)
        rows = doc.get("rows", 0)
        if not isinstance(rows, int) or rows < 0:
            raise _fail(where, "rows", "a non-negative integer", rows)
        feats = _req(doc, "features", "", where)
        if not isinstance(feats, Mapping) or not feats:
            raise _fail(where, "features", "a non-empty mapping of feature name to summary", feats)
        features: dict[str, Summary] = {}
        for name, d in feats.items():
            if not isinstance(name, str) or not name:
                raise _fail(where, "features", "feature names that are non-empty strings", name)
            features[name] = _summary_from_dict(name, d, f"features.{name}.", where)
        pred = None
        if doc.get("prediction") is not None:
            d = doc["prediction"]
            col = d.get("column") if isinstance(d, Mapping) else None
            if not isinstance(col, str) or not col:
                raise _fail(where, "prediction.column", "the prediction column name", col)
            pred = _summary_from_dict(col, d, "prediction.", where)
        probs: dict[str, NumericSummary] = {}
        raw_probs = doc.get("probabilities") or {}
        if not isinstance(raw_probs, Mapping):
            raise _fail(where, "probabilities", "a mapping of score column to numeric summary", raw_probs)
        for name, d in raw_probs.items():
            s = _summary_from_dict(str(name), d, f"probabilities.{name}.", where)
            if not isinstance(s, NumericSummary):
                raise _fail(where, f"probabilities.{name}.type", "'numeric'", "categorical")
            probs[str(name)] = s
        tgt = None
        if doc.get("target") is not None:
            d = doc["target"]
            col = d.get("column") if isinstance(d, Mapping) else None
            if not isinstance(col, str) or not col:
                raise _fail(where, "target.column", "the target column name", col)
            tgt = _summary_from_dict(col, d, "target.", where)
        outputs = ([pred.name] if pred else []) + list(probs)
        clash = set(outputs) & set(features)
        if clash:
            raise _fail(where, "features", "no feature with the name of an output",
                        sorted(clash)[0])
        cal = None
        if doc.get("calibration") is not None:
            cal = _calibration_from_dict(doc["calibration"], probs, pred, tgt, where)
        b = cls(model=model, model_version=str(version), features=features, prediction=pred,
                probabilities=probs, target=tgt, rows=rows, calibration=cal,
                created_at=str(doc.get("created_at", "")))
        b = b._with_id()
        stored = doc.get("id")
        if stored is not None and stored != b.id:
            raise BaselineError(
                f"{where}key 'id': expected the content hash {b.id!r}, got {stored!r}; the file "
                "was edited after it was built (rebuild it, or delete the id line to accept the edit)")
        return b

    # -- views ----------------------------------------------------------------

    @property
    def numeric_features(self) -> dict[str, NumericSummary]:
        return {n: s for n, s in self.features.items() if isinstance(s, NumericSummary)}

    @property
    def categorical_features(self) -> dict[str, CategoricalSummary]:
        return {n: s for n, s in self.features.items() if isinstance(s, CategoricalSummary)}

    @property
    def numeric_outputs(self) -> dict[str, NumericSummary]:
        """Outputs exported as ``modelmon_prediction_value{output}``: scores and a numeric prediction."""
        out: dict[str, NumericSummary] = dict(self.probabilities)
        if isinstance(self.prediction, NumericSummary):
            out[self.prediction.name] = self.prediction
        return out

    @property
    def task(self) -> str | None:
        """``classification``, ``regression`` or None when the baseline has no output or target."""
        ref = self.prediction or self.target
        if ref is None:
            return "classification" if self.probabilities else None
        return "classification" if isinstance(ref, CategoricalSummary) else "regression"

    def describe(self) -> list[dict[str, Any]]:
        """One row per column for ``modelmon baseline show``."""
        rows: list[dict[str, Any]] = []

        def add(role: str, s: Summary) -> None:
            if isinstance(s, NumericSummary):
                detail = (f"{len(s.edges) + 1} buckets, range [{s.min:.6g}, {s.max:.6g}], "
                          f"mean {s.mean:.6g}, std {s.std:.6g}")
            else:
                top = ", ".join(s.categories[:3]) + (", …" if len(s.categories) > 3 else "")
                detail = f"{len(s.categories)} categories ({top}), other {s.ratios[-1]:.1%}"
            rows.append({"column": s.name, "role": role, "type": s.kind,
                         "missing": f"{s.missing_fraction:.1%}", "detail": detail})

        for s in self.features.values():
            add("feature", s)
        if self.prediction is not None:
            add("prediction", self.prediction)
        for s in self.probabilities.values():
            add("probability", s)
        if self.target is not None:
            add("target", self.target)
        return rows

