"""exporter.driftConfig: the chart writes the ``--config`` file of ``modelmon drift`` (the
verdict, methods and per-model settings) into a ConfigMap, mounts it and passes the flag, in
query and in scrape mode; the file it writes is read by the exporter's own loader
(``modelmon.drift.cli.load_config_file``), and what the chart refuses in scrape mode the
exporter refuses too."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import require_module
from .conftest import Rendered, container, materialize, render_chart

helm = require_module("helm_python", "helm-python-sdk")

CONFIG_MAP = "mm-modelmon-drift-config"
FLAG = "--config=/etc/modelmon/drift/config.yaml"
VERDICT = {
    "method": {"numeric": "wasserstein_normed", "categorical": "jensen_shannon"},
    "effect": {"wasserstein_normed": 0.2, "jensen_shannon": 0.05},
    "alpha": 0.001,
}
#: What scrape mode needs besides the verdict (no store, one /metrics URL).
SCRAPE = {"mode": "scrape", "scrape": {"urls": ["http://model-0:8000/metrics"]}}
MODES = ("query", "scrape")


def _values(mode: str, drift_config: dict[str, Any]) -> dict[str, Any]:
    exporter: dict[str, Any] = copy.deepcopy(SCRAPE) if mode == "scrape" else {}
    exporter["driftConfig"] = copy.deepcopy(drift_config)
    return {"exporter": exporter}


def _config_text(r: Rendered) -> str:
    return r.get("ConfigMap", CONFIG_MAP)["data"]["config.yaml"]


def _exporter(r: Rendered) -> tuple[dict[str, Any], dict[str, Any]]:
    dep = r.get("Deployment", "mm-modelmon-exporter")
    return dep, container(dep, "exporter")


def _load(text: str, tmp_path: Path) -> Any:
    from modelmon.drift.cli import load_config_file

    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config_file(str(path))


@pytest.mark.parametrize("mode", MODES)
def test_verdict_alone_renders_the_config_map_the_mount_and_the_flag(mode: str) -> None:
    r = render_chart(_values(mode, {"verdict": VERDICT}))
    assert yaml.safe_load(_config_text(r)) == {"verdict": VERDICT}
    dep, c = _exporter(r)
    assert c["args"].count(FLAG) == 1
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["drift-config"] == {"name": "drift-config", "mountPath": "/etc/modelmon/drift",
                                      "readOnly": True}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["drift-config"]["configMap"]["name"] == CONFIG_MAP
    # a changed verdict restarts the exporter; the same one does not
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    again = _exporter(render_chart(_values(mode, {"verdict": VERDICT})))[0]
    changed = _exporter(render_chart(_values(mode, {"verdict": {**VERDICT, "alpha": 0.01}})))[0]
    assert again["spec"]["template"]["metadata"]["annotations"] == annotations
    assert changed["spec"]["template"]["metadata"]["annotations"]["checksum/drift-config"] != \
        annotations["checksum/drift-config"]


@pytest.mark.parametrize("mode", MODES)
def test_no_config_without_settings(mode: str) -> None:
    r = render_chart(_values(mode, {"verdict": {}, "methods": [], "models": {}}))
    assert r.find("ConfigMap", CONFIG_MAP) is None
    _, c = _exporter(r)
    assert FLAG not in c["args"]
    assert "drift-config" not in {m["name"] for m in c.get("volumeMounts", [])}


@pytest.mark.parametrize("mode", MODES)
def test_no_config_without_the_exporter(mode: str) -> None:
    values = _values(mode, {"verdict": VERDICT, "methods": ["psi"]})  # not checked either
    values["exporter"]["enabled"] = False
    r = render_chart(values)
    assert r.find("ConfigMap", CONFIG_MAP) is None
    assert r.find("Deployment", "mm-modelmon-exporter") is None


@pytest.mark.parametrize("mode", MODES)
def test_rendered_config_file_is_read_by_the_exporter(mode: str, tmp_path: Path) -> None:
    from modelmon.cli import build_parser
    from modelmon.drift.cli import resolve

    models: dict[str, Any] = {"fraud": {"verdict": {"method": "psi", "effect": 0.1}},
                              "pricing": {"verdict": {"alpha": 0.0001}},
                              "churn": {}}
    drift_config: dict[str, Any] = {"verdict": VERDICT, "models": models}
    if mode == "query":
        drift_config["methods"] = ["psi", "ks", "wasserstein_normed"]
        models["fraud"].update(window="2h", min_samples=500, methods=["psi"])
    r = render_chart(_values(mode, drift_config))

    file = _load(_config_text(r), tmp_path)
    v = file.verdict
    assert (v.numeric, v.categorical, dict(v.effect), v.alpha) == \
        ("wasserstein_normed", "jensen_shannon", VERDICT["effect"], 0.001)
    fraud = file.models["fraud"].verdict
    assert (fraud.numeric, fraud.categorical, fraud.alpha) == ("psi", "psi", 0.001)
    assert dict(fraud.effect) == {**VERDICT["effect"], "psi": 0.1}
    pricing = file.models["pricing"].verdict
    assert (pricing.numeric, pricing.categorical, pricing.alpha) == \
        ("wasserstein_normed", "jensen_shannon", 0.0001)
    assert file.models["churn"].verdict is None  # the top-level verdict
    if mode == "query":
        assert file.methods == ("psi", "ks", "wasserstein_normed")
        assert (file.models["fraud"].window, file.models["fraud"].min_samples,
                file.models["fraud"].methods) == (7200.0, 500, ("psi",))

    # and the exporter's whole command line, with the ConfigMap mounted where it says
    dep, c = _exporter(r)
    args, env = materialize(r, dep, c, tmp_path / "pod")
    cfg = resolve(build_parser().parse_args(args), env)
    assert cfg.mode == mode
    assert cfg.verdict == file.verdict
    assert cfg.models["fraud"].verdict == fraud


@pytest.mark.parametrize("alpha,floor", [(0.00001, 1e-07), (1e-12, 2.5e21), (0.5, 3)])
def test_numbers_keep_their_type(alpha: float, floor: float, tmp_path: Path) -> None:
    """Go writes 0.00001 as 1e-05, a string to a YAML 1.1 reader: the chart writes 1.0e-05."""
    r = render_chart(_values("query", {"verdict": {"method": "psi", "effect": floor,
                                                   "alpha": alpha}}))
    text = _config_text(r)
    assert yaml.safe_load(text)["verdict"] == {"method": "psi", "effect": floor, "alpha": alpha}
    v = _load(text, tmp_path).verdict
    assert (v.alpha, v.effect["psi"]) == (alpha, floor)


REFUSED_IN_SCRAPE_MODE = [
    ({"methods": ["psi"]}, "methods"),
    ({"models": {"loan": {"window": "2h"}}}, "models.loan.window"),
    ({"models": {"loan": {"min_samples": 50, "verdict": {"alpha": 0.01}}}},
     "models.loan.min_samples"),
    ({"models": {"loan": {"methods": ["psi"]}}}, "models.loan.methods"),
]


@pytest.mark.parametrize("drift_config,key", REFUSED_IN_SCRAPE_MODE,
                         ids=[k for _, k in REFUSED_IN_SCRAPE_MODE])
def test_scrape_mode_refuses_what_the_exporter_refuses(drift_config: dict[str, Any], key: str,
                                                       tmp_path: Path) -> None:
    from modelmon.cli import build_parser
    from modelmon.drift.cli import ConfigError, resolve

    with pytest.raises(helm.HelmError) as exc:
        render_chart(_values("scrape", drift_config))
    assert f"exporter.driftConfig.{key}: only used in query mode" in str(exc.value)
    # the same file, in query mode, given to the exporter in scrape mode
    text = _config_text(render_chart(_values("query", drift_config)))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    ns = build_parser().parse_args(["drift", "--scrape", "http://model-0:8000/metrics",
                                    f"--config={path}"])
    with pytest.raises(ConfigError, match=f"key '{key}': only used in query mode"):
        resolve(ns, {})
