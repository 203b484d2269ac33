"""The kernel view of a replayed booster: contributions, kernel norms, smoother.

Round ``t`` of a boosted ensemble adds, for each output ``k``, one tree whose leaf values are
Newton steps over the rows that reach the leaf::

    v_l = -s_t * sum_{i in l} g_itk / (sum_{i in l} h_itk + lambda_l)

with ``s_t`` the library's shrinkage (and any constant factor it applies). Training example
``i``'s share of that value is ``-s_t g_itk / (H_l + lambda_l)``; summing those shares over the
rounds gives the contribution matrix of a :class:`~tabscope.models.KernelView`
(docs/design.md §1.4-1.6). :func:`build_kernel_view` aggregates per leaf, so predictions and
kernel norms cost ``O(T (n + m))`` per output and the contribution matrix is formed in
memory-bounded blocks.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp

from tabscope.validation import Interval, one_of, validate_parameters
from tabscope.vocabulary import KernelNorm, Loss

from ._tree_replay import TreeKernel, _compact_ids
from .kernel_view import KernelView, prediction_path_steps

__all__ = ["build_kernel_view", "round_kernel_weights", "smoother_recursion"]

_VIEW_CONSTRAINTS = {
    "norm": [one_of(KernelNorm)],
    "smoother": ["boolean"],
    "max_smoother_train": [Interval(Integral, 1, None, closed="left")],
}

# Nonzeros allowed in one sparse intermediate product (about 50 MB with its indices).
DEFAULT_BLOCK_NONZEROS = 1 << 22

# Multi-output L1 kernel norms count leaf-match patterns (2^K per round) up to this K and
# use a sparse product beyond it.
MAX_OUTPUTS_FOR_SUBSET_COUNTS = 6


def build_kernel_view(
    kernel: TreeKernel,
    X: Any,
    *,
    norm: str = KernelNorm.L1,
    smoother: bool = False,
    max_smoother_train: int = 5000,
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
        Norm over training examples for the kernel norms (docs/design.md §1.5).
    smoother : bool, default=False
        Also compute the linear-smoother weights ``s_T(x)`` (squared loss only, §1.6).
    max_smoother_train : int, default=5000
        Largest training set for which the ``n x n`` smoother recursion is run.
    block_nonzeros : int
        Bound on the nonzeros of any sparse intermediate (memory per block and thread).
    n_jobs : int, default=1
        Threads forming blocks of the contribution matrix in parallel.

    Returns
    -------
    KernelView
    """
    validate_parameters(
        _VIEW_CONSTRAINTS,
        dict(norm=norm, smoother=smoother, max_smoother_train=max_smoother_train),
        caller="build_kernel_view",
    )
    structure = kernel.structure
    if smoother and structure.loss != Loss.SQUARED_ERROR:
        raise ValueError(
            "smoother=True is defined for squared loss only (docs/design.md §1.6); "
            f"this booster was trained with {structure.loss!r}"
        )
    T, K = structure.n_rounds, structure.n_outputs
    eval_nodes = _compact_ids(kernel.adapter.leaf_nodes(X), structure.n_nodes)
    m = eval_nodes.shape[0]
    offset = np.array(kernel.adapter.initial_prediction(X), dtype=np.float64).reshape(m, K)
    # The prediction comes from the library's own leaf values; the contributions from
    # gradients, hessians and leaf co-membership: the identity compares the two.
    rounds = structure.node_values[eval_nodes].reshape(m, T, K)
    prediction = offset + rounds.sum(axis=1)
    # The prediction after the rounds that end each tenth of boosting (docs/design.md §1.10).
    path_steps = prediction_path_steps(T)
    path = offset[:, None, :] + np.cumsum(rounds, axis=1)[:, path_steps - 1, :]
    contributions = _contributions(kernel, eval_nodes, block_nonzeros, n_jobs)
    kernel_norms = _kernel_norms(kernel, eval_nodes, norm, block_nonzeros)
    train_kernel_norms = _kernel_norms(kernel, kernel.train_nodes, norm, block_nonzeros)
    smoother_weights = (
        _smoother(kernel, eval_nodes, max_smoother_train) if smoother else None
    )
    if K == 1:
        offset, prediction = offset[:, 0], prediction[:, 0]
        contributions = contributions[:, :, 0]
        path = path[:, :, 0]
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
        path_steps=path_steps,
        prediction_path=path,
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
        mass = weights * (counts if norm == KernelNorm.L1 else np.sqrt(counts))
        return mass[nodes]
    if norm == KernelNorm.L2:
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


def _smoother(
    kernel: TreeKernel, eval_nodes: np.ndarray, max_smoother_train: int
) -> np.ndarray:
    """Linear-smoother weights ``s_T(x)`` (docs/design.md §1.6), shape (m, n).

    ``s_t(x) = s_{t-1}(x) + sum_i w_t(x, i) (e_i - s_{t-1}(x_i))``, which needs ``s_{t-1}``
    on the whole training set: an ``n x n`` recursion, ``O(T n^2)`` time.
    """
    n = kernel.n_train
    if n > max_smoother_train:
        raise ValueError(
            f"smoother=True needs n x n smoother weights over the training set; n = {n} "
            f"exceeds max_smoother_train = {max_smoother_train} (raise it if {n}^2 floats "
            "fit in memory)"
        )
    return smoother_recursion(kernel, eval_nodes)[0]


def smoother_recursion(
    kernel: TreeKernel, eval_nodes: np.ndarray, basis: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The smoother recursion of docs/design.md §1.6, dense or sketched.

    A round's update is one vector per leaf, ``w_l sum_{i in leaf, in bag} (b_i -
    s_{t-1}(x_i))`` with ``b_i = e_i`` (dense, ``basis=None``) or ``b_i = R e_i`` (row
    ``i`` of ``basis = R^T``, shape (n, k)); per-leaf sums make a round ``O(n k)``.

    Parameters
    ----------
    kernel : TreeKernel
    eval_nodes : ndarray of shape (m, T)
        Compact leaf ids of the evaluation rows.
    basis : ndarray of shape (n, k) or None

    Returns
    -------
    eval_smoother : ndarray of shape (m, k)
    train_smoother : ndarray of shape (n, k)
        ``k = n`` for the dense smoother.
    """
    structure = kernel.structure
    n, T = kernel.n_train, structure.n_rounds
    width = n if basis is None else basis.shape[1]
    m = eval_nodes.shape[0]
    bag = np.flatnonzero(kernel.in_bag)
    train_smoother = np.zeros((n, width))
    eval_smoother = np.zeros((m, width))
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
        update = np.zeros((n_leaves + 1, width))
        update[:n_leaves] = -(indicator @ train_smoother)
        if basis is None:
            update[bag_leaf, bag] += 1.0
        else:
            update[:n_leaves] += indicator @ basis
        update[:n_leaves] *= kernel.node_weights[leaves][:, None]
        eval_smoother += update[local[eval_nodes[:, t] - first]]
        train_smoother += update[local[kernel.train_nodes[:, t] - first]]
    return eval_smoother, train_smoother


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
    validate_parameters(
        {"round_index": [Interval(Integral, 1, T, closed="both")]},
        {"round_index": round_index},
        caller="TreeLens.kernel_weights",
    )
    units = slice((round_index - 1) * K, round_index * K)
    eval_nodes = kernel.adapter.leaf_nodes(X)[:, units]
    train_nodes = kernel.train_nodes[:, units]
    same_leaf = eval_nodes[:, None, :] == train_nodes[None, :, :]
    weights = np.where(same_leaf, kernel.node_weights[eval_nodes][:, None, :], 0.0)
    weights[:, ~kernel.in_bag] = 0.0
    return weights[:, :, 0] if K == 1 else weights
