"""The sidecar for your own model pods, exactly as helm/modelmon/README.md shows it: a model
chart that depends on modelmon and includes "modelmon.sidecarContainer" renders a valid pod
that the PodMonitor scrapes and modelmon accepts, equal to the README's plain YAML."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import require_module
from .conftest import (
    CHART,
    EXAMPLE_VALUES,
    KUBE_VERSIONS,
    load_values,
    materialize,
    parse_manifests,
)

helm = require_module("helm_python", "helm-python-sdk")
kubernetes_validate = require_module("kubernetes_validate", "kubernetes-validate")

README = (CHART / "README.md").read_text()
BLOCKS = re.findall(r"```(yaml|sh)\n(.*?)```", README, flags=re.DOTALL)
LOAN = load_values(CHART / "ci" / "full-values.yaml")["baselines"]["loan"]


def _block(first_line: str) -> str:
    found = [b for lang, b in BLOCKS if b.startswith(first_line)]
    assert len(found) == 1, f"README has {len(found)} blocks starting with {first_line!r}"
    return found[0]


def _parent_chart(tmp: Path, template: str) -> Path:
    """The model's chart of the README: its Chart.yaml dependency, its values and template."""
    parent = tmp / "loan-model"
    (parent / "templates").mkdir(parents=True)
    deps = yaml.safe_load(_block("# Chart.yaml of your model's chart"))["dependencies"]
    assert [d["name"] for d in deps] == ["modelmon"]
    chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert deps[0]["version"] == chart_version
    (parent / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "loan-model", "version": "1.0.0", "dependencies": deps}))
    (parent / "values.yaml").write_text(_block("# values.yaml of your model's chart"))
    shutil.copytree(CHART, parent / "charts" / "modelmon")
    (parent / "templates" / "deployment.yaml").write_text(template)
    return parent


def _render(parent: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(parent) as chart:
        objects, _ = parse_manifests(chart.render(values, name="loan-model", namespace="ml"))
    return objects


VALUES = {"modelmon": {"baselines": {"loan": LOAN}, "podMonitor": {"enabled": True}}}
TEMPLATE = _block("# templates/deployment.yaml of your model's chart")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict[str, Any]]:
    return _render(_parent_chart(tmp_path_factory.mktemp("parent"), TEMPLATE), VALUES)


def _model_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == "Deployment"
             and o["metadata"]["name"] == "loan-model"]
    assert len(found) == 1
    return found[0]


def test_readme_values_keep_the_exporter_off(rendered) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert kinds == [("ConfigMap", "loan-model-modelmon-baselines"),
                     ("Deployment", "loan-model"),
                     ("PodMonitor", "loan-model-modelmon-sidecars")]


def test_model_pod_with_the_sidecar_is_valid_kubernetes(rendered) -> None:
    dep = _model_deployment(rendered)
    for kube in KUBE_VERSIONS:
        kubernetes_validate.validate(dep, kube, strict=True)
    names = [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]]
    assert names == ["model", "modelmon"]
    checksum = dep["spec"]["template"]["metadata"]["annotations"]["checksum/modelmon-baselines"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum)


def test_readme_plain_yaml_is_what_the_templates_render(rendered) -> None:
    pod = _model_deployment(rendered)["spec"]["template"]["spec"]
    plain = yaml.safe_load(_block("# modelmon sidecar, as rendered by"))
    assert plain == {"containers": pod["containers"][1:], "volumes": pod["volumes"]}, (
        "update the plain YAML of helm/modelmon/README.md")


def test_podmonitor_scrapes_the_sidecar(rendered) -> None:
    dep = _model_deployment(rendered)
    pm = next(o for o in rendered if o["kind"] == "PodMonitor")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    sidecar = dep["spec"]["template"]["spec"]["containers"][1]
    port = pm["spec"]["podMetricsEndpoints"][0]["port"]
    assert port in {p["name"] for p in sidecar["ports"]}
    assert pm["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"


def test_the_sidecar_settings_resolve_with_modelmon(rendered, tmp_path) -> None:
    from modelmon.cli import build_parser
    from modelmon.sidecar.config import resolve

    from .conftest import Rendered

    dep = _model_deployment(rendered)
    r = Rendered({}, rendered, "")
    args, env = materialize(r, dep, dep["spec"]["template"]["spec"]["containers"][1], tmp_path)
    cfg = resolve(build_parser().parse_args(args), env)
    assert [m.name for m in cfg.models] == ["loan"]
    assert cfg.port == 10380 and cfg.shutdown_delay == 15.0
    assert cfg.join_store["type"] == "sqlite"
    assert cfg.join_store["path"].startswith(str(tmp_path))  # on the emptyDir


def test_per_pod_overrides_and_the_context_without_subcharts(tmp_path) -> None:
    template = TEMPLATE.replace(
        'include "modelmon.sidecarContainer" .Subcharts.modelmon',
        'include "modelmon.sidecarContainer" (dict "context" .Subcharts.modelmon "values" '
        '(dict "name" "monitor" "joinStore" "memory" "baselines" (list "loan")))',
    ).replace(
        'include "modelmon.sidecarVolumes" .Subcharts.modelmon',
        'include "modelmon.sidecarVolumes" (dict "Values" .Values.modelmon "Chart" (dict "Name" '
        '"modelmon" "Version" "0.1.0" "AppVersion" "0.1.0") "Release" .Release)',
    )
    assert template != TEMPLATE
    values = {"modelmon": {"baselines": {"loan": LOAN, "churn": LOAN}}}
    dep = _model_deployment(_render(_parent_chart(tmp_path, template), values))
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][1]
    assert c["name"] == "monitor"
    assert "--join-store=memory" in c["args"]
    assert [a for a in c["args"] if a.startswith("--baseline")] == \
        ["--baseline=/etc/modelmon/baselines/loan.yaml"]
    vol = next(v for v in pod["volumes"] if v["name"] == "modelmon-baselines")
    assert vol["configMap"]["name"] == "loan-model-modelmon-baselines"
    assert [i["key"] for i in vol["configMap"]["items"]] == ["churn.yaml", "loan.yaml"]
    kubernetes_validate.validate(dep, KUBE_VERSIONS[-1], strict=True)


def test_readme_shows_the_example_values_file_and_its_install_command() -> None:
    rel = EXAMPLE_VALUES.relative_to(CHART.parent.parent)
    install = _block("helm install modelmon ./helm/modelmon")
    assert f"-f {rel}" in install
    assert "--set-file baselines.loan=" in install
    shown = _block(f"# {EXAMPLE_VALUES.relative_to(CHART)}\n")
    assert yaml.safe_load(shown) == load_values(EXAMPLE_VALUES)


def _values_blocks() -> list[tuple[str, str]]:
    """The YAML blocks of the chart README and docs/helm.md that are chart values."""
    out = []
    docs = CHART.parent.parent / "docs" / "helm.md"
    for path in (CHART / "README.md", docs):
        for lang, block in re.findall(r"```(yaml)\n(.*?)```", path.read_text(), flags=re.DOTALL):
            try:
                doc = yaml.safe_load(block)
            except yaml.YAMLError:  # a template
                continue
            if isinstance(doc, dict) and set(doc) <= set(SCHEMA["properties"]):
                out.append((path.name, block))
    return out


SCHEMA = yaml.safe_load((CHART / "values.schema.json").read_text())
VALUES_BLOCKS = _values_blocks()


def test_the_docs_show_values_blocks() -> None:
    assert len(VALUES_BLOCKS) >= 3


@pytest.mark.parametrize("where,block", VALUES_BLOCKS,
                         ids=[f"{w}:{b.splitlines()[0]}" for w, b in VALUES_BLOCKS])
def test_values_shown_in_the_docs_render(where: str, block: str) -> None:
    from .conftest import render_chart

    values = yaml.safe_load(block)
    values.setdefault("baselines", {"loan": LOAN})
    r = render_chart(values)
    assert r.objects
