"""Tangent kernels of torch networks, computed two ways (DESIGN.md 1.7).

A network ``f_theta : R^d -> R^K`` has the empirical tangent kernel
``K(x, x') = J(x) P J(x')^T`` (a ``K x K`` block per pair of points), where ``J`` is the
Jacobian with respect to the parameters and ``P`` an optional diagonal preconditioner
(identity for plain SGD, ``D_t`` for Adam). This module computes it

* **structured**, for a :class:`torch.nn.Sequential` of :class:`torch.nn.Linear` layers and
  elementwise activations (:class:`StructuredMLP`): one forward and one backward pass give
  every layer input ``a`` and output sensitivity ``delta = df/dz``, and a linear layer's share
  of the kernel is ``(delta(x) . delta(x')) (a(x) . a(x') + 1)``, which costs
  ``m n (in + out)`` per layer instead of ``m n in out``;
* **functional**, for any module (:class:`FunctionalNetwork`), from per-example Jacobians
  obtained with :mod:`torch.func` (``vmap`` over ``jacrev``), so that users can plug in
  their own architectures.

Both network classes also provide what the telescoping replay needs (forward passes,
gradients of the training loss, forward-mode Jacobian-vector products), so a training run
never mixes the two differentiation routes. The entry point for users is
:func:`tangent_kernel`.

A diagonal preconditioner breaks the structured factorisation (the layer's share becomes
``delta(x)^T (D * delta_i a_i^T) a(x)``), so preconditioned kernels are computed from
explicit Jacobian rows, built from the layer factors without autograd on the structured
path, in memory-bounded blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

__all__ = [
    "ElementwiseActivation",
    "FunctionalNetwork",
    "StructuredMLP",
    "UnsupportedModuleError",
    "elementwise_activation",
    "make_network",
    "tangent_kernel",
]

Params = tuple[Tensor, ...]
"""Network parameters, in the order of ``module.parameters()``."""

Coefficient = float | Params
"""A preconditioner: a scalar (learning rate) or one tensor per parameter (diagonal)."""

# Largest number of elements one block of explicit Jacobian rows (or of kernel values)
# may hold: 2**24 float32 values are 64 MiB, so the peak stays in the low hundreds of MiB.
MAX_BLOCK_ELEMENTS = 1 << 24


class UnsupportedModuleError(ValueError):
    """A module cannot be handled by the structured (Linear + activation) kernel path."""


# ---------------------------------------------------------------------------------------
# Elementwise activations with closed-form derivatives
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementwiseActivation:
    """An elementwise activation ``phi`` together with its derivative ``phi'``.

    Parameters
    ----------
    name : str
        Human-readable name (used in error messages and reprs).
    function : callable
        ``phi``, applied out of place.
    derivative : callable
        ``phi'``, with the same conventions as torch's autograd at kinks (e.g. ReLU has
        derivative 0 at 0), so that the structured and functional paths agree exactly.
    """

    name: str
    function: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]

    def __call__(self, z: Tensor) -> Tensor:
        return self.function(z)


_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_derivative(z: Tensor) -> Tensor:
    cdf = 0.5 * (1.0 + torch.erf(z * _SQRT_HALF))
    return cdf + z * torch.exp(-0.5 * z * z) * _INV_SQRT_TWO_PI


def _gelu_tanh_derivative(z: Tensor) -> Tensor:
    inner = _SQRT_TWO_OVER_PI * (z + 0.044715 * z**3)
    t = torch.tanh(inner)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _SQRT_TWO_OVER_PI * (
        1.0 + 3.0 * 0.044715 * z * z
    )


def _silu_derivative(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _sigmoid_derivative(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 - s)


def _tanh_derivative(z: Tensor) -> Tensor:
    t = torch.tanh(z)
    return 1.0 - t * t


def elementwise_activation(module: nn.Module) -> ElementwiseActivation | None:
    """The :class:`ElementwiseActivation` equivalent to ``module``, or None if unsupported.

    Supported: ``Identity``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``GELU`` (both
    approximations), ``SiLU``, ``Tanh``, ``Sigmoid`` and ``Softplus``.
    """
    if isinstance(module, nn.Identity):
        return ElementwiseActivation("identity", lambda z: z, torch.ones_like)
    if isinstance(module, nn.ReLU):
        return ElementwiseActivation(
            "relu", torch.relu, lambda z: (z > 0).to(z.dtype)
        )
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        return ElementwiseActivation(
            "leaky_relu",
            lambda z: nn.functional.leaky_relu(z, slope),
            lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, slope)),
        )
    if isinstance(module, nn.ELU):
        alpha = float(module.alpha)
        return ElementwiseActivation(
            "elu",
            lambda z: nn.functional.elu(z, alpha),
            lambda z: torch.where(z > 0, torch.ones_like(z), alpha * torch.exp(z)),
        )
    if isinstance(module, nn.GELU):
        if module.approximate == "tanh":
            return ElementwiseActivation(
                "gelu_tanh",
                lambda z: nn.functional.gelu(z, approximate="tanh"),
                _gelu_tanh_derivative,
            )
        return ElementwiseActivation("gelu", nn.functional.gelu, _gelu_derivative)
    if isinstance(module, nn.SiLU):
        return ElementwiseActivation("silu", nn.functional.silu, _silu_derivative)
    if isinstance(module, nn.Tanh):
        return ElementwiseActivation("tanh", torch.tanh, _tanh_derivative)
    if isinstance(module, nn.Sigmoid):
        return ElementwiseActivation("sigmoid", torch.sigmoid, _sigmoid_derivative)
    if isinstance(module, nn.Softplus):
        beta, threshold = float(module.beta), float(module.threshold)
        return ElementwiseActivation(
            "softplus",
            lambda z: nn.functional.softplus(z, beta, threshold),
            lambda z: torch.where(
                z * beta > threshold, torch.ones_like(z), torch.sigmoid(z * beta)
            ),
        )
    return None


_SUPPORTED_ACTIVATIONS = (
    "Identity, ReLU, LeakyReLU, ELU, GELU, SiLU, Tanh, Sigmoid, Softplus"
)


# ---------------------------------------------------------------------------------------
# Jacobian factors and kernel blocks shared by both paths
# ---------------------------------------------------------------------------------------


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


def _chunk_slices(n: int, size: int) -> Iterator[slice]:
    size = max(1, int(size))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _flat_coefficient(coefficient: Coefficient) -> float | Tensor:
    if isinstance(coefficient, (int, float)):
        return float(coefficient)
    return torch.cat([c.reshape(-1) for c in coefficient])


def kernel_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient = 1.0,
    *,
    max_elements: int = MAX_BLOCK_ELEMENTS,
) -> Iterator[tuple[slice, slice, Tensor]]:
    """Blocks of ``sum_j w_j J_j(x) P J(x')^T`` over evaluation and batch points.

    Parameters
    ----------
    eval_terms : sequence of (float, factors)
        Weighted Jacobian factors of the same evaluation points, e.g. ``[(1.0, F)]`` for a
        first-order kernel or ``[(0.5, F_prev), (0.5, F_next)]`` for the trapezoid rule.
    batch : factors
        Jacobian factors of the second set of points (training examples).
    coefficient : float or tuple of Tensor
        Scalar or diagonal preconditioner ``P``.
    max_elements : int
        Bound on the elements of each block and of each set of explicit Jacobian rows.

    Yields
    ------
    eval_slice, batch_slice : slice
        Which evaluation and batch points the block covers.
    block : Tensor of shape (n_eval_block, n_batch_block, k_eval, k_batch)
    """
    first = eval_terms[0][1]
    structured = isinstance(first, StructuredFactors) and isinstance(batch, StructuredFactors)
    if structured and isinstance(coefficient, (int, float)):
        yield from _structured_blocks(eval_terms, batch, float(coefficient), max_elements)
    elif structured:
        yield from _preconditioned_blocks(eval_terms, batch, coefficient, max_elements)
    else:
        yield from _row_blocks(eval_terms, batch, coefficient, max_elements)


def _row_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    n_params = batch.n_columns
    flat_coefficient = _flat_coefficient(coefficient)
    eval_chunk = max(1, max_elements // (k_eval * n_params))
    batch_chunk = max(1, max_elements // (k_batch * n_params))
    batch_slices = list(_chunk_slices(n_batch, batch_chunk))
    # Rows cost a jacrev per point on the functional path: when the batch side fits in
    # one block, build it once; otherwise it is rebuilt for every chunk of evaluation rows.
    cached = None
    if len(batch_slices) == 1:
        cached = _preconditioned_rows(batch, batch_slices[0], flat_coefficient, k_batch)
    for eval_slice in _chunk_slices(n_eval, eval_chunk):
        rows = None
        for weight, factors in eval_terms:
            term = factors.rows(eval_slice)
            rows = term * weight if rows is None else rows.add_(term, alpha=weight)
        n1 = rows.shape[0]
        left = rows.reshape(n1 * k_eval, n_params)
        for batch_slice in batch_slices:
            right = cached
            if right is None:
                right = _preconditioned_rows(batch, batch_slice, flat_coefficient, k_batch)
            n2 = right.shape[0] // k_batch
            block = left @ right.T
            yield eval_slice, batch_slice, block.reshape(n1, k_eval, n2, k_batch).transpose(
                1, 2
            )


def _preconditioned_rows(
    batch: JacobianFactors, index: slice, coefficient: float | Tensor, k_batch: int
) -> Tensor:
    rows = batch.rows(index)
    if isinstance(coefficient, Tensor):
        rows = rows * coefficient
    elif coefficient != 1.0:  # rows() returns fresh tensors: scale in place
        rows = rows.mul_(coefficient)
    return rows.reshape(rows.shape[0] * k_batch, rows.shape[-1])


def _structured_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: StructuredFactors,
    coefficient: float,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    # a block, one layer's product of deltas (same size) and one of inputs, per pair
    per_pair = 2 * k_eval * k_batch + 1
    batch_chunk = min(n_batch, max(1, max_elements // per_pair))
    eval_chunk = max(1, max_elements // (per_pair * batch_chunk))
    for eval_slice in _chunk_slices(n_eval, eval_chunk):
        for batch_slice in _chunk_slices(n_batch, batch_chunk):
            block = None
            for weight, factors in eval_terms:
                term = _structured_block(factors, batch, eval_slice, batch_slice)
                if block is None:
                    block = term.mul_(weight * coefficient)
                else:
                    block.add_(term, alpha=weight * coefficient)
            yield eval_slice, batch_slice, block


def _preconditioned_blocks(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: StructuredFactors,
    coefficient: Params,
    max_elements: int,
) -> Iterator[tuple[slice, slice, Tensor]]:
    """Structured kernel under a diagonal preconditioner, layer by layer.

    The batch side is preconditioned explicitly, ``G_i = D * (delta_i a_i^T)`` (one
    ``out x in`` matrix per example and output), and each evaluation point contracts it
    as ``delta(x)^T G_i a(x)``: one matrix product ``a(x) G^T`` per layer, so the
    ``m x P`` Jacobian rows of the evaluation points are never built.
    """
    network = batch.network
    n_eval, n_batch = len(eval_terms[0][1]), len(batch)
    k_eval, k_batch = eval_terms[0][1].n_rows_per_point, batch.n_rows_per_point
    widest = max(d.shape[-1] for d in batch.deltas)
    batch_chunk = max(1, max_elements // (k_batch * batch.n_columns))
    for batch_slice in _chunk_slices(n_batch, batch_chunk):
        preconditioned = []
        for layer_index, layer in enumerate(network.layers):
            a = batch.inputs[layer_index][batch_slice]
            d = batch.deltas[layer_index][batch_slice]
            g_weight = d[:, :, :, None] * a[:, None, None, :] * coefficient[layer.weight]
            g_bias = None if layer.bias is None else d * coefficient[layer.bias]
            preconditioned.append((g_weight, g_bias))
        n2 = batch_slice.stop - batch_slice.start
        columns = n2 * k_batch
        eval_chunk = max(1, max_elements // (columns * widest))
        for eval_slice in _chunk_slices(n_eval, eval_chunk):
            block = None
            for weight, factors in eval_terms:
                for layer_index, (g_weight, g_bias) in enumerate(preconditioned):
                    a_x = factors.inputs[layer_index][eval_slice]
                    d_x = factors.deltas[layer_index][eval_slice]
                    n1, _, width = d_x.shape
                    # (n1, in) @ (in, columns * out): every example's G_i applied to a(x)
                    projected = a_x @ g_weight.reshape(columns * width, -1).T
                    if g_bias is not None:
                        projected += g_bias.reshape(1, columns * width)
                    projected = projected.reshape(n1, columns, width)
                    term = torch.bmm(d_x, projected.transpose(1, 2))
                    term = term.reshape(n1, k_eval, n2, k_batch).transpose(1, 2)
                    if block is None:
                        block = term * weight
                    else:
                        block.add_(term, alpha=weight)
            yield eval_slice, batch_slice, block


def _structured_block(
    left: StructuredFactors, right: StructuredFactors, left_slice: slice, right_slice: slice
) -> Tensor:
    """``sum_l (delta_l(x) . delta_l(x')) (a_l(x) . a_l(x') [+ 1])`` for two slices."""
    network = left.network
    total = None
    inputs_product = deltas_product = None  # reused buffers: fewer large allocations
    for layer_index, layer in enumerate(network.layers):
        a1 = left.inputs[layer_index][left_slice]
        a2 = right.inputs[layer_index][right_slice]
        d1 = left.deltas[layer_index][left_slice]
        d2 = right.deltas[layer_index][right_slice]
        n1, k1, width = d1.shape
        n2, k2, _ = d2.shape
        if layer.bias is not None:
            # a column of ones turns a . a' + 1 into one matrix product
            a1 = torch.cat([a1, a1.new_ones(n1, 1)], dim=1)
            a2 = torch.cat([a2, a2.new_ones(n2, 1)], dim=1)
        if k1 == 1 and k2 == 1:
            inputs_product = torch.mm(a1, a2.T, out=inputs_product)
            if total is None:
                total = torch.mm(d1[:, 0, :], d2[:, 0, :].T).mul_(inputs_product)
            else:
                deltas_product = torch.mm(d1[:, 0, :], d2[:, 0, :].T, out=deltas_product)
                total.addcmul_(deltas_product, inputs_product)
            continue
        inputs_product = a1 @ a2.T
        deltas_product = d1.reshape(n1 * k1, width) @ d2.reshape(n2 * k2, width).T
        term = deltas_product.reshape(n1, k1, n2, k2).transpose(1, 2)
        term = term * inputs_product[:, :, None, None]
        total = term if total is None else total.add_(term)
    if total.ndim == 2:
        total = total[:, :, None, None]
    return total


def assemble_kernel(
    eval_terms: Sequence[tuple[float, JacobianFactors]],
    batch: JacobianFactors,
    coefficient: Coefficient = 1.0,
    *,
    max_elements: int = MAX_BLOCK_ELEMENTS,
) -> Tensor:
    """The full kernel of :func:`kernel_blocks`, shape (n_eval, n_batch, k_eval, k_batch)."""
    first = eval_terms[0][1]
    out = None
    for eval_slice, batch_slice, block in kernel_blocks(
        eval_terms, batch, coefficient, max_elements=max_elements
    ):
        if block.shape[:2] == (len(first), len(batch)):
            return block  # one block covers everything: no copy
        if out is None:
            out = block.new_empty(
                (len(first), len(batch), first.n_rows_per_point, batch.n_rows_per_point)
            )
        out[eval_slice, batch_slice] = block
    return out


# ---------------------------------------------------------------------------------------
# Structured path: Sequential of Linear layers and elementwise activations
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LinearLayer:
    weight: int
    bias: int | None
    activation: ElementwiseActivation | None


@dataclass
class ForwardCache:
    """What a structured forward pass keeps for backward passes and JVPs.

    Attributes
    ----------
    inputs : list of Tensor
        Input ``a_{l-1}`` of each linear layer, shape (n, in_l).
    derivatives : list of Tensor or None
        ``phi'(z_l)`` of the activation that follows layer ``l`` (None: no activation).
    output : Tensor of shape (n, K)
    """

    inputs: list[Tensor]
    derivatives: list[Tensor | None]
    output: Tensor


@dataclass
class StructuredFactors:
    """Per-layer inputs and output sensitivities of a set of points.

    ``deltas[l]`` has shape (n, k, out_l): the derivative of each of the ``k`` outputs (or
    of the loss, ``k = 1``) with respect to the pre-activation ``z_l`` of layer ``l``.
    """

    network: StructuredMLP
    inputs: list[Tensor]
    deltas: list[Tensor]

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def n_rows_per_point(self) -> int:
        return int(self.deltas[0].shape[1])

    @property
    def n_columns(self) -> int:
        """Number of parameters ``P`` (the length of a Jacobian row)."""
        return sum(
            d.shape[-1] * (a.shape[-1] + (layer.bias is not None))
            for a, d, layer in zip(self.inputs, self.deltas, self.network.layers)
        )

    def take(self, index: Tensor | slice) -> StructuredFactors:
        return StructuredFactors(
            self.network,
            [a[index] for a in self.inputs],
            [d[index] for d in self.deltas],
        )

    def rows(self, index: slice) -> Tensor:
        """Explicit Jacobian rows, shape (n, k, P), in parameter order."""
        pieces: dict[int, Tensor] = {}
        for layer_index, layer in enumerate(self.network.layers):
            a = self.inputs[layer_index][index]
            d = self.deltas[layer_index][index]
            n, k, _ = d.shape
            pieces[layer.weight] = (d[:, :, :, None] * a[:, None, None, :]).reshape(n, k, -1)
            if layer.bias is not None:
                pieces[layer.bias] = d
        return torch.cat([pieces[i] for i in range(len(pieces))], dim=2)


class StructuredPoint:
    """A structured network evaluated at one parameter vector on a set of points."""

    def __init__(self, network: StructuredMLP, params: Params, cache: ForwardCache):
        self.network = network
        self.params = params
        self.cache = cache
        self._factors: StructuredFactors | None = None

    @property
    def output(self) -> Tensor:
        return self.cache.output

    @property
    def factors(self) -> StructuredFactors:
        """Per-output Jacobian factors (computed on first use, then kept)."""
        if self._factors is None:
            deltas = self.network.output_deltas(self.params, self.cache)
            self._factors = StructuredFactors(self.network, self.cache.inputs, deltas)
        return self._factors

    def jvp(self, tangents: Sequence[Params]) -> Tensor:
        """``J(x) v`` for each tangent ``v``, shape (n_tangents, n, K)."""
        return self.network.jvp(self.params, self.cache, tangents)


class StructuredMLP:
    """A :class:`torch.nn.Sequential` of Linear layers and elementwise activations.

    Forward and backward passes, Jacobian-vector products and Jacobian factors are
    written out by hand, which is what makes the structured kernel cheap.

    Use :meth:`from_module`; the parameter tuples the methods take are in the order of
    ``module.parameters()``.
    """

    def __init__(self, layers: Sequence[_LinearLayer], n_parameters: int):
        self.layers = tuple(layers)
        self.n_parameters = n_parameters

    @classmethod
    def from_module(cls, module: nn.Module) -> StructuredMLP:
        """Parse ``module``; raise :class:`UnsupportedModuleError` if it does not qualify.

        Parameters
        ----------
        module : torch.nn.Module
            A :class:`torch.nn.Sequential` (possibly nested) whose first layer is
            :class:`torch.nn.Linear`, followed by Linear layers and at most one supported
            elementwise activation after each Linear layer.
        """
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"module must be a torch.nn.Module, got {type(module).__name__}"
            )
        if not isinstance(module, nn.Sequential):
            raise UnsupportedModuleError(
                "module is not supported by the structured kernel path: expected a "
                f"torch.nn.Sequential of Linear layers and elementwise activations, got "
                f"{type(module).__name__}; use the functional (torch.func) path instead"
            )
        if any(True for _ in module.buffers()):
            raise UnsupportedModuleError(
                "module is not supported by the structured kernel path: it has buffers; "
                "use the functional (torch.func) path instead"
            )
        position = {id(p): i for i, p in enumerate(module.parameters())}
        layers: list[_LinearLayer] = []
        for name, child in _flatten_sequential(module):
            if isinstance(child, nn.Linear):
                bias = None if child.bias is None else position[id(child.bias)]
                layers.append(_LinearLayer(position[id(child.weight)], bias, None))
                continue
            if isinstance(child, nn.Identity):
                continue
            activation = elementwise_activation(child)
            if activation is None:
                raise UnsupportedModuleError(
                    "module is not supported by the structured kernel path: layer "
                    f"{name!r} ({type(child).__name__}) is neither torch.nn.Linear nor a "
                    f"supported elementwise activation ({_SUPPORTED_ACTIVATIONS}); use the "
                    "functional (torch.func) path instead"
                )
            if not layers:
                raise UnsupportedModuleError(
                    "module is not supported by the structured kernel path: its first "
                    f"layer {name!r} must be torch.nn.Linear, got {type(child).__name__}"
                )
            if layers[-1].activation is not None:
                raise UnsupportedModuleError(
                    "module is not supported by the structured kernel path: layer "
                    f"{name!r} is a second activation in a row after a Linear layer"
                )
            last = layers[-1]
            layers[-1] = _LinearLayer(last.weight, last.bias, activation)
        if not layers:
            raise UnsupportedModuleError(
                "module is not supported by the structured kernel path: it has no "
                "torch.nn.Linear layer"
            )
        counted = sum(1 + (layer.bias is not None) for layer in layers)
        if counted != len(position):
            raise UnsupportedModuleError(
                "module is not supported by the structured kernel path: some of its "
                "parameters do not belong to torch.nn.Linear layers"
            )
        return cls(layers, len(position))

    # -- passes ------------------------------------------------------------------------

    def forward(self, params: Params, X: Tensor) -> Tensor:
        """Network output, shape (n, K)."""
        a = X
        for layer in self.layers:
            a = self._affine(params, layer, a)
            if layer.activation is not None:
                a = layer.activation(a)
        return a

    @staticmethod
    def _affine(params: Params, layer: _LinearLayer, a: Tensor) -> Tensor:
        weight = params[layer.weight]
        if layer.bias is None:
            return a @ weight.T
        return torch.addmm(params[layer.bias], a, weight.T)

    def forward_cache(self, params: Params, X: Tensor) -> ForwardCache:
        """Forward pass keeping each layer's input and activation derivative."""
        inputs: list[Tensor] = []
        derivatives: list[Tensor | None] = []
        a = X
        for layer in self.layers:
            inputs.append(a)
            z = self._affine(params, layer, a)
            if layer.activation is None:
                derivatives.append(None)
                a = z
            else:
                derivatives.append(layer.activation.derivative(z))
                a = layer.activation(z)
        return ForwardCache(inputs, derivatives, a)

    def evaluate(self, params: Params, X: Tensor) -> StructuredPoint:
        """The network at ``params`` on ``X``, ready for JVPs and Jacobian factors."""
        return StructuredPoint(self, params, self.forward_cache(params, X))

    def backward(
        self, params: Params, cache: ForwardCache, seed: Tensor
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Reverse pass of ``sum_n seed_n . f(x_n)``.

        Returns
        -------
        gradients : list of Tensor
            Gradient with respect to each parameter (summed over the points).
        deltas : list of Tensor
            Per-point sensitivity ``d(seed . f)/dz_l`` of each layer, shape (n, out_l).
        """
        gradients: list[Tensor | None] = [None] * self.n_parameters
        deltas: list[Tensor | None] = [None] * len(self.layers)
        dz = seed if cache.derivatives[-1] is None else seed * cache.derivatives[-1]
        for layer_index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[layer_index]
            deltas[layer_index] = dz
            gradients[layer.weight] = dz.T @ cache.inputs[layer_index]
            if layer.bias is not None:
                gradients[layer.bias] = dz.sum(dim=0)
            if layer_index > 0:
                da = dz @ params[layer.weight]
                derivative = cache.derivatives[layer_index - 1]
                dz = da if derivative is None else da * derivative
        return gradients, deltas  # type: ignore[return-value]

    def output_deltas(self, params: Params, cache: ForwardCache) -> list[Tensor]:
        """Per-output sensitivities ``df_k/dz_l`` of every layer, shape (n, K, out_l)."""
        output = cache.output
        n, k = output.shape
        eye = torch.eye(k, dtype=output.dtype, device=output.device)
        dz = eye.expand(n, k, k)
        if cache.derivatives[-1] is not None:
            dz = dz * cache.derivatives[-1][:, None, :]
        deltas: list[Tensor | None] = [None] * len(self.layers)
        for layer_index in range(len(self.layers) - 1, -1, -1):
            deltas[layer_index] = dz
            if layer_index > 0:
                da = dz @ params[self.layers[layer_index].weight]
                derivative = cache.derivatives[layer_index - 1]
                dz = da if derivative is None else da * derivative[:, None, :]
        return deltas  # type: ignore[return-value]

    def jvp(self, params: Params, cache: ForwardCache, tangents: Sequence[Params]) -> Tensor:
        """Forward-mode ``J(x) v`` for several tangents at once, shape (T, n, K).

        The tangents share the primal pass in ``cache``; their weight tangents go through
        one matrix product per layer.
        """
        n_tangents = len(tangents)
        n = cache.inputs[0].shape[0]
        a_dot = None
        for layer_index, layer in enumerate(self.layers):
            a = cache.inputs[layer_index]
            weight = params[layer.weight]
            out_features, in_features = weight.shape
            weight_dot = torch.stack([t[layer.weight] for t in tangents])
            z_dot = a @ weight_dot.reshape(n_tangents * out_features, in_features).T
            z_dot = z_dot.reshape(n, n_tangents, out_features).transpose(0, 1)
            if layer.bias is not None:
                bias_dot = torch.stack([t[layer.bias] for t in tangents])
                z_dot = z_dot + bias_dot[:, None, :]
            if a_dot is not None:
                z_dot = z_dot + a_dot @ weight.T
            derivative = cache.derivatives[layer_index]
            a_dot = z_dot if derivative is None else z_dot * derivative
        return a_dot

    # -- training ----------------------------------------------------------------------

    def loss_and_gradients(
        self, params: Params, X: Tensor, Y: Tensor, loss: LossFunction
    ) -> BatchRecord:
        """Mean training loss on a batch, its gradient, and what the lens needs of it."""
        cache = self.forward_cache(params, X)
        g = loss.gradient(cache.output, Y)
        sums, loss_deltas = self.backward(params, cache, g)
        scale = 1.0 / X.shape[0]
        gradients = tuple(s.mul_(scale) for s in sums)
        return BatchRecord(
            loss=loss.value(cache.output, Y),
            gradients=gradients,
            g=g,
            X=X,
            params=params,
            extra={"cache": cache, "loss_deltas": loss_deltas},
        )

    def batch_factors(self, record: BatchRecord, per_output: bool) -> StructuredFactors:
        """Jacobian factors of a training batch at the parameters it was trained at.

        ``per_output=False`` gives per-example loss gradients ``J(x_i)^T g_i`` (one row per
        example, straight from the training backward pass); ``True`` the ``K`` rows of
        ``J(x_i)``.
        """
        cache: ForwardCache = record.extra["cache"]
        if per_output:
            deltas = self.output_deltas(record.params, cache)
        else:
            deltas = [d[:, None, :] for d in record.extra["loss_deltas"]]
        return StructuredFactors(self, cache.inputs, deltas)


def _flatten_sequential(module: nn.Sequential, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _flatten_sequential(child, prefix=f"{full}.")
        else:
            yield full, child


# ---------------------------------------------------------------------------------------
# Functional path: any module, through torch.func
# ---------------------------------------------------------------------------------------


@dataclass
class FunctionalFactors:
    """Jacobian rows of a set of points, computed on demand with ``vmap(jacrev)``.

    With ``weights`` (the loss gradients ``g_i``) the rows are contracted to per-example
    loss gradients ``J(x_i)^T g_i``.
    """

    network: FunctionalNetwork
    params: Params
    X: Tensor
    weights: Tensor | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_rows_per_point(self) -> int:
        return 1 if self.weights is not None else self.network.n_outputs

    @property
    def n_columns(self) -> int:
        """Number of parameters ``P`` (the length of a Jacobian row)."""
        return sum(p.numel() for p in self.params)

    def take(self, index: Tensor | slice) -> FunctionalFactors:
        weights = None if self.weights is None else self.weights[index]
        return FunctionalFactors(self.network, self.params, self.X[index], weights)

    def rows(self, index: slice) -> Tensor:
        rows = self.network.jacobian_rows(self.params, self.X[index])
        if self.weights is None:
            return rows
        return torch.einsum("nkp,nk->np", rows, self.weights[index])[:, None, :]


class FunctionalPoint:
    """A functional network evaluated at one parameter vector on a set of points."""

    def __init__(self, network: FunctionalNetwork, params: Params, X: Tensor):
        self.network = network
        self.params = params
        self.X = X
        self._output: Tensor | None = None

    @property
    def output(self) -> Tensor:
        if self._output is None:
            self._output = self.network.forward(self.params, self.X)
        return self._output

    @property
    def factors(self) -> FunctionalFactors:
        return FunctionalFactors(self.network, self.params, self.X)

    def jvp(self, tangents: Sequence[Params]) -> Tensor:
        return self.network.jvp(self.params, self.X, tangents)


class FunctionalNetwork:
    """Any :class:`torch.nn.Module`, differentiated with :mod:`torch.func`.

    The module is called through :func:`torch.func.functional_call` with explicit
    parameters, in whatever mode (train/eval) it is in; buffers are held fixed.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a batch ``(n, d)`` to ``(n, K)`` (or ``(n,)`` when ``K == 1``).
    n_outputs : int
        ``K``.
    buffer_dtype : torch.dtype, optional
        Cast floating-point buffers to this dtype (used for float64 predictions).
    """

    def __init__(
        self, module: nn.Module, n_outputs: int, buffer_dtype: torch.dtype | None = None
    ):
        self.module = module
        self.n_outputs = int(n_outputs)
        self.names = tuple(name for name, _ in module.named_parameters())
        buffers = dict(module.named_buffers())
        if buffer_dtype is not None:
            buffers = {
                k: (v.to(buffer_dtype) if v.is_floating_point() else v)
                for k, v in buffers.items()
            }
        self.buffers = buffers

    def forward(self, params: Params, X: Tensor) -> Tensor:
        state = dict(zip(self.names, params))
        state.update(self.buffers)
        output = functional_call(self.module, state, (X,))
        return output.reshape(X.shape[0], self.n_outputs)

    def _single(self, params: Params, x: Tensor) -> Tensor:
        return self.forward(params, x.unsqueeze(0))[0]

    def evaluate(self, params: Params, X: Tensor) -> FunctionalPoint:
        return FunctionalPoint(self, params, X)

    def jvp(self, params: Params, X: Tensor, tangents: Sequence[Params]) -> Tensor:
        """Forward-mode ``J(x) v`` for each tangent, shape (T, n, K)."""
        outputs = []
        for tangent in tangents:
            _, out = jvp(lambda *p: self.forward(p, X), tuple(params), tuple(tangent))
            outputs.append(out)
        return torch.stack(outputs)

    def jacobian_rows(self, params: Params, X: Tensor) -> Tensor:
        """Per-example Jacobians ``J(x_n)``, flattened to shape (n, K, P)."""
        jacobians = vmap(jacrev(self._single), in_dims=(None, 0))(tuple(params), X)
        n = X.shape[0]
        return torch.cat([j.reshape(n, self.n_outputs, -1) for j in jacobians], dim=2)

    def loss_and_gradients(
        self, params: Params, X: Tensor, Y: Tensor, loss: LossFunction
    ) -> BatchRecord:
        output, pullback = vjp(lambda *p: self.forward(p, X), *params)
        output = output.detach()
        g = loss.gradient(output, Y)
        gradients = pullback(g * (1.0 / X.shape[0]))
        return BatchRecord(
            loss=loss.value(output, Y),
            gradients=tuple(gradients),
            g=g,
            X=X,
            params=params,
            extra={},
        )

    def batch_factors(self, record: BatchRecord, per_output: bool) -> FunctionalFactors:
        weights = None if per_output else record.g
        return FunctionalFactors(self, record.params, record.X, weights)


# ---------------------------------------------------------------------------------------
# Shared training records and losses (the networks need them; the optimiser does not)
# ---------------------------------------------------------------------------------------


class LossFunction(Protocol):
    """A per-example loss ``l(f, y)`` with its gradient ``g = dl/df``."""

    name: str

    def value(self, output: Tensor, target: Tensor) -> Tensor: ...

    def gradient(self, output: Tensor, target: Tensor) -> Tensor: ...


@dataclass
class BatchRecord:
    """One training step's batch: loss, mean gradient, ``g_i`` and cached passes."""

    loss: Tensor
    gradients: Params
    g: Tensor
    X: Tensor
    params: Params
    extra: dict = field(default_factory=dict)


Network = StructuredMLP | FunctionalNetwork


def make_network(
    module: nn.Module,
    n_outputs: int,
    method: Literal["auto", "structured", "functional"] = "auto",
) -> tuple[Network, str]:
    """The differentiation route for ``module`` and its name.

    ``"auto"`` takes the structured path when the module qualifies and the functional one
    otherwise; ``"structured"`` raises :class:`UnsupportedModuleError` when it does not.
    """
    if method not in ("auto", "structured", "functional"):
        raise ValueError(
            f"method must be 'auto', 'structured' or 'functional', got {method!r}"
        )
    if method != "functional":
        try:
            return StructuredMLP.from_module(module), "structured"
        except UnsupportedModuleError:
            if method == "structured":
                raise
    return FunctionalNetwork(module, n_outputs), "functional"


def tangent_kernel(
    module: nn.Module,
    X1: Tensor,
    X2: Tensor | None = None,
    *,
    method: Literal["auto", "structured", "functional"] = "auto",
    preconditioner: Sequence[Tensor] | None = None,
    max_block_elements: int = MAX_BLOCK_ELEMENTS,
) -> Tensor:
    """Empirical tangent kernel ``J(X1) P J(X2)^T`` of a module at its current parameters.

    Parameters
    ----------
    module : torch.nn.Module
        The network; it must map ``(n, d)`` to ``(n, K)`` or ``(n,)``.
    X1 : Tensor of shape (n1, d)
    X2 : Tensor of shape (n2, d), optional
        Defaults to ``X1``.
    method : {"auto", "structured", "functional"}, default="auto"
        ``"structured"`` uses the per-layer factorisation (Linear + elementwise
        activations only, :class:`UnsupportedModuleError` otherwise); ``"functional"``
        per-example Jacobians from :mod:`torch.func`; ``"auto"`` the first that applies.
    preconditioner : sequence of Tensor, optional
        Diagonal preconditioner ``P``, one tensor per parameter (shaped like it).
    max_block_elements : int, default=2**24
        Largest number of elements of an intermediate block (explicit Jacobian rows on
        the functional path); larger blocks trade memory for fewer ``jacrev`` calls.

    Returns
    -------
    kernel : Tensor of shape (n1, n2) if K == 1, else (n1, n2, K, K)
    """
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
    network, _ = make_network(module, n_outputs, method)
    left = network.evaluate(params, X1).factors
    right = network.evaluate(params, X2).factors
    kernel = assemble_kernel(
        [(1.0, left)], right, coefficient, max_elements=int(max_block_elements)
    )
    if n_outputs == 1:
        return kernel[:, :, 0, 0]
    return kernel
