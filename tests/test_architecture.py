"""The rooms of exporter/modelmon/ import only what docs/architecture.md allows.

The table of rooms is read from docs/architecture.md (the one source of the
rules); every module is parsed with ``ast`` and each import of ours (absolute
or relative, at top level, inside functions or ``if TYPE_CHECKING:``) is
checked against its room's row.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exporter" / "modelmon"
DOC = ROOT / "docs" / "architecture.md"

#: Imports against the table that another change removes: ``(importing module, imported
#: module) -> why``. The test fails when one no longer occurs, so the entry goes with it.
KNOWN: dict[tuple[str, str], str] = {}

_CELL = re.compile(r"`([^`]+)`")


def rooms_table(text: str) -> dict[str, frozenset[str] | None]:
    """``{room: rooms it may import}`` from the first table under ``## Rooms``; None: all."""
    section = text.split("\n## Rooms\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header == ["room", "holds", "may import"], header
    table: dict[str, frozenset[str] | None] = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        room = _CELL.fullmatch(cells[0])
        assert room, f"docs/architecture.md: room cell {cells[0]!r} is not one `path`"
        allowed = cells[-1]
        if allowed == "everything":
            table[room.group(1)] = None
        elif allowed == "nothing of ours":
            table[room.group(1)] = frozenset()
        else:
            names = _CELL.findall(allowed)
            assert names and ", ".join(f"`{n}`" for n in names) == allowed, (
                f"docs/architecture.md: row {room.group(1)}: 'may import' must be "
                f"`room`, `room`, ..., 'nothing of ours' or 'everything', got {allowed!r}")
            table[room.group(1)] = frozenset(names)
    return table


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str, rooms: set[str]) -> str | None:
    """The room of a ``modelmon...`` module: ``x.py`` for ``modelmon.x``, ``x/`` for
    ``modelmon.x`` and everything under it, ``__init__.py`` for ``modelmon`` itself."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__.py" if "__init__.py" in rooms else None
    for room in (parts[0] + "/", parts[0] + ".py"):
        if room in rooms:
            return room
    return None


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def imports_of(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``modelmon`` or below in the file (or in
    ``source``, as if it were that file).

    ``from X import y`` counts as an import of ``X.y`` when that is a module
    (``from .. import catalogue``), else of ``X``.
    """
    if source is None:
        source = path.read_text(encoding="utf-8")
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names
                    if a.name == "modelmon" or a.name.startswith("modelmon.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level - 1 >= len(base):
                    raise AssertionError(f"{path}:{node.lineno}: relative import beyond modelmon")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "modelmon" or target.startswith("modelmon.")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if alias.name != "*" and _is_module(sub)
                            else target))
    return out


def violations() -> tuple[list[str], set[tuple[str, str]]]:
    table = rooms_table(DOC.read_text(encoding="utf-8"))
    rooms = set(table)
    bad: list[str] = []
    known_seen: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        rel = path.relative_to(ROOT)
        room = room_of(module, rooms)
        if room is None:
            bad.append(f"{rel}: in no room of docs/architecture.md")
            continue
        allowed = table[room]
        for line, target in imports_of(path):
            to = room_of(target, rooms)
            if to is None:
                bad.append(f"{rel}:{line}: imports {target}, which is in no room")
            elif to == room or allowed is None or to in allowed:
                continue
            elif (module, target) in KNOWN:
                known_seen.add((module, target))
            else:
                bad.append(f"{rel}:{line}: {room} imports {target} ({to}); docs/architecture.md "
                           f"allows {room} to import "
                           f"{', '.join(sorted(allowed)) or 'nothing of ours'}")
    return bad, known_seen


def test_rooms_import_only_what_the_table_allows() -> None:
    bad, _ = violations()
    assert not bad, "imports against the room table:\n" + "\n".join(bad)


def test_known_exceptions_still_exist() -> None:
    _, seen = violations()
    gone = set(KNOWN) - seen
    assert not gone, (f"fixed, so remove from KNOWN in tests/test_architecture.py: "
                      f"{sorted(gone)}")


def test_the_table_names_only_rooms() -> None:
    table = rooms_table(DOC.read_text(encoding="utf-8"))
    for room, allowed in table.items():
        assert room.endswith((".py", "/")), room
        assert allowed is None or allowed <= set(table), (room, allowed - set(table))
    # every package and top-level module of modelmon has its row (settings.py may come later)
    present = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    present |= {p.name for p in PACKAGE.glob("*.py")}
    assert present <= set(table), present - set(table)


SAMPLE = """
from __future__ import annotations
from typing import TYPE_CHECKING
import numpy
import modelmon.baseline
from .. import catalogue as cat
from ..monitor.counts import X
from . import evaluate, nothing_such
if TYPE_CHECKING:
    from modelmon.sidecar import app
def f():
    from .. import cli
"""


def test_imports_are_found_everywhere() -> None:
    # as if the sample were exporter/modelmon/drift/sample.py
    found = imports_of(PACKAGE / "drift" / "sample.py", SAMPLE)
    assert sorted(found) == [
        (5, "modelmon.baseline"), (6, "modelmon.catalogue"), (7, "modelmon.monitor.counts"),
        (8, "modelmon.drift"), (8, "modelmon.drift.evaluate"), (10, "modelmon.sidecar.app"),
        (12, "modelmon.cli")]
    rooms = set(rooms_table(DOC.read_text(encoding="utf-8")))
    assert [room_of(t, rooms) for _, t in sorted(found)] == [
        "baseline.py", "catalogue.py", "monitor/", "drift/", "drift/", "sidecar/", "cli.py"]
    assert room_of("modelmon", rooms) == "__init__.py"
