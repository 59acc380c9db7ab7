"""Fixtures of the Helm chart tests: the chart rendered once per values file, offline.

Rendering and linting use helm-python-sdk (Helm's Go SDK in a wheel, no helm binary);
every standard object is checked with kubernetes-validate and the prometheus-operator
objects with jsonschema against the CRD schemas in tests/data/crds and tests/helm/data/crds.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import require_module

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "modelmon"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
EXAMPLE_VALUES = CHART / "examples" / "kube-prometheus-stack-values.yaml"
RELEASE = "mm"
NAMESPACE = "ml"
#: Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ("1.25.0", "1.30.0")

CRD_SCHEMAS = {
    "PrometheusRule": ROOT / "tests" / "data" / "crds" / "prometheusrule.v1.schema.json",
    "ServiceMonitor": ROOT / "tests" / "helm" / "data" / "crds" / "servicemonitor.v1.schema.json",
    "PodMonitor": ROOT / "tests" / "helm" / "data" / "crds" / "podmonitor.v1.schema.json",
}


@dataclass
class Rendered:
    """One ``helm template``: the objects in order, and NOTES.txt."""

    values: dict[str, Any]
    objects: list[dict[str, Any]]
    notes: str
    manifests: dict[str, str] = field(repr=False, default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)} in {self.names()}"
        return found[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return found[0] if found else None

    def names(self) -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}" for o in self.objects]


def parse_manifests(manifests: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    objects: list[dict[str, Any]] = []
    notes = ""
    for path in sorted(manifests):
        text = manifests[path]
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects += [d for d in yaml.safe_load_all(text) if d]
    return objects, notes


def render_chart(values: dict[str, Any] | None, chart_dir: Path = CHART,
                 namespace: str = NAMESPACE) -> Rendered:
    helm = require_module("helm_python", "helm-python-sdk")
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=namespace)
    objects, notes = parse_manifests(manifests)
    return Rendered(values or {}, objects, notes, manifests)


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@pytest.fixture(scope="session")
def render() -> Callable[[Path], Rendered]:
    """``render(values_file)``, cached: each values file is rendered once per session."""
    cache: dict[Path, Rendered] = {}

    def _render(path: Path) -> Rendered:
        if path not in cache:
            cache[path] = render_chart(load_values(path))
        return cache[path]

    return _render


def strict_crd_schema(path: Path) -> dict[str, Any]:
    """The CRD's openAPIV3Schema with ``additionalProperties: false`` on every object that
    lists its properties (as the API server prunes unknown fields, a typo would vanish)."""
    schema = json.loads(path.read_text(encoding="utf-8"))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    strict = copy.deepcopy(schema)
    walk(strict)
    # apiVersion/kind/metadata are checked at the top level only
    strict["additionalProperties"] = True
    return strict


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, dict[str, Any]]:
    return {kind: strict_crd_schema(p) for kind, p in CRD_SCHEMAS.items()}


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, f"no container {name!r} in {obj['metadata']['name']}"
    return found[0]


def ci_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


_FAKE_SECRETS = {
    ("mimir-credentials", "url"): "http://mimir.example:8080/prometheus",
    ("mimir-credentials", "user"): "modelmon",
    ("mimir-credentials", "password"): "pw",
    ("modelmon-redis", "url"): "redis://redis.example:6379/0",
}


def _tls_files(tmp: Path) -> dict[str, str]:
    trustme = require_module("trustme")
    ca = trustme.CA()
    client = ca.issue_cert("modelmon.example")
    return {"ca.crt": ca.cert_pem.bytes().decode(),
            "tls.crt": "".join(b.bytes().decode() for b in client.cert_chain_pems),
            "tls.key": client.private_key_pem.bytes().decode()}


def materialize(r: Rendered, dep: dict[str, Any], c: dict[str, Any],
                 tmp: Path) -> tuple[list[str], dict[str, str]]:
    """Write what the container would see under tmp; its args and environment, with the
    mount paths moved there."""
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    moves: list[tuple[str, str]] = []
    for m in c.get("volumeMounts", []):
        d = tmp / m["name"]
        d.mkdir(parents=True, exist_ok=True)
        moves.append((m["mountPath"].rstrip("/"), str(d)))
        v = vols[m["name"]]
        if "configMap" in v:
            data = r.get("ConfigMap", v["configMap"]["name"])["data"]
            items = v["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for it in items:
                (d / it["path"]).write_text(data[it["key"]])
        elif "secret" in v:
            name = v["secret"]["secretName"]
            own = r.find("Secret", name)
            items = v["secret"].get("items")
            if own is not None:
                data = {k: base64.b64decode(x).decode() for k, x in own["data"].items()}
            elif name == "thanos-client-tls":
                data = _tls_files(tmp)
            elif "web" in name:  # an empty web config: plain HTTP, no auth
                data = {"web-config.yml": ""}
            else:
                data = {it["key"]: _FAKE_SECRETS[(name, it["key"])] for it in items}
            for it in items or [{"key": k, "path": k} for k in data]:
                (d / it["path"]).write_text(data[it["key"]])
    moves.sort(key=lambda m: -len(m[0]))

    def move(text: str) -> str:  # the deepest mount of the first path in text
        for src, dst in moves:
            i = text.find(src + "/")
            if i >= 0:
                return text[:i] + dst + text[i + len(src):]
        return text

    env: dict[str, str] = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = _FAKE_SECRETS[(ref["name"], ref["key"])]
    return [move(a) for a in c["args"]], {k: move(v) for k, v in env.items()}
