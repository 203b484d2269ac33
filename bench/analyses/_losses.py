"""Per-example losses of the irregularity curve's loss-type metrics (larger is worse).

A subset's metric is an aggregate of its examples' losses (:func:`aggregate`), so the curve
computes every example's loss once (:func:`per_example_losses`) and then only averages over
the many subsets it draws. The metrics differ from the stored test scores
(:class:`tabscope.vocabulary.Metric`): they are losses, and include the squared error and
the error rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tabscope.vocabulary import Task

from ._inputs import as_1d_finite, as_2d_finite

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "aggregate", "per_example_losses"]

#: Loss-type metrics of the irregularity curve, per task; the first is the default.
REGRESSION_METRICS = ("rmse", "mse", "mae")
CLASSIFICATION_METRICS = ("error_rate", "log_loss")

#: Probability floor of the log loss, so that a confident mistake costs a large finite loss.
_LOG_LOSS_EPS = np.finfo(np.float64).eps
#: How far rows of a probability array may stray from summing to 1 before it is rejected.
_PROBA_SUM_TOL = 1e-3


def _class_indices(y_true: np.ndarray, n_classes: int, classes: ArrayLike | None) -> np.ndarray:
    """Column index of each label in a probability array with ``n_classes`` columns."""
    if classes is None:
        if y_true.dtype.kind not in "biu":
            raise ValueError(
                "y_true must hold integer class codes 0..C-1 to index probability columns, "
                f"got dtype {y_true.dtype}; pass classes= (the estimator's classes_) instead"
            )
        codes = y_true.astype(np.int64)
        if codes.min() < 0 or codes.max() >= n_classes:
            raise ValueError(
                f"y_true codes must lie in [0, {n_classes}) to index the {n_classes} "
                "probability columns; pass classes= (the estimator's classes_) otherwise"
            )
        return codes
    labels = np.asarray(classes)
    if labels.ndim != 1 or labels.shape[0] != n_classes:
        raise ValueError(
            f"classes must be a 1-D array with one label per probability column "
            f"({n_classes}), got shape {labels.shape}"
        )
    position = {label: column for column, label in enumerate(labels.tolist())}
    if len(position) != n_classes:
        raise ValueError("classes must not repeat a label")
    try:
        return np.array([position[label] for label in y_true.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(
            f"y_true contains the label {exc.args[0]!r}, which is not in classes"
        ) from exc


def per_example_losses(
    y_true: np.ndarray,
    prediction: ArrayLike,
    name: str,
    task: str,
    metric: str,
    classes: ArrayLike | None,
) -> np.ndarray:
    """Each evaluation example's loss under ``metric``; the subset metric aggregates these."""
    m = y_true.shape[0]
    if task == Task.REGRESSION:
        values = as_1d_finite(prediction, name, length=m)
        residual = values - y_true
        return np.abs(residual) if metric == "mae" else residual**2

    array = np.asarray(prediction)
    if array.ndim == 1:
        if array.shape[0] != m:
            raise ValueError(f"{name} must have {m} entries, got {array.shape[0]}")
        if metric == "log_loss":
            raise ValueError(
                f"{name} holds predicted labels (1-D) but metric='log_loss' needs class "
                "probabilities of shape (m, n_classes)"
            )
        return (array != y_true).astype(np.float64)
    if array.ndim != 2 or array.shape[0] != m or array.shape[1] < 2:
        raise ValueError(
            f"{name} must be predicted labels of shape ({m},) or class probabilities of "
            f"shape ({m}, n_classes >= 2), got shape {array.shape}"
        )
    proba = as_2d_finite(array, name)
    if np.any(proba < 0) or np.any(proba > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    row_sums = proba.sum(axis=1)
    if np.any(np.abs(row_sums - 1) > _PROBA_SUM_TOL):
        raise ValueError(f"{name} rows must sum to 1 (class probabilities)")
    columns = _class_indices(y_true, proba.shape[1], classes)
    if metric == "error_rate":
        return (np.argmax(proba, axis=1) != columns).astype(np.float64)
    # Renormalise away float32 rounding, then floor so a confident mistake stays finite.
    truth = proba[np.arange(m), columns] / row_sums
    return -np.log(np.clip(truth, _LOG_LOSS_EPS, 1.0))


def aggregate(mean_losses: np.ndarray, metric: str) -> np.ndarray:
    """Metric from the mean per-example loss of a subset."""
    return np.sqrt(mean_losses) if metric == "rmse" else mean_losses
