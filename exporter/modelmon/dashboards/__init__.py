"""Grafana dashboards of modelmon, generated from code into ``dashboards/*.json``.

    pip install -e '.[dashboards]'
    python -m modelmon.dashboards dashboards/          # write the JSON files
    python -m modelmon.dashboards --check dashboards/  # exit 1 when they are stale
    python -m modelmon.dashboards --sketch docs/dashboards.md

Needs the ``dashboards`` extra (``grafana-foundation-sdk``); the JSON files
themselves need nothing but Grafana 10 or newer and a Prometheus data source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["build_all", "render", "write", "stale", "sketch_markdown"]


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as a dict, by file name."""
    from .boards import build_all as _build

    return _build()


def render(dashboard: dict[str, Any]) -> str:
    """The committed form of a dashboard: 2-space JSON, sorted keys, final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every dashboard under ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, d in build_all().items():
        path = directory / name
        path.write_text(render(d), encoding="utf-8")
        out.append(path)
    return out


def stale(directory: Path) -> list[str]:
    """File names under ``directory`` that differ from the generator (or are missing,
    or are modelmon dashboards the generator no longer makes)."""
    built = {n: render(d) for n, d in build_all().items()}
    bad = [n for n, text in built.items()
           if not (directory / n).is_file()
           or (directory / n).read_text(encoding="utf-8") != text]
    bad += sorted(p.name for p in directory.glob("modelmon-*.json") if p.name not in built)
    return bad


def sketch_markdown() -> str:
    """``docs/dashboards.md``'s layout sketches, drawn from the panels' grid positions."""
    from .sketch import markdown

    return markdown(build_all())
