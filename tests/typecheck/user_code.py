"""What a user of modelmon writes, type-checked by mypy in CI (``.ci/run``), never run.

mypy checks this file strictly against the public API's annotations: a wrong
or missing annotation on ``Monitor``, ``Baseline``, ``LabelResult``,
``Segment`` or the middlewares fails CI here, where a user would trip on it.
The functions are not called (pytest imports this module for its doctests:
importing must do nothing). A ``# type: ignore`` here is only for a third
party's own typing (mypy reports an ignore that is no longer needed).
"""

from __future__ import annotations

from typing import assert_type

import numpy as np
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette

import modelmon
from modelmon import Baseline, BaselineError, Monitor, wrap
from modelmon.middleware import ASGIMiddleware, MonitoredModel, WSGIMiddleware
from modelmon.monitor import LabelResult, MemoryJoinStore, Segment


def build_and_save(path: str) -> Baseline:
    rng = np.random.default_rng(0)
    b = Baseline.build({"age": rng.normal(40, 10, 1000),
                        "region": rng.choice(["north", "south"], 1000),
                        "decision": rng.choice(["approve", "reject"], 1000)},
                       model="loans", prediction="decision", bins=10)
    b.save(path)
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        raise SystemExit(str(exc)) from exc


def in_process(b: Baseline) -> int:
    registry = CollectorRegistry()
    segments = [Segment(feature="region", values=("north", "south")),
                # a list, as users write it
                Segment(feature="age", bins=[30.0, 45.0])]
    mon = Monitor(b, registry=registry, join_store=MemoryJoinStore(), segments=segments)
    mon.observe({"age": 31.0, "region": "north"}, prediction="approve", latency_seconds=0.004,
                id="req-1")
    mon.observe_batch({"age": [25.0, 52.0], "region": ["south", "north"]},
                      predictions=["approve", "reject"], ids=["req-2", "req-3"])
    with mon.timer() as t:
        pass
    mon.observe({"age": 40.0}, latency_seconds=t.seconds, model="loans")
    matched: bool = mon.record_label("req-1", "approve")
    res: LabelResult = mon.record_labels(["req-2", "req-3"], ["reject", "approve"],
                                         timestamps=[None, 1.7e9])
    problems = 0
    for index, field, error in res.rejected:
        problems += index + len(field) + len(error)
    mon.flush()
    text: bytes = generate_latest(registry)
    return res.matched + res.unmatched + problems + int(matched) + len(text)


def web_apps(mon: Monitor) -> tuple[Starlette, Flask]:
    api = Starlette()
    api.add_middleware(ASGIMiddleware, monitor=mon, path="/predict",
                       features="instances[*]", prediction="predictions[*]")
    web = Flask(__name__)
    # Flask's own stubs make wsgi_app a method; wrapping it is the pattern Flask documents
    web.wsgi_app = WSGIMiddleware(  # type: ignore[method-assign]
        web.wsgi_app, mon, path="/predict", features="features", prediction="prediction")
    # the top-level names (imported lazily at run time) are the same classes to mypy
    assert_type(modelmon.ASGIMiddleware, type[ASGIMiddleware])
    assert_type(modelmon.WSGIMiddleware, type[WSGIMiddleware])
    return api, web


class _Model:
    def predict(self, rows: list[list[float]]) -> list[str]:
        return ["approve" for _ in rows]


def wrapped(mon: Monitor) -> object:
    model: MonitoredModel = wrap(_Model(), mon, model_name="loans")
    return model.predict([[31.0, 1.0]])
