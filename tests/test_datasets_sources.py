"""Source strings, bundled scikit-learn datasets and local files."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets as sk_datasets

from tabscope.datasets import (
    Dataset,
    DatasetError,
    builtin_sources,
    expand_source,
    load_dataset,
    parse_source,
)
from tabscope.datasets.tabular import REGRESSION_MIN_DISTINCT, infer_task


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("sklearn:diabetes", "sklearn:diabetes"),
        (" sklearn:wine ", "sklearn:wine"),
        ("openml:0061", "openml:61"),
        ("openml:61?task=classification&target=class", "openml:61?target=class&task=classification"),
        ("openml-task:1882", "openml-task:1882"),
        ("openml-suite:336", "openml-suite:336"),
        ("grinsztajn-num-reg", "openml-suite:336"),
        ("grinsztajn-num-clf", "openml-suite:337"),
        ("grinsztajn-cat-reg", "openml-suite:335"),
        ("grinsztajn-cat-clf", "openml-suite:334"),
        ("file:data.csv?target=price", "file:data.csv?target=price"),
        ("file:///abs/data.parquet?target=y", "file:/abs/data.parquet?target=y"),
    ],
)
def test_parse_source_canonical_forms(source, canonical):
    assert parse_source(source).canonical == canonical


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("kaggle:titanic", "expected SCHEME:VALUE with SCHEME one of"),
        ("diabetes", "grinsztajn-num-reg"),
        ("sklearn:california_housing", "expected one of ['breast_cancer', 'diabetes'"),
        ("openml:abc", "positive integer id, got 'abc'"),
        ("openml:0", "positive integer id"),
        ("openml-task:-3", "positive integer id"),
        ("openml-task:3?target=x", "take no '?' parameters"),
        ("file:", "needs a path"),
        ("file:x.csv?colour=red", "unknown parameter 'colour'"),
        ("file:x.csv?task=ranking", "task in source"),
    ],
)
def test_parse_source_rejects_bad_sources_with_helpful_messages(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_source(source)


def test_parse_source_unknown_scheme_lists_every_valid_scheme():
    with pytest.raises(DatasetError) as error:
        parse_source("hf:foo")
    for scheme in ("sklearn", "openml", "openml-task", "openml-suite", "file"):
        assert f"'{scheme}'" in str(error.value)


def test_source_must_be_a_string():
    with pytest.raises(TypeError, match="source must be a string"):
        load_dataset(61)


def test_builtin_sources_cover_bundled_datasets_and_grinsztajn_aliases():
    sources = builtin_sources()
    for name in ("diabetes", "breast_cancer", "wine", "digits", "iris"):
        assert f"sklearn:{name}" in sources
    assert "sklearn:california_housing" not in sources  # needs a download
    assert "OpenML suite 336" in sources["grinsztajn-num-reg"]
    assert "OpenML suite 334" in sources["grinsztajn-cat-clf"]
    assert all(isinstance(text, str) and text and "\n" not in text for text in sources.values())
    for source in sources:
        parse_source(source)  # every advertised source parses


def test_expand_source_leaves_single_datasets_alone():
    assert expand_source("sklearn:iris") == ["sklearn:iris"]
    assert expand_source("openml:0061") == ["openml:61"]


def test_suites_cannot_be_loaded_as_one_dataset():
    with pytest.raises(DatasetError, match="expand_source"):
        load_dataset("grinsztajn-cat-clf")


# ----------------------------------------------------------------------------- bundled


@pytest.mark.parametrize(
    ("name", "loader", "task", "n_classes"),
    [
        ("diabetes", sk_datasets.load_diabetes, "regression", None),
        ("breast_cancer", sk_datasets.load_breast_cancer, "classification", 2),
        ("wine", sk_datasets.load_wine, "classification", 3),
        ("digits", sk_datasets.load_digits, "classification", 10),
        ("iris", sk_datasets.load_iris, "classification", 3),
    ],
)
def test_bundled_datasets_match_scikit_learn(name, loader, task, n_classes):
    dataset = load_dataset(f"sklearn:{name}")
    X, y = loader(return_X_y=True)
    assert isinstance(dataset, Dataset)
    assert dataset.source == f"sklearn:{name}" and dataset.name == name
    assert dataset.task == task and dataset.n_classes == n_classes
    assert (dataset.n_samples, dataset.n_features) == X.shape
    assert all(dtype == np.float64 for dtype in dataset.X.dtypes)
    np.testing.assert_array_equal(dataset.X.to_numpy(), X)
    np.testing.assert_array_equal(dataset.y, y)
    assert dataset.y.dtype == (np.float64 if task == "regression" else y.dtype)
    assert dataset.official_splits is None
    assert not any(dataset.categorical)


def test_summary_holds_plain_values():
    summary = load_dataset("sklearn:wine").summary()
    assert summary["rows"] == 178 and summary["features"] == 13
    assert summary["classes"] == 3 and summary["task"] == "classification"
    assert summary["class_counts"] == {0: 59, 1: 71, 2: 48}
    assert summary["missing_fraction"] == 0.0 and summary["categorical"] == 0
    for key, value in summary["class_counts"].items():
        assert type(key) is int and type(value) is int


def test_bundled_dataset_rejects_a_contradicting_task_or_target():
    with pytest.raises(DatasetError, match="regression dataset"):
        load_dataset("sklearn:diabetes", task="classification")
    with pytest.raises(DatasetError, match="target must be 'target'"):
        load_dataset("sklearn:iris", target="species")
    with pytest.raises(ValueError, match="task must be one of"):
        load_dataset("sklearn:iris", task="ranking")


# ----------------------------------------------------------------------------- files


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "rooms": rng.integers(1, 6, size=n),
            "city": rng.choice(["paris", "oslo", "lima"], size=n),
            "garden": rng.choice([True, False], size=n),
            "price": rng.normal(100, 10, size=n).round(2),
            "grade": rng.choice([1, 2, 3], size=n),
        }
    )


def test_csv_source_with_target_in_query(tmp_path, mixed_frame):
    path = tmp_path / "houses.csv"
    mixed_frame.to_csv(path, index=False)
    dataset = load_dataset(f"file:{path}?target=price")
    assert dataset.source == f"file:{path}?target=price"
    assert dataset.name == "houses" and dataset.target == "price"
    assert dataset.task == "regression"
    assert list(dataset.X.columns) == ["size", "rooms", "city", "garden", "grade"]
    assert dataset.categorical == (False, False, True, True, False)
    assert list(dataset.X["city"].cat.categories) == ["lima", "oslo", "paris"]
    np.testing.assert_allclose(dataset.y, mixed_frame["price"].to_numpy())
    np.testing.assert_allclose(dataset.X["size"], mixed_frame["size"])


def test_parquet_source_with_target_argument_and_task_override(tmp_path, mixed_frame):
    path = tmp_path / "houses.parquet"
    mixed_frame.to_parquet(path)
    inferred = load_dataset(f"file:{path}", target="grade")
    assert inferred.task == "classification" and inferred.n_classes == 3
    assert inferred.source == f"file:{path}?target=grade"
    forced = load_dataset(f"file:{path}?task=regression", target="grade")
    assert forced.task == "regression" and forced.y.dtype == np.float64
    assert forced.source == f"file:{path}?target=grade&task=regression"


def test_file_target_given_twice_must_agree(tmp_path, mixed_frame):
    path = tmp_path / "houses.csv"
    mixed_frame.to_csv(path, index=False)
    assert load_dataset(f"file:{path}?target=price", target="price").target == "price"
    with pytest.raises(DatasetError, match="give it once"):
        load_dataset(f"file:{path}?target=price", target="grade")


def test_file_missing_target_column_lists_the_columns(tmp_path, mixed_frame):
    path = tmp_path / "houses.csv"
    mixed_frame.to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        load_dataset(f"file:{path}?target=cost")
    message = str(error.value)
    assert "'cost'" in message and "'price'" in message and "'city'" in message


def test_file_source_needs_a_target(tmp_path, mixed_frame):
    path = tmp_path / "houses.csv"
    mixed_frame.to_csv(path, index=False)
    with pytest.raises(DatasetError, match="needs a target column"):
        load_dataset(f"file:{path}")


def test_empty_missing_and_unknown_format_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(f"file:{empty}?target=y")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,y\n")
    with pytest.raises(DatasetError, match="no data rows"):
        load_dataset(f"file:{header_only}?target=y")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(f"file:{tmp_path / 'absent.csv'}?target=y")
    with pytest.raises(DatasetError, match="cannot tell the format"):
        load_dataset(f"file:{tmp_path / 'data.xlsx'}?target=y")


def test_one_class_target_is_rejected(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="single class"):
        load_dataset(f"file:{path}?target=y")


def test_rows_with_missing_target_are_dropped(tmp_path):
    path = tmp_path / "gaps.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", None, "b", "a"]}).to_csv(path, index=False)
    dataset = load_dataset(f"file:{path}?target=y")
    np.testing.assert_array_equal(dataset.X["x"], [1.0, 3.0, 4.0])
    assert list(dataset.y) == ["a", "b", "a"]
    assert dataset.metadata["dropped_missing_target"] == 1


def test_regression_on_a_text_target_is_refused(tmp_path):
    path = tmp_path / "text.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="numeric target"):
        load_dataset(f"file:{path}?target=y&task=regression")


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (np.arange(REGRESSION_MIN_DISTINCT + 1, dtype=float), "regression"),
        (np.arange(REGRESSION_MIN_DISTINCT, dtype=float), "classification"),
        (np.array([0.5, 1.0, 1.5, 0.5]), "regression"),
        (np.array([0, 1, 1, 0]), "classification"),
        (np.array([True, False, True]), "classification"),
        (np.array(["x", "y", "x"], dtype=object), "classification"),
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values)) == task


def test_official_splits_follow_their_rows_when_missing_targets_are_dropped():
    from tabscope.datasets.tabular import build_dataset

    features = pd.DataFrame({"x": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]})
    target = pd.Series([1.5, None, 2.5, 3.5, None, 4.5])
    official = [(np.array([0, 1, 2]), np.array([3, 4, 5])), (np.array([3, 4, 5]), np.array([0, 1, 2]))]
    dataset = build_dataset(
        source="toy", name="toy", features=features, target=target, target_name="y",
        task="regression", official_splits=official,
    )
    train, test = dataset.official_splits[0]
    np.testing.assert_array_equal(dataset.X["x"].to_numpy()[train], [10.0, 12.0])
    np.testing.assert_array_equal(dataset.X["x"].to_numpy()[test], [13.0, 15.0])
    np.testing.assert_array_equal(dataset.y[test], [3.5, 4.5])
    with pytest.raises(DatasetError, match="outside 0..5"):
        build_dataset(
            source="toy", name="toy", features=features, target=target, target_name="y",
            task="regression", official_splits=[(np.array([0, 9]), np.array([1]))],
        )
