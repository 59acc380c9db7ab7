"""Label-free performance estimation of a binary classifier from its score histogram.

Before delayed labels arrive, the expected confusion matrix of a binary
classifier can be estimated from the live distribution of its score alone,
given a calibration table from labelled training data (NannyML calls this
confidence-based performance estimation, CBPE; here it runs on bucket counts).

The calibration table has one entry per score bucket ``b`` (the buckets of the
score's baseline histogram, Prometheus ``le`` convention, see
:mod:`modelmon.stats.binning`): ``rows[b]`` labelled training rows in the
bucket, ``positives[b]`` of them actually positive, ``predicted_positive[b]``
predicted positive by the model, and ``true_positive[b]`` both. Within each
bucket the relation between score, prediction and outcome is assumed to be
the training one (**covariate shift only**), so a live count ``m[b]`` carries
``m[b] * true_positive[b] / rows[b]`` expected true positives, and so on.

The assumption is the limitation: under concept shift (``P(y | x)`` changes,
so a score no longer means what it meant in training) the estimate keeps
reporting training-time performance while the realised performance moves.
Only labels can detect that.

Pure NumPy: no I/O, no metrics library.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from .distances import _counts  # the same validation of count arrays

__all__ = ["PerformanceEstimate", "estimate_performance"]

FloatArray: TypeAlias = npt.NDArray[np.float64]
#: A float64 scalar for one histogram, an array for a batch of histograms.
Value: TypeAlias = np.float64 | FloatArray


class PerformanceEstimate(NamedTuple):
    """Expected performance of a binary classifier on a live window.

    The first four fields are the metrics, so
    ``accuracy, precision, recall, f1, *_ = estimate_performance(...)`` works;
    the expected confusion-matrix counts follow (in live-count units: they
    sum to the live total).
    """

    accuracy: Value
    precision: Value
    recall: Value
    f1: Value
    true_positive: Value
    false_positive: Value
    false_negative: Value
    true_negative: Value


def _fill_empty(rows: FloatArray, *others: FloatArray) -> tuple[FloatArray, ...]:
    """Borrow the counts of the nearest non-empty bucket for every empty one.

    All arrays have the same shape ``(..., B)``. A bucket with ``rows == 0``
    takes the counts of the nearest bucket (along the last axis) with
    labelled rows; when the nearest ones on both sides are equally far, their
    counts are pooled (so the rates are their row-weighted mean). A row with
    no labelled bucket at all stays empty.
    """
    nonempty = rows > 0
    if nonempty.all():
        return (rows, *others)
    b = rows.shape[-1]
    idx = np.arange(b)
    left = np.maximum.accumulate(np.where(nonempty, idx, -1), axis=-1)
    right = np.flip(np.minimum.accumulate(np.flip(np.where(nonempty, idx, b), axis=-1), axis=-1),
                    axis=-1)
    d_left = np.where(left >= 0, idx - left, np.inf)
    d_right = np.where(right < b, right - idx, np.inf)
    w_left = ((d_left <= d_right) & np.isfinite(d_left)).astype(np.float64)
    w_right = ((d_right <= d_left) & np.isfinite(d_right)).astype(np.float64)
    left_i = np.clip(left, 0, b - 1)
    right_i = np.clip(right, 0, b - 1)
    out = []
    for a in (rows, *others):
        borrowed = (w_left * np.take_along_axis(a, left_i, axis=-1)
                    + w_right * np.take_along_axis(a, right_i, axis=-1))
        out.append(np.where(nonempty, a, borrowed))
    return tuple(out)


def estimate_performance(
    score_counts: npt.ArrayLike,
    rows: npt.ArrayLike,
    positives: npt.ArrayLike,
    predicted_positive: npt.ArrayLike,
    true_positive: npt.ArrayLike,
) -> PerformanceEstimate:
    r"""Expected accuracy, precision, recall and F1 from a live score histogram.

    With :math:`m_b` the live count in score bucket :math:`b` and the
    calibration counts :math:`n_b` (``rows``), :math:`y_b` (``positives``),
    :math:`\hat y_b` (``predicted_positive``) and :math:`t_b`
    (``true_positive``):

    .. math::

        \mathrm{E[TP]} = \sum_b m_b \frac{t_b}{n_b}, \quad
        \mathrm{E[FP]} = \sum_b m_b \frac{\hat y_b - t_b}{n_b}, \quad
        \mathrm{E[FN]} = \sum_b m_b \frac{y_b - t_b}{n_b},

    and :math:`\mathrm{E[TN]}` the rest of :math:`\sum_b m_b`. The metrics
    are then computed from the expected counts: accuracy
    :math:`(TP + TN) / (TP + FP + FN + TN)`, precision :math:`TP / (TP + FP)`,
    recall :math:`TP / (TP + FN)`, F1 :math:`2 TP / (2 TP + FP + FN)`.

    Parameters
    ----------
    score_counts : array_like
        Live histogram of the score, shape ``(..., B)``: counts per bucket
        (not cumulative), finite and non-negative; may be floats (e.g. the
        ``increase()`` of a Prometheus histogram).
    rows, positives, predicted_positive, true_positive : array_like
        The calibration table (see :class:`modelmon.baseline.Calibration`),
        each shape ``(B,)`` or ``(..., B)`` broadcasting with
        ``score_counts``. Per bucket, ``positives`` and
        ``predicted_positive`` must not exceed ``rows``, ``true_positive``
        must not exceed either, and ``positives + predicted_positive -
        true_positive`` must not exceed ``rows``.

    Returns
    -------
    PerformanceEstimate
        ``accuracy``, ``precision``, ``recall``, ``f1`` and the expected
        ``true_positive``, ``false_positive``, ``false_negative``,
        ``true_negative`` counts; each a float64 scalar for 1-D input, else an
        array of the broadcast leading shape. A ratio whose denominator is 0
        is NaN: precision with no expected predicted positive, recall with no
        expected positive, F1 with neither, everything with an empty live
        histogram (expected counts then 0) or an empty calibration (expected
        counts NaN too).

    Raises
    ------
    ValueError
        Naming the argument: on non-finite or negative counts, a bucket
        count different from ``score_counts``, leading axes that do not
        broadcast, or calibration counts that contradict each other.

    Notes
    -----
    **Buckets without labelled rows** (``rows[b] == 0``: the open ``+Inf``
    bucket of a low-cardinality score, or a bucket whose training rows had
    no label) have no rates of their own. They borrow the counts of the
    nearest bucket with labelled rows, pooling the two neighbours when they
    are equally far. Score buckets are ordered, and the rates of a
    reasonable classifier change monotonically with the score, so a
    neighbour is a better guess than the overall rate; live rows in such a
    bucket still count, with the neighbour's rates.

    **Assumption**: covariate shift only. The estimate is exact in
    expectation when, within each bucket, the probability of each
    (prediction, outcome) pair given the bucket is the training one. It is
    biased when the live score distribution moves *within* a bucket (wide
    buckets at the tails), and it cannot see concept shift at all: if the
    relation between inputs and outcome changes, the estimate keeps the
    training-time relation.

    Examples
    --------
    >>> from modelmon.stats.estimation import estimate_performance
    >>> cal = dict(rows=[100, 100], positives=[20, 90],
    ...            predicted_positive=[0, 100], true_positive=[0, 90])

    The low-score bucket is predicted negative and is 80 % right, the
    high-score bucket is predicted positive and is 90 % right. On the
    training mix the estimate reproduces training performance:

    >>> est = estimate_performance([100, 100], **cal)
    >>> round(float(est.accuracy), 6), round(float(est.precision), 6)
    (0.85, 0.9)

    More high scores live: more of the 90 %-right bucket, higher accuracy:

    >>> est = estimate_performance([20, 80], **cal)
    >>> [round(float(v), 6) for v in est[:4]]
    [0.88, 0.9, 0.947368, 0.923077]

    One estimate per row; nothing predicted positive leaves precision undefined:

    >>> est = estimate_performance([[20, 80], [50, 0]], **cal)
    >>> est.accuracy.round(6).tolist(), est.precision.tolist()
    ([0.88, 0.8], [0.9, nan])
    """
    m = _counts("score_counts", score_counts)
    cal = {name: _counts(name, x) for name, x in (
        ("rows", rows), ("positives", positives),
        ("predicted_positive", predicted_positive), ("true_positive", true_positive))}
    b = m.shape[-1]
    for name, a in cal.items():
        if a.shape[-1] != b:
            raise ValueError(
                f"{name} must have one count per score bucket ({b}, the last axis of "
                f"score_counts), got shape {a.shape}")
    try:
        lead = np.broadcast_shapes(*(a.shape[:-1] for a in (m, *cal.values())))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in (("score_counts", m), *cal.items()))
        raise ValueError(f"leading axes do not broadcast: {shapes}") from None
    n, pos, pp, tp = cal["rows"], cal["positives"], cal["predicted_positive"], cal["true_positive"]
    checks = (
        ("positives", "rows", pos > n),
        ("predicted_positive", "rows", pp > n),
        ("true_positive", "positives", tp > pos),
        ("true_positive", "predicted_positive", tp > pp),
    )
    for name, bound, bad in checks:
        if np.any(bad):
            raise ValueError(f"{name} must not exceed {bound} in any bucket")
    if np.any(pos + pp - tp > n):
        raise ValueError("positives + predicted_positive - true_positive must not exceed rows in "
                         "any bucket (rows that are positive or predicted positive)")
    shape = lead + (b,)
    m = np.broadcast_to(m, shape)
    n, pos, pp, tp = _fill_empty(*(np.broadcast_to(a, shape) for a in (n, pos, pp, tp)))

    labelled = n > 0
    weight = m / np.where(labelled, n, 1.0)  # live count per calibration row
    e_tp = (weight * tp).sum(axis=-1)
    e_fp = (weight * (pp - tp)).sum(axis=-1)
    e_fn = (weight * (pos - tp)).sum(axis=-1)
    e_tn = (weight * (n - pos - pp + tp)).sum(axis=-1)
    no_calibration = ~labelled.any(axis=-1)
    if no_calibration.any():
        e_tp, e_fp, e_fn, e_tn = (np.where(no_calibration, np.nan, v)
                                  for v in (e_tp, e_fp, e_fn, e_tn))

    def ratio(num: FloatArray, den: FloatArray) -> FloatArray:
        ok = den > 0
        out: FloatArray = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
        return out

    total = e_tp + e_fp + e_fn + e_tn
    result = (
        ratio(e_tp + e_tn, total),
        ratio(e_tp, e_tp + e_fp),
        ratio(e_tp, e_tp + e_fn),
        ratio(2.0 * e_tp, 2.0 * e_tp + e_fp + e_fn),
        e_tp, e_fp, e_fn, e_tn,
    )
    return PerformanceEstimate(*(np.asarray(v, dtype=np.float64)[()] for v in result))
