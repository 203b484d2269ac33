"""Replay tracking: what a replayed training run records on an evaluation set.

:class:`TelescopeRecorder` observes :func:`~tabscope.models._training.train` and builds the
telescoping lens (docs/design.md §1.1-1.3): telescoping predictions by forward-mode JVPs (one
per step for the first-order model, two for the trapezoid rule), and optionally the
per-example contributions, the unattributed residual, kernel norms at checkpoints and the
linear-smoother weights. With an optimiser that carries momentum, the contributions also
credit each batch's gradient at the later steps of its attribution window (§1.8,
:mod:`~tabscope.models._carried`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tabscope.vocabulary import KernelNorm, TelescopeOrder, choices

from ._carried import CarriedAttribution
from ._differentiation import BatchRecord, Coefficient, JacobianFactors, Network, Params
from ._kernel_blocks import assemble_kernel, kernel_blocks
from ._optimizers import OptimizerStep
from ._structured import StructuredFactors

__all__ = ["KernelSettings", "ReplayResult", "TelescopeRecorder"]


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
        Track the linear-smoother weights (squared loss, one output).
    train_in_eval : bool
        The first ``n`` evaluation points are the training set, in order: the training
        rows' kernels and smoother are then read off the evaluation rows, not recomputed.
    contributions : bool
        Accumulate the per-example contributions (and the unattributed residual): the
        ``m x n`` part. False gives the norms-only and sketch paths (docs/design.md §1.9),
        which touch kernels at the checkpoints only, or for the smoother.
    smoother_basis : Tensor of shape (n, k) or None
        None tracks the dense smoother ``s_t(x)`` (``n`` values per point); a matrix
        ``R^T`` tracks the sketch ``R s_t(x)`` (``k`` values per point). The recursion of
        §1.6 is linear in ``s``, with ``e_i`` replaced by ``R e_i`` (row ``i`` of the basis).
    train_rows : Tensor or None
        Training rows whose kernel norms are taken (None: all ``n``), e.g. a seeded
        subsample for the normalising mean of kappa_bar.
    path_steps : sequence of int
        Steps after which the telescoping prediction of ``order`` is recorded (the
        prediction path: how the prediction was assembled over training).
    attribution_window : int
        ``L``: a batch's gradient is credited to its examples at its own step and the
        ``L - 1`` steps after it (docs/design.md §1.8); 1 credits the current batch only.
    memory_ratio : float
        ``rho`` of the optimiser (:attr:`OptimizerConfig.memory_ratio`).
    """

    order: str
    X_train: Tensor
    checkpoints: Sequence[int]
    norm: str = KernelNorm.L1
    norm_sample: Tensor | None = None
    smoother: bool = False
    train_in_eval: bool = False
    contributions: bool = True
    smoother_basis: Tensor | None = None
    train_rows: Tensor | None = None
    path_steps: Sequence[int] = ()
    attribution_window: int = 1
    memory_ratio: float = 0.0

    @property
    def has_memory(self) -> bool:
        """Whether lags beyond the current batch are credited (contributions, smoother)."""
        return self.attribution_window > 1 and self.memory_ratio > 0

    @property
    def carries(self) -> bool:
        """Whether contributions credit lags beyond the current batch."""
        return self.contributions and self.has_memory


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
    prediction_path: np.ndarray | None = None


def _stack_factors(factors: list) -> StructuredFactors | None:
    """One set of structured factors for several batches' rows; None on other routes."""
    if not factors or not all(isinstance(f, StructuredFactors) for f in factors):
        return None
    first = factors[0]
    return StructuredFactors(
        first.network,
        [torch.cat([f.inputs[i] for f in factors]) for i in range(len(first.inputs))],
        [torch.cat([f.deltas[i] for f in factors]) for i in range(len(first.deltas))],
    )


@dataclass
class _Subset:
    """The factors of some rows of an evaluated point (what :meth:`_terms` reads)."""

    point: object
    rows: Tensor

    @property
    def factors(self) -> JacobianFactors:
        return self.point.factors.take(self.rows)


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
        orders: Sequence[str] = choices(TelescopeOrder),
        kernels: KernelSettings | None = None,
    ):
        self.network = network
        self.X_eval = X_eval
        self.orders = tuple(orders)
        self.kernels = kernels
        needs_next = TelescopeOrder.TRAPEZOID in self.orders or (
            kernels is not None and kernels.order == TelescopeOrder.TRAPEZOID
        )
        self.needs_next = needs_next
        self._checkpoint_column = (
            {} if kernels is None else {int(t): c for c, t in enumerate(kernels.checkpoints)}
        )
        # Kernel norms with no predictions, contributions or smoother: the evaluation rows
        # are evaluated at the checkpoints only (docs/design.md §1.9).
        self._norms_only = (
            kernels is not None and not self.orders and not kernels.contributions
            and not kernels.smoother
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
        self.contributions = (
            torch.zeros((m, n, k), dtype=torch.float64, device=device)
            if settings.contributions else None
        )
        self.unattributed = torch.zeros_like(offset)
        self._carried = None
        if settings.carries:
            self._carried = CarriedAttribution(
                settings.attribution_window, settings.memory_ratio, self.contributions
            )
            # sum_{k=1}^{L-1} rho^k g_hat_{t-k}, and the gradients that leave the window
            self._carried_sum = None
            self._past_gradients = deque(maxlen=settings.attribution_window - 1)
        # The smoother's recursion with the window: the last L - 1 batches' factors and
        # residuals s_{s-1}(x_i) - e_i, each applied again at the later steps (§1.8)
        self._smoother_window = (
            deque(maxlen=settings.attribution_window - 1)
            if settings.smoother and settings.has_memory else None
        )
        self._path_column = {int(t): c for c, t in enumerate(settings.path_steps)}
        self.prediction_path = torch.zeros(
            (m, len(settings.path_steps), k), dtype=torch.float64, device=device)
        n_checkpoints = len(settings.checkpoints)
        n_train_rows = n if settings.train_rows is None else len(settings.train_rows)
        self.kernel_norms = torch.zeros((m, n_checkpoints), dtype=torch.float64, device=device)
        self.train_kernel_norms = torch.zeros(
            (n_train_rows, n_checkpoints), dtype=torch.float64, device=device
        )
        if settings.smoother:
            width = n if settings.smoother_basis is None else settings.smoother_basis.shape[1]
            self.smoother = torch.zeros((m, width), dtype=torch.float64, device=device)
            if settings.train_in_eval:
                self.train_smoother = self.smoother[:n]  # a view: updated with smoother
            else:
                self.train_smoother = torch.zeros((n, width), dtype=torch.float64, device=device)
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
        settings = self.kernels
        if self._norms_only:
            # Norms only: the evaluation rows are needed at the checkpoints alone.
            if int(t) in self._checkpoint_column:
                previous = self.network.evaluate(params_previous, self.X_eval)
                following = None
                if settings.order == TelescopeOrder.TRAPEZOID:
                    following = self.network.evaluate(params_next, self.X_eval)
                self._kernel_step(
                    t, params_previous, params_next, previous, following, step, index, record
                )
            return
        previous = self.previous
        following = self.network.evaluate(params_next, self.X_eval)
        if settings is not None and settings.carries:
            step = self._without_carried(step, record)
        track_rest = settings is not None and settings.contributions and step.rest is not None
        self.previous = following
        if not self.orders and not track_rest:  # the sketch: no predictions to sum
            self._kernel_step(
                t, params_previous, params_next, previous, following, step, index, record
            )
            return
        tangents = [step.update, step.rest] if track_rest else [step.update]
        jvp_previous = previous.jvp(tangents).double()
        jvp_next = following.jvp(tangents).double() if self.needs_next else None
        if TelescopeOrder.FIRST_ORDER in self.sums:
            self.sums[TelescopeOrder.FIRST_ORDER] += jvp_previous[0]
        if TelescopeOrder.TRAPEZOID in self.sums:
            self.sums[TelescopeOrder.TRAPEZOID] += 0.5 * (jvp_previous[0] + jvp_next[0])
        if self.kernels is not None:
            column = self._path_column.get(int(t))
            if column is not None and self.kernels.order in self.sums:
                self.prediction_path[:, column] = self.offset + self.sums[self.kernels.order]
            if track_rest:
                if self.kernels.order == TelescopeOrder.FIRST_ORDER:
                    self.unattributed += jvp_previous[1]
                else:
                    self.unattributed += 0.5 * (jvp_previous[1] + jvp_next[1])
            self._kernel_step(
                t, params_previous, params_next, previous, following, step, index, record
            )

    def _without_carried(self, step: OptimizerStep, record: BatchRecord) -> OptimizerStep:
        """The step with the window's carried gradients moved from ``rest`` to the credited
        part: ``rest + Q_t * sum_{k=1}^{L-1} rho^k g_hat_{t-k}``."""
        rho, window = self.kernels.memory_ratio, self.kernels.attribution_window
        carried_sum = self._carried_sum
        rest = step.rest
        if carried_sum is not None:
            coefficient = step.carried_coefficient
            if isinstance(coefficient, (int, float)):
                coefficient = (float(coefficient),) * len(carried_sum)
            rest = tuple(
                (r if r is not None else 0.0) + (c * w).to(u.dtype)
                for r, c, w, u in zip(rest or (None,) * len(carried_sum), coefficient,
                                      carried_sum, step.update)
            )
        # Next step's sum: rho (g_hat_t + sum now), less the gradient leaving the window
        gradients = tuple(g.double() for g in record.gradients)
        if carried_sum is None:
            carried_sum = tuple(rho * g for g in gradients)
        else:
            carried_sum = tuple(rho * (g + w) for g, w in zip(gradients, carried_sum))
        if len(self._past_gradients) == window - 1:
            leaving = self._past_gradients[0]
            carried_sum = tuple(w - rho**window * g.double() for w, g in zip(carried_sum, leaving))
        self._past_gradients.append(record.gradients)
        self._carried_sum = carried_sum
        return OptimizerStep(step.update, step.coefficient, rest, step.carried_coefficient)

    def _terms(self, previous, following) -> list[tuple[float, JacobianFactors]]:
        """The evaluation side of the step's kernel: ``J_{t-1}`` or the trapezoid mean."""
        if self.kernels.order == TelescopeOrder.FIRST_ORDER:
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
        if settings.contributions or settings.smoother:
            batch = self.network.batch_factors(record, per_output=per_output)
            weights = assemble_kernel(self._terms(previous, following), batch, coefficient)
            weights.mul_(1.0 / batch_size)
            if per_output:
                # One output: w_t(x, i) is a scalar and c_t(x, i) = -w_t(x, i) g_it.
                weights = weights[:, :, 0, 0]
        if settings.contributions:
            if per_output:
                contribution = (weights * (-record.g[:, 0]))[:, :, None]
            else:
                contribution = -weights[:, :, :, 0]
            self.contributions.index_add_(1, index, contribution.double())
            if self._carried is not None:
                gradient_rows = (
                    self.network.batch_factors(record, per_output=False) if per_output else batch
                )
                self._carried.step(t, self._terms(previous, following),
                                   step.carried_coefficient, gradient_rows, index)

        n_train = settings.X_train.shape[0]
        train_previous = train_next = None
        if settings.smoother:
            # s_t(x) = s_{t-1}(x) - sum_{i in B} w_t(x, i) (s_{t-1}(x_i) - e_i); the sketch
            # tracks R s_t(x), with R e_i (row i of the basis) in place of e_i.
            residual = self.train_smoother[index].clone()
            if settings.smoother_basis is None:
                residual[torch.arange(batch_size, device=index.device), index] -= 1.0
            else:
                residual -= settings.smoother_basis[index]
            if not settings.train_in_eval:  # else the training rows are smoother's first
                train_previous = self.train_previous
                train_next = self.network.evaluate(params_next, settings.X_train)
                train_weights = assemble_kernel(
                    self._terms(train_previous, train_next), batch, coefficient
                )[:, :, 0, 0].mul_(1.0 / batch_size)
                self.train_smoother -= train_weights.double() @ residual
                self.train_previous = train_next
            self.smoother -= weights.double() @ residual
            if self._smoother_window is not None:
                train_terms = None
                if not settings.train_in_eval:
                    train_terms = self._terms(train_previous, train_next)
                self._carry_smoother(step, self._terms(previous, following), train_terms)
                self._smoother_window.append((batch, residual, 1.0 / batch_size))

        column = self._checkpoint_column.get(int(t))
        if column is not None:
            self._checkpoint_norms(
                column, params_previous, params_next, previous, following, coefficient,
                1.0 / batch_size, train_previous, train_next,
            )

    def _carry_smoother(self, step: OptimizerStep, terms, train_terms) -> None:
        """Lags ``k = 1..L-1``: ``s_t(x) -= rho^k / |B_s| K(x; t | x_i; s) residual_s``.

        On the structured route the window's batches form one set of columns, so each step
        takes one kernel (in memory-bounded blocks) instead of ``L - 1``."""
        rho = self.kernels.memory_ratio
        entries = list(reversed(self._smoother_window))  # lag 1, 2, ...
        weighted = [residual * (rho**lag * scale)
                    for lag, (_, residual, scale) in enumerate(entries, 1)]
        columns = _stack_factors([batch for batch, _, _ in entries])
        groups = ([(columns, torch.cat(weighted))] if columns is not None
                  else [(batch, w) for (batch, _, _), w in zip(entries, weighted)])
        targets = [(terms, self.smoother)]
        if train_terms is not None:
            targets.append((train_terms, self.train_smoother))
        for batch, residual in groups:
            for rows_terms, smoother in targets:
                for rows, cols, block in kernel_blocks(rows_terms, batch,
                                                       step.carried_coefficient):
                    # in the kernel's precision, accumulated in float64
                    update = block[:, :, 0, 0] @ residual[cols].to(block.dtype)
                    smoother[rows] -= update.double()

    def _checkpoint_norms(
        self, column: int, params_previous: Params, params_next: Params, previous, following,
        coefficient: Coefficient, scale: float, train_previous, train_next,
    ) -> None:
        """Kernel norms of the evaluation rows and the chosen training rows at a checkpoint.

        The columns are the norm sample's ``J_{t-1}(x_i)``; only the training rows in
        ``train_rows`` (all by default) get their own norms.
        """
        settings = self.kernels
        n_train = settings.X_train.shape[0]
        sample, rows = settings.norm_sample, settings.train_rows
        if settings.train_in_eval:
            columns = previous.factors.take(slice(0, n_train))
            if sample is not None:
                columns = columns.take(sample)
        elif train_previous is not None:  # the smoother evaluated every training row
            columns = train_previous.factors
            if sample is not None:
                columns = columns.take(sample)
        else:
            X_columns = settings.X_train if sample is None else settings.X_train[sample]
            columns = self.network.evaluate(params_previous, X_columns).factors
        self.kernel_norms[:, column] = self._norms(
            self._terms(previous, following), columns, coefficient, scale
        )
        if settings.train_in_eval:
            train_norms = self.kernel_norms[:n_train, column]
            self.train_kernel_norms[:, column] = (
                train_norms if rows is None else train_norms[rows]
            )
            return
        if train_previous is None:
            X_rows = settings.X_train if rows is None else settings.X_train[rows]
            train_previous = self.network.evaluate(params_previous, X_rows)
            if settings.order == TelescopeOrder.TRAPEZOID:
                train_next = self.network.evaluate(params_next, X_rows)
        elif rows is not None:
            train_previous = _Subset(train_previous, rows)
            train_next = None if train_next is None else _Subset(train_next, rows)
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
            if settings.norm == KernelNorm.L1:
                totals[rows] += squares.sqrt_().sum(dim=1)
            else:
                totals[rows] += squares.sum(dim=1)
        n_train = settings.X_train.shape[0]
        n_columns = len(columns)
        if settings.norm == KernelNorm.L1:
            return totals * (n_train / n_columns)
        return (totals * (n_train / n_columns)).sqrt_()

    # -- results -----------------------------------------------------------------------

    def _final_output(self, final_params: Params) -> Tensor:
        if self._norms_only:  # the rows were not followed step by step
            return self.network.evaluate(final_params, self.X_eval).output.double()
        return self.previous.output.double()

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
            final_output=numpy(self._final_output(final_params)),
            final_params=final_params,
        )
        if self.kernels is not None:
            if self._carried is not None:
                self._carried.finish()
            result.contributions = numpy(self.contributions)
            result.unattributed = numpy(self.unattributed)
            result.kernel_norms = numpy(self.kernel_norms)
            result.train_kernel_norms = numpy(self.train_kernel_norms)
            result.prediction_path = numpy(self.prediction_path)
            if self.kernels.smoother:
                result.smoother = numpy(self.smoother)
                result.train_smoother = numpy(self.train_smoother)
        return result
