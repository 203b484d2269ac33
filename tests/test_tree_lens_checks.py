"""TreeLens is a scikit-learn estimator with every supported booster inside."""

from __future__ import annotations

import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from tabscope.models import TreeLens

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

LENSES = [
    TreeLens(xgboost.XGBRegressor(n_estimators=10, n_jobs=1)),
    TreeLens(xgboost.XGBClassifier(n_estimators=10, n_jobs=1)),
    TreeLens(lightgbm.LGBMRegressor(n_estimators=10, n_jobs=1, verbose=-1)),
    TreeLens(lightgbm.LGBMClassifier(n_estimators=10, n_jobs=1, verbose=-1)),
    TreeLens(HistGradientBoostingRegressor(max_iter=10)),
    TreeLens(HistGradientBoostingClassifier(max_iter=10)),
    TreeLens(GradientBoostingRegressor(n_estimators=10)),
    TreeLens(GradientBoostingClassifier(n_estimators=10)),
]

# Checks that fail only because of the wrapped library's own behaviour, with the reason.
# None do with the library versions this project pins; list any that appear here rather
# than skipping them silently.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(lens: TreeLens) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS.get(type(lens.estimator).__name__, {})


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """On two shared cores OpenMP pools only add contention to these small fits."""
    with threadpool_limits(1, "openmp"):
        yield


@parametrize_with_checks(LENSES, expected_failed_checks=_expected_failed_checks)
def test_tree_lens_is_a_scikit_learn_estimator(estimator, check):
    check(estimator)
