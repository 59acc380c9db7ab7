"""Keep the Helm chart in step with the repository.

    python helm/sync.py           # update the chart
    python helm/sync.py --check   # change nothing; list every difference, exit 1 if any

It

* copies the rule files of ``alerts/`` to ``helm/modelmon/files/alerts/`` (the
  PrometheusRule is built from them),
* copies every ``dashboards/*.json`` to ``helm/modelmon/files/dashboards/`` and removes
  copies whose source is gone (one ConfigMap per dashboard),
* sets ``version`` and ``appVersion`` of ``Chart.yaml`` to the package version of
  ``pyproject.toml``,
* writes the values table of ``helm/modelmon/README.md`` from the ``# --`` comments of
  ``values.yaml`` (``helm/values_table.py``).

Helm only reads files inside the chart directory, hence the copies. tests/helm runs the
check.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHART = HERE / "modelmon"

#: The rule files the PrometheusRule template reads (prometheusRule.rules.*).
RULE_FILES = ("modelmon-rules.yaml", "modelmon-labels.rules.yml", "modelmon-drift.rules.yml")

sys.path.insert(0, str(HERE))
import values_table


def package_version(root: Path = ROOT) -> str:
    with open(root / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def _copies(root: Path, chart: Path) -> list[tuple[Path, Path]]:
    pairs = [(root / "alerts" / n, chart / "files" / "alerts" / n) for n in RULE_FILES]
    pairs += [(p, chart / "files" / "dashboards" / p.name)
              for p in sorted((root / "dashboards").glob("*.json"))]
    return pairs


def _stale(root: Path, chart: Path) -> list[Path]:
    """Copies in the chart whose source is gone."""
    wanted = {dst for _, dst in _copies(root, chart)}
    out = []
    for sub, pattern in (("alerts", "*"), ("dashboards", "*")):
        d = chart / "files" / sub
        if d.is_dir():
            out += [p for p in sorted(d.glob(pattern)) if p.is_file() and p not in wanted]
    return out


def _chart_yaml(text: str, version: str) -> str:
    text = re.sub(r"(?m)^version:.*$", f"version: {version}", text)
    return re.sub(r"(?m)^appVersion:.*$", f'appVersion: "{version}"', text)


def sync(check: bool, root: Path = ROOT, chart: Path = CHART) -> list[str]:
    """Update the chart (or, with ``check``, only compare); the differences found."""
    diffs: list[str] = []
    rel = (lambda p: p.relative_to(root)) if chart.is_relative_to(root) else (lambda p: p)
    for src, dst in _copies(root, chart):
        if not src.is_file():
            diffs.append(f"{rel(src)}: missing source")
            continue
        data = src.read_bytes()
        if not dst.is_file():
            diffs.append(f"{rel(dst)}: missing copy of {rel(src)}")
        elif dst.read_bytes() != data:
            diffs.append(f"{rel(dst)}: differs from {rel(src)}")
        else:
            continue
        if not check:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    for p in _stale(root, chart):
        diffs.append(f"{rel(p)}: extra copy (no source)")
        if not check:
            p.unlink()

    version = package_version(root)
    cy = chart / "Chart.yaml"
    text = cy.read_text(encoding="utf-8")
    new = _chart_yaml(text, version)
    if new != text:
        diffs.append(f"{rel(cy)}: version/appVersion differ from pyproject.toml ({version})")
        if not check:
            cy.write_text(new, encoding="utf-8")

    readme = chart / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = values_table.replace_table(text, values_table.table(chart / "values.yaml"))
    if new != text:
        diffs.append(f"{rel(readme)}: values table is not current")
        if not check:
            readme.write_text(new, encoding="utf-8")
    return diffs


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    try:
        diffs = sync(check)
    except values_table.UndocumentedError as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return 1
    if check:
        for d in diffs:
            print(d)
        if diffs:
            print("helm/sync.py --check: the chart is out of date; run python helm/sync.py",
                  file=sys.stderr)
            return 1
        return 0
    for d in diffs:
        print(f"updated: {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
