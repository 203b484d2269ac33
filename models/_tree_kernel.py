"""Kernel form of a fitted gradient-boosted ensemble (DESIGN.md 1.4-1.6).

Round ``t`` of a boosted ensemble adds, for each output ``k``, one tree whose leaf values are
Newton steps over the rows that reach the leaf::

    v_l = -s_t * sum_{i in l} g_itk / (sum_{i in l} h_itk + lambda_l)

with ``s_t`` the library's shrinkage (and any constant factor it applies). Training example
``i``'s share of that value is ``-s_t g_itk / (H_l + lambda_l)``; summing those shares over the
rounds gives the contribution matrix of a :class:`~tabscope.models.KernelView`.

This module is library-agnostic. A :class:`BoosterAdapter` (one per library, in the
``_*_lens`` modules) describes a fitted booster in a normalised form: for every tree ("unit"
``u = t * K + k``, round-major) its nodes, the value each leaf adds to the raw prediction and
the Newton denominator's constants, plus functions returning leaf assignments and the initial
prediction. :func:`fit_tree_kernel` replays the boosting on the training set to recover the
per-round gradients and hessians, and checks that the Newton steps it recomputes reproduce
the library's own leaf values before anything is returned. :func:`build_kernel_view` then
aggregates per leaf, so predictions and kernel norms cost ``O(T (n + m))`` per output and
the contribution matrix is formed in memory-bounded blocks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax

from .kernel_view import KernelView

__all__ = [
    "BoosterAdapter",
    "BoosterStructure",
    "TreeKernel",
    "build_kernel_view",
    "fit_tree_kernel",
    "round_kernel_weights",
]

SUPPORTED_LOSSES = ("squared_error", "log_loss")

# Leaf values whose recomputed Newton step deviates by more than this fraction of the tree's
# largest leaf value mean the booster was not trained the way the lens assumes. Float32
# gradients and leaf values (XGBoost, LightGBM, HistGradientBoosting) stay below ~1e-5.
LEAF_VALUE_RTOL = 1e-3

# Nonzeros allowed in one sparse intermediate product (about 50 MB with its indices).
DEFAULT_BLOCK_NONZEROS = 1 << 22

# Multi-output L1 kernel norms count leaf-match patterns (2^K per round) up to this K and
# use a sparse product beyond it.
MAX_OUTPUTS_FOR_SUBSET_COUNTS = 6

# A Newton denominator below this (times the leaf's row count) gives a zero leaf, as
# scikit-learn's GradientBoosting does for saturated log-loss leaves.
_TINY_DENOMINATOR = 1e-150


@dataclass(frozen=True, eq=False)
class BoosterStructure:
    """The trees of a fitted booster, in the form the kernel needs.

    Trees ("units") are ordered round-major: unit ``u = t * n_outputs + k`` is the tree of
    round ``t`` for output ``k``. Node ids are global: unit ``u`` owns the ids
    ``node_offsets[u]:node_offsets[u + 1]``.

    Attributes
    ----------
    library : str
        Name of the boosting library.
    loss : {"squared_error", "log_loss"}
        Training loss.
    n_outputs : int
        Outputs ``K`` of the raw prediction (1 for regression and binary classification).
    n_rounds : int
        Boosting rounds ``T``.
    node_offsets : ndarray of shape (T * K + 1,)
        Start of each unit's node ids.
    node_values : ndarray of shape (n_nodes,)
        Value a leaf adds to the raw prediction (shrinkage included, any initial score the
        library folds into the first trees removed); NaN for internal nodes.
    node_l2 : ndarray of shape (n_nodes,)
        L2 regularisation ``lambda_l`` in each leaf's Newton denominator.
    unit_scale : ndarray of shape (T * K,)
        ``s_u`` in ``v_l = -s_u G_l / (H_l + lambda_l)``: the shrinkage times any constant
        factor the library applies to the Newton step.
    hessian_factor : float
        Constant multiplying ``p (1 - p)`` in the log-loss hessian the library uses.
    hessian_floor : float
        Lower bound the library puts on each hessian (XGBoost's ``1e-16``), 0 if none.
    unit_active : ndarray of shape (T * K,), optional
        False for trees the library left constant instead of taking a Newton step (a root
        it could not split); their kernel weights are zero. All True by default.
    margin_dtype : numpy dtype, default=float64
        Precision in which the library accumulates raw predictions and computes gradients
        during training (XGBoost: float32). The replay does the same, so its gradients
        carry the library's own rounding rather than drifting from it over many rounds.
    metadata : dict
        Library-specific description, copied into each KernelView.
    """

    library: str
    loss: str
    n_outputs: int
    n_rounds: int
    node_offsets: np.ndarray
    node_values: np.ndarray
    node_l2: np.ndarray
    unit_scale: np.ndarray
    hessian_factor: float = 1.0
    hessian_floor: float = 0.0
    unit_active: np.ndarray | None = None
    margin_dtype: Any = np.float64
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.loss not in SUPPORTED_LOSSES:
            raise ValueError(f"loss must be one of {SUPPORTED_LOSSES}, got {self.loss!r}")
        n_units = self.n_rounds * self.n_outputs
        if self.node_offsets.shape != (n_units + 1,):
            raise ValueError(
                f"node_offsets must have shape {(n_units + 1,)}, got {self.node_offsets.shape}"
            )
        n_nodes = int(self.node_offsets[-1])
        for name in ("node_values", "node_l2"):
            if getattr(self, name).shape != (n_nodes,):
                raise ValueError(f"{name} must have shape {(n_nodes,)}")
        if self.unit_scale.shape != (n_units,):
            raise ValueError(f"unit_scale must have shape {(n_units,)}")
        if self.unit_active is None:
            object.__setattr__(self, "unit_active", np.ones(n_units, dtype=bool))
        elif self.unit_active.shape != (n_units,):
            raise ValueError(f"unit_active must have shape {(n_units,)}")

    @property
    def n_units(self) -> int:
        """Number of trees ``T * K``."""
        return self.n_rounds * self.n_outputs

    @property
    def n_nodes(self) -> int:
        """Total number of nodes over all trees."""
        return int(self.node_offsets[-1])

    def node_unit(self) -> np.ndarray:
        """The unit (tree) each node belongs to, shape (n_nodes,)."""
        return np.repeat(np.arange(self.n_units), np.diff(self.node_offsets))


class BoosterAdapter:
    """Read access to one fitted booster of a supported library.

    Subclasses are constructed from the fitted model and its training target (class codes
    for classifiers), set :attr:`structure` and implement the methods below; all of them
    take the inputs the wrapped model itself accepts.
    """

    structure: BoosterStructure

    def leaf_nodes(self, X: Any) -> np.ndarray:
        """Global node id of the leaf each row reaches in each tree, shape (m, T * K)."""
        raise NotImplementedError

    def initial_prediction(self, X: Any) -> np.ndarray:
        """The library's initial raw prediction ``f_0(x)``, shape (m, K)."""
        raise NotImplementedError

    def raw_prediction(self, X: Any) -> np.ndarray:
        """The library's own raw prediction (margin), shape (m,) or (m, K)."""
        raise NotImplementedError

    def in_bag(self, target: np.ndarray) -> np.ndarray:
        """Boolean mask of the training rows the trees were grown on, shape (n,).

        All rows by default; overridden where the library holds rows out reproducibly.
        """
        return np.ones(len(target), dtype=bool)


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
    if loss == "squared_error":
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
    replay_target = target.astype(dtype) if structure.loss == "squared_error" else target
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


def build_kernel_view(
    kernel: TreeKernel,
    X: Any,
    *,
    norm: str = "l1",
    smoother: bool = False,
    smoother_max_n: int = 5000,
    block_nonzeros: int = DEFAULT_BLOCK_NONZEROS,
    n_jobs: int = 1,
) -> KernelView:
    """The :class:`~tabscope.models.KernelView` of a fitted booster on evaluation inputs.

    Parameters
    ----------
    kernel : TreeKernel
        The fitted booster and its training-set replay.
    X : array-like of shape (m, d)
        Evaluation inputs, in the form the booster accepts.
    norm : {"l1", "l2"}, default="l1"
        Norm over training examples for the kernel norms (DESIGN.md 1.5).
    smoother : bool, default=False
        Also compute the linear-smoother weights ``s_T(x)`` (squared loss only, 1.6).
    smoother_max_n : int, default=5000
        Largest training set for which the ``n x n`` smoother recursion is run.
    block_nonzeros : int
        Bound on the nonzeros of any sparse intermediate (memory per block and thread).
    n_jobs : int, default=1
        Threads forming blocks of the contribution matrix in parallel.

    Returns
    -------
    KernelView
    """
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    structure = kernel.structure
    if smoother and structure.loss != "squared_error":
        raise ValueError(
            "smoother=True is defined for squared loss only (DESIGN.md 1.6); "
            f"this booster was trained with {structure.loss!r}"
        )
    T, K = structure.n_rounds, structure.n_outputs
    eval_nodes = _compact_ids(kernel.adapter.leaf_nodes(X), structure.n_nodes)
    m = eval_nodes.shape[0]
    offset = np.array(kernel.adapter.initial_prediction(X), dtype=np.float64).reshape(m, K)
    # The prediction comes from the library's own leaf values; the contributions from
    # gradients, hessians and leaf co-membership: the identity compares the two.
    prediction = offset + structure.node_values[eval_nodes].reshape(m, T, K).sum(axis=1)
    contributions = _contributions(kernel, eval_nodes, block_nonzeros, n_jobs)
    kernel_norms = _kernel_norms(kernel, eval_nodes, norm, block_nonzeros)
    train_kernel_norms = _kernel_norms(kernel, kernel.train_nodes, norm, block_nonzeros)
    smoother_weights = (
        _smoother(kernel, eval_nodes, smoother_max_n) if smoother else None
    )
    if K == 1:
        offset, prediction = offset[:, 0], prediction[:, 0]
        contributions = contributions[:, :, 0]
    metadata = dict(structure.metadata)
    metadata.update(
        library=structure.library,
        n_rounds=T,
        n_outputs=K,
        n_in_bag=int(kernel.in_bag.sum()),
        kernel="tree",
    )
    return KernelView(
        offset=offset,
        contributions=contributions,
        unattributed=np.zeros_like(offset),
        prediction=prediction,
        checkpoints=np.arange(1, T + 1),
        kernel_norms=kernel_norms,
        train_kernel_norms=train_kernel_norms,
        smoother=smoother_weights,
        loss=structure.loss,
        norm=norm,
        metadata=metadata,
    )


def _rows_per_block(row_nonzeros: float, block_nonzeros: int) -> int:
    return max(1, int(block_nonzeros // max(row_nonzeros, 1.0)))


def _contributions(
    kernel: TreeKernel, eval_nodes: np.ndarray, block_nonzeros: int, n_jobs: int = 1
) -> np.ndarray:
    """``C(x, i, k) = sum_t a_i,(t,k) 1{l_(t,k)(x) = l_(t,k)(i)}``, shape (m, n, K).

    With ``P`` the evaluation rows' one-hot leaf memberships (m x nodes) and ``Q`` the
    training rows' coefficients placed at their leaves (nodes x n), ``C_k = P_k Q``: a sparse
    product costing the evaluation points' leaf sizes summed over the trees, formed for a
    block of evaluation rows at a time. Blocks write disjoint rows, so ``n_jobs`` threads
    (SciPy's sparse kernels release the GIL) give the same bits as one.
    """
    structure = kernel.structure
    n, T, K = kernel.n_train, structure.n_rounds, structure.n_outputs
    m = eval_nodes.shape[0]
    U = T * K
    coefficients = kernel.coefficients()
    leaf_matrix = sp.csr_matrix(
        (
            coefficients.ravel(),
            (kernel.train_nodes.ravel(), np.repeat(np.arange(n), U)),
        ),
        shape=(structure.n_nodes, n),
    )
    contributions = np.zeros((m, n, K))
    # Each evaluation row touches one leaf per tree; the product row is at most n wide.
    block = _rows_per_block(n, block_nonzeros)
    if n_jobs > 1:
        block = max(1, min(block, -(-m // (2 * n_jobs))))

    def fill(k: int, start: int) -> None:
        stop = min(m, start + block)
        rows = stop - start
        membership = sp.csr_matrix(
            (
                np.ones(rows * T),
                eval_nodes[start:stop, k::K].ravel(),
                np.arange(0, rows * T + 1, T),
            ),
            shape=(rows, structure.n_nodes),
        )
        product = membership @ leaf_matrix
        if K == 1:
            product.toarray(out=contributions[start:stop, :, 0])
        else:
            contributions[start:stop, :, k] = product.toarray()

    tasks = [(k, start) for k in range(K) for start in range(0, m, block)]
    if n_jobs > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            for _ in pool.map(lambda task: fill(*task), tasks):
                pass
    else:
        for task in tasks:
            fill(*task)
    return contributions


def _kernel_norms(
    kernel: TreeKernel, nodes: np.ndarray, norm: str, block_nonzeros: int
) -> np.ndarray:
    """``kappa_t(x) = sum_i ||eta K^tree_t(x, x_i)||`` for each row and round, shape (r, T).

    For one output every in-bag row of ``x``'s leaf gets the same weight, so the sum over
    all ``n`` training rows is ``w_l n_l`` (L1) or ``w_l sqrt(n_l)`` (L2). With ``K`` outputs
    the ``K x K`` block is diagonal; its Frobenius norm mixes the ``K`` trees of a round.
    """
    structure = kernel.structure
    T, K = structure.n_rounds, structure.n_outputs
    r = nodes.shape[0]
    weights, counts = kernel.node_weights, kernel.node_counts
    if K == 1:
        mass = weights * (counts if norm == "l1" else np.sqrt(counts))
        return mass[nodes]
    if norm == "l2":
        squared = (weights**2 * counts)[nodes].reshape(r, T, K).sum(axis=2)
        return np.sqrt(squared)
    if K <= MAX_OUTPUTS_FOR_SUBSET_COUNTS:
        norms = _subset_count_l1_norms(kernel, nodes)
        if norms is not None:
            return norms
    return _multi_output_l1_norms(kernel, nodes, block_nonzeros)


def _subset_count_l1_norms(kernel: TreeKernel, nodes: np.ndarray) -> np.ndarray | None:
    """Multi-output L1 kernel norms by counting training rows per leaf-match pattern.

    For a round with ``K`` trees and a row ``x``, let ``N_S(x)`` count the in-bag training
    rows sharing ``x``'s leaf in every tree of ``S``, and ``M_S(x)`` those sharing it in
    exactly the trees of ``S`` (Moebius inversion over supersets). Then
    ``kappa_t(x) = sum_S M_S(x) sqrt(sum_{k in S} w_k(x)^2)``: ``2^K`` hash counts per
    round, ``O(2^K T (n + m) log n)`` in all. Returns None if a round's leaf tuples cannot be
    encoded in 64 bits (the caller then falls back to the sparse product).
    """
    structure = kernel.structure
    T, K = structure.n_rounds, structure.n_outputs
    r = nodes.shape[0]
    bag_nodes = kernel.train_nodes[kernel.in_bag]
    n_bag = bag_nodes.shape[0]
    subsets = np.arange(1 << K)
    members = [np.flatnonzero((subsets[s] >> np.arange(K)) & 1) for s in subsets]
    norms = np.empty((r, T))
    for t in range(T):
        train = bag_nodes[:, t * K:(t + 1) * K]
        rows = nodes[:, t * K:(t + 1) * K]
        train_rank = np.empty(train.shape, dtype=np.int64)
        row_rank = np.empty(rows.shape, dtype=np.int64)
        radix = np.empty(K, dtype=np.int64)
        for k in range(K):
            leaves, train_rank[:, k] = np.unique(train[:, k], return_inverse=True)
            position = np.minimum(np.searchsorted(leaves, rows[:, k]), len(leaves) - 1)
            row_rank[:, k] = np.where(leaves[position] == rows[:, k], position, -1)
            radix[k] = len(leaves)
        if np.sum(np.log2(np.maximum(radix, 1))) >= 62:
            return None
        stride = np.concatenate([[1], np.cumprod(radix[:-1])])
        counts = np.empty((1 << K, r))
        counts[0] = n_bag
        for s in subsets[1:]:
            ks = members[s]
            train_keys, train_counts = np.unique(train_rank[:, ks] @ stride[ks], return_counts=True)
            row_keys = row_rank[:, ks] @ stride[ks]
            position = np.minimum(np.searchsorted(train_keys, row_keys), len(train_keys) - 1)
            found = (train_keys[position] == row_keys) & np.all(row_rank[:, ks] >= 0, axis=1)
            counts[s] = np.where(found, train_counts[position], 0)
        # Rows matching all of S -> rows matching exactly S (inverse superset sums).
        for k in range(K):
            without = subsets[(subsets >> k) & 1 == 0]
            counts[without] -= counts[without | (1 << k)]
        squared_weights = kernel.node_weights[rows] ** 2
        total = np.zeros(r)
        for s in subsets[1:]:
            total += counts[s] * np.sqrt(squared_weights[:, members[s]].sum(axis=1))
        norms[:, t] = total
    return norms


def _multi_output_l1_norms(
    kernel: TreeKernel, nodes: np.ndarray, block_nonzeros: int
) -> np.ndarray:
    """L1-over-examples of the Frobenius norms of diagonal ``K x K`` weight blocks.

    ``kappa_t(x) = sum_i sqrt(sum_k w_k(x)^2 1{l_k(x) = l_k(i)})`` does not factor over the
    trees, so the sum runs over the training rows sharing at least one of ``x``'s leaves;
    rows with equal leaf tuples give equal norms and are computed once.
    """
    structure = kernel.structure
    T, K, n = structure.n_rounds, structure.n_outputs, kernel.n_train
    r = nodes.shape[0]
    bag = np.flatnonzero(kernel.in_bag)
    members = sp.csr_matrix(
        (
            np.ones(bag.size * T * K),
            (kernel.train_nodes[bag].ravel(), np.repeat(bag, T * K)),
        ),
        shape=(structure.n_nodes, n),
    )
    squared_weights = kernel.node_weights**2
    norms = np.empty((r, T))
    for t in range(T):
        tuples, inverse = np.unique(
            nodes[:, t * K:(t + 1) * K], axis=0, return_inverse=True
        )
        inverse = inverse.reshape(-1)
        reach = kernel.node_counts[tuples].sum(axis=1).astype(np.float64)
        distinct = np.empty(len(tuples))
        start = 0
        while start < len(tuples):
            # Grow the block while its rows' reachable training rows fit the budget.
            cumulative = np.cumsum(reach[start:])
            stop = start + max(1, int(np.searchsorted(cumulative, block_nonzeros)))
            block = tuples[start:stop]
            rows = len(block)
            membership = sp.csr_matrix(
                (
                    squared_weights[block].ravel(),
                    block.ravel(),
                    np.arange(0, rows * K + 1, K),
                ),
                shape=(rows, structure.n_nodes),
            )
            product = (membership @ members).tocsr()
            row_of = np.repeat(np.arange(rows), np.diff(product.indptr))
            distinct[start:stop] = np.bincount(
                row_of, weights=np.sqrt(product.data), minlength=rows
            )
            start = stop
        norms[:, t] = distinct[inverse]
    return norms


def _smoother(kernel: TreeKernel, eval_nodes: np.ndarray, max_n: int) -> np.ndarray:
    """Linear-smoother weights ``s_T(x)`` (DESIGN.md 1.6), shape (m, n).

    ``s_t(x) = s_{t-1}(x) + sum_i w_t(x, i) (e_i - s_{t-1}(x_i))``, which needs ``s_{t-1}``
    on the whole training set: an ``n x n`` recursion, ``O(T n^2)`` time.
    """
    if not isinstance(max_n, (int, np.integer)) or isinstance(max_n, bool) or max_n < 1:
        raise ValueError(f"smoother_max_n must be a positive integer, got {max_n!r}")
    structure = kernel.structure
    n, T = kernel.n_train, structure.n_rounds
    if n > max_n:
        raise ValueError(
            f"smoother=True needs n x n smoother weights over the training set; n = {n} "
            f"exceeds smoother_max_n = {max_n} (raise it if {n}^2 floats fit in memory)"
        )
    m = eval_nodes.shape[0]
    bag = np.flatnonzero(kernel.in_bag)
    train_smoother = np.zeros((n, n))
    eval_smoother = np.zeros((m, n))
    for t in range(T):
        first, last = structure.node_offsets[t], structure.node_offsets[t + 1]
        bag_nodes = kernel.train_nodes[bag, t]
        leaves, bag_leaf = np.unique(bag_nodes, return_inverse=True)
        n_leaves = len(leaves)
        # Rows in a leaf without in-bag rows get no update: they map to a zero row.
        local = np.full(last - first, n_leaves)
        local[leaves - first] = np.arange(n_leaves)
        indicator = sp.csr_matrix(
            (np.ones(bag.size), (bag_leaf, bag)), shape=(n_leaves, n)
        )
        update = np.zeros((n_leaves + 1, n))
        update[:n_leaves] = -(indicator @ train_smoother)
        update[bag_leaf, bag] += 1.0
        update[:n_leaves] *= kernel.node_weights[leaves][:, None]
        eval_smoother += update[local[eval_nodes[:, t] - first]]
        train_smoother += update[local[kernel.train_nodes[:, t] - first]]
    return eval_smoother


def round_kernel_weights(kernel: TreeKernel, X: Any, round_index: int) -> np.ndarray:
    """Dense kernel weights ``w_t(x, i) = eta K^tree_t(x, x_i)`` of one round.

    Parameters
    ----------
    kernel : TreeKernel
    X : array-like of shape (m, d)
        Evaluation inputs, in the form the booster accepts.
    round_index : int
        Boosting round ``t``, 1-based like ``KernelView.checkpoints``.

    Returns
    -------
    weights : ndarray of shape (m, n) or (m, n, K)
        The diagonal of each ``K x K`` block for ``K`` outputs.
    """
    structure = kernel.structure
    T, K = structure.n_rounds, structure.n_outputs
    if (
        not isinstance(round_index, (int, np.integer))
        or isinstance(round_index, bool)
        or not 1 <= round_index <= T
    ):
        raise ValueError(f"round_index must be an integer in [1, {T}], got {round_index!r}")
    units = slice((round_index - 1) * K, round_index * K)
    eval_nodes = kernel.adapter.leaf_nodes(X)[:, units]
    train_nodes = kernel.train_nodes[:, units]
    same_leaf = eval_nodes[:, None, :] == train_nodes[None, :, :]
    weights = np.where(same_leaf, kernel.node_weights[eval_nodes][:, None, :], 0.0)
    weights[:, ~kernel.in_bag] = 0.0
    return weights[:, :, 0] if K == 1 else weights
