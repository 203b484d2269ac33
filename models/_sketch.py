"""A seeded random sketch of the linear smoother, and the effective parameters it estimates.

The smoother recursions of docs/design.md §1.6 are linear in ``s``, so tracking ``R s_t(x)``
instead of ``s_t(x)`` (``R`` a ``k x n`` Gaussian matrix, entries ``N(0, 1/k)``) is exact for
``R s_t(x)``: every ``e_i`` becomes ``R e_i``, column ``i`` of ``R``. Memory drops from
``n (n + m)`` to ``k (n + m)`` numbers and a step's update from ``|B| n (n + m)`` to
``|B| k (n + m)``. ``||R s||^2`` estimates ``||s||^2`` without bias, and the ``k`` rows of
``R`` are independent, which gives the standard error (docs/design.md §1.9).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from tabscope.validation import Interval, validate_parameters

__all__ = ["DEFAULT_SKETCH_SIZE", "dense_effective_parameters", "sketch_basis",
           "sketched_effective_parameters"]

#: Rows ``k`` of the sketch by default: a relative standard error near sqrt(2 / k), ~9 %.
DEFAULT_SKETCH_SIZE = 256

_CONSTRAINTS = {
    "n_train": [Interval(Integral, 1, None, closed="left")],
    "sketch_size": [Interval(Integral, 2, None, closed="left")],
}


def sketch_basis(n_train: int, sketch_size: int, random_state=0) -> np.ndarray:
    """``R^T``: an ``n x k`` float64 matrix of independent ``N(0, 1/k)`` entries.

    Row ``i`` is ``R e_i``, what the sketched recursion uses in place of ``e_i``. The same
    seed gives the same bits.
    """
    validate_parameters(
        _CONSTRAINTS, {"n_train": n_train, "sketch_size": sketch_size}, caller="sketch_basis"
    )
    rng = check_random_state(random_state)
    return rng.standard_normal((int(n_train), int(sketch_size))) / np.sqrt(sketch_size)


def sketched_effective_parameters(sketch: np.ndarray, n_train: int) -> tuple[float, float]:
    """Estimate ``p_E = (n / |E|) sum_x ||s(x)||^2`` and its standard error from ``R s(x)``.

    With ``P_j = (n / |E|) sum_x (R_j s(x))^2`` for each of the ``k`` sketch rows,
    ``p_hat = sum_j P_j`` is unbiased and ``SE = sqrt(k) std_j(P_j)``.

    Parameters
    ----------
    sketch : ndarray of shape (|E|, k)
        ``R s_T(x)`` of each evaluation point.
    n_train : int

    Returns
    -------
    p_hat, standard_error : float
    """
    sketch = np.asarray(sketch, dtype=np.float64)
    per_row = n_train / sketch.shape[0] * np.einsum("ij,ij->j", sketch, sketch)
    k = per_row.shape[0]
    return float(per_row.sum()), float(np.sqrt(k) * per_row.std(ddof=1))


def dense_effective_parameters(smoother: np.ndarray, n_train: int) -> float:
    """``p_E = (n / |E|) sum_x ||s(x)||^2`` from the dense smoother rows, shape (|E|, n)."""
    smoother = np.asarray(smoother, dtype=np.float64)
    return float(n_train * np.einsum("ij,ij->", smoother, smoother) / smoother.shape[0])
