"""Users' files as they come: separators, decimal commas, infinite values, bad targets."""

from __future__ import annotations

import numpy as np
import pytest

from tabscope.datasets import DatasetError, load_dataset
from tabscope.datasets.files import detect_separator

ROWS = [(1.5, 2.25, "red", 10.5), (2.0, 3.5, "blue", 11.0), (0.5, 1.0, "red", 9.25),
        (3.0, 0.5, "green", 12.5), (2.5, 2.0, "blue", 10.0), (1.0, 4.0, "red", 13.0)] * 5


def _write(path, sep=",", decimal="."):
    lines = [sep.join(["a", "b", "colour", "y"])]
    for row in ROWS:
        cells = [str(v).replace(".", decimal) if isinstance(v, float) else v for v in row]
        lines.append(sep.join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_the_separator_is_detected(tmp_path, sep):
    path = _write(tmp_path / "data.csv", sep=sep)
    assert detect_separator(path) == sep
    dataset = load_dataset(f"file:{path}?target=y")
    assert list(dataset.X.columns) == ["a", "b", "colour"]
    assert dataset.metadata["separator"] == sep
    np.testing.assert_allclose(dataset.X["a"].to_numpy()[:2], [1.5, 2.0])


def test_semicolons_with_decimal_commas(tmp_path):
    path = _write(tmp_path / "european.csv", sep=";", decimal=",")
    dataset = load_dataset(f"file:{path}?target=y&decimal=,")
    assert dataset.task == "regression"
    np.testing.assert_allclose(dataset.y[:3], [10.5, 11.0, 9.25])
    np.testing.assert_allclose(dataset.X["b"].to_numpy()[:2], [2.25, 3.5])
    assert dataset.source.endswith("decimal=,&target=y")


def test_an_explicit_separator_wins(tmp_path):
    path = _write(tmp_path / "data.csv", sep=";")
    dataset = load_dataset(f"file:{path}?target=y&sep=;")
    assert dataset.n_features == 3
    tabs = _write(tmp_path / "tabs.csv", sep="\t")
    assert load_dataset(f"file:{tabs}?target=y&sep=tab").n_features == 3


def test_quoted_commas_do_not_confuse_detection(tmp_path):
    path = tmp_path / "names.csv"
    rows = [f'"Smith, Mr. John {k}",{k % 3},{k}' for k in range(30)]
    path.write_text("name,group,y\n" + "\n".join(rows) + "\n")
    assert detect_separator(path) == ","


def test_a_text_regression_target_with_decimal_commas_says_so(tmp_path):
    path = _write(tmp_path / "european.csv", sep=";", decimal=",")
    with pytest.raises(DatasetError, match=r"'y' is .*add \?decimal=,") as error:
        load_dataset(f"file:{path}?target=y&task=regression")
    assert "\n" not in str(error.value)


def test_text_regression_target_is_an_error_naming_it(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "\n".join(f"{k * 0.5},label{k % 3}" for k in range(30)) + "\n")
    with pytest.raises(DatasetError, match="regression needs a numeric target, but 'y'"):
        load_dataset(f"file:{path}?target=y&task=regression")


@pytest.mark.parametrize("value", ["1.0", "2.5", "0", "7"])
def test_a_target_with_one_value_is_an_error(tmp_path, value):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n" + "\n".join(f"{k * 0.5},{value}" for k in range(30)) + "\n")
    with pytest.raises(DatasetError, match="'y' has a single") as error:
        load_dataset(f"file:{path}?target=y")
    assert "\n" not in str(error.value)


def test_infinite_values_are_rejected_at_load_naming_the_column(tmp_path):
    path = tmp_path / "inf.csv"
    rows = [f"{k},{'inf' if k == 7 else k * 0.5},{k % 2}" for k in range(30)]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"column 'b' has 1 infinite value\(s\) \(first in row 7\)"):
        load_dataset(f"file:{path}?target=y")


@pytest.mark.parametrize(
    ("query", "message"),
    [("sep=ab", "sep must be one character"), ("decimal=;", "decimal must be"),
     ("drop=a,,b", "comma-separated column names"),
     ("columns=a", "unknown parameter 'columns'")],
)
def test_bad_query_parameters(tmp_path, query, message):
    path = _write(tmp_path / "data.csv")
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"file:{path}?target=y&{query}")


def test_parquet_dates_and_roles(tmp_path):
    import pandas as pd

    n = 60
    frame = pd.DataFrame({
        "id": np.arange(100, 100 + n),
        "when": pd.date_range("2022-05-01", periods=n, freq="D"),
        "x": np.linspace(0, 1, n),
        "y": np.arange(n) % 2,
    })
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    dataset = load_dataset(f"file:{path}?target=y")
    assert "id" not in dataset.X.columns
    assert "when_day" in dataset.X.columns and dataset.X["when_day"].iloc[0] == 1.0
