"""Fitting a registered model with early stopping on a validation part.

Each registered model names one :class:`FitRule`: how its library stops early on a given
validation set and where the fitted model records the stopping point (docs/design.md §2.6).
Every rule falls back to a plain ``fit(X, y)`` when no validation part is given, so a
suite with ``early_stopping = false`` (or ``split.valid_size = 0``) trains the fixed budget.

========== =============================================================== =================
rule       how it stops                                                    stopping point
========== =============================================================== =================
network    ``fit(X, y, X_val, y_val)``: validation loss every               ``best_step_``
           ``validation_interval`` steps, keeps the best step's weights
xgboost    ``eval_set`` + ``early_stopping_rounds`` (20 unless set);        ``best_iteration
           ``predict`` uses ``best_iteration``                              + 1``
lightgbm   ``eval_set`` + ``lightgbm.early_stopping(20)``; the model is     ``best_iteration_``
           cut at its best iteration
hgb        ``fit(X, y, X_val=, y_val=)`` with ``early_stopping=True``       ``n_iter_``
           (scikit-learn >= 1.6): no internal split, every row trains
gb         fit every stage, pick the stage count with the lowest            ``n_estimators_``
           validation loss (``staged_predict``), refit with that count
plain      ``fit(X, y)``: a plug-in's own behaviour                         None
========== =============================================================== =================

The TreeLens of an early-stopped booster describes exactly the model that predicts
(``best_iteration`` for XGBoost, the cut trees for LightGBM, ``n_iter_`` for HGB).
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["EARLY_STOPPING_ROUNDS", "FitRule", "fit_with_validation", "stopping_step"]

#: Rounds without improvement before XGBoost and LightGBM stop (Grinsztajn et al. 2022).
EARLY_STOPPING_ROUNDS = 20


class FitRule(enum.StrEnum):
    """How one registered model is fitted with a validation part (module docstring)."""

    NETWORK = "network"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"
    HGB = "hgb"
    GB = "gb"
    PLAIN = "plain"


def fit_with_validation(rule: str, estimator, X, y, X_val=None, y_val=None,
                        *, validation_callback=None):
    """Fit ``estimator`` by ``rule``, stopping early on ``(X_val, y_val)`` when given.

    Parameters
    ----------
    rule : FitRule or str
    estimator : estimator
        Modified in place (boosters get their early-stopping settings).
    X, y : array-like
        The training part.
    X_val, y_val : array-like, optional
        The validation part; both or neither.
    validation_callback : callable, optional
        ``callback(step, score)`` after each validation scoring of a network (higher
        score is better); it may raise (a tuning study's pruning) to abandon the fit.
        Ignored by the other rules.

    Returns
    -------
    estimator
        The fitted estimator.
    """
    rule = FitRule(rule)
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together")
    if X_val is None or len(X_val) == 0 or rule is FitRule.PLAIN:
        return estimator.fit(X, y)
    if rule is FitRule.NETWORK:
        estimator._validation_callback = validation_callback
        try:
            return estimator.fit(X, y, X_val=X_val, y_val=y_val)
        finally:
            del estimator._validation_callback
    if rule is FitRule.XGBOOST:
        if estimator.get_params().get("early_stopping_rounds") is None:
            estimator.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        return estimator.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    if rule is FitRule.LIGHTGBM:
        import inspect

        import lightgbm

        # LightGBM 4.7 renames eval_set to eval_X / eval_y and deprecates the old name.
        if "eval_X" in inspect.signature(estimator.fit).parameters:
            evaluation = {"eval_X": (X_val,), "eval_y": (y_val,)}
        else:
            evaluation = {"eval_set": [(X_val, y_val)]}
        return estimator.fit(
            X, y, **evaluation,
            callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
        )
    if rule is FitRule.HGB:
        estimator.set_params(early_stopping=True)
        return estimator.fit(X, y, X_val=X_val, y_val=y_val)
    return _fit_gb(estimator, X, y, X_val, y_val)


def _fit_gb(estimator, X, y, X_val, y_val):
    """scikit-learn GradientBoosting: the stage count with the lowest validation loss.

    Refitting with that count reproduces the first stages bit for bit (the stages draw
    from the same random state in the same order), so the model is the truncated one.
    """
    estimator.fit(X, y)
    if hasattr(estimator, "staged_predict_proba"):
        classes = list(estimator.classes_)
        known = np.isin(y_val, classes)
        index = np.searchsorted(classes, np.asarray(y_val)[known])
        losses = [
            -np.mean(np.log(np.clip(p[known][np.arange(len(index)), index], 1e-15, None)))
            for p in estimator.staged_predict_proba(X_val)
        ]
    else:
        y_val = np.asarray(y_val, dtype=np.float64)
        losses = [np.mean((p - y_val) ** 2) for p in estimator.staged_predict(X_val)]
    best = int(np.nanargmin(losses)) + 1
    if best < estimator.n_estimators_:
        estimator.set_params(n_estimators=best)
        estimator.fit(X, y)
    return estimator


def stopping_step(rule: str, estimator) -> int | None:
    """The step or boosting round the fitted model stopped at (module table), or None."""
    rule = FitRule(rule)
    if rule is FitRule.NETWORK:
        return int(estimator.best_step_)
    if rule is FitRule.XGBOOST:
        best = getattr(estimator, "best_iteration", None)
        return int(best) + 1 if best is not None else int(estimator.get_booster().num_boosted_rounds())
    if rule is FitRule.LIGHTGBM:
        best = int(getattr(estimator, "best_iteration_", 0) or 0)
        return best if best > 0 else int(estimator.n_estimators_)
    if rule is FitRule.HGB:
        return int(estimator.n_iter_)
    if rule is FitRule.GB:
        return int(estimator.n_estimators_)
    return None
