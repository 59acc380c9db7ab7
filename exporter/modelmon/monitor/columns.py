"""Input columns: what callers pass, checked and turned into numbers and category slots.

Every function here takes one column (or one batch argument) and returns what
the count arrays need, counting each bad value in a :class:`Problems` with its
reason (``wrong_type``, ``non_finite``, ``missing_required``,
``unknown_feature``) instead of raising. Nothing here holds state or a lock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from ..baseline import category_key, columns_of
from ..catalogue import UNKNOWN

__all__ = [
    "Problems",
    "SchemaViolationError",
    "ValidatedColumns",
    "batch_columns",
    "batch_list",
    "batch_scores",
    "categorical_slots",
    "category_counts",
    "event_columns",
    "numeric_values",
    "tuple_getter",
]

NUMERIC_TYPES = (int, float, np.integer, np.floating)  # bool is an int: accepted as 0/1
FAST_TYPES = frozenset({float, int, bool})
STR_OR_NONE = frozenset({str, type(None)})


class SchemaViolationError(ValueError):
    """Raised by ``strict=True`` monitors; lists every violation of the event or batch."""


class Problems:
    """Violation counts (and, for strict monitors, messages) gathered while counting a batch.

    >>> p = Problems(keep_messages=True)
    >>> p.violation("age", "wrong_type", 2, "expected a number, got str")
    >>> p.violations, p.messages
    ({('age', 'wrong_type'): 2}, ['age: wrong_type (expected a number, got str)'])
    """

    __slots__ = ("violations", "messages", "keep_messages")

    def __init__(self, keep_messages: bool) -> None:
        self.violations: dict[tuple[str, str], int] = {}
        self.messages: list[str] = []
        self.keep_messages = keep_messages

    def violation(self, feature: str, reason: str, n: int = 1, detail: str = "") -> None:
        key = (feature, reason)
        self.violations[key] = self.violations.get(key, 0) + n
        if self.keep_messages and len(self.messages) < 20:
            self.messages.append(f"{feature}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True, slots=True)
class ValidatedColumns:
    """``n`` events whose values a front end (the sidecar, a decoder) has already checked.

    ``numeric`` maps every numeric baseline feature to a float64 array of length
    ``n`` (NaN = missing), or is one ``(n, k)`` matrix of them in baseline
    order; ``categorical`` maps every categorical feature to a list (``None`` =
    missing). ``predictions``, ``probabilities`` and ``latency_seconds`` are
    per-event sequences (``None`` where absent) or empty. ``violations`` adds
    ``(field, reason) -> count`` the front end found (for example in events it
    rejected). ``ids`` (``None`` where absent) and ``timestamps`` remember the
    events with an id for the ground-truth join.
    """

    n: int
    numeric: Mapping[str, np.ndarray] | np.ndarray
    categorical: Mapping[str, list[Any]]
    predictions: Sequence[Any] = ()
    probabilities: Sequence[Any] | np.ndarray = ()
    latency_seconds: Sequence[Any] | np.ndarray = ()
    violations: Mapping[tuple[str, str], int] = field(default_factory=dict)
    ids: Sequence[str | None] = ()
    timestamps: Sequence[float | None] | None = None

    def column(self, feature: str, numeric_order: Mapping[str, int]) -> Sequence[Any]:
        """One feature's values as a list (``None`` = missing), for segmenting."""
        if feature in self.categorical:
            return self.categorical[feature]
        num = self.numeric
        a = num[:, numeric_order[feature]] if isinstance(num, np.ndarray) else num[feature]
        return [None if v != v else v for v in a.tolist()]


def event_columns(feats: Sequence[Any], names: Sequence[str],
                  problems: Problems) -> dict[str, list[Any]]:
    """Single events' feature mappings as one list per baseline feature (``None`` = absent).

    >>> p = Problems(False)
    >>> event_columns([{"a": 1, "b": "x"}, {"a": 2, "zz": 0}], ["a", "b"], p)
    {'a': [1, 2], 'b': ['x', None]}
    >>> p.violations
    {('__unknown__', 'unknown_feature'): 1}
    """
    nf = len(names)
    try:
        if nf and set(map(len, feats)) == {nf}:
            # Every event has nf keys; if each baseline name is found in every
            # event, the key sets are exactly the baseline's. itemgetter and zip
            # transpose the events into columns at C speed.
            if nf == 1:
                return {names[0]: [f[names[0]] for f in feats]}
            return dict(zip(names, map(list, zip(*map(itemgetter(*names), feats)))))
    except (KeyError, TypeError):
        pass
    known = set(names)
    unknown = 0
    good: list[Mapping[str, Any]] = []
    for f in feats:
        if isinstance(f, Mapping):
            good.append(f)
            if len(f) > nf or not known.issuperset(f):
                unknown += sum(1 for k in f if k not in known)
        else:
            good.append({})
            problems.violation(UNKNOWN, "unknown_feature", 1,
                               f"features: expected a mapping, got {type(f).__name__}")
    if unknown:
        problems.violation(UNKNOWN, "unknown_feature", unknown)
    return {k: [f.get(k) for f in good] for k in names}


def numeric_values(name: str, col: Any, n: int, required: bool,
                   problems: Problems) -> np.ndarray:
    """The finite float values of a column (missing and bad ones left out, and counted).

    >>> p = Problems(False)
    >>> numeric_values("x", [1, 2.5, None, "a", float("nan")], 5, True, p)
    array([1. , 2.5])
    >>> sorted(p.violations.items())
    [(('x', 'missing_required'), 1), (('x', 'non_finite'), 1), (('x', 'wrong_type'), 1)]
    """
    if isinstance(col, np.ndarray):
        if col.dtype.kind not in "fiub" or col.ndim != 1:
            return _numeric_slow(name, col.tolist() if col.ndim == 1 else list(col), required,
                                 problems)
        a = col.astype(np.float64, copy=False)
    else:
        # Check the element types first (at C speed): np.asarray on arbitrary input
        # would parse "1.5" as a number and turn a list holding a 1 MB string into a
        # huge fixed-width array.
        if not set(map(type, col)) <= FAST_TYPES:
            return _numeric_slow(name, list(col), required, problems)
        a = np.array(col, dtype=np.float64)
    finite = np.isfinite(a)
    if finite.all():
        return a
    bad = int(n - np.count_nonzero(finite))
    problems.violation(name, "non_finite", bad, "NaN or infinite value")
    return a[finite]


def _numeric_slow(name: str, values: list[Any], required: bool, problems: Problems) -> np.ndarray:
    good: list[float] = []
    missing = wrong = nonfinite = 0
    example = None
    for v in values:
        if v is None:
            missing += 1
        elif isinstance(v, NUMERIC_TYPES):
            f = float(v)
            if math.isfinite(f):
                good.append(f)
            else:
                nonfinite += 1
        else:
            wrong += 1
            example = v
    _report(problems, name, required, missing, wrong, nonfinite,
            f"expected a number, got {type(example).__name__}")
    return np.asarray(good, dtype=np.float64)


def category_counts(col: Sequence[Any], lookup: Mapping[str, int], size: int
                    ) -> tuple[np.ndarray, int] | None:
    """(counts per category slot, missing) of a column of strings and ``None``s.

    Counts distinct values first (C speed); ``None`` for a column holding other
    types (use :func:`categorical_slots`). The last slot is ``__other__``.

    >>> category_counts(["a", "b", "a", None, "zz"], {"a": 0, "b": 1}, 3)
    (array([2, 1, 1]), 1)
    """
    if not set(map(type, col)) <= STR_OR_NONE:
        return None
    counts = np.zeros(size, dtype=np.int64)
    missing = 0
    get = lookup.get
    for v, k in Counter(col).items():
        if v is None:
            missing = k
        else:
            counts[get(v, size - 1)] += k
    return counts, missing


def categorical_slots(name: str, col: Any, n: int, lookup: Mapping[str, int], other: int,
                      required: bool, problems: Problems) -> np.ndarray:
    """Category slot of each usable value (``other`` for unknown categories); problems counted.

    >>> p = Problems(False)
    >>> categorical_slots("c", ["a", 1, None, [1]], 4, {"a": 0, "1": 1}, 2, False, p)
    array([0, 1])
    >>> p.violations
    {('c', 'wrong_type'): 1}
    """
    values = col.tolist() if isinstance(col, np.ndarray) else col
    get = lookup.get
    try:
        idx = [get(v, -1) for v in values]
    except TypeError:  # an unhashable value (list, dict)
        idx = [-1] * n
    a = np.asarray(idx, dtype=np.intp)
    rest = np.flatnonzero(a < 0)
    if not rest.size:
        return a
    missing = wrong = nonfinite = 0
    example = None
    keep = np.ones(n, dtype=bool)
    for i in rest.tolist():
        v = values[i]
        try:
            key = category_key(v)
        except TypeError:
            key = None
            if isinstance(v, float):
                nonfinite += 1
            else:
                wrong += 1
                example = v
            keep[i] = False
            continue
        if key is None:
            if v is None:
                missing += 1
            else:  # NaN
                nonfinite += 1
            keep[i] = False
        else:
            a[i] = get(key, other)
    _report(problems, name, required, missing, wrong, nonfinite,
            f"expected a string, number or bool, got {type(example).__name__}")
    return a[keep]


def _report(problems: Problems, name: str, required: bool, missing: int, wrong: int,
            nonfinite: int, wrong_detail: str) -> None:
    """Count a column's missing (when required), wrongly typed and non-finite values."""
    if missing and required:
        problems.violation(name, "missing_required", missing)
    if wrong:
        problems.violation(name, "wrong_type", wrong, wrong_detail)
    if nonfinite:
        problems.violation(name, "non_finite", nonfinite, "NaN or infinite value")


# -- the arguments of Monitor.observe_batch ---------------------------------------------


def batch_columns(features: Any) -> dict[str, Any]:
    """``observe_batch``'s features: a mapping of columns or a pandas DataFrame."""
    if hasattr(features, "columns") and not isinstance(features, Mapping):
        return columns_of(features)  # a pandas DataFrame, read as Baseline.build reads it
    if isinstance(features, Mapping):
        return {str(k): (v if isinstance(v, (np.ndarray, list)) else list(v))
                for k, v in features.items()}
    raise TypeError(f"observe_batch: expected a mapping of columns or a DataFrame, got "
                    f"{type(features).__name__}")


def batch_list(values: Any, n: int, what: str) -> Sequence[Any]:
    """One per-row argument of ``observe_batch`` as a list of ``n`` (empty when not given)."""
    if values is None:
        return []
    seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if len(seq) != n:
        raise ValueError(f"observe_batch: {what} has {len(seq)} rows, features have {n}")
    return seq


def batch_scores(probabilities: Any, n: int, names: list[str]) -> Sequence[Any] | np.ndarray:
    """``observe_batch``'s probabilities as rows (one numpy array for one score output)."""
    if probabilities is None:
        return []
    if isinstance(probabilities, Mapping):
        cols = {k: batch_list(v, n, f"probabilities[{k!r}]") for k, v in probabilities.items()}
        keys = list(cols)
        return [dict(zip(keys, row)) for row in zip(*cols.values())]
    if (len(names) == 1 and isinstance(probabilities, np.ndarray) and probabilities.ndim == 1
            and probabilities.dtype.kind in "fiub"):
        if probabilities.size != n:
            raise ValueError(f"observe_batch: probabilities has {probabilities.size} rows, "
                             f"features have {n}")
        return probabilities
    a = np.asarray(probabilities, dtype=object if not hasattr(probabilities, "dtype") else None)
    if len(a) != n:
        raise ValueError(f"observe_batch: probabilities has {len(a)} rows, features have {n}")
    if a.ndim == 2:
        return [tuple(r) for r in a.tolist()]
    return list(a.tolist())


def tuple_getter(names: Sequence[str], by: Callable[..., Any] = itemgetter
                 ) -> Callable[[Any], tuple[Any, ...]]:
    """A C-speed function from a mapping (``by=itemgetter``) or an object
    (``by=attrgetter``) to the tuple of its values at ``names``: always a tuple, where
    ``itemgetter`` of one name returns the bare value.

    >>> tuple_getter(["b"])({"a": 1, "b": 2}), tuple_getter(["b", "a"])({"a": 1, "b": 2})
    ((2,), (2, 1))
    """
    if not names:
        return lambda f: ()
    if len(names) == 1:
        get = by(names[0])
        return lambda f: (get(f),)
    return by(*names)  # type: ignore[no-any-return]
