"""Per-example training losses of a telescoping network and their gradients.

Losses are averaged over the batch: ``1/2 (f - y)^2`` for regression (so that ``g = f - y``
and ``Delta theta = -(lr/|B|) sum_i J^T g_i``, docs/design.md §1.2), binary cross-entropy on
one logit, softmax cross-entropy on ``K`` logits.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from tabscope.vocabulary import Loss, Objective

__all__ = [
    "BinaryLogLoss",
    "LossFunction",
    "MulticlassLogLoss",
    "SquaredError",
    "make_loss",
]


class LossFunction(Protocol):
    """A per-example loss ``l(f, y)`` with its gradient ``g = dl/df``."""

    name: str

    def value(self, output: Tensor, target: Tensor) -> Tensor: ...

    def gradient(self, output: Tensor, target: Tensor) -> Tensor: ...


class SquaredError:
    """``l(f, y) = 1/2 ||f - y||^2``; targets of shape (n, K)."""

    name = Loss.SQUARED_ERROR.value

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        return 0.5 * (output - target).square().sum(dim=1).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        return output - target


class BinaryLogLoss:
    """Binary cross-entropy on one logit; targets in {0, 1} of shape (n, 1)."""

    name = Loss.LOG_LOSS.value

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        return (torch.nn.functional.softplus(output) - target * output).sum(dim=1).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        return torch.sigmoid(output) - target


class MulticlassLogLoss:
    """Softmax cross-entropy on ``K`` logits; targets are class indices of shape (n,)."""

    name = Loss.LOG_LOSS.value

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        picked = output.gather(1, target[:, None])[:, 0]
        return (torch.logsumexp(output, dim=1) - picked).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        g = torch.softmax(output, dim=1)
        g[torch.arange(g.shape[0], device=g.device), target] -= 1.0
        return g



_LOSSES: dict[Objective, type] = {
    Objective.REGRESSION: SquaredError,
    Objective.BINARY: BinaryLogLoss,
    Objective.MULTICLASS: MulticlassLogLoss,
}


def make_loss(kind: str) -> LossFunction:
    """Loss for the objective ``kind`` (an :class:`~tabscope.vocabulary.Objective`)."""
    if kind not in _LOSSES:
        raise ValueError(f"kind must be one of {sorted(_LOSSES)}, got {kind!r}")
    return _LOSSES[Objective(kind)]()
