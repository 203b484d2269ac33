"""The lens at benchmark scale (docs/design.md §1.5, §1.6, §1.9): norms-only kappa_bar and
sketched effective parameters agree with the full view and the dense smoother."""

import numpy as np
import pytest
from sklearn.datasets import make_regression
from xgboost import XGBRegressor

from tabscope.errors import AnalysisTooCostlyError
from tabscope.models import TelescopingMLPRegressor, TreeLens
from tabscope.models._sketch import sketch_basis


def _data(n_train, n_eval=100, seed=0):
    X, y = make_regression(n_samples=n_train + n_eval, n_features=6, noise=10.0,
                           random_state=seed)
    X = X.astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:]


def _mlp(optimizer, X, y, steps=60):
    return TelescopingMLPRegressor(
        hidden_layer_sizes=(32, 32), optimizer=optimizer, learning_rate=1e-2,
        max_steps=steps, batch_size=32, early_stopping=False, random_state=0,
    ).fit(X, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_norms_only_kappa_bar_equals_the_full_view(optimizer):
    X, y, X_eval = _data(300)
    model = _mlp(optimizer, X, y)
    view = model.kernel_view(X_eval, norm_sample_size=80, smoother=False, random_state=3)
    norms = model.kernel_norms(X_eval, norm_sample_size=80, train_sample_size=None,
                               random_state=3)
    expected = view.max_kernel_norms / view.max_train_kernel_norms.mean()
    np.testing.assert_allclose(norms.kappa_bar, expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(norms.kernel_norms, view.kernel_norms, rtol=1e-6)
    assert norms.train_mean_standard_error == 0.0


def test_norms_training_subsample_reports_its_standard_error():
    X, y, X_eval = _data(300)
    model = _mlp("sgd", X, y)
    full = model.kernel_norms(X_eval, train_sample_size=None)
    sampled = model.kernel_norms(X_eval, train_sample_size=60, random_state=5)
    assert sampled.train_rows.shape == (60,) and sampled.train_kernel_norms.shape[0] == 60
    np.testing.assert_allclose(sampled.train_kernel_norms,
                               full.train_kernel_norms[sampled.train_rows], rtol=1e-6)
    se = sampled.train_mean_standard_error
    assert se > 0 and abs(sampled.train_mean - full.train_mean) < 4 * se
    again = model.kernel_norms(X_eval, train_sample_size=60, random_state=5)
    assert np.array_equal(again.train_rows, sampled.train_rows)
    assert np.array_equal(again.kernel_norms, sampled.kernel_norms)


def test_displayed_view_without_norms_keeps_the_identity():
    X, y, X_eval = _data(200)
    model = _mlp("adamw", X, y, steps=30)
    view = model.kernel_view(X_eval[:3], kernel_norms=False, smoother=False)
    assert view.kernel_norms.shape == (3, 0)
    full = model.kernel_view(X_eval[:3], smoother=False)
    np.testing.assert_allclose(view.contributions, full.contributions, rtol=1e-6, atol=1e-9)
    view.check_identity()


def test_network_dense_effective_parameters_match_the_view():
    X, y, X_eval = _data(200)
    model = _mlp("sgd", X, y, steps=30)
    dense = model.effective_parameters(X_eval, sketch_size=None)
    view = model.kernel_view(np.vstack([X, X_eval]), smoother=True)
    s = np.asarray(view.smoother)
    assert dense.method == "dense" and dense.p_train_se == 0.0
    np.testing.assert_allclose(dense.p_train, np.sum(s[:200] ** 2), rtol=1e-9)
    np.testing.assert_allclose(dense.p_test, 200 * np.sum(s[200:] ** 2) / len(X_eval), rtol=1e-9)


def _within(sketched, dense, n_se=3.0):
    for name in ("p_train", "p_test"):
        error = abs(getattr(sketched, name) - getattr(dense, name))
        assert error <= n_se * getattr(sketched, f"{name}_se"), (name, sketched, dense)


def test_sketched_effective_parameters_of_an_mlp_at_n_1500():
    X, y, X_eval = _data(1500, n_eval=200)
    model = _mlp("sgd", X, y, steps=60)
    dense = model.effective_parameters(X_eval, sketch_size=None)
    sketched = model.effective_parameters(X_eval, sketch_size=256, random_state=1)
    assert sketched.method == "sketch" and sketched.p_train_se > 0
    _within(sketched, dense)


def test_sketched_effective_parameters_of_xgboost_at_n_1500():
    X, y, X_eval = _data(1500, n_eval=200)
    lens = TreeLens(XGBRegressor(n_estimators=60, max_depth=4)).fit(X, y)
    dense = lens.effective_parameters(X_eval, sketch_size=None)
    view = lens.kernel_view(np.vstack([X, X_eval]), smoother=True)
    np.testing.assert_allclose(dense.p_train, np.sum(np.asarray(view.smoother)[:1500] ** 2),
                               rtol=1e-9)
    sketched = lens.effective_parameters(X_eval, sketch_size=256, random_state=2)
    _within(sketched, dense)
    again = lens.effective_parameters(X_eval, sketch_size=256, random_state=2)
    assert again == sketched  # same seed, same bits


def test_sketch_is_seeded_and_checked():
    assert np.array_equal(sketch_basis(50, 8, 1), sketch_basis(50, 8, 1))
    assert not np.array_equal(sketch_basis(50, 8, 1), sketch_basis(50, 8, 2))
    with pytest.raises(ValueError, match="sketch_size"):
        sketch_basis(50, 1)
    X, y, X_eval = _data(100)
    lens = TreeLens(XGBRegressor(n_estimators=5)).fit(X, y)
    with pytest.raises(ValueError, match="sketch_size"):
        lens.effective_parameters(X_eval, sketch_size=0)
    model = _mlp("sgd", X, y, steps=5)
    with pytest.raises(ValueError, match="train_sample_size"):
        model.kernel_norms(X_eval, train_sample_size=1)


def test_costly_effective_parameters_raise_with_the_estimate():
    X, y, X_eval = _data(100)
    model = _mlp("adamw", X, y, steps=5)
    with pytest.raises(AnalysisTooCostlyError, match="estimated .* GFLOP"):
        model.effective_parameters(X_eval, max_flops=1.0)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_adam_kernel_with_the_evaluation_side_preconditioned_equals_the_batch_side(n_outputs):
    import torch

    from tabscope.models._kernel_blocks import (
        _eval_preconditioned_blocks, _preconditioned_blocks,
    )
    from tabscope.models._structured import StructuredMLP

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                                 torch.nn.ReLU(), torch.nn.Linear(16, n_outputs)).double()
    network = StructuredMLP.from_module(module)
    params = tuple(p.detach() for p in module.parameters())
    coefficient = tuple(torch.rand_like(p) + 0.1 for p in params)
    eval_a = network.evaluate(params, torch.randn(3, 5, dtype=torch.float64)).factors
    eval_b = network.evaluate(params, torch.randn(3, 5, dtype=torch.float64) * 0.5).factors
    batch = network.evaluate(params, torch.randn(40, 5, dtype=torch.float64)).factors
    terms = [(0.5, eval_a), (0.5, eval_b)]
    for max_elements in (1 << 24, 500):  # one block, and many small ones
        def full(blocks):
            out = torch.zeros(3, 40, n_outputs, n_outputs, dtype=torch.float64)
            for rows, columns, block in blocks:
                out[rows, columns] = block
            return out
        expected = full(_preconditioned_blocks(terms, batch, coefficient, max_elements))
        got = full(_eval_preconditioned_blocks(terms, batch, coefficient, max_elements))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-12)
