"""scikit-learn ``GradientBoostingRegressor`` / ``GradientBoostingClassifier`` as tree kernels.

Each stage fits a regression tree to the negative gradient and then replaces its leaf values
by a Newton step (docs/design.md §1.4), applied with the learning rate:

- squared error: the leaf mean of ``y - f``, i.e. ``-G / n_l`` (``h = 1``, no L2);
- binary log-loss: ``-G / H`` with ``h = p (1 - p)``;
- multiclass log-loss: ``-(K - 1) / K * G / H`` per class tree (Friedman's factor,
  kept by scikit-learn), which the lens carries in the tree's scale.

The initial prediction is the ``init`` estimator's raw score (``_raw_predict_init``), which
need not be constant. Leaf assignments come from ``apply``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier

from ._booster_adapter import BoosterAdapter, BoosterStructure, UnsupportedBoosterError

__all__ = ["GradientBoostingAdapter"]

_LOSSES = ("squared_error", "log_loss")


def _unsupported(setting: str, why: str) -> UnsupportedBoosterError:
    return UnsupportedBoosterError(
        f"scikit-learn GradientBoosting {setting} is not supported by TreeLens: {why}"
    )


class GradientBoostingAdapter(BoosterAdapter):
    """A fitted ``GradientBoostingRegressor`` or ``GradientBoostingClassifier``.

    Parameters
    ----------
    model : GradientBoostingRegressor or GradientBoostingClassifier
        The fitted estimator.
    target : ndarray of shape (n,), optional
        Its training targets; not needed (the init estimator is part of the model).

    Raises
    ------
    ValueError
        For a loss other than squared error / log-loss, ``subsample < 1`` or early stopping
        (``n_iter_no_change``), which holds out rows.
    """

    def __init__(self, model: Any, target: np.ndarray | None = None):
        if model.loss not in _LOSSES:
            raise _unsupported(
                f"loss={model.loss!r}",
                f"supported losses are {list(_LOSSES)}; other losses' leaves are not "
                "Newton steps of their gradients",
            )
        if model.subsample < 1.0:
            raise _unsupported(
                f"subsample={model.subsample:g}",
                "the rows each tree saw are not recorded (row subsampling hides S_t)",
            )
        if model.n_iter_no_change is not None:
            raise _unsupported(
                f"n_iter_no_change={model.n_iter_no_change} (early stopping)",
                f"it holds out validation_fraction={model.validation_fraction:g} of the rows",
            )
        estimators = model.estimators_[: model.n_estimators_]
        n_rounds, n_outputs = estimators.shape
        learning_rate = float(model.learning_rate)
        scale = learning_rate
        if n_outputs > 1:
            # Multiclass leaves carry Friedman's (K - 1) / K factor.
            scale *= (n_outputs - 1) / n_outputs
        values, sizes = [], []
        for tree in estimators.ravel():  # round-major: estimators_[t, k]
            tree_values = learning_rate * tree.tree_.value[:, 0, 0].astype(np.float64)
            tree_values[tree.tree_.children_left != -1] = np.nan
            values.append(tree_values)
            sizes.append(len(tree_values))
        node_values = np.concatenate(values)
        self.model = model
        self.n_units = n_rounds * n_outputs
        self.structure = BoosterStructure(
            library="sklearn",
            loss="log_loss" if is_classifier(model) else "squared_error",
            n_outputs=n_outputs,
            n_rounds=n_rounds,
            node_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            node_values=node_values,
            node_l2=np.zeros_like(node_values),
            unit_scale=np.full(self.n_units, scale),
            metadata={
                "estimator": type(model).__name__,
                "learning_rate": learning_rate,
                "leaf_factor": scale / learning_rate,
            },
        )

    def leaf_nodes(self, X: Any) -> np.ndarray:
        leaves = np.asarray(self.model.apply(X)).reshape(-1, self.n_units)
        return leaves.astype(np.int64) + self.structure.node_offsets[:-1]

    def initial_prediction(self, X: Any) -> np.ndarray:
        # The init estimator's raw score, as the booster itself starts from it.
        return np.asarray(self.model._raw_predict_init(X), dtype=np.float64)

    def raw_prediction(self, X: Any) -> np.ndarray:
        if is_classifier(self.model):
            return np.asarray(self.model.decision_function(X), dtype=np.float64)
        return np.asarray(self.model.predict(X), dtype=np.float64)
