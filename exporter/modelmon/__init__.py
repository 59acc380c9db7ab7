"""modelmon: Prometheus-native monitoring for machine-learning models."""

from .baseline import Baseline, BaselineError
from .monitor import Monitor

__all__ = ["Baseline", "BaselineError", "Monitor", "__version__"]
__version__ = "0.1.0"
