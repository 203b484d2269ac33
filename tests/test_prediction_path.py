"""The prediction path of a kernel view (docs/design.md §1.10): the prediction after each
tenth of training, for networks (telescoping prediction) and boosters (leaf-value sums)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import StandardScaler

from tabscope.bench.cells import assembly_frame
from tabscope.models import TelescopingMLPClassifier, TelescopingMLPRegressor, TreeLens
from tabscope.models.kernel_view import prediction_path_steps

X, Y = load_diabetes(return_X_y=True)
X = StandardScaler().fit_transform(X)
X_IRIS, Y_IRIS = load_iris(return_X_y=True)


def test_path_steps_end_each_tenth():
    assert prediction_path_steps(100).tolist() == list(range(10, 101, 10))
    assert prediction_path_steps(4).tolist() == [1, 2, 3, 4]  # fewer steps than parts
    assert prediction_path_steps(95)[-1] == 95


def _views():
    from lightgbm import LGBMClassifier
    from xgboost import XGBRegressor

    for optimizer in ("sgd", "momentum", "adamw"):
        net = TelescopingMLPRegressor((16,), optimizer=optimizer, learning_rate=0.01,
                                      max_steps=60, batch_size=64, random_state=0).fit(X, Y)
        yield f"mlp-{optimizer}", net.kernel_view(X[:6]), 60
    classifier = TelescopingMLPClassifier((16,), max_steps=30, random_state=0).fit(X_IRIS, Y_IRIS)
    yield "mlp-multiclass", classifier.kernel_view(X_IRIS[:5]), 30
    yield "xgboost", TreeLens(XGBRegressor(n_estimators=23, max_depth=3)).fit(X, Y).kernel_view(X[:6]), 23
    yield "hgb", TreeLens(HistGradientBoostingRegressor(max_iter=15)).fit(X, Y).kernel_view(X[:6]), 15
    lgbm = TreeLens(LGBMClassifier(n_estimators=12, num_leaves=7, verbose=-1)).fit(X_IRIS, Y_IRIS)
    yield "lightgbm-multiclass", lgbm.kernel_view(X_IRIS[:5]), 12


@pytest.mark.parametrize("name, view, n_steps", list(_views()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_path_ends_at_the_prediction(name, view, n_steps):
    np.testing.assert_array_equal(view.path_steps, prediction_path_steps(n_steps))
    assert view.prediction_path.shape == (view.n_eval, len(view.path_steps),
                                           *np.shape(view.prediction)[1:])
    np.testing.assert_allclose(view.prediction_path[:, -1], view.prediction, rtol=1e-9,
                               atol=1e-9)
    frame = assembly_frame(view, np.arange(view.n_eval) + 100)
    shares = frame.groupby("eval_row")["share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-12)
    assert set(frame["part"]) == set(range(1, len(view.path_steps) + 1))
    assert frame["fraction"].max() == 1.0


def test_shares_follow_the_path_by_hand():
    from tabscope.models import KernelView

    offset = np.array([0.0])
    path = np.array([[1.0, 3.0, 2.0]])  # moves of 1, 2, then back by 1
    view = KernelView(offset=offset, contributions=np.zeros((1, 2)), unattributed=offset,
                      prediction=np.array([2.0]), checkpoints=np.arange(1, 4),
                      kernel_norms=np.zeros((1, 3)), train_kernel_norms=np.zeros((2, 3)),
                      path_steps=np.array([1, 2, 3]), prediction_path=path)
    np.testing.assert_allclose(assembly_frame(view, np.array([7]))["share"], [0.25, 0.5, 0.25])
    with pytest.raises(ValueError, match="prediction_path"):
        KernelView(offset=offset, contributions=np.zeros((1, 2)), unattributed=offset,
                   prediction=np.array([2.0]), checkpoints=np.arange(1, 4),
                   kernel_norms=np.zeros((1, 3)), train_kernel_norms=np.zeros((2, 3)),
                   path_steps=np.array([1, 2]), prediction_path=path)
