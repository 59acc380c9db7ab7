"""In-process monitoring: Monitor (the hot path), its Prometheus collector, and the ground-truth
join (label segments and the join stores where predictions wait for their labels)."""

from ..catalogue import le_labels  # an alias: it lives in the catalogue
from .collector import MonitorCollector
from .columns import SchemaViolationError
from .monitor import Monitor
from .joinstore import (
    JoinStore,
    JoinStoreError,
    MemoryJoinStore,
    RedisJoinStore,
    Remembered,
    SQLiteJoinStore,
    open_join_store,
)
from .outcomes import LabelResult, Segment

__all__ = [
    "Monitor",
    "MonitorCollector",
    "SchemaViolationError",
    "le_labels",
    "Segment",
    "LabelResult",
    "JoinStore",
    "JoinStoreError",
    "MemoryJoinStore",
    "SQLiteJoinStore",
    "RedisJoinStore",
    "Remembered",
    "open_join_store",
]
