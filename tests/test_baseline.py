import dataclasses
import math

import numpy as np
import pytest

from tests.support import require_module
import yaml

from modelmon import Baseline, BaselineError
from modelmon.baseline import OTHER, category_key


@pytest.fixture
def data():
    rng = np.random.default_rng(42)
    n = 10_000
    return {
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 80, n).astype(float),
        "flag": rng.integers(0, 2, n),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "score": rng.random(n),
        "approved": rng.choice(["yes", "no"], n),
        "defaulted": rng.choice([0, 1], n, p=[0.9, 0.1]),
    }


def test_numeric_edges_are_training_quantiles(data):
    b = Baseline.build(data, model="loans", prediction="approved", probability="score",
                       target="defaulted", categorical=["defaulted"])
    inc = b.features["income"]
    assert len(inc.edges) == 19 and len(inc.counts) == 20
    assert sum(inc.counts) == 10_000
    # each bucket holds about 5 % of the rows
    assert max(inc.counts) <= 520 and min(inc.counts) >= 480
    # at most 6 significant digits
    assert all(float(f"{e:.6g}") == e for e in inc.edges)
    assert inc.min == pytest.approx(data["income"].min())
    assert inc.std == pytest.approx(data["income"].std())
    # low cardinality: one bucket per value
    assert b.features["flag"].edges == (0.0, 1.0)
    assert b.features["flag"].counts[2] == 0
    # outputs and target are not features
    assert set(b.features) == {"income", "age", "flag", "region"}
    assert b.task == "classification"
    assert b.target.categories == ("0", "1")
    assert b.target.ratios[0] == pytest.approx(0.9, abs=0.02)


def test_categories_keep_the_most_frequent_rest_is_other():
    vals = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5
    b = Baseline.build({"x": vals}, model="m", max_categories=2)
    s = b.features["x"]
    assert s.categories == ("a", "b")
    assert s.counts == (50, 30, 20)
    assert s.labels[-1] == OTHER


def test_save_load_roundtrip_and_content_hash(tmp_path, data):
    b = Baseline.build(data, model="loans", probability="score")
    p = b.save(tmp_path / "b.yaml")
    loaded = Baseline.load(p)
    assert loaded == b
    # the id is a content hash: same data, same id; created_at does not enter
    again = Baseline.build(data, model="loans", probability="score")
    assert again.id == b.id
    other = Baseline.build(data, model="loans", model_version="2", probability="score")
    assert other.id != b.id
    doc = yaml.safe_load(p.read_text())
    assert doc["schema_version"] == 1 and doc["id"] == b.id and doc["model_version"] == "1"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("model"), "key 'model': missing"),
    (lambda d: d.__setitem__("schema_version", 7), "key 'schema_version': expected 1"),
    (lambda d: d["features"]["income"].__setitem__("edges", [3, 2, 1]),
     "key 'features.income.edges': expected a non-empty, strictly increasing list"),
    (lambda d: d["features"]["income"].__setitem__("counts", [1, 2]),
     "key 'features.income.counts': expected 20 counts"),
    (lambda d: d["features"]["region"].__setitem__("type", "text"),
     "key 'features.region.type': expected 'numeric' or 'categorical'"),
    (lambda d: d["features"]["income"].__setitem__("missing_fraction", 2),
     "key 'features.income.missing_fraction': expected a number in [0, 1]"),
    (lambda d: d["features"]["income"].__setitem__("mean", "abc"),
     "key 'features.income.mean': expected a finite number"),
    (lambda d: d["features"]["income"]["edges"].__setitem__(0, 1.5),
     "key 'id': expected the content hash"),
])
def test_load_names_the_key_and_what_was_expected(tmp_path, data, edit, message):
    b = Baseline.build(data, model="loans")
    doc = b.to_dict()
    edit(doc)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(BaselineError) as exc:
        Baseline.load(p)
    assert str(p) in str(exc.value)
    assert message in str(exc.value)


def test_load_rejects_non_yaml_and_missing_files(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("features: [unclosed")
    with pytest.raises(BaselineError, match="not valid YAML"):
        Baseline.load(p)
    with pytest.raises(BaselineError, match="cannot read"):
        Baseline.load(tmp_path / "nope.yaml")
    p.write_text("- a list\n")
    with pytest.raises(BaselineError, match="expected a YAML mapping"):
        Baseline.load(p)


@pytest.mark.parametrize("column, message", [
    ([1.0, "abc", 3.0], "mixes numbers"),
    ([float("nan")] * 3, "all 3 values are missing"),
    ([None, None], "all 2 values are missing"),
    ([1.0, float("inf")], "infinite"),
    ([], "no rows"),
])
def test_bad_columns_get_a_clear_message(column, message):
    with pytest.raises(BaselineError, match=message):
        Baseline.build({"x": column}, model="m")


def test_single_value_column_and_missing_fraction():
    b = Baseline.build({"x": [5.0, 5.0, None, 5.0]}, model="m")
    s = b.features["x"]
    assert s.edges == (5.0,) and s.counts == (3, 0)
    assert s.missing_fraction == 0.25 and s.std == 0.0


def test_mixed_column_can_be_declared_categorical():
    b = Baseline.build({"zip": [94103, "94103", 10001, 10001.0]}, model="m", categorical=["zip"])
    assert b.features["zip"].categories == ("10001", "94103")
    assert b.features["zip"].counts == (2, 2, 0)


def test_huge_category_strings_are_cut():
    b = Baseline.build({"x": ["y" * 10_000] * 3}, model="m")
    assert len(b.features["x"].categories[0]) == 128


def test_unknown_columns_and_bad_arguments():
    with pytest.raises(BaselineError, match="column 'nope': not in the data"):
        Baseline.build({"x": [1.0]}, model="m", prediction="nope")
    with pytest.raises(BaselineError, match="bins"):
        Baseline.build({"x": [1.0]}, model="m", bins=1)
    with pytest.raises(BaselineError, match="different lengths"):
        Baseline.build({"x": [1.0], "y": [1.0, 2.0]}, model="m")


def test_category_key_normalises_like_json():
    assert [category_key(v) for v in [True, False, 7, 7.0, "7"]] == ["true", "false", "7", "7", "7"]
    assert category_key(None) is None and category_key(math.nan) is None
    with pytest.raises(TypeError):
        category_key(["a"])


def test_pandas_dataframe_input(data):
    pd = require_module("pandas")
    df = pd.DataFrame(data)
    df.loc[0:99, "income"] = np.nan
    df["region"] = df["region"].astype("category")
    b = Baseline.build(df, model="loans", probability="score")
    assert b.features["income"].missing_fraction == pytest.approx(0.01)
    assert b.features["region"].kind == "categorical"
    assert b.features["region"].categories[0] == "north"


# --- calibration of a binary classifier's score (label-free performance estimation) ---


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    n = 4_000
    x = rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-2 * x))
    label = (rng.random(n) < score).astype(int)
    return {"x": x, "score": score, "label": label, "pred": (score >= 0.4).astype(int)}


def _by_hand(edges, score, actual, predicted):
    idx = np.searchsorted(edges, score, side="left")

    def count(mask):
        return tuple(np.bincount(idx[mask], minlength=len(edges) + 1).tolist())

    ones = np.ones(score.size, bool)
    return count(ones), count(actual), count(predicted), count(actual & predicted)


def test_calibration_from_the_prediction_column(scored):
    b = Baseline.build(scored, model="m", prediction="pred", probability="score", target="label",
                       bins=10)
    c = b.calibration
    assert c.score == "score" and c.positive == "1" and c.prediction == "pred"
    assert c.threshold is None and c.samples == 4_000
    edges = np.asarray(b.probabilities["score"].edges)
    assert (c.rows, c.positives, c.predicted_positive, c.true_positive) == _by_hand(
        edges, scored["score"], scored["label"] == 1, scored["pred"] == 1)
    assert c.rows == b.probabilities["score"].counts
    # the estimate on the training histogram is the training accuracy
    assert c.estimate(c.rows).accuracy == pytest.approx(np.mean(scored["label"] == scored["pred"]))


def test_calibration_from_a_threshold(scored):
    del scored["pred"]
    b = Baseline.build(scored, model="m", probability="score", target="label", bins=10)
    c = b.calibration
    assert c.prediction is None and c.threshold == 0.5
    edges = np.asarray(b.probabilities["score"].edges)
    assert c.predicted_positive == _by_hand(edges, scored["score"], scored["label"] == 1,
                                            scored["score"] >= 0.5)[2]
    b = Baseline.build(scored, model="m", probability="score", target="label", bins=10,
                       threshold=0.3)
    assert b.calibration.threshold == 0.3
    assert b.calibration.predicted_positive == _by_hand(
        edges, scored["score"], scored["label"] == 1, scored["score"] >= 0.3)[2]


def test_calibration_positive_class(scored):
    labels = np.where(scored["label"] == 1, "bad", "good")
    data = {**scored, "label": labels}
    with pytest.raises(BaselineError, match=r"positive: the target 'label' has the classes 'bad' "
                                            r"and 'good'; say which one is positive"):
        Baseline.build(data, model="m", probability="score", target="label")
    b = Baseline.build(data, model="m", probability="score", target="label", positive="bad")
    assert b.calibration.positive == "bad"
    # the same counts as the 0/1 target with 1 positive
    ones = Baseline.build(scored, model="m", probability="score", target="label").calibration
    assert b.calibration == dataclasses.replace(ones, positive="bad")
    flipped = Baseline.build(data, model="m", probability="score", target="label", positive="good")
    assert flipped.calibration.positives == tuple(
        r - p for r, p in zip(b.calibration.rows, b.calibration.positives, strict=True))
    with pytest.raises(BaselineError, match="positive: expected one of the target classes 'bad' "
                                            "and 'good', got 'ugly'"):
        Baseline.build(data, model="m", probability="score", target="label", positive="ugly")
    # bools and "0"/"1" strings need no positive
    for target in (scored["label"] == 1, scored["label"].astype(str), scored["label"] * 1.0):
        b = Baseline.build({**scored, "label": target}, model="m", probability="score",
                           target="label")
        assert b.calibration.positive in ("1", "true")
    # a missing label leaves the row out
    with_gaps = scored["label"].astype(float)
    with_gaps[:10] = np.nan
    b = Baseline.build({**scored, "label": with_gaps}, model="m", probability="score",
                       target="label")
    assert b.calibration.samples == 3_990


def test_no_calibration_without_a_binary_target_and_one_score(scored, data):
    three = np.arange(4_000) % 3
    assert Baseline.build({**scored, "label": three}, model="m", probability="score",
                          target="label").calibration is None
    assert Baseline.build(scored, model="m", probability=["score", "x"],
                          target="label").calibration is None
    assert Baseline.build(scored, model="m", probability="score").calibration is None
    # asking for one explicitly then fails
    with pytest.raises(BaselineError, match="positive, threshold: the score calibration needs a "
                                            "binary target; column 'label' has 3 classes"):
        Baseline.build({**scored, "label": three}, model="m", probability="score",
                       target="label", positive=1)
    with pytest.raises(BaselineError, match="exactly one probability column"):
        Baseline.build(scored, model="m", probability="score", threshold=0.5)
    with pytest.raises(BaselineError, match="threshold: expected a finite number"):
        Baseline.build(scored, model="m", probability="score", target="label", threshold="0.5")
    # a prediction that is not a target class (yes/no for a 0/1 target): no calibration,
    # unless a threshold says how the score predicts
    b = Baseline.build(data, model="loans", prediction="approved", probability="score",
                       target="defaulted")
    assert b.calibration is None
    b = Baseline.build(data, model="loans", prediction="approved", probability="score",
                       target="defaulted", threshold=0.5)
    assert b.calibration.threshold == 0.5 and b.calibration.prediction is None
    with pytest.raises(BaselineError, match="column 'approved': the predicted classes "
                                            "\\('no', 'yes'\\) are not the target classes"):
        Baseline.build(data, model="loans", prediction="approved", probability="score",
                       target="defaulted", positive=1)


def test_calibration_roundtrip_and_content_hash(tmp_path, scored):
    b = Baseline.build(scored, model="m", prediction="pred", probability="score", target="label",
                       bins=10)
    p = b.save(tmp_path / "b.yaml")
    loaded = Baseline.load(p)
    assert loaded == b and loaded.calibration == b.calibration and loaded.id == b.id
    assert Baseline.build(scored, model="m", prediction="pred", probability="score",
                          target="label", bins=10).id == b.id
    doc = yaml.safe_load(p.read_text())
    cal = doc["calibration"]
    assert list(cal) == ["score", "positive", "prediction", "rows", "positives",
                         "predicted_positive", "true_positive"]
    assert cal["positive"] == "1" and cal["rows"] == list(b.calibration.rows)
    assert "rows: [" in p.read_text()  # one line per array
    # the calibration is part of the content hash
    cal["rows"][0] += 1
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(BaselineError, match="key 'id': expected the content hash"):
        Baseline.load(p)
    del doc["id"]
    p.write_text(yaml.safe_dump(doc))
    assert Baseline.load(p).id != b.id
    # a threshold calibration round-trips too
    t = Baseline.build(scored, model="m", probability="score", target="label", threshold=0.25)
    assert Baseline.load(t.save(tmp_path / "t.yaml")) == t


OLD_FILE = """\
schema_version: 1
id: ac371a5437d5fa73
created_at: '2024-05-01T00:00:00+00:00'
model: m
model_version: '1'
rows: 4
features:
  x:
    type: numeric
    edges: [0.5]
    counts: [2, 2]
    min: 0.0
    max: 1.0
    mean: 0.5
    std: 0.5
    missing_fraction: 0.0
probabilities:
  score:
    type: numeric
    edges: [0.5]
    counts: [2, 2]
    min: 0.1
    max: 0.9
    mean: 0.5
    std: 0.4
    missing_fraction: 0.0
target:
  column: label
  type: categorical
  categories: {'0': 2, '1': 2}
  other_count: 0
  missing_fraction: 0.0
"""


def test_a_file_without_calibration_still_loads_with_its_id(tmp_path):
    p = tmp_path / "old.yaml"
    p.write_text(OLD_FILE)
    b = Baseline.load(p)
    assert b.calibration is None and b.id == "ac371a5437d5fa73"
    assert Baseline.load(b.save(tmp_path / "again.yaml")) == b


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.__setitem__("score", "nope"),
     "key 'calibration.score': expected the name of a probability column (score)"),
    (lambda c: c.pop("positive"), "key 'calibration.positive': missing"),
    (lambda c: c.__setitem__("positive", 1),
     "key 'calibration.positive': expected the positive class as a non-empty string"),
    (lambda c: c.__setitem__("threshold", 0.5),
     ("key 'calibration.prediction': expected exactly one of 'prediction' (column) and "
      "'threshold'")),
    (lambda c: c.pop("prediction"), "key 'calibration.prediction': expected exactly one"),
    (lambda c: c.__setitem__("prediction", "other"),
     "key 'calibration.prediction': expected the prediction column ('pred')"),
    (lambda c: c.__setitem__("rows", c["rows"][:-1]),
     "key 'calibration.rows': expected 10 counts"),
    (lambda c: c.pop("true_positive"), "key 'calibration.true_positive': missing"),
    (lambda c: c["positives"].__setitem__(0, -1),
     "key 'calibration.positives': expected a list of non-negative integers"),
    (lambda c: c["positives"].__setitem__(3, c["rows"][3] + 1),
     "key 'calibration.positives': expected at most rows in every bucket (bucket 3)"),
    (lambda c: c["true_positive"].__setitem__(9, c["positives"][9] + 1),
     "key 'calibration.true_positive': expected at most positives and predicted_positive"),
    (lambda c: c["true_positive"].__setitem__(9, c["true_positive"][9] - 1),
     ("key 'calibration.rows': expected at least positives + predicted_positive - "
      "true_positive in every bucket (bucket 9)")),
    (lambda c: c.clear() or c.__setitem__("x", 1), "key 'calibration.score': missing"),
])
def test_load_checks_the_calibration(tmp_path, scored, edit, message):
    b = Baseline.build(scored, model="m", prediction="pred", probability="score", target="label",
                       bins=10)
    doc = b.to_dict()
    del doc["id"]
    edit(doc["calibration"])
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(BaselineError) as exc:
        Baseline.load(p)
    assert str(p) in str(exc.value) and message in str(exc.value)


def test_load_rejects_a_calibration_without_a_target(tmp_path, scored):
    doc = Baseline.build(scored, model="m", probability="score", target="label").to_dict()
    del doc["id"], doc["target"]
    with pytest.raises(BaselineError, match="key 'calibration': expected no calibration in a "
                                            "baseline without a target"):
        Baseline.from_dict(doc)
    doc["calibration"] = "yes"
    doc["target"] = Baseline.build(scored, model="m", target="label").to_dict()["target"]
    with pytest.raises(BaselineError, match="key 'calibration': expected a mapping"):
        Baseline.from_dict(doc)
