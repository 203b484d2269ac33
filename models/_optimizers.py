"""Optimisers written out in closed form, so that each update splits into its parts.

Every step's update ``Delta theta_t`` splits exactly into

* the part the current minibatch's gradient contributes through the optimiser's current
  preconditioner, ``-P_t * mean_i J_{t-1}(x_i)^T g_it`` (``P_t`` is the learning rate for
  SGD, ``(1 + momentum) lr`` for Nesterov, and for Adam/AdamW
  ``lr (1 - beta_1) / (1 - beta_1^t) / (sqrt(v_hat_t) + eps)`` with the ``v`` that already
  includes the current gradient, as :mod:`torch.optim` does), and
* the rest (momentum carried from earlier batches, weight decay): the *unattributed* part
  (docs/design.md §1.2).

The carried momentum is itself a geometric sum of earlier batches' mean gradients: the
gradient of step ``t - k`` enters ``Delta theta_t`` as ``-rho^k Q_t * g_hat_{t-k}`` for every
lag ``k >= 1``, with ``rho`` the optimiser's :attr:`OptimizerConfig.memory_ratio` and ``Q_t``
the step's ``carried_coefficient``. The replay uses that to credit the memory back to the
examples that built it (docs/design.md §1.8); the optimiser itself is unchanged by it.

The learning rate of step ``t`` is ``gamma_t = learning_rate * schedule factor``
(:class:`~tabscope.vocabulary.LearningRateSchedule`); it enters the update and the
coefficient ``P_t`` alike, so the replay and the lens follow any schedule exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tabscope.vocabulary import LearningRateSchedule, OptimizerName, choices

from ._differentiation import Coefficient, Params

__all__ = ["ClosedFormOptimizer", "OptimizerConfig", "OptimizerStep"]


@dataclass(frozen=True)
class OptimizerConfig:
    """Hyperparameters of the optimiser; semantics follow :mod:`torch.optim`.

    ``"sgd"`` and ``"momentum"``/``"nesterov"`` add ``weight_decay * theta`` to the gradient
    (L2, like ``torch.optim.SGD``); ``"adam"`` likewise (``torch.optim.Adam``);
    ``"adamw"`` decays the weights directly (``torch.optim.AdamW``). No dampening.

    ``schedule``, ``warmup_steps`` and ``n_steps`` set the learning rate of each step
    (:meth:`learning_rate_at`), as a ``torch.optim.lr_scheduler`` stepped once per step
    would: weight decay and Adam's step size scale with ``gamma_t``.
    """

    name: str
    learning_rate: float
    weight_decay: float = 0.0
    momentum: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    schedule: str = LearningRateSchedule.CONSTANT.value
    warmup_steps: int = 0
    n_steps: int = 1

    def learning_rate_at(self, t: int) -> float:
        """``gamma_t``, the learning rate of 1-based step ``t``."""
        if self.schedule == LearningRateSchedule.CONSTANT and self.warmup_steps == 0:
            return self.learning_rate
        factor = LearningRateSchedule(self.schedule).factor(t, self.n_steps, self.warmup_steps)
        return self.learning_rate * factor

    @property
    def diagonal(self) -> bool:
        """Whether the preconditioner is a diagonal matrix rather than a scalar."""
        return OptimizerName(self.name).diagonal

    @property
    def memory_ratio(self) -> float:
        """``rho``: how much of an earlier batch's gradient each step carries on.

        0 for SGD (no memory), ``momentum`` for heavy-ball and Nesterov momentum, ``beta_1``
        for Adam and AdamW (their first moment).
        """
        name = OptimizerName(self.name)
        if name == OptimizerName.SGD:
            return 0.0
        if name in (OptimizerName.MOMENTUM, OptimizerName.NESTEROV):
            return float(self.momentum)
        return float(self.beta_1)


@dataclass
class OptimizerStep:
    """One update ``theta_t = theta_{t-1} + update`` and its attribution.

    Attributes
    ----------
    update : tuple of Tensor
        ``Delta theta_t``.
    coefficient : float or tuple of Tensor
        ``P_t`` with ``gradient part = -P_t * (mean batch gradient)``.
    rest : tuple of Tensor or None
        ``Delta theta_t`` minus the gradient part (None when it is exactly zero).
    carried_coefficient : float, tuple of Tensor or None
        ``Q_t``: the gradient of step ``t - k`` (``k >= 1``) enters the update as
        ``-rho^k Q_t * g_hat_{t-k}`` (inside ``rest``); None for SGD.
    """

    update: Params
    coefficient: Coefficient
    rest: Params | None
    carried_coefficient: Coefficient | None = None


class ClosedFormOptimizer:
    """The update rules of :class:`OptimizerConfig`, written out so they can be split."""

    def __init__(self, config: OptimizerConfig, params: Params):
        if config.name not in choices(OptimizerName):
            raise ValueError(
                f"optimizer must be one of {choices(OptimizerName)}, got {config.name!r}"
            )
        self.config = config
        self.buffers: list[Tensor] | None = None
        if config.diagonal:
            self.first_moment = [torch.zeros_like(p) for p in params]
            self.second_moment = [torch.zeros_like(p) for p in params]

    def step(self, params: Params, gradients: Params, t: int) -> OptimizerStep:
        name = self.config.name
        lr = self.config.learning_rate_at(t)
        if name == OptimizerName.SGD:
            return self._sgd(params, gradients, lr)
        if name in (OptimizerName.MOMENTUM, OptimizerName.NESTEROV):
            return self._momentum(
                params, gradients, lr, nesterov=name == OptimizerName.NESTEROV
            )
        return self._adam(params, gradients, t, lr, decoupled=name == OptimizerName.ADAMW)

    def _sgd(self, params: Params, gradients: Params, lr: float) -> OptimizerStep:
        decay = self.config.weight_decay
        if decay == 0.0:
            return OptimizerStep(tuple(-lr * g for g in gradients), lr, None)
        update = tuple(-lr * (g + decay * p) for p, g in zip(params, gradients))
        rest = tuple((-lr * decay) * p for p in params)
        return OptimizerStep(update, lr, rest)

    def _momentum(
        self, params: Params, gradients: Params, lr: float, nesterov: bool
    ) -> OptimizerStep:
        decay, mu = self.config.weight_decay, self.config.momentum
        directions = (
            list(gradients)
            if decay == 0.0
            else [g + decay * p for p, g in zip(params, gradients)]
        )
        previous = self.buffers
        if previous is None:
            buffers = [d.clone() for d in directions]
        else:
            buffers = [mu * b + d for b, d in zip(previous, directions)]
        self.buffers = buffers
        if nesterov:
            # d_t + mu b_t: the current gradient weighs 1 + mu, lag k >= 1 weighs mu^(k+1)
            steps = [d + mu * b for d, b in zip(directions, buffers)]
            coefficient, carried_coefficient = lr * (1.0 + mu), lr * mu
        else:
            steps = buffers
            coefficient, carried_coefficient = lr, lr
        update = tuple(-lr * s for s in steps)
        # What the current gradient does not explain: weight decay folded into the
        # direction, and the momentum carried over from earlier batches.
        carried_scale = mu * mu if nesterov else mu
        decay_scale = (1.0 + mu) if nesterov else 1.0
        rest_terms = []
        for index, p in enumerate(params):
            term = None
            if decay != 0.0:
                term = (-lr * decay * decay_scale) * p
            if previous is not None:
                carried = (-lr * carried_scale) * previous[index]
                term = carried if term is None else term + carried
            rest_terms.append(term)
        rest = None if rest_terms[0] is None else tuple(rest_terms)
        return OptimizerStep(update, coefficient, rest, carried_coefficient)

    def _adam(
        self, params: Params, gradients: Params, t: int, lr: float, decoupled: bool
    ) -> OptimizerStep:
        c = self.config
        decay, beta_1, beta_2, eps = (
            c.weight_decay,
            c.beta_1,
            c.beta_2,
            c.epsilon,
        )
        step_size = lr / (1.0 - beta_1**t)
        sqrt_correction = (1.0 - beta_2**t) ** 0.5
        gradient_scale = step_size * (1.0 - beta_1)
        update, coefficient, rest = [], [], []
        for index, (p, g) in enumerate(zip(params, gradients)):
            direction = g if (decoupled or decay == 0.0) else g + decay * p
            m_old = self.first_moment[index]
            m = beta_1 * m_old + (1.0 - beta_1) * direction
            v = beta_2 * self.second_moment[index] + (1.0 - beta_2) * direction * direction
            self.first_moment[index], self.second_moment[index] = m, v
            denominator = v.sqrt() / sqrt_correction + eps
            u = -step_size * m / denominator
            carried = (-step_size * beta_1) * m_old
            if not decoupled and decay != 0.0:
                carried = carried - gradient_scale * decay * p
            r = carried / denominator
            if decoupled and decay != 0.0:
                u = u - (lr * decay) * p
                r = r - (lr * decay) * p
            update.append(u)
            coefficient.append(gradient_scale / denominator)
            rest.append(r)
        has_rest = t > 1 or decay != 0.0
        # m_t = sum_k beta_1^k (1 - beta_1) g_hat_{t-k} + ...: every lag shares the current
        # gradient's preconditioner, scaled by beta_1^k
        coefficient = tuple(coefficient)
        return OptimizerStep(tuple(update), coefficient, tuple(rest) if has_rest else None,
                             coefficient)
