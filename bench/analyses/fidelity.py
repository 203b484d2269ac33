"""Telescoping fidelity: how closely the telescoping approximations follow a trained network.

The per-cell job :attr:`tabscope.vocabulary.CellJob.FIDELITY` (docs/design.md §1.1).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

__all__ = ["fidelity_summary"]


def fidelity_summary(estimator: object, X: ArrayLike) -> dict[str, float]:
    """Relative errors of the telescoping approximations of a fitted network on ``X``.

    A thin wrapper over the estimator's ``telescoping_fidelity(X)`` (docs/design.md §1.1):
    ``mean |f_approx(x) - f_T(x)| / mean |f_T(x) - f_0(x)|`` for the first-order and
    trapezoid telescoping models and the model linearised at initialisation.

    Parameters
    ----------
    estimator : telescoping network estimator
        A fitted estimator with a ``telescoping_fidelity`` method (the ``Telescoping*``
        estimators of :mod:`tabscope.models`).
    X : array-like of shape (m, n_features)
        The evaluation set.

    Returns
    -------
    fidelity : dict of str to float
        Keyed as the estimator keys them (``"first_order"``, ``"trapezoid"``,
        ``"linearized"``), values as Python floats.

    Raises
    ------
    TypeError
        If ``estimator`` is not a telescoping network (has no callable
        ``telescoping_fidelity``), or its result is not a mapping of numbers.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    """
    method = getattr(estimator, "telescoping_fidelity", None)
    if isinstance(estimator, type) or not callable(method):
        raise TypeError(
            "estimator must be a fitted telescoping network (an estimator with a "
            f"telescoping_fidelity method), got {type(estimator).__name__}"
        )
    check_is_fitted(estimator)
    result = method(X)
    if not isinstance(result, Mapping):
        raise TypeError(
            f"{type(estimator).__name__}.telescoping_fidelity must return a dict, "
            f"got {type(result).__name__}"
        )
    summary = {}
    for key, value in result.items():
        is_number = isinstance(value, (numbers.Real, np.ndarray)) and np.ndim(value) == 0
        if isinstance(value, bool) or not is_number:
            raise TypeError(
                f"{type(estimator).__name__}.telescoping_fidelity()[{key!r}] must be a number, "
                f"got {type(value).__name__}"
            )
        summary[str(key)] = float(value)
    return summary
