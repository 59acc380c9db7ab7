"""``wrap``: monitor any model object with ``predict`` / ``predict_proba`` (scikit-learn style)."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..baseline import category_key
from ._paths import RateLimitedLog

__all__ = ["MonitoredModel", "wrap"]

log = logging.getLogger("modelmon.wrap")

_SEP = re.compile(r"[^0-9A-Za-z]+")


def wrap(model: Any, monitor: Any, *, model_name: str | None = None) -> MonitoredModel:
    """Wrap a model so that its ``predict`` and ``predict_proba`` calls are counted.

    The proxy calls the model, times the call with ``monitor.clock`` and counts
    the rows with ``monitor.observe_batch``; results are returned unchanged (the
    very object the model returned), also when monitoring fails (failures are
    logged, rate-limited). Every other attribute (``classes_``, ``fit``,
    ``score``, ...) is the model's.

    Parameters
    ----------
    model : object
        Anything with ``predict`` and/or ``predict_proba``.
    monitor : Monitor
    model_name : str, optional
        Model name in the monitor; required when it serves several models.

    Returns
    -------
    MonitoredModel

    Notes
    -----
    What is counted, per call of ``predict(X)`` or ``predict_proba(X)``:

    * features: the columns of a pandas DataFrame; for a 2-D numpy array or a
      list of rows, column ``j`` is the baseline's ``j``-th feature
      (``list(baseline.features)``). A different column count is logged and
      the call is not counted.
    * ``predict``: the returned predictions (when the baseline has a prediction).
    * ``predict_proba``: the scores. With one baseline score column (a binary
      classifier) that is the positive class: the column of the class the score
      column is named after (``"p_yes"`` or ``"yes"`` for class ``"yes"``) when
      that can be told, else the last column. With ``k`` score columns, the
      ``(n, k)`` array (columns matched to classes by name when possible, else by
      position). When the baseline has a prediction and the model has
      ``classes_``, the predicted class ``classes_[argmax]`` is counted too.
    * latency: the time of the call; every row of the call gets that latency.

    Double counting: ``p = m.predict_proba(X); y = m.predict(X)`` counts the rows
    of ``X`` once. When a call of one of the two methods is immediately followed
    (in the same thread) by a call of the other on the *same object* ``X``, the
    second call counts nothing: the first has counted the features, its
    outputs and the latency. Call ``predict_proba`` first when you want both
    the scores and the classes counted. The wrapper keeps a reference to the
    last ``X`` of each thread (a weak one when ``X`` allows it) to tell.

    Pickling the wrapper pickles the bare model (monitoring is per process).

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> from modelmon import Baseline, Monitor, wrap
    >>> class Doubler:
    ...     def predict(self, X):
    ...         return [2 * row[0] for row in X]
    >>> b = Baseline.build({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 6.0]},
    ...                    model="m", prediction="y", bins=2)
    >>> reg = CollectorRegistry()
    >>> m = wrap(Doubler(), Monitor(b, registry=reg))
    >>> m.predict([[1.0], [2.5]])
    [2.0, 5.0]
    >>> reg.get_sample_value("modelmon_predictions_total", {"model": "m", "model_version": "1"})
    2.0
    """
    return MonitoredModel(model, monitor, model_name=model_name)


def _unwrapped(model: Any) -> Any:
    return model


class MonitoredModel:
    """Proxy returned by :func:`wrap`; see there."""

    def __init__(self, model: Any, monitor: Any, *, model_name: str | None = None) -> None:
        if not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
            raise TypeError(f"model: expected an object with predict or predict_proba, got "
                            f"{type(model).__name__}")
        models = getattr(monitor, "models", None)
        if not isinstance(models, Mapping) or not hasattr(monitor, "observe_batch"):
            raise TypeError(f"monitor: expected a modelmon Monitor, got {type(monitor).__name__}")
        if model_name is None:
            if len(models) != 1:
                raise ValueError(f"model_name: the monitor serves several models; pass one of "
                                 f"{sorted(models)}")
            baseline = next(iter(models.values()))
        else:
            if model_name not in models:
                raise ValueError(f"model_name: {model_name!r} is not served by the monitor "
                                 f"(models: {sorted(models)})")
            baseline = models[model_name]
        s = object.__setattr__
        s(self, "_mm_model", model)
        s(self, "_mm_monitor", monitor)
        s(self, "_mm_name", model_name)
        s(self, "_mm_features", list(baseline.features))
        s(self, "_mm_has_pred", baseline.prediction is not None)
        s(self, "_mm_scores", list(baseline.probabilities))
        s(self, "_mm_local", threading.local())
        s(self, "_mm_log", RateLimitedLog(log))

    # -- proxying -------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_mm_"):
            raise AttributeError(name)
        return getattr(self._mm_model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_mm_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._mm_model, name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_mm_"):
            object.__delattr__(self, name)
        else:
            delattr(self._mm_model, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(dir(self._mm_model)))

    def __repr__(self) -> str:
        return f"MonitoredModel({self._mm_model!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unwrapped, (self._mm_model,))

    @property
    def wrapped(self) -> Any:
        """The bare model."""
        return self._mm_model

    @property
    def predict(self) -> Callable[..., Any]:
        """The model's ``predict``, counted (see :func:`wrap`)."""
        fn = self._mm_model.predict  # AttributeError when the model has none

        @functools.wraps(fn)
        def predict(X: Any, *args: Any, **kwargs: Any) -> Any:
            return self._mm_call("predict", fn, X, args, kwargs)
        return predict

    @property
    def predict_proba(self) -> Callable[..., Any]:
        """The model's ``predict_proba``, counted (see :func:`wrap`)."""
        fn = self._mm_model.predict_proba

        @functools.wraps(fn)
        def predict_proba(X: Any, *args: Any, **kwargs: Any) -> Any:
            return self._mm_call("predict_proba", fn, X, args, kwargs)
        return predict_proba

    # -- counting -------------------------------------------------------------

    def _mm_now(self) -> float | None:
        try:
            return float(getattr(self._mm_monitor, "clock", time.perf_counter)())
        except Exception:  # noqa: BLE001
            return None

    def _mm_call(self, kind: str, fn: Callable[..., Any], X: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        t0 = self._mm_now()
        out = fn(X, *args, **kwargs)
        t1 = self._mm_now()
        try:
            latency = max(0.0, t1 - t0) if t0 is not None and t1 is not None else None
            self._mm_count(kind, X, out, latency)
        except Exception as exc:  # noqa: BLE001 - never let monitoring break predictions
            self._mm_log.report("count", "modelmon wrap: %s was not counted (%s: %s)", kind,
                                 type(exc).__name__, exc, exc_info=True)
        return out

    def _mm_seen(self, kind: str, X: Any) -> bool:
        """True when X was counted by the other method in this thread's previous call."""
        local = self._mm_local
        prev = getattr(local, "last", None)
        if prev is not None and prev[0] != kind and prev[1]() is X and prev[2] == _shape(X):
            local.last = None
            return True
        try:
            ref: Callable[[], Any] = weakref.ref(X)
        except TypeError:
            ref = functools.partial(_unwrapped, X)
        local.last = (kind, ref, _shape(X))
        return False

    def _mm_count(self, kind: str, X: Any, out: Any, latency: float | None) -> None:
        if self._mm_seen(kind, X):
            return
        cols = self._mm_columns(X)
        if cols is None:
            return
        features, n = cols
        if n == 0:
            return
        predictions = probabilities = None
        if kind == "predict":
            if self._mm_has_pred:
                predictions = self._mm_predictions(out, n)
        else:
            probabilities, predictions = self._mm_probabilities(out, n)
        self._mm_monitor.observe_batch(
            features, predictions=predictions, probabilities=probabilities,
            latency_seconds=None if latency is None else np.full(n, latency),
            model=self._mm_name)

    def _mm_columns(self, X: Any) -> tuple[Any, int] | None:
        names = self._mm_features
        if hasattr(X, "columns") and hasattr(X, "__getitem__") and not isinstance(X, Mapping):
            return X, len(X)  # a DataFrame: its own column names
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            self._mm_log.report("sparse", "modelmon wrap: sparse input is not counted")
            return None
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(names):
                self._mm_log.report(
                    "shape", "modelmon wrap: input of shape %s does not match the baseline's %d "
                    "features %s; not counted", X.shape, len(names), names[:10])
                return None
            return {name: X[:, j] for j, name in enumerate(names)}, X.shape[0]
        rows = list(X)
        widths = {len(r) for r in rows}
        if widths and widths != {len(names)}:
            self._mm_log.report(
                "shape-rows", "modelmon wrap: rows of %s values do not match the baseline's %d "
                "features %s; not counted", sorted(widths)[:5], len(names), names[:10])
            return None
        cols = list(zip(*rows)) if rows else [() for _ in names]
        return {name: list(c) for name, c in zip(names, cols)}, len(rows)

    def _mm_predictions(self, out: Any, n: int) -> Any:
        a = out
        if isinstance(out, np.ndarray):
            if out.ndim == 2 and out.shape[1] == 1:
                a = out[:, 0]
            elif out.ndim != 1:
                self._mm_log.report("pred-shape", "modelmon wrap: predictions of shape %s are "
                                     "not counted (one output per row expected)", out.shape)
                return None
        elif hasattr(out, "to_numpy"):  # a pandas Series
            a = out.to_numpy()
        return a

    def _mm_probabilities(self, out: Any, n: int) -> tuple[Any, Any]:
        """(scores to count, predicted classes to count) of a predict_proba output."""
        if isinstance(out, (list, tuple)) and out and isinstance(out[0], np.ndarray) \
                and out[0].ndim == 2:
            self._mm_log.report("multi-output", "modelmon wrap: multi-output predict_proba "
                                 "is not counted")
            return None, None
        P = out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
        scores = self._mm_scores
        classes = getattr(self._mm_model, "classes_", None)
        if classes is not None:
            classes = np.asarray(classes)
            if classes.ndim != 1:
                classes = None
        preds = None
        if (self._mm_has_pred and classes is not None and P.ndim == 2
                and P.shape[1] == len(classes) and len(P)):
            preds = classes[np.argmax(P, axis=1)]
        if not scores:
            return None, preds
        if P.ndim == 1:
            if len(scores) == 1:
                return P, preds
            self._mm_log.report("proba-shape", "modelmon wrap: one score per row for %d "
                                 "baseline score columns; scores not counted", len(scores))
            return None, preds
        if P.ndim != 2:
            return None, preds
        c = P.shape[1]
        labels = _class_labels(classes, c)
        if len(scores) == 1:
            j = _match(scores[0], labels)
            return P[:, c - 1 if j is None else j], preds
        if len(scores) == c:
            order = [_match(s, labels) for s in scores]
            if None not in order and len(set(order)) == c:
                return P[:, order], preds
            return P, preds
        self._mm_log.report("proba-shape", "modelmon wrap: predict_proba gave %d columns for "
                             "%d baseline score columns; scores not counted", c, len(scores))
        return None, preds


def _shape(X: Any) -> Any:
    s = getattr(X, "shape", None)
    if s is not None:
        return tuple(s)
    try:
        return len(X)
    except TypeError:
        return None


def _class_labels(classes: Any, c: int) -> list[str | None] | None:
    if classes is None or len(classes) != c:
        return None
    out: list[str | None] = []
    for v in classes.tolist():
        try:
            out.append(category_key(v))
        except TypeError:
            out.append(None)
    return out


def _match(score: str, labels: list[str | None] | None) -> int | None:
    """Index of the class a score column is named after (``"yes"``, ``"p_yes"``), or None."""
    if not labels:
        return None
    last = _SEP.split(score)[-1]
    hits = [i for i, lab in enumerate(labels) if lab is not None and (lab == score or lab == last)]
    return hits[0] if len(hits) == 1 else None
