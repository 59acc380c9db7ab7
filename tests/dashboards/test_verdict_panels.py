"""The drift verdict panels show exactly their states.

A panel with value mappings (the state timelines and stats of the drift exporter's
verdict) passes the generic panel-query test with any finite value; these tests check
more: every value its queries return in the populated Prometheus is one of its mapped
states, each of its states (drifted, stable, too few samples) is reached in some
scenario, and the feature rows say what the exporter says of each feature now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Populated
from .test_panel_queries import BOARDS, STEP_SECONDS, Resolver, leftover

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _panels(panels: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for p in panels or []:
        yield p
        yield from _panels(p.get("panels"))


def _states(panel: dict[str, Any]) -> dict[float, str]:
    """Mapped value -> text of a panel's value mappings."""
    out = {}
    for m in (panel.get("fieldConfig") or {}).get("defaults", {}).get("mappings") or []:
        if m.get("type") == "value":
            out.update({float(k): v.get("text", "") for k, v in m["options"].items()})
    return out


MAPPED = [(file, p) for file, doc in BOARDS.items() for p in _panels(doc.get("panels"))
          if _states(p)]


def _query(populated: Populated, expr: str, now: float, instant: bool) -> list[dict]:
    if instant:
        path, params = "/api/v1/query", {"query": expr, "time": now}
    else:
        path, params = "/api/v1/query_range", {"query": expr, "start": populated.start,
                                                "end": now, "step": STEP_SECONDS}
    doc = populated.prom.http.get(populated.prom.url + path, params=params, timeout=10).json()
    assert doc.get("status") == "success", (expr, doc)
    return doc["data"]["result"]


def test_there_are_verdict_panels() -> None:
    titles = {(f, p["title"]) for f, p in MAPPED}
    assert {("modelmon-model.json", "Drift verdict per feature"),
            ("modelmon-model.json", "Prediction drift verdict per output"),
            ("modelmon-feature.json", "Drift verdict, both references")} <= titles


@pytest.mark.parametrize("file,panel", MAPPED,
                         ids=[f"{f}::{p['id']}:{p['title']}" for f, p in MAPPED])
def test_a_verdict_panel_shows_its_states_and_only_them(populated: Populated, file: str,
                                                        panel: dict[str, Any]) -> None:
    states = _states(panel)
    seen: dict[float, str] = {}
    for scenario in populated.scenarios:
        now = time.time()
        res = Resolver(BOARDS[file], scenario, populated, now)
        for t in panel["targets"]:
            expr = res.fill(t["expr"])
            assert not leftover(expr), expr
            for s in _query(populated, expr, now, instant=False):
                for _, v in s["values"]:
                    if math.isfinite(float(v)):
                        seen.setdefault(float(v), f"{scenario['name']}: {s['metric']}")
    unmapped = {v: where for v, where in seen.items() if v not in states}
    assert unmapped == {}, f"values without a state in {panel['title']}"
    unseen = {states[v] for v in set(states) - set(seen)}
    assert unseen == set(), f"states of {panel['title']} no scenario reaches"


def _now_by_feature(populated: Populated, scenario: str) -> dict[str, str]:
    board = BOARDS["modelmon-model.json"]
    panel = next(p for p in _panels(board["panels"])
                 if p["title"] == "Drift verdict per feature")
    sc = next(s for s in populated.scenarios if s["name"] == scenario)
    now = time.time()
    expr = Resolver(board, sc, populated, now).fill(panel["targets"][0]["expr"])
    states = _states(panel)
    return {s["metric"]["feature"]: states[float(s["value"][1])]
            for s in _query(populated, expr, now, instant=True)}


def test_the_feature_rows_say_what_the_exporter_found(populated: Populated) -> None:
    loan = _now_by_feature(populated, "loan-numeric")
    assert loan["credit_score"] == "drifted"  # shifted by 2.5 standard deviations
    assert loan["region"] == "drifted"  # 30 % in an unseen category
    assert loan["term_months"] == "stable"  # untouched
    price = _now_by_feature(populated, "price-sparse")
    assert price["garden_area"] == "too few samples"
    assert price["area"] == "drifted"
