"""Carried attribution: crediting the optimiser's memory to the examples that built it.

With momentum, Nesterov, Adam or AdamW, the update of step ``t`` holds, besides the
current batch's gradient, the gradients of earlier batches ``s = t - k`` at weight
``rho^k Q_t`` (:attr:`~tabscope.models._optimizers.OptimizerStep.carried_coefficient`).
Example ``i`` of batch ``s`` therefore also moves the prediction at ``x`` at every later
step ``t`` of its window (``s < t < s + L``), through the cross-time kernel
``Jbar_t(x) Q_t J_{s-1}(x_i)^T`` (docs/design.md §1.8)::

    c(x, i; s) = -(1/|B_s|) H_s(x) . grad_i(theta_{s-1}),
    H_s(x)     = sum_{t=s+1}^{s+L-1} rho^(t-s) G_t(x),   G_t(x) = Q_t * Jbar_t(x)

``H_s`` depends on steps after ``s``, so it cannot be formed when batch ``s`` is seen.
Steps are grouped in chunks of ``L - 1``; a batch's window covers the rest of its own chunk
(a *suffix*, summed backwards when the chunk ends: ``S_s = rho (G_{s+1} + S_{s+1})``) and the
start of the next chunk (a *prefix*, summed forwards:
``Pfx_u = sum_{t=b}^{u} rho^(t-b) G_t``, read at ``u = s + L - 1``). Every batch is thus
contracted with the evaluation rows twice, ``2 m |B| P`` per step whatever ``L``, and both
sums only add terms (no cancellation). Memory: the prefix (``m K P`` values) and, for one
chunk, the factors of the evaluation rows and batches and the step's coefficient.

On the structured route ``G`` is kept layer by layer (``(m, K, out, in)`` and ``(m, K, out)``)
and contracted with the batch's factors directly, ``(H a_i) . delta_i``: no explicit Jacobian
rows are built. Other routes (the ResNet's LayerNorm, torch.func) use explicit rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._differentiation import Coefficient, JacobianFactors
from ._structured import StructuredFactors

__all__ = ["CarriedAttribution", "MAX_CARRIED_ELEMENTS", "default_attribution_window"]

#: Values the carried attribution may keep per evaluation row set (its prefix, ``m K P``):
#: 2**28 float32 values are 1 GiB.
MAX_CARRIED_ELEMENTS = 1 << 28

#: What the default window leaves out of the optimiser's memory: ``rho^L <= 1e-3``.
DEFAULT_WINDOW_TOLERANCE = 1e-3


def default_attribution_window(ratio: float, tolerance: float = DEFAULT_WINDOW_TOLERANCE) -> int:
    """Smallest ``L`` with ``ratio^L <= tolerance`` (1 when there is no memory).

    >>> default_attribution_window(0.9)
    66
    >>> default_attribution_window(0.0)
    1
    """
    if ratio <= 0.0:
        return 1
    if ratio >= 1.0:
        raise ValueError(f"a memory ratio must be below 1 to have a finite window, got {ratio}")
    return max(1, math.ceil(math.log(tolerance) / math.log(ratio) - 1e-9))


@dataclass
class _Step:
    """What the attribution keeps of one step: its evaluation side and its batch."""

    t: int
    eval_terms: list[tuple[float, JacobianFactors]]
    carried_coefficient: Coefficient
    batch: JacobianFactors
    index: Tensor
    scale: float


def _flat(coefficient: Coefficient) -> float | Tensor:
    if isinstance(coefficient, (int, float)):
        return float(coefficient)
    return torch.cat([c.reshape(-1) for c in coefficient])


def _structured(record: _Step) -> bool:
    return isinstance(record.batch, StructuredFactors) and all(
        isinstance(factors, StructuredFactors) for _, factors in record.eval_terms)


def _layer_g(record: _Step) -> list[tuple[Tensor, Tensor | None]]:
    """``G_t`` of a structured MLP per layer: ``Q * sum_j w_j delta_j(x) a_j(x)^T``."""
    network = record.batch.network
    coefficient = record.carried_coefficient
    scalar = isinstance(coefficient, (int, float))
    layers = []
    for index, layer in enumerate(network.layers):
        weight = bias = None
        for w, factors in record.eval_terms:
            d = factors.deltas[index] * w  # (m, K, out)
            term = d[:, :, :, None] * factors.inputs[index][:, None, None, :]
            weight = term if weight is None else weight.add_(term)
            if layer.bias is not None:
                bias = d if bias is None else bias.add_(d)
        weight.mul_(coefficient if scalar else coefficient[layer.weight])
        if bias is not None:
            bias.mul_(coefficient if scalar else coefficient[layer.bias])
        layers.append((weight, bias))
    return layers


def _flat_g(record: _Step) -> Tensor:
    """``G_t`` as explicit Jacobian rows, shape (m, K, P)."""
    total = None
    for weight, factors in record.eval_terms:
        rows = factors.rows(slice(0, len(factors)))
        total = rows.mul_(weight) if total is None else total.add_(rows, alpha=weight)
    return total.mul_(_flat(record.carried_coefficient))


def _scaled_add(total, term, weight: float):
    """``total + weight * term`` in place, for tensors or per-layer pairs of tensors."""
    if isinstance(term, Tensor):
        term = term.mul_(weight)
        return term if total is None else total.add_(term)
    if total is None:
        return [(w.mul_(weight), None if b is None else b.mul_(weight)) for w, b in term]
    for (total_w, total_b), (w, b) in zip(total, term):
        total_w.add_(w, alpha=weight)
        if total_b is not None:
            total_b.add_(b, alpha=weight)
    return total


def _contract(h, batch: JacobianFactors) -> Tensor:
    """``H(x) . grad_i`` for every evaluation row and batch example, shape (m, |B|, K)."""
    if isinstance(h, Tensor):
        rows = batch.rows(slice(0, len(batch)))  # (|B|, 1, P): J^T g
        m, k, n_params = h.shape
        products = h.reshape(m * k, n_params) @ rows.reshape(rows.shape[0], n_params).T
        return products.reshape(m, k, -1).transpose(1, 2)
    total = None
    for index, (weight, bias) in enumerate(h):
        m, k, out, _ = weight.shape
        a_batch = batch.inputs[index]  # (|B|, in)
        d_batch = batch.deltas[index][:, 0, :]  # (|B|, out): loss-gradient rows
        projected = (weight.reshape(m * k * out, -1) @ a_batch.T).reshape(m * k, out, -1)
        term = projected.mul_(d_batch.T).sum(dim=1)  # sum over out: (m K, |B|)
        if bias is not None:
            term.add_(bias.reshape(m * k, out) @ d_batch.T)
        total = term if total is None else total.add_(term)
    return total.reshape(m, k, -1).transpose(1, 2)


class CarriedAttribution:
    """Adds the carried (lag ``1..L-1``) part of each example's contribution.

    Parameters
    ----------
    window : int
        ``L >= 2``: lags ``1..L-1`` are credited; older ones stay unattributed.
    ratio : float
        ``rho`` of the optimiser (:attr:`OptimizerConfig.memory_ratio`).
    contributions : Tensor of shape (m, n, K), float64
        Updated in place (``index_add_`` over the training examples).
    """

    def __init__(self, window: int, ratio: float, contributions: Tensor):
        if window < 2:
            raise ValueError(f"a carried attribution needs window >= 2, got {window}")
        self.tail = int(window) - 1
        self.ratio = float(ratio)
        self.contributions = contributions
        self.chunk: list[_Step] = []
        self.waiting: dict[int, _Step] = {}  # the previous chunk's batches, by step
        self.chunk_start = 1
        self.prefix: Tensor | None = None

    def step(self, t: int, eval_terms, carried_coefficient: Coefficient,
             batch: JacobianFactors, index: Tensor) -> None:
        """Record step ``t`` (its batch's loss-gradient factors at ``theta_{t-1}``)."""
        record = _Step(int(t), list(eval_terms), carried_coefficient, batch, index,
                       1.0 / index.numel())
        if self.waiting:
            weight = self.ratio ** (record.t - self.chunk_start)
            self.prefix = _scaled_add(self.prefix, self._g(record), weight)
            finished = self.waiting.pop(record.t - self.tail, None)
            if finished is not None:
                self._credit(self.prefix, finished, self.ratio ** (self.chunk_start - finished.t))
        self.chunk.append(record)
        if len(self.chunk) == self.tail:
            self._close_chunk()

    def finish(self) -> None:
        """Credit what the last steps owe: call once, after the last step."""
        for waiting in self.waiting.values():  # windows cut short by the end of training
            if self.prefix is not None:
                self._credit(self.prefix, waiting, self.ratio ** (self.chunk_start - waiting.t))
        self.waiting = {}
        self._sweep(self.chunk)
        self.chunk, self.prefix = [], None

    # -- internals ---------------------------------------------------------------------

    def _close_chunk(self) -> None:
        self._sweep(self.chunk)
        self.waiting = {record.t: record for record in self.chunk}
        self.chunk_start = self.chunk[-1].t + 1
        self.chunk, self.prefix = [], None

    def _sweep(self, records: list[_Step]) -> None:
        """The suffix of every batch in ``records``: ``S_s = rho (G_{s+1} + S_{s+1})``."""
        suffix = None
        for record in reversed(records):
            if suffix is not None:
                self._credit(suffix, record, 1.0)
                suffix = _scaled_add(suffix, self._g(record), 1.0)
            else:
                suffix = self._g(record)
            suffix = _scaled_add(None, suffix, self.ratio)

    def _g(self, record: _Step):
        """``G_t(x) = Q_t * Jbar_t(x)``: per layer on the structured route, else rows."""
        return _layer_g(record) if _structured(record) else _flat_g(record)

    def _credit(self, h, record: _Step, weight: float) -> None:
        """``contributions[:, i] -= weight / |B_s| * H(x) . grad_i`` for batch ``s``."""
        values = _contract(h, record.batch).double()
        self.contributions.index_add_(1, record.index, values, alpha=-weight * record.scale)
