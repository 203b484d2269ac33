"""scikit-learn ``HistGradientBoostingRegressor`` / ``Classifier`` as tree kernels.

Leaf values are ``-learning_rate * G / (H + l2_regularization)`` (``compute_node_value``
plus shrinkage), with ``h = 1`` for squared error and ``p (1 - p)`` for log-loss. The
estimator has no ``apply``, so leaf assignments come from a vectorised replica of its
predictor's traversal of raw (unbinned) inputs: numerical thresholds, ``missing_go_to_left``
for NaN, and the categorical bitsets, with negative or unknown categories treated as missing
exactly as ``_predictor.pyx`` does. The leaf-value check of the replay and the identity
against ``decision_function`` / ``predict`` verify the replica.

Automatic early stopping (``early_stopping='auto'`` on more than 10,000 rows, or ``True``)
holds out ``validation_fraction`` of the rows; the split is reproduced exactly from the
seed the estimator stored, and held-out rows get zero kernel weight. When ``fit`` was given
``X_val``/``y_val`` there is no split (every row is in bag), which the first tree's root
count tells apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split

from ._booster_adapter import BoosterAdapter, BoosterStructure, UnsupportedBoosterError

__all__ = ["HistGradientBoostingAdapter", "predictor_leaves"]

_LOSSES = ("squared_error", "log_loss")

# compute_node_value's guard against an empty denominator.
_DENOMINATOR_EPSILON = 1e-15

_BITS = 32  # bits per word of scikit-learn's categorical bitsets


def _unsupported(setting: str, why: str) -> UnsupportedBoosterError:
    return UnsupportedBoosterError(
        f"scikit-learn HistGradientBoosting {setting} is not supported by TreeLens: {why}"
    )


def _in_bitset(bitsets: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    words = bitsets[rows, values // _BITS]
    return ((words >> (values % _BITS).astype(np.uint32)) & 1).astype(bool)


def predictor_leaves(
    nodes: np.ndarray,
    raw_left_cat_bitsets: np.ndarray,
    known_cat_bitsets: np.ndarray,
    feature_index_map: np.ndarray,
    X: np.ndarray,
) -> np.ndarray:
    """Node index of the leaf each row of raw inputs ``X`` reaches in one tree.

    Parameters
    ----------
    nodes : structured ndarray
        ``TreePredictor.nodes``.
    raw_left_cat_bitsets : ndarray of shape (n_categorical_splits, 8)
        Categories sent left by each categorical split.
    known_cat_bitsets : ndarray of shape (n_categorical_features, 8)
        Categories seen in training, per categorical feature.
    feature_index_map : ndarray of shape (n_features,)
        Feature index to its row in ``known_cat_bitsets``.
    X : ndarray of shape (m, n_features)
        Preprocessed (``_preprocess_X``) float64 inputs.

    Returns
    -------
    leaves : ndarray of shape (m,)
    """
    m = X.shape[0]
    node = np.zeros(m, dtype=np.intp)
    is_leaf = nodes["is_leaf"].astype(bool)
    active = np.arange(m)
    while active.size:
        current = node[active]
        internal = ~is_leaf[current]
        active, current = active[internal], current[internal]
        if not active.size:
            break
        feature = nodes["feature_idx"][current]
        value = X[active, feature]
        missing = np.isnan(value)
        missing_left = nodes["missing_go_to_left"][current].astype(bool)
        with np.errstate(invalid="ignore"):
            go_left = value <= nodes["num_threshold"][current]
        categorical = nodes["is_categorical"][current].astype(bool) & ~missing
        if categorical.any():
            category = value[categorical]
            rows = current[categorical]
            # Categories are compared as uint8 bins; negative ones (and, here, ones beyond
            # the 256 a bitset holds) are treated as missing, unknown ones likewise.
            in_range = (category >= 0) & (category < 8 * _BITS)
            code = np.where(in_range, np.trunc(np.where(in_range, category, 0)), 0).astype(
                np.intp
            )
            sent_left = in_range & _in_bitset(raw_left_cat_bitsets, nodes["bitset_idx"][rows], code)
            known = in_range & _in_bitset(
                known_cat_bitsets, feature_index_map[feature[categorical]], code
            )
            go_left[categorical] = np.where(
                sent_left, True, np.where(known, False, missing_left[categorical])
            )
        go_left[missing] = missing_left[missing]
        node[active] = np.where(go_left, nodes["left"][current], nodes["right"][current])
    return node


class HistGradientBoostingAdapter(BoosterAdapter):
    """A fitted ``HistGradientBoostingRegressor`` or ``HistGradientBoostingClassifier``.

    Parameters
    ----------
    model : HistGradientBoostingRegressor or HistGradientBoostingClassifier
        The fitted estimator.
    target : ndarray of shape (n,)
        Its training targets or class codes (needed to reproduce the early-stopping split).

    Raises
    ------
    ValueError
        For a loss other than squared error / log-loss, class weights or monotonic
        constraints.
    """

    def __init__(self, model: Any, target: np.ndarray):
        if not isinstance(model.loss, str) or model.loss not in _LOSSES:
            raise _unsupported(
                f"loss={model.loss!r}",
                f"supported losses are {list(_LOSSES)}",
            )
        class_weight = getattr(model, "class_weight", None)
        if class_weight is not None:
            raise _unsupported(
                f"class_weight={class_weight!r}",
                "it reweights the examples; weighted training is not supported",
            )
        constraints = model.monotonic_cst
        if isinstance(constraints, dict):
            constraints = list(constraints.values())
        if constraints is not None and np.any(np.asarray(constraints) != 0):
            raise _unsupported(
                f"monotonic_cst={model.monotonic_cst!r}",
                "monotonic constraints clip leaf values (non-linear in the gradients)",
            )
        learning_rate = float(model.learning_rate)
        l2 = float(model.l2_regularization) + _DENOMINATOR_EPSILON
        predictors = [tree for iteration in model._predictors for tree in iteration]
        n_rounds = len(model._predictors)
        n_outputs = int(model.n_trees_per_iteration_)
        values, sizes = [], []
        for predictor in predictors:
            tree_values = predictor.nodes["value"].astype(np.float64)
            tree_values[~predictor.nodes["is_leaf"].astype(bool)] = np.nan
            values.append(tree_values)
            sizes.append(len(tree_values))
        node_values = np.concatenate(values)
        self.model = model
        self.predictors = predictors
        self.baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
        self.in_bag_mask = self._reproduce_training_rows(model, np.asarray(target))
        self.structure = BoosterStructure(
            library="sklearn",
            loss="log_loss" if is_classifier(model) else "squared_error",
            n_outputs=n_outputs,
            n_rounds=n_rounds,
            node_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            node_values=node_values,
            node_l2=np.full(node_values.shape, l2),
            unit_scale=np.full(n_rounds * n_outputs, learning_rate),
            # A root too small to split keeps the value 0 it was created with.
            unit_active=np.array([len(p.nodes) > 1 for p in predictors], dtype=bool),
            metadata={
                "estimator": type(model).__name__,
                "learning_rate": learning_rate,
                "l2_regularization": float(model.l2_regularization),
                "early_stopping_holdout": int((~self.in_bag_mask).sum()),
            },
        )

    @staticmethod
    def _reproduce_training_rows(model: Any, target: np.ndarray) -> np.ndarray:
        """The rows the trees were grown on: all, unless early stopping held some out."""
        in_bag = np.ones(len(target), dtype=bool)
        if not model.do_early_stopping_ or model.validation_fraction is None:
            return in_bag
        # A validation set passed to fit (X_val, y_val) replaces the split, and the model
        # keeps no flag saying so; the first tree's root counts the rows it was grown on.
        if int(model._predictors[0][0].nodes["count"][0]) == len(target):
            return in_bag
        # HistGradientBoosting splits with train_test_split on its stored seed, stratified
        # by the encoded classes for classifiers; the split depends only on n, the strata
        # and the seed, so splitting row indices reproduces it.
        stratify = target if is_classifier(model) else None
        train_rows, _ = train_test_split(
            np.arange(len(target)),
            test_size=model.validation_fraction,
            stratify=stratify,
            random_state=model._random_seed,
        )
        in_bag[:] = False
        in_bag[train_rows] = True
        return in_bag

    def in_bag(self, target: np.ndarray) -> np.ndarray:
        return self.in_bag_mask

    def leaf_nodes(self, X: Any) -> np.ndarray:
        X_raw = np.asarray(self.model._preprocess_X(X, reset=False), dtype=np.float64)
        known_bitsets, feature_map = self.model._bin_mapper.make_known_categories_bitsets()
        offsets = self.structure.node_offsets
        leaves = np.empty((X_raw.shape[0], len(self.predictors)), dtype=np.int64)
        for u, predictor in enumerate(self.predictors):
            leaves[:, u] = offsets[u] + predictor_leaves(
                predictor.nodes,
                predictor.raw_left_cat_bitsets,
                known_bitsets,
                feature_map,
                X_raw,
            )
        return leaves

    def initial_prediction(self, X: Any) -> np.ndarray:
        n_rows = int(X.shape[0]) if hasattr(X, "shape") else len(X)
        return np.tile(self.baseline, (n_rows, 1))

    def raw_prediction(self, X: Any) -> np.ndarray:
        if is_classifier(self.model):
            return np.asarray(self.model.decision_function(X), dtype=np.float64)
        return np.asarray(self.model.predict(X), dtype=np.float64)
