"""Pure statistics: binning, drift distances, performance estimation, concept-drift detectors.

No metrics library and no I/O here: everything takes and returns NumPy arrays.
See :mod:`modelmon.stats.binning` for the bucket convention,
:mod:`modelmon.stats.distances` for the drift scores and
:mod:`modelmon.stats.verdict` for their null laws and the drift verdict.
"""

from __future__ import annotations

from .binning import bucket_counts, bucket_index, quantile_edges, round_significant
from .concept import Adwin, AdwinResult, PageHinkley, PageHinkleyResult, adwin, page_hinkley
from .distances import (
    Score,
    SignificanceResult,
    chi_square,
    drift_scores,
    hellinger,
    jensen_shannon,
    kolmogorov_smirnov,
    psi,
    wasserstein,
)
from .estimation import PerformanceEstimate, estimate_performance
from .verdict import (
    DEFAULT_ALPHA,
    DEFAULT_EFFECT,
    DEFAULT_METHOD,
    VERDICT_METHODS,
    NullModel,
    Verdict,
    drift_verdict,
    holm_levels,
    null_model,
)

__all__ = [
    # binning
    "quantile_edges",
    "bucket_index",
    "bucket_counts",
    "round_significant",
    # distances
    "Score",
    "SignificanceResult",
    "psi",
    "jensen_shannon",
    "hellinger",
    "kolmogorov_smirnov",
    "chi_square",
    "wasserstein",
    "drift_scores",
    # verdicts: null models, multiple testing, effect floors
    "VERDICT_METHODS",
    "DEFAULT_METHOD",
    "DEFAULT_EFFECT",
    "DEFAULT_ALPHA",
    "NullModel",
    "null_model",
    "holm_levels",
    "Verdict",
    "drift_verdict",
    # performance estimation before labels come
    "PerformanceEstimate",
    "estimate_performance",
    # concept drift on the per-label error stream
    "PageHinkley",
    "PageHinkleyResult",
    "page_hinkley",
    "Adwin",
    "AdwinResult",
    "adwin",
]
