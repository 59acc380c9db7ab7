"""Tests of modelmon.stats.estimation: label-free performance estimation (CBPE-style).

A fixed "true" model P(y=1 | x) = sigmoid(w.x + b) generates the data; the
classifier is a logistic regression fitted on 50k training rows (or the true
probability itself with a 0.5 threshold). Live data under covariate shift
(the mean of x moves, P(y | x) does not) must be estimated within 0.03
accuracy; under concept shift (P(y | x) changes) the estimate must not follow.
Randomness is seeded.

Measured (seed 0 baseline, 5 shifts x 3 seeds of 20k live rows, 20 buckets):
worst absolute gap accuracy 0.008, precision 0.028, recall 0.008, F1 0.013,
for the fitted and the true-probability classifier alike.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from modelmon.baseline import Baseline
from modelmon.stats import bucket_counts
from modelmon.stats.estimation import PerformanceEstimate, estimate_performance

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

W = np.array([1.5, -1.0, 0.8])
B0 = -0.3
TRAIN_ROWS = 50_000
LIVE_ROWS = 20_000
COVARIATE_SHIFTS = [
    [0.5, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, -1.0, 0.5],
    [-1.0, 1.0, 0.0],   # far fewer positives: precision on few predicted positives
    [1.5, -1.5, 0.0],
]
METRICS = ("accuracy", "precision", "recall", "f1")
# The requirement for accuracy; the others are what was measured, with margin.
TOLERANCE = {"accuracy": 0.03, "precision": 0.05, "recall": 0.03, "f1": 0.03}


def true_probability(X, w=W, b=B0):
    return 1.0 / (1.0 + np.exp(-(X @ w + b)))


def sample(rng, n, shift=0.0, w=W, b=B0):
    X = rng.normal(size=(n, W.size)) + np.asarray(shift)
    y = (rng.random(n) < true_probability(X, w, b)).astype(int)
    return X, y


def realised(y, predicted):
    y = np.asarray(y).astype(bool)
    p = np.asarray(predicted).astype(bool)
    tp, fp, fn = np.sum(y & p), np.sum(~y & p), np.sum(y & ~p)
    return {"accuracy": float(np.mean(y == p)), "precision": tp / (tp + fp),
            "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}


class Classifier:
    """A score function and a predict function, and the baseline built from its training run."""

    def __init__(self, kind):
        from sklearn.linear_model import LogisticRegression

        X, y = sample(np.random.default_rng(0), TRAIN_ROWS)
        data = {f"x{i}": X[:, i] for i in range(W.size)}
        if kind == "fitted":
            clf = LogisticRegression().fit(X, y)
            self.score = lambda X: clf.predict_proba(X)[:, 1]
            self.predict = clf.predict
            data.update(score=self.score(X), pred=self.predict(X), label=y)
            self.baseline = Baseline.build(data, model="m", prediction="pred", probability="score",
                                           target="label")
        else:  # the true probability, predicted positive from 0.5 (no prediction column)
            self.score = true_probability
            self.predict = lambda X: (true_probability(X) >= 0.5).astype(int)
            data.update(score=self.score(X), label=y)
            self.baseline = Baseline.build(data, model="m", probability="score", target="label")
        self.train = realised(y, self.predict(X))

    def estimate(self, X):
        edges = self.baseline.probabilities["score"].edges
        c = self.baseline.calibration
        return estimate_performance(bucket_counts(edges, self.score(X)), c.rows, c.positives,
                                    c.predicted_positive, c.true_positive)


@pytest.fixture(scope="module", params=["fitted", "true"])
def classifier(request):
    return Classifier(request.param)


def test_calibration_comes_from_the_prediction_column_or_the_threshold(classifier):
    c = classifier.baseline.calibration
    assert c is not None and c.score == "score" and c.positive == "1"
    assert c.samples == TRAIN_ROWS and len(c.rows) == 20
    if c.prediction is None:
        assert c.threshold == 0.5
    else:
        assert c.prediction == "pred" and c.threshold is None


def test_on_the_training_histogram_the_estimate_is_the_training_performance(classifier):
    # Summing the calibration over buckets gives back the training confusion matrix exactly.
    c = classifier.baseline.calibration
    est = estimate_performance(c.rows, c.rows, c.positives, c.predicted_positive, c.true_positive)
    for k in METRICS:
        assert getattr(est, k) == pytest.approx(classifier.train[k], abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shift", COVARIATE_SHIFTS, ids=str)
def test_covariate_shift_is_estimated_within_tolerance(classifier, shift, seed):
    X, y = sample(np.random.default_rng(seed), LIVE_ROWS, shift)
    est = classifier.estimate(X)
    truth = realised(y, classifier.predict(X))
    for k in METRICS:
        assert abs(getattr(est, k) - truth[k]) < TOLERANCE[k], (k, float(getattr(est, k)), truth[k])
    # and the shift is real: performance moved away from training
    assert abs(truth["recall"] - classifier.train["recall"]) > 0.05


@pytest.mark.parametrize("w, b, min_gap", [
    (-W, -B0, 0.5),        # the relation flips: realised accuracy about 0.22
    (0.2 * W, B0, 0.15),   # the relation weakens: realised accuracy about 0.58
])
def test_concept_shift_is_not_seen(classifier, w, b, min_gap):
    """The documented limitation: the score still means what it meant in training."""
    X, y = sample(np.random.default_rng(5), LIVE_ROWS, 0.0, w, b)
    est = classifier.estimate(X)
    truth = realised(y, classifier.predict(X))
    assert est.accuracy == pytest.approx(classifier.train["accuracy"], abs=0.02)
    assert est.accuracy - truth["accuracy"] > min_gap


# --- the function itself ------------------------------------------------------------

CAL = {"rows": [100, 100], "positives": [20, 90], "predicted_positive": [0, 100],
       "true_positive": [0, 90]}


def test_hand_computed_confusion_matrix():
    est = estimate_performance([20, 80], **CAL)
    assert isinstance(est, PerformanceEstimate)
    # bucket 0: 20 live rows, 20 % positive, none predicted positive
    # bucket 1: 80 live rows, 90 % positive, all predicted positive
    assert (est.true_positive, est.false_positive, est.false_negative, est.true_negative) == \
        pytest.approx((72.0, 8.0, 4.0, 16.0))
    assert est.accuracy == pytest.approx(0.88)
    assert est.precision == pytest.approx(0.9)
    assert est.recall == pytest.approx(72 / 76)
    assert est.f1 == pytest.approx(144 / 156)
    assert isinstance(est.accuracy, np.float64)


def test_vectorised_over_leading_axes():
    rng = np.random.default_rng(3)
    live = rng.integers(0, 50, size=(4, 3, 2)).astype(float)
    batch = estimate_performance(live, **CAL)
    assert batch.accuracy.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            one = estimate_performance(live[i, j], **CAL)
            for k in PerformanceEstimate._fields:
                a, b = getattr(batch, k)[i, j], getattr(one, k)
                assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b)
    # calibration with leading axes too: one table per row
    cal2 = {k: np.stack([v, v]) for k, v in CAL.items()}
    two = estimate_performance([[20, 80], [50, 50]], **cal2)
    assert two.accuracy.tolist() == pytest.approx([0.88, 0.85])


def test_undefined_ratios_are_nan():
    # nothing predicted positive: precision undefined, recall and F1 are 0
    est = estimate_performance([50, 0], **CAL)
    assert np.isnan(est.precision)
    assert est.recall == 0.0 and est.f1 == 0.0 and est.accuracy == pytest.approx(0.8)
    # an empty live window: every ratio undefined
    est = estimate_performance([0, 0], **CAL)
    assert all(np.isnan(getattr(est, k)) for k in METRICS)
    assert est.true_positive == 0.0
    # a calibration without any labelled row: nothing to go on
    est = estimate_performance([5, 5], [0, 0], [0, 0], [0, 0], [0, 0])
    assert all(np.isnan(v) for v in est)
    # no positives and none predicted: precision, recall and F1 undefined, accuracy 1
    est = estimate_performance([5, 5], [10, 10], [0, 0], [0, 0], [0, 0])
    assert est.accuracy == 1.0 and np.isnan(est.precision) and np.isnan(est.recall)
    assert np.isnan(est.f1)


def test_buckets_without_labelled_rows_borrow_the_nearest_rates():
    rows = [100, 0, 0, 0, 50, 0]
    pos = [10, 0, 0, 0, 40, 0]
    pp = [0, 0, 0, 0, 50, 0]
    tp = [0, 0, 0, 0, 40, 0]
    # bucket 1 borrows bucket 0; bucket 2 pools 0 and 4; bucket 3 and 5 borrow bucket 4
    est = estimate_performance([0, 10, 0, 0, 0, 0], rows, pos, pp, tp)
    assert est.false_negative == pytest.approx(1.0) and est.true_positive == 0.0
    est = estimate_performance([0, 0, 15, 0, 0, 0], rows, pos, pp, tp)
    # pooled: 150 rows, 50 positive, 50 predicted positive, 40 both
    assert (est.true_positive, est.false_positive, est.false_negative, est.true_negative) == \
        pytest.approx((4.0, 1.0, 1.0, 9.0))
    est = estimate_performance([0, 0, 0, 10, 0, 10], rows, pos, pp, tp)
    assert est.precision == pytest.approx(0.8) and est.recall == 1.0
    # the same as if the counts had been in the neighbouring bucket
    moved = estimate_performance([0, 0, 0, 0, 20, 0], rows, pos, pp, tp)
    assert est.accuracy == pytest.approx(moved.accuracy)


@pytest.mark.parametrize("args, message", [
    (([1, np.nan], *CAL.values()), "score_counts counts must be finite"),
    (([1, -1], *CAL.values()), "score_counts counts must be non-negative"),
    ((5.0, *CAL.values()), "score_counts must be an array"),
    (([1, 2, 3], *CAL.values()), "rows must have one count per score bucket"),
    (([1, 2], [100, 100], [20, 90], [0, 100], [0, 90, 1]),
     "true_positive must have one count per score bucket"),
    (([1, 2], [100, 100], [20, 101], [0, 100], [0, 90]), "positives must not exceed rows"),
    (([1, 2], [100, 100], [20, 90], [0, 100], [0, 95]),
     "true_positive must not exceed positives"),
    (([1, 2], [100, 100], [20, 90], [10, 100], [15, 90]),
     "true_positive must not exceed predicted_positive"),
    (([1, 2], [100, 100], [60, 90], [60, 100], [10, 90]),
     "positives + predicted_positive - true_positive must not exceed rows"),
    (([1, 2], [100, 100], [20, 90], [0, -1], [0, 90]),
     "predicted_positive counts must be non-negative"),
    (([[1, 2]] * 3, [[100, 100]] * 2, [20, 90], [0, 100], [0, 90]), "leading axes do not broadcast"),
])
def test_bad_input_names_the_argument(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        estimate_performance(*args)
