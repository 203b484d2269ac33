"""The network lens at benchmark scale: norms-only kappa, sketched effective parameters.

A full :meth:`~TelescopingLensMixin.kernel_view` accumulates every evaluation point's
contribution from every training example at every step. kappa_bar (docs/design.md §1.5)
needs kernels at the checkpoints only, and the effective parameters (§1.6) need the
smoother's squared norms only: :meth:`kernel_norms` replays training with no contributions
and takes the kernel between the evaluation rows (and a seeded subsample of training rows
for the normalising mean) and the norm sample at the checkpoints; :meth:`effective_parameters`
tracks a seeded random sketch ``R s_t(x)`` (:mod:`._sketch`) instead of the ``n x n``
smoother. Costs are in §1.9 and in each docstring; :func:`lens_cost` estimates them.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state

from tabscope.errors import AnalysisTooCostlyError
from tabscope.validation import Interval, StrOptions, one_of, validate_parameters
from tabscope.vocabulary import KernelMethod, KernelNorm, Objective, TelescopeOrder

from ._network_lens import describe_smoother
from ._replay import KernelSettings
from ._sketch import DEFAULT_SKETCH_SIZE, sketch_basis
from ._training import checkpoint_steps
from .lens_results import EffectiveParameters, KernelNorms

__all__ = ["ScaledLensMixin", "lens_cost"]

#: Training rows whose kappa normalises kappa_bar, by default (a seeded subsample).
DEFAULT_NORM_TRAIN_SAMPLE = 1000
#: Largest estimated cost (floating-point operations) run by default; beyond it the
#: analysis is skipped with its estimate (about 10 minutes at 20 GFLOP/s).
DEFAULT_MAX_FLOPS = 1.2e13

_NORMS_CONSTRAINTS = {
    "order": [one_of(TelescopeOrder), None],
    "norm": [one_of(KernelNorm)],
    "norm_sample_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
    "train_sample_size": [Interval(Integral, 2, None, closed="left"), None],
    "random_state": ["random_state"],
}
_SMOOTHER_CONSTRAINTS = {
    "sketch_size": [Interval(Integral, 2, None, closed="left"), None],
    "attribution_window": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "max_flops": [Interval(Real, 0, None, closed="neither"), None],
    "random_state": ["random_state"],
}


def lens_cost(estimator, n_rows: int, n_columns: int, per_step: bool) -> float:
    """Estimated floating-point operations of kernels between ``n_rows`` and ``n_columns``.

    ``per_step=True``: the kernel with each step's batch (``n_columns = |B|``) at every one
    of the ``T`` steps, plus a forward/backward pass and a JVP over the rows per step
    (``6 P`` each); False: at each of the ``C`` checkpoints. A kernel entry costs
    ``2 sum_l (in_l + 1 + out_l)`` on the structured route with a scalar preconditioner and
    ``2 P`` with Adam/AdamW or the functional route (docs/design.md §1.7, §1.9).
    """
    config = estimator.training_config_
    P = sum(p.numel() for p in estimator.module_.parameters())
    cheap = config.kernel_method == KernelMethod.STRUCTURED and not config.optimizer.diagonal
    if cheap:
        entry = 2 * sum(
            m.in_features + 1 + m.out_features for m in estimator.module_.modules()
            if isinstance(m, torch.nn.Linear)
        )
    else:
        entry = 2 * P
    terms = 2 if estimator.telescope == TelescopeOrder.TRAPEZOID else 1
    if per_step:
        return float(config.n_steps * n_rows * (terms * n_columns * entry + 6 * P))
    n_checkpoints = len(checkpoint_steps(config.n_steps, estimator._n_checkpoints()))
    return float(n_checkpoints * n_rows * (terms * n_columns * entry + 6 * P))


class ScaledLensMixin:
    """Norms-only and sketched lens analyses of a fitted telescoping network."""

    def kernel_norms(
        self, X, *, order: str | None = None, norm: str = "l1",
        norm_sample_size: int | str | None = "auto",
        train_sample_size: int | None = DEFAULT_NORM_TRAIN_SAMPLE, random_state=0,
    ) -> KernelNorms:
        """Kernel norms at the checkpoints, without contributions (docs/design.md §1.5).

        Replays training (one fit's cost; the ``m`` rows are evaluated at the checkpoints
        only) and, at each of the ``C`` checkpoints, takes the kernel between the ``m`` evaluation rows
        and ``s`` training rows and the ``S`` columns of the norm sample: ``O(C (m + s) S
        (in + out))`` per layer with SGD or momentum, ``O(C (m + s) S P)`` with Adam/AdamW
        (one GEMM per layer against the preconditioned ``D * delta_i a_i^T``), in blocks
        of bounded memory. The same norm sample as :meth:`kernel_view` with the same
        ``random_state``, so kappa_bar agrees with the full view's.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        order, norm, norm_sample_size
            As in :meth:`kernel_view`.
        train_sample_size : int or None, default=1000
            Training rows (a seeded uniform subsample) whose kappa gives the normalising
            mean; None takes all ``n``. The result reports the mean's standard error.
        random_state : int, RandomState instance or None, default=0
            Seed of the norm sample, then of the training subsample.

        Returns
        -------
        KernelNorms
        """
        X = self._validate_eval(X)
        arguments = dict(order=order, norm=norm, norm_sample_size=norm_sample_size,
                         train_sample_size=train_sample_size, random_state=random_state)
        validate_parameters(_NORMS_CONSTRAINTS, arguments,
                            caller=f"{type(self).__name__}.kernel_norms")
        order = self.telescope if order is None else order
        config = self.training_config_
        n_train = len(self.X_train_)
        cheap = config.kernel_method == KernelMethod.STRUCTURED and not config.optimizer.diagonal
        rng = check_random_state(random_state)
        sample = self._norm_sample(norm_sample_size, rng, cheap_kernel=cheap)
        rows = None
        if train_sample_size is not None and train_sample_size < n_train:
            rows = np.sort(rng.choice(n_train, size=int(train_sample_size), replace=False))
        checkpoints = checkpoint_steps(config.n_steps, self._n_checkpoints())
        device = self._device()
        settings = KernelSettings(
            order=order, X_train=torch.tensor(self.X_train_, device=device),
            checkpoints=[int(t) for t in checkpoints], norm=norm,
            norm_sample=None if sample is None else torch.as_tensor(sample, device=device),
            contributions=False,
            train_rows=None if rows is None else torch.as_tensor(rows, device=device),
        )
        result, difference = self._replay(X, (), settings)
        metadata = self._view_metadata(order, sample, difference)
        return KernelNorms(
            kernel_norms=result.kernel_norms, train_kernel_norms=result.train_kernel_norms,
            train_rows=rows, n_train=n_train, checkpoints=np.asarray(checkpoints),
            norm=norm, metadata=metadata,
        )

    def effective_parameters(
        self, X, *, sketch_size: int | None = DEFAULT_SKETCH_SIZE,
        max_flops: float | None = DEFAULT_MAX_FLOPS, attribution_window: int | str = "auto",
        random_state=0,
    ) -> EffectiveParameters:
        """``p_train`` and ``p_test`` (docs/design.md §1.6), sketched or dense.

        One replay over ``[X_train; X]`` tracks ``R s_t(x)`` for the ``n + m`` rows
        (``sketch_size = k``; :mod:`._sketch`) or, with ``sketch_size=None``, the dense
        ``s_t(x)``. Per step: a forward pass and factors over the ``n + m`` rows
        (``O((n + m) P)``), their kernel with the batch (``O((n + m) |B| (in + out))`` per
        layer with SGD or momentum, ``O((n + m) |B| P)`` with Adam/AdamW) and the update
        ``O((n + m) |B| k)`` (``k = n`` dense). Memory ``O((n + m) k)``. With the
        optimiser's memory (momentum, Adam) each batch is applied again at the ``L - 1``
        later steps of its attribution window (docs/design.md §1.8): ``L`` times the kernel
        and update cost, which :func:`lens_cost` counts before running.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Evaluation rows (``p_test``).
        sketch_size : int or None, default=256
            Rows ``k`` of the sketch; None for the dense smoother (``O(n (n + m))`` memory).
        max_flops : float or None, default=1.2e13
            Raise :class:`~tabscope.errors.AnalysisTooCostlyError` (with the estimate)
            instead of running when :func:`lens_cost` exceeds it; None runs anyway.
        attribution_window : int or "auto", default="auto"
            As in :meth:`kernel_view`; a window shorter than training gives the smoother of
            part of the updates, which the result's ``smoother`` field says.
        random_state : int, RandomState instance or None, default=0
            Seed of the sketch.

        Returns
        -------
        EffectiveParameters
        """
        X = self._validate_eval(X)
        validate_parameters(
            _SMOOTHER_CONSTRAINTS,
            dict(sketch_size=sketch_size, max_flops=max_flops,
                 attribution_window=attribution_window, random_state=random_state),
            caller=f"{type(self).__name__}.effective_parameters",
        )
        config = self.training_config_
        if config.objective != Objective.REGRESSION:
            raise ValueError(
                "effective_parameters needs squared loss (a regressor); the linear smoother "
                "is not defined for log loss"
            )
        n_train = len(self.X_train_)
        n_rows = n_train + len(X)
        width = n_train if sketch_size is None else int(sketch_size)
        batch = config.batch_size if config.batch_size is not None else n_train
        window = self._attribution_window(attribution_window, 0)
        cost = (lens_cost(self, n_rows, batch * window, per_step=True)
                + 2.0 * config.n_steps * n_rows * batch * window * width)
        if max_flops is not None and cost > max_flops:
            memory = (f" with the optimiser's memory credited over {window} steps"
                      if window > 1 else "")
            raise AnalysisTooCostlyError(
                f"effective parameters of {type(self).__name__} ({config.optimizer.name}) "
                f"at n = {n_train}: estimated {cost / 1e9:.0f} GFLOP over {config.n_steps} "
                f"steps of {batch}{memory}, above max_flops = {max_flops / 1e9:.0f} GFLOP "
                f"(~{cost / 2e10 / 60:.0f} min at 20 GFLOP/s)"
            )
        device = self._device()
        basis = None
        if sketch_size is not None:
            basis = torch.as_tensor(sketch_basis(n_train, width, random_state), device=device)
        stacked = np.vstack([np.asarray(self.X_train_, dtype=X.dtype), X])
        settings = KernelSettings(
            order=self.telescope, X_train=torch.tensor(self.X_train_, device=device),
            checkpoints=[], smoother=True, train_in_eval=True, contributions=False,
            smoother_basis=basis, attribution_window=window,
            memory_ratio=config.optimizer.memory_ratio,
        )
        result, _ = self._replay(stacked, (), settings)
        rows = result.smoother
        return EffectiveParameters.from_rows(
            rows[:n_train], rows[n_train:], n_train, sketch_size, window,
            describe_smoother(window, config.optimizer.memory_ratio, config.n_steps),
        )
