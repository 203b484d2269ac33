"""The functional differentiation route: any torch module, through :mod:`torch.func`.

Per-example Jacobians come from ``vmap`` over ``jacrev``, JVPs and gradients from
``torch.func.jvp`` and ``vjp``, so users can plug in their own architectures
(:attr:`~tabscope.vocabulary.KernelMethod.FUNCTIONAL`: ``m n P`` per kernel and
``(m + n) P`` memory, docs/design.md §1.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from ._differentiation import BatchRecord, Params
from ._losses import LossFunction

__all__ = ["FunctionalFactors", "FunctionalNetwork", "FunctionalPoint"]


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

