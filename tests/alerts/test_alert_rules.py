"""The alerting rules (alerts/modelmon-rules.yaml), their runbook and their unit tests.

* ``promtool check rules`` and ``promtool test rules`` on the checked-in files;
* every alert: a CamelCase ``ModelMon...`` name, exactly one severity (critical, warning or
  info), summary, description and a runbook_url pointing at its ``## <AlertName>``
  section of alerts/runbook.md (which has no section for an alert that does not exist);
* every metric an expression reads is in the catalogue, a recording rule of alerts/*.y*ml,
  or ``up``; every recorded series a dashboard or the docs read is still recorded;
* the drift alerts read the drift exporter's verdict (``..._detected == 1``), never a fixed
  score cut-off, and aggregate every exporter series with ``max by`` before joining; the
  data-quality rate alerts are sample-size aware (at least 10 bad events and a Poisson
  lower bound on the count);
* every alert has an ``alert_rule_test`` in the promtool test file, with at least one
  ``exp_alerts: []`` case, and one that fires.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from modelmon.catalogue import series_names

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "alerts"
RULES = ALERTS_DIR / "modelmon-rules.yaml"
UNIT = ALERTS_DIR / "tests" / "modelmon-rules.test.yaml"
RUNBOOK = ALERTS_DIR / "runbook.md"
RUNBOOK_URL = "https://github.com/modelmon/modelmon/blob/main/alerts/runbook.md#"

#: The alerts other files (Alertmanager routing, end-to-end tests) refer to by name.
EXPECTED = {
    "ModelMonFeatureDrift": "warning",
    "ModelMonFeatureDriftCritical": "critical",
    "ModelMonFeatureSuddenChange": "warning",
    "ModelMonPredictionDrift": "warning",
    "ModelMonDatasetDrift": "critical",
    "ModelMonSchemaViolations": "warning",
    "ModelMonMissingValuesSpike": "warning",
    "ModelMonNewCategories": "warning",
    "ModelMonOutOfRange": "warning",
    "ModelMonNoTraffic": "warning",
    "ModelMonLatencyHigh": "warning",
    "ModelMonLabelsStopped": "warning",
    "ModelMonUnmatchedLabelsHigh": "warning",
    "ModelMonAccuracyDrop": "critical",
    "ModelMonF1Drop": "warning",
    "ModelMonEstimatedPerformanceDrop": "warning",
    "ModelMonConceptDrift": "warning",
    "ModelMonDriftExporterDown": "warning",
    "ModelMonDriftSourceDown": "warning",
    "ModelMonDriftEvaluationsStale": "warning",
    "ModelMonSidecarDown": "critical",
}
#: Alerts about an exporter or a scrape target rather than a model: job and instance.
TARGET_LEVEL = {"ModelMonDriftExporterDown", "ModelMonDriftSourceDown",
                "ModelMonDriftEvaluationsStale"}
#: Alerts on the drift verdict: (the verdict metric, its reference, the series label).
VERDICT = {
    "ModelMonFeatureDrift": ("modelmon_drift_detected", "baseline", "feature"),
    "ModelMonFeatureDriftCritical": ("modelmon_drift_detected", "baseline", "feature"),
    "ModelMonFeatureSuddenChange": ("modelmon_drift_detected", "previous", "feature"),
    "ModelMonPredictionDrift": ("modelmon_prediction_drift_detected", "baseline", "output"),
}
#: Data-quality alerts on a share of bad events, with the allowed share (a literal, or the
#: literal margin over a baseline share) they compare the count's lower bound with.
RATE = {
    "ModelMonSchemaViolations": "> 0.01",
    "ModelMonMissingValuesSpike": "+ 0.05",
    "ModelMonNewCategories": "+ 0.05",
    "ModelMonOutOfRange": "> 0.05",
    "ModelMonUnmatchedLabelsHigh": "> 0.1",
}

# PromQL words that look like metric names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values", "rate", "increase", "irate", "delta",
    "histogram_quantile", "max_over_time", "min_over_time", "avg_over_time", "time",
    "label_replace", "clamp_min", "clamp_max", "sqrt", "abs", "absent", "vector", "scalar",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def alerts() -> list[dict]:
    return [r for r in rules() if "alert" in r]


def catalogue_names() -> set[str]:
    return set(series_names())


def recorded_names() -> set[str]:
    names = set()
    for path in sorted(ALERTS_DIR.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or "groups" not in doc:
            continue  # not a rule file (e.g. an Alertmanager config)
        for g in doc["groups"]:
            names |= {r["record"] for r in g["rules"] if "record" in r}
    return names


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression that are metric names (not labels, functions, ...)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                     # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                    # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "",
                  expr)                                        # label lists
    tokens = set(re.findall(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {t for t in tokens if t not in KEYWORDS}


# --- promtool -------------------------------------------------------------------------


def test_promtool_check_rules(promtool):
    r = run(promtool, "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


def test_promtool_unit_tests(promtool):
    r = run(promtool, "test", "rules", str(UNIT))
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    assert "SUCCESS" in r.stdout


# --- the alerts -----------------------------------------------------------------------


def test_the_agreed_alerts_with_their_severities():
    got = {a["alert"]: a["labels"]["severity"] for a in alerts()}
    assert got == EXPECTED
    assert len(alerts()) == len(got)  # no duplicate names


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_conventions(alert):
    name = alert["alert"]
    assert re.fullmatch(r"ModelMon(?:[A-Z][a-z0-9]*)+", name), name
    labels = alert.get("labels", {})
    assert set(labels) == {"severity"}, labels  # exactly one severity, nothing else static
    assert labels["severity"] in {"critical", "warning", "info"}
    ann = alert["annotations"]
    assert set(ann) >= {"summary", "description", "runbook_url"}
    assert ann["summary"].strip() and ann["description"].strip()
    assert ann["runbook_url"] == RUNBOOK_URL + name.lower()
    assert re.search(r"\{\{.*\$(labels|value)", ann["summary"]), "summary is templated"
    assert "$value" in ann["description"] or "$labels" in ann["description"]
    expr = alert["expr"]
    if name in TARGET_LEVEL:
        assert "{{ $labels.instance }}" in ann["description"]
    else:
        assert "{{ $labels.model }}" in ann["description"], name
        assert "{{ $labels.model_version }}" in ann["description"], name
        if name != "ModelMonSidecarDown":
            # Model alerts keep model and model_version, never a replica label.
            assert not re.search(r"\b(instance|pod)\b", expr), name
    if re.search(r"\bfeature\b", expr):
        assert "{{ $labels.feature }}" in ann["description"], name
    # The threshold (or margin) is a literal number at the end of a line of the
    # expression, not hidden in a recording rule.
    assert re.search(r"(?:[<>]=?|==|[-+])\s*\d+(?:\.\d+)?\s*\)?\s*$", expr, flags=re.M), name


def test_runbook_has_exactly_one_section_per_alert():
    headings = re.findall(r"^## (.+?)\s*$", RUNBOOK.read_text(), flags=re.M)
    names = [a["alert"] for a in alerts()]
    assert sorted(h for h in headings if h.startswith("ModelMon")) == sorted(names)
    # Any other level-2 heading must not look like an alert.
    assert all(not re.fullmatch(r"ModelMon\w+", h) or h in names for h in headings)
    assert len(headings) == len(set(headings))


def test_expressions_read_known_metrics_only():
    known = catalogue_names() | recorded_names() | {"up"}
    for rule in rules():
        for name in metric_names(rule["expr"]):
            assert name in known, (rule.get("alert") or rule.get("record"), name)


def test_recorded_series_read_elsewhere_are_still_recorded():
    """A recording rule name (``level:metric:operations``) that a dashboard, the runbook or
    the docs read is recorded by a rule file of alerts/."""
    sources = [*sorted((ROOT / "dashboards").glob("*.json")),
               *sorted((ROOT / "exporter" / "modelmon" / "dashboards").glob("*.py")),
               RUNBOOK, ALERTS_DIR / "README.md", ROOT / "docs" / "alerting.md"]
    read = {(p.name, m) for p in sources if p.exists()
            for m in re.findall(r"\b[a-z][a-z0-9_]*:modelmon_[a-z0-9_]+:[a-z0-9_]+\b",
                                p.read_text())}
    assert read, "no recorded series found: the pattern is broken"
    recorded = recorded_names()
    assert sorted((f, m) for f, m in read if m not in recorded) == []


def _by_name() -> dict[str, dict]:
    return {a["alert"]: a for a in alerts()}


@pytest.mark.parametrize("name", sorted(VERDICT))
def test_drift_alerts_read_the_verdict(name):
    """The verdict decides: ``<verdict> == 1`` for the alert's reference, the value is the
    score of the verdict method (joined with its threshold on every label, ``method``
    included), and no fixed score cut-off such as the old PSI levels is left."""
    metric, reference, series = VERDICT[name]
    expr = _by_name()[name]["expr"]
    assert re.search(rf"max by \(model, model_version, {series}\) \({metric}"
                     rf'\{{reference="{reference}"\}}\) == 1\s*$', expr), expr
    score = metric.replace("_detected", "_score")
    threshold = metric.replace("_detected", "_threshold")
    key = f"model, model_version, {series}, method, reference"
    assert f'max by ({key}) ({score}{{reference="{reference}"}})' in expr
    assert f'max by ({key}) ({threshold}{{reference="{reference}"}})' in expr
    assert f"on ({key})" in expr
    assert "method=" not in expr and "psi" not in expr
    description = _by_name()[name]["annotations"]["description"]
    assert "$value" in description and threshold in description  # score and threshold


def test_critical_drift_is_twice_the_threshold():
    expr = _by_name()["ModelMonFeatureDriftCritical"]["expr"]
    assert re.search(r"modelmon_drift_score\{[^}]*\}\)\s*/ on \([^)]*\)\s*"
                     r"max by \([^)]*\) \(modelmon_drift_threshold\{[^}]*\}\)\s*>= 2\s*$",
                     expr, re.M), expr
    assert _by_name()["ModelMonFeatureDriftCritical"]["for"] == "2h"


def test_dataset_drift_is_half_the_features():
    alert = _by_name()["ModelMonDatasetDrift"]
    assert re.match(r'max by \(model, model_version\) \(modelmon_drift_share'
                    r'\{reference="baseline"\}\) >= 0\.5\s*$', alert["expr"], re.M)
    assert alert["for"] == "30m"
    assert alert["labels"]["severity"] == "critical"


def test_exporter_series_are_aggregated_before_joining():
    """Drift exporter replicas export the same series with their own ``instance``: every
    drift exporter metric an alert reads is wrapped in ``max by (...)`` at once."""
    for alert in alerts():
        for m in re.finditer(r"\b(modelmon_(?:prediction_)?drift_\w+)\{", alert["expr"]):
            before = alert["expr"][:m.start()]
            assert re.search(r"max by \([^)]*\) \($", before), (alert["alert"], m.group(1))


@pytest.mark.parametrize("name", sorted(RATE))
def test_rate_alerts_are_sample_size_aware(name):
    """At least 10 bad events x, and the Poisson lower bound x - 3 sqrt(x) of the count
    over the window's n events above the allowed share; the value stays the share x / n."""
    expr = _by_name()[name]["expr"]
    count = re.search(r"^(\S+:increase\d+[mh])\s*>= 10\s*$", expr, re.M)
    assert count, expr
    x = count.group(1)
    assert f"{x}\n" in expr and f"- 3 * sqrt({x})" in expr
    assert re.search(rf"{re.escape(RATE[name])}\s*$", expr, re.M), expr  # the allowed share
    recorded = {r["record"]: r["expr"] for r in rules() if "record" in r}
    assert x in recorded and "increase(" in recorded[x]
    assert "rate(" not in expr


def test_every_alert_is_unit_tested_both_ways():
    doc = yaml.safe_load(UNIT.read_text())
    cases: dict[str, list[list]] = {}
    for t in doc["tests"]:
        for c in t.get("alert_rule_test", []):
            cases.setdefault(c["alertname"], []).append(c.get("exp_alerts") or [])
    for alert in alerts():
        name = alert["alert"]
        assert name in cases, name
        assert any(exp == [] for exp in cases[name]), f"{name}: no negative case"
        firing = [e for exp in cases[name] for e in exp]
        assert firing, f"{name}: never fires in the tests"
        for e in firing:
            assert e["exp_labels"]["severity"] == alert["labels"]["severity"]
            assert e["exp_annotations"]["runbook_url"] == RUNBOOK_URL + name.lower()
            if name not in TARGET_LEVEL:
                assert {"model", "model_version"} <= set(e["exp_labels"]), name


def test_the_documented_command_passes(promtool: str) -> None:
    """``promtool test rules alerts/tests/*.yaml``, exactly as the README and docs say."""
    import glob
    import subprocess

    root = Path(__file__).resolve().parents[2]
    files = sorted(glob.glob(str(root / "alerts" / "tests" / "*.yaml")))
    assert len(files) >= 3, files
    out = subprocess.run([promtool, "test", "rules", *files], capture_output=True, text=True,
                         cwd=root, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_documented_prometheusrule_generator_makes_a_valid_object() -> None:
    """The one-liner of docs/alerting.md, run as documented, gives a PrometheusRule that the
    prometheus-operator's v1 schema accepts, with every group of both rule files."""
    import json

    import jsonschema

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "alerting.md").read_text()
    cmd = re.search(r"^(python3 -c '.*?') \\\n\s+(alerts/\S+ alerts/\S+) >", doc, re.M | re.S)
    assert cmd, "docs/alerting.md: the Python generator command was not found"
    code = re.fullmatch(r"python3 -c '(.*)'", cmd.group(1), re.S).group(1)  # type: ignore[union-attr]
    files = cmd.group(2).split()
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True,
                         cwd=root, check=True)
    obj = yaml.safe_load(out.stdout)
    schema = json.loads((root / "tests" / "data" / "crds" / "prometheusrule.v1.schema.json")
                        .read_text())
    jsonschema.Draft7Validator(schema).validate(obj)
    assert obj["kind"] == "PrometheusRule"
    want = [g["name"] for f in files for g in yaml.safe_load((root / f).read_text())["groups"]]
    assert [g["name"] for g in obj["spec"]["groups"]] == want
    assert any(r.get("alert") == "ModelMonFeatureDrift" for g in obj["spec"]["groups"]
               for r in g["rules"])
