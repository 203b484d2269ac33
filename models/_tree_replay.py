"""Replaying a fitted booster on its training set: per-round gradients, hessians, weights.

:func:`fit_tree_kernel` replays the boosting on the training set to recover the per-round
gradients and hessians exactly as the library used them, and checks that the Newton steps it
recomputes reproduce the library's own leaf values before anything is returned
(docs/design.md §1.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax

from tabscope.vocabulary import Loss

from ._booster_adapter import BoosterAdapter, BoosterStructure

__all__ = ["TreeKernel", "fit_tree_kernel", "loss_derivatives"]

# Leaf values whose recomputed Newton step deviates by more than this fraction of the tree's
# largest leaf value mean the booster was not trained the way the lens assumes. Float32
# gradients and leaf values (XGBoost, LightGBM, HistGradientBoosting) stay below ~1e-5.
LEAF_VALUE_RTOL = 1e-3

# A Newton denominator below this (times the leaf's row count) gives a zero leaf, as
# scikit-learn's GradientBoosting does for saturated log-loss leaves.
_TINY_DENOMINATOR = 1e-150


@dataclass(frozen=True, eq=False)
class TreeKernel:
    """What the kernel of a fitted booster needs from its training set.

    Attributes
    ----------
    adapter : BoosterAdapter
        The booster.
    train_nodes : ndarray of shape (n, T * K)
        Global leaf node id of each training example in each tree.
    gradients, hessians : ndarray of shape (n, T, K)
        ``g_itk`` and ``h_itk``: loss derivatives at the raw prediction before round ``t``,
        exactly as the library used them.
    in_bag : ndarray of shape (n,)
        Training rows the trees were grown on.
    node_counts : ndarray of shape (n_nodes,)
        In-bag training rows per node.
    node_weights : ndarray of shape (n_nodes,)
        ``s_u / (H_l + lambda_l)``: the kernel weight ``eta K^tree`` every in-bag training
        row of leaf ``l`` receives from an evaluation point in that leaf (0 for empty leaves).
    """

    adapter: BoosterAdapter
    train_nodes: np.ndarray
    gradients: np.ndarray
    hessians: np.ndarray
    in_bag: np.ndarray
    node_counts: np.ndarray
    node_weights: np.ndarray

    @property
    def structure(self) -> BoosterStructure:
        """The booster's :class:`BoosterStructure`."""
        return self.adapter.structure

    @property
    def n_train(self) -> int:
        """Number of training examples ``n``."""
        return int(self.train_nodes.shape[0])

    def coefficients(self) -> np.ndarray:
        """``a_iu = -w_{l_u(i)} g_iu`` for in-bag rows (0 otherwise), shape (n, T * K).

        Training example ``i`` contributes ``a_iu`` to every evaluation point sharing its
        leaf in tree ``u``.
        """
        n = self.n_train
        gradients = self.gradients.reshape(n, -1)
        coefficients = -self.node_weights[self.train_nodes] * gradients
        coefficients[~self.in_bag] = 0.0
        return coefficients


def loss_derivatives(
    loss: str,
    raw: np.ndarray,
    target: np.ndarray,
    hessian_factor: float = 1.0,
    hessian_floor: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and hessian of the training loss at raw predictions.

    Parameters
    ----------
    loss : {"squared_error", "log_loss"}
    raw : ndarray of shape (n, K)
        Raw predictions (margins).
    target : ndarray of shape (n,)
        Regression targets, or class codes ``0..K-1`` (``0/1`` when ``K == 1``).
    hessian_factor, hessian_floor : float
        Library conventions for the log-loss hessian ``max(factor * p (1 - p), floor)``.

    Returns
    -------
    gradient, hessian : ndarray of shape (n, K)
    """
    if loss == Loss.SQUARED_ERROR:
        return raw - target[:, None], np.ones_like(raw)
    if raw.shape[1] == 1:
        probability = expit(raw)
        gradient = probability - target[:, None]
    else:
        probability = softmax(raw, axis=1)
        gradient = probability.copy()
        gradient[np.arange(len(target)), target] -= 1.0
    hessian = hessian_factor * probability * (1.0 - probability)
    if hessian_floor > 0:
        np.maximum(hessian, hessian_floor, out=hessian)
    return gradient, hessian


def fit_tree_kernel(adapter: BoosterAdapter, X: Any, target: np.ndarray) -> TreeKernel:
    """Replay a fitted booster on its training set and keep what its kernel needs.

    Parameters
    ----------
    adapter : BoosterAdapter
        The fitted booster.
    X : array-like of shape (n, d)
        The training inputs, in the form the booster accepts.
    target : ndarray of shape (n,)
        Regression targets (float) or class codes (int, ``0..K-1``).

    Returns
    -------
    TreeKernel

    Raises
    ------
    ValueError
        If the Newton steps recomputed from ``X`` and ``target`` do not reproduce the
        booster's leaf values (another training set, sample weights, an initial margin, or a
        setting that changes the leaf formula).
    """
    structure = adapter.structure
    n, T, K = len(target), structure.n_rounds, structure.n_outputs
    train_nodes = _compact_ids(adapter.leaf_nodes(X), structure.n_nodes)
    if train_nodes.shape != (n, T * K):
        raise ValueError(
            f"X has {train_nodes.shape[0]} rows but the target has {n}"
        )
    dtype = np.dtype(structure.margin_dtype)
    raw = np.array(adapter.initial_prediction(X), dtype=dtype).reshape(n, K)
    leaf_values = structure.node_values[train_nodes].reshape(n, T, K).astype(dtype)
    replay_target = target.astype(dtype) if structure.loss == Loss.SQUARED_ERROR else target
    gradients = np.empty((n, T, K))
    hessians = np.empty((n, T, K))
    for t in range(T):
        gradients[:, t], hessians[:, t] = loss_derivatives(
            structure.loss,
            raw,
            replay_target,
            structure.hessian_factor,
            structure.hessian_floor,
        )
        raw += leaf_values[:, t]

    in_bag = np.asarray(adapter.in_bag(target), dtype=bool)
    bag_nodes = train_nodes[in_bag].ravel()
    n_nodes = structure.n_nodes

    def leaf_sums(values: np.ndarray | None) -> np.ndarray:
        weights = None if values is None else values[in_bag].ravel()
        return np.bincount(bag_nodes, weights=weights, minlength=n_nodes)

    node_counts = leaf_sums(None)
    gradient_sums = leaf_sums(gradients)
    denominators = leaf_sums(hessians) + structure.node_l2
    node_scale = np.repeat(structure.unit_scale, np.diff(structure.node_offsets))
    node_active = np.repeat(structure.unit_active, np.diff(structure.node_offsets))
    usable = node_active & (node_counts > 0) & (denominators > _TINY_DENOMINATOR * node_counts)
    node_weights = np.zeros(n_nodes)
    node_weights[usable] = node_scale[usable] / denominators[usable]
    # Size of the leaf value before the gradients cancel: float rounding scales with it.
    gradient_scale = node_weights * leaf_sums(np.abs(gradients))
    _check_leaf_values(structure, node_counts, -node_weights * gradient_sums, gradient_scale)
    return TreeKernel(
        adapter=adapter,
        train_nodes=train_nodes,
        gradients=gradients,
        hessians=hessians,
        in_bag=in_bag,
        node_counts=node_counts,
        node_weights=node_weights,
    )


def _compact_ids(nodes: np.ndarray, n_nodes: int) -> np.ndarray:
    dtype = np.int32 if n_nodes < np.iinfo(np.int32).max else np.int64
    return np.ascontiguousarray(nodes, dtype=dtype)


def _check_leaf_values(
    structure: BoosterStructure,
    node_counts: np.ndarray,
    newton_values: np.ndarray,
    gradient_scale: np.ndarray,
) -> None:
    """Raise unless the recomputed Newton steps reproduce the library's leaf values.

    A leaf may deviate by ``LEAF_VALUE_RTOL`` of the larger of its tree's largest leaf
    value and its own ``s sum_i |g_i| / (H + lambda)`` (what float rounding of cancelling
    gradients can reach); trees the library left constant must add nothing.
    """
    reached = node_counts > 0
    library_values = structure.node_values
    if np.any(np.isnan(library_values[reached])):
        raise ValueError(
            "training rows reach internal nodes of the booster: its leaf assignments are "
            "inconsistent with its tree structure"
        )
    units = structure.node_unit()
    magnitude = np.where(reached, np.abs(library_values), 0.0)
    unit_magnitude = np.zeros(structure.n_units)
    np.maximum.at(unit_magnitude, units, magnitude)
    scale = np.maximum(unit_magnitude[units], gradient_scale)
    deviation = np.where(reached, np.abs(newton_values - library_values), 0.0)
    relative = np.zeros_like(deviation)
    np.divide(deviation, scale, out=relative, where=scale > 0)
    # A deviation where both scales vanish (a constant tree that is not zero) is total.
    relative[(scale == 0) & (deviation > 0)] = np.inf
    if relative.size and relative.max() > LEAF_VALUE_RTOL:
        worst = int(np.argmax(relative))
        t, k = divmod(int(units[worst]), structure.n_outputs)
        raise ValueError(
            f"the {structure.library} booster's leaf values are not the Newton steps "
            f"recomputed from X_train and y_train (relative deviation {relative[worst]:.3g} "
            f"in round {t + 1}, output {k}): the lens needs the exact, unweighted training "
            "set the booster was fitted on, no sample weights or initial margins, and only "
            "settings whose leaves are linear in the gradients"
        )

