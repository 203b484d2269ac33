"""What the benchmark-scale lens analyses return: kernel norms and effective parameters.

:class:`KernelNorms` is the norms-only result behind kappa_bar (docs/design.md §1.5): norms
at the checkpoints for the evaluation rows and for (a seeded subsample of) the training rows
that normalise them, with the standard error that subsample puts on the mean.
:class:`EffectiveParameters` is ``p_train`` and ``p_test`` of §1.6, dense or sketched, with
their standard errors. Both come from networks and GBDTs alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EffectiveParameters", "KernelNorms"]


@dataclass(frozen=True, eq=False)
class KernelNorms:
    """Kernel weight norms at the checkpoints, without contributions.

    Attributes
    ----------
    kernel_norms : ndarray of shape (m, c)
        ``kappa_t(x)`` of each evaluation row at each checkpoint.
    train_kernel_norms : ndarray of shape (s, c)
        The same for the training rows ``train_rows``.
    train_rows : ndarray of shape (s,) or None
        Positions of those rows in the training set; None: all ``n`` of them, in order.
    n_train : int
    checkpoints : ndarray of shape (c,)
    norm : {"l1", "l2"}
    metadata : dict
        Norm sample, model description, replay check.
    """

    kernel_norms: np.ndarray
    train_kernel_norms: np.ndarray
    train_rows: np.ndarray | None
    n_train: int
    checkpoints: np.ndarray
    norm: str
    metadata: dict = field(default_factory=dict)

    @property
    def max_kernel_norms(self) -> np.ndarray:
        """``kappa(x) = max_t kappa_t(x)`` of the evaluation rows."""
        return np.asarray(self.kernel_norms).max(axis=1)

    @property
    def max_train_kernel_norms(self) -> np.ndarray:
        """``kappa(x_i)`` of the training rows in ``train_rows``."""
        return np.asarray(self.train_kernel_norms).max(axis=1)

    @property
    def train_mean(self) -> float:
        """``mean_i kappa(x_i)``, over the training rows taken."""
        return float(self.max_train_kernel_norms.mean())

    @property
    def train_mean_standard_error(self) -> float:
        """Standard error of :attr:`train_mean` as an estimate of the mean over all ``n``.

        ``std / sqrt(s) * sqrt(1 - s / n)`` for a uniform sample of ``s`` rows drawn
        without replacement; 0 when every training row was taken.
        """
        kappa = self.max_train_kernel_norms
        s = kappa.shape[0]
        if s >= self.n_train or s < 2:
            return 0.0
        return float(kappa.std(ddof=1) / np.sqrt(s) * np.sqrt(1.0 - s / self.n_train))

    @property
    def kappa_bar(self) -> np.ndarray:
        """``kappa_bar(x) = kappa(x) / mean_i kappa(x_i)`` of the evaluation rows."""
        return self.max_kernel_norms / self.train_mean


@dataclass(frozen=True)
class EffectiveParameters:
    """``p_train`` and ``p_test`` of a squared-loss lens (docs/design.md §1.6).

    Attributes
    ----------
    p_train, p_test : float
        ``(n / |E|) sum_{x in E} ||s_T(x)||^2`` on the training rows and on the
        evaluation rows.
    p_train_se, p_test_se : float
        Their standard errors: 0 for the dense smoother, ``sqrt(k) std_j(P_j)`` for a
        sketch of ``k`` rows.
    method : {"dense", "sketch"}
    sketch_size : int or None
    n_train, n_eval : int
    attribution_window : int
        Steps over which each batch is credited (docs/design.md §1.8); 1 for trees and SGD.
    smoother : str
        What the smoother covers: "computed" (every update), or which part of the
        optimiser's memory it leaves out (a window shorter than training).
    """

    p_train: float
    p_test: float
    p_train_se: float
    p_test_se: float
    method: str
    sketch_size: int | None
    n_train: int
    n_eval: int
    attribution_window: int = 1
    smoother: str = "computed"

    def as_dict(self) -> dict:
        """Plain values for a results row."""
        return {
            "p_train": self.p_train, "p_test": self.p_test,
            "p_train_se": self.p_train_se, "p_test_se": self.p_test_se,
            "method": self.method, "sketch_size": self.sketch_size,
            "n_train": self.n_train, "n_eval": self.n_eval,
            "attribution_window": self.attribution_window, "smoother": self.smoother,
        }

    @classmethod
    def from_rows(
        cls, train_rows: np.ndarray, eval_rows: np.ndarray, n_train: int,
        sketch_size: int | None, attribution_window: int = 1, smoother: str = "computed",
    ) -> EffectiveParameters:
        """From the smoother (dense) or sketch rows of the training and evaluation points."""
        from ._sketch import dense_effective_parameters, sketched_effective_parameters

        described = dict(attribution_window=int(attribution_window), smoother=smoother)
        if sketch_size is None:
            p_train = dense_effective_parameters(train_rows, n_train)
            p_test = dense_effective_parameters(eval_rows, n_train)
            return cls(p_train, p_test, 0.0, 0.0, "dense", None, n_train, len(eval_rows),
                       **described)
        p_train, se_train = sketched_effective_parameters(train_rows, n_train)
        p_test, se_test = sketched_effective_parameters(eval_rows, n_train)
        return cls(p_train, p_test, se_train, se_test, "sketch", int(sketch_size), n_train,
                   len(eval_rows), **described)
