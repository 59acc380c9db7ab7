import math

import numpy as np
import pytest
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
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(data)
    df.loc[0:99, "income"] = np.nan
    df["region"] = df["region"].astype("category")
    b = Baseline.build(df, model="loans", probability="score")
    assert b.features["income"].missing_fraction == pytest.approx(0.01)
    assert b.features["region"].kind == "categorical"
    assert b.features["region"].categories[0] == "north"
