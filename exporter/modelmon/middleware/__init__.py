"""In-process monitoring for Python serving stacks.

* :class:`ASGIMiddleware` — pure ASGI (Starlette, FastAPI, any ASGI app).
* :class:`WSGIMiddleware` — pure WSGI, PEP 3333 (Flask, Django, any WSGI app).
* :func:`wrap` — a proxy around a model object with ``predict`` / ``predict_proba``.

The middlewares need neither Starlette nor Flask. They read the features from
the request JSON and the prediction (and scores) from the response JSON
through paths: dotted keys, ``[N]`` for an index and ``[*]`` for "each
element" (a batch), ``$`` or ``""`` for the whole body; or a callable
``(body) -> value``. See ``docs/middleware.md``.
"""

from ._paths import JsonPath
from .asgi import ASGIMiddleware
from .wrap import MonitoredModel, wrap
from .wsgi import WSGIMiddleware

__all__ = ["ASGIMiddleware", "JsonPath", "MonitoredModel", "WSGIMiddleware", "wrap"]
