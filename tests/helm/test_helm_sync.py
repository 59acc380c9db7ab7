"""The chart follows the repository: its version is the package's, its copies of alerts/ and
dashboards/ are current (helm/sync.py --check), and its README's values table is generated
from the `# --` comments of values.yaml, every key documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, ROOT

sys.path.insert(0, str(ROOT / "helm"))
import sync
import values_table


def test_chart_version_follows_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == version
    assert chart["appVersion"] == version
    assert chart["apiVersion"] == "v2" and chart["type"] == "application"
    assert chart["kubeVersion"] == ">=1.25.0-0"


def test_sync_check_passes() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "helm" / "sync.py"), "--check"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (
        "the chart is out of date; run python helm/sync.py\n" + out.stdout + out.stderr)


def test_chart_copies_equal_alerts_and_dashboards() -> None:
    for name in sync.RULE_FILES:
        assert (CHART / "files" / "alerts" / name).read_bytes() == \
            (ROOT / "alerts" / name).read_bytes(), name
    src = {p.name: p.read_bytes() for p in (ROOT / "dashboards").glob("*.json")}
    dst = {p.name: p.read_bytes() for p in (CHART / "files" / "dashboards").glob("*.json")}
    assert dst == src


@pytest.fixture
def repo_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A minimal repository (pyproject, alerts, dashboards) with the chart, in tmp_path."""
    root = tmp_path / "repo"
    (root / "helm").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "alerts", root / "alerts")
    (root / "dashboards").mkdir()
    for p in (ROOT / "dashboards").glob("*.json"):
        shutil.copy(p, root / "dashboards" / p.name)
    (root / "dashboards" / "modelmon-extra.json").write_text('{"title": "extra"}\n')
    shutil.copytree(CHART, root / "helm" / "modelmon")
    chart = root / "helm" / "modelmon"
    assert sync.sync(check=False, root=root, chart=chart)  # the extra dashboard was copied
    assert sync.sync(check=True, root=root, chart=chart) == []
    return root, chart


def test_sync_check_lists_missing_extra_and_changed_copies(repo_copy) -> None:
    root, chart = repo_copy
    (root / "dashboards" / "modelmon-new.json").write_text("{}\n")                # missing
    (chart / "files" / "dashboards" / "modelmon-gone.json").write_text("{}\n")    # extra
    (root / "dashboards" / "modelmon-extra.json").write_text('{"title": "x"}\n')  # changed
    rules = root / "alerts" / "modelmon-rules.yaml"
    rules.write_bytes(rules.read_bytes() + b"# changed\n")
    old = sync.package_version(root)
    text = (root / "pyproject.toml").read_text().replace(f'version = "{old}"',
                                                        f'version = "9{old}"', 1)
    (root / "pyproject.toml").write_text(text)
    assert sync.package_version(root) == f"9{old}"

    diffs = sync.sync(check=True, root=root, chart=chart)
    joined = "\n".join(diffs)
    assert "files/dashboards/modelmon-new.json: missing copy" in joined
    assert "files/dashboards/modelmon-gone.json: extra copy" in joined
    assert "files/dashboards/modelmon-extra.json: differs" in joined
    assert "files/alerts/modelmon-rules.yaml: differs" in joined
    assert "Chart.yaml: version/appVersion differ" in joined
    assert len(diffs) == 5

    sync.sync(check=False, root=root, chart=chart)
    assert sync.sync(check=True, root=root, chart=chart) == []
    assert not (chart / "files" / "dashboards" / "modelmon-gone.json").exists()
    chart_yaml = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert chart_yaml["version"] == chart_yaml["appVersion"] == f"9{old}"


def test_values_table_is_current_and_complete() -> None:
    readme = (CHART / "README.md").read_text()
    table = values_table.table(CHART / "values.yaml")
    assert f"{values_table.START}\n{table}{values_table.END}" in readme
    keys = {r.key for r in values_table.rows(CHART / "values.yaml")}
    for must in ("exporter.replicaCount", "exporter.store.url",
                 "exporter.store.auth.existingSecret.name", "sidecar.enabled",
                 "sidecarContainer.portName", "serviceMonitor.additionalLabels",
                 "prometheusRule.rules.psi", "dashboards.label", "networkPolicy.egress",
                 "podSecurityContext", "baselines"):
        assert must in keys


def test_an_undocumented_value_fails_the_table(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("# -- documented\na: 1\nb:\n  # -- documented\n  c: true\n  d: x\n")
    with pytest.raises(values_table.UndocumentedError, match=r"b, b\.d"):
        values_table.rows(values)
    values.write_text("# -- (int) a number\na: null\n# -- whole map\nm:\n  x: 1\n")
    rows = values_table.rows(values)
    assert [(r.key, r.type, r.default) for r in rows] == [("a", "int", "`null`"),
                                                         ("m", "object", '`{"x": 1}`')]
