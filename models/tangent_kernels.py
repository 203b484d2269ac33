"""Tangent kernels of torch networks, computed two ways (docs/design.md §1.7).

A network ``f_theta : R^d -> R^K`` has the empirical tangent kernel
``K(x, x') = J(x) P J(x')^T`` (a ``K x K`` block per pair of points), where ``J`` is the
Jacobian with respect to the parameters and ``P`` an optional diagonal preconditioner
(identity for plain SGD, ``D_t`` for Adam). This module computes it

* **structured**, for a :class:`torch.nn.Sequential` of :class:`torch.nn.Linear` layers and
  elementwise activations (:class:`StructuredMLP`): one forward and one backward pass give
  every layer input ``a`` and output sensitivity ``delta = df/dz``, and a linear layer's share
  of the kernel is ``(delta(x) . delta(x')) (a(x) . a(x') + 1)``, which costs
  ``m n (in + out)`` per layer instead of ``m n in out``;
  The tabular ResNet (:class:`~tabscope.models._resnet.TabularResNet`) has a structured
  route of its own (:class:`~tabscope.models._structured_resnet.StructuredResNet`): the same
  Linear-layer shares plus elementwise LayerNorm shares;
* **functional**, for any module (:class:`FunctionalNetwork`), from per-example Jacobians
  obtained with :mod:`torch.func` (``vmap`` over ``jacrev``), so that users can plug in
  their own architectures.

Both network classes also provide what the telescoping replay needs (forward passes,
gradients of the training loss, forward-mode Jacobian-vector products), so a training run
never mixes the two differentiation routes. The entry points are :func:`tangent_kernel` and
:func:`make_network`; the route is a :class:`~tabscope.vocabulary.KernelMethod`, chosen
through one dispatch table (:data:`ROUTES`). The pieces live in private modules: activations
(``_activations``), the routes (``_structured``, ``_functional``), kernel blocks
(``_kernel_blocks``).

A diagonal preconditioner breaks the structured factorisation (the layer's share becomes
``delta(x)^T (D * delta_i a_i^T) a(x)``), so preconditioned kernels are computed from
explicit Jacobian rows, built from the layer factors without autograd on the structured
path, in memory-bounded blocks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from tabscope.validation import validate_parameters, one_of
from tabscope.vocabulary import KernelMethod

from ._activations import ElementwiseActivation, elementwise_activation
from ._differentiation import Coefficient
from ._functional import FunctionalNetwork
from ._kernel_blocks import MAX_BLOCK_ELEMENTS, assemble_kernel, kernel_blocks
from ._resnet import TabularResNet
from ._structured import StructuredMLP, UnsupportedModuleError
from ._structured_resnet import StructuredResNet

__all__ = [
    "ElementwiseActivation",
    "FunctionalNetwork",
    "ROUTES",
    "StructuredMLP",
    "UnsupportedModuleError",
    "assemble_kernel",
    "elementwise_activation",
    "kernel_blocks",
    "make_network",
    "tangent_kernel",
]

Network = StructuredMLP | StructuredResNet | FunctionalNetwork


def _structured(module: nn.Module, n_outputs: int) -> tuple[Network, str]:
    if isinstance(module, TabularResNet):
        return StructuredResNet.from_module(module), KernelMethod.STRUCTURED.value
    return StructuredMLP.from_module(module), KernelMethod.STRUCTURED.value


def _functional(module: nn.Module, n_outputs: int) -> tuple[Network, str]:
    return FunctionalNetwork(module, n_outputs), KernelMethod.FUNCTIONAL.value


def _auto(module: nn.Module, n_outputs: int) -> tuple[Network, str]:
    try:
        return _structured(module, n_outputs)
    except UnsupportedModuleError:
        return _functional(module, n_outputs)


ROUTES: dict[KernelMethod, Callable[[nn.Module, int], tuple[Network, str]]] = {
    KernelMethod.AUTO: _auto,
    KernelMethod.STRUCTURED: _structured,
    KernelMethod.FUNCTIONAL: _functional,
}
"""The one dispatch from a :class:`~tabscope.vocabulary.KernelMethod` to the network route
that builds it, returning the network and the name of the route taken."""

_KERNEL_METHOD = {"kernel_method": [one_of(KernelMethod)]}


def make_network(
    module: nn.Module,
    n_outputs: int,
    kernel_method: str = KernelMethod.AUTO,
) -> tuple[Network, str]:
    """The differentiation route for ``module`` and its name.

    ``"auto"`` takes the structured route when the module qualifies and the functional one
    otherwise; ``"structured"`` raises :class:`UnsupportedModuleError` when it does not.
    """
    validate_parameters(_KERNEL_METHOD, {"kernel_method": kernel_method}, caller="make_network")
    return ROUTES[KernelMethod(kernel_method)](module, n_outputs)


def tangent_kernel(
    module: nn.Module,
    X1: Tensor,
    X2: Tensor | None = None,
    *,
    kernel_method: str = KernelMethod.AUTO,
    preconditioner: Sequence[Tensor] | None = None,
    max_block_elements: int = MAX_BLOCK_ELEMENTS,
    method: str | None = None,
) -> Tensor:
    """Empirical tangent kernel ``J(X1) P J(X2)^T`` of a module at its current parameters.

    Parameters
    ----------
    module : torch.nn.Module
        The network; it must map ``(n, d)`` to ``(n, K)`` or ``(n,)``.
    X1 : Tensor of shape (n1, d)
    X2 : Tensor of shape (n2, d), optional
        Defaults to ``X1``.
    kernel_method : {"auto", "structured", "functional"}, default="auto"
        A :class:`~tabscope.vocabulary.KernelMethod`: ``"structured"`` uses the per-layer
        factorisation (Linear + elementwise activations only,
        :class:`UnsupportedModuleError` otherwise); ``"functional"`` per-example Jacobians
        from :mod:`torch.func`; ``"auto"`` the first that applies.
    preconditioner : sequence of Tensor, optional
        Diagonal preconditioner ``P``, one tensor per parameter (shaped like it).
    max_block_elements : int, default=2**24
        Largest number of elements of an intermediate block (explicit Jacobian rows on
        the functional path); larger blocks trade memory for fewer ``jacrev`` calls.
    method : str, optional
        Deprecated name of ``kernel_method``.

    Returns
    -------
    kernel : Tensor of shape (n1, n2) if K == 1, else (n1, n2, K, K)
    """
    if method is not None:
        warnings.warn(
            "tangent_kernel(method=...) is deprecated; pass kernel_method=... instead",
            FutureWarning,
            stacklevel=2,
        )
        kernel_method = method
    validate_parameters(
        _KERNEL_METHOD, {"kernel_method": kernel_method}, caller="tangent_kernel"
    )
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    for name, value in (("X1", X1), ("X2", X2)):
        if value is not None and (not isinstance(value, Tensor) or value.ndim != 2):
            raise ValueError(f"{name} must be a 2-D torch.Tensor, got {type(value).__name__}")
    X2 = X1 if X2 is None else X2
    params = tuple(p.detach() for p in module.parameters())
    coefficient: Coefficient = 1.0
    if preconditioner is not None:
        coefficient = tuple(c.detach() for c in preconditioner)
        if len(coefficient) != len(params) or any(
            c.shape != p.shape for c, p in zip(coefficient, params)
        ):
            raise ValueError(
                "preconditioner must hold one tensor per parameter, shaped like it"
            )
    with torch.no_grad():
        n_outputs = int(module(X1[:1]).reshape(1, -1).shape[1])
    network, _ = make_network(module, n_outputs, kernel_method)
    left = network.evaluate(params, X1).factors
    right = network.evaluate(params, X2).factors
    kernel = assemble_kernel(
        [(1.0, left)], right, coefficient, max_elements=int(max_block_elements)
    )
    if n_outputs == 1:
        return kernel[:, :, 0, 0]
    return kernel
