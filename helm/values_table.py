"""The values table of helm/modelmon/README.md, from the `# --` comments of values.yaml.

The comment convention is helm-docs': a comment block that starts with ``# --`` right
above a key documents it; following ``#`` lines continue the description, and
``# -- (type) text`` overrides the type shown. Every key must be documented. A mapping
whose children carry no ``# --`` comment is documented as a whole (one row, its whole
default); a mapping with documented children gets one row for itself and one per child,
and then every child must be documented.

    python helm/values_table.py            # print the table
    python helm/values_table.py --check    # exit 1 on an undocumented key

``python helm/sync.py`` writes the table into the README between the markers
``<!-- values-table:start -->`` and ``<!-- values-table:end -->``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
VALUES = HERE / "modelmon" / "values.yaml"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+):(?:\s|$)")
_TYPE = re.compile(r"^\((?P<type>[a-z]+)\)\s*")


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


class UndocumentedError(ValueError):
    """Keys of values.yaml without a ``# --`` comment."""


def _comments(text: str) -> dict[tuple[str, ...], str]:
    """``{key path: description}`` of every key line (``""`` when undocumented)."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, tuple[str, ...]]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            pending = None
            continue
        if stripped.startswith("#"):
            if stripped.startswith("# --"):
                pending = [stripped[4:].strip()]
            elif pending is not None:
                pending.append(stripped[1:].strip())
            continue
        m = _KEY.match(line)
        if m is None:  # a list item or a continuation line
            pending = None
            continue
        indent = len(m.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (stack[-1][1] if stack else ()) + (m.group("key"),)
        docs[path] = " ".join(p for p in pending if p) if pending else ""
        stack.append((indent, path))
        pending = None
    return docs


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows(values_path: Path = VALUES) -> list[Row]:
    """The table rows; raises :class:`UndocumentedError` naming every undocumented key."""
    text = values_path.read_text(encoding="utf-8")
    tree = yaml.safe_load(text) or {}
    docs = _comments(text)
    out: list[Row] = []
    missing: list[str] = []

    def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = prefix + (str(key),)
            name = ".".join(path)
            desc = docs.get(path, "")
            if not desc:
                missing.append(name)
            typ = None
            m = _TYPE.match(desc)
            if m:
                typ, desc = m.group("type"), desc[m.end():]
            structured = isinstance(value, dict) and value and any(
                docs.get(path + (str(k),)) for k in value)
            if structured:
                out.append(Row(name, typ or "object", "", _cell(desc)))
                walk(value, path)
            else:
                default = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
                out.append(Row(name, typ or _type_of(value), f"`{_cell(default)}`", _cell(desc)))

    walk(tree, ())
    if missing:
        raise UndocumentedError(f"{values_path}: keys without a '# --' comment: "
                                + ", ".join(missing))
    return out


def table(values_path: Path = VALUES) -> str:
    """The Markdown table (ends with a newline)."""
    lines = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for r in rows(values_path):
        lines.append(f"| `{r.key}` | {r.type} | {r.default} | {r.description} |")
    return "\n".join(lines) + "\n"


def replace_table(readme: str, new_table: str) -> str:
    """``readme`` with the text between the markers replaced by ``new_table``."""
    try:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"README has no {START} ... {END} markers") from None
    return f"{head}{START}\n{new_table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        t = table()
    except UndocumentedError as exc:
        print(f"values_table: {exc}", file=sys.stderr)
        return 1
    if "--check" not in args:
        sys.stdout.write(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
