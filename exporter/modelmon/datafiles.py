"""Reading training tables (CSV, Parquet) into columns for :meth:`Baseline.build`."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["read_table", "TableError", "MISSING_MARKERS"]

#: Cell texts that mean "missing" in a CSV.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})


class TableError(ValueError):
    """A table that cannot be read; the message names the file and what is wrong."""


def _parse_number(text: str) -> float | None:
    try:
        f = float(text)
    except ValueError:
        return None
    return f if not math.isnan(f) else None


def read_csv(path: str | os.PathLike[str], *, categorical: frozenset[str] = frozenset()) -> dict[str, list[Any]]:
    """Columns of a CSV file with a header row.

    A column whose every non-missing cell parses as a number becomes floats
    (missing as ``None``); one with no numeric cell stays text; one that mixes
    them is an error unless it is listed in ``categorical``.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise TableError(f"{p}: empty file, expected a header row") from None
            names = [h.strip() for h in header]
            if any(not n for n in names):
                raise TableError(f"{p}: header has an empty column name (column "
                                 f"{names.index('') + 1})")
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise TableError(f"{p}: duplicate column names: {', '.join(sorted(dupes))}")
            cols: list[list[str]] = [[] for _ in names]
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(names):
                    raise TableError(f"{p}, line {lineno}: {len(row)} fields, the header has "
                                     f"{len(names)}")
                for col, cell in zip(cols, row):
                    col.append(cell)
    except UnicodeDecodeError as exc:
        raise TableError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TableError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise TableError(f"{p}: malformed CSV: {exc}") from None
    if not cols or not cols[0]:
        raise TableError(f"{p}: no data rows")
    out: dict[str, list[Any]] = {}
    for name, cells in zip(names, cols):
        values: list[Any] = []
        numbers = texts = 0
        example = ""
        for c in cells:
            s = c.strip()
            if s.lower() in MISSING_MARKERS:
                values.append(None)
                continue
            f = _parse_number(s)
            if f is None:
                texts += 1
                example = example or s
                values.append(s)
            else:
                numbers += 1
                values.append(f)
        if name in categorical:
            out[name] = [None if v is None else (s.strip() if isinstance(v, float) else v)
                         for v, s in zip(values, cells)]
        elif numbers and texts:
            raise TableError(
                f"{p}: column {name!r} mixes numbers ({numbers} cells) and text ({texts} cells, "
                f"e.g. {example[:40]!r}); clean it, or pass --categorical {name}")
        else:
            out[name] = values
    return out


def read_table(path: str | os.PathLike[str], *, categorical: frozenset[str] = frozenset()) -> Any:
    """Columns from a ``.csv`` file, or a DataFrame from ``.parquet`` (needs the parquet extra)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pandas as pd
        except ImportError:
            raise TableError(f"{p}: reading Parquet needs the parquet extra: "
                             "pip install 'modelmon[parquet]'") from None
        try:
            return pd.read_parquet(p)
        except ImportError:
            raise TableError(f"{p}: reading Parquet needs pyarrow: "
                             "pip install 'modelmon[parquet]'") from None
        except (OSError, ValueError) as exc:
            raise TableError(f"{p}: cannot read Parquet: {exc}") from None
    if suffix in (".csv", ".txt", ".tsv") or not suffix:
        return read_csv(p, categorical=categorical)
    raise TableError(f"{p}: unknown file type {suffix!r}; expected .csv or .parquet")
