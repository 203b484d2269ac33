"""Telescoping neural-network estimators (DESIGN.md 1.1-1.3, 1.5-1.7).

Four scikit-learn estimators train a torch network with a closed-form optimiser on a
seeded batch schedule:

* :class:`TelescopingMLPRegressor`, :class:`TelescopingMLPClassifier`: multilayer
  perceptrons built from ``hidden_layer_sizes`` and ``activation``;
* :class:`TelescopingNetRegressor`, :class:`TelescopingNetClassifier`: any torch module the
  user passes (a module, or a factory ``module(n_features, n_outputs)``).

``fit`` only trains: it stores the initial parameters, the seeds of the batch order, the
training data and the trained module, and does no kernel work. The lens methods
(:meth:`~_TelescopingEstimator.predict_telescoping`,
:meth:`~_TelescopingEstimator.telescoping_fidelity`,
:meth:`~_TelescopingEstimator.kernel_view`) replay the training run deterministically from
that state, track what they need on the evaluation points they are given (any points, not
only those seen in fit), and check that the replay ends exactly where fit did, so nothing
of the parameter trajectory is kept in memory and everything still works after pickling.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn.utils import skip_init

from .kernel_view import KernelView
from .tangent_kernels import FunctionalNetwork, StructuredMLP, make_network
from .telescope import (
    OPTIMIZERS,
    ORDERS,
    BatchSchedule,
    KernelSettings,
    OptimizerConfig,
    ReplayResult,
    TelescopeRecorder,
    checkpoint_steps,
    make_loss,
    train,
)

__all__ = [
    "ReplayDivergenceError",
    "TelescopingMLPClassifier",
    "TelescopingMLPRegressor",
    "TelescopingNetClassifier",
    "TelescopingNetRegressor",
    "TrainingConfig",
]

logger = logging.getLogger(__name__)

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "softplus": nn.Softplus,
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Kernel-norm checkpoints when ``n_checkpoints`` is None.
DEFAULT_CHECKPOINTS = 10
KERNEL_METHODS = ("auto", "structured", "functional")

# Kernel norms sum over all training examples unless n exceeds these (DESIGN.md 1.7): a
# scalar preconditioner keeps the structured kernel at m n (in + out) per layer, a diagonal
# one (Adam) or the functional path costs m n P, hence the smaller default sample.
AUTO_NORM_SAMPLE_SCALAR = 4096
AUTO_NORM_SAMPLE_ROWS = 256

# Relative size (in units of the largest parameter change over training) beyond which a
# replayed run is considered not to have reproduced the fitted one.
REPLAY_RTOL = 1e-3


class ReplayDivergenceError(RuntimeError):
    """Replaying the training run did not reproduce the fitted parameters."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a replay needs besides the data and the initial parameters.

    Captured at fit time, so that changing hyperparameters afterwards with ``set_params``
    cannot make a lens method replay a different run.
    """

    optimizer: OptimizerConfig
    batch_size: int | None
    n_steps: int
    batch_seed: int
    dtype: str
    task: str
    kernel_method: str


# ---------------------------------------------------------------------------------------
# Parameter checks
# ---------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_int(name: str, value, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(name: str, value, low: float, high: float | None, *, closed_low: bool) -> float:
    ok = _is_real(value) and math.isfinite(value)
    if ok:
        ok = value >= low if closed_low else value > low
        if high is not None:
            ok = ok and value < high
    if not ok:
        bound = f"{'[' if closed_low else '('}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must be a real number in {bound}, got {value!r}")
    return float(value)


def _check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def _check_device(value) -> torch.device:
    try:
        device = torch.device(value)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(
            f"device must be a torch device name such as 'cpu' or 'cuda', got {value!r}"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={value!r} was requested but CUDA is not available")
    return device


def _torch_dtype(name: str) -> torch.dtype:
    return DTYPES[name]


# ---------------------------------------------------------------------------------------
# Module construction
# ---------------------------------------------------------------------------------------


def build_mlp(
    n_features: int,
    hidden_layer_sizes: tuple[int, ...],
    n_outputs: int,
    activation: str,
    seed: int,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """An MLP with torch's default ``Linear`` initialisation, drawn from a private generator.

    Weights and biases are uniform on ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (what
    ``nn.Linear.reset_parameters`` gives) but sampled from ``torch.Generator(seed)``, so
    initialisation neither reads nor advances torch's global random state.
    """
    generator = torch.Generator().manual_seed(int(seed))
    sizes = [n_features, *hidden_layer_sizes, n_outputs]
    modules: list[nn.Module] = []
    for position, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = skip_init(nn.Linear, fan_in, fan_out, dtype=dtype)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        modules.append(linear)
        if position < len(sizes) - 2:
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


# ---------------------------------------------------------------------------------------
# The shared estimator machinery
# ---------------------------------------------------------------------------------------


class _TelescopingEstimator(BaseEstimator):
    """Training, prediction and the telescoping lens; subclasses define the module."""

    # -- to be provided by subclasses --------------------------------------------------

    def _build_module(self, n_features: int, n_outputs: int, seed: int, dtype: torch.dtype):
        raise NotImplementedError

    def _kernel_method(self) -> str:
        return "auto"

    def _check_module_parameters(self) -> None:
        """Validate the parameters that describe the module."""

    # -- fitting -----------------------------------------------------------------------

    def _check_parameters(self) -> OptimizerConfig:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        config = OptimizerConfig(
            name=self.optimizer,
            learning_rate=_check_real(
                "learning_rate", self.learning_rate, 0.0, None, closed_low=False
            ),
            weight_decay=_check_real(
                "weight_decay", self.weight_decay, 0.0, None, closed_low=True
            ),
            momentum=_check_real("momentum", self.momentum, 0.0, 1.0, closed_low=True),
            beta_1=_check_real("beta_1", self.beta_1, 0.0, 1.0, closed_low=True),
            beta_2=_check_real("beta_2", self.beta_2, 0.0, 1.0, closed_low=True),
            epsilon=_check_real("epsilon", self.epsilon, 0.0, None, closed_low=False),
        )
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        _check_int("max_steps", self.max_steps, 1)
        _check_choice("telescope", self.telescope, ORDERS)
        if self.n_checkpoints is not None:
            _check_int("n_checkpoints", self.n_checkpoints, 1)
        _check_choice("dtype", self.dtype, DTYPES)
        _check_device(self.device)
        self._check_module_parameters()
        if self.n_checkpoints is not None and self.n_checkpoints > self.max_steps:
            raise ValueError(
                f"n_checkpoints={self.n_checkpoints} exceeds max_steps={self.max_steps}: "
                "kernel norms are taken at distinct optimisation steps"
            )
        return config

    def _n_checkpoints(self) -> int:
        """``n_checkpoints``, or by default 10 steps (every step when there are fewer)."""
        if self.n_checkpoints is None:
            return min(DEFAULT_CHECKPOINTS, self.max_steps)
        return _check_int("n_checkpoints", self.n_checkpoints, 1)

    def _fit_targets(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        task: str,
        n_outputs: int,
        optimizer: OptimizerConfig,
    ):
        device = _check_device(self.device)
        dtype = _torch_dtype(self.dtype)
        rng = check_random_state(self.random_state)
        init_seed, batch_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))

        n_samples, n_features = X.shape
        module = self._build_module(n_features, n_outputs, init_seed, dtype)
        module = module.to(dtype=dtype, device=device).eval()
        X_train = np.asarray(X, dtype=np.dtype(self.dtype))
        X_tensor = torch.tensor(X_train, device=device)
        target_tensor = torch.tensor(targets, device=device)
        if target_tensor.is_floating_point():
            target_tensor = target_tensor.to(dtype)
        # The first forward pass materialises lazy layers (nn.LazyLinear): draw their
        # initialisation from the seed too, without touching the caller's random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self._check_module_output(module, X_tensor, n_outputs)
        network, kernel_method = make_network(module, n_outputs, self._kernel_method())
        initial = tuple(p.detach().clone() for p in module.parameters())
        if not initial:
            raise ValueError("module must have at least one parameter to train")

        batch_size = self.batch_size
        if batch_size is not None and batch_size >= n_samples:
            batch_size = None
        config = TrainingConfig(
            optimizer=optimizer,
            batch_size=batch_size,
            n_steps=int(self.max_steps),
            batch_seed=batch_seed,
            dtype=self.dtype,
            task=task,
            kernel_method=kernel_method,
        )
        schedule = BatchSchedule(n_samples, batch_size, batch_seed, device)
        final, losses = train(
            network, initial, X_tensor, target_tensor, make_loss(task), optimizer,
            schedule, config.n_steps,
        )
        with torch.no_grad():
            for parameter, value in zip(module.parameters(), final):
                parameter.copy_(value)

        self.module_ = module
        self.initial_parameters_ = [p.cpu().numpy() for p in initial]
        self.X_train_ = X_train
        self.y_train_ = np.asarray(targets)
        self.training_config_ = config
        self.n_outputs_ = int(n_outputs)
        self.loss_curve_ = losses
        self.n_iter_ = config.n_steps
        return self

    @staticmethod
    def _check_module_output(module: nn.Module, X: torch.Tensor, n_outputs: int) -> None:
        with torch.no_grad():
            output = module(X[:2])
        n = min(2, X.shape[0])
        expected = {(n, n_outputs)} | ({(n,)} if n_outputs == 1 else set())
        if tuple(output.shape) not in expected:
            raise ValueError(
                f"module must map inputs of shape (n, n_features) to outputs of shape "
                f"(n, {n_outputs}){' or (n,)' if n_outputs == 1 else ''}; got "
                f"{tuple(output.shape)} for an input of shape {tuple(X[:2].shape)}"
            )

    # -- networks at fitted state ------------------------------------------------------

    def _network(self, dtype: torch.dtype | None = None):
        """The network of the fitted module, with buffers in ``dtype`` if given."""
        method = self.training_config_.kernel_method
        if method == "structured":
            return StructuredMLP.from_module(self.module_)
        return FunctionalNetwork(self.module_, self.n_outputs_, buffer_dtype=dtype)

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _final_parameters(self) -> tuple[torch.Tensor, ...]:
        return tuple(p.detach() for p in self.module_.parameters())

    def _initial_parameters(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, ...]:
        device = self._device()
        return tuple(
            torch.tensor(p, device=device, dtype=dtype) for p in self.initial_parameters_
        )

    def _validate_eval(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _decision(self, X: np.ndarray) -> np.ndarray:
        """Network output on validated ``X``, shape (m, K), evaluated in float64.

        Evaluating in float64 whatever the training dtype makes a point's prediction
        independent of which other points share its batch.
        """
        network = self._network(torch.float64)
        params = tuple(p.to(torch.float64) for p in self._final_parameters())
        X_tensor = torch.tensor(X, dtype=torch.float64, device=self._device())
        with torch.no_grad():
            output = network.forward(params, X_tensor)
        return output.cpu().numpy()

    def _as_units(self, values: np.ndarray) -> np.ndarray:
        """(m, K) -> the shape of ``predict`` / ``decision_function``."""
        return values[:, 0] if self.n_outputs_ == 1 else values

    # -- the lens ----------------------------------------------------------------------

    def _replay(
        self, X: np.ndarray, orders, kernels: KernelSettings | None = None
    ) -> tuple[ReplayResult, float]:
        config = self.training_config_
        dtype = _torch_dtype(config.dtype)
        device = self._device()
        network = self._network()
        X_eval = torch.tensor(np.asarray(X, dtype=np.dtype(config.dtype)), device=device)
        X_train = (
            kernels.X_train
            if kernels is not None
            else torch.tensor(self.X_train_, device=device)
        )
        targets = torch.tensor(self.y_train_, device=device)
        if targets.is_floating_point():
            targets = targets.to(dtype)
        recorder = TelescopeRecorder(network, X_eval, orders, kernels)
        schedule = BatchSchedule(len(self.X_train_), config.batch_size, config.batch_seed, device)
        started = time.perf_counter()
        logger.debug(
            "%s: replaying %d steps on %d evaluation points (%s)",
            type(self).__name__, config.n_steps, len(X),
            "kernels" if kernels is not None else "telescoping predictions only",
        )
        final, _ = train(
            network, self._initial_parameters(dtype), X_train, targets,
            make_loss(config.task), config.optimizer, schedule, config.n_steps, recorder,
        )
        difference = self._check_replay(final)
        logger.debug(
            "%s: replay done in %.2f s, largest parameter difference from fit %.3g",
            type(self).__name__, time.perf_counter() - started, difference,
        )
        return recorder.result(final), difference

    def _check_replay(self, replayed: tuple[torch.Tensor, ...]) -> float:
        fitted = self._final_parameters()
        initial = self._initial_parameters(fitted[0].dtype)
        difference = max(float((r - f).abs().max()) for r, f in zip(replayed, fitted))
        displacement = max(float((f - i).abs().max()) for f, i in zip(fitted, initial))
        if not difference <= REPLAY_RTOL * max(displacement, 1e-12):
            raise ReplayDivergenceError(
                "Replaying the training run did not reproduce the fitted parameters "
                f"(largest difference {difference:.3g}, against a largest change over "
                f"training of {displacement:.3g}). The lens needs training to be "
                "reproducible: refit the estimator in this environment (the torch "
                "version, device or thread settings may differ from those used in fit), "
                "and do not modify module_ after fitting."
            )
        return difference

    def _check_order(self, order) -> str:
        return _check_choice("order", self.telescope if order is None else order, ORDERS)

    def predict_telescoping(self, X, order: str | None = None) -> np.ndarray:
        """Output of the telescoping model (DESIGN.md 1.1) on ``X``.

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
        order = self._check_order(order)
        result, _ = self._replay(X, (order,))
        return self._as_units(result.predictions[order])

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
        return self._as_units(values.cpu().numpy())

    def telescoping_fidelity(self, X) -> dict[str, float]:
        """Relative errors of the telescoping and linearised models on ``X`` (DESIGN 1.1).

        For each approximation ``g``:
        ``mean |g(x) - f_T(x)| / mean |f_T(x) - f_0(x)|`` over the points (and outputs) of
        ``X``, where ``f_T`` is the trained network and ``f_0`` the network at
        initialisation, in the units of :meth:`predict_telescoping`.

        Returns
        -------
        dict
            Keys ``"first_order"``, ``"trapezoid"`` and ``"linearized"``; NaN if the network
            did not change on ``X``.
        """
        X = self._validate_eval(X)
        result, _ = self._replay(X, ORDERS)
        final = self._decision(X)
        scale = float(np.mean(np.abs(final - result.offset)))
        approximations = {
            "first_order": result.predictions["first_order"],
            "trapezoid": result.predictions["trapezoid"],
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
        random_state=0,
    ) -> KernelView:
        """The network as a kernel-weighted sum over its training examples (DESIGN 1.3).

        Replays training and tracks, for every evaluation point ``x`` and training example
        ``i``, the contributions ``C(x, i) = -sum_t w_t(x, i) g_it`` of the telescoping model
        of order ``order``, the unattributed residual (momentum, weight decay), kernel
        norms at ``n_checkpoints`` steps and, for squared loss, the smoother.
        ``view.prediction`` is the telescoping model's output computed by JVPs on its own,
        so ``view.check_identity()`` is a real check.

        Cost: a replay of training plus, per step, the kernel between the ``m`` points
        and the batch: ``O(m |B| (in + out))`` per layer for SGD and momentum (structured
        path), ``O(m |B| P)`` for Adam/AdamW's diagonal preconditioner or the functional
        path (``P`` parameters); kernel norms add the same with the norm sample in place
        of the batch, for the ``m`` points and all ``n`` training rows, at each
        checkpoint. Memory: the float64 contributions, ``m n K`` values. When ``X``
        starts with the training set (``[X_train; X_test]``), the training rows'
        kernels, norms and smoother are read off those first rows.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Evaluation points; any points, not only training data.
        order : {"first_order", "trapezoid"}, default=None
            Telescoping model; defaults to the estimator's ``telescope``.
        norm : {"l1", "l2"}, default="l1"
            Norm over training examples of the kernel weights (Frobenius norm of each
            ``K x K`` block), DESIGN.md 1.5.
        norm_sample_size : int, "auto" or None, default="auto"
            Number of training examples the kernel norms sum over. If smaller than ``n``,
            a uniform random subsample (drawn with ``random_state``) is used and the sums
            are scaled by ``n / size`` (L1; its square root for L2) to estimate the sum
            over all examples. None uses all examples; "auto" uses all up to
            4096 examples for SGD/momentum on the structured path and up to 256 otherwise
            (Adam's diagonal preconditioner and the functional path cost ``m n P`` per
            checkpoint). Recorded in ``view.metadata``.
        smoother : bool or "auto", default="auto"
            Track the linear-smoother weights ``s_T(x)`` of DESIGN.md 1.6 (squared loss
            only), which needs the kernel between all ``n`` training examples and each
            batch at every step: ``O(n (n + m))`` memory, and time
            ``O(T |B| n (n + m))`` plus ``O(T |B| n P)`` for Adam/AdamW or the functional
            path. "auto" tracks them for regressors with at most ``max_smoother_train``
            training examples trained by SGD/momentum on the structured path (where the
            kernels are cheap); True tracks them for any regressor within the cap and
            raises ValueError where they cannot be tracked.
        max_smoother_train : int, default=2000
            Cap on the number of training examples for the smoother.
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
        order = self._check_order(order)
        _check_choice("norm", norm, ("l1", "l2"))
        _check_int("max_smoother_train", max_smoother_train, 1)
        n_checkpoints = self._n_checkpoints()
        config = self.training_config_
        n_train = len(self.X_train_)
        regression = config.task == "regression"

        cheap_kernel = config.kernel_method == "structured" and not config.optimizer.diagonal
        if smoother == "auto":
            track_smoother = regression and cheap_kernel and n_train <= max_smoother_train
        elif isinstance(smoother, (bool, np.bool_)):
            track_smoother = bool(smoother)
            if track_smoother and not regression:
                raise ValueError(
                    "smoother=True needs squared loss (a regressor); the linear smoother "
                    "is not defined for log loss"
                )
            if track_smoother and n_train > max_smoother_train:
                raise ValueError(
                    f"smoother=True needs n_train <= max_smoother_train, got n_train="
                    f"{n_train} > {max_smoother_train}; the smoother costs O(n^2) memory"
                )
        else:
            raise ValueError(f"smoother must be True, False or 'auto', got {smoother!r}")

        if norm_sample_size == "auto":
            size = AUTO_NORM_SAMPLE_SCALAR if cheap_kernel else AUTO_NORM_SAMPLE_ROWS
        elif norm_sample_size is None:
            size = n_train
        elif _is_int(norm_sample_size) and norm_sample_size >= 1:
            size = int(norm_sample_size)
        else:
            raise ValueError(
                "norm_sample_size must be a positive integer, 'auto' or None, got "
                f"{norm_sample_size!r}"
            )
        device = self._device()
        sample = None
        if size < n_train:
            rng = check_random_state(random_state)
            sample = np.sort(rng.choice(n_train, size=size, replace=False))
        checkpoints = checkpoint_steps(config.n_steps, n_checkpoints)
        # Views over [X_train; X_test] (one replay for train and test rows) are common:
        # the training rows' kernels are then those of the first evaluation rows.
        X_cast = np.asarray(X, dtype=self.X_train_.dtype)
        train_in_eval = len(X_cast) >= n_train and np.array_equal(
            X_cast[:n_train], self.X_train_
        )
        settings = KernelSettings(
            order=order,
            X_train=torch.tensor(self.X_train_, device=device),
            checkpoints=[int(t) for t in checkpoints],
            norm=norm,
            norm_sample=None if sample is None else torch.as_tensor(sample, device=device),
            smoother=track_smoother,
            train_in_eval=bool(train_in_eval),
        )
        result, difference = self._replay(X, (order,), settings)

        squeeze = self.n_outputs_ == 1
        contributions = result.contributions[:, :, 0] if squeeze else result.contributions
        metadata = {
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
        smoother_values = None
        if track_smoother:
            smoother_values = result.smoother
            metadata["smoother"] = "computed"
            metadata["effective_parameters"] = float(
                n_train / len(X) * np.sum(smoother_values**2)
            )
            metadata["effective_parameters_train"] = float(np.sum(result.train_smoother**2))
        else:
            if not regression:
                reason = "not defined for log loss"
            elif smoother is False:
                reason = "not requested"
            elif n_train > max_smoother_train:
                reason = f"skipped: n_train={n_train} > max_smoother_train={max_smoother_train}"
            else:
                reason = "skipped by 'auto': costly kernels (pass smoother=True to force)"
            metadata["smoother"] = reason
        return KernelView(
            offset=self._as_units(result.offset),
            contributions=contributions,
            unattributed=self._as_units(result.unattributed),
            prediction=self._as_units(result.predictions[order]),
            checkpoints=checkpoints,
            kernel_norms=result.kernel_norms,
            train_kernel_norms=result.train_kernel_norms,
            smoother=smoother_values,
            loss="squared_error" if regression else "log_loss",
            norm=norm,
            metadata=metadata,
        )


# ---------------------------------------------------------------------------------------
# Regression and classification front ends
# ---------------------------------------------------------------------------------------


class _TelescopingRegressor(RegressorMixin, _TelescopingEstimator):
    def fit(self, X, y):
        """Train the network on ``(X, y)`` with squared loss ``1/2 (f - y)^2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            One target; standardise it beforehand for the usual learning rates.

        Returns
        -------
        self
        """
        optimizer = self._check_parameters()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=[np.float64, np.float32])
        targets = np.asarray(y, dtype=np.dtype(self.dtype)).reshape(-1, 1)
        return self._fit_targets(X, targets, "regression", 1, optimizer)

    def predict(self, X) -> np.ndarray:
        """Network output, shape (n_samples,)."""
        return self._decision(self._validate_eval(X))[:, 0]


class _TelescopingClassifier(ClassifierMixin, _TelescopingEstimator):
    def fit(self, X, y):
        """Train the network on ``(X, y)`` with cross-entropy.

        Binary problems use one logit (binary cross-entropy with logits), multiclass
        problems one logit per class (softmax cross-entropy).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        optimizer = self._check_parameters()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 "
                f"class ({classes[0]!r})"
            )
        self.classes_ = classes
        if len(classes) == 2:
            targets = encoded.astype(np.dtype(self.dtype)).reshape(-1, 1)
            return self._fit_targets(X, targets, "binary", 1, optimizer)
        return self._fit_targets(
            X, encoded.astype(np.int64), "multiclass", len(classes), optimizer
        )

    def decision_function(self, X) -> np.ndarray:
        """Logits: shape (n_samples,) for binary problems, (n_samples, n_classes) else."""
        return self._as_units(self._decision(self._validate_eval(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes)."""
        logits = self._decision(self._validate_eval(X))
        if self.n_outputs_ == 1:
            positive = expit(logits[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(logits, axis=1)

    def predict(self, X) -> np.ndarray:
        """Most probable class, shape (n_samples,)."""
        logits = self._decision(self._validate_eval(X))
        if self.n_outputs_ == 1:
            return self.classes_[(logits[:, 0] > 0).astype(np.int64)]
        return self.classes_[np.argmax(logits, axis=1)]


# ---------------------------------------------------------------------------------------
# MLPs
# ---------------------------------------------------------------------------------------

_COMMON_PARAMETERS_DOC = """\
    optimizer : {"sgd", "momentum", "nesterov", "adam", "adamw"}, default="adamw"
        Update rule, with :mod:`torch.optim` semantics (no dampening). The part of each
        update that the current batch's gradient contributes through the optimiser's
        preconditioner is attributed to the batch's examples; the rest (momentum carried
        over, weight decay) is the kernel view's ``unattributed`` term.
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
        L2 penalty added to the gradient ("sgd", "momentum", "nesterov", "adam") or
        decoupled decay ("adamw").
    momentum : float, default=0.9
        Momentum of "momentum" and "nesterov".
    beta_1, beta_2 : float, default=0.9, 0.999
        Moment decay rates of "adam" and "adamw".
    epsilon : float, default=1e-8
        Denominator offset of "adam" and "adamw".
    batch_size : int or None, default=128
        Minibatch size; None (or a value >= n_samples) trains full batch. Batches are
        consecutive slices of a fresh seeded permutation each epoch.
    max_steps : int, default=1000
        Number of optimisation steps (not epochs).
    telescope : {"first_order", "trapezoid"}, default="trapezoid"
        Default telescoping model of the lens methods.
    n_checkpoints : int or None, default=None
        Number of steps, evenly spread, at which :meth:`kernel_view` takes kernel norms;
        at most ``max_steps``. None takes 10 (every step when ``max_steps`` is smaller).
    dtype : {"float32", "float64"}, default="float32"
        Training (and replay) precision. Predictions are evaluated in float64.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and batch order through private torch generators.
    device : str, default="cpu"
        Torch device. Bitwise reproducibility is guaranteed on CPU.
"""

_COMMON_ATTRIBUTES_DOC = """\
    module_ : torch.nn.Module
        The trained network (in eval mode).
    initial_parameters_ : list of ndarray
        Parameters at initialisation, in the order of ``module_.parameters()``.
    X_train_ : ndarray of shape (n_samples, n_features)
        Training inputs, kept for replays.
    y_train_ : ndarray
        Training targets as the loss sees them (encoded classes for classifiers).
    training_config_ : TrainingConfig
        Optimiser, batch schedule seed, number of steps, dtype and differentiation route
        (``kernel_method``: "structured" or "functional") used in fit.
    n_outputs_ : int
        Number of network outputs ``K`` (1 for regression and binary problems).
    loss_curve_ : ndarray of shape (max_steps,)
        Training loss of each step's batch.
    n_iter_ : int
        Number of optimisation steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
"""


class _MLPMixin:
    """Module construction shared by the two MLP estimators."""

    def _check_module_parameters(self) -> None:
        sizes = self.hidden_layer_sizes
        if not isinstance(sizes, (tuple, list)) or not all(
            _is_int(s) and s >= 1 for s in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive integers (empty for a "
                f"linear model), got {sizes!r}"
            )
        _check_choice("activation", self.activation, ACTIVATIONS)

    def _build_module(self, n_features, n_outputs, seed, dtype):
        return build_mlp(
            n_features, tuple(self.hidden_layer_sizes), n_outputs, self.activation, seed, dtype
        )

    def _kernel_method(self) -> str:
        return "structured"


class TelescopingMLPRegressor(_MLPMixin, _TelescopingRegressor):
    __doc__ = f"""Multilayer perceptron regressor with a telescoping lens.

    A network trained on squared loss ``1/2 (f - y)^2`` whose predictions can be written
    as a kernel-weighted sum over the training examples (:meth:`kernel_view`), replayed
    from the stored initial state (DESIGN.md 1.1-1.3). Kernels use the structured
    per-layer factorisation. ``y`` must be one-dimensional.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : {{"relu", "tanh", "logistic", "identity", "gelu", "silu", "elu", \
"leaky_relu", "softplus"}}, default="relu"
{_COMMON_PARAMETERS_DOC}
    Attributes
    ----------
{_COMMON_ATTRIBUTES_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import scale
    >>> from tabscope.models import TelescopingMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = TelescopingMLPRegressor((64, 64), max_steps=50, random_state=0)
    >>> model = model.fit(scale(X), scale(y))
    >>> view = model.kernel_view(scale(X)[:5])
    >>> view.check_identity()
    """

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        *,
        optimizer="adamw",
        learning_rate=1e-3,
        weight_decay=0.0,
        momentum=0.9,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        batch_size=128,
        max_steps=1000,
        telescope="trapezoid",
        n_checkpoints=None,
        dtype="float32",
        random_state=None,
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.telescope = telescope
        self.n_checkpoints = n_checkpoints
        self.dtype = dtype
        self.random_state = random_state
        self.device = device


class TelescopingMLPClassifier(_MLPMixin, _TelescopingClassifier):
    __doc__ = f"""Multilayer perceptron classifier with a telescoping lens.

    Binary problems use one logit and binary cross-entropy; multiclass problems one logit
    per class and softmax cross-entropy, so kernel blocks are ``K x K``. The lens works in
    logit units (those of :meth:`decision_function`).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256)
    activation : {{"relu", "tanh", "logistic", "identity", "gelu", "silu", "elu", \
"leaky_relu", "softplus"}}, default="relu"
{_COMMON_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{_COMMON_ATTRIBUTES_DOC}
    """

    __init__ = TelescopingMLPRegressor.__init__


# ---------------------------------------------------------------------------------------
# Any torch module
# ---------------------------------------------------------------------------------------


class _NetMixin:
    """Module construction shared by the two estimators that take a user's module."""

    def _check_module_parameters(self) -> None:
        if not isinstance(self.module, nn.Module) and not callable(self.module):
            raise TypeError(
                "module must be a torch.nn.Module or a callable factory(n_features, "
                f"n_outputs) returning one, got {type(self.module).__name__}"
            )
        _check_choice("kernel", self.kernel, KERNEL_METHODS)

    def _build_module(self, n_features, n_outputs, seed, dtype):
        if isinstance(self.module, nn.Module):
            return copy.deepcopy(self.module)
        # The factory draws its initialisation from torch's global generator: seed it
        # from random_state inside a fork so the caller's random state is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self.module(n_features, n_outputs)
        if not isinstance(module, nn.Module):
            raise TypeError(
                "module factory must return a torch.nn.Module, got "
                f"{type(module).__name__}"
            )
        return module

    def _kernel_method(self) -> str:
        return self.kernel


_NET_PARAMETERS_DOC = """\
    module : torch.nn.Module or callable
        The network, mapping ``(n, n_features)`` to ``(n, K)`` (or ``(n,)`` when
        ``K == 1``); all of its parameters are trained. A module is deep-copied and
        trained from its current parameters (``random_state`` then only seeds the batch
        order; lazy layers are materialised from it); a callable is called as
        ``module(n_features, n_outputs)`` with torch's global generator seeded from
        ``random_state`` (inside a fork, so the caller's state is unchanged). The module
        is used in eval mode (dropout off, batch norm on its running statistics, which
        are never updated): the lens needs the network to be a fixed function of its
        parameters.
    kernel : {"auto", "structured", "functional"}, default="auto"
        Differentiation route for training and for the lens: "structured" for a
        ``torch.nn.Sequential`` of Linear layers and elementwise activations
        (ValueError for anything else), "functional" (torch.func) for any module,
        "auto" the first that applies.
"""


class TelescopingNetRegressor(_NetMixin, _TelescopingRegressor):
    __doc__ = f"""Regressor from any torch module, with a telescoping lens.

    Like :class:`TelescopingMLPRegressor` but for a user-supplied network; JVPs, gradients
    and tangent kernels go through :mod:`torch.func` unless the module qualifies for the
    structured path.

    Parameters
    ----------
{_NET_PARAMETERS_DOC}{_COMMON_PARAMETERS_DOC}
    Attributes
    ----------
{_COMMON_ATTRIBUTES_DOC}
    """

    def __init__(
        self,
        module,
        *,
        kernel="auto",
        optimizer="adamw",
        learning_rate=1e-3,
        weight_decay=0.0,
        momentum=0.9,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        batch_size=128,
        max_steps=1000,
        telescope="trapezoid",
        n_checkpoints=None,
        dtype="float32",
        random_state=None,
        device="cpu",
    ):
        self.module = module
        self.kernel = kernel
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.telescope = telescope
        self.n_checkpoints = n_checkpoints
        self.dtype = dtype
        self.random_state = random_state
        self.device = device


class TelescopingNetClassifier(_NetMixin, _TelescopingClassifier):
    __doc__ = f"""Classifier from any torch module, with a telescoping lens.

    Binary problems need one output (a logit), multiclass problems one per class.

    Parameters
    ----------
{_NET_PARAMETERS_DOC}{_COMMON_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{_COMMON_ATTRIBUTES_DOC}
    """

    __init__ = TelescopingNetRegressor.__init__
