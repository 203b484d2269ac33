"""Telescoping neural-network estimators (docs/design.md §1.1-1.3, §1.5-1.7).

Four scikit-learn estimators train a torch network with a closed-form optimiser on a
seeded batch schedule:

* :class:`TelescopingMLPRegressor`, :class:`TelescopingMLPClassifier`: multilayer
  perceptrons built from ``hidden_layer_sizes`` and ``activation``;
* :class:`TelescopingNetRegressor`, :class:`TelescopingNetClassifier`: any torch module the
  user passes (a module, or a factory ``module(n_features, n_outputs)``).

``fit`` only trains: it stores the initial parameters, the seeds of the batch order, the
training data and the trained module, and does no kernel work. The lens methods
(:meth:`~TelescopingLensMixin.predict_telescoping`,
:meth:`~TelescopingLensMixin.telescoping_fidelity`,
:meth:`~TelescopingLensMixin.kernel_view`) replay the training run deterministically from
that state, track what they need on the evaluation points they are given (any points, not
only those seen in fit), and check that the replay ends exactly where fit did, so nothing
of the parameter trajectory is kept in memory and everything still works after pickling.

This module holds the four public estimators; training and replay live in
``_network_base``, the lens methods in ``_network_lens``, MLP construction in ``_mlp``.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from tabscope.validation import InvalidParameterError, StrOptions, one_of
from tabscope.vocabulary import KernelMethod

from ._mlp import ACTIVATIONS, build_mlp
from ._network_base import (
    COMMON_CONSTRAINTS,
    ReplayDivergenceError,
    TrainingConfig,
    _TelescopingEstimator,
)
from ._network_docs import (
    COMMON_ATTRIBUTES_DOC,
    COMMON_PARAMETERS_DOC,
    NET_PARAMETERS_DOC,
    REGRESSOR_ATTRIBUTES_DOC,
    REGRESSOR_PARAMETERS_DOC,
)
from ._network_frontends import (
    REGRESSOR_CONSTRAINTS,
    _TelescopingClassifier,
    _TelescopingRegressor,
)

__all__ = [
    "ReplayDivergenceError",
    "TelescopingMLPClassifier",
    "TelescopingMLPRegressor",
    "TelescopingNetClassifier",
    "TelescopingNetRegressor",
    "TrainingConfig",
    "build_mlp",
    "is_telescoping_network",
]


def is_telescoping_network(estimator) -> bool:
    """Whether ``estimator`` is a telescoping network, and so is its own kernel lens."""
    return isinstance(estimator, _TelescopingEstimator)


# ---------------------------------------------------------------------------------------
# MLPs
# ---------------------------------------------------------------------------------------

class _MLPMixin:
    """Module construction shared by the two MLP estimators."""

    _parameter_constraints: dict = {
        **COMMON_CONSTRAINTS,
        "hidden_layer_sizes": [tuple, list],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def _check_module_parameters(self) -> None:
        sizes = self.hidden_layer_sizes
        if not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
            for s in sizes
        ):
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a "
                f"tuple of positive integers (empty for a linear model). Got {sizes!r} "
                "instead."
            )

    def _build_module(self, n_features, n_outputs, seed, dtype):
        return build_mlp(
            n_features, tuple(self.hidden_layer_sizes), n_outputs, self.activation, seed, dtype
        )

    def _kernel_method(self) -> str:
        return KernelMethod.STRUCTURED


class TelescopingMLPRegressor(_MLPMixin, _TelescopingRegressor):
    _parameter_constraints: dict = {**_MLPMixin._parameter_constraints, **REGRESSOR_CONSTRAINTS}

    __doc__ = f"""Multilayer perceptron regressor with a telescoping lens.

    A network trained on squared loss ``1/2 (f - y)^2`` whose predictions can be written
    as a kernel-weighted sum over the training examples (:meth:`kernel_view`), replayed
    from the stored initial state (docs/design.md §1.1-1.3). Kernels use the structured
    per-layer factorisation. ``y`` must be one-dimensional.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : {{"relu", "tanh", "logistic", "identity", "gelu", "silu", "elu", \
"leaky_relu", "softplus"}}, default="relu"
{COMMON_PARAMETERS_DOC}{REGRESSOR_PARAMETERS_DOC}
    Attributes
    ----------
{COMMON_ATTRIBUTES_DOC}{REGRESSOR_ATTRIBUTES_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import scale
    >>> from tabscope.models import TelescopingMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = TelescopingMLPRegressor((64, 64), max_steps=50, random_state=0)
    >>> model = model.fit(scale(X), y)  # the target is standardised inside
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
        lr_schedule="constant",
        warmup_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        validation_interval=20,
        n_iter_no_change=10,
        standardize_target=True,
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
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_iter_no_change = n_iter_no_change
        self.standardize_target = standardize_target


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
{COMMON_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{COMMON_ATTRIBUTES_DOC}
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
        lr_schedule="constant",
        warmup_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        validation_interval=20,
        n_iter_no_change=10,
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
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_iter_no_change = n_iter_no_change


# ---------------------------------------------------------------------------------------
# Any torch module
# ---------------------------------------------------------------------------------------


class _NetMixin:
    """Module construction shared by the two estimators that take a user's module."""

    _parameter_constraints: dict = {
        **COMMON_CONSTRAINTS,
        "module": [nn.Module, callable],
        "kernel_method": [one_of(KernelMethod)],
    }

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
        return self.kernel_method


class TelescopingNetRegressor(_NetMixin, _TelescopingRegressor):
    _parameter_constraints: dict = {**_NetMixin._parameter_constraints, **REGRESSOR_CONSTRAINTS}

    __doc__ = f"""Regressor from any torch module, with a telescoping lens.

    Like :class:`TelescopingMLPRegressor` but for a user-supplied network; JVPs, gradients
    and tangent kernels go through :mod:`torch.func` unless the module qualifies for the
    structured path.

    Parameters
    ----------
{NET_PARAMETERS_DOC}{COMMON_PARAMETERS_DOC}{REGRESSOR_PARAMETERS_DOC}
    Attributes
    ----------
{COMMON_ATTRIBUTES_DOC}{REGRESSOR_ATTRIBUTES_DOC}
    """

    def __init__(
        self,
        module,
        *,
        kernel_method="auto",
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
        lr_schedule="constant",
        warmup_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        validation_interval=20,
        n_iter_no_change=10,
        standardize_target=True,
    ):
        self.module = module
        self.kernel_method = kernel_method
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
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_iter_no_change = n_iter_no_change
        self.standardize_target = standardize_target


class TelescopingNetClassifier(_NetMixin, _TelescopingClassifier):
    __doc__ = f"""Classifier from any torch module, with a telescoping lens.

    Binary problems need one output (a logit), multiclass problems one per class.

    Parameters
    ----------
{NET_PARAMETERS_DOC}{COMMON_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{COMMON_ATTRIBUTES_DOC}
    """

    def __init__(
        self,
        module,
        *,
        kernel_method="auto",
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
        lr_schedule="constant",
        warmup_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        validation_interval=20,
        n_iter_no_change=10,
    ):
        self.module = module
        self.kernel_method = kernel_method
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
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_iter_no_change = n_iter_no_change
