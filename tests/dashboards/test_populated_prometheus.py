"""The populated Prometheus holds what the dashboard tests rely on.

A fixture that silently lost data would let an empty panel pass for the wrong reason
(or fail for one); these checks name what went missing.
"""

from __future__ import annotations

import pytest

from modelmon.catalogue import CATALOGUE, CONCEPT_DETECTORS, DRIFT_REFERENCES

from .conftest import Populated, expected_series

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _values(res: list[dict]) -> list[float]:
    return [float(r["value"][1]) for r in res]


def test_every_catalogue_series_has_data(populated: Populated) -> None:
    present = {r["metric"]["__name__"] for r in populated.prom.query(
        'group by (__name__) ({__name__=~"modelmon_.+"})')}
    assert sorted(expected_series() - present) == []


@pytest.mark.parametrize("spec", [m for m in CATALOGUE if m.labels],
                         ids=lambda m: m.name)
def test_every_catalogue_label_is_set(populated: Populated, spec) -> None:
    """Each metric carries its documented labels (none empty), so ``by (label)`` and
    ``label_values`` of the dashboards have something to show."""
    name = spec.name + ("_count" if spec.type == "histogram" else "")
    res = populated.prom.query(name)
    assert res, name
    for label in spec.labels:
        if label == "le":
            continue
        assert any(r["metric"].get(label) for r in res), (name, label)


@pytest.mark.parametrize("expr", [
    # counters that move
    'sum(rate(modelmon_predictions_total{model="loan",model_version="1"}[10s]))',
    'sum(rate(modelmon_predictions_total{model="loan",model_version="2"}[10s]))',
    'sum(rate(modelmon_predictions_total{model="price"}[10s]))',
    'sum(rate(modelmon_labels_total{model="loan"}[10s]))',
    'sum(rate(modelmon_labels_total{model="price"}[10s]))',
    'sum(modelmon_labels_unmatched_total)',
    'sum(modelmon_predictions_expired_total{reason="ttl"})',
    'sum(modelmon_predictions_expired_total{reason="cap"})',
    'sum(modelmon_feature_category_total{model="loan",feature="region",category="__other__"})',
    'sum(modelmon_feature_missing_total{model="loan",feature="employment_years"})',
    'sum(modelmon_feature_out_of_range_total{model="loan",feature="credit_score"})',
    *[f'sum(modelmon_schema_violations_total{{model="loan",reason="{r}"}})'
      for r in ("unknown_feature", "wrong_type", "non_finite", "missing_required")],
    *[f'sum(modelmon_sidecar_events_rejected_total{{model="loan",reason="{r}"}})'
      for r in ("malformed", "invalid_field", "wrong_type", "non_finite")],
    'sum(modelmon_sidecar_requests_total{endpoint="events",code="404"})',
    'sum(modelmon_confusion_total{model="loan",segment="region=south"})',
    'sum(modelmon_labeled_score_count{model="loan",segment="all"})',
    'sum(modelmon_prediction_error_count{model="price",segment="all"})',
    'sum(modelmon_prediction_absolute_error_total{model="price",segment="city=paris"})',
    'sum(modelmon_prediction_squared_error_total{model="price"})',
    'sum(modelmon_label_delay_seconds_count{model="loan"})',
    'sum(modelmon_inference_latency_seconds_count{model="loan"})',
    'sum(modelmon_drift_evaluations_total)',
    # recorded by the shipped (shortened) rules
    'count(model_version_segment:modelmon_accuracy:ratio_rate1h{model="loan"})',
    'count(model_version_segment:modelmon_prediction_error:mae1h{model="price"})',
    'count(model_feature:modelmon_psi:1h{model="loan"})',
    'count(model_version:modelmon_baseline_accuracy:ratio{model="loan"})',
])
def test_counters_and_records_have_data(populated: Populated, expr: str) -> None:
    res = populated.prom.query(expr)
    assert res and all(v > 0 for v in _values(res)), (expr, res)


def test_a_modelmon_alert_fires_for_loan(populated: Populated) -> None:
    res = populated.prom.query('ALERTS{alertstate="firing",alertname=~"ModelMon.*",model="loan"}')
    # the injected drift pages for the shifted feature, and keeps paging while tests run
    firing = {(r["metric"]["alertname"], r["metric"].get("feature")) for r in res}
    assert ("ModelMonFeatureDrift", "credit_score") in firing, firing


def test_the_drift_jumped_against_the_previous_window(populated: Populated) -> None:
    res = populated.prom.query(
        'max_over_time(modelmon_drift_score{model="loan",model_version="1",'
        'feature="credit_score",method="psi",reference="previous"}[10m])')
    assert res and _values(res)[0] > 0.25, res


def test_concept_drift_was_detected_by_both_detectors(populated: Populated) -> None:
    res = populated.prom.query('sum by (detector) (modelmon_concept_drift_detections_total'
                               '{model="loan",model_version="1"})')
    got = {r["metric"]["detector"]: float(r["value"][1]) for r in res}
    assert set(got) == set(CONCEPT_DETECTORS) and all(v > 0 for v in got.values()), got


@pytest.mark.parametrize("reference", DRIFT_REFERENCES)
@pytest.mark.parametrize("model", ["loan", "price"])
def test_drift_scores_against_both_references(populated: Populated, reference: str,
                                              model: str) -> None:
    for metric in ("modelmon_drift_score", "modelmon_prediction_drift_score"):
        res = populated.prom.query(f'{metric}{{model="{model}",reference="{reference}"}}')
        assert res, (metric, model, reference)
    samples = populated.prom.query(
        f'modelmon_drift_window_samples{{model="{model}",reference="{reference}"}}')
    assert samples and max(_values(samples)) >= 200, samples


def test_the_drift_is_large_against_the_baseline(populated: Populated) -> None:
    res = populated.prom.query('modelmon_drift_score{model="loan",model_version="1",'
                               'feature="credit_score",method="psi",reference="baseline"}')
    assert res and _values(res)[0] > 0.5, res


def test_estimated_performance_of_the_classifier(populated: Populated) -> None:
    res = populated.prom.query('modelmon_estimated_performance{model="loan",model_version="1"}')
    assert {r["metric"]["metric"] for r in res} >= {"accuracy", "precision", "recall", "f1"}, res


def test_both_loan_versions_and_price_are_scraped(populated: Populated) -> None:
    res = populated.prom.query("modelmon_model_info")
    assert {(r["metric"]["model"], r["metric"]["model_version"]) for r in res} == {
        ("loan", "1"), ("loan", "2"), ("price", "1")}


def test_the_traffic_had_no_unexpected_reply(populated: Populated) -> None:
    assert populated.traffic.errors == []
