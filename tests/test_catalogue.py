import re
from pathlib import Path

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    UnknownMetricFamily,
)

from modelmon import catalogue
from modelmon.catalogue import CATALOGUE, render_markdown

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def test_docs_metrics_md_is_generated_from_the_catalogue():
    on_disk = (ROOT / "docs" / "metrics.md").read_text()
    assert on_disk == render_markdown(), (
        "docs/metrics.md is stale: run `python -m modelmon.catalogue > docs/metrics.md`")


def test_names_follow_prometheus_conventions():
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names))
    for m in CATALOGUE:
        assert m.name.startswith("modelmon_") and NAME.match(m.name)
        assert (m.type == "counter") == m.name.endswith("_total"), m.name
        assert (m.type == "info") == m.name.endswith("_info"), m.name
        forbidden = {"type", "le", "cluster", "env", "quantile"}
        if m.name in ("modelmon_baseline_bucket_ratio", "modelmon_baseline_calibration"):
            # The two exceptions, on purpose: the same le strings as the histogram of the
            # feature or score, so PromQL can join `on (le)` (the PromQL-only PSI rules rely
            # on it for the bucket ratios).
            forbidden.discard("le")
        assert not forbidden & set(m.labels), m.name
        assert all(NAME.match(label) for label in m.labels)
        assert m.help.endswith(".")


def test_issue_minimum_metrics_present_with_their_labels():
    want = {
        "modelmon_model_info": ("model", "model_version", "baseline_id"),
        "modelmon_predictions_total": ("model", "model_version"),
        "modelmon_feature_value": ("model", "model_version", "feature"),
        "modelmon_feature_category_total": ("model", "model_version", "feature", "category"),
        "modelmon_feature_missing_total": ("model", "model_version", "feature"),
        "modelmon_feature_out_of_range_total": ("model", "model_version", "feature"),
        "modelmon_schema_violations_total": ("model", "model_version", "feature", "reason"),
        "modelmon_prediction_value": ("model", "model_version", "output"),
        "modelmon_predicted_class_total": ("model", "model_version", "class"),
        "modelmon_inference_latency_seconds": ("model", "model_version"),
        "modelmon_baseline_bucket_ratio": ("model", "model_version", "feature", "le"),
        "modelmon_baseline_category_ratio": ("model", "model_version", "feature", "category"),
        "modelmon_drift_score": ("model", "model_version", "feature", "method", "reference"),
        "modelmon_prediction_drift_score": ("model", "model_version", "output", "method", "reference"),
        "modelmon_drift_window_samples": ("model", "model_version", "feature", "reference"),
        "modelmon_drift_evaluation_timestamp_seconds": (),
        "modelmon_drift_evaluation_duration_seconds": (),
        "modelmon_drift_source_up": ("source",),
    }
    for name, labels in want.items():
        assert catalogue.by_name(name).labels == labels, name


def test_other_label_is_one_value_across_rooms():
    # one definition, in the catalogue; baseline re-exports it for its old callers
    from modelmon import baseline

    assert baseline.OTHER is catalogue.OTHER
    assert catalogue.OTHER == "__other__"


def test_every_metric_has_its_typed_constant():
    families = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                "histogram": catalogue.HistogramFamily, "info": InfoMetricFamily,
                "untyped": UnknownMetricFamily}
    for m in CATALOGUE:
        const = m.name.removeprefix("modelmon_").removesuffix("_total").upper()
        assert getattr(catalogue, const) is m, const
        assert const in catalogue.__all__
        assert catalogue.by_name(m.name) is m
        fam = m.family()
        assert type(fam) is families[m.type], m.name
        assert fam.name == m.family_name and fam.documentation == m.help
        assert m.label_order == tuple(sorted(m.labels))
    assert len(catalogue._METRICS) == len(CATALOGUE)


def test_shared_constants_live_in_the_catalogue():
    from prometheus_client.utils import floatToGoString

    assert catalogue.le_labels([0.1, 2]) == ["0.1", "2.0", "+Inf"]
    assert catalogue.le_labels(catalogue.DRIFT_DURATION_BUCKETS)[:-1] == [
        floatToGoString(b) for b in catalogue.DRIFT_DURATION_BUCKETS]
    assert catalogue.MAX_PREDICTION_ID_LENGTH == 128
    # the drift exporter re-exports its buckets for the callers of old
    from modelmon.drift import collector

    assert collector.DURATION_BUCKETS is catalogue.DRIFT_DURATION_BUCKETS
