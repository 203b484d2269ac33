"""The common form of every lens model: an additive, kernel-weighted sum over training data.

A :class:`KernelView` is what a network or a boosted ensemble looks like through the
telescoping lens (docs/design.md §1.3): for each evaluation point ``x`` its prediction is

    prediction(x) = offset(x) + sum_i contributions(x, i) + unattributed(x)

where ``contributions(x, i)`` is training example ``i``'s accumulated, kernel-weighted
share of the updates. ``prediction`` is computed independently of the other terms (the
telescoping model's own output, or the library's leaf-value sum for trees), so the
identity above is a check, not a definition: :meth:`KernelView.check_identity` asserts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tabscope.validation import one_of, validate_parameters
from tabscope.vocabulary import KernelNorm, Loss

__all__ = ["KernelView", "prediction_path_steps"]

_NORM = {"norm": [one_of(KernelNorm)]}


def prediction_path_steps(n_steps: int, n_parts: int = 10) -> np.ndarray:
    """The steps (or boosting rounds) that end each of ``n_parts`` equal parts of training:
    where a view's prediction path is taken (fewer when there are fewer steps)."""
    steps = np.round(np.arange(1, n_parts + 1) * (int(n_steps) / n_parts)).astype(np.int64)
    return np.unique(np.clip(steps, 1, max(int(n_steps), 1)))


@dataclass(frozen=True, eq=False)
class KernelView:
    """Kernel decomposition of a fitted lens model on an evaluation set.

    Shapes use ``m`` evaluation points, ``n`` training examples, ``K`` outputs (absent
    when ``K == 1``) and ``c`` checkpoints.

    Attributes
    ----------
    offset : ndarray of shape (m,) or (m, K)
        Initial prediction ``f_0(x)`` (network at initialisation, booster's base score).
    contributions : ndarray of shape (m, n) or (m, n, K)
        ``C(x, i)``: training example ``i``'s summed contribution to the prediction at ``x``.
    unattributed : ndarray of shape (m,) or (m, K)
        Summed part of the updates credited to no training example: weight decay and
        the optimiser's memory older than the attribution window (docs/design.md §1.8);
        zero for plain SGD and for trees. :attr:`coverage` says how much it leaves out.
    prediction : ndarray of shape (m,) or (m, K)
        The telescoping model's prediction, computed on its own.
    checkpoints : ndarray of shape (c,)
        Optimisation steps (networks) or boosting rounds (trees), 1-based, at which the
        kernel norms were taken.
    kernel_norms : ndarray of shape (m, c)
        ``kappa_t(x)``: norm over all training examples of the step's kernel weights.
    train_kernel_norms : ndarray of shape (n, c)
        The same for the training examples themselves.
    smoother : ndarray of shape (m, n) or None
        Linear-smoother weights ``s_T(x)`` (squared loss only, docs/design.md §1.6).
    loss : {"squared_error", "log_loss"}
        The training loss whose gradients the contributions carry.
    norm : {"l1", "l2"}
        The norm used for ``kernel_norms``.
    metadata : dict
        Free-form description (model kind, library, subsampling used for norms, ...).
    path_steps : ndarray of shape (p,) or None
        Steps (boosting rounds for trees) after which :attr:`prediction_path` was taken.
    prediction_path : ndarray of shape (m, p) or (m, p, K), or None
        The prediction (in the units of ``prediction``) after each of ``path_steps``: how
        the prediction was assembled over training (docs/design.md §1.10). Its last
        column equals ``prediction`` when the last path step is the last step.
    """

    offset: np.ndarray
    contributions: np.ndarray
    unattributed: np.ndarray
    prediction: np.ndarray
    checkpoints: np.ndarray
    kernel_norms: np.ndarray
    train_kernel_norms: np.ndarray
    smoother: np.ndarray | None = None
    loss: str = Loss.SQUARED_ERROR.value
    norm: str = KernelNorm.L1.value
    metadata: dict = field(default_factory=dict)
    path_steps: np.ndarray | None = None
    prediction_path: np.ndarray | None = None

    def __post_init__(self):
        offset = np.asarray(self.offset)
        contributions = np.asarray(self.contributions)
        m = offset.shape[0]
        if contributions.shape[0] != m:
            raise ValueError(
                f"contributions has {contributions.shape[0]} rows but offset has {m}"
            )
        if contributions.ndim != offset.ndim + 1:
            raise ValueError(
                "contributions must have one more axis (the training examples) than "
                f"offset; got shapes {contributions.shape} and {offset.shape}"
            )
        for name in ("unattributed", "prediction"):
            value = np.asarray(getattr(self, name))
            if value.shape != offset.shape:
                raise ValueError(
                    f"{name} must have the shape of offset {offset.shape}, got {value.shape}"
                )
        n_checkpoints = np.asarray(self.checkpoints).shape[0]
        for name, rows in (("kernel_norms", m), ("train_kernel_norms", self.n_train)):
            value = np.asarray(getattr(self, name))
            if value.shape != (rows, n_checkpoints):
                raise ValueError(
                    f"{name} must have shape {(rows, n_checkpoints)}, got {value.shape}"
                )
        if self.smoother is not None and np.asarray(self.smoother).shape != (m, self.n_train):
            raise ValueError(
                f"smoother must have shape {(m, self.n_train)}, "
                f"got {np.asarray(self.smoother).shape}"
            )
        if (self.prediction_path is None) != (self.path_steps is None):
            raise ValueError("path_steps and prediction_path are given together or not at all")
        if self.prediction_path is not None:
            expected = (m, np.asarray(self.path_steps).shape[0], *offset.shape[1:])
            if np.asarray(self.prediction_path).shape != expected:
                raise ValueError(f"prediction_path must have shape {expected}, "
                                 f"got {np.asarray(self.prediction_path).shape}")
        validate_parameters(_NORM, {"norm": self.norm}, caller="KernelView")

    @property
    def n_eval(self) -> int:
        """Number of evaluation points ``m``."""
        return int(np.asarray(self.offset).shape[0])

    @property
    def n_train(self) -> int:
        """Number of training examples ``n``."""
        return int(np.asarray(self.contributions).shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of model outputs ``K``."""
        offset = np.asarray(self.offset)
        return 1 if offset.ndim == 1 else int(offset.shape[1])

    @property
    def max_kernel_norms(self) -> np.ndarray:
        """``kappa(x) = max_t kappa_t(x)`` for each evaluation point, shape (m,)."""
        return np.asarray(self.kernel_norms).max(axis=1)

    @property
    def max_train_kernel_norms(self) -> np.ndarray:
        """``kappa(x_i) = max_t kappa_t(x_i)`` for each training example, shape (n,)."""
        return np.asarray(self.train_kernel_norms).max(axis=1)

    @property
    def coverage(self) -> float:
        """Share of the prediction's change that the contributions explain (§1.8).

        ``1 - mean |unattributed| / mean |prediction - offset|`` over the evaluation
        points (and outputs): 1 when every update is credited to training examples (SGD,
        trees), lower when weight decay or momentum older than the attribution window
        is left unattributed. NaN when the prediction did not change at all.
        """
        change = np.abs(np.asarray(self.prediction, np.float64)
                        - np.asarray(self.offset, np.float64)).mean()
        if not change > 0:
            return float("nan")
        return float(1.0 - np.abs(np.asarray(self.unattributed, np.float64)).mean() / change)

    def reconstruction(self) -> np.ndarray:
        """``offset + sum_i contributions + unattributed``: the right-hand side of 1.3."""
        return (
            np.asarray(self.offset, dtype=np.float64)
            + np.asarray(self.contributions, dtype=np.float64).sum(axis=1)
            + np.asarray(self.unattributed, dtype=np.float64)
        )

    def identity_error(self) -> float:
        """Largest relative violation of the identity, scaled by the prediction's size."""
        prediction = np.asarray(self.prediction, dtype=np.float64)
        scale = max(float(np.max(np.abs(prediction), initial=0.0)), 1e-12)
        return float(np.max(np.abs(self.reconstruction() - prediction), initial=0.0) / scale)

    def check_identity(self, rtol: float = 1e-5) -> None:
        """Raise AssertionError unless the identity of docs/design.md §1.3 holds to ``rtol``."""
        error = self.identity_error()
        if not error <= rtol:
            raise AssertionError(
                f"KernelView identity violated: relative error {error:.3g} > {rtol:g}"
            )
