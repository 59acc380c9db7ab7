"""The score gauges rendered once per evaluation are the lines prometheus_client writes."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from modelmon.drift.collector import DriftCollector, score_exposition
from modelmon.drift.evaluate import DriftResults, ScoreBlock, ScoreSet
from modelmon.drift.verdict import VerdictColumns

EOF = "# EOF\n"


def results(seed: int = 0) -> DriftResults:
    rng = np.random.default_rng(seed)
    n = 300
    # awkward label values, features and outputs, one name used by both, NaN scores and counts
    idents = tuple((f"m{i % 7}", 'v"1\\', "feature" if i % 3 else "output", f"f{i}\n")
                   for i in range(n - 2)) + (("mx", "1", "output", "same"),
                                             ("mx", "1", "feature", "same"))
    base = rng.random((n, 7))
    base[rng.random((n, 7)) < 0.2] = np.nan
    counts = rng.integers(0, 10_000, size=n).astype(float)
    counts[::11] = np.nan
    counts[-2:] = (20.0, 10.0)  # the output's count, the feature's
    prev = rng.random((n, 7)) * 1e-9
    # verdicts (drifted, threshold, method; NaN / -1: none) on both blocks, so the detected,
    # threshold, share and features-drifted lines are compared too
    drifted = (rng.random(n) < 0.3).astype(float)
    drifted[rng.random(n) < 0.2] = np.nan
    method = np.where(np.isnan(drifted), -1, rng.integers(0, 7, size=n))
    verdict = VerdictColumns(drifted, np.where(np.isnan(drifted), np.nan, rng.random(n)), method)
    blocks = [ScoreBlock(idents, "baseline", base, counts, verdict),
              ScoreBlock(idents[::-1], "previous", prev, counts[::-1] + 0.5,
                         VerdictColumns(drifted[::-1], verdict.threshold[::-1] * 1e-3,
                                        method[::-1]))]
    return DriftResults(timestamp=1.0, scored=ScoreSet(blocks), sources_up={"s": True},
                        source_errors={}, last_success_timestamp=1.0, window_seconds=60.0,
                        previous_window_seconds=60.0, evaluations=3, duration_seconds=0.5)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_split_rendering_writes_the_same_lines_as_the_collector(openmetrics: bool) -> None:
    res = results()
    collector = DriftCollector(lambda: res)
    reg = CollectorRegistry()
    reg.register(collector)
    encode = openmetrics_latest if openmetrics else generate_latest
    whole = encode(reg).decode()
    with collector.split(res):
        rest = encode(reg).decode()
    scores = score_exposition(res, openmetrics).decode()
    assert "modelmon_drift_score" not in rest and "modelmon_drift_window_samples{" not in rest
    for family in ("modelmon_drift_detected{", "modelmon_prediction_drift_threshold{",
                   "modelmon_drift_share{", "modelmon_drift_features_drifted{"):
        assert family in scores and family not in rest
    if openmetrics:
        assert whole.endswith(EOF) and rest.endswith(EOF) and EOF not in scores
        rest = rest[:-len(EOF)]
        whole = whole[:-len(EOF)]
    assert sorted((rest + scores).splitlines()) == sorted(whole.splitlines())
    # the feature's sample count wins over the output's of the same name
    same = [line for line in scores.splitlines()
            if line.startswith('modelmon_drift_window_samples{feature="same",model="mx"')]
    assert sorted(same) == [
        'modelmon_drift_window_samples{feature="same",model="mx",model_version="1",'
        'reference="baseline"} 10.0',
        'modelmon_drift_window_samples{feature="same",model="mx",model_version="1",'
        'reference="previous"} 10.5']
    # rendered once per results object and format
    assert score_exposition(res, openmetrics) is score_exposition(res, openmetrics)
    # outside split() the same thread gets everything again
    assert encode(reg).decode().startswith(whole[:200])


def test_nothing_before_the_first_evaluation() -> None:
    assert score_exposition(None) == b""
