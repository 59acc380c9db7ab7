"""In-process monitoring: Monitor (the hot path) and its Prometheus collector."""

from .collector import MonitorCollector, le_labels
from .core import Monitor, SchemaViolationError

__all__ = ["Monitor", "MonitorCollector", "SchemaViolationError", "le_labels"]
