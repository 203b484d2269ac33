"""Fitting a cell's model: early stopping on the split's validation part, the tuning study
that selects a configuration on it (bench/tuning.py), and predictions in the target's units.

Runs inside workers, called by :func:`tabscope.bench.cells.run_cell`.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from tabscope.datasets import PreparedData
from tabscope.vocabulary import Metric, Preprocessing, Task

from .metrics import classification_scores, regression_scores
from .store import storage_key
from .tuning import journal_path, run_study

__all__ = ["fit_model", "fit_target", "impute_if_needed", "predict", "scales_target",
           "primary_score", "tune_model"]


def fit_model(task, data: PreparedData, params: dict, validation_callback=None):
    """Build and fit the cell's model with ``params``, early-stopped on the validation
    part unless the suite turned early stopping off for the model."""
    spec = task.model.spec
    estimator = spec.build(task.dataset.task, params, random_state=task.seed)
    X_val = y_val = None
    if task.model.early_stopping and len(data.X_valid):
        X_val = data.X_valid
        y_val = data.scale_target(data.y_valid) if scales_target(data) else data.y_valid
    return spec.fit(estimator, data.X_train, fit_target(data), X_val, y_val,
                    validation_callback=validation_callback)


def primary_score(task, data: PreparedData, estimator, X, y) -> float:
    """The task's primary metric (docs/design.md §2.5) of ``estimator`` on ``(X, y)``."""
    metric = Metric.primary(task.dataset.task)
    predictions, proba = predict(estimator, data, X)
    if task.dataset.task == Task.REGRESSION:
        return float(regression_scores(y, predictions)[metric])
    return float(classification_scores(y, predictions, proba, len(data.classes))[metric])


def tune_model(task, data: PreparedData):
    """Run the cell's study (bench/tuning.py); return the selected model and trial rows."""
    if not len(data.X_valid):
        raise ValueError("tuning selects on the validation part: split.valid_size must be > 0")

    def objective(params, report):
        estimator = fit_model(task, data, {**task.model.params, **params}, validation_callback=report)
        validation = primary_score(task, data, estimator, data.X_valid, data.y_valid)
        test = primary_score(task, data, estimator, data.X_test, data.y_test)
        return validation, test, task.model.spec.stopping_step(estimator)

    journal = None
    if task.results_dir is not None:
        journal = journal_path(task.results_dir, storage_key(task.cell_id))
    maximize = Metric.primary(task.dataset.task).greater_is_better
    trials, selected = run_study(task.tuning, task.model.search, task.seed, objective,
                                 maximize=maximize, journal=journal,
                                 config_hash=task.config_hash)
    chosen = trials[selected]
    # Refit the selected configuration: the same seed gives the trial's model bit for bit,
    # whether the trial ran in this process or before an interruption.
    estimator = fit_model(task, data, {**task.model.params, **chosen.params})
    rows = [{
        "cell_id": task.cell_id, "trial": t.number, "params": json.dumps(t.params, sort_keys=True),
        "status": t.status, "validation_score": t.validation_score, "test_score": t.test_score,
        "steps": t.steps, "seconds": t.seconds, "selected": int(t.number == selected),
        "error": t.error,
    } for t in trials]
    return estimator, rows


def impute_if_needed(estimator, data: PreparedData) -> PreparedData:
    """Median-impute raw tree features for boosters that reject missing values.

    Tree preprocessing keeps NaN for the libraries that route missing values themselves;
    scikit-learn's GradientBoosting and most plug-ins cannot, so they get the training
    medians (fitted on the training part only).
    """
    has_nan = any(np.isnan(X).any() for X in (data.X_train, data.X_valid, data.X_test))
    if data.kind != Preprocessing.TREE or not has_nan:
        return data
    try:
        allows_nan = estimator.__sklearn_tags__().input_tags.allow_nan
    except AttributeError:
        allows_nan = False
    if allows_nan:
        return data
    from sklearn.impute import SimpleImputer

    imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(data.X_train)
    return dataclasses.replace(
        data, X_train=imputer.transform(data.X_train), X_valid=imputer.transform(data.X_valid),
        X_test=imputer.transform(data.X_test),
    )


def scales_target(data: PreparedData) -> bool:
    """Networks see a standardised regression target (docs/design.md §3)."""
    return data.kind == Preprocessing.NETWORK and data.target_mean is not None


def fit_target(data: PreparedData) -> np.ndarray:
    """The training target the estimator is fitted on (PreparedData's scaling for networks)."""
    return data.scale_target(data.y_train) if scales_target(data) else data.y_train


def predict(estimator, data: PreparedData, X: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (in the target's units) and class probabilities on ``X`` (the test
    part by default)."""
    X = data.X_test if X is None else X
    if data.classes is None:
        predictions = np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1)
        if scales_target(data):
            predictions = data.unscale_target(predictions)
        return predictions, None
    predictions = np.asarray(estimator.predict(X)).astype(np.int64)
    if not hasattr(estimator, "predict_proba"):
        return predictions, None
    raw = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    # Columns follow estimator.classes_, which may miss a class absent from training.
    proba = np.zeros((len(predictions), len(data.classes)))
    proba[:, np.asarray(estimator.classes_, dtype=np.int64)] = raw
    # Libraries that compute in float32 return rows summing to 1 only to ~1e-7.
    proba /= proba.sum(axis=1, keepdims=True)
    return predictions, proba
