"""Training a telescoping network and replaying its run: the shared estimator base.

``fit`` only trains: it stores the initial parameters, the seeds of the batch order, the
training data and the trained module, and does no kernel work. :meth:`_replay` replays the
training run deterministically from that state while a
:class:`~tabscope.models._replay.TelescopeRecorder` tracks what the lens methods
(:mod:`tabscope.models._network_lens`) need, and checks that the replay ends exactly where
fit did, so nothing of the parameter trajectory is kept in memory and everything still works
after pickling (docs/design.md §1.1-1.3).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from tabscope.validation import Interval, StrOptions, one_of, validate_parameters
from tabscope.vocabulary import (
    KernelMethod,
    LearningRateSchedule,
    Objective,
    OptimizerName,
    TelescopeOrder,
)

from ._early_stopping import ValidationMonitor
from ._functional import FunctionalNetwork
from ._losses import make_loss
from ._optimizers import OptimizerConfig
from ._replay import KernelSettings, ReplayResult, TelescopeRecorder
from ._structured import StructuredMLP
from ._training import BatchSchedule, train
from .tangent_kernels import make_network

__all__ = ["ReplayDivergenceError", "TrainingConfig"]

logger = logging.getLogger("tabscope.models.networks")

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Kernel-norm checkpoints when ``n_checkpoints`` is None.
DEFAULT_CHECKPOINTS = 10

# Relative size (in units of the largest parameter change over training) beyond which a
# replayed run is considered not to have reproduced the fitted one.
REPLAY_RTOL = 1e-3

_UNIT_INTERVAL = [Interval(Real, 0, 1, closed="left")]

#: Constraints of the parameters every telescoping estimator shares; each estimator adds
#: those describing its module.
COMMON_CONSTRAINTS: dict[str, list] = {
    "optimizer": [one_of(OptimizerName)],
    "learning_rate": [Interval(Real, 0, math.inf, closed="neither")],
    "weight_decay": [Interval(Real, 0, math.inf, closed="left")],
    "momentum": _UNIT_INTERVAL,
    "beta_1": _UNIT_INTERVAL,
    "beta_2": _UNIT_INTERVAL,
    "epsilon": [Interval(Real, 0, math.inf, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "max_steps": [Interval(Integral, 1, None, closed="left")],
    "telescope": [one_of(TelescopeOrder)],
    "n_checkpoints": [Interval(Integral, 1, None, closed="left"), None],
    "dtype": [StrOptions(set(DTYPES))],
    "random_state": ["random_state"],
    "device": [str, torch.device],
    "lr_schedule": [one_of(LearningRateSchedule)],
    "warmup_fraction": _UNIT_INTERVAL,
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "validation_interval": [Interval(Integral, 1, None, closed="left")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
}


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
    objective: str
    kernel_method: str



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



class _TelescopingEstimator(BaseEstimator):
    """Training, prediction and replay; subclasses define the module (and the lens)."""

    _parameter_constraints: dict = COMMON_CONSTRAINTS

    # -- to be provided by subclasses --------------------------------------------------

    def _build_module(self, n_features: int, n_outputs: int, seed: int, dtype: torch.dtype):
        raise NotImplementedError

    def _kernel_method(self) -> str:
        return KernelMethod.AUTO

    def _check_module_parameters(self) -> None:
        """Validate what the constraint table cannot say about the module."""

    # -- fitting -----------------------------------------------------------------------

    def _check_parameters(self) -> OptimizerConfig:
        """Validate every parameter against ``_parameter_constraints``, once, at fit."""
        validate_parameters(
            self._parameter_constraints, self.get_params(deep=False), caller=type(self).__name__
        )
        _check_device(self.device)
        self._check_module_parameters()
        if self.n_checkpoints is not None and self.n_checkpoints > self.max_steps:
            raise ValueError(
                f"n_checkpoints={self.n_checkpoints} exceeds max_steps={self.max_steps}: "
                "kernel norms are taken at distinct optimisation steps"
            )
        return OptimizerConfig(
            name=self.optimizer,
            learning_rate=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
            momentum=float(self.momentum),
            beta_1=float(self.beta_1),
            beta_2=float(self.beta_2),
            epsilon=float(self.epsilon),
            schedule=LearningRateSchedule(self.lr_schedule).value,
            warmup_steps=int(round(float(self.warmup_fraction) * self.max_steps)),
            n_steps=int(self.max_steps),
        )

    def _early_stopping_on(self, validation) -> bool:
        """``"auto"``: early stopping exactly when fit was given a validation set."""
        if self.early_stopping == "auto":
            return validation is not None
        return bool(self.early_stopping)

    def _split_validation(self, X, targets, validation, objective: str, seed: int):
        """The training rows and the validation set early stopping scores.

        A validation set passed to fit is used as it is; otherwise ``validation_fraction``
        of the training rows are held out (stratified for classifiers), drawn from the
        estimator's random state, and the network, and so its lens, never sees them.
        """
        if validation is not None:
            return X, targets, validation
        stratify = None
        if objective != Objective.REGRESSION:
            stratify = targets.reshape(len(targets), -1)[:, 0]
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, targets, test_size=self.validation_fraction, random_state=seed,
            stratify=stratify,
        )
        return X_fit, y_fit, (X_val, y_val)

    def _validation_inputs(self, X_val, y_val):
        """Validate ``X_val`` (against the fitted features) and pair it with ``y_val``."""
        if (X_val is None) != (y_val is None):
            raise ValueError(
                "X_val and y_val must be passed together; got "
                f"X_val={'None' if X_val is None else 'an array'} and "
                f"y_val={'None' if y_val is None else 'an array'}"
            )
        if X_val is None:
            return None
        X_val = validate_data(self, X_val, reset=False, dtype=[np.float64, np.float32])
        y_val = np.asarray(y_val)
        if y_val.ndim != 1 or len(y_val) != len(X_val):
            raise ValueError(
                f"y_val must be one-dimensional with one value per row of X_val "
                f"({len(X_val)}); got shape {y_val.shape}"
            )
        return X_val, y_val

    def _n_checkpoints(self) -> int:
        """``n_checkpoints``, or by default 10 steps (every step when there are fewer)."""
        if self.n_checkpoints is None:
            return min(DEFAULT_CHECKPOINTS, self.max_steps)
        return int(self.n_checkpoints)

    def _fit_targets(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        objective: str,
        n_outputs: int,
        optimizer: OptimizerConfig,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        loss_scale: float = 1.0,
    ):
        device = _check_device(self.device)
        dtype = _torch_dtype(self.dtype)
        rng = check_random_state(self.random_state)
        init_seed, batch_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))
        early_stopping = self._early_stopping_on(validation)
        if early_stopping:
            split_seed = int(rng.randint(0, 2**31 - 1))
            X, targets, validation = self._split_validation(
                X, targets, validation, objective, split_seed
            )

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
            objective=Objective(objective).value,
            kernel_method=kernel_method,
        )
        schedule = BatchSchedule(n_samples, batch_size, batch_seed, device)
        loss = make_loss(objective)
        monitor = None
        if early_stopping:
            X_val, y_val = validation
            Y_val = torch.tensor(np.asarray(y_val), device=device)
            monitor = ValidationMonitor(
                network,
                torch.tensor(np.asarray(X_val, dtype=X_train.dtype), device=device),
                Y_val.to(dtype) if Y_val.is_floating_point() else Y_val,
                loss,
                interval=self.validation_interval,
                patience=self.n_iter_no_change,
                n_steps=config.n_steps,
                loss_scale=loss_scale,
                # Set for one fit by tabscope.models.fitting (a tuning study's pruner).
                on_score=getattr(self, "_validation_callback", None),
            )
        final, losses = train(
            network, initial, X_tensor, target_tensor, loss, optimizer, schedule,
            config.n_steps, monitor=monitor,
        )
        n_iter = len(losses)
        self.validation_scores_ = np.empty(0)
        self.validation_steps_ = np.empty(0, dtype=np.int64)
        if monitor is not None:
            # Keep the model of the best step: the lens replays exactly that many steps.
            final = monitor.best_params
            config = dataclasses.replace(config, n_steps=monitor.best_step)
            self.validation_scores_ = monitor.validation_scores
            self.validation_steps_ = monitor.validation_steps
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
        self.n_iter_ = n_iter
        self.best_step_ = config.n_steps
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
        if self.training_config_.kernel_method == KernelMethod.STRUCTURED:
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

    def _target_affine(self) -> tuple[float, float]:
        """``(mu, sigma)`` with target units ``= mu + sigma * network units``.

        Identity here; a regressor trained on a standardised target overrides it.
        """
        return 0.0, 1.0

    def _to_target_units(self, values: np.ndarray, *, shift: bool = True) -> np.ndarray:
        """Network units -> target units: ``mu + sigma f`` (``sigma f`` for increments)."""
        mean, scale = self._target_affine()
        if mean == 0.0 and scale == 1.0:
            return values
        return values * scale + (mean if shift else 0.0)

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
            make_loss(config.objective), config.optimizer, schedule, config.n_steps, recorder,
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
