"""The scikit-learn estimator contract for every tabscope estimator, in one place.

`check_estimator` (through `parametrize_with_checks`) for the four telescoping networks,
`TreeLens` around every supported booster, and the two feature transformers; then pickling
(a loaded estimator predicts identically, and its kernel view is the same) and `clone` of
fitted estimators (a new, unfitted estimator with equal parameters).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits
from torch import nn

from tabscope.datasets import NetworkFeatureTransformer, TreeFeatureTransformer
from tabscope.models import (
    TelescopingMLPClassifier,
    TelescopingMLPRegressor,
    TelescopingNetClassifier,
    TelescopingNetRegressor,
    TreeLens,
)

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

# torch's first forward-mode call loads jit-scripted decompositions, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


class ResidualNet(nn.Module):
    """A small module that is not a Sequential, so it trains through torch.func."""

    def __init__(self, n_features: int, n_outputs: int):
        super().__init__()
        self.first = nn.Linear(n_features, 16)
        self.second = nn.Linear(16, n_outputs)

    def forward(self, x):
        h = torch.tanh(self.first(x))
        return self.second(h + 0.5 * h**2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two shared cores: spinning torch/OpenMP pools make these many small fits crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


# Default architecture and optimiser, few steps: the checks fit dozens of times. The
# small custom module needs a larger step to reach the checks' score thresholds in 50.
NETWORKS = [
    TelescopingMLPRegressor(max_steps=50),
    TelescopingMLPClassifier(max_steps=50),
    TelescopingNetRegressor(ResidualNet, max_steps=50, learning_rate=1e-2),
    TelescopingNetClassifier(ResidualNet, max_steps=50, learning_rate=1e-2),
]
LENSES = [
    TreeLens(xgboost.XGBRegressor(n_estimators=10, n_jobs=1)),
    TreeLens(xgboost.XGBClassifier(n_estimators=10, n_jobs=1)),
    TreeLens(lightgbm.LGBMRegressor(n_estimators=10, n_jobs=1, verbose=-1)),
    TreeLens(lightgbm.LGBMClassifier(n_estimators=10, n_jobs=1, verbose=-1)),
    TreeLens(HistGradientBoostingRegressor(max_iter=10)),
    TreeLens(HistGradientBoostingClassifier(max_iter=10)),
    TreeLens(GradientBoostingRegressor(n_estimators=10, random_state=0)),
    TreeLens(GradientBoostingClassifier(n_estimators=10, random_state=0)),
]
TRANSFORMERS = [NetworkFeatureTransformer(), TreeFeatureTransformer()]

# Checks that fail only because of a wrapped library's own behaviour, with the reason. None
# do with the library versions the test environment pins; list any that appear here rather
# than skipping them silently.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator) -> dict[str, str]:
    inner = getattr(estimator, "estimator", None)
    return EXPECTED_FAILED_CHECKS.get(type(estimator if inner is None else inner).__name__, {})


@parametrize_with_checks(NETWORKS + LENSES + TRANSFORMERS,
                         expected_failed_checks=_expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _data(estimator):
    X, y = (load_wine if is_classifier(estimator) else load_diabetes)(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    if not is_classifier(estimator):
        y = (y - y.mean()) / y.std()
    return X[::2], y[::2], X[1::2]


def _outputs(estimator, X):
    names = ("predict", "predict_proba", "decision_function")
    return {name: getattr(estimator, name)(X) for name in names if hasattr(estimator, name)}


@pytest.mark.slow
@pytest.mark.parametrize("estimator", NETWORKS + LENSES, ids=lambda e: repr(e)[:60])
def test_pickle_round_trip_predicts_identically(estimator):
    X_train, y_train, X_test = _data(estimator)
    fitted = clone(estimator).fit(X_train, y_train)
    loaded = pickle.loads(pickle.dumps(fitted))
    for name, value in _outputs(fitted, X_test).items():
        np.testing.assert_array_equal(getattr(loaded, name)(X_test), value, err_msg=name)
    view, loaded_view = fitted.kernel_view(X_test[:5]), loaded.kernel_view(X_test[:5])
    np.testing.assert_allclose(loaded_view.contributions, view.contributions, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(loaded_view.prediction, view.prediction, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("estimator", NETWORKS + LENSES + TRANSFORMERS,
                         ids=lambda e: repr(e)[:60])
def test_clone_of_a_fitted_estimator_is_unfitted_with_equal_parameters(estimator):
    X_train, y_train, _ = _data(estimator)
    fitted = clone(estimator).fit(X_train, y_train)
    copy = clone(fitted)
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert copy is not fitted
    fitted_params, copy_params = fitted.get_params(deep=False), copy.get_params(deep=False)
    assert fitted_params.keys() == copy_params.keys()
    for key, value in fitted_params.items():
        if hasattr(value, "get_params"):  # nested estimators are cloned, not shared
            assert copy_params[key] is not value
            assert copy_params[key].get_params() == value.get_params()
        else:
            assert copy_params[key] == value or copy_params[key] is value
