"""Every query of every shipped dashboard returns data from a populated, real Prometheus.

Generic over ``dashboards/*.json`` (or ``$MODELMON_DASHBOARDS_DIR``): each panel target
(rows' nested panels included), each Prometheus annotation and each query variable is
one test, named ``<file>::<panel id>:<title>::<refId>``. Its variables are filled in as
Grafana would (``$name``, ``${name}``, ``${name:format}``, ``[[name]]``; multi-value
variables regex-escaped), from each scenario of the ``populated`` fixture (variables the
scenario does not set take their ``current`` value, their ``All`` value, or the first
value their own query returns; Grafana's built-ins ``$__rate_interval`` and friends get
values fitting 1 s scrapes), then run over the time since the traffic began:
``/api/v1/query_range`` (step 2 s) for range targets, ``/api/v1/query`` for
``instant`` ones. A target passes when at least one scenario returns at least one
finite value; a PromQL error, a variable left unfilled, or nothing but empty or NaN
results fails it, with every query as run and what came back.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import SCENARIOS, Populated

#: Marks of the tests that need the populated Prometheus (the others are plain unit tests).
slow = pytest.mark.slow
integration = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: Where the dashboards are read from: the repository's ``dashboards/`` unless the
#: environment names another directory (for trying out a dashboard under development).
DASHBOARDS_DIR = Path(os.environ.get("MODELMON_DASHBOARDS_DIR") or REPO / "dashboards")

#: Step of the range queries, as Grafana would pick for a short time range.
STEP_SECONDS = 2
#: Grafana built-ins that do not depend on the time range (1 s scrapes: the rate interval
#: is max(4 x scrape interval, interval + scrape interval), rounded up generously).
FIXED_BUILTINS = {
    "__rate_interval": "20s", "__rate_interval_ms": "20000",
    "__interval": "2s", "__interval_ms": "2000",
}


# --- reading the dashboards --------------------------------------------------------------

def _load() -> tuple[dict[str, dict[str, Any]], list[str]]:
    boards: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    if not DASHBOARDS_DIR.is_dir():
        return boards, [f"{DASHBOARDS_DIR} is not a directory"]
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            problems.append(f"{path.name}: not JSON: {e}")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{path.name}: not a JSON object")
            continue
        boards[path.name] = doc
    return boards, problems


BOARDS, LOAD_PROBLEMS = _load()


def _panels(panels: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for p in panels or []:
        yield p
        yield from _panels(p.get("panels"))


def _ds_type(ds: Any) -> str | None:
    if isinstance(ds, dict):
        return ds.get("type")
    if isinstance(ds, str):  # a name or a variable: the dashboards' Prometheus
        return "prometheus" if ds.startswith("$") else None
    return None


def _is_prometheus(*sources: Any) -> bool:
    """The first datasource given decides; none at all is the default (Prometheus)."""
    for ds in sources:
        if ds is not None:
            t = _ds_type(ds)
            return t in (None, "prometheus")
    return True


@dataclass(frozen=True)
class Target:
    file: str
    panel_id: Any
    title: str
    ref: str
    expr: str
    kinds: tuple[str, ...]  # "range" and/or "instant"

    @property
    def id(self) -> str:
        return f"{self.file}::{self.panel_id}:{self.title}::{self.ref}"


@dataclass(frozen=True)
class Annotation:
    file: str
    name: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.file}::annotation:{self.name}"


@dataclass(frozen=True)
class Variable:
    file: str
    name: str
    query: str

    @property
    def id(self) -> str:
        return f"{self.file}::variable:{self.name}"


def _kinds(t: dict[str, Any]) -> tuple[str, ...]:
    instant, rng = bool(t.get("instant")), bool(t.get("range"))
    if instant and rng:
        return ("range", "instant")
    return ("instant",) if instant else ("range",)


def _targets() -> list[Target]:
    out = []
    for file, doc in BOARDS.items():
        for p in _panels(doc.get("panels")):
            for i, t in enumerate(p.get("targets") or []):
                if not isinstance(t, dict) or not _is_prometheus(t.get("datasource"),
                                                                 p.get("datasource")):
                    continue
                if "expr" not in t and _ds_type(t.get("datasource") or p.get("datasource")) \
                        != "prometheus":
                    continue  # e.g. a target of the "-- Dashboard --" source
                out.append(Target(file, p.get("id"), str(p.get("title", "")),
                                  str(t.get("refId") or i), str(t.get("expr") or ""),
                                  _kinds(t)))
    return out


def _annotations() -> list[Annotation]:
    out = []
    for file, doc in BOARDS.items():
        for a in (doc.get("annotations") or {}).get("list") or []:
            expr = a.get("expr") or (a.get("target") or {}).get("expr")
            if expr is None or not _is_prometheus(a.get("datasource")):
                continue
            out.append(Annotation(file, str(a.get("name", "")), str(expr)))
    return out


def _variable_query(v: dict[str, Any]) -> str:
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return str(q or v.get("definition") or "")


def _variables() -> list[Variable]:
    out = []
    for file, doc in BOARDS.items():
        for v in (doc.get("templating") or {}).get("list") or []:
            if v.get("type") == "query" and _is_prometheus(v.get("datasource")):
                out.append(Variable(file, str(v.get("name")), _variable_query(v)))
    return out


TARGETS = _targets()
ANNOTATIONS = _annotations()
VARIABLES = _variables()


# --- filling in variables ------------------------------------------------------------------

_REF = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::([^}]*))?\}|\[\[([A-Za-z_]\w*)(?::(\w+))?\]\]")
_LEFT = re.compile(r"\$\{?[A-Za-z_]\w*|\[\[[A-Za-z_]\w*")
_ALL = "$__all"


def _regular_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("'", "\\\\'")


def _special_regex_escape(v: str) -> str:
    """Grafana's escaping of one value of a multi-value variable for Prometheus."""
    v = v.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v)


def _js_regex_escape(v: str) -> str:
    return re.sub(r"[\\^$.|?*+()\[\]{}/-]", lambda m: "\\" + m.group(0), v)


def _listify(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _custom_options(v: dict[str, Any]) -> list[str]:
    opts = [str(o.get("value")) for o in v.get("options") or [] if isinstance(o, dict)
            and o.get("value") not in (None, _ALL)]
    if opts:
        return opts
    out = []
    for part in re.split(r"(?<!\\),", str(v.get("query") or "")):
        part = part.strip()
        if " : " in part:  # "text : value"
            part = part.split(" : ", 1)[1].strip()
        if part:
            out.append(part)
    return out


class Resolver:
    """Fills the variables of one dashboard from one scenario, as Grafana would."""

    def __init__(self, dashboard: dict[str, Any], scenario: dict[str, str],
                 populated: Populated, now: float) -> None:
        self.vars = {str(v.get("name")): v
                     for v in (dashboard.get("templating") or {}).get("list") or []}
        self.scenario = scenario
        self.populated = populated
        self.now = now
        age = max(1.0, now - populated.start)
        range_s = int(math.ceil(age / 60.0) * 60)
        self.builtins = dict(FIXED_BUILTINS, __range=f"{range_s // 60}m",
                             __range_s=str(range_s), __range_ms=str(range_s * 1000))
        self._values: dict[str, list[str]] = {}
        self._resolving: set[str] = set()

    # values of one variable (None: not a variable of this dashboard)
    def values(self, name: str) -> list[str] | None:
        if name in self.scenario and name in self.vars:
            return [self.scenario[name]]
        if name in self._values:
            return self._values[name]
        v = self.vars.get(name)
        if v is None or name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            vals = self._resolve(v)
        finally:
            self._resolving.discard(name)
        self._values[name] = vals
        return vals

    def is_all(self, name: str) -> bool:
        if name in self.scenario:
            return False
        v = self.vars.get(name) or {}
        cur = (v.get("current") or {}).get("value")
        return bool(v.get("includeAll")) and _ALL in _listify(cur)

    def _resolve(self, v: dict[str, Any]) -> list[str]:
        kind = v.get("type")
        cur = _listify((v.get("current") or {}).get("value"))
        if kind in ("custom", "interval"):
            opts = _custom_options(v)
            if _ALL in cur or not cur:
                return opts if _ALL in cur else opts[:1]
            return cur
        if kind == "constant":
            return [str(v.get("query", ""))]
        if kind == "textbox":
            return cur or [str(v.get("query", ""))]
        if kind == "datasource":
            return cur or ["prometheus"]
        if kind == "query":
            if cur and _ALL not in cur:
                return cur
            found = run_variable_query(self, _variable_query(v), v.get("regex"))[0]
            return found if _ALL in cur else found[:1]
        return cur

    def format(self, name: str, fmt: str | None) -> str | None:
        vals = self.values(name)
        if vals is None:
            return None
        v = self.vars[name]
        if self.is_all(name) and v.get("allValue"):
            return str(v["allValue"])
        multi = bool(v.get("multi") or v.get("includeAll"))
        if fmt == "regex":
            esc = [_js_regex_escape(x) for x in vals]
            return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"
        if fmt == "pipe":
            return "|".join(vals)
        if fmt in ("csv", "raw", "text"):
            return ",".join(vals)
        if fmt == "singlequote":
            return ",".join("'" + x.replace("'", "\\'") + "'" for x in vals)
        if fmt == "doublequote":
            return ",".join('"' + x.replace('"', '\\"') + '"' for x in vals)
        if fmt == "json":
            return json.dumps(vals if multi else vals[0])
        if fmt not in (None, ""):
            return None  # a format this test does not know: left in, reported
        if not multi:
            return _regular_escape(vals[0]) if vals else ""
        esc = [_special_regex_escape(x) for x in vals]
        return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"

    def fill(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2) or m.group(4)
            fmt = m.group(3) if m.group(2) else m.group(5)
            if name in self.builtins:
                return self.builtins[name]
            got = self.format(name, fmt)
            return m.group(0) if got is None else got
        return _REF.sub(sub, text)


def leftover(expr: str) -> list[str]:
    """Variable references still in ``expr`` (``$1`` of label_replace is not one)."""
    return _LEFT.findall(expr)


# --- talking to Prometheus -------------------------------------------------------------------

def _api(populated: Populated, path: str, params: dict[str, Any]) -> tuple[Any, str | None]:
    """``data`` of a Prometheus API answer, or the error."""
    try:
        r = populated.prom.http.get(populated.prom.url + path, params=params, timeout=30)
        doc = r.json()
    except Exception as e:  # noqa: BLE001 - reported as the test's failure
        return None, f"request failed: {e}"
    if doc.get("status") != "success":
        return None, f"HTTP {r.status_code}: {doc.get('errorType')}: {doc.get('error')}"
    return doc.get("data"), None


def _finite_values(data: dict[str, Any]) -> tuple[int, int]:
    """(series, finite values) of a query result."""
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "scalar":
        return 1, int(math.isfinite(float(result[1])))
    if kind == "string":
        return 1, 0
    finite = 0
    for s in result:
        points = s.get("values") or ([s["value"]] if "value" in s else [])
        finite += sum(math.isfinite(float(v)) for _, v in points)
        # native histograms: a point is data
        finite += len(s.get("histograms") or []) + int("histogram" in s)
    return len(result), finite


def run_expr(populated: Populated, expr: str, kind: str, now: float) -> tuple[bool, str]:
    """Run one filled-in query; (has finite data, what came back)."""
    if kind == "instant":
        data, err = _api(populated, "/api/v1/query", {"query": expr, "time": now})
    else:
        data, err = _api(populated, "/api/v1/query_range",
                         {"query": expr, "start": populated.start, "end": now,
                          "step": STEP_SECONDS})
    if err is not None:
        return False, f"error: {err}"
    series, finite = _finite_values(data)
    if not series:
        return False, "empty result"
    if not finite:
        return False, f"{series} series, but no finite value (NaN/Inf only)"
    return True, f"{series} series, {finite} finite values"


def _split_args(inner: str) -> list[str]:
    """Top-level comma-separated arguments (braces, parentheses and quotes respected)."""
    args, depth, quote, cur = [], 0, "", []
    for ch in inner:
        if quote:
            cur.append(ch)
            if ch == quote and (len(cur) < 2 or cur[-2] != "\\"):
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    args.append("".join(cur).strip())
    return args


def _apply_regex(values: list[str], regex: str | None) -> list[str]:
    if not regex:
        return values
    m = re.fullmatch(r"/(.*)/([gimsuy]*)", regex, re.DOTALL)
    pattern, flags = (m.group(1), m.group(2)) if m else (regex, "")
    rx = re.compile(pattern, re.IGNORECASE if "i" in flags else 0)
    out = []
    for v in values:
        hit = rx.search(v)
        if hit is None:
            continue
        if "value" in rx.groupindex and hit.group("value") is not None:
            out.append(hit.group("value"))
        elif rx.groups:
            out.append(hit.group(1))
        else:
            out.append(v)
    return list(dict.fromkeys(out))


def run_variable_query(res: Resolver, query: str,
                       regex: str | None = None) -> tuple[list[str], str]:
    """Values of a Prometheus variable query (label_values, label_names, metrics,
    query_result), filled in from ``res``; (values, the query as run or an error)."""
    q = res.fill(query.strip())
    if leftover(q):
        return [], f"{q!r}: unfilled variables {leftover(q)}"
    populated, rng = res.populated, {"start": res.populated.start, "end": res.now}
    m = re.fullmatch(r"(label_values|label_names|metrics|query_result)\s*\((.*)\)", q, re.DOTALL)
    if m is None:
        return [], f"{q!r}: not a Prometheus variable query this test knows"
    fn, args = m.group(1), _split_args(m.group(2))
    if fn == "label_values":
        if len(args) == 1:
            data, err = _api(populated, f"/api/v1/label/{args[0]}/values", rng)
        else:
            selector, label = ",".join(args[:-1]), args[-1]
            data, err = _api(populated, f"/api/v1/label/{label}/values",
                             {**rng, "match[]": selector})
        values = [str(x) for x in data or []]
    elif fn == "label_names":
        params: dict[str, Any] = dict(rng)
        if args and args[0]:
            params["match[]"] = args[0]
        data, err = _api(populated, "/api/v1/labels", params)
        values = [str(x) for x in data or []]
    elif fn == "metrics":
        data, err = _api(populated, "/api/v1/label/__name__/values", rng)
        rx = re.compile(args[0] if args and args[0] else ".*")
        values = [str(x) for x in data or [] if rx.search(str(x))]
    else:
        data, err = _api(populated, "/api/v1/query", {"query": m.group(2), "time": res.now})
        values = []
        for s in (data or {}).get("result") or []:
            labels = dict(s.get("metric") or {})
            name = labels.pop("__name__", "")
            inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
            ts, val = s.get("value", [0, ""])
            values.append(f"{name}{{{inner}}} {val} {int(float(ts) * 1000)}")
    if err is not None:
        return [], f"{q!r}: {err}"
    return _apply_regex(values, regex), q


# --- the tests ---------------------------------------------------------------------------------

def test_there_are_dashboards() -> None:
    assert not LOAD_PROBLEMS, LOAD_PROBLEMS
    assert BOARDS, f"no dashboards: no *.json in {DASHBOARDS_DIR}"
    assert TARGETS, f"no panel queries in the dashboards of {DASHBOARDS_DIR}"


def _report(lines: list[str]) -> str:
    return "\n".join(lines)


@slow
@integration
@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
def test_panel_query_returns_data(populated: Populated, target: Target) -> None:
    assert target.expr.strip(), f"{target.id}: the target has no query"
    board = BOARDS[target.file]
    lines = [f"{target.id}: no scenario returned data. Queries as run:"]
    ok_kinds: set[str] = set()
    for scenario in populated.scenarios:
        now = time.time()
        res = Resolver(board, scenario, populated, now)
        expr = res.fill(target.expr)
        left = leftover(expr)
        if left:
            pytest.fail(f"{target.id}: variables not filled in (unknown to the dashboard or "
                        f"in a format this test does not know): {sorted(set(left))} in {expr}")
        for kind in target.kinds:
            ok, what = run_expr(populated, expr, kind, now)
            lines.append(f"  [{scenario['name']}] {kind}: {expr}\n      -> {what}")
            if ok:
                ok_kinds.add(kind)
    if ok_kinds != set(target.kinds):
        pytest.fail(_report(lines))
    print(_report(lines[1:]))  # shown with -rP: which scenarios had data


@slow
@integration
@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=[a.id for a in ANNOTATIONS])
def test_annotation_query_returns_data(populated: Populated, annotation: Annotation) -> None:
    board = BOARDS[annotation.file]
    lines = [f"{annotation.id}: no scenario returned data. Queries as run:"]
    for scenario in populated.scenarios:
        now = time.time()
        expr = Resolver(board, scenario, populated, now).fill(annotation.expr)
        assert not leftover(expr), f"{annotation.id}: variables not filled in: {expr}"
        ok, what = run_expr(populated, expr, "range", now)
        lines.append(f"  [{scenario['name']}] {expr}\n      -> {what}")
        if ok:
            return
    pytest.fail(_report(lines))


@slow
@integration
@pytest.mark.parametrize("variable", VARIABLES, ids=[v.id for v in VARIABLES])
def test_variable_query_offers_the_scenario_values(populated: Populated,
                                                   variable: Variable) -> None:
    """The variable's query lists something, and the value of every scenario that sets
    the variable (a dashboard user could not pick a value it does not list)."""
    board = BOARDS[variable.file]
    spec = next(v for v in board["templating"]["list"] if v.get("name") == variable.name)
    problems, lines, offered = [], [], False
    for scenario in populated.scenarios:
        res = Resolver(board, scenario, populated, time.time())
        values, as_run = run_variable_query(res, variable.query, spec.get("regex"))
        lines.append(f"  [{scenario['name']}] {as_run} -> {values[:20]}")
        offered |= bool(values)
        want = scenario.get(variable.name)
        if want is not None and want not in values:
            problems.append(f"scenario {scenario['name']}: {want!r} is not offered")
    assert offered and not problems, _report(
        [f"{variable.id}: " + ("; ".join(problems) or "no values")] + lines)


def _custom_variables() -> list[tuple[str, str]]:
    return [(file, str(v.get("name"))) for file, doc in BOARDS.items()
            for v in (doc.get("templating") or {}).get("list") or []
            if v.get("type") in ("custom", "interval")]


@pytest.mark.parametrize("file,name", _custom_variables(),
                         ids=[f"{f}::variable:{n}" for f, n in _custom_variables()])
def test_custom_variable_offers_the_scenario_values(file: str, name: str) -> None:
    spec = next(v for v in BOARDS[file]["templating"]["list"] if v.get("name") == name)
    options = _custom_options(spec)
    assert options, f"{file}::variable:{name} has no options"
    for scenario in SCENARIOS:
        if name in scenario:
            assert scenario[name] in options, (scenario["name"], scenario[name], options)


# --- the substitution itself (no Prometheus) -----------------------------------------------------

class _Fake:
    start = 1000.0


def _resolver(variables: list[dict[str, Any]], scenario: dict[str, str]) -> Resolver:
    return Resolver({"templating": {"list": variables}}, scenario, _Fake(), 1000.0 + 130)  # type: ignore[arg-type]


def test_fill_in_formats_and_builtins() -> None:
    res = _resolver([
        {"name": "model", "type": "query", "multi": False},
        {"name": "model_version", "type": "query", "multi": True, "includeAll": True,
         "allValue": ".*", "current": {"value": "$__all"}},
        {"name": "job", "type": "query", "multi": True, "includeAll": True,
         "allValue": ".+", "current": {"value": ["$__all"]}},
        {"name": "method", "type": "custom", "query": "psi,ks", "current": {"value": "ks"}},
        {"name": "window", "type": "custom", "query": "1h,6h"},
        {"name": "seg", "type": "query", "multi": True},
    ], {"name": "s", "model": "loan", "model_version": "1", "seg": "age=(30,50]"})
    assert res.fill('x{model="$model",v=~"${model_version}",j=~"$job"}') == \
        'x{model="loan",v=~"1",j=~".+"}'
    assert res.fill("$method ${window} [[method]] ${model:regex} ${model_version:pipe}") == \
        "ks 1h ks loan 1"
    assert res.fill('s=~"$seg"') == 's=~"age=\\\\(30,50\\\\]"'
    assert res.fill("[$__rate_interval] [$__range] $__range_s $__interval") == \
        "[20s] [3m] 180 2s"
    # label_replace's $1 is no variable; an unknown one is left in and reported
    assert res.fill('label_replace(x, "a", "$1", "b", "(.*)") $nope') == \
        'label_replace(x, "a", "$1", "b", "(.*)") $nope'
    assert leftover(res.fill('label_replace(x, "a", "$1", "b", "(.*)") $nope ${gone}')) == \
        ["$nope", "${gone"]


def test_variable_query_parsing() -> None:
    assert _split_args('{__name__=~"a|b", model="x"}, segment') == \
        ['{__name__=~"a|b", model="x"}', "segment"]
    assert _apply_regex(["a_1", "b_2", "c"], "/(.*)_\\d/") == ["a", "b"]
    assert _apply_regex(["x", "y"], None) == ["x", "y"]
