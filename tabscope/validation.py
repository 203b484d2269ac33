"""Declarative parameter validation, shared by estimators, analyses and suite settings.

Parameters are described once, as data, in scikit-learn's constraint language (a dict from
parameter name to a list of accepted constraints: types, :class:`Interval`, :class:`Options`
...), and checked by one call that writes a uniform message naming the parameter and its
owner. The implementation is scikit-learn's own (``sklearn.utils._param_validation``, the
machinery behind every ``_parameter_constraints`` table in scikit-learn); this module is the
single place tabscope imports it from, so a change there is absorbed here.

Example
-------
>>> from numbers import Integral
>>> from tabscope.validation import Interval, validate_parameters
>>> try:
...     validate_parameters({"k": [Interval(Integral, 1, None, closed="left")]}, {"k": 0},
...                         caller="knn")
... except ValueError as error:
...     print(error)
The 'k' parameter of knn must be an int in the range [1, inf). Got 0 instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

from .vocabulary import choices

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "one_of",
    "validate_parameters",
]

def one_of(vocabulary: type[enum.StrEnum], *, deprecated: set[str] | None = None) -> StrOptions:
    """A constraint accepting the plain-string values of a vocabulary enum."""
    return StrOptions(set(choices(vocabulary)), deprecated=deprecated or set())


def validate_parameters(
    constraints: Mapping[str, list], params: Mapping[str, Any], *, caller: str
) -> None:
    """Check ``params`` against ``constraints``; raise a message naming the bad one.

    Parameters
    ----------
    constraints : mapping of str to list
        For each parameter, the constraints of which at least one must hold (scikit-learn's
        ``_parameter_constraints`` format). Parameters absent from ``constraints`` are not
        checked; the string ``"no_validation"`` skips one explicitly.
    params : mapping of str to object
        The values to check.
    caller : str
        The owner named in the message: an estimator's class name, a function, a suite key.

    Raises
    ------
    InvalidParameterError
        A subclass of both ValueError and TypeError, so callers catching either see it.
    """
    validate_parameter_constraints(dict(constraints), dict(params), caller_name=caller)
