import logging
import pickle

import numpy as np
import pytest

from tests.support import require_module
from prometheus_client import CollectorRegistry

pd = require_module("pandas")
require_module("sklearn", "scikit-learn")

from modelmon import Baseline, Monitor, wrap
from modelmon.monitor import le_labels
from modelmon.stats import bucket_counts
from sklearn.linear_model import LinearRegression, LogisticRegression

N = 400


def val(reg, name, model="m", **labels):
    v = reg.get_sample_value(name, {"model": model, "model_version": "1", **labels})
    assert v is not None, f"no sample {name}{labels}"
    return v


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(42)
    # columns on very different scales, so a column mix-up cannot go unnoticed
    X = pd.DataFrame({"a": rng.normal(0, 1, N), "b": rng.normal(100, 10, N),
                      "c": rng.uniform(-50, -40, N)})
    y = ((X.a + (X.b - 100) / 10 + rng.normal(0, 0.5, N)) > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    train = X.assign(label=y, pred=clf.predict(X), score=clf.predict_proba(X)[:, 1])
    b = Baseline.build(train, model="m", prediction="pred", categorical=["pred"],
                       probability="score", target="label", bins=5)
    return X, y, clf, b


def live(seed=7, n=250):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(0.5, 1, n), "b": rng.normal(105, 12, n),
                         "c": rng.uniform(-50, -40, n)})


def assert_histogram(reg, family, label, name, edges, values, **extra):
    expect = np.cumsum(bucket_counts(np.asarray(edges), np.asarray(values))).tolist()
    got = [val(reg, f"{family}_bucket", **{label: name, "le": le}, **extra)
           for le in le_labels(edges)]
    assert got == expect
    assert val(reg, f"{family}_count", **{label: name}) == len(values)


def test_predict_is_unchanged_and_counted(trained):
    _, _, clf, b = trained
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg))
    Xl = live()
    out = m.predict(Xl)
    np.testing.assert_array_equal(out, clf.predict(Xl))
    n = len(Xl)
    assert val(reg, "modelmon_predictions_total") == n
    for f in ("a", "b", "c"):
        assert_histogram(reg, "modelmon_feature_value", "feature", f, b.features[f].edges,
                         Xl[f].to_numpy())
    for cls in ("0", "1"):
        assert val(reg, "modelmon_predicted_class_total", **{"class": cls}) == \
            (out == int(cls)).sum()
    assert val(reg, "modelmon_prediction_value_count", output="score") == 0
    assert val(reg, "modelmon_inference_latency_seconds_count") == n


def test_predict_proba_is_unchanged_and_counts_scores_and_classes(trained):
    _, _, clf, b = trained
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg))
    Xl = live()
    P = m.predict_proba(Xl)
    np.testing.assert_array_equal(P, clf.predict_proba(Xl))
    n = len(Xl)
    assert val(reg, "modelmon_predictions_total") == n
    assert_histogram(reg, "modelmon_prediction_value", "output", "score",
                     b.probabilities["score"].edges, P[:, 1])  # the positive (last) class
    pred = clf.predict(Xl)
    for cls in ("0", "1"):
        assert val(reg, "modelmon_predicted_class_total", **{"class": cls}) == \
            (pred == int(cls)).sum()
    assert_histogram(reg, "modelmon_feature_value", "feature", "b", b.features["b"].edges,
                     Xl["b"].to_numpy())


def test_the_returned_object_is_the_models_own():
    sentinel = np.array([1, 2])

    class Stub:
        def predict(self, X):
            return sentinel

    b = Baseline.build({"x": [0.0, 1.0], "y": [1.0, 2.0]}, model="m", prediction="y")
    assert wrap(Stub(), Monitor(b, registry=CollectorRegistry())).predict([[0.5], [0.6]]) \
        is sentinel


def test_predict_proba_then_predict_on_the_same_X_counts_once(trained):
    _, _, clf, b = trained
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg))
    Xl = live()
    n = len(Xl)
    P = m.predict_proba(Xl)
    y = m.predict(Xl)
    assert val(reg, "modelmon_predictions_total") == n
    assert val(reg, "modelmon_feature_value_count", feature="a") == n
    assert val(reg, "modelmon_prediction_value_count", output="score") == n
    assert sum(val(reg, "modelmon_predicted_class_total", **{"class": c})
               for c in ("0", "1")) == n
    assert (y == clf.classes_[P.argmax(axis=1)]).all()
    # the pair is used up: a further call on the same X counts again
    m.predict(Xl)
    assert val(reg, "modelmon_predictions_total") == 2 * n
    # ... as does a call on another object, even with equal values
    X2 = live(seed=8)
    m.predict_proba(X2)
    m.predict(X2.copy())
    assert val(reg, "modelmon_predictions_total") == 4 * n
    # predict twice on the same X is two calls: both count
    m.predict(Xl)
    m.predict(Xl)
    assert val(reg, "modelmon_predictions_total") == 6 * n


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_predict_then_predict_proba_on_the_same_X_counts_once(trained):
    _, _, clf, b = trained
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg))
    Xl = live().to_numpy()
    m.predict(Xl)
    m.predict_proba(Xl)
    assert val(reg, "modelmon_predictions_total") == len(Xl)
    assert val(reg, "modelmon_prediction_value_count", output="score") == 0


def test_numpy_and_list_input_use_the_baseline_column_order(trained):
    _, _, clf, b = trained
    assert list(b.features) == ["a", "b", "c"]
    Xl = live()
    for data in (Xl.to_numpy(), Xl.to_numpy().tolist()):
        reg = CollectorRegistry()
        m = wrap(clf, Monitor(b, registry=reg))
        with pytest.warns(UserWarning, match="feature names"):  # sklearn: fitted with names
            out = m.predict(data)
        np.testing.assert_array_equal(out, clf.predict(Xl))
        for f in ("a", "b", "c"):
            assert_histogram(reg, "modelmon_feature_value", "feature", f,
                             b.features[f].edges, Xl[f].to_numpy())
            assert val(reg, "modelmon_feature_value_sum", feature=f) == \
                pytest.approx(Xl[f].sum())


class AnyInput:
    """A model that takes anything (sklearn refuses reordered or missing columns)."""

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def test_a_dataframe_is_read_by_column_name(trained):
    _, _, _, b = trained
    reg = CollectorRegistry()
    m = wrap(AnyInput(), Monitor(b, registry=reg))
    Xl = live()
    m.predict(Xl[["c", "a", "b"]])
    for f in ("a", "b", "c"):
        assert val(reg, "modelmon_feature_value_sum", feature=f) == pytest.approx(Xl[f].sum())
    assert val(reg, "modelmon_predicted_class_total", **{"class": "0"}) == len(Xl)


def test_a_column_count_mismatch_is_logged_and_not_counted(trained, caplog):
    _, _, _, b = trained
    reg = CollectorRegistry()
    m = wrap(AnyInput(), Monitor(b, registry=reg))
    Xl = live().to_numpy()
    with caplog.at_level(logging.WARNING, logger="modelmon.wrap"):
        out = m.predict(Xl[:, :2])
        m.predict(Xl[:, :2].tolist())
        m.predict(Xl[:, :2])
    assert out.shape == (len(Xl),)
    assert val(reg, "modelmon_predictions_total") == 0
    msgs = [r.getMessage() for r in caplog.records]
    assert len([x for x in msgs if "does not match" in x]) == 1  # rate-limited
    assert len([x for x in msgs if "do not match" in x]) == 1


class Boom(Monitor):
    def observe(self, *args, **kwargs):
        raise RuntimeError("monitor is broken")

    def observe_batch(self, *args, **kwargs):
        raise RuntimeError("monitor is broken")


def test_a_failing_monitor_still_returns_the_results(trained, caplog):
    _, _, clf, b = trained
    m = wrap(clf, Boom(b, registry=CollectorRegistry()))
    Xl = live()
    with caplog.at_level(logging.WARNING, logger="modelmon.wrap"):
        np.testing.assert_array_equal(m.predict(Xl), clf.predict(Xl))
        np.testing.assert_array_equal(m.predict_proba(Xl), clf.predict_proba(Xl))
    assert any("not counted" in r.getMessage() for r in caplog.records)


def test_a_strict_monitor_never_raises_into_predict(trained):
    _, _, clf, b = trained
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg, strict=True))
    Xl = live().assign(zz=1.0)  # an unknown column: a schema violation
    with pytest.raises(ValueError):
        clf.predict(Xl)  # the model itself refuses it ...
    with pytest.raises(ValueError):
        m.predict(Xl)  # ... and that error is the model's, unchanged
    assert val(reg, "modelmon_predictions_total") == 0


def test_attributes_are_delegated(trained):
    X, y, clf, b = trained
    m = wrap(clf, Monitor(b, registry=CollectorRegistry()))
    np.testing.assert_array_equal(m.classes_, clf.classes_)
    np.testing.assert_array_equal(m.coef_, clf.coef_)
    assert m.score(X, y) == clf.score(X, y)
    assert m.get_params() == clf.get_params()
    assert m.wrapped is clf
    m.custom_tag = "v1"
    assert clf.custom_tag == "v1"
    del m.custom_tag
    assert not hasattr(clf, "custom_tag")
    assert "coef_" in dir(m) and "predict" in dir(m)
    assert "LogisticRegression" in repr(m)
    with pytest.raises(AttributeError):
        _ = m.no_such_attribute


def test_predict_proba_is_absent_when_the_model_has_none():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    reg_model = LinearRegression().fit(X, X @ [1.0, 2.0])
    b = Baseline.build({"u": X[:, 0], "v": X[:, 1], "t": reg_model.predict(X)}, model="m",
                       prediction="t", bins=4)
    reg = CollectorRegistry()
    m = wrap(reg_model, Monitor(b, registry=reg))
    assert not hasattr(m, "predict_proba")
    out = m.predict(X[:10])
    np.testing.assert_array_equal(out, reg_model.predict(X[:10]))
    assert val(reg, "modelmon_prediction_value_count", output="t") == 10


def test_k_score_columns_are_matched_to_classes_by_name():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = np.where(X.a > 0.3, "yes", "no")
    clf = LogisticRegression().fit(X, y)
    P = clf.predict_proba(X)
    assert list(clf.classes_) == ["no", "yes"]
    train = X.assign(p_yes=P[:, 1], p_no=P[:, 0])
    b = Baseline.build(train, model="m", probability=["p_yes", "p_no"], bins=4)  # reversed
    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg))
    Pl = m.predict_proba(X)
    assert_histogram(reg, "modelmon_prediction_value", "output", "p_yes",
                     b.probabilities["p_yes"].edges, Pl[:, 1])
    assert_histogram(reg, "modelmon_prediction_value", "output", "p_no",
                     b.probabilities["p_no"].edges, Pl[:, 0])
    # one score column named after the negative class: that column, not the last
    b1 = Baseline.build(X.assign(p_no=P[:, 0]), model="m", probability="p_no", bins=4)
    reg1 = CollectorRegistry()
    wrap(clf, Monitor(b1, registry=reg1)).predict_proba(X)
    assert_histogram(reg1, "modelmon_prediction_value", "output", "p_no",
                     b1.probabilities["p_no"].edges, P[:, 0])


def test_latency_comes_from_the_monitor_clock(trained):
    _, _, clf, b = trained

    class Clock:
        t = 0.0

        def __call__(self):
            self.t += 0.2  # each reading 0.2 s later: one call lasts 0.2 s
            return self.t

    reg = CollectorRegistry()
    m = wrap(clf, Monitor(b, registry=reg, clock=Clock()))
    Xl = live(n=30)
    m.predict(Xl)
    assert val(reg, "modelmon_inference_latency_seconds_count") == 30
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.1") == 0
    assert val(reg, "modelmon_inference_latency_seconds_bucket", le="0.25") == 30
    assert val(reg, "modelmon_inference_latency_seconds_sum") == pytest.approx(6.0)


def test_multi_model_monitors_need_a_model_name(trained):
    _, _, clf, b = trained
    b2 = Baseline.build({"a": [1.0, 2.0]}, model="other")
    reg = CollectorRegistry()
    mon = Monitor([b, b2], registry=reg)
    with pytest.raises(ValueError, match="model_name"):
        wrap(clf, mon)
    with pytest.raises(ValueError, match="'nope'"):
        wrap(clf, mon, model_name="nope")
    m = wrap(clf, mon, model_name="m")
    m.predict(live(n=10))
    assert val(reg, "modelmon_predictions_total") == 10
    with pytest.raises(TypeError):
        wrap(object(), mon, model_name="m")


def test_pickling_gives_the_bare_model(trained):
    _, _, clf, b = trained
    m = wrap(clf, Monitor(b, registry=CollectorRegistry()))
    back = pickle.loads(pickle.dumps(m))
    assert type(back) is LogisticRegression
    Xl = live(n=20)
    np.testing.assert_array_equal(back.predict(Xl), clf.predict(Xl))
