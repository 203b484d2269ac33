"""Array inputs of the lens analyses: dense, finite float64 arrays of the expected shape.

Scalar parameters are described by constraint tables next to each analysis and checked with
:func:`tabscope.validation.validate_parameters`; arrays need checks of shape and content that
a constraint table cannot state, and they live here, once, for every analysis.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike

from tabscope.validation import Interval

__all__ = ["COUNT", "as_1d_finite", "as_2d_finite"]

#: Constraint of a count parameter (``n_redraws``, ``n_neighbors`` ...): an integer >= 1.
COUNT = [Interval(Integral, 1, None, closed="left")]


def as_2d_finite(X: ArrayLike, name: str) -> np.ndarray:
    """``X`` as a finite float64 array of shape (n_samples, n_features), or a clear error."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix; call .toarray()")
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), "
            f"got an array with {array.ndim} dimension(s)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {array.shape}")
    return _finite_float64(array, name)


def as_1d_finite(values: ArrayLike, name: str, length: int | None = None) -> np.ndarray:
    """``values`` as a finite float64 vector (optionally of a given length)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {array.shape[0]}")
    return _finite_float64(array, name)


def _finite_float64(array: np.ndarray, name: str) -> np.ndarray:
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}: {exc}") from exc
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinity")
    return array
