"""The structured differentiation route of the tabular ResNet (docs/design.md §1.7).

:class:`StructuredResNet` does for :class:`~tabscope.models._resnet.TabularResNet` what
:class:`~tabscope.models._structured.StructuredMLP` does for a Sequential MLP: forward and
backward passes, Jacobian-vector products and Jacobian factors written out by hand. Every
Linear layer is applied once per example, so its kernel share is
``(delta(x) . delta(x')) (a(x) . a(x') + 1)`` from its input ``a`` and backpropagated delta;
the residual connections only change how the deltas are propagated. A LayerNorm's affine
parameters act elementwise on the normalised input ``xhat``: with ``u = delta_u`` the
derivative with respect to the LayerNorm's output, the per-example gradient of ``gamma`` is
``u * xhat`` and that of ``beta`` is ``u``, so their kernel shares are plain dot products of
those vectors (:class:`ResNetFactors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ._differentiation import BatchRecord, Coefficient, Params
from ._kernel_blocks import kernel_blocks
from ._losses import LossFunction
from ._resnet import TabularResNet
from ._structured import StructuredFactors, StructuredMLP, UnsupportedModuleError, _LinearLayer

__all__ = ["ResNetFactors", "StructuredResNet"]


@dataclass(frozen=True)
class _Norm:
    """Parameter positions of one LayerNorm, and its epsilon."""

    gamma: int
    beta: int
    eps: float


@dataclass
class _Cache:
    """A forward pass: Linear inputs, normalised LayerNorm inputs, ReLU masks, output.

    ``inputs`` follow the Linear layers (first, then two per block, then the head);
    ``xhat`` and ``rstd`` the LayerNorms (one per block, then the head's); ``masks`` the
    ReLUs (one per block, then the head's).
    """

    inputs: list[Tensor]
    xhat: list[Tensor]
    rstd: list[Tensor]
    masks: list[Tensor]
    output: Tensor


def _normalise_backward(d_xhat: Tensor, xhat: Tensor, rstd: Tensor) -> Tensor:
    """Pull a derivative with respect to ``xhat`` back to the LayerNorm's input."""
    mean = d_xhat.mean(dim=-1, keepdim=True)
    mean_x = (d_xhat * xhat).mean(dim=-1, keepdim=True)
    return (d_xhat - mean - xhat * mean_x) * rstd


class ResNetFactors:
    """Per-point Jacobian factors of a :class:`StructuredResNet`.

    Attributes
    ----------
    inputs, deltas : list of Tensor
        Per Linear layer: inputs ``a`` (n, in) and deltas ``df/dz`` (n, k, out).
    xhat, norm_deltas : list of Tensor
        Per LayerNorm: normalised inputs (n, d) and derivatives with respect to the
        LayerNorm's output (n, k, d).
    """

    def __init__(self, network, inputs, deltas, xhat, norm_deltas):
        self.network = network
        self.inputs = inputs
        self.deltas = deltas
        self.xhat = xhat
        self.norm_deltas = norm_deltas

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def n_rows_per_point(self) -> int:
        return int(self.deltas[0].shape[1])

    @property
    def n_columns(self) -> int:
        """Number of parameters ``P`` (the length of a Jacobian row)."""
        return sum(self.network.sizes)

    def take(self, index: Tensor | slice) -> ResNetFactors:
        return ResNetFactors(
            self.network,
            [a[index] for a in self.inputs],
            [d[index] for d in self.deltas],
            [x[index] for x in self.xhat],
            [u[index] for u in self.norm_deltas],
        )

    def _linear(self) -> StructuredFactors:
        return StructuredFactors(self.network.linear_view, self.inputs, self.deltas)

    def _norm_shares(self, index: slice) -> list[tuple[int, Tensor]]:
        """Per-example gradients of every LayerNorm parameter, (position, (n, k, d))."""
        shares = []
        for norm, xhat, u in zip(self.network.norms, self.xhat, self.norm_deltas):
            shares.append((norm.gamma, u[index] * xhat[index][:, None, :]))
            shares.append((norm.beta, u[index]))
        return shares

    def rows(self, index: slice) -> Tensor:
        """Explicit Jacobian rows, shape (n, k, P), in parameter order."""
        pieces = dict(self._norm_shares(index))
        for (weight, bias), a, d in zip(self.network.linears, self.inputs, self.deltas):
            a, d = a[index], d[index]
            n, k, _ = d.shape
            pieces[weight] = (d[:, :, :, None] * a[:, None, None, :]).reshape(n, k, -1)
            pieces[bias] = d
        return torch.cat([pieces[i] for i in range(len(pieces))], dim=2)

    def kernel_blocks(
        self,
        eval_terms: Sequence[tuple[float, ResNetFactors]],
        batch: ResNetFactors,
        coefficient: Coefficient,
        *,
        max_elements: int,
    ):
        """Blocks of ``sum_j w_j J_j(x) P J(x')^T``, as :func:`kernel_blocks` yields them.

        The Linear layers' shares come from the MLP route's contractions (scalar or
        diagonal ``P``); each LayerNorm adds ``(w * u(x)) . (P u(x'))`` per parameter.
        """
        linear_terms = [(weight, factors._linear()) for weight, factors in eval_terms]
        scalar = isinstance(coefficient, (int, float))
        for eval_slice, batch_slice, block in kernel_blocks(
            linear_terms, batch._linear(), coefficient, max_elements=max_elements
        ):
            right = batch._norm_shares(batch_slice)
            left = None
            for weight, factors in eval_terms:
                shares = factors._norm_shares(eval_slice)
                if left is None:
                    left = [(p, s * weight) for p, s in shares]
                else:
                    left = [(p, acc.add_(s, alpha=weight)) for (p, acc), (_, s) in zip(left, shares)]
            for (position, u), (_, v) in zip(left, right):
                scale = float(coefficient) if scalar else coefficient[position]
                block.add_(torch.einsum("ikd,jld->ijkl", u, v * scale))
            yield eval_slice, batch_slice, block


class _Point:
    """A :class:`StructuredResNet` at one parameter vector on a set of points."""

    def __init__(self, network: StructuredResNet, params: Params, cache: _Cache):
        self.network = network
        self.params = params
        self.cache = cache
        self._factors: ResNetFactors | None = None

    @property
    def output(self) -> Tensor:
        return self.cache.output

    @property
    def factors(self) -> ResNetFactors:
        if self._factors is None:
            self._factors = self.network.output_factors(self.params, self.cache)
        return self._factors

    def jvp(self, tangents: Sequence[Params]) -> Tensor:
        return self.network.jvp(self.params, self.cache, tangents)


class StructuredResNet:
    """Hand-written passes of a :class:`~tabscope.models._resnet.TabularResNet`.

    Use :meth:`from_module`; parameter tuples follow ``module.parameters()``.
    """

    def __init__(self, linears, norms, sizes):
        self.linears = tuple(linears)  # (weight, bias) positions, forward order
        self.norms = tuple(norms)
        self.sizes = tuple(sizes)
        self.n_parameters = len(sizes)
        layers = [_LinearLayer(w, b, None) for w, b in self.linears]
        self.linear_view = StructuredMLP(layers, self.n_parameters)

    @classmethod
    def from_module(cls, module) -> StructuredResNet:
        """Parse ``module``; :class:`UnsupportedModuleError` unless a TabularResNet."""
        if not isinstance(module, TabularResNet):
            raise UnsupportedModuleError(
                "module is not supported by the structured ResNet route: expected a "
                f"TabularResNet, got {type(module).__name__}"
            )
        position = {id(p): i for i, p in enumerate(module.parameters())}
        linears = [(position[id(l.weight)], position[id(l.bias)]) for l in module.linear_layers()]
        layer_norms = [block.norm for block in module.blocks] + [module.head_norm]
        norms = [
            _Norm(position[id(n.weight)], position[id(n.bias)], float(n.eps))
            for n in layer_norms
        ]
        sizes = [p.numel() for p in module.parameters()]
        return cls(linears, norms, sizes)

    # -- passes ------------------------------------------------------------------------

    @staticmethod
    def _affine(params: Params, layer: tuple[int, int], a: Tensor) -> Tensor:
        return torch.addmm(params[layer[1]], a, params[layer[0]].T)

    def _normalise(self, params: Params, norm: _Norm, h: Tensor):
        mean = h.mean(dim=-1, keepdim=True)
        centred = h - mean
        rstd = torch.rsqrt((centred * centred).mean(dim=-1, keepdim=True) + norm.eps)
        xhat = centred * rstd
        return xhat, rstd, xhat * params[norm.gamma] + params[norm.beta]

    def forward_cache(self, params: Params, X: Tensor) -> _Cache:
        cache = _Cache([X], [], [], [], X)
        h = self._affine(params, self.linears[0], X)
        for index, norm in enumerate(self.norms):
            xhat, rstd, u = self._normalise(params, norm, h)
            cache.xhat.append(xhat)
            cache.rstd.append(rstd)
            if index < len(self.norms) - 1:  # a residual block
                first, second = self.linears[1 + 2 * index], self.linears[2 + 2 * index]
                cache.inputs.append(u)
                z = self._affine(params, first, u)
                cache.masks.append((z > 0).to(z.dtype))
                r = torch.relu(z)
                cache.inputs.append(r)
                h = h + self._affine(params, second, r)
            else:  # the head
                cache.masks.append((u > 0).to(u.dtype))
                r = torch.relu(u)
                cache.inputs.append(r)
                cache.output = self._affine(params, self.linears[-1], r)
        return cache

    def forward(self, params: Params, X: Tensor) -> Tensor:
        """Network output, shape (n, K)."""
        return self.forward_cache(params, X).output

    def evaluate(self, params: Params, X: Tensor) -> _Point:
        return _Point(self, params, self.forward_cache(params, X))

    def _factors(self, params: Params, cache: _Cache, seed: Tensor) -> ResNetFactors:
        """Reverse pass of ``seed . f``, ``seed`` of shape (n, k, K), for every point."""
        n_norms = len(self.norms)
        deltas: list[Tensor | None] = [None] * len(self.linears)
        norm_deltas: list[Tensor | None] = [None] * n_norms
        deltas[-1] = seed
        du = (seed @ params[self.linears[-1][0]]) * cache.masks[-1][:, None, :]
        dh = None
        for index in range(n_norms - 1, -1, -1):
            norm = self.norms[index]
            norm_deltas[index] = du
            d_xhat = du * params[norm.gamma]
            pulled = _normalise_backward(
                d_xhat, cache.xhat[index][:, None, :], cache.rstd[index][:, None, :]
            )
            dh = pulled if dh is None else dh + pulled
            if index == 0:
                break
            # dh is the derivative at the output of block index - 1
            first, second = self.linears[2 * index - 1], self.linears[2 * index]
            deltas[2 * index] = dh
            dz = (dh @ params[second[0]]) * cache.masks[index - 1][:, None, :]
            deltas[2 * index - 1] = dz
            du = dz @ params[first[0]]
        deltas[0] = dh
        return ResNetFactors(self, cache.inputs, deltas, cache.xhat, norm_deltas)

    def output_factors(self, params: Params, cache: _Cache) -> ResNetFactors:
        """Per-output factors: deltas of every output ``f_k``, k = K rows per point."""
        n, k = cache.output.shape
        eye = torch.eye(k, dtype=cache.output.dtype, device=cache.output.device)
        return self._factors(params, cache, eye.expand(n, k, k))

    def jvp(self, params: Params, cache: _Cache, tangents: Sequence[Params]) -> Tensor:
        """Forward-mode ``J(x) v`` for several tangents at once, shape (T, n, K)."""

        def stacked(position):
            return torch.stack([t[position] for t in tangents])

        def affine_dot(layer, a, a_dot):
            weight, bias = layer
            out = torch.einsum("ni,toi->tno", a, stacked(weight)) + stacked(bias)[:, None, :]
            return out if a_dot is None else out + a_dot @ params[weight].T

        h_dot = affine_dot(self.linears[0], cache.inputs[0], None)
        for index, norm in enumerate(self.norms):
            xhat, rstd = cache.xhat[index], cache.rstd[index]
            mean = h_dot.mean(dim=-1, keepdim=True)
            mean_x = (h_dot * xhat).mean(dim=-1, keepdim=True)
            xhat_dot = (h_dot - mean - xhat * mean_x) * rstd
            u_dot = (
                stacked(norm.gamma)[:, None, :] * xhat
                + xhat_dot * params[norm.gamma]
                + stacked(norm.beta)[:, None, :]
            )
            if index < len(self.norms) - 1:
                first, second = self.linears[1 + 2 * index], self.linears[2 + 2 * index]
                z_dot = affine_dot(first, cache.inputs[1 + 2 * index], u_dot)
                r_dot = z_dot * cache.masks[index]
                h_dot = h_dot + affine_dot(second, cache.inputs[2 + 2 * index], r_dot)
            else:
                r_dot = u_dot * cache.masks[index]
                return affine_dot(self.linears[-1], cache.inputs[-1], r_dot)
        raise AssertionError("unreachable: the head is the last LayerNorm")

    # -- training ----------------------------------------------------------------------

    def loss_and_gradients(
        self, params: Params, X: Tensor, Y: Tensor, loss: LossFunction
    ) -> BatchRecord:
        """Mean training loss on a batch, its gradient, and what the lens needs of it."""
        cache = self.forward_cache(params, X)
        g = loss.gradient(cache.output, Y)
        factors = self._factors(params, cache, g[:, None, :])
        sums: list[Tensor | None] = [None] * self.n_parameters
        for (weight, bias), a, d in zip(self.linears, factors.inputs, factors.deltas):
            sums[weight] = d[:, 0, :].T @ a
            sums[bias] = d[:, 0, :].sum(dim=0)
        for norm, xhat, u in zip(self.norms, factors.xhat, factors.norm_deltas):
            sums[norm.gamma] = (u[:, 0, :] * xhat).sum(dim=0)
            sums[norm.beta] = u[:, 0, :].sum(dim=0)
        scale = 1.0 / X.shape[0]
        return BatchRecord(
            loss=loss.value(cache.output, Y),
            gradients=tuple(s.mul_(scale) for s in sums),
            g=g,
            X=X,
            params=params,
            extra={"cache": cache, "loss_factors": factors},
        )

    def batch_factors(self, record: BatchRecord, per_output: bool) -> ResNetFactors:
        """Factors of a training batch: per-example loss gradients, or the K output rows."""
        if per_output:
            return self.output_factors(record.params, record.extra["cache"])
        return record.extra["loss_factors"]
