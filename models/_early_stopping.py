"""Early stopping of a telescoping network on a validation set.

:class:`ValidationMonitor` is the ``monitor`` of :func:`~tabscope.models._training.train`:
every ``interval`` steps (and at the last step) it scores the network on the validation set,
keeps the parameters of the best step seen so far and stops training after ``patience``
scorings without improvement. The estimator then keeps the model of the best step, and its
lens replays exactly that many steps (docs/design.md §1.1: the replay must end where fit
did), so the kernel view describes the early-stopped model, not the last one trained.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ._differentiation import Network, Params
from ._losses import LossFunction

__all__ = ["ValidationMonitor"]


class ValidationMonitor:
    """Score a validation set during training; remember the best step's parameters.

    The score is the negated mean training loss on the validation set (higher is
    better, as scikit-learn's ``HistGradientBoosting*`` report ``validation_score_``
    with ``scoring="loss"``), multiplied by ``loss_scale`` (``sigma^2`` for a regressor
    trained on a standardised target, so the score is in the target's own units).

    Parameters
    ----------
    network : StructuredMLP or FunctionalNetwork
    X_val : Tensor of shape (m, d)
    Y_val : Tensor
        Validation targets as the loss sees them.
    loss : LossFunction
    interval : int
        Score every ``interval`` steps, and at step ``n_steps``.
    patience : int
        Stop after this many scorings in a row without a strictly better score.
    n_steps : int
        The last step training would take.
    loss_scale : float, default=1.0
    on_score : callable, optional
        ``on_score(step, score)`` after each scoring: a tuning study reports the score to
        its pruner there, and abandons the fit by raising (``optuna.TrialPruned``).
    """

    def __init__(
        self,
        network: Network,
        X_val: Tensor,
        Y_val: Tensor,
        loss: LossFunction,
        *,
        interval: int,
        patience: int,
        n_steps: int,
        loss_scale: float = 1.0,
        on_score=None,
    ):
        self.network = network
        self.X_val = X_val
        self.Y_val = Y_val
        self.loss = loss
        self.interval = int(interval)
        self.patience = int(patience)
        self.n_steps = int(n_steps)
        self.loss_scale = float(loss_scale)
        self.on_score = on_score
        self.steps: list[int] = []
        self.scores: list[float] = []
        self.best_score = -math.inf
        self.best_step = 0
        self.best_params: Params | None = None
        self._without_improvement = 0

    def __call__(self, t: int, params: Params) -> bool:
        """Score step ``t`` if it is due; return True to stop training."""
        if t % self.interval != 0 and t != self.n_steps:
            return False
        with torch.no_grad():
            output = self.network.forward(params, self.X_val)
            if output.ndim == 1:
                output = output[:, None]
            value = float(self.loss.value(output, self.Y_val))
        score = -value * self.loss_scale
        self.steps.append(int(t))
        self.scores.append(score)
        if self.on_score is not None:
            self.on_score(int(t), score)
        if score > self.best_score:
            self.best_score = score
            self.best_step = int(t)
            self.best_params = tuple(p.clone() for p in params)
            self._without_improvement = 0
            return False
        # NaN scores never improve: a diverging run stops after ``patience`` scorings.
        self._without_improvement += 1
        return self._without_improvement >= self.patience

    @property
    def validation_scores(self) -> np.ndarray:
        """Scores in the order they were taken, shape (n_scorings,)."""
        return np.asarray(self.scores, dtype=np.float64)

    @property
    def validation_steps(self) -> np.ndarray:
        """The steps at which the scores were taken, shape (n_scorings,)."""
        return np.asarray(self.steps, dtype=np.int64)
