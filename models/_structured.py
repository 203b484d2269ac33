"""The structured differentiation route: a Sequential of Linear layers and activations.

One forward and one backward pass give every layer input ``a`` and output sensitivity
``delta = df/dz``; a linear layer's share of the tangent kernel is then
``(delta(x) . delta(x')) (a(x) . a(x') + 1)``, which costs ``m n (in + out)`` per layer
instead of ``m n in out`` (:attr:`~tabscope.vocabulary.KernelMethod.STRUCTURED`,
docs/design.md §1.7). Forward and backward passes, Jacobian-vector products and Jacobian
factors are written out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._activations import _SUPPORTED_ACTIVATIONS, ElementwiseActivation, elementwise_activation
from ._differentiation import BatchRecord, Params
from ._losses import LossFunction

__all__ = ["StructuredFactors", "StructuredMLP", "StructuredPoint", "UnsupportedModuleError"]


class UnsupportedModuleError(ValueError):
    """A module cannot be handled by the structured (Linear + activation) kernel path."""


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

