"""Feature transformers and prepare_data: fitted on training rows only."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

from tabscope.datasets import (
    Dataset,
    NetworkFeatureTransformer,
    TreeFeatureTransformer,
    load_dataset,
    make_split,
    prepare_data,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    """Mixed training data: numbers with gaps, categories with gaps, a skewed column."""
    rng = np.random.default_rng(0)
    n = 200
    size = rng.lognormal(size=n)
    size[:10] = np.nan
    colour = pd.Categorical(
        rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
        categories=["red", "green", "blue", "violet"],  # "violet" is declared but unseen
    )
    colour[10:15] = np.nan
    return pd.DataFrame(
        {"size": size, "colour": colour, "age": rng.normal(40, 10, size=n)}
    )


def test_network_transform_quantile_normalises_numbers_and_one_hot_encodes(frame):
    transformer = NetworkFeatureTransformer().fit(frame)
    out = transformer.transform(frame)
    names = list(transformer.get_feature_names_out())
    assert names == ["size", "age", "colour_red", "colour_green", "colour_blue"]
    assert out.dtype == np.float64 and not np.isnan(out).any()
    # Observed (non-imputed) values of a lognormal column become standard normal.
    observed = out[10:, 0]
    assert abs(observed.mean()) < 0.1 and abs(observed.std() - 1) < 0.15
    assert stats.skew(observed) == pytest.approx(0, abs=0.2)
    median_code = out[0, 0]  # row 0 was missing: imputed with the training median
    assert median_code == pytest.approx(0.0, abs=0.05)
    one_hot = out[:, 2:]
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    expected = pd.Series(frame["colour"]).fillna("red")  # "red" is the most frequent
    np.testing.assert_array_equal(one_hot.argmax(axis=1), expected.map({"red": 0, "green": 1, "blue": 2}))
    assert transformer.quantile_transformer_.n_quantiles_ == 200


def test_network_transform_ignores_unknown_categories_and_caps_quantiles(frame):
    transformer = NetworkFeatureTransformer(n_quantiles=1000).fit(frame.iloc[:50])
    assert transformer.quantile_transformer_.n_quantiles_ == 50  # never more than n_train
    new = frame.iloc[:3].copy()
    new["colour"] = pd.Categorical(["violet", "red", None], categories=["red", "violet"])
    out = transformer.transform(new)
    np.testing.assert_array_equal(out[0, 2:], 0.0)  # unknown: all-zero block
    assert out[1, 2:].sum() == 1.0 and out[2, 2:].sum() == 1.0  # missing: imputed


def test_tree_transform_keeps_numbers_and_codes_categories(frame):
    transformer = TreeFeatureTransformer().fit(frame)
    out = transformer.transform(frame)
    assert list(transformer.get_feature_names_out()) == ["size", "colour", "age"]
    np.testing.assert_array_equal(transformer.categorical_indices_, [1])
    np.testing.assert_array_equal(out[:, 0], frame["size"].to_numpy())  # NaN kept, bit-exact
    np.testing.assert_array_equal(out[:, 2], frame["age"].to_numpy())
    # Declared category order, restricted to categories seen in training.
    assert list(transformer.categories_[0]) == ["red", "green", "blue"]
    codes = pd.Series(frame["colour"]).map({"red": 0.0, "green": 1.0, "blue": 2.0})
    np.testing.assert_array_equal(out[:, 1], codes.to_numpy(dtype=np.float64))
    assert np.isnan(out[10:15, 1]).all()
    unknown = frame.iloc[:2].copy()
    unknown["colour"] = pd.Categorical(["violet", "blue"], categories=["violet", "blue"])
    np.testing.assert_array_equal(transformer.transform(unknown)[:, 1], [np.nan, 2.0])


def test_categorical_features_can_be_given_for_arrays():
    X = np.array([["a", 1.0], ["b", 2.0], ["a", np.nan]], dtype=object)
    tree = TreeFeatureTransformer(categorical_features=[0]).fit(X)
    np.testing.assert_array_equal(tree.transform(X), [[0.0, 1.0], [1.0, 2.0], [0.0, np.nan]])
    network = NetworkFeatureTransformer(categorical_features=[True, False]).fit(X)
    assert list(network.get_feature_names_out()) == ["x1", "x0_a", "x0_b"]
    with pytest.raises(ValueError, match="not a column index"):
        TreeFeatureTransformer(categorical_features=[5]).fit(X)
    with pytest.raises(ValueError, match="2 booleans for 3 features"):
        TreeFeatureTransformer(categorical_features=[True, False]).fit(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_quantiles must be an integer >= 1"):
        NetworkFeatureTransformer(n_quantiles=0).fit(np.zeros((2, 3)))


def _fitted_state(transformer) -> bytes:
    return pickle.dumps({k: v for k, v in vars(transformer).items() if k.endswith("_")})


@pytest.mark.parametrize("kind", ["network", "tree"])
def test_no_leakage_transforming_test_data_leaves_the_fit_alone(frame, kind):
    train, test = frame.iloc[:120], frame.iloc[120:].copy()
    transformer = (NetworkFeatureTransformer() if kind == "network" else TreeFeatureTransformer())
    transformer.fit(train)
    before = _fitted_state(transformer)
    reference = transformer.transform(train)
    test["size"] = test["size"] * 1000 + 5  # wildly different test data
    test["colour"] = pd.Categorical(["violet"] * len(test), categories=["violet"])
    transformer.transform(test)
    assert _fitted_state(transformer) == before
    np.testing.assert_array_equal(transformer.transform(train), reference)
    # Fitting on train + altered test gives another result: the fit only saw train.
    other = clone(transformer).fit(pd.concat([train, test]))
    assert not np.array_equal(other.transform(train), reference, equal_nan=True)


def test_prepare_data_depends_only_on_the_training_rows(frame):
    y = np.where(frame["age"] > 40, "old", "young")
    dataset = Dataset(source="toy", name="toy", X=frame, y=y, task="classification", target="y")
    split = make_split(dataset, 0)
    prepared = prepare_data(dataset, split, "network")
    altered_X = frame.copy()
    altered_X.loc[split.test, "size"] = 1e6
    altered = Dataset(source="toy", name="toy", X=altered_X, y=y, task="classification", target="y")
    again = prepare_data(altered, split, "network")
    np.testing.assert_array_equal(again.X_train, prepared.X_train)
    np.testing.assert_array_equal(again.X_valid, prepared.X_valid)
    assert not np.array_equal(again.X_test, prepared.X_test)


def test_prepare_data_regression_target_statistics_come_from_training_rows():
    dataset = load_dataset("sklearn:diabetes")
    split = make_split(dataset, 4)
    data = prepare_data(dataset, split, "network")
    np.testing.assert_array_equal(data.y_test, dataset.y[split.test])  # original units
    assert data.target_mean == pytest.approx(dataset.y[split.train].mean(), rel=1e-12)
    assert data.target_scale == pytest.approx(dataset.y[split.train].std(), rel=1e-12)
    scaled = data.scale_target(data.y_train)
    assert abs(scaled.mean()) < 1e-12 and scaled.std() == pytest.approx(1.0)
    np.testing.assert_allclose(data.unscale_target(scaled), data.y_train, rtol=1e-12)
    assert data.classes is None and data.categorical_features == []
    assert data.X_train.shape == (len(split.train), 10) and data.X_train.dtype == np.float64
    assert data.feature_names == list(dataset.X.columns)


def test_prepare_data_classification_codes_are_stable_across_splits():
    labels = np.array(["cat", "dog", "emu"] * 20 + ["yak"] * 3, dtype=object)
    X = pd.DataFrame({"x": np.arange(len(labels), dtype=np.float64)})
    dataset = Dataset(source="toy", name="toy", X=X, y=labels, task="classification", target="y")
    for seed in range(3):
        split = make_split(dataset, seed)
        data = prepare_data(dataset, split, "tree")
        assert list(data.classes) == ["cat", "dog", "emu", "yak"]
        for part, rows in (("y_train", split.train), ("y_test", split.test)):
            codes = getattr(data, part)
            assert codes.dtype == np.int64
            np.testing.assert_array_equal(data.classes[codes], labels[rows])
    assert data.target_mean is None
    with pytest.raises(ValueError, match="regression data only"):
        data.scale_target(np.zeros(3))


def test_prepare_data_tree_reports_categorical_columns(frame):
    dataset = Dataset(
        source="toy", name="toy", X=frame, y=frame["age"].to_numpy() * 2.0, task="regression",
        target="y",
    )
    data = prepare_data(dataset, make_split(dataset, 0), "tree")
    assert data.kind == "tree" and data.categorical_features == [1]
    assert np.isnan(data.X_train[:, 0]).any() or np.isnan(data.X_test[:, 0]).any()
    network = prepare_data(dataset, make_split(dataset, 0), "network")
    assert network.categorical_features == [] and not np.isnan(network.X_train).any()


def test_prepare_data_is_deterministic():
    dataset = load_dataset("sklearn:breast_cancer")
    split = make_split(dataset, 1)
    first, second = prepare_data(dataset, split, "network"), prepare_data(dataset, split, "network")
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.X_test, second.X_test)


def test_prepare_data_validates_its_arguments():
    dataset = load_dataset("sklearn:iris")
    split = make_split(dataset, 0)
    with pytest.raises(ValueError, match="kind must be one of"):
        prepare_data(dataset, split, "forest")
    with pytest.raises(TypeError, match="split must be a tabscope Split"):
        prepare_data(dataset, (split.train, split.valid, split.test), "tree")
    wine_split = make_split(load_dataset("sklearn:digits"), 0)
    with pytest.raises(ValueError, match="another dataset"):
        prepare_data(dataset, wine_split, "tree")
    broken = copy.copy(split)
    object.__setattr__(broken, "train", split.train.astype(np.float64))
    with pytest.raises(ValueError, match="integer row indices"):
        prepare_data(dataset, broken, "tree")
