"""The Alertmanager example (alerts/alertmanager.example.yml), with the real tools.

* ``amtool check-config`` accepts it (and its office-hours variant);
* the routing cases of alerts/tests/alertmanager/routes.yaml hold
  (``amtool config routes test --verify.receivers``), and every modelmon alert reaches
  the receiver of its severity;
* the inhibit rules name only modelmon alerts, "drift alerts" are exactly the six drift
  alerts, and every notification template renders (``amtool template render``);
* a real Alertmanager running the example, with its receivers rewritten to a webhook on
  loopback (generated from the example file, not copied): ModelMonNoTraffic inhibits the
  drift alerts of its model and version only, ModelMonDriftSourceDown and
  ModelMonDriftExporterDown inhibit the drift alerts of every model, critical inhibits
  warning of the same family, and the pager webhook receives a critical alert grouped by
  alertname, model and model_version while info alerts notify nobody.
"""

from __future__ import annotations

import copy
import json
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from .. import support
from ..conftest import Alertmanager

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "alerts" / "alertmanager.example.yml"
ROUTES = ROOT / "alerts" / "tests" / "alertmanager" / "routes.yaml"
RULES = ROOT / "alerts" / "modelmon-rules.yaml"

#: The modelmon alerts and their severity (alerts/modelmon-rules.yaml).
ALERTS = {
    "ModelMonFeatureDriftCritical": "critical",
    "ModelMonDatasetDrift": "critical",
    "ModelMonAccuracyDrop": "critical",
    "ModelMonSidecarDown": "critical",
    **{name: "warning" for name in (
        "ModelMonFeatureDrift", "ModelMonFeatureSuddenChange", "ModelMonPredictionDrift",
        "ModelMonSchemaViolations", "ModelMonMissingValuesSpike", "ModelMonNewCategories",
        "ModelMonOutOfRange", "ModelMonNoTraffic", "ModelMonLatencyHigh",
        "ModelMonLabelsStopped", "ModelMonUnmatchedLabelsHigh", "ModelMonF1Drop",
        "ModelMonEstimatedPerformanceDrop", "ModelMonConceptDrift",
        "ModelMonDriftExporterDown", "ModelMonDriftSourceDown",
        "ModelMonDriftEvaluationsStale")},
}
DRIFT = {"ModelMonFeatureDrift", "ModelMonFeatureDriftCritical", "ModelMonFeatureSuddenChange",
         "ModelMonPredictionDrift", "ModelMonDatasetDrift", "ModelMonEstimatedPerformanceDrop"}
RECEIVER_OF = {"critical": "pager", "warning": "chat", "info": "null"}
#: Labels of the alerts without a model (everything else has model, model_version).
UNMODELLED = {
    "ModelMonDriftExporterDown": {"job": "modelmon-drift", "instance": "drift:10381"},
    "ModelMonDriftSourceDown": {"job": "modelmon-drift", "instance": "drift:10381",
                                "source": "http://prometheus:9090"},
    "ModelMonDriftEvaluationsStale": {"job": "modelmon-drift", "instance": "drift:10381"},
}
#: The alerts that inhibit the drift alerts of every model.
DRIFT_DOWN = ("ModelMonDriftExporterDown", "ModelMonDriftSourceDown")

WAIT = 20.0  # seconds: bound of every wait on the real Alertmanager


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def matcher_arg(name: str, value: str) -> str:
    """``name="value"`` as amtool parses it (a Alertmanager matcher)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


def route_test(amtool: str, config: Path, labels: dict[str, str],
               receivers: list[str]) -> subprocess.CompletedProcess[str]:
    return run(amtool, "config", "routes", "test", f"--config.file={config}",
               f"--verify.receivers={','.join(receivers)}",
               *(matcher_arg(k, str(v)) for k, v in labels.items()))


def default_labels(name: str) -> dict[str, str]:
    if name in UNMODELLED:
        return {"alertname": name, "severity": ALERTS[name], **UNMODELLED[name]}
    return {"alertname": name, "severity": ALERTS[name], "model": "fraud", "model_version": "3"}


# --- amtool: validity and routing ------------------------------------------------------


def test_check_config(amtool):
    res = run(amtool, "check-config", str(EXAMPLE))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_office_hours_variant_is_valid(amtool, tmp_path):
    """The commented ``active_time_intervals`` line, uncommented, is a valid config."""
    text = EXAMPLE.read_text()
    line = "      # active_time_intervals: [office-hours]\n"
    assert text.count(line) == 1
    variant = tmp_path / "office-hours.yml"
    variant.write_text(text.replace(line, line.replace("# ", "", 1)))
    assert yaml.safe_load(variant.read_text())["route"]["routes"][1][
        "active_time_intervals"] == ["office-hours"]
    res = run(amtool, "check-config", str(variant))
    assert res.returncode == 0, res.stdout + res.stderr


def _route_cases() -> list[dict]:
    return yaml.safe_load(ROUTES.read_text())


def test_route_cases_cover_the_brief():
    cases = _route_cases()
    assert all(set(c) <= {"description", "labels", "receivers"} for c in cases)
    seen = {(c["labels"].get("severity"), tuple(c["receivers"])) for c in cases}
    assert {("critical", ("pager",)), ("warning", ("chat",)), ("info", ("null",)),
            (None, ("default",))} <= seen
    names = {c["labels"]["alertname"] for c in cases}
    assert "ModelMonSidecarDown" in names and names & DRIFT - {"ModelMonFeatureDriftCritical"}


@pytest.mark.parametrize("case", _route_cases(), ids=lambda c: c["description"])
def test_route_case(amtool, case):
    res = route_test(amtool, EXAMPLE, case["labels"], case["receivers"])
    assert res.returncode == 0, (case, res.stdout, res.stderr)
    assert res.stdout.split() == [",".join(case["receivers"])]


def test_route_test_detects_a_wrong_receiver(amtool):
    """The harness is not vacuous: a wrong expectation fails."""
    res = route_test(amtool, EXAMPLE, default_labels("ModelMonAccuracyDrop"), ["chat"])
    assert res.returncode != 0


def test_every_alert_reaches_the_receiver_of_its_severity(amtool):
    wrong = {}
    for name, severity in ALERTS.items():
        res = route_test(amtool, EXAMPLE, default_labels(name), [RECEIVER_OF[severity]])
        if res.returncode != 0:
            wrong[name] = res.stdout + res.stderr
    assert not wrong


def test_alert_list_matches_the_rules_file():
    """ALERTS above is the list of alerts/modelmon-rules.yaml, with the same severities."""
    if not RULES.exists():
        pytest.skip(f"{RULES.relative_to(ROOT)} not present: cannot cross-check alert names")
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
             if "alert" in r]
    assert {r["alert"]: r.get("labels", {}).get("severity") for r in rules} == ALERTS


# --- the config's structure ------------------------------------------------------------


def _alertnames(matchers: list[str]) -> set[str]:
    """Alert names an ``alertname`` matcher (``=`` or a plain ``=~`` alternation) names."""
    names: set[str] = set()
    for m in matchers:
        if not m.startswith("alertname"):
            continue
        op, _, value = m[len("alertname"):].partition('"')
        assert op in ("=", "=~"), m
        value = value.rstrip('"')
        names |= set(value.split("|")) if op == "=~" else {value}
    return names


def test_config_structure():
    cfg = example()
    route = cfg["route"]
    assert route["group_by"] == ["alertname", "model", "model_version"]
    assert route["receiver"] == "default"
    assert [(r["matchers"], r["receiver"]) for r in route["routes"]] == [
        (['severity="critical"'], "pager"), (['severity="warning"'], "chat"),
        (['severity="info"'], "null")]
    receivers = {r["name"]: r for r in cfg["receivers"]}
    assert set(receivers) == {"default", "pager", "chat", "null"}
    assert receivers["null"] == {"name": "null"}  # no integration: never notified

    rules = cfg["inhibit_rules"]
    for rule in rules:  # every name is a modelmon alert; no deprecated match/match_re
        assert set(rule) == {"source_matchers", "target_matchers", "equal"}, rule
        for side in ("source_matchers", "target_matchers"):
            assert _alertnames(rule[side]) <= set(ALERTS), rule

    def rule_from(source: str) -> dict:
        (found,) = [r for r in rules if source in _alertnames(r["source_matchers"])]
        return found

    assert _alertnames(rule_from("ModelMonNoTraffic")["target_matchers"]) == DRIFT
    assert rule_from("ModelMonNoTraffic")["equal"] == ["model", "model_version"]
    assert rule_from("ModelMonDriftSourceDown") is rule_from("ModelMonDriftExporterDown")
    assert _alertnames(rule_from("ModelMonDriftSourceDown")["target_matchers"]) == DRIFT
    assert rule_from("ModelMonDriftSourceDown")["equal"] == []
    critical = rule_from("ModelMonFeatureDriftCritical")
    assert _alertnames(critical["target_matchers"]) == {"ModelMonFeatureDrift"}
    assert critical["equal"] == ["model", "model_version", "feature"]


def _template_fields(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _template_fields(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _template_fields(v, (*path, i))
    elif isinstance(node, str) and "{{" in node:
        yield ".".join(map(str, path)), node


def _template_data(status: str) -> dict:
    alert = {"status": status, "labels": default_labels("ModelMonFeatureDrift") | {
        "feature": "amount"}, "annotations": {"summary": "PSI 0.31 > 0.25",
                                              "runbook_url": "https://runbooks.example/drift"},
             "startsAt": "2024-05-01T10:00:00Z",
             "endsAt": "2024-05-01T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus:9090/graph", "fingerprint": "0123456789abcdef"}
    return {"receiver": "chat", "status": status, "alerts": [alert],
            "groupLabels": {k: alert["labels"][k] for k in ("alertname", "model", "model_version")},
            "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093"}


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_notification_templates_render(amtool, tmp_path, status):
    """Alertmanager parses receiver templates only when it sends: render each one now."""
    (tmp_path / "none.tmpl").write_text("")
    data = tmp_path / "data.json"
    data.write_text(json.dumps(_template_data(status)))
    fields = list(_template_fields(example()["receivers"]))
    assert len(fields) >= 6
    for where, text in fields:
        res = run(amtool, "template", "render", f"--template.glob={tmp_path / 'none.tmpl'}",
                  f"--template.data={data}", f"--template.text={text}")
        assert res.returncode == 0, (where, res.stdout, res.stderr)
        assert "<no value>" not in res.stdout, (where, res.stdout)
        if where.endswith(("title", "description")):
            assert "ModelMonFeatureDrift" in res.stdout, (where, res.stdout)


# --- a real Alertmanager ---------------------------------------------------------------


class Webhook:
    """Alertmanager webhook receiver on loopback: records (path, payload) of each POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self, path: str | None = None) -> list[dict]:
        with self.lock:
            return [p for (q, p) in self.received if path is None or q == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def webhook_config(webhook_url: str) -> str:
    """The example with each notifying receiver's integrations replaced by one webhook to
    ``<webhook_url>/<receiver name>`` (receivers without any, such as ``null``, stay
    empty) and short waits; routes, matchers and inhibit rules are the example's."""
    cfg = copy.deepcopy(example())
    for receiver in cfg["receivers"]:
        integrations = [k for k in receiver if k.endswith("_configs")]
        for k in integrations:
            del receiver[k]
        if integrations:
            receiver["webhook_configs"] = [{"url": f"{webhook_url}/{receiver['name']}",
                                            "send_resolved": True}]

    def shorten(route: dict) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route or route is cfg["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(cfg["route"])
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)



@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def alertmanager(alertmanager_binary, tmp_path, webhook):
    am = Alertmanager(alertmanager_binary, tmp_path / "alertmanager", webhook_config(webhook.url))
    yield am
    am.stop()


def test_generated_config_keeps_the_example(amtool, tmp_path):
    generated = yaml.safe_load(webhook_config("http://127.0.0.1:9"))
    original = example()
    assert generated["inhibit_rules"] == original["inhibit_rules"]
    assert generated["route"]["group_by"] == original["route"]["group_by"]

    def routes(cfg: dict) -> list[dict]:
        strip = ("group_wait", "group_interval")
        return [{k: v for k, v in r.items() if k not in strip} for r in cfg["route"]["routes"]]

    assert routes(generated) == routes(original)
    assert [r["name"] for r in generated["receivers"]] == [
        r["name"] for r in original["receivers"]]
    path = tmp_path / "generated.yml"
    path.write_text(webhook_config("http://127.0.0.1:9"))
    res = run(amtool, "check-config", str(path))
    assert res.returncode == 0, res.stdout + res.stderr


def alert(name: str, ends_in: float = 600, **labels: str) -> dict:
    """An alert to POST (``class_`` stands for the label ``class``), ending in ``ends_in`` s."""
    if "class_" in labels:
        labels["class"] = labels.pop("class_")
    now = datetime.now(UTC)
    return {"labels": {"alertname": name, "severity": ALERTS.get(name, "info"), **labels},
            "annotations": {"summary": f"{name} test"},
            "startsAt": (now - timedelta(seconds=1)).isoformat(),
            "endsAt": (now + timedelta(seconds=ends_in)).isoformat()}


def wait_until(check, what: str, am: Alertmanager, timeout: float = WAIT):
    return support.wait_until(check, what, timeout,
                              detail=lambda: f"alerts: {am.alerts()}\nlog: {am.log_text()}")


def find(alerts: list[dict], **labels: str) -> dict:
    found = [a for a in alerts if all(a["labels"].get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, found)
    return found[0]


def post_source_first(am: Alertmanager, posted: list[dict]) -> None:
    """Post the inhibiting alert (index 0), wait until Alertmanager lists it, then the
    rest: as in production, where the source (no traffic, exporter down) fires first.
    Posted in one batch, a target's group could be flushed (group_wait 1 s here) before
    the inhibitor had cached the source, and notify."""
    am.post_alerts(posted[:1])
    name = posted[0]["labels"]["alertname"]
    wait_until(lambda: any(a["labels"].get("alertname") == name for a in am.alerts()),
               f"the source alert {name}", am)
    am.post_alerts(posted[1:])


def settle(am: Alertmanager, posted: list[dict], inhibited: dict[int, str]) -> list[dict]:
    """Wait until every posted alert is processed and the alerts at the indices of
    ``inhibited`` are inhibited (by the alert at the given source index); the final
    ``/api/v2/alerts``."""

    def ready():
        current = am.alerts()
        if len(current) != len(posted):
            return None
        by_index = [find(current, **p["labels"]) for p in posted]
        if any(a["status"]["state"] == "unprocessed" for a in by_index):
            return None
        fp = [a["fingerprint"] for a in by_index]
        for target, source in inhibited.items():
            if by_index[target]["status"]["inhibitedBy"] != [fp[source]]:
                return None
        return current

    return wait_until(ready, f"inhibitions {inhibited}", am)


def assert_inhibition(current: list[dict], posted: list[dict], inhibited: set[int]) -> None:
    for i, p in enumerate(posted):
        status = find(current, **p["labels"])["status"]
        if i in inhibited:
            assert status["state"] == "suppressed" and status["inhibitedBy"], (p, status)
        else:
            assert status["state"] == "active" and status["inhibitedBy"] == [], (p, status)


@pytest.mark.integration
def test_no_traffic_inhibits_drift_of_its_model_only(alertmanager, webhook):
    posted = [
        alert("ModelMonNoTraffic", model="fraud", model_version="3"),  # 0: the source
        alert("ModelMonFeatureDrift", model="fraud", model_version="3", feature="amount"),
        alert("ModelMonFeatureDriftCritical", model="fraud", model_version="3", feature="age"),
        alert("ModelMonFeatureSuddenChange", model="fraud", model_version="3", feature="amount"),
        alert("ModelMonPredictionDrift", model="fraud", model_version="3", output="score"),
        alert("ModelMonEstimatedPerformanceDrop", model="fraud", model_version="3"),
        alert("ModelMonDatasetDrift", model="fraud", model_version="3"),
        # not inhibited: another version, another model, not a drift alert
        alert("ModelMonFeatureDrift", model="fraud", model_version="2", feature="amount"),
        alert("ModelMonFeatureDrift", model="churn", model_version="3", feature="amount"),
        alert("ModelMonDatasetDrift", model="churn", model_version="3"),
        alert("ModelMonSchemaViolations", model="fraud", model_version="3", feature="country"),
    ]
    post_source_first(alertmanager, posted)
    current = settle(alertmanager, posted, {i: 0 for i in range(1, 7)})
    assert_inhibition(current, posted, set(range(1, 7)))

    # Notifications: the uninhibited groups reach chat (the dataset drift of churn, the
    # pager); the inhibited ones, including the critical drifts of fraud/3, reach nobody.
    def notified(path: str, **labels: str) -> bool:
        return any(all(a["labels"].get(k) == v for k, v in labels.items())
                   for p in webhook.payloads(path) for a in p["alerts"])

    wait_until(lambda: notified("/chat", alertname="ModelMonFeatureDrift", model="churn")
               and notified("/pager", alertname="ModelMonDatasetDrift", model="churn")
               and notified("/chat", alertname="ModelMonFeatureDrift", model_version="2")
               and notified("/chat", alertname="ModelMonNoTraffic")
               and notified("/chat", alertname="ModelMonSchemaViolations"),
               "chat notifications", alertmanager)
    time.sleep(2.5)  # > group_wait + group_interval of the test config
    for p in posted[1:7]:
        assert not any(notified(path, **p["labels"]) for path in ("/chat", "/pager", "/default"))


@pytest.mark.integration
@pytest.mark.parametrize("source", DRIFT_DOWN)
def test_drift_source_or_exporter_down_inhibits_drift_of_every_model(alertmanager, source):
    posted = [
        alert(source, **UNMODELLED[source]),  # 0: no model label
        alert("ModelMonFeatureDrift", model="fraud", model_version="3", feature="amount"),
        alert("ModelMonFeatureDrift", model="churn", model_version="1", feature="tenure"),
        alert("ModelMonFeatureDriftCritical", model="churn", model_version="1", feature="age"),
        alert("ModelMonFeatureSuddenChange", model="ranker", model_version="7", feature="q"),
        alert("ModelMonPredictionDrift", model="ranker", model_version="7", output="score"),
        alert("ModelMonEstimatedPerformanceDrop", model="fraud", model_version="2"),
        alert("ModelMonDatasetDrift", model="ranker", model_version="7"),
        # not drift alerts: not inhibited
        alert("ModelMonNoTraffic", model="fraud", model_version="4"),
        alert("ModelMonAccuracyDrop", model="churn", model_version="1"),
        alert("ModelMonDriftEvaluationsStale", job="modelmon-drift", instance="drift:10382"),
    ]
    alertmanager.post_alerts(posted)
    current = settle(alertmanager, posted, {i: 0 for i in range(1, 8)})
    assert_inhibition(current, posted, set(range(1, 8)))


@pytest.mark.integration
def test_critical_inhibits_warning_of_the_same_family(alertmanager):
    posted = [
        alert("ModelMonFeatureDriftCritical", model="fraud", model_version="3", feature="amount"),
        alert("ModelMonFeatureDrift", model="fraud", model_version="3", feature="amount"),  # 1
        alert("ModelMonFeatureDrift", model="fraud", model_version="3", feature="age"),
        alert("ModelMonFeatureDrift", model="fraud", model_version="2", feature="amount"),
        alert("ModelMonAccuracyDrop", model="churn", model_version="1", segment="all"),  # 4
        alert("ModelMonF1Drop", model="churn", model_version="1", segment="all", class_="yes"),
        alert("ModelMonEstimatedPerformanceDrop", model="churn", model_version="1"),
        alert("ModelMonF1Drop", model="churn", model_version="2", segment="all", class_="yes"),
        # a sidecar down explains no traffic; the inhibited NoTraffic still inhibits drift
        alert("ModelMonSidecarDown", model="ranker", model_version="7"),  # 8
        alert("ModelMonNoTraffic", model="ranker", model_version="7"),  # 9
        alert("ModelMonPredictionDrift", model="ranker", model_version="7", output="score"),
    ]
    alertmanager.post_alerts(posted)
    inhibited = {1: 0, 5: 4, 6: 4, 9: 8, 10: 9}
    current = settle(alertmanager, posted, inhibited)
    assert_inhibition(current, posted, set(inhibited))


@pytest.mark.integration
def test_pager_webhook_gets_critical_grouped_and_info_goes_nowhere(alertmanager, webhook):
    critical = [alert("ModelMonAccuracyDrop", model="fraud", model_version="3", segment="all"),
                alert("ModelMonAccuracyDrop", model="fraud", model_version="3", segment="eu")]
    warning = alert("ModelMonSchemaViolations", model="fraud", model_version="3", feature="age")
    info = alert("ModelMonFeatureDrift", model="fraud", model_version="3", feature="zip")
    info["labels"]["severity"] = "info"
    no_severity = alert("ModelMonLatencyHigh", model="fraud", model_version="3")
    del no_severity["labels"]["severity"]
    alertmanager.post_alerts([*critical, warning, info, no_severity])

    (page,) = wait_until(lambda: webhook.payloads("/pager"), "the page", alertmanager)
    assert page["receiver"] == "pager" and page["status"] == "firing"
    assert page["groupLabels"] == {"alertname": "ModelMonAccuracyDrop", "model": "fraud",
                                   "model_version": "3"}
    assert page["commonLabels"]["severity"] == "critical"
    assert sorted(a["labels"]["segment"] for a in page["alerts"]) == ["all", "eu"]  # one group

    (chat,) = wait_until(lambda: webhook.payloads("/chat"), "the chat message", alertmanager)
    assert chat["groupLabels"] == {"alertname": "ModelMonSchemaViolations", "model": "fraud",
                                   "model_version": "3"}
    (default,) = wait_until(lambda: webhook.payloads("/default"), "the default", alertmanager)
    assert default["commonLabels"]["alertname"] == "ModelMonLatencyHigh"

    time.sleep(2.5)  # > group_wait + group_interval of the test config
    assert len(webhook.received) == 3, webhook.received
    assert not any(a["labels"].get("severity") == "info"
                   for p in webhook.payloads() for a in p["alerts"])

    # Resolving the page reaches the pager too (send_resolved).
    alertmanager.post_alerts([alert("ModelMonAccuracyDrop", ends_in=-0.5, model="fraud",
                                    model_version="3", segment=s) for s in ("all", "eu")])
    resolved = wait_until(lambda: [p for p in webhook.payloads("/pager")
                                   if p["status"] == "resolved"], "the resolved page",
                          alertmanager)
    assert resolved[0]["groupLabels"] == page["groupLabels"]
