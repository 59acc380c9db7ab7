"""Building blocks of the dashboards: metric names from the catalogue, panels, layout.

Panels are built with Grafana's foundation SDK (``grafana-foundation-sdk``, the typed
builders Grafana generates from its own schema); what the SDK does not model well
(data links on fields, the per-panel grid layout, the schema version) is set on the
built JSON in :func:`finish`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

with warnings.catch_warnings():
    # The v1 dashboard model is what Grafana 10 and 11 import; the SDK points at Grafana
    # 12's v2 schema on import.
    warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
    from grafana_foundation_sdk.builders import (
        bargauge, heatmap, stat, statetimeline, table, timeseries)
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as db
    from grafana_foundation_sdk.builders import prometheus as prom
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as cm
    from grafana_foundation_sdk.models import dashboard as dm

from ..catalogue import by_name

__all__ = ["metric", "DS", "Board", "Target", "PanelSpec", "State", "GREY", "UID_PREFIX",
           "SCHEMA_VERSION"]

#: Every dashboard uid starts with this; links between dashboards use the uids.
UID_PREFIX = "modelmon-"
#: Dashboard JSON schema version of Grafana 10.4/11.0: Grafana 10+ imports it as is and
#: newer versions migrate it forward on load.
SCHEMA_VERSION = 39

#: Every panel, target, variable and annotation reads the ``${datasource}`` variable.
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

_SUFFIXES = ("_bucket", "_sum", "_count")


def metric(name: str) -> str:
    """A series name, checked against the catalogue (histograms with their suffix).

    >>> metric("modelmon_feature_value_bucket")
    'modelmon_feature_value_bucket'
    >>> metric("modelmon_nope")
    Traceback (most recent call last):
    ...
    KeyError: 'modelmon_nope is not in modelmon.catalogue'
    """
    base = name
    for s in _SUFFIXES:
        if name.endswith(s) and not name.endswith("_total"):
            stem = name.removesuffix(s)
            try:
                if by_name(stem).type == "histogram":
                    base = stem
            except KeyError:
                pass
            break
    try:
        by_name(base)
    except KeyError:
        raise KeyError(f"{name} is not in modelmon.catalogue") from None
    return name


@dataclass
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    fmt: str = "time_series"  # time_series, table or heatmap

    def builder(self, ref: str) -> prom.Dataquery:
        q = (prom.Dataquery().expr(_squash(self.expr)).ref_id(ref).datasource(DS)
             .legend_format(self.legend))
        if self.instant:
            q = q.instant()
        else:
            q = q.range()
        if self.fmt != "time_series":
            from grafana_foundation_sdk.models.prometheus import PromQueryFormat
            q = q.format(PromQueryFormat(self.fmt))
        return q


def _squash(expr: str) -> str:
    """One-line PromQL (the JSON stays readable and diffs stay small)."""
    return re.sub(r"\s+", " ", expr.strip()).replace("( ", "(").replace(" )", ")")


@dataclass
class PanelSpec:
    """A panel before layout: its builder, width and height, and field data links."""

    builder: Any
    w: int
    h: int
    links: list[dict[str, Any]] = field(default_factory=list)


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


GREEN_RED = ((None, "green"),)
#: Colour of a state that is neither good nor bad (no verdict yet).
GREY = "#8e8e8e"

#: A value mapping: (value, text shown, colour).
State = tuple[int, str, str]


def _mappings(states: Sequence[State]) -> list[Any]:
    """One value map: each value shown as its text in its colour."""
    return [dm.ValueMap(options={str(v): dm.ValueMappingResult(text=text, color=color, index=i)
                                 for i, (v, text, color) in enumerate(states)})]


def _common(p: Any, title: str, desc: str, targets: Iterable[Target], unit: str) -> Any:
    p = p.title(title).description(desc).datasource(DS).unit(unit)
    for i, t in enumerate(targets):
        p = p.with_target(t.builder(chr(ord("A") + i)))
    return p


def ts(title: str, desc: str, targets: Sequence[Target], unit: str, *, w: int = 12,
       h: int = 8, thresholds: Sequence[tuple[float | None, str]] | None = None,
       log: bool = False, minv: float | None = None, maxv: float | None = None,
       dashed: str | None = None, colors: Sequence[tuple[str, str]] = ()) -> PanelSpec:
    """A time series panel; ``thresholds`` draw dashed lines, ``dashed`` is a regex of
    series names drawn dashed (the baseline next to the live values), ``colors`` fixes
    the colour of the series whose names match a regex (a line and its dashed twin)."""
    p = _common(timeseries.Panel(), title, desc, targets, unit)
    p = p.legend(_legend() if w >= 12 else _legend_bottom()).tooltip(_tooltip())
    p = p.line_width(1).fill_opacity(10).show_points(cm.VisibilityMode.NEVER)
    if log:
        p = p.scale_distribution(cb.ScaleDistributionConfig().type(cm.ScaleDistribution.LOG)
                                 .log(10))
    if minv is not None:
        p = p.min(minv)
    if maxv is not None:
        p = p.max(maxv)
    if thresholds:
        p = p.thresholds(_thresholds(thresholds)).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    else:
        p = p.thresholds(_thresholds(GREEN_RED))
    if dashed:
        p = p.override_by_regexp(dashed, [
            dm.DynamicConfigValue(id_val="custom.lineStyle",
                                  value={"fill": "dash", "dash": [10, 10]}),
            dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0)])
    for regex, color in colors:
        p = p.override_by_regexp(regex, [
            dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})])
    return PanelSpec(p, w, h)


def _legend() -> Any:
    return (cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.RIGHT).calcs(["lastNotNull", "max"]))


def _tooltip() -> Any:
    return cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)


def stat_panel(title: str, desc: str, targets: Sequence[Target], unit: str, *, w: int = 4,
               h: int = 4, thresholds: Sequence[tuple[float | None, str]] = GREEN_RED,
               no_value: str | None = None, states: Sequence[State] = ()) -> PanelSpec:
    """A stat; with ``states`` it shows the mapped text of the last value (no sparkline)."""
    p = _common(stat.Panel(), title, desc, targets, unit)
    p = p.thresholds(_thresholds(thresholds)).color_mode(cm.BigValueColorMode.BACKGROUND)
    p = p.reduce_options(_reduce("lastNotNull")).graph_mode(
        cm.BigValueGraphMode.NONE if states else cm.BigValueGraphMode.AREA)
    if states:
        p = p.mappings(_mappings(states))
    if no_value is not None:
        p = p.no_value(no_value)
    return PanelSpec(p, w, h)


def timeline(title: str, desc: str, targets: Sequence[Target], states: Sequence[State], *,
             w: int = 24, h: int = 8) -> PanelSpec:
    """A state timeline: one row per series, each value drawn as its mapped state, the
    states and their colours in the legend."""
    p = _common(statetimeline.Panel(), title, desc, targets, "none")
    p = p.mappings(_mappings(states)).thresholds(_thresholds(((None, GREY),)))
    p = p.color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    p = p.show_value(cm.VisibilityMode.NEVER).merge_values(True).row_height(0.9)
    p = p.fill_opacity(80).line_width(0).legend(_legend_bottom()).tooltip(_tooltip())
    return PanelSpec(p, w, h)


def _reduce(calc: str) -> Any:
    return cb.ReduceDataOptions().calcs([calc]).values(False)


def gauge_bars(title: str, desc: str, targets: Sequence[Target], unit: str, *, w: int = 12,
               h: int = 8, thresholds: Sequence[tuple[float | None, str]] = GREEN_RED,
               maxv: float | None = None, minv: float | None = 0,
               links: list[dict[str, Any]] | None = None) -> PanelSpec:
    """A bar gauge: the top drifting features, or a histogram (heatmap-format queries
    are de-accumulated and ordered by ``le`` by Grafana's Prometheus data source)."""
    p = _common(bargauge.Panel(), title, desc, targets, unit)
    p = p.thresholds(_thresholds(thresholds)).display_mode(cm.BarGaugeDisplayMode.GRADIENT)
    p = p.orientation(cm.VizOrientation.HORIZONTAL).reduce_options(_reduce("lastNotNull"))
    if minv is not None:
        p = p.min(minv)
    if maxv is not None:
        p = p.max(maxv)
    return PanelSpec(p, w, h, links=list(links or []))


def heat(title: str, desc: str, targets: Sequence[Target], unit: str, *, w: int = 12,
         h: int = 8) -> PanelSpec:
    """A heatmap of already-bucketed series: one row per series (feature) or per ``le``."""
    from grafana_foundation_sdk.builders import heatmap as hb
    p = _common(heatmap.Panel(), title, desc, targets, unit)
    p = p.calculate(False).color(
        hb.HeatmapColorOptions().mode("scheme").scheme("Oranges").steps(64).exponent(0.5)
        .fill("dark-orange").reverse(False)).cell_gap(1).y_axis(
        hb.YAxisConfig().unit(unit if unit != "short" else "none"))
    return PanelSpec(p, w, h)


def tbl(title: str, desc: str, targets: Sequence[Target], unit: str, *, w: int = 24,
        h: int = 8, transformations: Sequence[dict[str, Any]] = (),
        overrides: Sequence[tuple[str, list[tuple[str, Any]]]] = (),
        links: list[dict[str, Any]] | None = None) -> PanelSpec:
    """A table of instant queries; ``overrides`` set per-column properties."""
    p = _common(table.Panel(), title, desc, targets, unit)
    for t in transformations:
        p = p.with_transformation(dm.DataTransformerConfig(id_val=t["id"],
                                                          options=t.get("options", {})))
    for name, props in overrides:
        p = p.override_by_name(name, [dm.DynamicConfigValue(id_val=k, value=v)
                                      for k, v in props])
    p = p.thresholds(_thresholds(GREEN_RED))
    return PanelSpec(p, w, h, links=list(links or []))


def _legend_bottom() -> Any:
    return (cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM).calcs([]))


def link(title: str, uid: str, params: str) -> dict[str, Any]:
    """A data link to another modelmon dashboard, keeping the time range and datasource."""
    return {"title": title, "url": f"/d/{uid}?{params}&${{__url_time_range}}"
                                   f"&${{datasource:queryparam}}", "targetBlank": False}


class Board:
    """One dashboard under construction: panels are laid out left to right in rows."""

    def __init__(self, uid: str, title: str, description: str, tags: Sequence[str] = ()) -> None:
        self.b = (db.Dashboard(title).uid(uid).description(description)
                  .tags(["modelmon", *tags]).editable().timezone("browser")
                  .refresh("1m").time("now-6h", "now").tooltip(dm.DashboardCursorSync.CROSSHAIR))
        self.b = self.b.link(db.DashboardLink("ModelMon").type(dm.DashboardLinkType.DASHBOARDS)
                             .tags(["modelmon"]).as_dropdown(False).include_vars(True)
                             .keep_time(True).target_blank(False).icon("external link")
                             .tooltip("").url(""))
        self.rows: list[tuple[str, list[PanelSpec]]] = []

    # -- variables ---------------------------------------------------------------------
    def datasource(self) -> "Board":
        self.b = self.b.with_variable(
            db.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .hide(dm.VariableHide.DONT_HIDE))
        return self

    def query_var(self, name: str, label: str, query: str, *, multi: bool = False,
                  all_value: str | None = None, default: str | None = None,
                  regex: str = "") -> "Board":
        v = (db.QueryVariable(name).label(label).datasource(DS)
             .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                     "qryType": 1})
             .definition(query).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
             .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(multi))
        if regex:
            v = v.regex(regex)
        if all_value is not None:
            v = v.all_value(all_value)
        if default is not None:
            v = v.current(dm.VariableOption(text=default, value=default, selected=True))
        elif multi:
            v = v.current(dm.VariableOption(text="All", value="$__all", selected=True))
        self.b = self.b.with_variable(v)
        return self

    def custom_var(self, name: str, label: str, values: Sequence[str], default: str,
                   desc: str) -> "Board":
        v = (db.CustomVariable(name).label(label).description(desc).values(",".join(values))
             .current(dm.VariableOption(text=default, value=default, selected=True))
             .options([dm.VariableOption(text=x, value=x, selected=x == default)
                       for x in values]))
        self.b = self.b.with_variable(v)
        return self

    def alert_annotations(self, matcher: str) -> "Board":
        """Firing ModelMon alerts of the selected model as annotations."""
        a = (db.AnnotationQuery().name("ModelMon alerts").datasource(DS).enable(True)
             .icon_color("red").hide(False)
             .expr(f'ALERTS{{alertstate="firing", alertname=~"ModelMon.*"{matcher}}}')
             .step("60s").title_format("{{alertname}}")
             .text_format("{{severity}} {{feature}}{{output}}{{class}}{{detector}}")
             .use_value_for_time(False))
        self.b = self.b.annotation(a)
        return self

    # -- panels --------------------------------------------------------------------------
    def row(self, title: str, *panels: PanelSpec) -> "Board":
        self.rows.append((title, list(panels)))
        return self

    def build(self) -> dict[str, Any]:
        import json

        d = json.loads(JSONEncoder(sort_keys=False).encode(self.b.build()))
        panels: list[dict[str, Any]] = []
        pid = 0
        y = 0
        for title, specs in self.rows:
            pid += 1
            panels.append({"collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                           "id": pid, "panels": [], "title": title, "type": "row"})
            y += 1
            x = 0
            line_h = 0
            for spec in specs:
                if x + spec.w > 24:
                    y += line_h
                    x, line_h = 0, 0
                p = json.loads(JSONEncoder(sort_keys=False).encode(spec.builder.build()))
                pid += 1
                p["id"] = pid
                p["gridPos"] = {"h": spec.h, "w": spec.w, "x": x, "y": y}
                p.pop("repeatDirection", None)
                if spec.links:
                    p.setdefault("fieldConfig", {}).setdefault("defaults", {})["links"] = \
                        spec.links
                panels.append(p)
                x += spec.w
                line_h = max(line_h, spec.h)
            y += line_h
        for lk in d.get("links", []):
            lk.pop("placement", None)  # a Grafana 12 option; older versions reject nothing
        for an in d.get("annotations", {}).get("list", []):
            an.pop("placement", None)
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "interval":
                for k in ("auto", "auto_count", "auto_min"):
                    v.pop(k, None)
        d["panels"] = panels
        d["schemaVersion"] = SCHEMA_VERSION
        d["id"] = None
        d["version"] = 1
        builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                   "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                   "name": "Annotations & Alerts", "type": "dashboard"}
        d["annotations"] = {"list": [builtin, *d.get("annotations", {}).get("list", [])]}
        return d
