"""The training loop of a telescoping network: a seeded batch schedule and closed-form steps.

:func:`train` is a plain loop; given an observer (the replay's
:class:`~tabscope.models._replay.TelescopeRecorder`) it replays a fitted run bit for bit
while the observer tracks what the lens needs (docs/design.md §1.1-1.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ._differentiation import Network, Params
from ._optimizers import ClosedFormOptimizer, OptimizerConfig

if TYPE_CHECKING:
    from ._replay import TelescopeRecorder

__all__ = ["BatchSchedule", "checkpoint_steps", "train"]


class BatchSchedule:
    """Seeded minibatch order: a fresh permutation per epoch, consecutive slices of it.

    The last batch of an epoch is smaller when ``batch_size`` does not divide ``n``.
    ``batch_size=None`` (or ``>= n``) means full-batch training on ``0..n-1`` every step.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int, device: torch.device):
        self.n = int(n)
        self.batch_size = None if batch_size is None or batch_size >= n else int(batch_size)
        self.seed = int(seed)
        self.device = device

    def __iter__(self) -> Iterator[Tensor]:
        if self.batch_size is None:
            everything = torch.arange(self.n, device=self.device)
            while True:
                yield everything
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            permutation = torch.randperm(self.n, generator=generator).to(self.device)
            yield from torch.split(permutation, self.batch_size)


def train(
    network: Network,
    params: Params,
    X: Tensor,
    Y: Tensor,
    loss,
    optimizer: OptimizerConfig,
    schedule: BatchSchedule,
    n_steps: int,
    observer: TelescopeRecorder | None = None,
) -> tuple[Params, np.ndarray]:
    """Run ``n_steps`` optimisation steps from ``params``; return final params and losses.

    The observer, when given, sees each step after it is taken and never changes it, so a
    replay with an observer reproduces a run without one bit for bit.
    """
    state = ClosedFormOptimizer(optimizer, params)
    losses = torch.empty(n_steps, dtype=torch.float64)
    batches = iter(schedule)
    with torch.no_grad():
        if observer is not None:
            observer.start(params)
        for t in range(1, n_steps + 1):
            index = next(batches)
            record = network.loss_and_gradients(params, X[index], Y[index], loss)
            step = state.step(params, record.gradients, t)
            new_params = tuple(p + u for p, u in zip(params, step.update))
            if observer is not None:
                observer.after_step(t, params, new_params, step, index, record)
            losses[t - 1] = record.loss
            params = new_params
    return params, losses.numpy()


def checkpoint_steps(n_steps: int, n_checkpoints: int) -> np.ndarray:
    """``n_checkpoints`` steps spread evenly over ``1..n_steps``, first and last included."""
    count = max(1, min(int(n_checkpoints), int(n_steps)))
    return np.unique(np.round(np.linspace(1, n_steps, count)).astype(np.int64))
