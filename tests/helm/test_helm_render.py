"""The chart renders, for every ci/*-values.yaml, valid Kubernetes and prometheus-operator
objects that configure modelmon the way its command line expects.

* ``helm lint --strict`` (Helm's Go SDK through helm-python-sdk), for the oldest and a recent
  Kubernetes;
* every standard object against the Kubernetes OpenAPI schemas (kubernetes-validate, strict);
* ServiceMonitor, PodMonitor and PrometheusRule against the operator's CRD schemas, with
  unknown fields rejected;
* ``promtool check rules`` on the PrometheusRule's groups;
* dashboards and baselines reach their ConfigMaps byte for byte;
* security defaults, probes, and that every optional object is off by default and on in
  full-values.yaml;
* the rendered arguments, environment and mounted files resolve with modelmon's own
  configuration code (``modelmon.drift.cli.resolve``, ``modelmon.sidecar.config.resolve``).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ..conftest import require_module
from .conftest import (
    CHART,
    CI_VALUES,
    EXAMPLE_VALUES,
    KUBE_VERSIONS,
    NAMESPACE,
    ROOT,
    Rendered,
    ci_id,
    container,
    load_values,
    materialize,
    render_chart,
)

helm = require_module("helm_python", "helm-python-sdk")
kubernetes_validate = require_module("kubernetes_validate", "kubernetes-validate")

OPERATOR_GROUP = "monitoring.coreos.com/"
ci_files = pytest.mark.parametrize("values_file", CI_VALUES, ids=ci_id)


def _ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def _dockerfile_uid() -> int:
    m = re.search(r"(?m)^USER\s+(\d+)", (ROOT / "Dockerfile").read_text())
    assert m, "Dockerfile has no numeric USER"
    return int(m.group(1))


# --- lint and schemas -----------------------------------------------------------------------


def test_ci_values_cover_the_optional_objects() -> None:
    names = {ci_id(p) for p in CI_VALUES}
    assert {"default", "full", "scrape-mode", "existing-secret", "sidecar-deployment"} <= names


@ci_files
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_lint_strict(values_file: Path, kube: str) -> None:
    report = helm.lint(CHART, load_values(values_file), strict=True, namespace=NAMESPACE,
                       kube_version=f"v{kube}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], (problems, report["errors"])


@ci_files
def test_standard_objects_are_valid_kubernetes(values_file: Path, render) -> None:
    r = render(values_file)
    assert r.objects
    for obj in r.objects:
        if obj["apiVersion"].startswith(OPERATOR_GROUP):
            continue
        for kube in (*KUBE_VERSIONS, kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(obj, kube, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {kube}): "
                            f"{exc.message} at {'.'.join(map(str, exc.path))}")


@ci_files
def test_operator_objects_match_crd_schemas(values_file: Path, render, crd_schemas) -> None:
    r = render(values_file)
    for obj in r.objects:
        if not obj["apiVersion"].startswith(OPERATOR_GROUP):
            continue
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        errors = sorted(jsonschema.Draft7Validator(crd_schemas[obj["kind"]]).iter_errors(obj),
                        key=lambda e: list(e.path))
        assert not errors, [f"{obj['kind']}: {e.message} at {list(e.path)}" for e in errors]
        # metadata is an ObjectMeta like any other object's
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": obj["metadata"]}, KUBE_VERSIONS[-1],
                                     strict=True)


# --- rules -----------------------------------------------------------------------------------


def _groups(*names: str) -> list[dict[str, Any]]:
    return [g for n in names for g in yaml.safe_load((ROOT / "alerts" / n).read_text())["groups"]]


WITH_RULES = [p for p in [*CI_VALUES, EXAMPLE_VALUES]
              if load_values(p).get("prometheusRule", {}).get("enabled")]


@pytest.mark.parametrize("values_file", WITH_RULES, ids=lambda p: p.stem)
def test_prometheusrule_passes_promtool(values_file: Path, render, promtool, tmp_path) -> None:
    rules = render(values_file).of_kind("PrometheusRule")
    assert len(rules) == 1
    for rule in rules:
        f = tmp_path / f"{rule['metadata']['name']}.rules.yaml"
        f.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
        out = subprocess.run([promtool, "check", "rules", str(f)], check=False,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCESS" in out.stdout + out.stderr


def test_prometheusrule_defaults_are_the_alerts_and_label_rules(render) -> None:
    rule = render(EXAMPLE_VALUES).get("PrometheusRule", "mm-modelmon")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == _groups("modelmon-rules.yaml", "modelmon-labels.rules.yml")


def test_prometheusrule_toggles_disabled_alerts_and_extra_labels(render) -> None:
    spec = render(_ci("full")).get("PrometheusRule", "mm-modelmon")["spec"]
    source = _groups("modelmon-rules.yaml", "modelmon-labels.rules.yml",
                     "modelmon-drift.rules.yml")
    assert [g["name"] for g in spec["groups"]] == [g["name"] for g in source]
    for got, want in zip(spec["groups"], source, strict=True):
        want_rules = [r for r in want["rules"] if r.get("alert") != "ModelMonLatencyHigh"]
        assert len(got["rules"]) == len(want_rules)
        for g, w in zip(got["rules"], want_rules, strict=True):
            if "alert" in w:  # own labels win, team is added
                assert g["labels"] == {"team": "ml", **w["labels"]}
                assert {k: v for k, v in g.items() if k != "labels"} == \
                    {k: v for k, v in w.items() if k != "labels"}
            else:  # recording rules are untouched
                assert g == w


# --- dashboards and baselines ----------------------------------------------------------------


def _dashboard_data(r: Rendered, label: str = "grafana_dashboard") -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in r.of_kind("ConfigMap"):
        if cm["metadata"].get("labels", {}).get(label) == "1":
            assert len(cm["data"]) == 1, cm["metadata"]["name"]
            data.update(cm["data"])
    return data


@pytest.mark.parametrize("values_file", [_ci("full"), EXAMPLE_VALUES], ids=["full", "example"])
def test_dashboard_configmaps_equal_the_repository(values_file: Path, render) -> None:
    r = render(values_file)
    got = _dashboard_data(r)
    want = {p.name: p.read_bytes() for p in sorted((ROOT / "dashboards").glob("*.json"))}
    assert sorted(got) == sorted(want), "dashboards differ: run python helm/sync.py"
    for name, text in got.items():
        assert text.encode("utf-8") == want[name], f"{name} differs from dashboards/{name}"
    for cm in r.of_kind("ConfigMap"):
        if "grafana_dashboard" in cm["metadata"].get("labels", {}):
            assert cm["metadata"]["annotations"]["grafana_folder"] == "modelmon"
            # a ConfigMap holds at most 1 MiB
            assert sum(len(v.encode()) for v in cm["data"].values()) < 1024 * 1024 - 4096


def test_dashboard_configmaps_keep_every_byte(tmp_path) -> None:
    """Grafana's {{legend}} templates, unicode, tabs, CRLF and no final newline survive."""
    import shutil

    chart = tmp_path / "modelmon"
    shutil.copytree(CHART, chart)
    tricky = ('{"title": "x \u00e9\u2603", "legendFormat": "{{model}} {{ $labels.x }}",\r\n'
              '\t"expr": "sum(rate(x[5m])) > 0 <b>&amp;</b>"  \n\n}')
    (chart / "files" / "dashboards" / "modelmon-Tricky_One.json").write_text(tricky, newline="")
    r = render_chart({"dashboards": {"enabled": True, "label": "my_dash",
                                      "labelValue": "yes"}}, chart_dir=chart)
    cms = [o for o in r.of_kind("ConfigMap")
           if o["metadata"]["labels"].get("my_dash") == "yes"]
    data = {k: v for cm in cms for k, v in cm["data"].items()}
    assert data["modelmon-Tricky_One.json"] == tricky
    names = {cm["metadata"]["name"] for cm in cms}
    assert "mm-modelmon-dashboard-tricky-one" in names  # a valid object name
    for cm in cms:
        kubernetes_validate.validate(cm, KUBE_VERSIONS[-1], strict=True)


@ci_files
def test_baselines_configmap_equals_the_input(values_file: Path, render) -> None:
    r = render(values_file)
    baselines = r.values.get("baselines") or {}
    cm = r.find("ConfigMap", "mm-modelmon-baselines")
    if not baselines:
        assert cm is None
        return
    assert cm is not None
    assert cm["data"] == {f"{k}.yaml": v for k, v in baselines.items()}

    from modelmon import Baseline

    for name, text in baselines.items():  # the ci baselines are real ones
        assert Baseline.from_dict(yaml.safe_load(text)).model == name


# --- what is rendered ------------------------------------------------------------------------


def _kinds(r: Rendered) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in r.objects)


def test_defaults_render_only_the_exporter(render) -> None:
    r = render(_ci("default"))
    assert _kinds(r) == [("Deployment", "mm-modelmon-exporter"),
                         ("Service", "mm-modelmon-exporter"),
                         ("ServiceAccount", "mm-modelmon")]
    assert _kinds(render_chart({})) == _kinds(r)


def test_full_values_render_every_optional_object(render) -> None:
    r = render(_ci("full"))
    dashboards = sorted(("ConfigMap", "mm-modelmon-dashboard-" + p.stem.removeprefix("modelmon-"))
                        for p in (ROOT / "dashboards").glob("*.json"))
    assert _kinds(r) == sorted([
        ("ConfigMap", "mm-modelmon-baselines"),
        ("ConfigMap", "mm-modelmon-drift-config"),
        *dashboards,
        ("Deployment", "mm-modelmon-exporter"),
        ("Deployment", "mm-modelmon-sidecar"),
        ("NetworkPolicy", "mm-modelmon-exporter"),
        ("NetworkPolicy", "mm-modelmon-sidecar"),
        ("PodDisruptionBudget", "mm-modelmon-exporter"),
        ("PodDisruptionBudget", "mm-modelmon-sidecar"),
        ("PodMonitor", "mm-modelmon-sidecars"),
        ("PrometheusRule", "mm-modelmon"),
        ("Secret", "mm-modelmon-store-auth"),
        ("Service", "mm-modelmon-exporter"),
        ("Service", "mm-modelmon-sidecar"),
        ("ServiceAccount", "mm-modelmon"),
        ("ServiceMonitor", "mm-modelmon"),
    ])


def test_example_values_deploy_exporter_rules_and_dashboards(render) -> None:
    r = render(EXAMPLE_VALUES)
    kinds = {o["kind"] for o in r.objects}
    assert {"Deployment", "Service", "ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds
    assert len(_dashboard_data(r)) == len(list((ROOT / "dashboards").glob("*.json")))
    for cm in r.of_kind("ConfigMap"):
        if "grafana_dashboard" in cm["metadata"]["labels"]:
            assert cm["metadata"]["namespace"] == "monitoring"


def test_chart_labels_and_image_follow_the_app_version(render) -> None:
    version = helm.Chart.load(CHART).metadata["appVersion"]
    for obj in render(_ci("full")).objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/version"] == version
        assert labels["app.kubernetes.io/instance"] == "mm"
        assert labels["team"] == "ml-platform"  # commonLabels
    dep = render(_ci("default")).get("Deployment", "mm-modelmon-exporter")
    assert container(dep, "exporter")["image"] == f"ghcr.io/modelmon/modelmon:{version}"
    digest = "sha256:" + "a" * 64
    dep = render_chart({"image": {"digest": digest}}).get("Deployment", "mm-modelmon-exporter")
    assert container(dep, "exporter")["image"] == f"ghcr.io/modelmon/modelmon@{digest}"


@ci_files
def test_security_defaults_and_probes(values_file: Path, render) -> None:
    uid = _dockerfile_uid()
    for dep in render(values_file).of_kind("Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == uid
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
            assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
            ports = {p["name"] for p in c["ports"]}
            assert c["livenessProbe"]["httpGet"]["port"] in ports
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
            for m in c.get("volumeMounts", []):  # writable only where it is an emptyDir
                if not m.get("readOnly"):
                    assert "emptyDir" in volumes[m["name"]], m


def test_probes_use_https_with_a_tls_web_config(render) -> None:
    dep = render(_ci("sidecar-deployment")).get("Deployment", "mm-modelmon-sidecar")
    c = container(dep, "modelmon")
    assert c["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert "--web.config.file=/etc/modelmon/web/web-config.yml" in c["args"]


@ci_files
def test_selectors_and_ports_fit_together(values_file: Path, render) -> None:
    r = render(values_file)
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in r.of_kind("Deployment")}

    def selected(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [t for t in pods.values()
                if selector.items() <= t["metadata"]["labels"].items()]

    for dep in r.of_kind("Deployment"):
        assert dep["spec"]["selector"]["matchLabels"].items() <= \
            dep["spec"]["template"]["metadata"]["labels"].items()
    for svc in r.of_kind("Service"):
        targets = selected(svc["spec"]["selector"])
        assert len(targets) == 1, svc["metadata"]["name"]
        names = {p["name"] for c in targets[0]["spec"]["containers"] for p in c["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in names
    for pdb in r.of_kind("PodDisruptionBudget"):
        assert len(selected(pdb["spec"]["selector"]["matchLabels"])) == 1
    for pol in r.of_kind("NetworkPolicy"):
        targets = selected(pol["spec"]["podSelector"]["matchLabels"])
        assert len(targets) == 1
        names = {p["name"] for c in targets[0]["spec"]["containers"] for p in c["ports"]}
        for rule in pol["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= names
    for sm in r.of_kind("ServiceMonitor"):
        sel = sm["spec"]["selector"]
        comps = set(sel["matchExpressions"][0]["values"])
        matched = [s for s in r.of_kind("Service")
                   if sel["matchLabels"].items() <= s["metadata"]["labels"].items()
                   and s["metadata"]["labels"]["app.kubernetes.io/component"] in comps]
        assert matched, "the ServiceMonitor selects no Service"
        assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
        for s in matched:
            assert "metrics" in {p["name"] for p in s["spec"]["ports"]}


# --- the exporter's command line -------------------------------------------------------------


def _exporter(r: Rendered) -> dict[str, Any]:
    return container(r.get("Deployment", "mm-modelmon-exporter"), "exporter")


def _mount_of(dep: dict[str, Any], c: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume mounted at the directory of ``path``."""
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    for m in c["volumeMounts"]:
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            return vols[m["name"]]
    raise AssertionError(f"{path} is not on a mounted volume")


def test_exporter_args_have_store_url_and_secret_files(render) -> None:
    r = render(_ci("full"))
    dep = r.get("Deployment", "mm-modelmon-exporter")
    c = container(dep, "exporter")
    args = c["args"]
    assert args[0] == "drift"
    assert "--prometheus-url=https://thanos-query.monitoring.svc:10902" in args
    assert "--prometheus.header=X-Scope-OrgID: team-a" in args
    token = "--prometheus.bearer-token-file=/etc/modelmon/store-auth/bearer-token"
    assert token in args
    vol = _mount_of(dep, c, "/etc/modelmon/store-auth/bearer-token")
    assert vol["secret"]["secretName"] == "mm-modelmon-store-auth"
    secret = r.get("Secret", "mm-modelmon-store-auth")
    assert base64.b64decode(secret["data"]["bearer-token"]).decode() == "not-a-real-token"
    assert "--prometheus.ca-file=/etc/modelmon/store-tls/ca.crt" in args
    assert _mount_of(dep, c, "/etc/modelmon/store-tls/ca.crt")["secret"]["secretName"] == \
        "thanos-client-tls"
    assert "--baseline=/etc/modelmon/baselines/loan.yaml" in args
    assert "--config=/etc/modelmon/drift/config.yaml" in args


def test_exporter_basic_auth_from_a_created_secret(render) -> None:
    r = render(_ci("basic-auth"))
    dep = r.get("Deployment", "mm-modelmon-exporter")
    c = container(dep, "exporter")
    assert "--prometheus-url=http://vmselect.monitoring.svc:8481/select/0/prometheus" in c["args"]
    assert "--prometheus.basic-auth-user=modelmon" in c["args"]
    pw = "--prometheus.basic-auth-password-file=/etc/modelmon/store-auth/basic-auth-password"
    assert pw in c["args"]
    secret = r.get("Secret", "mm-modelmon-store-auth")
    assert base64.b64decode(secret["data"]["basic-auth-password"]).decode() == \
        "not-a-real-password"
    assert not any(a.startswith("--prometheus.bearer-token-file") for a in c["args"])


def test_exporter_credentials_and_url_from_an_existing_secret(render) -> None:
    r = render(_ci("existing-secret"))
    assert not r.of_kind("Secret")
    dep = r.get("Deployment", "mm-modelmon-exporter")
    c = container(dep, "exporter")
    assert not any(a.startswith("--prometheus-url") for a in c["args"])
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert env["MODELMON_PROMETHEUS_URL"] == {"name": "mimir-credentials", "key": "url"}
    assert env["MODELMON_PROMETHEUS_BASIC_AUTH_USER"] == {"name": "mimir-credentials",
                                                          "key": "user"}
    vol = _mount_of(dep, c, "/etc/modelmon/store-auth/basic-auth-password")
    assert vol["secret"] == {"secretName": "mimir-credentials",
                             "items": [{"key": "password", "path": "basic-auth-password"}]}


def test_scrape_mode_reads_the_standalone_sidecar(render) -> None:
    args = _exporter(render(_ci("scrape-mode")))["args"]
    assert "--scrape=http://mm-modelmon-sidecar.ml.svc:10380/metrics" in args
    assert not any(a.startswith(("--prometheus", "--baseline")) for a in args)
    assert "--timeout=5s" in args
    assert "--config=/etc/modelmon/drift/config.yaml" in args  # the verdict settings


# --- the rendered settings resolve with modelmon's own configuration code --------------------


@ci_files
def test_rendered_settings_resolve_with_modelmon(values_file: Path, render, tmp_path) -> None:
    from modelmon.cli import build_parser
    from modelmon.drift.cli import resolve as resolve_drift
    from modelmon.sidecar.config import resolve as resolve_sidecar

    r = render(values_file)
    seen = 0
    for dep in r.of_kind("Deployment"):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            args, env = materialize(r, dep, c, tmp_path / dep["metadata"]["name"])
            ns = build_parser().parse_args(args)
            if args[0] == "drift":
                cfg = resolve_drift(ns, env)
                e = r.values.get("exporter", {})
                if e.get("mode", "query") == "query":
                    assert cfg.mode == "query"
                    want = (e.get("store", {}).get("url")
                            or "http://prometheus-operated.monitoring.svc:9090")
                    if "MODELMON_PROMETHEUS_URL" in env:
                        want = env["MODELMON_PROMETHEUS_URL"]
                    assert cfg.prometheus_url == want
                    assert {b.model for b in cfg.baselines} == set(r.values.get("baselines", {}))
                    models = e.get("driftConfig", {}).get("models", {})
                    assert set(cfg.models) == set(models)
                    opts = cfg.query_options
                    assert opts is not None
                    auth = e.get("store", {}).get("auth", {})
                    assert (opts.bearer_token_file is not None) == bool(auth.get("bearerToken"))
                    assert (opts.basic_auth_password_file is not None) == bool(
                        auth.get("password") or auth.get("existingSecret", {}).get("passwordKey"))
                else:
                    assert cfg.mode == "scrape" and cfg.scrape
                assert cfg.port == int(c["ports"][0]["containerPort"])
            else:
                assert args[0] == "sidecar"
                scfg = resolve_sidecar(ns, env)
                assert scfg.port == int(c["ports"][0]["containerPort"])
                assert scfg.models
            seen += 1
    assert seen == len([c for d in r.of_kind("Deployment")
                        for c in d["spec"]["template"]["spec"]["containers"]])


def test_notes_tell_where_things_are(render) -> None:
    notes = render(_ci("full")).notes
    assert "mm-modelmon-exporter" in notes
    assert "http://mm-modelmon-sidecar.ml.svc:10380/v1/models/<model>/events" in notes
    assert "PrometheusRule mm-modelmon" in notes
    assert json.dumps({"release": "kube-prometheus-stack"}, separators=(",", ":")) in notes
