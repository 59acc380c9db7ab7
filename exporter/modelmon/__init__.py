"""modelmon: Prometheus-native monitoring for machine-learning models."""

from typing import TYPE_CHECKING, Any

from .baseline import Baseline, BaselineError
from .middleware.wrap import wrap
from .monitor import Monitor

if TYPE_CHECKING:  # imported lazily below; type checkers see the real classes
    from .middleware import ASGIMiddleware, WSGIMiddleware

__all__ = [
    "ASGIMiddleware",
    "Baseline",
    "BaselineError",
    "Monitor",
    "WSGIMiddleware",
    "__version__",
    "wrap",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The middlewares are imported on first use (they need no framework either way).
    if name in ("ASGIMiddleware", "WSGIMiddleware"):
        from . import middleware

        return getattr(middleware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
