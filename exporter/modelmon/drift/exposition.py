"""Reading a monitored process's ``/metrics`` text into count and baseline tables.

Only the series the drift exporter needs are kept: the feature and prediction
histograms (cumulative ``_bucket`` values by ``le``), the category and class
counters, and the baseline gauges. Metric names come from the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from .. import catalogue as cat

__all__ = [
    "SeriesKey",
    "Exposition",
    "parse_exposition",
    "FAMILY_FEATURE_VALUE",
    "FAMILY_FEATURE_CATEGORY",
    "FAMILY_PREDICTION_VALUE",
    "FAMILY_PREDICTED_CLASS",
    "PREDICTED_CLASS_OUTPUT",
]

#: Series families (the ``family`` of a :class:`SeriesKey`).
FAMILY_FEATURE_VALUE = "feature_value"
FAMILY_FEATURE_CATEGORY = "feature_category"
FAMILY_PREDICTION_VALUE = "prediction_value"
FAMILY_PREDICTED_CLASS = "predicted_class"
#: The ``output`` label value of the predicted-class distribution's drift scores.
PREDICTED_CLASS_OUTPUT = "predicted_class"

# The sample names parsed (query mode reads the same ones from the catalogue).
_FV_BUCKET = cat.FEATURE_VALUE.bucket_name
_PV_BUCKET = cat.PREDICTION_VALUE.bucket_name
_CATEGORY_SAMPLE = cat.FEATURE_CATEGORY.name
_CLASS_SAMPLE = cat.PREDICTED_CLASS.name
_BUCKET_RATIO = cat.BASELINE_BUCKET_RATIO.name
_CATEGORY_RATIO = cat.BASELINE_CATEGORY_RATIO.name
_CLASS_RATIO = cat.BASELINE_CLASS_RATIO.name
_BASELINE_SAMPLES = cat.BASELINE_SAMPLES.name
_CALIBRATION = cat.BASELINE_CALIBRATION.name


class SeriesKey(NamedTuple):
    """One distribution of one model version: a histogram or a group of counters."""

    model: str
    model_version: str
    family: str  # one of the FAMILY_* constants
    name: str  # feature or output name; PREDICTED_CLASS_OUTPUT for the class distribution

    @property
    def kind(self) -> str:
        """``"feature"`` or ``"output"``."""
        features = (FAMILY_FEATURE_VALUE, FAMILY_FEATURE_CATEGORY)
        return "feature" if self.family in features else "output"

    @property
    def numeric(self) -> bool:
        """True for histograms (ordered buckets), False for categories and classes."""
        return self.family in (FAMILY_FEATURE_VALUE, FAMILY_PREDICTION_VALUE)


@dataclass
class Exposition:
    """What one scrape said.

    ``live`` maps each series to its values: for histograms ``le`` (as float,
    ``inf`` last) to the cumulative count; for categories and classes the label
    to the count. The baseline tables are keyed by ``(model, model_version,
    name)`` (``(model, model_version)`` for classes).
    """

    live: dict[SeriesKey, dict[float | str, float]] = field(default_factory=dict)
    bucket_ratio: dict[tuple[str, str, str], dict[float, float]] = field(default_factory=dict)
    category_ratio: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)
    class_ratio: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    baseline_samples: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: ``calibration[(model, model_version, output, quantity)][le]``: counts per score bucket.
    calibration: dict[tuple[str, str, str, str], dict[float, float]] = field(default_factory=dict)
    #: Samples that had the right name but unusable labels or values.
    rejected: int = 0


def _le(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def parse_exposition(text: str) -> Exposition:
    """Parse Prometheus text exposition into an :class:`Exposition`.

    Raises ``ValueError`` when the text is not valid exposition format (the
    whole text is parsed before anything is returned, so a half-read page is
    never used).

    >>> e = parse_exposition('''
    ... modelmon_feature_value_bucket{model="m",model_version="1",feature="x",le="0.5"} 3
    ... modelmon_feature_value_bucket{model="m",model_version="1",feature="x",le="+Inf"} 5
    ... modelmon_predicted_class_total{model="m",model_version="1",class="yes"} 4
    ... modelmon_baseline_samples{model="m",model_version="1",feature="x"} 100
    ... ''')
    >>> e.live[SeriesKey("m", "1", FAMILY_FEATURE_VALUE, "x")]
    {0.5: 3.0, inf: 5.0}
    >>> e.live[SeriesKey("m", "1", FAMILY_PREDICTED_CLASS, "predicted_class")]
    {'yes': 4.0}
    >>> e.baseline_samples
    {('m', '1', 'x'): 100.0}
    """
    out = Exposition()
    live = out.live
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name
            if not name.startswith("modelmon_"):
                continue
            lab = s.labels
            value = float(s.value)
            model = lab.get("model")
            version = lab.get("model_version")
            if model is None or version is None:
                if name in _KNOWN:
                    out.rejected += 1
                continue
            if name == _FV_BUCKET or name == _PV_BUCKET:
                feature_label = "feature" if name == _FV_BUCKET else "output"
                series = lab.get(feature_label)
                le = _le(lab.get("le", ""))
                if series is None or le is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                fam_id = FAMILY_FEATURE_VALUE if name == _FV_BUCKET else FAMILY_PREDICTION_VALUE
                live.setdefault(SeriesKey(model, version, fam_id, series), {})[le] = value
            elif name == _CATEGORY_SAMPLE:
                series, category = lab.get("feature"), lab.get("category")
                if series is None or category is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                key = SeriesKey(model, version, FAMILY_FEATURE_CATEGORY, series)
                live.setdefault(key, {})[category] = value
            elif name == _CLASS_SAMPLE:
                cls = lab.get("class")
                if cls is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                key = SeriesKey(model, version, FAMILY_PREDICTED_CLASS, PREDICTED_CLASS_OUTPUT)
                live.setdefault(key, {})[cls] = value
            elif name == _BUCKET_RATIO:
                series = lab.get("feature")
                le = _le(lab.get("le", ""))
                if series is None or le is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                out.bucket_ratio.setdefault((model, version, series), {})[le] = value
            elif name == _CATEGORY_RATIO:
                series, category = lab.get("feature"), lab.get("category")
                if series is None or category is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                out.category_ratio.setdefault((model, version, series), {})[category] = value
            elif name == _CLASS_RATIO:
                cls = lab.get("class")
                if cls is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                out.class_ratio.setdefault((model, version), {})[cls] = value
            elif name == _BASELINE_SAMPLES:
                series = lab.get("feature")
                if series is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                out.baseline_samples[(model, version, series)] = value
            elif name == _CALIBRATION:
                output, quantity = lab.get("output"), lab.get("quantity")
                le = _le(lab.get("le", ""))
                if output is None or quantity is None or le is None or not _count_ok(value):
                    out.rejected += 1
                    continue
                out.calibration.setdefault((model, version, output, quantity), {})[le] = value
    return out


_KNOWN = frozenset({_FV_BUCKET, _PV_BUCKET, _CATEGORY_SAMPLE, _CLASS_SAMPLE, _BUCKET_RATIO,
                    _CATEGORY_RATIO, _CLASS_RATIO, _BASELINE_SAMPLES, _CALIBRATION})


def _count_ok(v: float) -> bool:
    return math.isfinite(v) and v >= 0
