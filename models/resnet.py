"""Telescoping tabular ResNet estimators (docs/design.md §1.1-1.3, §1.7).

:class:`TelescopingResNetRegressor` and :class:`TelescopingResNetClassifier` train the ResNet
of Gorishniy et al. (2021, "Revisiting Deep Learning Models for Tabular Data") with
LayerNorm instead of BatchNorm and without dropout (``_resnet``), so that examples stay
independent and replays are deterministic, and carry the same telescoping lens as the MLPs.
Kernels take the ResNet's structured route (``_structured_resnet``) by default, or the
functional route (torch.func) with ``kernel_method="functional"``; both give the same
kernels. Architecture defaults follow rtdl's ResNet as pytabkit's ``Resnet_RTDL_D``
(TabZilla) configures it: two blocks, width 128, hidden width 256, ReLU.
"""

from __future__ import annotations

from numbers import Integral

import torch

from tabscope.validation import Interval, one_of
from tabscope.vocabulary import KernelMethod

from ._functional import FunctionalNetwork
from ._network_base import COMMON_CONSTRAINTS
from ._network_docs import (
    COMMON_ATTRIBUTES_DOC,
    COMMON_PARAMETERS_DOC,
    REGRESSOR_ATTRIBUTES_DOC,
    REGRESSOR_PARAMETERS_DOC,
)
from ._network_frontends import REGRESSOR_CONSTRAINTS, _TelescopingClassifier, _TelescopingRegressor
from ._resnet import build_resnet
from ._structured_resnet import StructuredResNet

__all__ = ["TelescopingResNetClassifier", "TelescopingResNetRegressor"]

_RESNET_PARAMETERS_DOC = """\
    n_blocks : int, default=2
        Number of residual blocks ``h + Linear(ReLU(Linear(LayerNorm(h))))``.
    d_main : int, default=128
        Width of the residual stream.
    d_hidden : int, default=256
        Width inside each block.
    kernel_method : {"auto", "structured", "functional"}, default="auto"
        Differentiation route for training and the lens
        (:class:`~tabscope.vocabulary.KernelMethod`): "structured" (and "auto") uses the
        ResNet's hand-written passes and per-layer kernel factors, "functional" torch.func;
        they give the same kernels, the structured route faster.
"""


class _ResNetMixin:
    """Module construction and route shared by the two ResNet estimators."""

    _parameter_constraints: dict = {
        **COMMON_CONSTRAINTS,
        "n_blocks": [Interval(Integral, 0, None, closed="left")],
        "d_main": [Interval(Integral, 1, None, closed="left")],
        "d_hidden": [Interval(Integral, 1, None, closed="left")],
        "kernel_method": [one_of(KernelMethod)],
    }

    def _build_module(self, n_features, n_outputs, seed, dtype):
        return build_resnet(
            n_features, n_outputs, n_blocks=int(self.n_blocks), d_main=int(self.d_main),
            d_hidden=int(self.d_hidden), seed=seed, dtype=dtype,
        )

    def _kernel_method(self) -> str:
        return self.kernel_method

    def _network(self, dtype: torch.dtype | None = None):
        """The route fit used: the structured ResNet, or torch.func (docs/design.md §1.7)."""
        if self.training_config_.kernel_method == KernelMethod.STRUCTURED:
            return StructuredResNet.from_module(self.module_)
        return FunctionalNetwork(self.module_, self.n_outputs_, buffer_dtype=dtype)


class TelescopingResNetRegressor(_ResNetMixin, _TelescopingRegressor):
    _parameter_constraints: dict = {**_ResNetMixin._parameter_constraints, **REGRESSOR_CONSTRAINTS}

    __doc__ = f"""Tabular ResNet regressor with a telescoping lens.

    The ResNet of Gorishniy et al. (2021) with LayerNorm and no dropout, trained on squared
    loss; :meth:`kernel_view` writes its predictions as a kernel-weighted sum over the
    training examples (docs/design.md §1.1-1.3).

    Parameters
    ----------
{_RESNET_PARAMETERS_DOC}{COMMON_PARAMETERS_DOC}{REGRESSOR_PARAMETERS_DOC}
    Attributes
    ----------
{COMMON_ATTRIBUTES_DOC}{REGRESSOR_ATTRIBUTES_DOC}
    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import scale
    >>> from tabscope.models.resnet import TelescopingResNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = TelescopingResNetRegressor(n_blocks=1, d_main=32, d_hidden=64,
    ...                                    max_steps=50, random_state=0)
    >>> model = model.fit(scale(X), y)
    >>> model.kernel_view(scale(X)[:5]).check_identity()
    """

    def __init__(
        self,
        n_blocks=2,
        d_main=128,
        d_hidden=256,
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
        self.n_blocks = n_blocks
        self.d_main = d_main
        self.d_hidden = d_hidden
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


class TelescopingResNetClassifier(_ResNetMixin, _TelescopingClassifier):
    __doc__ = f"""Tabular ResNet classifier with a telescoping lens.

    Binary problems use one logit, multiclass problems one per class (softmax
    cross-entropy); the lens works in logit units.

    Parameters
    ----------
{_RESNET_PARAMETERS_DOC}{COMMON_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
{COMMON_ATTRIBUTES_DOC}
    """

    def __init__(
        self,
        n_blocks=2,
        d_main=128,
        d_hidden=256,
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
        self.n_blocks = n_blocks
        self.d_main = d_main
        self.d_hidden = d_hidden
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
