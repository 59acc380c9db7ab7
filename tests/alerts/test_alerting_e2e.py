"""End to end: a drift injected into a sidecar's traffic becomes one page and one resolve.

Real parts only: a sidecar fed seeded traffic, a real Prometheus scraping it and the drift
exporter and evaluating the shipped alert rules (durations shortened by a generator from
``alerts/modelmon-rules.yaml``, not hand-copied), the drift exporter in query mode, a real
Alertmanager with the shipped example config (receivers pointed at a webhook in the test).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from modelmon import Baseline
from modelmon.drift import DriftQueryService

from ..conftest import Prometheus
from ..support import free_port, require_binary, wait_until
from ..sidecar.conftest import start_sidecar

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "alerts" / "modelmon-rules.yaml"
AM_EXAMPLE = REPO / "alerts" / "alertmanager.example.yml"
RUNBOOK = REPO / "alerts" / "runbook.md"

pytestmark = pytest.mark.slow

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(text: str) -> float:
    return sum(float(n) * _SECONDS[u] for n, u in _DURATION.findall(text))


def _fmt(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def shortened(rules_path: Path, scale: float, min_range: float = 8.0) -> dict[str, Any]:
    """The rule file with every duration divided by ``scale``: range selectors and offsets
    (at least ``min_range`` seconds, several scrapes), ``for:``, group intervals (1 s)."""
    doc = yaml.safe_load(rules_path.read_text())

    def window(m: re.Match[str]) -> str:
        inner = m.group(1)
        parts = inner.split(":")
        out = [_fmt(max(min_range, _seconds(parts[0]) / scale))]
        if len(parts) == 2:
            out.append(_fmt(max(1.0, _seconds(parts[1]) / scale)) if parts[1] else "")
        return "[" + ":".join(out) + "]"

    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            expr = re.sub(r"\[([0-9smhdwy.:]+)\]", window, rule["expr"])
            expr = re.sub(r"offset\s+([0-9smhdwy.]+)",
                          lambda m: f"offset {_fmt(max(min_range, _seconds(m.group(1)) / scale))}",
                          expr)
            rule["expr"] = expr
            if "for" in rule:
                rule["for"] = _fmt(_seconds(str(rule["for"])) / scale)
    return doc


def test_the_generator_shortens_every_duration() -> None:
    doc = shortened(RULES, 360)
    text = yaml.safe_dump(doc)
    assert not re.search(r"\[\d+[mhdw]\]", text), "a range selector was not shortened"
    fors = [r["for"] for g in doc["groups"] for r in g["rules"] if "for" in r]
    assert fors and all(f.endswith("s") for f in fors)
    original = yaml.safe_load(RULES.read_text())
    assert [r.get("alert") for g in original["groups"] for r in g["rules"]] == \
        [r.get("alert") for g in doc["groups"] for r in g["rules"]]


class Webhook:
    """Alertmanager's webhook receiver: records every notification."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                me.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        out = [a for n in self.received for a in n["alerts"]]
        return [a for a in out if status is None or a["status"] == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_config(hook: str) -> str:
    """The shipped example with every receiver pointed at ``hook`` and short waits."""
    doc = yaml.safe_load(AM_EXAMPLE.read_text())
    for r in doc["receivers"]:
        name = r["name"]
        r.clear()
        r["name"] = name
        r["webhook_configs"] = [{"url": hook, "send_resolved": True}]
    route = doc["route"]

    def short(node: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s"),
                           ("repeat_interval", "1h")):
            if key in node or node is route:
                node[key] = value
        for child in node.get("routes", []):
            short(child)

    short(route)
    doc.setdefault("global", {})["resolve_timeout"] = "5s"
    return yaml.safe_dump(doc)


def loan_baseline() -> Baseline:
    rng = np.random.default_rng(31)
    n = 5000
    return Baseline.build({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 0.5, n),
                           "decision": rng.choice(["yes", "no"], n)},
                          model="loan", model_version="7", prediction="decision", bins=10)


class Traffic:
    """Seeded events posted to the sidecar every 100 ms until stopped; ``shift`` moves age."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shift = 0.0
        self.rng = np.random.default_rng(32)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.wait(0.1):
            n = 100
            body = {"events": [{"features": {"age": float(a), "income": float(i)},
                                "prediction": str(p)} for a, i, p in zip(
                self.rng.normal(40 + self.shift, 10, n), self.rng.lognormal(10, 0.5, n),
                self.rng.choice(["yes", "no"], n))]}
            http.post(f"{self.url}/v1/models/loan/events", json=body, timeout=10)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


@pytest.fixture
def am_class() -> Iterator[Any]:
    from .. import conftest

    if not hasattr(conftest, "Alertmanager"):  # pragma: no cover - guarded for clarity
        pytest.fail("tests/conftest.py has no Alertmanager helper")
    yield conftest.Alertmanager


def test_a_drift_becomes_one_page_and_one_resolve(tmp_path: Path, am_class: Any) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(shortened(RULES, 360)))
    hook = Webhook()
    am = am_class(require_binary("prometheus-alertmanager"), tmp_path / "am",
                  alertmanager_config(hook.url))
    lv = start_sidecar([loan_baseline()])
    exporter_port = free_port()
    prom = Prometheus(require_binary("prometheus"), tmp_path / "prom",
                      [lv.url.removeprefix("http://"), f"127.0.0.1:{exporter_port}"],
                      rule_files=[rules],
                      extra_scrape=f"alerting:\n  alertmanagers:\n    - static_configs:\n"
                                   f"        - targets: ['{am.url.removeprefix('http://')}']\n")
    svc = DriftQueryService(prom.url, window=15, interval=1, min_samples=200)
    traffic = Traffic(lv.url)
    try:
        svc.serve("127.0.0.1", exporter_port)
        svc.start()
        # 1. normal traffic: scores exported, nothing alerts
        prom.wait_for('count(modelmon_drift_score{model="loan",method="psi",reference="baseline"})',
                      lambda r: bool(r) and float(r[0]["value"][1]) >= 2, timeout=60)
        # ten evaluations of the rules on this traffic (counted, not slept): none fires
        evaluations: set[str] = set()

        def ten_quiet_evaluations() -> bool:
            firing = prom.query('ALERTS{alertstate="firing"}')
            assert firing == [], firing
            groups = prom.http.get(prom.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
            evaluations.update(g["lastEvaluation"] for g in groups if g["name"] == groups[0]["name"])
            return len(evaluations) >= 10

        wait_until(ten_quiet_evaluations, "ten rule evaluations", 60, interval=0.3)
        assert hook.alerts() == [], hook.received
        # 2. drift in age only: one page for exactly that feature
        # 0.25 sd: normed Wasserstein about 0.25 against a threshold of 0.15 (the effect floor
        # decides at these window sizes): drifted, but under twice the threshold, so the warning
        # and not the critical alert (which would inhibit it)
        traffic.shift = 2.5
        wait_until(lambda: any(a["labels"].get("alertname") == "ModelMonFeatureDrift"
                               for a in hook.alerts("firing")), "the drift alert", 120,
                   interval=0.25)
        firing = [a for a in hook.alerts("firing")
                  if a["labels"]["alertname"].startswith("ModelMonFeatureDrift")]
        assert {a["labels"].get("feature") for a in firing} == {"age"}
        alert = next(a for a in firing if a["labels"]["alertname"] == "ModelMonFeatureDrift")
        assert alert["labels"]["model"] == "loan" and alert["labels"]["model_version"] == "7"
        assert alert["labels"]["severity"] == "warning"
        url = alert["annotations"]["runbook_url"]
        anchor = url.rsplit("#", 1)[1]
        assert url.startswith("https://") and url.split("#")[0].endswith("alerts/runbook.md")
        headings = {h.strip().lower() for h in re.findall(r"^## (.+)$", RUNBOOK.read_text(),
                                                          re.MULTILINE)}
        assert anchor in headings, f"runbook has no section #{anchor}"
        # 3. the drift stops: the resolve arrives
        traffic.shift = 0.0
        wait_until(lambda: any(a["labels"].get("alertname") == "ModelMonFeatureDrift"
                               and a["status"] == "resolved" for a in hook.alerts()),
                   "the resolved notification", 180, interval=0.25)
        # undrifted features never alerted, and nothing but the age drift paged
        assert {a["labels"].get("feature") for a in hook.alerts()
                if "feature" in a["labels"]} == {"age"}
        names = {a["labels"]["alertname"] for a in hook.alerts()}
        # exactly one firing and one resolved notification of the drift alert
        drift = [(n["status"], [a["status"] for a in n["alerts"]]) for n in hook.received
                 if n["groupLabels"].get("alertname") == "ModelMonFeatureDrift"]
        assert drift == [("firing", ["firing"]), ("resolved", ["resolved"])], hook.received
        assert names <= {"ModelMonFeatureDrift", "ModelMonFeatureDriftCritical",
                         "ModelMonFeatureSuddenChange"}, names
    finally:
        traffic.stop()
        svc.stop()
        prom.stop()
        am.stop()
        lv.http.close()
        lv.server.stop()
        hook.close()
