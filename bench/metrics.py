"""Scores of one cell's predictions: the :class:`~tabscope.vocabulary.Metric` members of its
task (rmse, mae, r2 for regression; accuracy, log_loss, roc_auc for classification)."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

from tabscope.vocabulary import Metric

__all__ = ["classification_scores", "regression_scores"]


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return rmse, mae and r2 of regression predictions (original target units)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    return {
        Metric.RMSE: math.sqrt(skm.mean_squared_error(y_true, y_pred)),
        Metric.MAE: float(skm.mean_absolute_error(y_true, y_pred)),
        Metric.R2: float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
    }


def classification_scores(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int
) -> dict[str, float]:
    """Return accuracy, log_loss and roc_auc of class-code predictions.

    ``proba`` has one column per class code ``0..n_classes-1`` (None when the model has no
    ``predict_proba``; the probability metrics are then NaN). ROC AUC is one-vs-rest, macro
    averaged, for more than two classes, and NaN when the test set lacks a class.
    """
    y_true = np.asarray(y_true)
    scores = {Metric.ACCURACY: float(skm.accuracy_score(y_true, y_pred)),
              Metric.LOG_LOSS: math.nan, Metric.ROC_AUC: math.nan}
    if proba is None:
        return scores
    labels = np.arange(n_classes)
    scores[Metric.LOG_LOSS] = float(skm.log_loss(y_true, proba, labels=labels))
    if len(np.unique(y_true)) == n_classes:
        if n_classes == 2:
            scores[Metric.ROC_AUC] = float(skm.roc_auc_score(y_true, proba[:, 1]))
        else:
            scores[Metric.ROC_AUC] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
            )
    return scores
