"""The contract both differentiation routes fulfil (docs/design.md §1.7).

A network route (:class:`~tabscope.models._structured.StructuredMLP` or
:class:`~tabscope.models._functional.FunctionalNetwork`) takes parameter tuples
(:data:`Params`), produces Jacobian factors (:class:`JacobianFactors`) of a set of points
and a :class:`BatchRecord` per training step; kernels are contracted with a scalar or
diagonal preconditioner (:data:`Coefficient`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from torch import Tensor

if TYPE_CHECKING:
    from ._functional import FunctionalNetwork
    from ._structured import StructuredMLP

__all__ = ["BatchRecord", "Coefficient", "JacobianFactors", "Network", "Params"]

Params = tuple[Tensor, ...]
"""Network parameters, in the order of ``module.parameters()``."""

Coefficient = float | Params
"""A preconditioner: a scalar (learning rate) or one tensor per parameter (diagonal)."""

Network = "StructuredMLP | FunctionalNetwork"
"""Either differentiation route (see :class:`~tabscope.vocabulary.KernelMethod`)."""


class JacobianFactors(Protocol):
    """Whatever a network needs to produce the Jacobian rows of a set of points.

    Rows have shape ``(n, k, P)``: ``k`` is the number of outputs (or 1 when the rows are
    per-example gradients of the loss, ``J(x_i)^T g_i``), ``P`` the number of parameters.
    """

    def __len__(self) -> int: ...

    @property
    def n_rows_per_point(self) -> int: ...

    @property
    def n_columns(self) -> int: ...

    def rows(self, index: slice) -> Tensor: ...

    def take(self, index: Tensor | slice) -> JacobianFactors: ...



@dataclass
class BatchRecord:
    """One training step's batch: loss, mean gradient, ``g_i`` and cached passes."""

    loss: Tensor
    gradients: Params
    g: Tensor
    X: Tensor
    params: Params
    extra: dict = field(default_factory=dict)

