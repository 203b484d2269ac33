"""The GBDT lens at benchmark scale: kernel norms alone, sketched effective parameters.

A tree's kernel norms need no contributions (docs/design.md §1.5): a leaf's in-bag rows
share one weight, ``O(T (n + m))``. The smoother recursion of §1.6 updates every row of a
leaf by the same vector, so with a sketch of ``k`` rows a round costs ``O(n k)``
(:func:`~tabscope.models._tree_view.smoother_recursion`, :mod:`._sketch`).
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from tabscope.validation import Interval, one_of, validate_parameters
from tabscope.vocabulary import KernelNorm, Loss

from ._sketch import DEFAULT_SKETCH_SIZE, sketch_basis
from ._tree_replay import _compact_ids
from ._tree_view import DEFAULT_BLOCK_NONZEROS, _kernel_norms, smoother_recursion
from .lens_results import EffectiveParameters, KernelNorms

__all__ = ["ScaledTreeLensMixin"]

_NORMS_CONSTRAINTS = {"norm": [one_of(KernelNorm)]}
_SMOOTHER_CONSTRAINTS = {
    "sketch_size": [Interval(Integral, 2, None, closed="left"), None],
    "random_state": ["random_state"],
}


class ScaledTreeLensMixin:
    """Norms-only and sketched analyses of a fitted :class:`~tabscope.models.TreeLens`."""

    def kernel_norms(self, X: Any, *, norm: str = "l1", **_ignored) -> KernelNorms:
        """Kernel norms of every round for ``X`` and all training rows, ``O(T (n + m))``.

        Keyword arguments of the network method (``train_sample_size``, ``random_state``
        ...) are accepted and ignored: every training row is taken, exactly.
        """
        check_is_fitted(self)
        validate_parameters(_NORMS_CONSTRAINTS, {"norm": norm}, caller="TreeLens.kernel_norms")
        X_in, _ = self._validate_inputs(X, reset=False)
        kernel = self.tree_kernel_
        structure = kernel.structure
        eval_nodes = _compact_ids(kernel.adapter.leaf_nodes(X_in), structure.n_nodes)
        return KernelNorms(
            kernel_norms=_kernel_norms(kernel, eval_nodes, norm, DEFAULT_BLOCK_NONZEROS),
            train_kernel_norms=_kernel_norms(
                kernel, kernel.train_nodes, norm, DEFAULT_BLOCK_NONZEROS
            ),
            train_rows=None, n_train=kernel.n_train,
            checkpoints=np.arange(1, structure.n_rounds + 1), norm=norm,
            metadata=dict(structure.metadata, library=structure.library, kernel="tree"),
        )

    def effective_parameters(
        self, X: Any, *, sketch_size: int | None = DEFAULT_SKETCH_SIZE, random_state=0,
        **_ignored,
    ) -> EffectiveParameters:
        """``p_train`` and ``p_test`` (docs/design.md §1.6), sketched or dense.

        ``O(T n k)`` time and ``O((n + m) k)`` memory for a sketch of ``k`` rows;
        ``sketch_size=None`` runs the dense ``n x n`` recursion (``O(T n^2)``).

        Raises
        ------
        ValueError
            If the booster was not trained with squared loss.
        """
        check_is_fitted(self)
        validate_parameters(
            _SMOOTHER_CONSTRAINTS, {"sketch_size": sketch_size, "random_state": random_state},
            caller="TreeLens.effective_parameters",
        )
        kernel = self.tree_kernel_
        structure = kernel.structure
        if structure.loss != Loss.SQUARED_ERROR:
            raise ValueError(
                "effective_parameters is defined for squared loss only (docs/design.md "
                f"§1.6); this booster was trained with {structure.loss!r}"
            )
        X_in, _ = self._validate_inputs(X, reset=False)
        eval_nodes = _compact_ids(kernel.adapter.leaf_nodes(X_in), structure.n_nodes)
        n = kernel.n_train
        basis = None if sketch_size is None else sketch_basis(n, sketch_size, random_state)
        eval_rows, train_rows = smoother_recursion(kernel, eval_nodes, basis)
        return EffectiveParameters.from_rows(train_rows, eval_rows, n, sketch_size)
