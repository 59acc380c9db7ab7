"""The dashboards as data: Grafana dashboard-linter's rules as pytest, the catalogue,
the generator, the layout sketches and the runbook's panel references.

(No Grafana runs here; tests/dashboards/test_panel_queries.py runs every query on a
real Prometheus.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.catalogue import series_names

from ..conftest import require_module

REPO = Path(__file__).resolve().parents[2]
DIR = REPO / "dashboards"
FILES = sorted(DIR.glob("*.json"))
LINT = yaml.safe_load((DIR / ".lint").read_text())["exclusions"]
RUNBOOK = REPO / "alerts" / "runbook.md"

#: The contract other tools rely on (links, the Helm chart, bookmarks): file -> uid.
UIDS = {
    "modelmon-fleet.json": "modelmon-fleet",
    "modelmon-model.json": "modelmon-model",
    "modelmon-feature.json": "modelmon-feature",
    "modelmon-performance.json": "modelmon-performance",
    "modelmon-exporter.json": "modelmon-exporter",
}
DS = {"type": "prometheus", "uid": "${datasource}"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for p in d["panels"]:
        yield p
        yield from p.get("panels", [])


def targets(d: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for p in panels(d):
        for t in p.get("targets", []):
            yield p, t


def excluded(rule: str, d: dict[str, Any], panel: dict[str, Any]) -> bool:
    entries = LINT.get(rule, {}).get("entries")
    if rule in LINT and entries is None:
        return True
    return any(e["dashboard"] == d["title"] and e.get("panel") in (None, panel["title"])
               for e in entries or [])


@pytest.fixture(params=FILES, ids=[f.name for f in FILES])
def dash(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_the_shipped_dashboards_and_their_uids() -> None:
    assert {f.name: load(f)["uid"] for f in FILES} == UIDS
    for f in FILES:
        d = load(f)
        assert len(d["uid"]) <= 40  # Grafana's limit
        assert d["title"].startswith("ModelMon / ")
        assert "modelmon" in d["tags"]
        assert d["id"] is None  # importable into any Grafana
        assert d["schemaVersion"] >= 36  # datasource references as objects (Grafana 9+)
    titles = [load(f)["title"] for f in FILES]
    assert len(set(titles)) == len(titles)


# --- dashboard-linter rules -------------------------------------------------------------

def test_template_datasource_rule(dash: dict[str, Any]) -> None:
    """A templated Prometheus data source, first, so every query can follow it."""
    first = dash["templating"]["list"][0]
    assert first["name"] == "datasource" and first["type"] == "datasource"
    assert first["query"] == "prometheus"


def test_panel_datasource_rule(dash: dict[str, Any]) -> None:
    """Every panel, target, variable and annotation uses ${datasource}; no uid anywhere."""
    for p in panels(dash):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS, (p["title"], t["refId"])
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == DS, v["name"]
    for a in dash["annotations"]["list"]:
        if not a.get("builtIn"):
            assert a["datasource"] == DS, a["name"]

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict):
                assert ds.get("uid") in ("${datasource}", "-- Grafana --"), path
            if isinstance(ds, str):
                pytest.fail(f"{path}: datasource given by name {ds!r}")
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(dash, dash["title"])


def test_every_panel_has_a_unit(dash: dict[str, Any]) -> None:
    for p in panels(dash):
        if p["type"] != "row":
            assert p["fieldConfig"]["defaults"].get("unit"), p["title"]


_RANGE = re.compile(r"\b(rate|irate|increase)\((?:[^()\[\]]|\([^()]*\))*\[([^\]]+)\]")


def test_target_rate_interval_rule(dash: dict[str, Any]) -> None:
    """rate/irate/increase use $__rate_interval, except the excluded fixed windows; an
    exclusion that is not needed fails too."""
    needed: set[str] = set()
    for p, t in targets(dash):
        for fn, rng in _RANGE.findall(t["expr"]):
            if rng != "$__rate_interval":
                assert excluded("target-rate-interval-rule", dash, p), \
                    f"{p['title']} {t['refId']}: {fn}(...[{rng}])"
                needed.add(p["title"])
    listed = {e["panel"] for e in LINT["target-rate-interval-rule"]["entries"]
              if e["dashboard"] == dash["title"]}
    assert listed == needed


def test_every_range_selector_is_inside_rate_or_increase(dash: dict[str, Any]) -> None:
    for p, t in targets(dash):
        assert len(re.findall(r"\[[^\]]+\]", t["expr"])) == len(_RANGE.findall(t["expr"])), \
            (p["title"], t["expr"])


def test_unique_panel_ids_and_titles(dash: dict[str, Any]) -> None:
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels(dash) if p["type"] != "row"]
    assert len(titles) == len(set(titles)), "the runbook names panels by title"


def test_every_template_variable_is_used(dash: dict[str, Any]) -> None:
    text = json.dumps([dash["panels"], dash["annotations"],
                       [v.get("definition", "") for v in dash["templating"]["list"]]])
    for v in dash["templating"]["list"]:
        if v["name"] == "datasource":
            continue
        assert re.search(rf"\$(\{{)?{v['name']}\b", text), f"${v['name']} is never used"


def test_model_variables_and_links(dash: dict[str, Any]) -> None:
    names = [v["name"] for v in dash["templating"]["list"]]
    assert {"datasource", "model", "model_version"} <= set(names)
    ver = next(v for v in dash["templating"]["list"] if v["name"] == "model_version")
    assert ver["multi"] and ver["includeAll"] and ver["allValue"] == ".*"
    link = next(lk for lk in dash["links"] if lk["type"] == "dashboards")
    assert link["tags"] == ["modelmon"] and link["includeVars"] and link["keepTime"]


def test_data_links_point_at_shipped_dashboards(dash: dict[str, Any]) -> None:
    urls = re.findall(r'"url": "(/d/[^"]+)"', json.dumps(dash))
    for url in urls:
        uid = url.split("/")[2].split("?")[0]
        assert uid in UIDS.values(), url
        assert "var-model=" in url and "${__url_time_range}" in url, url


def test_target_promql_names_only_catalogue_metrics(dash: dict[str, Any]) -> None:
    """Every modelmon series a query reads is in the catalogue; no recording rule (the
    dashboards must work without the rule files)."""
    known = series_names()
    exprs = [t["expr"] for _, t in targets(dash)]
    exprs += [v.get("definition", "") for v in dash["templating"]["list"]]
    exprs += [a.get("expr", "") for a in dash["annotations"]["list"]]
    for e in exprs:
        for name in re.findall(r"\bmodelmon_\w+", e):
            assert name in known, f"{name} is not in modelmon.catalogue"
        assert not re.search(r"\b\w+:\w+:\w+\b", e), f"a recording rule in {e}"


def test_histogram_panels_are_bucketed_by_le(dash: dict[str, Any]) -> None:
    for p, t in targets(dash):
        if t.get("format") == "heatmap":
            assert t["legendFormat"] == "{{le}}", p["title"]
            assert re.search(r"\bby \(le\)", t["expr"]), p["title"]


def test_layout_fits_the_grid_without_overlap(dash: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def _steps(p: dict[str, Any]) -> list[float]:
    return [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]][1:]


def _panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(d) if p["title"] == title and p["type"] != "row")


def test_alert_thresholds_drawn_match_the_rules() -> None:
    """The lines on the drift panels are the drift alerts': score / threshold at 1 is the
    exporter's verdict, which ModelMonFeatureDrift reads, and the critical alert's ratio;
    the dataset drift share of ModelMonDatasetDrift. No drift panel draws a fixed score."""
    doc = yaml.safe_load((REPO / "alerts" / "modelmon-rules.yaml").read_text())
    alerts = {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "alert" in r}
    assert 'modelmon_drift_detected{reference="baseline"}) == 1' in alerts["ModelMonFeatureDrift"]
    ratio = re.search(r"modelmon_drift_threshold\{[^}]*\}\)\s*>=\s*([0-9.]+)",
                      alerts["ModelMonFeatureDriftCritical"])
    share = re.search(r"modelmon_drift_share\{[^}]*\}\)\s*>=\s*([0-9.]+)",
                      alerts["ModelMonDatasetDrift"])
    assert ratio and share
    model, fleet = load(DIR / "modelmon-model.json"), load(DIR / "modelmon-fleet.json")
    assert _steps(_panel(model, "Feature drift vs threshold (score / threshold)")) == \
        [1, float(ratio.group(1))]
    assert _steps(_panel(model, "Dataset drift")) == [float(share.group(1))]
    assert _steps(_panel(fleet, "Dataset drift by model (share of features drifted)")) == \
        [float(share.group(1))]
    column = next(o for o in _panel(fleet, "Models")["fieldConfig"]["overrides"]
                  if o["matcher"]["options"] == "Dataset drift")
    steps = next(p["value"]["steps"] for p in column["properties"] if p["id"] == "thresholds")
    assert [s["value"] for s in steps][1:] == [float(share.group(1))]
    for f in FILES:
        for p, t in targets(load(f)):
            if re.search(r"modelmon_(prediction_)?drift_score\b", t["expr"]) and \
                    p.get("fieldConfig", {}).get("defaults", {}).get("thresholds"):
                drawn = _steps(p)
                assert not drawn or "threshold" in t["expr"] or any(
                    "threshold" in u["expr"] for u in p["targets"]), \
                    f"{p['title']} draws fixed lines {drawn} on drift scores"


# --- generator, sketches, runbook --------------------------------------------------------

def test_committed_dashboards_match_the_generator() -> None:
    require_module("grafana_foundation_sdk", "grafana-foundation-sdk")
    from modelmon.dashboards import stale

    assert stale(DIR) == [], "run: python -m modelmon.dashboards --sketch " \
                             "docs/dashboards.md dashboards"


def test_layout_sketches_are_current() -> None:
    require_module("grafana_foundation_sdk", "grafana-foundation-sdk")
    from modelmon.dashboards import sketch_markdown

    assert (REPO / "docs" / "dashboards.md").read_text(encoding="utf-8") == sketch_markdown()


def runbook_references() -> list[tuple[str, str]]:
    """(dashboard title, panel title) named by the runbook's "Dashboard *T*, panels *A*
    and *B*" sentences (wrapped lines joined)."""
    text = re.sub(r"\s*\n\s*", " ", RUNBOOK.read_text())
    out = []
    for m in re.finditer(r"[Dd]ashboard \*([^*]+)\*, panels? ((?:\*[^*]+\*(?:, | and |, and "
                         r"| / )?)+)", text):
        for panel in re.findall(r"\*([^*]+)\*", m.group(2)):
            out.append((m.group(1), panel))
    return out


def test_every_panel_the_runbook_names_exists() -> None:
    refs = runbook_references()
    alerts = re.findall(r"^## (ModelMon\w+)", RUNBOOK.read_text(), re.MULTILINE)
    assert len(refs) >= len(alerts), "fewer panel references than runbook sections"
    by_title = {load(f)["title"]: {p["title"] for p in panels(load(f))} for f in FILES}
    missing = [(d, p) for d, p in refs if p not in by_title.get(d, set())]
    assert missing == []


def test_the_provisioning_file_is_a_grafana_file_provider() -> None:
    doc = yaml.safe_load((REPO / "docs" / "grafana" / "dashboards-provider.yaml").read_text())
    assert doc["apiVersion"] == 1
    (prov,) = doc["providers"]
    assert prov["type"] == "file" and prov["options"]["path"].startswith("/")
    assert "docs/grafana/dashboards-provider.yaml" in (REPO / "README.md").read_text()


def test_every_file_decodes_as_grafanas_dashboard_model(dash: dict[str, Any]) -> None:
    """The committed JSON round-trips through the SDK's typed model of Grafana's
    dashboard schema (panel options decoded per panel plugin) without losing or changing
    a value: no field Grafana's schema does not know, none of the wrong shape (the model
    may add its defaults)."""
    require_module("grafana_foundation_sdk", "grafana-foundation-sdk")
    import warnings

    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as dm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plugins.register_default_plugins()
        back = json.loads(JSONEncoder().encode(dm.Dashboard.from_json(dash)))
    lost: list[str] = []

    def covered(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k, v in a.items():
                if k not in b:
                    lost.append(f"{path}.{k}")
                else:
                    covered(v, b[k], f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                covered(x, y, f"{path}[{i}]")
        elif a != b:
            lost.append(f"{path}: {a!r} -> {b!r}")

    covered({k: v for k, v in dash.items() if k != "id"}, back, "")  # id: null is dropped
    assert lost == []
