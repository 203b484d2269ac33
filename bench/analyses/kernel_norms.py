"""Kernel weight norms: ``kappa_bar(x) = kappa(x) / mean_{i in train} kappa(x_i)``.

``kappa(x) = max_t kappa_t(x)`` is the largest kernel weight norm of ``x`` over a lens's
checkpoints (docs/design.md §1.5), in the norm of :class:`tabscope.vocabulary.KernelNorm`
the view was built with. This module normalises it by the training set and summarises it;
the per-cell job that stores it is :attr:`tabscope.vocabulary.CellJob.KERNEL_NORMS`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from tabscope.models.kernel_view import KernelView

from ._inputs import as_1d_finite

__all__ = ["kernel_norm_summary", "normalized_kernel_norms", "spearman"]


def _max_kernel_norms(source: KernelView | ArrayLike, name: str) -> np.ndarray:
    """``kappa = max over checkpoints`` from a view or an array of norms (1-D already maxed)."""
    if isinstance(source, KernelView):
        norms = np.asarray(source.kernel_norms, dtype=np.float64)
        if norms.shape[1] == 0:
            raise ValueError(f"{name} has no checkpoints, so no kernel norms")
        kappa = norms.max(axis=1)
    else:
        array = np.asarray(source)
        if array.ndim == 2:
            if array.shape[1] == 0:
                raise ValueError(f"{name} has no checkpoint columns")
            array = array.max(axis=1)
        kappa = as_1d_finite(array, name)
    if kappa.shape[0] == 0:
        raise ValueError(f"{name} holds no examples")
    if not np.all(np.isfinite(kappa)):
        raise ValueError(f"{name} has kernel norms that are NaN or infinite")
    if np.any(kappa < 0):
        raise ValueError(f"{name} has negative kernel norms; norms are non-negative")
    return kappa


def _train_kappa(view_eval: KernelView | ArrayLike, view_train) -> np.ndarray:
    """Training-set ``kappa(x_i)``, from ``view_train`` or, if None, from ``view_eval``."""
    if view_train is None:
        if not isinstance(view_eval, KernelView):
            raise TypeError(
                "view_train may be None only when view_eval is a KernelView (whose "
                "train_kernel_norms are then used)"
            )
        return _max_kernel_norms(view_eval.train_kernel_norms, "view_eval.train_kernel_norms")
    if isinstance(view_eval, KernelView) and isinstance(view_train, KernelView):
        # kappa_bar is a ratio of norms: both sides must measure the same thing.
        if view_train.n_train != view_eval.n_train:
            raise ValueError(
                f"view_train sums over {view_train.n_train} training examples but view_eval "
                f"over {view_eval.n_train}: they are not views of the same model"
            )
        if view_train.norm != view_eval.norm:
            raise ValueError(
                f"view_train uses the {view_train.norm!r} norm but view_eval the "
                f"{view_eval.norm!r} norm"
            )
        if not np.array_equal(
            np.asarray(view_train.checkpoints), np.asarray(view_eval.checkpoints)
        ):
            raise ValueError("view_train and view_eval must have the same checkpoints")
    return _max_kernel_norms(view_train, "view_train")


def normalized_kernel_norms(
    view_eval: KernelView | ArrayLike,
    view_train: KernelView | ArrayLike | None = None,
) -> np.ndarray:
    """Normalised kernel weight norm ``kappa_bar(x) = kappa(x) / mean_{i in train} kappa(x_i)``.

    ``kappa(x) = max_t kappa_t(x)`` is the largest kernel weight norm of ``x`` over the
    checkpoints (docs/design.md §1.5). The result is never clipped: a network can give a point far
    outside the training data a ``kappa_bar`` far above anything seen in training, and that
    is exactly what the analysis looks for.

    Parameters
    ----------
    view_eval : KernelView or array-like of shape (m,) or (m, c)
        The view of the evaluation set, or its kernel norms (per checkpoint, or already
        maximised over checkpoints when 1-D).
    view_train : KernelView, array-like of shape (n,) or (n, c), or None, default=None
        The view of the training set (its evaluation points are the training examples), or
        the training examples' kernel norms. ``None`` uses ``view_eval.train_kernel_norms``.
        Two views must share training-set size, norm and checkpoints.

    Returns
    -------
    kappa_bar : ndarray of shape (m,)
        Non-negative; the training set's ``kappa_bar`` averages to 1 by construction.

    Raises
    ------
    ValueError
        If the norms are negative or not finite, the two views disagree, or every training
        norm is zero (nothing to normalise by).
    TypeError
        If ``view_train`` is None and ``view_eval`` is not a KernelView.
    """
    kappa = _max_kernel_norms(view_eval, "view_eval")
    train_kappa = _train_kappa(view_eval, view_train)
    scale = float(train_kappa.mean())
    if not scale > 0:
        raise ValueError(
            "view_train has zero kernel norms on every training example: kappa_bar is undefined"
        )
    return kappa / scale


def spearman(scores: np.ndarray, kappa_bar: np.ndarray) -> tuple[float, float]:
    """Spearman rho and two-sided p-value; NaN for a constant input (no ranks to correlate)."""
    if scores.shape[0] < 3 or np.ptp(scores) == 0 or np.ptp(kappa_bar) == 0:
        return float("nan"), float("nan")
    result = stats.spearmanr(scores, kappa_bar)
    return float(result.statistic), float(result.pvalue)


def kernel_norm_summary(
    view_eval: KernelView | ArrayLike,
    view_train: KernelView | ArrayLike | None = None,
    scores: ArrayLike | None = None,
) -> dict:
    """Per-example ``kappa_bar`` with the summary statistics the benchmark stores.

    Parameters
    ----------
    view_eval, view_train
        As in :func:`normalized_kernel_norms`.
    scores : array-like of shape (m,), default=None
        Irregularity scores of the evaluation examples (:func:`irregularity_scores`); when
        given, their Spearman rank correlation with ``kappa_bar`` is reported.

    Returns
    -------
    summary : dict
        ``"kappa_bar"`` (ndarray (m,)), ``"kappa_bar_train"`` (ndarray (n,)),
        ``"train_mean"`` (1 up to rounding), ``"train_max"``, ``"eval_mean"``, ``"eval_max"``,
        ``"eval_fraction_above_train_max"`` (share of evaluation examples whose
        ``kappa_bar`` exceeds every training example's) and, as floats that are NaN without
        ``scores`` or when either input is constant (rank correlation undefined),
        ``"spearman_rho"`` and ``"spearman_pvalue"``.
    """
    kappa_bar = normalized_kernel_norms(view_eval, view_train)
    train_kappa = _train_kappa(view_eval, view_train)
    kappa_bar_train = train_kappa / train_kappa.mean()
    train_max = float(kappa_bar_train.max())
    rho, pvalue = float("nan"), float("nan")
    if scores is not None:
        score_values = as_1d_finite(scores, "scores", length=kappa_bar.shape[0])
        rho, pvalue = spearman(score_values, kappa_bar)
    return {
        "kappa_bar": kappa_bar,
        "kappa_bar_train": kappa_bar_train,
        "train_mean": float(kappa_bar_train.mean()),
        "train_max": train_max,
        "eval_mean": float(kappa_bar.mean()),
        "eval_max": float(kappa_bar.max()),
        "eval_fraction_above_train_max": float(np.mean(kappa_bar > train_max)),
        "spearman_rho": rho,
        "spearman_pvalue": pvalue,
    }
