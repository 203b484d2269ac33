"""Column roles (docs/design.md §3): identifiers dropped, text encoded, dates made numeric."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from titanic_like import titanic_like

from tabscope.datasets import (
    ColumnRole,
    DatasetError,
    dataset_from_frame,
    describe_preprocessing,
    load_dataset,
    make_split,
    prepare_data,
)
from tabscope.datasets.roles import MAX_CATEGORIES, TEXT_COMPONENTS


def _roles(dataset) -> dict[str, str]:
    return {e["column"]: e["role"] for e in dataset.metadata["column_roles"]["columns"]}


@pytest.fixture(scope="module")
def titanic_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("titanic") / "train.csv"
    titanic_like().to_csv(path, index=False)
    return path


def test_titanic_roles_drop_the_row_id_and_encode_the_high_cardinality_text(titanic_file):
    dataset = load_dataset(f"file:{titanic_file}?target=Survived")
    roles = _roles(dataset)
    assert roles["PassengerId"] == ColumnRole.DROPPED
    assert "row counter" in dataset.metadata["column_roles"]["dropped"]["PassengerId"]
    assert {roles[c] for c in ("Name", "Ticket", "Cabin")} == {ColumnRole.TEXT}
    assert roles["Sex"] == roles["Embarked"] == ColumnRole.CATEGORICAL
    assert roles["Age"] == roles["Fare"] == roles["Pclass"] == ColumnRole.NUMERIC
    assert "PassengerId" not in dataset.X.columns
    json.dumps(dataset.metadata["column_roles"])  # plain data, ready for the store


def test_titanic_inputs_are_narrow_for_networks_and_low_cardinality_for_boosters(titanic_file):
    dataset = load_dataset(f"file:{titanic_file}?target=Survived")
    split = make_split(dataset, 1)
    description = describe_preprocessing(dataset, split)
    assert description["network"]["input_width"] < 50
    assert description["network"]["width_by_column"]["Name"] == TEXT_COMPONENTS
    levels = description["tree"]["categorical_features"]
    assert levels == {"Sex": 2, "Embarked": 3}
    assert max(levels.values()) < MAX_CATEGORIES
    tree = prepare_data(dataset, split, "tree")
    assert [tree.feature_names[i] for i in tree.categorical_features] == ["Sex", "Embarked"]
    assert description["columns_before"] == 11 and description["columns_after"] == 10
    assert description["dropped"] == {"PassengerId": dataset.metadata["column_roles"]["dropped"][
        "PassengerId"]}
    json.dumps(description)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_titanic_every_model_beats_the_majority_class(titanic_file, seed):
    from tabscope.models.registry import get_model_spec

    dataset = load_dataset(f"file:{titanic_file}?target=Survived")
    split = make_split(dataset, seed)
    codes = np.unique(dataset.y, return_inverse=True)[1]
    majority = np.bincount(codes[split.test]).max() / len(split.test)
    for name in ("mlp", "xgboost", "lightgbm", "sklearn-hgb"):
        spec = get_model_spec(name)
        data = prepare_data(dataset, split, spec.preprocessing)
        model = spec.build(dataset.task, {}, random_state=seed).fit(data.X_train, data.y_train)
        accuracy = float(np.mean(model.predict(data.X_test) == data.y_test))
        assert accuracy >= majority, (name, seed, accuracy, majority)


def test_text_encoding_is_fitted_on_training_rows_only(titanic_file):
    dataset = load_dataset(f"file:{titanic_file}?target=Survived")
    split = make_split(dataset, 0)
    first = prepare_data(dataset, split, "network")
    # Changing test rows' text leaves the fitted encoders (hence the training inputs) alone.
    frame = dataset.X.copy()
    frame["Name"] = frame["Name"].astype(object)
    frame.loc[split.test, "Name"] = "Zzyzx, Qq. Vvv"
    frame["Name"] = frame["Name"].astype("category")
    changed = type(dataset)(**{**dataset.__dict__, "X": frame})
    second = prepare_data(changed, split, "network")
    np.testing.assert_array_equal(first.X_train, second.X_train)
    assert not np.array_equal(first.X_test, second.X_test)


def test_user_roles_override_the_rules(titanic_file):
    source = (f"file:{titanic_file}?target=Survived&drop=Name,Cabin&categorical=Pclass"
              "&keep=PassengerId")
    dataset = load_dataset(source)
    roles = _roles(dataset)
    assert roles["Name"] == roles["Cabin"] == ColumnRole.DROPPED
    assert dataset.metadata["column_roles"]["dropped"]["Name"] == "requested (drop=)"
    assert roles["Pclass"] == ColumnRole.CATEGORICAL
    assert isinstance(dataset.X["Pclass"].dtype, pd.CategoricalDtype)
    assert roles["PassengerId"] == ColumnRole.NUMERIC
    # categorical= wins over the high-cardinality rule: the user asked for categories
    wide = load_dataset(f"file:{titanic_file}?target=Survived&categorical=Cabin")
    assert _roles(wide)["Cabin"] == ColumnRole.CATEGORICAL


def test_dates_become_numeric_parts_and_codes_identifiers():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "order": [f"ORD-{k:05d}" for k in rng.permutation(n)],
        "when": pd.date_range("2021-01-01", periods=n, freq="37h").strftime("%Y-%m-%d %H:%M"),
        "stamp": pd.date_range("2020-03-01", periods=n, freq="D"),
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
    })
    dataset = dataset_from_frame(frame, "y", name="orders")
    roles = _roles(dataset)
    assert roles == {"order": "dropped", "when": "date", "stamp": "date", "x": "numeric"}
    dates = dataset.metadata["column_roles"]["dates"]
    assert {"when_year", "when_month", "when_day", "when_hour", "when_weekday",
            "when_total_seconds"} == set(dates["when"])
    assert "stamp_hour" not in dates["stamp"]  # midnight everywhere: no hour part
    assert all(dataset.X[c].dtype == np.float64 for c in dates["when"])
    assert dataset.X["when_year"].iloc[0] == 2021.0


def test_free_text_is_not_an_identifier_but_single_codes_are():
    n = 100
    frame = pd.DataFrame({
        "email": [f"user{k}@example.org" for k in range(n)],
        "comment": [f"customer {k} says item {k % 7} arrived late" for k in range(n)],
        "y": np.arange(n) % 2,
    })
    roles = _roles(dataset_from_frame(frame, "y"))
    assert roles == {"email": "dropped", "comment": "text"}


def test_continuous_numbers_distinct_on_every_row_are_kept():
    n = 100
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"length": rng.normal(size=n), "count": rng.permutation(n) * 3 + 7,
                          "y": rng.normal(size=n)})
    roles = _roles(dataset_from_frame(frame, "y"))
    assert roles == {"length": "numeric", "count": "numeric"}


def test_numeric_only_tables_keep_their_columns_and_numbers():
    dataset = load_dataset("sklearn:diabetes")
    roles = dataset.metadata["column_roles"]
    assert roles["dropped"] == {} and roles["text"] == [] and roles["dates"] == {}
    assert roles["columns_before"] == roles["columns_after"] == 10
    split = make_split(dataset, 0)
    data = prepare_data(dataset, split, "network")
    assert data.text_encoder is None and data.X_train.shape[1] == 10


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("drop=Nope", "drop= names column 'Nope'"),
        ("categorical=Nope", "categorical= names column 'Nope'"),
        ("drop=Sex&keep=Sex", "'Sex' is in both drop= and keep="),
    ],
)
def test_bad_role_names_are_one_line_errors(titanic_file, query, message):
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset(f"file:{titanic_file}?target=Survived&{query}")
    assert "\n" not in str(error.value)


def test_every_feature_dropped_is_an_error_naming_the_columns(tmp_path):
    path = tmp_path / "ids.csv"
    pd.DataFrame({"id": np.arange(1, 51), "code": [f"K{k:04d}" for k in range(50)],
                  "y": np.arange(50) % 2}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="every feature column was dropped") as error:
        load_dataset(f"file:{path}?target=y")
    assert "id: identifier" in str(error.value) and "code: identifier" in str(error.value)
    assert "\n" not in str(error.value)
    kept = load_dataset(f"file:{path}?target=y&keep=id")
    assert list(kept.X.columns) == ["id"]
