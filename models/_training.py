"""The training loop of a telescoping network: a seeded batch schedule and closed-form steps.

:func:`train` is a plain loop; given an observer (the replay's
:class:`~tabscope.models._replay.TelescopeRecorder`) it replays a fitted run bit for bit
while the observer tracks what the lens needs (docs/design.md §1.1-1.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ._differentiation import Network, Params
from ._optimizers import ClosedFormOptimizer, OptimizerConfig

if TYPE_CHECKING:
    from ._replay import TelescopeRecorder

__all__ = ["BatchSchedule", "TrainingDivergedError", "checkpoint_steps", "train"]


class TrainingDivergedError(ValueError):
    """The training loss or the parameters became NaN or infinite during fit.

    Raised at the step where it happens, naming the step and its learning rate, so that a
    diverged run never yields a model whose predictions are silently NaN.
    """


def _diverged(t: int, n_steps: int, optimizer: OptimizerConfig, what: str):
    return TrainingDivergedError(
        f"Training diverged: {what} became non-finite at step {t} of {n_steps} "
        f"(learning_rate={optimizer.learning_rate:g}, learning rate at that step "
        f"{optimizer.learning_rate_at(t):g}, optimizer={optimizer.name!r}). Lower "
        "learning_rate, add warm-up, or standardise the target (standardize_target=True "
        "for regressors)."
    )


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
    monitor: Callable[[int, Params], bool] | None = None,
) -> tuple[Params, np.ndarray]:
    """Run ``n_steps`` optimisation steps from ``params``; return final params and losses.

    The observer, when given, sees each step after it is taken and never changes it, so a
    replay with an observer reproduces a run without one bit for bit. The monitor (early
    stopping, :mod:`~tabscope.models._early_stopping`) sees ``(t, theta_t)`` after each
    step and stops training by returning True; the losses then cover the steps taken.

    Raises
    ------
    TrainingDivergedError
        A batch loss or, after the last step, a parameter is NaN or infinite.
    """
    state = ClosedFormOptimizer(optimizer, params)
    losses = torch.empty(n_steps, dtype=torch.float64)
    batches = iter(schedule)
    taken = n_steps
    with torch.no_grad():
        if observer is not None:
            observer.start(params)
        for t in range(1, n_steps + 1):
            index = next(batches)
            record = network.loss_and_gradients(params, X[index], Y[index], loss)
            losses[t - 1] = record.loss
            if not math.isfinite(losses[t - 1]):
                raise _diverged(t, n_steps, optimizer, "the training loss")
            step = state.step(params, record.gradients, t)
            new_params = tuple(p + u for p, u in zip(params, step.update))
            if observer is not None:
                observer.after_step(t, params, new_params, step, index, record)
            params = new_params
            if monitor is not None and monitor(t, params):
                taken = t
                break
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise _diverged(taken, n_steps, optimizer, "the parameters")
    return params, losses[:taken].numpy()


def checkpoint_steps(n_steps: int, n_checkpoints: int) -> np.ndarray:
    """``n_checkpoints`` steps spread evenly over ``1..n_steps``, first and last included."""
    count = max(1, min(int(n_checkpoints), int(n_steps)))
    return np.unique(np.round(np.linspace(1, n_steps, count)).astype(np.int64))
