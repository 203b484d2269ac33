"""Seeded, stratified, capped train / validation / test splits."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd
import pytest

from tabscope.datasets import Dataset, Split, load_dataset, make_split
from tabscope.datasets.splits import split_hash


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("sklearn:digits")


@pytest.fixture(scope="module")
def diabetes() -> Dataset:
    return load_dataset("sklearn:diabetes")


def _toy(labels, task="classification") -> Dataset:
    y = np.asarray(labels)
    X = pd.DataFrame({"x": np.arange(len(y), dtype=np.float64)})
    return Dataset(source="toy", name="toy", X=X, y=y, task=task, target="y")


def test_parts_are_disjoint_sorted_cover_the_rows_and_have_the_requested_sizes(digits):
    split = make_split(digits, 3)
    n = digits.n_samples
    everything = np.concatenate([split.train, split.valid, split.test])
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    for part in (split.train, split.valid, split.test):
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)
    assert len(split.test) == round(0.2 * n) and len(split.valid) == round(0.1 * n)
    assert split.seed == 3 and split.stratified and split.note is None


def test_same_seed_same_split_other_seed_other_split(digits):
    first, again, other = make_split(digits, 11), make_split(digits, 11), make_split(digits, 12)
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.hash == again.hash
    assert first.hash != other.hash
    assert not np.array_equal(first.test, other.test)


def test_hash_is_sha256_of_the_index_arrays(digits):
    split = make_split(digits, 0)
    assert split.hash == split_hash(split.train, split.valid, split.test)
    assert len(split.hash) == 64 and int(split.hash, 16) >= 0
    # Moving one row from valid to train changes the hash even though the union does not.
    moved = split_hash(np.sort(np.append(split.train, split.valid[0])), split.valid[1:], split.test)
    assert moved != split.hash
    digest = hashlib.sha256()
    for name, part in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        digest.update(name.encode() + np.int64(part.size).tobytes() + part.astype("<i8").tobytes())
    assert digest.hexdigest() == split.hash


def test_classification_parts_keep_the_class_proportions(digits):
    split = make_split(digits, 5)
    overall = np.bincount(digits.y) / digits.n_samples
    for part in (split.train, split.valid, split.test):
        share = np.bincount(digits.y[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.02


def test_regression_split_is_not_stratified(diabetes):
    split = make_split(diabetes, 0, test_size=0.25, valid_size=40)
    assert not split.stratified
    assert len(split.test) == round(0.25 * 442) and len(split.valid) == 40


def test_training_part_is_capped_by_a_stratified_subsample(digits):
    split = make_split(digits, 2, max_train=300)
    assert len(split.train) == 300
    counts = np.bincount(digits.y[split.train], minlength=10)
    assert counts.min() >= 28 and counts.max() <= 32
    uncapped = make_split(digits, 2, max_train=None)
    np.testing.assert_array_equal(uncapped.test, split.test)
    assert set(split.train) < set(uncapped.train)


def test_a_class_too_small_to_divide_falls_back_with_a_reason(caplog):
    dataset = _toy(["a"] * 30 + ["b"] * 30 + ["c"])
    with caplog.at_level(logging.WARNING, logger="tabscope.datasets"):
        split = make_split(dataset, 0)
    assert not split.stratified
    assert "single row" in split.note and "without stratification" in split.note
    assert any("single row" in record.getMessage() for record in caplog.records)
    assert sorted(np.concatenate([split.train, split.valid, split.test]).tolist()) == list(range(61))
    balanced = make_split(_toy(["a"] * 30 + ["b"] * 30), 0)
    assert balanced.stratified and balanced.note is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seed": -1}, ValueError, "seed must be an integer"),
        ({"seed": 1.5}, ValueError, "seed must be an integer"),
        ({"seed": True}, ValueError, "seed must be an integer"),
        ({"seed": 0, "test_size": 1.0}, ValueError, "test_size must be a float in"),
        ({"seed": 0, "test_size": "big"}, TypeError, "test_size must be a float in"),
        ({"seed": 0, "valid_size": 0}, ValueError, "valid_size must be between 1 and"),
        ({"seed": 0, "max_train": 1}, ValueError, "max_train must be an integer >= 2"),
        ({"seed": 0, "test_size": 0.5, "valid_size": 0.499}, ValueError, "too few"),
    ],
)
def test_bad_arguments_are_named(diabetes, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_split(diabetes, **kwargs)


def test_split_needs_a_dataset():
    with pytest.raises(TypeError, match="dataset must be a tabscope Dataset"):
        make_split(pd.DataFrame({"a": [1, 2]}), 0)


def test_official_splits_are_used_modulo_their_number():
    labels = np.array(["a", "b"] * 20)
    folds = np.arange(40) % 4
    official = tuple((np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(4))
    dataset = Dataset(
        source="toy-task", name="toy", X=pd.DataFrame({"x": np.arange(40.0)}), y=labels,
        task="classification", target="y", official_splits=official,
    )
    for seed in (1, 5, 9):
        split = make_split(dataset, seed, valid_size=4)
        assert split.official_split == 1
        np.testing.assert_array_equal(split.test, official[1][1])
        assert len(split.valid) == 4 and set(split.valid) <= set(official[1][0])
        assert set(split.train) | set(split.valid) == set(official[1][0])
    assert isinstance(split, Split)
