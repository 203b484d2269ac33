"""The telescoping lens of a fitted network: predictions, fidelity and the kernel view.

Every method here replays the training run (:meth:`_TelescopingEstimator._replay`) on the
evaluation points it is given (any points, not only those seen in fit) and reads off what it
needs: the telescoping model's output (docs/design.md §1.1), its relative errors, or the full
kernel decomposition (§1.3) with kernel norms (§1.5) and the linear smoother (§1.6).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_random_state

from tabscope.validation import Interval, StrOptions, one_of, validate_parameters
from tabscope.vocabulary import KernelMethod, KernelNorm, Objective, TelescopeOrder, choices

from ._carried import MAX_CARRIED_ELEMENTS, default_attribution_window
from ._replay import KernelSettings, ReplayResult
from ._training import checkpoint_steps
from .kernel_view import KernelView, prediction_path_steps

__all__ = ["TelescopingLensMixin"]

# Kernel norms sum over all training examples unless n exceeds these (docs/design.md §1.7):
# a scalar preconditioner keeps the structured kernel at m n (in + out) per layer, a diagonal
# one (Adam) or the functional path costs m n P, hence the smaller default sample.
AUTO_NORM_SAMPLE_SCALAR = 4096
AUTO_NORM_SAMPLE_ROWS = 256

_ORDER_CONSTRAINTS = {"order": [one_of(TelescopeOrder), None]}

_KERNEL_VIEW_CONSTRAINTS = {
    **_ORDER_CONSTRAINTS,
    "norm": [one_of(KernelNorm)],
    "norm_sample_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
    "smoother": ["boolean", StrOptions({"auto"})],
    "max_smoother_train": [Interval(Integral, 1, None, closed="left")],
    "kernel_norms": ["boolean"],
    "attribution_window": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "random_state": ["random_state"],
}


def describe_smoother(window: int, ratio: float, n_steps: int) -> str:
    """What a tracked smoother credits, for metadata: complete, or which part it leaves."""
    if ratio == 0.0 or window >= n_steps:
        return "computed"
    if window == 1:
        return ("computed, partial: the current batch only (attribution_window=1); the "
                "momentum carried over from earlier batches is not in it")
    return (f"computed over a window of {window} steps; the memory older than that "
            f"(a share {ratio ** window:.2g}) is not in it")


class TelescopingLensMixin:
    """The lens methods of a fitted telescoping network (mixed into the estimators)."""

    def _check_order(self, order, caller: str) -> str:
        validate_parameters(
            _ORDER_CONSTRAINTS, {"order": order}, caller=f"{type(self).__name__}.{caller}"
        )
        return self.telescope if order is None else order

    def predict_telescoping(self, X, order: str | None = None) -> np.ndarray:
        """Output of the telescoping model (docs/design.md §1.1) on ``X``.

        Replays training and sums each step's linearised change,
        ``J_{t-1}(x) Delta theta_t`` (first order) or
        ``1/2 (J_{t-1}(x) + J_t(x)) Delta theta_t`` (trapezoid), computed with
        forward-mode Jacobian-vector products, onto the network at initialisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        order : {"first_order", "trapezoid"}, default=None
            Defaults to the estimator's ``telescope``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            In the units of ``predict`` (regressors) or ``decision_function``
            (classifiers).
        """
        X = self._validate_eval(X)
        order = self._check_order(order, "predict_telescoping")
        result, _ = self._replay(X, (order,))
        return self._as_units(self._to_target_units(result.predictions[order]))

    def predict_linearized(self, X) -> np.ndarray:
        """The network linearised at initialisation: ``f_0(x) + J_0(x) (theta_T - theta_0)``.

        Needs no replay. Same units as :meth:`predict_telescoping`.
        """
        X = self._validate_eval(X)
        network = self._network(torch.float64)
        initial = self._initial_parameters(torch.float64)
        final = tuple(p.to(torch.float64) for p in self._final_parameters())
        X_tensor = torch.tensor(X, dtype=torch.float64, device=self._device())
        with torch.no_grad():
            point = network.evaluate(initial, X_tensor)
            tangent = tuple(b - a for a, b in zip(initial, final))
            values = point.output + point.jvp([tangent])[0]
        return self._as_units(self._to_target_units(values.cpu().numpy()))

    def telescoping_fidelity(self, X) -> dict[str, float]:
        """Relative errors of the telescoping and linearised models on ``X`` (docs/design.md §1.1).

        For each approximation ``g``:
        ``mean |g(x) - f_T(x)| / mean |f_T(x) - f_0(x)|`` over the points (and outputs) of
        ``X``, where ``f_T`` is the trained network and ``f_0`` the network at
        initialisation; a ratio, so the same in network and target units.

        Returns
        -------
        dict
            Keys ``"first_order"``, ``"trapezoid"`` and ``"linearized"``; NaN if the network
            did not change on ``X``.
        """
        X = self._validate_eval(X)
        result, _ = self._replay(X, choices(TelescopeOrder))
        final = self._decision(X)
        scale = float(np.mean(np.abs(final - result.offset)))
        approximations = {
            **{order: result.predictions[order] for order in choices(TelescopeOrder)},
            "linearized": result.linearized,
        }
        return {
            name: (float(np.mean(np.abs(values - final)) / scale) if scale > 0 else math.nan)
            for name, values in approximations.items()
        }

    def kernel_view(
        self,
        X,
        *,
        order: str | None = None,
        norm: str = "l1",
        norm_sample_size: int | str | None = "auto",
        smoother: bool | str = "auto",
        max_smoother_train: int = 2000,
        kernel_norms: bool = True,
        attribution_window: int | str = "auto",
        random_state=0,
    ) -> KernelView:
        """The network as a kernel-weighted sum over its training examples (docs/design.md §1.3).

        Replays training and tracks, for every evaluation point ``x`` and training example
        ``i``, the contributions ``C(x, i) = -sum_t w_t(x, i) g_it`` of the telescoping model
        of order ``order``, the unattributed residual (momentum, weight decay), kernel
        norms at ``n_checkpoints`` steps and, for squared loss, the smoother.
        ``view.prediction`` is the telescoping model's output computed by JVPs on its own,
        so ``view.check_identity()`` is a real check. With momentum, Nesterov, Adam or
        AdamW, each batch's gradient keeps moving the network at later steps through the
        optimiser's memory: it is credited to the batch's examples over
        ``attribution_window`` steps (docs/design.md §1.8), and ``view.coverage`` says
        what share of the prediction's change the contributions explain.

        Cost: a replay of training plus, per step, the kernel between the ``m`` points
        and the batch: ``O(m |B| (in + out))`` per layer for SGD and momentum (structured
        path), ``O(m |B| P)`` for Adam/AdamW's diagonal preconditioner or the functional
        path (``P`` parameters); kernel norms add the same with the norm sample in place
        of the batch, for the ``m`` points and all ``n`` training rows, at each
        checkpoint. Memory: the float64 contributions, ``m n K`` values. When ``X``
        starts with the training set (``[X_train; X_test]``), the training rows'
        kernels, norms and smoother are read off those first rows. An attribution window
        ``L > 1`` adds two contractions of the ``m`` points with each batch,
        ``O(2 m |B| P)`` per step whatever ``L``, and keeps ``m K P`` values.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Evaluation points; any points, not only training data.
        order : {"first_order", "trapezoid"}, default=None
            Telescoping model; defaults to the estimator's ``telescope``.
        norm : {"l1", "l2"}, default="l1"
            Norm over training examples of the kernel weights (Frobenius norm of each
            ``K x K`` block), docs/design.md §1.5.
        norm_sample_size : int, "auto" or None, default="auto"
            Number of training examples the kernel norms sum over. If smaller than ``n``,
            a uniform random subsample (drawn with ``random_state``) is used and the sums
            are scaled by ``n / size`` (L1; its square root for L2) to estimate the sum
            over all examples. None uses all examples; "auto" uses all up to
            4096 examples for SGD/momentum on the structured path and up to 256 otherwise
            (Adam's diagonal preconditioner and the functional path cost ``m n P`` per
            checkpoint). Recorded in ``view.metadata``.
        smoother : bool or "auto", default="auto"
            Track the linear-smoother weights ``s_T(x)`` of docs/design.md §1.6 (squared loss
            only), which needs the kernel between all ``n`` training examples and each
            batch at every step: ``O(n (n + m))`` memory, and time
            ``O(T |B| n (n + m))`` plus ``O(T |B| n P)`` for Adam/AdamW or the functional
            path. "auto" tracks them for regressors with at most ``max_smoother_train``
            training examples trained by SGD/momentum on the structured path (where the
            kernels are cheap); True tracks them for any regressor within the cap and
            raises ValueError where they cannot be tracked.
        max_smoother_train : int, default=2000
            Cap on the number of training examples for the smoother.
        kernel_norms : bool, default=True
            False takes no kernel norms (the view has no checkpoints): the view of a few
            displayed points then costs a replay plus their kernel with each batch.
        attribution_window : int or "auto", default="auto"
            ``L``: a batch's gradient is credited to its examples at its own step and at
            the ``L - 1`` steps after it, where the optimiser's memory (momentum, Adam's
            first moment, ratio ``rho``) carries it; what is older (a share ``rho^L``)
            and weight decay stay in ``unattributed``. "auto" takes the smallest ``L``
            with ``rho^L <= 1e-3`` (66 for ``rho = 0.9``; 1 for SGD); 1 credits the
            current batch only. Recorded in ``view.metadata``.
        random_state : int, RandomState instance or None, default=0
            Seed of the norm subsample.

        Returns
        -------
        KernelView
            ``metadata`` holds the model description, the norm subsample and, with the
            smoother, the effective parameters on ``X`` (``"effective_parameters"``) and on
            the training set (``"effective_parameters_train"``), i.e.
            ``(n / |E|) sum_{x in E} ||s_T(x)||^2``.
        """
        X = self._validate_eval(X)
        arguments = dict(
            order=order, norm=norm, norm_sample_size=norm_sample_size, smoother=smoother,
            max_smoother_train=max_smoother_train, kernel_norms=kernel_norms,
            attribution_window=attribution_window, random_state=random_state,
        )
        validate_parameters(
            _KERNEL_VIEW_CONSTRAINTS, arguments, caller=f"{type(self).__name__}.kernel_view"
        )
        order = self.telescope if order is None else order
        n_checkpoints = self._n_checkpoints()
        config = self.training_config_
        n_train = len(self.X_train_)
        regression = config.objective == Objective.REGRESSION
        cheap_kernel = (
            config.kernel_method == KernelMethod.STRUCTURED and not config.optimizer.diagonal
        )
        window = self._attribution_window(attribution_window, len(X))
        track_smoother = self._track_smoother(
            smoother, max_smoother_train, regression=regression,
            cheap_kernel=cheap_kernel and window == 1,
        )
        sample = self._norm_sample(norm_sample_size, random_state, cheap_kernel=cheap_kernel)
        checkpoints = checkpoint_steps(config.n_steps, n_checkpoints)
        if not kernel_norms:
            checkpoints = checkpoints[:0]
        settings = self._kernel_settings(X, order, norm, sample, checkpoints, track_smoother,
                                         prediction_path_steps(config.n_steps))
        settings.attribution_window = window
        settings.memory_ratio = config.optimizer.memory_ratio
        result, difference = self._replay(X, (order,), settings)

        metadata = self._view_metadata(order, sample, difference)
        metadata["attribution_window"] = window
        metadata["memory_ratio"] = config.optimizer.memory_ratio
        metadata["memory_outside_window"] = (
            config.optimizer.memory_ratio ** window if window < config.n_steps else 0.0
        )
        smoother_values = None
        if track_smoother:
            smoother_values = result.smoother
            metadata["smoother"] = describe_smoother(window, config.optimizer.memory_ratio,
                                                      config.n_steps)
            metadata["effective_parameters"] = float(
                n_train / len(X) * np.sum(smoother_values**2)
            )
            metadata["effective_parameters_train"] = float(np.sum(result.train_smoother**2))
        else:
            metadata["smoother"] = self._smoother_skipped(smoother, max_smoother_train, regression,
                                                          window)
        return self._as_view(result, order, checkpoints, smoother_values, norm, metadata)

    # -- the steps of kernel_view ------------------------------------------------------

    def _attribution_window(self, attribution_window, n_eval: int) -> int:
        """``L`` for this view: "auto" by the optimiser's memory, capped by the steps."""
        config = self.training_config_
        ratio = config.optimizer.memory_ratio
        if attribution_window == "auto":
            window = default_attribution_window(ratio)
        else:
            window = int(attribution_window)
        window = 1 if ratio == 0.0 else min(window, config.n_steps)
        kept = n_eval * self.n_outputs_ * sum(p.numel() for p in self.module_.parameters())
        if window > 1 and kept > MAX_CARRIED_ELEMENTS:
            raise ValueError(
                f"attribution_window={window} keeps {n_eval} x {self.n_outputs_} x "
                f"{sum(p.numel() for p in self.module_.parameters())} = {kept:,} values for the carried momentum, over "
                f"the budget of {MAX_CARRIED_ELEMENTS:,}: view fewer points at a time, or "
                "pass attribution_window=1 to credit the current batch only"
            )
        return window

    def _track_smoother(
        self, smoother, max_smoother_train: int, *, regression: bool, cheap_kernel: bool
    ) -> bool:
        """Whether to track the smoother: ``"auto"`` decides by cost, True insists."""
        n_train = len(self.X_train_)
        if smoother == "auto":
            return regression and cheap_kernel and n_train <= max_smoother_train
        if smoother and not regression:
            raise ValueError(
                "smoother=True needs squared loss (a regressor); the linear smoother "
                "is not defined for log loss"
            )
        if smoother and n_train > max_smoother_train:
            raise ValueError(
                f"smoother=True needs n_train <= max_smoother_train, got n_train="
                f"{n_train} > {max_smoother_train}; the smoother costs O(n^2) memory"
            )
        return bool(smoother)

    def _smoother_skipped(self, smoother, max_smoother_train: int, regression: bool,
                          window: int = 1) -> str:
        """Why the smoother was not tracked, for the view's metadata."""
        n_train = len(self.X_train_)
        if not regression:
            return "not defined for log loss"
        if smoother is False:
            return "not requested"
        if n_train > max_smoother_train:
            return f"skipped: n_train={n_train} > max_smoother_train={max_smoother_train}"
        if window > 1:
            return (f"skipped by 'auto': the optimiser's memory makes the complete smoother "
                    f"{window}x the kernels of the current batch alone (pass smoother=True "
                    "to force)")
        return "skipped by 'auto': costly kernels (pass smoother=True to force)"

    def _norm_sample(
        self, norm_sample_size, random_state, *, cheap_kernel: bool
    ) -> np.ndarray | None:
        """Sorted training rows the kernel norms sum over; None for all of them."""
        n_train = len(self.X_train_)
        if norm_sample_size == "auto":
            size = AUTO_NORM_SAMPLE_SCALAR if cheap_kernel else AUTO_NORM_SAMPLE_ROWS
        elif norm_sample_size is None:
            size = n_train
        else:
            size = int(norm_sample_size)
        if size >= n_train:
            return None
        rng = check_random_state(random_state)
        return np.sort(rng.choice(n_train, size=size, replace=False))

    def _kernel_settings(
        self, X, order: str, norm: str, sample, checkpoints, track_smoother: bool,
        path_steps=(),
    ) -> KernelSettings:
        """What the replay tracks; views over ``[X_train; X_test]`` reuse the first rows."""
        device = self._device()
        n_train = len(self.X_train_)
        # Views over [X_train; X_test] (one replay for train and test rows) are common:
        # the training rows' kernels are then those of the first evaluation rows.
        X_cast = np.asarray(X, dtype=self.X_train_.dtype)
        train_in_eval = len(X_cast) >= n_train and np.array_equal(
            X_cast[:n_train], self.X_train_
        )
        return KernelSettings(
            order=order,
            X_train=torch.tensor(self.X_train_, device=device),
            checkpoints=[int(t) for t in checkpoints],
            norm=norm,
            norm_sample=None if sample is None else torch.as_tensor(sample, device=device),
            smoother=track_smoother,
            train_in_eval=bool(train_in_eval),
            path_steps=[int(t) for t in path_steps],
        )

    def _view_metadata(self, order: str, sample, difference: float) -> dict:
        """The model description a kernel view carries."""
        config = self.training_config_
        n_train = len(self.X_train_)
        return {
            "model": type(self).__name__,
            "kernel_method": config.kernel_method,
            "optimizer": config.optimizer.name,
            "telescope": order,
            "n_steps": config.n_steps,
            "batch_size": config.batch_size if config.batch_size is not None else n_train,
            "dtype": config.dtype,
            "norm_sample_size": len(sample) if sample is not None else n_train,
            "norm_sample_indices": sample,
            "norm_scale": n_train / (len(sample) if sample is not None else n_train),
            "replay_max_abs_difference": difference,
        }

    def _as_view(
        self, result: ReplayResult, order: str, checkpoints, smoother_values, norm: str,
        metadata: dict,
    ) -> KernelView:
        """The replay's arrays in the units of ``predict`` / ``decision_function``.

        A regressor trained on a standardised target ``(y - mu) / sigma`` has
        ``predict = mu + sigma f``, so the view maps every term of the identity:
        ``offset -> mu + sigma f_0``, ``contributions -> sigma C`` (the contributions
        with the gradients in target units, ``sigma g_it = f(x_i) - y_i``),
        ``unattributed -> sigma r`` and ``prediction -> mu + sigma prediction``: the
        identity of docs/design.md §1.3 holds in target units. The smoother weights
        are unchanged: ``mu + sigma (s^T (y - mu) / sigma + o) = s^T y + sigma o +
        mu (1 - sum_i s_i)``, the smoother's offset absorbing ``mu (1 - sum_i s_i)``.
        """
        squeeze = self.n_outputs_ == 1
        contributions = result.contributions[:, :, 0] if squeeze else result.contributions
        units = self._to_target_units
        path_steps, path = None, None
        if result.prediction_path is not None and result.prediction_path.shape[1]:
            path_steps = prediction_path_steps(self.training_config_.n_steps)
            path = units(result.prediction_path)
            path = path[:, :, 0] if squeeze else path
        return KernelView(
            offset=self._as_units(units(result.offset)),
            contributions=units(contributions, shift=False),
            unattributed=self._as_units(units(result.unattributed, shift=False)),
            prediction=self._as_units(units(result.predictions[order])),
            checkpoints=checkpoints,
            kernel_norms=result.kernel_norms,
            train_kernel_norms=result.train_kernel_norms,
            smoother=smoother_values,
            loss=Objective(self.training_config_.objective).loss.value,
            norm=norm,
            metadata=metadata,
            path_steps=path_steps,
            prediction_path=path,
        )
