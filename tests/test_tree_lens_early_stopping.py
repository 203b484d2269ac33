"""TreeLens on boosters early-stopped on a validation set (docs/design.md §1.4).

XGBoost (``early_stopping_rounds`` + ``eval_set``: predictions use ``best_iteration``),
LightGBM (the ``early_stopping`` callback: ``best_iteration_``) and HistGradientBoosting
(``X_val``/``y_val``: no internal split, every row in bag), in regression and binary
classification: the lens's reconstruction equals the library's own raw prediction.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from tabscope.models import TreeLens

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

RTOL = 1e-5

# LightGBM 4.7 renames eval_set to eval_X/eval_y; the old name still works everywhere.
pytestmark = pytest.mark.filterwarnings("ignore:The argument .eval_set. is deprecated")


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    with threadpool_limits(1, "openmp"):
        yield


def _data(task):
    X, y = (load_diabetes if task == "regression" else load_breast_cancer)(return_X_y=True)
    return X[:250], y[:250], X[250:400], y[250:400], X[400:]


def _fit(library, task, X, y, X_val, y_val):
    """A booster of ``library`` early-stopped on ``(X_val, y_val)``; its stopping round."""
    regression = task == "regression"
    if library == "xgboost":
        cls = xgboost.XGBRegressor if regression else xgboost.XGBClassifier
        model = cls(n_estimators=300, learning_rate=0.3, early_stopping_rounds=5, n_jobs=1)
        model.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
        return model, model.best_iteration + 1, model.get_booster().num_boosted_rounds()
    if library == "lightgbm":
        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        model = cls(n_estimators=300, learning_rate=0.3, n_jobs=1, verbose=-1)
        model.fit(
            X, y, eval_set=[(X_val, y_val)],
            callbacks=[lightgbm.early_stopping(5, verbose=False)],
        )
        return model, model.best_iteration_, model.best_iteration_  # trees cut at best
    cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    model = cls(max_iter=300, learning_rate=0.3, early_stopping=True, n_iter_no_change=5)
    model.fit(X, y, X_val=X_val, y_val=y_val)
    return model, model.n_iter_, model.n_iter_


def _raw(model, X):
    if isinstance(model, xgboost.XGBModel):
        return model.predict(X, output_margin=True)
    if isinstance(model, lightgbm.LGBMModel):
        return model.predict(X, raw_score=True)
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model.predict(X)


@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "hist_gradient_boosting"])
def test_lens_is_exact_on_an_early_stopped_booster(library, task):
    X, y, X_val, y_val, X_test = _data(task)
    model, best_rounds, trained_rounds = _fit(library, task, X, y, X_val, y_val)
    assert best_rounds < 300  # it stopped early
    if library == "xgboost":  # only XGBoost keeps the rounds after the best one
        assert best_rounds < trained_rounds
    lens = TreeLens.from_fitted(model, X, y)
    assert lens.n_rounds_ == best_rounds
    # every row was a training row: the validation set replaces any internal split
    assert lens.tree_kernel_.in_bag.all()
    view = lens.kernel_view(X_test)
    view.check_identity(RTOL)
    expected = np.asarray(_raw(model, X_test), dtype=np.float64)
    error = np.abs(view.reconstruction() - expected).max() / np.abs(expected).max()
    assert error <= RTOL
