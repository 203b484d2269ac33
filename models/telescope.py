"""Training, deterministic replay and telescoping tracking of a network (DESIGN.md 1.1-1.3).

Training (:func:`train`) is a plain loop over a seeded batch schedule with optimisers written
out in closed form, so that every step's update ``Delta theta_t`` splits exactly into

* the part the current minibatch's gradient contributes through the optimiser's current
  preconditioner, ``-P_t * mean_i J_{t-1}(x_i)^T g_it`` (``P_t`` is the learning rate for
  SGD, ``(1 + momentum) lr`` for Nesterov, and for Adam/AdamW
  ``lr (1 - beta_1) / (1 - beta_1^t) / (sqrt(v_hat_t) + eps)`` with the ``v`` that already
  includes the current gradient, as :mod:`torch.optim` does), and
* the rest (momentum carried from earlier batches, weight decay): the *unattributed* part.

The same loop, given an observer, replays a fitted run bit for bit and tracks on an
evaluation set what the lens needs (:class:`TelescopeRecorder`): telescoping predictions by
forward-mode JVPs (one per step for the first-order model, two for the trapezoid rule),
and optionally the per-example contributions, the unattributed residual, kernel norms at
checkpoints and the linear-smoother weights.

Losses are per-example and averaged over the batch: ``1/2 (f - y)^2`` for regression (so
that ``g = f - y`` and ``Delta theta = -(lr/|B|) sum_i J^T g_i`` as in DESIGN.md 1.2),
binary cross-entropy on one logit, softmax cross-entropy on ``K`` logits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .tangent_kernels import (
    BatchRecord,
    Coefficient,
    JacobianFactors,
    Network,
    Params,
    assemble_kernel,
    kernel_blocks,
)

__all__ = [
    "BinaryLogLoss",
    "MulticlassLogLoss",
    "OptimizerConfig",
    "OptimizerStep",
    "SquaredError",
    "BatchSchedule",
    "KernelSettings",
    "ReplayResult",
    "TelescopeRecorder",
    "checkpoint_steps",
    "make_loss",
    "train",
]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
ORDERS = ("first_order", "trapezoid")


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


class SquaredError:
    """``l(f, y) = 1/2 ||f - y||^2``; targets of shape (n, K)."""

    name = "squared_error"

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        return 0.5 * (output - target).square().sum(dim=1).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        return output - target


class BinaryLogLoss:
    """Binary cross-entropy on one logit; targets in {0, 1} of shape (n, 1)."""

    name = "log_loss"

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        return (torch.nn.functional.softplus(output) - target * output).sum(dim=1).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        return torch.sigmoid(output) - target


class MulticlassLogLoss:
    """Softmax cross-entropy on ``K`` logits; targets are class indices of shape (n,)."""

    name = "log_loss"

    def value(self, output: Tensor, target: Tensor) -> Tensor:
        picked = output.gather(1, target[:, None])[:, 0]
        return (torch.logsumexp(output, dim=1) - picked).mean()

    def gradient(self, output: Tensor, target: Tensor) -> Tensor:
        g = torch.softmax(output, dim=1)
        g[torch.arange(g.shape[0], device=g.device), target] -= 1.0
        return g


def make_loss(kind: str):
    """Loss for ``kind`` in {"regression", "binary", "multiclass"}."""
    losses = {
        "regression": SquaredError,
        "binary": BinaryLogLoss,
        "multiclass": MulticlassLogLoss,
    }
    if kind not in losses:
        raise ValueError(f"kind must be one of {sorted(losses)}, got {kind!r}")
    return losses[kind]()


# ---------------------------------------------------------------------------------------
# Optimisers in closed form
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerConfig:
    """Hyperparameters of the optimiser; semantics follow :mod:`torch.optim`.

    ``"sgd"`` and ``"momentum"``/``"nesterov"`` add ``weight_decay * theta`` to the gradient
    (L2, like ``torch.optim.SGD``); ``"adam"`` likewise (``torch.optim.Adam``);
    ``"adamw"`` decays the weights directly (``torch.optim.AdamW``). No dampening.
    """

    name: str
    learning_rate: float
    weight_decay: float = 0.0
    momentum: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8

    @property
    def diagonal(self) -> bool:
        """Whether the preconditioner is a diagonal matrix rather than a scalar."""
        return self.name in ("adam", "adamw")


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
    """

    update: Params
    coefficient: Coefficient
    rest: Params | None


class ClosedFormOptimizer:
    """The update rules of :class:`OptimizerConfig`, written out so they can be split."""

    def __init__(self, config: OptimizerConfig, params: Params):
        if config.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.name!r}")
        self.config = config
        self.buffers: list[Tensor] | None = None
        if config.diagonal:
            self.first_moment = [torch.zeros_like(p) for p in params]
            self.second_moment = [torch.zeros_like(p) for p in params]

    def step(self, params: Params, gradients: Params, t: int) -> OptimizerStep:
        name = self.config.name
        if name == "sgd":
            return self._sgd(params, gradients)
        if name in ("momentum", "nesterov"):
            return self._momentum(params, gradients, nesterov=name == "nesterov")
        return self._adam(params, gradients, t, decoupled=name == "adamw")

    def _sgd(self, params: Params, gradients: Params) -> OptimizerStep:
        lr, decay = self.config.learning_rate, self.config.weight_decay
        if decay == 0.0:
            return OptimizerStep(tuple(-lr * g for g in gradients), lr, None)
        update = tuple(-lr * (g + decay * p) for p, g in zip(params, gradients))
        rest = tuple((-lr * decay) * p for p in params)
        return OptimizerStep(update, lr, rest)

    def _momentum(self, params: Params, gradients: Params, nesterov: bool) -> OptimizerStep:
        lr, decay, mu = (
            self.config.learning_rate,
            self.config.weight_decay,
            self.config.momentum,
        )
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
            steps = [d + mu * b for d, b in zip(directions, buffers)]
            coefficient = lr * (1.0 + mu)
        else:
            steps = buffers
            coefficient = lr
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
        return OptimizerStep(update, coefficient, rest)

    def _adam(self, params: Params, gradients: Params, t: int, decoupled: bool) -> OptimizerStep:
        c = self.config
        lr, decay, beta_1, beta_2, eps = (
            c.learning_rate,
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
        return OptimizerStep(tuple(update), tuple(coefficient), tuple(rest) if has_rest else None)


# ---------------------------------------------------------------------------------------
# Batches and the training loop
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Replay tracking
# ---------------------------------------------------------------------------------------


@dataclass
class KernelSettings:
    """What the kernel part of a replay tracks (see :class:`TelescopeRecorder`).

    Attributes
    ----------
    order : {"first_order", "trapezoid"}
        Which telescoping model the contributions decompose.
    X_train : Tensor of shape (n, d)
    checkpoints : sequence of int
        Steps at which kernel norms are taken.
    norm : {"l1", "l2"}
    norm_sample : Tensor or None
        Training examples the norms sum over (None: all of them); the sums are scaled by
        ``n / len(norm_sample)`` (L1) or its square root (L2) to estimate the full sums.
    smoother : bool
        Track the linear-smoother weights (squared loss, one output, O(n^2) memory).
    train_in_eval : bool
        The first ``n`` evaluation points are the training set, in order: the training
        rows' kernels and smoother are then read off the evaluation rows, not recomputed.
    """

    order: str
    X_train: Tensor
    checkpoints: Sequence[int]
    norm: str = "l1"
    norm_sample: Tensor | None = None
    smoother: bool = False
    train_in_eval: bool = False


@dataclass
class ReplayResult:
    """What a replay tracked on its evaluation set; arrays are float64 with K axes kept.

    ``predictions[order]`` is the telescoping model's output, ``linearized`` the model
    linearised at initialisation, ``final_output`` the network at the replayed final
    parameters. Kernel fields are None unless kernels were tracked.
    """

    offset: np.ndarray
    predictions: dict[str, np.ndarray]
    linearized: np.ndarray
    final_output: np.ndarray
    final_params: Params
    contributions: np.ndarray | None = None
    unattributed: np.ndarray | None = None
    kernel_norms: np.ndarray | None = None
    train_kernel_norms: np.ndarray | None = None
    smoother: np.ndarray | None = None
    train_smoother: np.ndarray | None = None


class TelescopeRecorder:
    """Observer of :func:`train` that builds the telescoping lens on an evaluation set.

    At step ``t`` it holds the network at ``theta_{t-1}`` and ``theta_t`` on the evaluation
    points, so the first-order term ``J_{t-1}(x) Delta theta_t`` and the trapezoid term
    ``1/2 (J_{t-1}(x) + J_t(x)) Delta theta_t`` come from forward-mode JVPs, and (with
    ``kernels``) the contributions ``c_t(x, i) = -(1/|B_t|) Jbar_t(x) P_t J_{t-1}(x_i)^T g_it``
    from the tangent kernel between evaluation points and the batch, where ``Jbar`` is
    ``J_{t-1}`` or the trapezoid average. The prediction never uses the kernel: the
    identity ``offset + sum_i C + unattributed = prediction`` is a real check.

    Parameters
    ----------
    network : StructuredMLP or FunctionalNetwork
    X_eval : Tensor of shape (m, d)
    orders : sequence of str
        Telescoping orders whose predictions to accumulate.
    kernels : KernelSettings, optional
    """

    def __init__(
        self,
        network: Network,
        X_eval: Tensor,
        orders: Sequence[str] = ORDERS,
        kernels: KernelSettings | None = None,
    ):
        self.network = network
        self.X_eval = X_eval
        self.orders = tuple(orders)
        self.kernels = kernels
        needs_next = "trapezoid" in self.orders or (
            kernels is not None and kernels.order == "trapezoid"
        )
        self.needs_next = needs_next
        self._checkpoint_column = (
            {} if kernels is None else {int(t): c for c, t in enumerate(kernels.checkpoints)}
        )

    # -- observer protocol -------------------------------------------------------------

    def start(self, params: Params) -> None:
        self.initial = self.network.evaluate(params, self.X_eval)
        self.previous = self.initial
        offset = self.initial.output.double()
        self.offset = offset
        self.sums = {order: torch.zeros_like(offset) for order in self.orders}
        settings = self.kernels
        if settings is None:
            return
        m, k = offset.shape
        n = settings.X_train.shape[0]
        device = offset.device
        self.contributions = torch.zeros((m, n, k), dtype=torch.float64, device=device)
        self.unattributed = torch.zeros_like(offset)
        n_checkpoints = len(settings.checkpoints)
        self.kernel_norms = torch.zeros((m, n_checkpoints), dtype=torch.float64, device=device)
        self.train_kernel_norms = torch.zeros(
            (n, n_checkpoints), dtype=torch.float64, device=device
        )
        if settings.smoother:
            self.smoother = torch.zeros((m, n), dtype=torch.float64, device=device)
            if settings.train_in_eval:
                self.train_smoother = self.smoother[:n]  # a view: updated with smoother
            else:
                self.train_smoother = torch.zeros((n, n), dtype=torch.float64, device=device)
                self.train_previous = self.network.evaluate(params, settings.X_train)

    def after_step(
        self,
        t: int,
        params_previous: Params,
        params_next: Params,
        step: OptimizerStep,
        index: Tensor,
        record: BatchRecord,
    ) -> None:
        previous = self.previous
        following = self.network.evaluate(params_next, self.X_eval)
        track_rest = self.kernels is not None and step.rest is not None
        tangents = [step.update, step.rest] if track_rest else [step.update]
        jvp_previous = previous.jvp(tangents).double()
        jvp_next = following.jvp(tangents).double() if self.needs_next else None
        if "first_order" in self.sums:
            self.sums["first_order"] += jvp_previous[0]
        if "trapezoid" in self.sums:
            self.sums["trapezoid"] += 0.5 * (jvp_previous[0] + jvp_next[0])
        if self.kernels is not None:
            if track_rest:
                if self.kernels.order == "first_order":
                    self.unattributed += jvp_previous[1]
                else:
                    self.unattributed += 0.5 * (jvp_previous[1] + jvp_next[1])
            self._kernel_step(
                t, params_previous, params_next, previous, following, step, index, record
            )
        self.previous = following

    def _terms(self, previous, following) -> list[tuple[float, JacobianFactors]]:
        """The evaluation side of the step's kernel: ``J_{t-1}`` or the trapezoid mean."""
        if self.kernels.order == "first_order":
            return [(1.0, previous.factors)]
        return [(0.5, previous.factors), (0.5, following.factors)]

    def _kernel_step(
        self,
        t: int,
        params_previous: Params,
        params_next: Params,
        previous,
        following,
        step: OptimizerStep,
        index: Tensor,
        record: BatchRecord,
    ) -> None:
        """Contributions, smoother and (at checkpoints) kernel norms of step ``t``."""
        settings = self.kernels
        batch_size = index.numel()
        coefficient = step.coefficient
        per_output = settings.smoother
        batch = self.network.batch_factors(record, per_output=per_output)
        weights = assemble_kernel(self._terms(previous, following), batch, coefficient)
        weights.mul_(1.0 / batch_size)
        if per_output:
            # One output: w_t(x, i) is a scalar and c_t(x, i) = -w_t(x, i) g_it.
            weights = weights[:, :, 0, 0]
            contribution = (weights * (-record.g[:, 0]))[:, :, None]
        else:
            contribution = -weights[:, :, :, 0]
        self.contributions.index_add_(1, index, contribution.double())

        n_train = settings.X_train.shape[0]
        train_previous = train_next = None
        if settings.smoother:
            # s_t(x) = s_{t-1}(x) - sum_{i in B} w_t(x, i) (s_{t-1}(x_i) - e_i)
            residual = self.train_smoother[index].clone()
            residual[torch.arange(batch_size, device=index.device), index] -= 1.0
            if not settings.train_in_eval:  # else the training rows are smoother's first
                train_previous = self.train_previous
                train_next = self.network.evaluate(params_next, settings.X_train)
                train_weights = assemble_kernel(
                    self._terms(train_previous, train_next), batch, coefficient
                )[:, :, 0, 0].mul_(1.0 / batch_size)
                self.train_smoother -= train_weights.double() @ residual
                self.train_previous = train_next
            self.smoother -= weights.double() @ residual

        column = self._checkpoint_column.get(int(t))
        if column is not None:
            if settings.train_in_eval:
                columns = previous.factors.take(slice(0, n_train))
            else:
                if train_previous is None:
                    train_previous = self.network.evaluate(params_previous, settings.X_train)
                    if settings.order == "trapezoid":
                        train_next = self.network.evaluate(params_next, settings.X_train)
                columns = train_previous.factors
            if settings.norm_sample is not None:
                columns = columns.take(settings.norm_sample)
            scale = 1.0 / batch_size
            self.kernel_norms[:, column] = self._norms(
                self._terms(previous, following), columns, coefficient, scale
            )
            if settings.train_in_eval:
                self.train_kernel_norms[:, column] = self.kernel_norms[:n_train, column]
            else:
                self.train_kernel_norms[:, column] = self._norms(
                    self._terms(train_previous, train_next), columns, coefficient, scale
                )

    def _norms(
        self,
        terms: list[tuple[float, JacobianFactors]],
        columns: JacobianFactors,
        coefficient: Coefficient,
        scale: float,
    ) -> Tensor:
        """``kappa_t`` of each evaluation row over the (sampled) training columns."""
        settings = self.kernels
        n_rows = len(terms[0][1])
        totals = torch.zeros(n_rows, dtype=torch.float64, device=self.offset.device)
        for rows, _, block in kernel_blocks(terms, columns, coefficient):
            squares = block.double().mul_(scale).square_().sum(dim=(2, 3))
            if settings.norm == "l1":
                totals[rows] += squares.sqrt_().sum(dim=1)
            else:
                totals[rows] += squares.sum(dim=1)
        n_train = settings.X_train.shape[0]
        n_columns = len(columns)
        if settings.norm == "l1":
            return totals * (n_train / n_columns)
        return (totals * (n_train / n_columns)).sqrt_()

    # -- results -----------------------------------------------------------------------

    def result(self, final_params: Params) -> ReplayResult:
        """Collect what was tracked, once :func:`train` has returned ``final_params``."""
        initial_params = self.initial.params
        displacement = tuple(b - a for a, b in zip(initial_params, final_params))
        with torch.no_grad():
            linearized = self.offset + self.initial.jvp([displacement])[0].double()

        def numpy(tensor: Tensor | None) -> np.ndarray | None:
            return None if tensor is None else tensor.detach().cpu().numpy()

        predictions = {order: numpy(self.offset + total) for order, total in self.sums.items()}
        result = ReplayResult(
            offset=numpy(self.offset),
            predictions=predictions,
            linearized=numpy(linearized),
            final_output=numpy(self.previous.output.double()),
            final_params=final_params,
        )
        if self.kernels is not None:
            result.contributions = numpy(self.contributions)
            result.unattributed = numpy(self.unattributed)
            result.kernel_norms = numpy(self.kernel_norms)
            result.train_kernel_norms = numpy(self.train_kernel_norms)
            if self.kernels.smoother:
                result.smoother = numpy(self.smoother)
                result.train_smoother = numpy(self.train_smoother)
        return result
