"""Effective number of parameters of a lens, from its linear-smoother weights.

``p_E = (n / |E|) sum_{x in E} ||s_T(x)||^2`` on an evaluation set ``E`` (docs/design.md
§1.6; Curth, Jeffares & van der Schaar 2023): the per-cell job
:attr:`tabscope.vocabulary.CellJob.EFFECTIVE_PARAMETERS` evaluates it on the training and
the test rows.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tabscope.models.kernel_view import KernelView
from tabscope.validation import validate_parameters

from ._inputs import COUNT, as_2d_finite

__all__ = ["effective_parameters"]

_CONSTRAINTS = {"n_train": [*COUNT, None]}


def effective_parameters(view: KernelView | ArrayLike, n_train: int | None = None) -> float:
    """Effective number of parameters ``p_E = (n / |E|) sum_{x in E} ||s_T(x)||^2``.

    From the linear-smoother weights ``s_T(x)`` of a squared-loss lens (docs/design.md §1.6;
    Curth, Jeffares & van der Schaar 2023), on the view's evaluation set ``E``. Evaluated on
    the training set, a single regression tree gives its number of leaves and ordinary
    least squares its number of coefficients; the gap between ``p_train`` and ``p_test``
    measures how differently the model treats unseen points.

    Parameters
    ----------
    view : KernelView or array-like of shape (m, n)
        A squared-loss view whose ``smoother`` is set, or the smoother rows themselves (e.g.
        the training or the test rows of one view computed over both).
    n_train : int, default=None
        Number of training examples ``n`` the smoother spans; must equal its number of
        columns (a guard against pairing a smoother with the wrong training set). None
        takes it from the smoother.

    Returns
    -------
    p_E : float

    Raises
    ------
    TypeError
        If ``n_train`` is not an integer or the smoother is not numeric.
    ValueError
        If the view has no smoother (it is not a squared-loss view), its loss is not
        squared error, the smoother is not 2-D, empty or not finite, or ``n_train``
        disagrees with it.
    """
    validate_parameters(_CONSTRAINTS, {"n_train": n_train}, caller="effective_parameters")
    if isinstance(view, KernelView):
        if view.smoother is None:
            raise ValueError(
                "view has no smoother: effective parameters need a squared-loss view built "
                f"with its smoother (view.loss is {view.loss!r})"
            )
        if view.loss != "squared_error":
            raise ValueError(
                f"view.loss must be 'squared_error' for effective parameters, got {view.loss!r}"
            )
        smoother = as_2d_finite(view.smoother, "view.smoother")
    else:
        smoother = as_2d_finite(view, "view")
    n = smoother.shape[1] if n_train is None else int(n_train)
    if n != smoother.shape[1]:
        raise ValueError(
            f"n_train={n} does not match the {smoother.shape[1]} training examples the "
            "smoother spans"
        )
    return float(n * np.einsum("ij,ij->", smoother, smoother) / smoother.shape[0])
