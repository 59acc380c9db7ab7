"""Quality of labelled predictions in PromQL (alerts/modelmon-labels.rules.yml).

* ``promtool check rules`` and ``promtool test rules`` on the checked-in files;
* rule names follow ``level:metric:operations`` and their window, expressions read only
  catalogue metrics (or series recorded earlier in the same group), and every raw
  metric is summed over replicas down to the labels the name's level promises;
* a generated promtool test over the unit test's input series (which carry job,
  instance, pod and le labels): every recorded series has exactly its level's labels;
* class names with a newline, and an empty class, are compared exactly;
* the expectations of the promtool unit test agree with a plain-Python computation of
  accuracy, precision, recall, F1, MAE and RMSE from its input series.
"""

from __future__ import annotations

import math
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from modelmon.catalogue import series_names

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "modelmon-labels.rules.yml"
UNIT = ROOT / "alerts" / "tests" / "modelmon-labels.rules.test.yaml"

#: The level part of a recorded name and the labels its series carry.
LEVELS = {
    "model_version_segment": ("model", "model_version", "segment"),
    "model_version_segment_class": ("model", "model_version", "segment", "class"),
    "model_version_segment_actual_predicted": ("model", "model_version", "segment", "actual",
                                               "predicted"),
}
WINDOWS = {"modelmon-labels-1h": ("1h", "1m"), "modelmon-labels-1d": ("1d", "2m")}
OPERATIONS = ("increase", "ratio_rate", "mae", "rmse")
NAME = re.compile(r"(?P<level>[a-z_]+):(?P<metric>modelmon_[a-z0-9_]+):"
                  rf"(?P<op>{'|'.join(OPERATIONS)})(?P<window>1h|1d)")
RESULTS = {  # what the file promises, per window (documented in alerts/README.md)
    "model_version_segment:modelmon_accuracy:ratio_rate",
    "model_version_segment_class:modelmon_precision:ratio_rate",
    "model_version_segment_class:modelmon_recall:ratio_rate",
    "model_version_segment_class:modelmon_f1:ratio_rate",
    "model_version_segment:modelmon_prediction_error:mae",
    "model_version_segment:modelmon_prediction_error:rmse",
}
REPLICA_LABELS = ("instance", "pod", "job", "le", "replica")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def all_rules() -> list[tuple[str, dict]]:
    return [(g["name"], r) for g in groups() for r in g["rules"]]


def catalogue_names() -> set[str]:
    return set(series_names())


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


# --- promtool -------------------------------------------------------------------------


def test_promtool_check_rules(promtool):
    r = run(promtool, "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 30 rules found" in r.stdout


def test_promtool_unit_tests(promtool):
    r = run(promtool, "test", "rules", str(UNIT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


# --- the rule file --------------------------------------------------------------------


def test_groups_are_one_rule_set_in_two_windows():
    g1h, g1d = groups()
    assert [g1h["name"], g1d["name"]] == list(WINDOWS)
    for g in (g1h, g1d):
        assert g["interval"] == WINDOWS[g["name"]][1]
    # The substitution documented in alerts/README.md turns the 1h rules into the 1d ones.
    def to_day(text: str) -> str:
        return re.sub(r":([a-z_]*)1h\b", r":\g<1>1d", text.replace("[1h]", "[1d]"))

    assert [{k: to_day(v) for k, v in r.items()} for r in g1h["rules"]] == g1d["rules"]
    for g in (g1h, g1d):
        names = [NAME.fullmatch(r["record"]) for r in g["rules"]]
        assert {f"{m['level']}:{m['metric']}:{m['op']}" for m in names if m} >= RESULTS


def test_rule_names_follow_the_naming_pattern():
    seen = set()
    for group, rule in all_rules():
        assert set(rule) == {"record", "expr"}, rule  # recording rules only, no labels:
        name = rule["record"]
        m = NAME.fullmatch(name)
        assert m, name
        assert m["level"] in LEVELS, name
        assert m["window"] == WINDOWS[group][0], name
        assert name not in seen, name
        seen.add(name)
        # The window of the name is the only one the expression uses.
        assert set(re.findall(r"\[(\w+)\]", rule["expr"])) <= {m["window"]}, name


def test_expressions_read_catalogue_metrics_or_earlier_records():
    known = catalogue_names()
    for g in groups():
        recorded: list[str] = []
        for rule in g["rules"]:
            tokens = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*",
                                    _strip_strings(rule["expr"])))
            for tok in tokens:
                if ":" in tok:
                    assert tok in recorded, (rule["record"], tok)  # order matters
                elif tok.startswith("modelmon"):
                    assert tok in known, (rule["record"], tok)
            recorded.append(rule["record"])


_RAW = re.compile(r"sum by \((?P<by>[^)]*)\) \(\s*increase\((?P<metric>modelmon_[a-z_]+)"
                  r"\[(?P<window>\w+)\]\)\s*\)")


def test_raw_metrics_are_summed_over_replicas_to_the_level_labels():
    known = catalogue_names()
    for _, rule in all_rules():
        expr = _strip_strings(rule["expr"])
        level = rule["record"].split(":")[0]
        raw = [t for t in re.findall(r"(?<![:\w])modelmon_\w+", expr) if t in known]
        matches = list(_RAW.finditer(expr))
        assert len(raw) == len(matches), rule["record"]
        for m in matches:
            assert tuple(s.strip() for s in m["by"].split(",")) == LEVELS[level], rule["record"]
        # No aggregation or join that could carry a replica label along.
        assert not re.search(r"\b(without|ignoring|group_left|group_right)\b", expr), \
            rule["record"]
        for by in re.findall(r"\b(?:by|on) \(([^)]*)\)", expr):
            labels = {s.strip() for s in by.split(",")}
            assert labels <= set(LEVELS["model_version_segment_actual_predicted"]) | {"class"}
            assert not labels & set(REPLICA_LABELS)


def _unit_doc() -> dict:
    return yaml.safe_load(UNIT.read_text())


def _promtool_test(tmp_path: Path, input_series: list[dict], tests: list[dict],
                   eval_time: str = "26h") -> Path:
    for t in tests:
        t.setdefault("eval_time", eval_time)
    doc = {"rule_files": [str(RULES)], "evaluation_interval": "5m",
           "tests": [{"interval": "1m", "input_series": input_series,
                      "promql_expr_test": tests}]}
    path = tmp_path / "generated.test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_output_has_exactly_its_level_labels(promtool, tmp_path):
    """Over the unit test's input series (job, instance, pod and le on the inputs)."""
    series = _unit_doc()["tests"][0]["input_series"]
    assert {lab for s in series for lab in REPLICA_LABELS if f'{lab}="' in s["series"]} \
        == {"job", "instance", "pod", "le"}
    tests = []
    for _, rule in all_rules():
        name = rule["record"]
        labels = LEVELS[name.split(":")[0]]
        # Nothing but the level's labels: one residual label set, the empty one.
        tests.append({"expr": f"group without ({', '.join(labels)}) ({name})",
                      "exp_samples": [{"labels": "{}", "value": 1}]})
        # Every level label on every series.
        for lab in labels:
            tests.append({"expr": f'{name}{{{lab}=""}}', "exp_samples": []})
    r = run(promtool, "test", "rules", str(_promtool_test(tmp_path, series, tests)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_classes_are_compared_exactly(promtool, tmp_path):
    """Classes with a newline (which `.` does not match) and an empty class."""
    def conf(actual: str, predicted: str, slope: int) -> dict:
        return {"series": "modelmon_confusion_total{model=\"m\",model_version=\"1\","
                          f"segment=\"all\",actual=\"{actual}\",predicted=\"{predicted}\","
                          "instance=\"r1\"}",
                "values": f"0+{slope}x120"}
    series = [conf("a\\nb", "a\\nc", 1), conf("a\\nc", "a\\nb", 2), conf("a\\nc", "a\\nc", 1),
              conf("", "x", 1), conf("", "", 4)]
    sel = 'model="m",model_version="1",segment="all"'
    # 1h window at 2h: 60 x slope. Correct: (a\nc, a\nc) 60 + ("", "") 240 of 540.
    tests = [
        {"expr": "model_version_segment:modelmon_accuracy:ratio_rate1h",
         "exp_samples": [{"labels": f"model_version_segment:modelmon_accuracy:ratio_rate1h"
                                    f"{{{sel}}}", "value": 300 / 540}]},
        {"expr": "model_version_segment_class:modelmon_confusion_true_positive:increase1h",
         "exp_samples": [
             {"labels": "model_version_segment_class:modelmon_confusion_true_positive:"
                        f'increase1h{{{sel},class="{c}"}}', "value": v}
             for c, v in (("a\\nb", 0), ("a\\nc", 60), ("x", 0))] + [
             {"labels": "model_version_segment_class:modelmon_confusion_true_positive:"
                        f"increase1h{{{sel}}}", "value": 240}]},
    ]
    r = run(promtool, "test", "rules", str(_promtool_test(tmp_path, series, tests, "2h")))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


# --- the unit test's expectations, recomputed -----------------------------------------

_SEL = re.compile(r"([\w:]+)\{(.*)\}")
_LAB = re.compile(r'(\w+)="([^"]*)"')


def _values(notation: str) -> list[float]:
    """promtool's expanding notation ('a+bxn c+dxm ...'), integers only."""
    out: list[float] = []
    for part in notation.split():
        m = re.fullmatch(r"(-?\d+)\+(-?\d+)x(\d+)", part)
        assert m, part
        a, b, n = (int(g) for g in m.groups())
        out += [a + b * i for i in range(n + 1)]
    return out


def _reference(window_minutes: int, at_minute: int) -> dict[str, dict[tuple, float]]:
    """Expected outputs, by record name without window, from the input series."""
    conf: dict[tuple, float] = {}
    reg: dict[tuple, list[float]] = {}
    names = {"modelmon_prediction_error_count": 0,
             "modelmon_prediction_absolute_error_total": 1,
             "modelmon_prediction_squared_error_total": 2}
    for s in _unit_doc()["tests"][0]["input_series"]:
        m = _SEL.fullmatch(s["series"])
        assert m, s["series"]
        name, lab = m.group(1), dict(_LAB.findall(m.group(2)))
        v = _values(s["values"])
        inc = v[at_minute] - v[at_minute - window_minutes]  # monotonic: no resets
        key = (lab["model"], lab["model_version"], lab.get("segment"))
        if name == "modelmon_confusion_total":
            cell = key + (lab["actual"], lab["predicted"])
            conf[cell] = conf.get(cell, 0) + inc
        elif name in names:
            reg.setdefault(key, [0, 0, 0])[names[name]] += inc
    out: dict[str, dict[tuple, float]] = {r: {} for r in RESULTS}
    segments = {c[:3] for c in conf}
    for seg in segments:
        cells = {c[3:]: n for c, n in conf.items() if c[:3] == seg}
        total = sum(cells.values())
        if total:
            out["model_version_segment:modelmon_accuracy:ratio_rate"][seg] = float(
                Fraction(int(sum(n for (a, p), n in cells.items() if a == p)), int(total)))
        for c in {a for a, _ in cells} | {p for _, p in cells}:
            tp = cells.get((c, c), 0)
            pred = sum(n for (_, p), n in cells.items() if p == c)
            act = sum(n for (a, _), n in cells.items() if a == c)
            if pred:
                out["model_version_segment_class:modelmon_precision:ratio_rate"][seg + (c,)] = \
                    float(Fraction(int(tp), int(pred)))
            if act:
                out["model_version_segment_class:modelmon_recall:ratio_rate"][seg + (c,)] = \
                    float(Fraction(int(tp), int(act)))
            if pred or act:
                # 2PR / (P + R) when both exist and TP > 0, else 0.
                f1 = 0.0
                if tp:
                    p_, r_ = Fraction(int(tp), int(pred)), Fraction(int(tp), int(act))
                    f1 = float(2 * p_ * r_ / (p_ + r_))
                out["model_version_segment_class:modelmon_f1:ratio_rate"][seg + (c,)] = f1
    for seg, (count, absolute, squared) in reg.items():
        if count:
            out["model_version_segment:modelmon_prediction_error:mae"][seg] = float(
                Fraction(int(absolute), int(count)))
            out["model_version_segment:modelmon_prediction_error:rmse"][seg] = math.sqrt(
                squared / count)
    return out


@pytest.mark.parametrize("window,minutes", [("1h", 60), ("1d", 1440)])
def test_unit_test_expectations_match_a_python_computation(window, minutes):
    doc = _unit_doc()
    tests = {t["expr"]: t for t in doc["tests"][0]["promql_expr_test"]}
    want = _reference(minutes, 26 * 60)
    for result in RESULTS:
        name = result + window
        t = tests[name]
        assert t["eval_time"] == "26h"
        got = {}
        for s in t["exp_samples"]:
            m = _SEL.fullmatch(s["labels"])
            assert m and m.group(1) == name, s["labels"]
            lab = dict(_LAB.findall(m.group(2)))
            key = (lab["model"], lab["model_version"], lab["segment"])
            if "class" in lab:
                key += (lab["class"],)
            got[key] = s["value"]
        assert got == want[result], name
    # The scenario covers what it claims to.
    prec = want["model_version_segment_class:modelmon_precision:ratio_rate"]
    assert not any(k[3] == "__other__" for k in prec)  # never predicted: no precision
    assert {k[0] for k in prec} == {"loan", "fraud"}
