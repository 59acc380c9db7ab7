"""End to end: events with ids and their labels posted to a sidecar, scraped by a real
Prometheus, and the shipped recording rules' expressions evaluated on what it stored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from modelmon import Baseline

from ..conftest import Prometheus
from ..support import require_binary, wait_until
from .conftest import start_sidecar

RULES = Path(__file__).resolve().parents[2] / "alerts" / "modelmon-labels.rules.yml"


def inlined(group: str) -> dict[str, str]:
    """Every rule of ``group`` as one PromQL expression, recorded names replaced by their
    expressions (so it can be queried at once, without waiting for rule evaluations)."""
    doc = yaml.safe_load(RULES.read_text())
    rules = next(g for g in doc["groups"] if g["name"] == group)["rules"]
    out: dict[str, str] = {}
    for r in rules:
        expr = r["expr"]
        for name, sub in out.items():
            expr = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"({sub})", expr)
        out[r["record"]] = expr
    return out


def more_scrapes(prom: Prometheus, series: str, k: int) -> None:
    """Wait until the store holds ``k`` more samples of ``series`` than now (a sentinel:
    counted scrapes, not seconds)."""
    def samples() -> float:
        res = prom.query(f"sum(count_over_time({series}[10m]))")
        return float(res[0]["value"][1]) if res else 0.0

    start = samples()
    wait_until(lambda: samples() >= start + k, f"{k} more scrapes of {series}", 30)


@pytest.mark.slow
def test_accuracy_precision_recall_per_segment_from_the_sidecar(tmp_path: Path,
                                                                baseline: Baseline) -> None:
    lv = start_sidecar([baseline], app_kwargs={"segments": {"loan": ()}})
    prom = Prometheus(require_binary("prometheus"), tmp_path / "prom",
                      [lv.url.removeprefix("http://")])
    try:
        # 1. predictions with ids: the ground-truth series appear (at 0) and are scraped
        n = 200
        ids = [f"q{i}" for i in range(n)]
        preds = ["yes" if i % 4 else "no" for i in range(n)]
        body = json.dumps({"events": [
            {"id": i, "features": {"age": 40.0, "income": 30000.0, "purpose": "car"},
             "prediction": p} for i, p in zip(ids, preds)]}).encode()
        assert lv.post("loan", body).json()["accepted"] == n
        prom.wait_for('count(modelmon_confusion_total{model="loan"} == 0)',
                      lambda r: bool(r) and float(r[0]["value"][1]) > 0)
        more_scrapes(prom, 'modelmon_labels_total{model="loan"}', 2)  # a few scrapes at 0
        # 2. their labels: actual "yes" for every third, else "no"
        actual = ["yes" if i % 3 == 0 else "no" for i in range(n)]
        lab = json.dumps({"labels": [{"id": i, "label": a} for i, a in zip(ids, actual)]})
        assert lv.post_labels("loan", lab.encode()).json()["matched"] == n
        prom.wait_for('sum(modelmon_labels_total{model="loan"})',
                      lambda r: bool(r) and float(r[0]["value"][1]) == n)
        more_scrapes(prom, 'modelmon_labels_total{model="loan"}', 2)
        rules = inlined("modelmon-labels-1h")

        def value(record: str, **labels: str) -> float:
            res = prom.query(rules[record])
            got = [float(r["value"][1]) for r in res
                   if all(r["metric"].get(k) == v for k, v in labels.items())]
            assert len(got) == 1, (record, labels, res)
            return got[0]

        pairs = list(zip(actual, preds))
        correct = sum(a == p for a, p in pairs)
        assert value("model_version_segment:modelmon_accuracy:ratio_rate1h",
                     segment="all") == pytest.approx(correct / n, rel=1e-9)
        for cls in ("yes", "no"):
            tp = sum(a == p == cls for a, p in pairs)
            predicted = sum(p == cls for p in preds)
            real = sum(a == cls for a in actual)
            assert value("model_version_segment_class:modelmon_precision:ratio_rate1h",
                         segment="all", **{"class": cls}) == pytest.approx(tp / predicted,
                                                                           rel=1e-9)
            assert value("model_version_segment_class:modelmon_recall:ratio_rate1h",
                         segment="all", **{"class": cls}) == pytest.approx(tp / real, rel=1e-9)
            assert value("model_version_segment_class:modelmon_f1:ratio_rate1h",
                         segment="all", **{"class": cls}) == pytest.approx(
                             2 * tp / (predicted + real), rel=1e-9)
    finally:
        prom.stop()
        lv.http.close()
        lv.server.stop()
