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

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import nn

from tabscope.validation import InvalidParameterError, StrOptions, one_of
from tabscope.vocabulary import KernelMethod, Objective

from ._mlp import ACTIVATIONS, build_mlp
from ._network_base import (
    COMMON_CONSTRAINTS,
    ReplayDivergenceError,
    TrainingConfig,
    _TelescopingEstimator,
)
from ._network_lens import TelescopingLensMixin

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
# Regression and classification front ends
# ---------------------------------------------------------------------------------------


class _TelescopingRegressor(RegressorMixin, TelescopingLensMixin, _TelescopingEstimator):
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
        return self._fit_targets(X, targets, Objective.REGRESSION, 1, optimizer)

    def predict(self, X) -> np.ndarray:
        """Network output, shape (n_samples,)."""
        return self._decision(self._validate_eval(X))[:, 0]


class _TelescopingClassifier(ClassifierMixin, TelescopingLensMixin, _TelescopingEstimator):
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
            return self._fit_targets(X, targets, Objective.BINARY, 1, optimizer)
        return self._fit_targets(
            X, encoded.astype(np.int64), Objective.MULTICLASS, len(classes), optimizer
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
    kernel_method : {"auto", "structured", "functional"}, default="auto"
        Differentiation route (a :class:`~tabscope.vocabulary.KernelMethod`) for
        training and for the lens: "structured" for a ``torch.nn.Sequential`` of Linear
        layers and elementwise activations (ValueError for anything else), "functional"
        (torch.func) for any module, "auto" the first that applies.
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
