"""``python -m modelmon.dashboards [--check] [--sketch FILE] [DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import sketch_markdown, stale, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelmon.dashboards",
                                description="Generate modelmon's Grafana dashboards.")
    p.add_argument("directory", nargs="?", default="dashboards", type=Path,
                   help="where the JSON files go (default: dashboards)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a file differs from the generator")
    p.add_argument("--sketch", type=Path, metavar="FILE",
                   help="also write the layout sketches (docs/dashboards.md)")
    a = p.parse_args(argv)
    if a.check:
        bad = stale(a.directory)
        sk = a.sketch
        if sk is not None and (not sk.is_file() or sk.read_text(encoding="utf-8")
                               != sketch_markdown()):
            bad.append(str(sk))
        if bad:
            print("stale (run python -m modelmon.dashboards --sketch docs/dashboards.md "
                  f"{a.directory}): " + ", ".join(bad), file=sys.stderr)
            return 1
        return 0
    for path in write(a.directory):
        print(path)
    if a.sketch is not None:
        a.sketch.write_text(sketch_markdown(), encoding="utf-8")
        print(a.sketch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
