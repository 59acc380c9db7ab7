"""The modelmon command: real subprocess runs, messages instead of tracebacks."""

import subprocess
import sys

import numpy as np
import pytest

from modelmon import Baseline


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelmon.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.fixture
def training_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    lines = ["age,income,region,score,decision,defaulted,row_id"]
    for i in range(n):
        region = rng.choice(["north", "south", "east"])
        age = "" if i % 50 == 0 else f"{rng.integers(18, 80)}"
        lines.append(f"{age},{rng.lognormal(10, 0.5):.2f},{region},{rng.random():.4f},"
                     f"{rng.choice(['yes', 'no'])},{rng.integers(0, 2)},{i}")
    p = tmp_path / "train.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_build_and_show(training_csv, tmp_path):
    out = tmp_path / "b.yaml"
    r = run("baseline", "build", str(training_csv), "--model", "loans", "--model-version", "3",
            "--prediction", "decision", "--probability", "score", "--target", "defaulted",
            "--categorical", "defaulted", "--exclude", "row_id", "--bins", "10", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "model loans version 3" in r.stdout
    b = Baseline.load(out)
    assert set(b.features) == {"age", "income", "region"}
    assert b.features["age"].missing_fraction == pytest.approx(10 / 500)
    assert len(b.features["income"].edges) == 9
    assert b.model_version == "3" and b.task == "classification"
    r = run("baseline", "show", str(out))
    assert r.returncode == 0, r.stderr
    for word in ("age", "income", "region", "decision", "score", "defaulted", b.id):
        assert word in r.stdout


@pytest.mark.parametrize("csv_text, message", [
    ("a,b\n1,x\n2,3\n", "column 'b' mixes numbers (1 cells) and text (1 cells"),
    ("a,b\n1,\n2,\n", "column 'b': all 2 values are missing"),
    ("", "empty file"),
    ("a,b\n1,2,3\n", "line 2: 3 fields, the header has 2"),
    ("a,a\n1,2\n", "duplicate column names: a"),
    ("a,b\n", "no data rows"),
])
def test_bad_csv_gets_a_message_not_a_traceback(tmp_path, csv_text, message):
    p = tmp_path / "bad.csv"
    p.write_text(csv_text)
    r = run("baseline", "build", str(p), "--model", "m", "-o", str(tmp_path / "o.yaml"))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_mixed_column_declared_categorical_builds(tmp_path):
    p = tmp_path / "mixed.csv"
    p.write_text("a,zip\n1,94103\n2,SW1A\n3,94103\n")
    r = run("baseline", "build", str(p), "--model", "m", "--categorical", "zip",
            "-o", str(tmp_path / "o.yaml"))
    assert r.returncode == 0, r.stderr
    assert Baseline.load(tmp_path / "o.yaml").features["zip"].categories == ("94103", "SW1A")


def test_show_on_a_broken_file_names_the_key(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("schema_version: 1\nmodel: m\nmodel_version: '1'\nfeatures:\n  x: {type: numeric}\n")
    r = run("baseline", "show", str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "key 'features.x.missing_fraction': missing" in r.stderr


def test_missing_files_and_unknown_types(tmp_path):
    r = run("baseline", "build", str(tmp_path / "none.csv"), "--model", "m")
    assert r.returncode == 2 and "cannot read" in r.stderr
    (tmp_path / "x.xlsx").write_text("x")
    r = run("baseline", "build", str(tmp_path / "x.xlsx"), "--model", "m")
    assert r.returncode == 2 and "unknown file type" in r.stderr


def test_parquet_input(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"x": np.arange(100.0), "k": ["a", "b"] * 50})
    df.to_parquet(tmp_path / "t.parquet")
    r = run("baseline", "build", str(tmp_path / "t.parquet"), "--model", "m",
            "-o", str(tmp_path / "o.yaml"))
    assert r.returncode == 0, r.stderr
    assert Baseline.load(tmp_path / "o.yaml").features["k"].kind == "categorical"
