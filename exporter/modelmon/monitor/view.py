"""What one scrape reads: immutable copies of every model's counts and ground truth."""

from __future__ import annotations

from dataclasses import dataclass

from ..baseline import Baseline
from .counts import CountsView
from .truth import TruthView

__all__ = ["ModelView", "MonitorView"]


@dataclass(frozen=True, slots=True)
class ModelView:
    """One model's counts as one scrape renders them (``truth`` is ``None`` until the
    first id or label)."""

    baseline: Baseline
    counts: CountsView
    truth: TruthView | None


@dataclass(frozen=True, slots=True)
class MonitorView:
    """Every model's counts at one moment (what :class:`~.collector.MonitorCollector` renders)."""

    models: tuple[ModelView, ...]
