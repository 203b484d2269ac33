"""Telescoping network estimators: the KernelView identity, closed forms, replay, errors."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import scale
from torch import nn

from tabscope.models import (
    KernelView,
    TelescopingMLPClassifier,
    TelescopingMLPRegressor,
    TelescopingNetClassifier,
    TelescopingNetRegressor,
)
from tabscope.models.networks import ReplayDivergenceError, build_mlp
from tabscope.models._optimizers import ClosedFormOptimizer, OptimizerConfig

# torch's first forward-mode call loads jit-scripted decompositions, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw"]


@pytest.fixture(autouse=True)
def _one_thread():
    # Two shared cores: torch's spinning worker threads make small matmuls far slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(task, n=60):
    if task == "regression":
        X, y = load_diabetes(return_X_y=True)
        return scale(X)[:n], scale(y)[:n], scale(X)[n : n + 20]
    X, y = (load_breast_cancer if task == "binary" else load_wine)(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = scale(X)[order], y[order]
    return X[:n], y[:n], X[n : n + 20]


def _estimator(task):
    return TelescopingMLPRegressor if task == "regression" else TelescopingMLPClassifier


class _Residual(nn.Module):
    """Not a Sequential: only the torch.func path can handle it."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.first = nn.Linear(n_features, 12)
        self.second = nn.Linear(12, n_outputs)

    def forward(self, x):
        h = torch.tanh(self.first(x))
        return self.second(h + 0.5 * h**2)


# ---------------------------------------------------------------------------------------
# Acceptance 1-2: the books balance for every optimiser, task and telescope order
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_identity_holds_for_every_optimizer(task, optimizer):
    X, y, X_new = _data(task)
    lr = 0.05 if optimizer in ("sgd", "momentum", "nesterov") else 0.01
    model = _estimator(task)(
        (16, 16), optimizer=optimizer, learning_rate=lr, weight_decay=1e-2,
        batch_size=16, max_steps=30, n_checkpoints=3, random_state=0,
    ).fit(X, y)
    for order in ("first_order", "trapezoid"):
        view = model.kernel_view(X_new, order=order)
        assert isinstance(view, KernelView)
        assert view.identity_error() < 1e-5
        # the network moved and the contributions carry it: the check is not vacuous
        moved = np.abs(view.prediction - view.offset).max()
        assert moved > 1e-2
        assert np.abs(view.contributions.sum(axis=1)).max() > 1e-3 * moved
        # weight decay (and momentum) end up unattributed
        assert np.abs(view.unattributed).max() > 0
        n_classes = len(np.unique(y))
        if task == "multiclass":
            assert view.contributions.shape == (20, 60, n_classes)
            assert view.offset.shape == (20, n_classes)
        else:
            assert view.contributions.shape == (20, 60)
        # same telescoping model, JVPs batched differently: equal up to float32 rounding
        np.testing.assert_allclose(
            view.prediction, model.predict_telescoping(X_new, order=order),
            rtol=1e-5, atol=1e-6,
        )


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_plain_sgd_leaves_nothing_unattributed(task):
    X, y, X_new = _data(task)
    model = _estimator(task)(
        (16,), optimizer="sgd", learning_rate=0.1, batch_size=16, max_steps=30,
        n_checkpoints=2, random_state=1,
    ).fit(X, y)
    view = model.kernel_view(X_new)
    assert np.abs(view.unattributed).max() <= 1e-7
    assert view.identity_error() < 1e-5
    # no residual to hide behind: the contributions alone rebuild the telescoping model
    np.testing.assert_allclose(
        view.offset + view.contributions.sum(axis=1), view.prediction,
        atol=1e-5 * np.abs(view.prediction).max(),
    )


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_functional_path_balances_the_books(task):
    X, y, X_new = _data(task)
    Net = TelescopingNetRegressor if task == "regression" else TelescopingNetClassifier
    model = Net(
        _Residual, optimizer="adamw", learning_rate=0.01, weight_decay=1e-2,
        batch_size=16, max_steps=20, n_checkpoints=2, random_state=0,
    ).fit(X, y)
    assert model.training_config_.kernel_method == "functional"
    view = model.kernel_view(X_new, order="trapezoid")
    assert view.identity_error() < 1e-5
    assert np.abs(view.prediction - view.offset).max() > 1e-2


# ---------------------------------------------------------------------------------------
# Acceptance 3: closed forms for networks linear (and quadratic) in their parameters
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_linear_network_first_order_telescoping_is_exact(task, dtype):
    X, y, X_new = _data(task)
    model = _estimator(task)(
        (), optimizer="sgd", learning_rate=0.05, batch_size=16, max_steps=100,
        dtype=dtype, random_state=0,
    ).fit(X, y)
    exact = model.predict(X_new) if task == "regression" else model.decision_function(X_new)
    telescoped = model.predict_telescoping(X_new, order="first_order")
    assert np.abs(telescoped - exact).max() <= 1e-5 * np.abs(exact).max()
    np.testing.assert_allclose(model.predict_linearized(X_new), exact, rtol=1e-9, atol=1e-9)
    fidelity = model.telescoping_fidelity(X_new)
    assert set(fidelity) == {"first_order", "trapezoid", "linearized"}
    assert max(fidelity.values()) < 1e-5


def test_trapezoid_is_exact_for_a_network_quadratic_in_its_parameters():
    X, y, X_new = _data("regression")
    # identity activation, two layers: f = W2 (W1 x + b1) + b2 is quadratic in theta
    model = TelescopingMLPRegressor(
        (8,), activation="identity", optimizer="adam", learning_rate=0.05,
        batch_size=16, max_steps=60, dtype="float64", random_state=0,
    ).fit(X, y)
    fidelity = model.telescoping_fidelity(X_new)
    assert fidelity["trapezoid"] < 1e-10
    assert fidelity["first_order"] > 1e-4


# ---------------------------------------------------------------------------------------
# Acceptance 4: fidelity on diabetes (docs/design.md §1.1)
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fidelity_on_diabetes_matches_the_design_figures():
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    y_train = (y_train - y_train.mean()) / y_train.std()

    def fidelity(optimizer, lr, weight_decay):
        model = TelescopingMLPRegressor(
            (256, 256), optimizer=optimizer, learning_rate=lr, weight_decay=weight_decay,
            batch_size=64, max_steps=2000, random_state=0,
        ).fit(X_train, y_train)
        return model.telescoping_fidelity(X_test)

    small = fidelity("sgd", 0.01, 0.0)
    assert small["first_order"] < 0.1
    assert small["first_order"] * 10 <= small["linearized"]
    large = fidelity("sgd", 0.05, 0.0)
    assert large["trapezoid"] * 10 <= large["first_order"]
    adamw = fidelity("adamw", 1e-3, 1e-2)
    assert adamw["trapezoid"] * 10 <= adamw["first_order"]


# ---------------------------------------------------------------------------------------
# Acceptance 8 and docs/design.md §1.5: closed forms of the smoother and of the kernel norms
# ---------------------------------------------------------------------------------------


def test_smoother_and_effective_parameters_match_gradient_descent_closed_form():
    X, y, X_new = _data("regression", n=40)
    gamma, steps = 0.05, 25
    model = TelescopingMLPRegressor(
        (), optimizer="sgd", learning_rate=gamma, batch_size=None, max_steps=steps,
        dtype="float64", random_state=0,
    ).fit(X, y)
    n = len(X)
    kernel = X @ X.T + 1.0  # J = [x, 1]: the constant tangent kernel of a linear model
    step = np.eye(n) - gamma * kernel / n
    S_train = np.eye(n) - np.linalg.matrix_power(step, steps)
    powers = sum(np.linalg.matrix_power(step, t) for t in range(steps))
    S_test = gamma / n * (X_new @ X.T + 1.0) @ powers

    train_view = model.kernel_view(X, smoother=True)
    test_view = model.kernel_view(X_new, smoother=True)
    np.testing.assert_allclose(train_view.smoother, S_train, atol=1e-5 * np.abs(S_train).max())
    np.testing.assert_allclose(test_view.smoother, S_test, atol=1e-5 * np.abs(S_test).max())
    p_train = np.sum(S_train**2)
    p_test = n / len(X_new) * np.sum(S_test**2)
    assert train_view.metadata["effective_parameters"] == pytest.approx(p_train, rel=1e-5)
    assert test_view.metadata["effective_parameters_train"] == pytest.approx(p_train, rel=1e-5)
    assert test_view.metadata["effective_parameters"] == pytest.approx(p_test, rel=1e-5)
    assert 1.0 < p_train < X.shape[1] + 1  # at most the linear model's 11 parameters
    # the smoother explains the prediction: f_T(x) = f_0(x) + s_T(x) (y - f_0(X_train))
    initial_train = model.kernel_view(X, smoother=False).offset
    np.testing.assert_allclose(
        test_view.offset + test_view.smoother @ (y - initial_train),
        model.predict(X_new), rtol=1e-9, atol=1e-9,
    )


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_kernel_norms_of_a_linear_model_have_their_closed_form(norm):
    X, y, X_new = _data("multiclass")
    gamma, n, n_classes = 0.1, len(X), 3
    model = TelescopingMLPClassifier(
        (), optimizer="sgd", learning_rate=gamma, batch_size=None, max_steps=10,
        n_checkpoints=4, dtype="float64", random_state=0,
    ).fit(X, y)
    view = model.kernel_view(X_new, norm=norm)
    # each block is (gamma / n) (x . x_i + 1) I_K, whose Frobenius norm is sqrt(K) |.|
    weights = gamma / n * np.abs(X_new @ X.T + 1.0) * np.sqrt(n_classes)
    expected = weights.sum(axis=1) if norm == "l1" else np.sqrt((weights**2).sum(axis=1))
    assert view.norm == norm
    np.testing.assert_array_equal(view.checkpoints, [1, 4, 7, 10])
    for column in range(4):
        np.testing.assert_allclose(view.kernel_norms[:, column], expected, rtol=1e-10)
    train_weights = gamma / n * np.abs(X @ X.T + 1.0) * np.sqrt(n_classes)
    train_expected = (
        train_weights.sum(axis=1) if norm == "l1" else np.sqrt((train_weights**2).sum(axis=1))
    )
    np.testing.assert_allclose(view.train_kernel_norms[:, -1], train_expected, rtol=1e-10)

    sampled = model.kernel_view(X_new, norm=norm, norm_sample_size=20, random_state=3)
    indices = sampled.metadata["norm_sample_indices"]
    assert len(indices) == 20 and sampled.metadata["norm_scale"] == pytest.approx(n / 20)
    part = weights[:, indices]
    estimate = (
        n / 20 * part.sum(axis=1) if norm == "l1" else np.sqrt(n / 20 * (part**2).sum(axis=1))
    )
    np.testing.assert_allclose(sampled.kernel_norms[:, 0], estimate, rtol=1e-10)


def test_kernel_norms_are_largest_far_from_the_training_data():
    X, y, X_new = _data("regression")
    model = TelescopingMLPRegressor(
        (32, 32), optimizer="sgd", learning_rate=0.05, batch_size=16, max_steps=40,
        random_state=0,
    ).fit(X, y)
    far = X_new * 25.0
    view_near, view_far = model.kernel_view(X_new), model.kernel_view(far)
    # the tangent kernel is unbounded: points far from the data get far larger weights
    assert np.median(view_far.max_kernel_norms) > 10 * np.median(view_near.max_kernel_norms)
    assert view_near.train_kernel_norms.shape == (60, 10)
    assert (view_near.kernel_norms > 0).all()


# ---------------------------------------------------------------------------------------
# Optimisers: the closed forms are torch.optim, and each update splits exactly
# ---------------------------------------------------------------------------------------


def _torch_optimizer(name, params, config):
    if name == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=config.learning_rate, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=name == "nesterov",
        )
    Adam = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return Adam(
        params, lr=config.learning_rate, betas=(config.beta_1, config.beta_2),
        eps=config.epsilon, weight_decay=config.weight_decay,
    )


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_closed_form_optimizers_follow_torch_optim(name):
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=generator, dtype=torch.float64),
             torch.randn(3, generator=generator, dtype=torch.float64)]
    target = [torch.randn_like(p) for p in start]
    config = OptimizerConfig(
        name, learning_rate=0.05, weight_decay=0.02, momentum=0.8, beta_1=0.85,
        beta_2=0.99, epsilon=1e-6,
    )

    def gradient(p, q):
        return p**3 - q

    reference = [p.clone().requires_grad_(True) for p in start]
    optimizer = _torch_optimizer(name, reference, config)
    ours = tuple(p.clone() for p in start)
    closed_form = ClosedFormOptimizer(config, ours)
    for t in range(1, 16):
        for p, q in zip(reference, target):
            p.grad = gradient(p.detach(), q)
        optimizer.step()
        grads = tuple(gradient(p, q) for p, q in zip(ours, target))
        step = closed_form.step(ours, grads, t)
        for index, (p, g) in enumerate(zip(ours, grads)):
            coefficient = (
                step.coefficient if isinstance(step.coefficient, float)
                else step.coefficient[index]
            )
            rest = 0.0 if step.rest is None else step.rest[index]
            torch.testing.assert_close(
                step.update[index], -coefficient * g + rest, rtol=1e-12, atol=1e-15
            )
        ours = tuple(p + u for p, u in zip(ours, step.update))
        for p, r in zip(ours, reference):
            torch.testing.assert_close(p, r.detach(), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------------------------------
# The two differentiation routes agree end to end
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_functional_route_reproduces_the_structured_view(optimizer):
    X, y, X_new = _data("multiclass")
    settings = dict(
        optimizer=optimizer, learning_rate=0.02, batch_size=16, max_steps=15,
        n_checkpoints=2, dtype="float64", random_state=4,
    )
    mlp = TelescopingMLPClassifier((10,), activation="tanh", **settings).fit(X, y)
    initial = build_mlp(X.shape[1], (10,), 3, "tanh", seed=0, dtype=torch.float64)
    with torch.no_grad():
        for parameter, value in zip(initial.parameters(), mlp.initial_parameters_):
            parameter.copy_(torch.from_numpy(value))
    net = TelescopingNetClassifier(initial, kernel_method="functional", **settings).fit(X, y)
    assert net.training_config_.kernel_method == "functional"
    assert mlp.training_config_.kernel_method == "structured"
    # a window shorter than training: both routes credit lags 1..4 and leave the rest
    a = mlp.kernel_view(X_new, norm_sample_size=None, attribution_window=5)
    b = net.kernel_view(X_new, norm_sample_size=None, attribution_window=5)
    assert np.abs(a.unattributed).max() > 1e-3 * np.abs(a.prediction - a.offset).max()
    for field in ("offset", "contributions", "unattributed", "prediction", "kernel_norms",
                  "train_kernel_norms"):
        left, right = getattr(a, field), getattr(b, field)
        assert np.abs(left - right).max() <= 1e-5 * np.abs(left).max(), field
    auto = TelescopingNetClassifier(initial, **settings).fit(X, y)
    assert auto.training_config_.kernel_method == "structured"


# ---------------------------------------------------------------------------------------
# Determinism, replay and persistence
# ---------------------------------------------------------------------------------------


def test_same_seed_same_bits_and_global_random_state_untouched():
    X, y, X_new = _data("binary")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = TelescopingMLPClassifier((16,), max_steps=20, batch_size=8, random_state=7).fit(X, y)
    b = TelescopingNetClassifier(
        _Residual, max_steps=20, batch_size=8, random_state=7
    ).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    again = TelescopingMLPClassifier((16,), max_steps=20, batch_size=8, random_state=7).fit(X, y)
    for p, q in zip(a.module_.parameters(), again.module_.parameters()):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(a.loss_curve_, again.loss_curve_)
    other = TelescopingMLPClassifier((16,), max_steps=20, batch_size=8, random_state=8).fit(X, y)
    assert not np.array_equal(a.decision_function(X_new), other.decision_function(X_new))
    view_a, view_again = a.kernel_view(X_new), again.kernel_view(X_new)
    np.testing.assert_array_equal(view_a.contributions, view_again.contributions)
    np.testing.assert_array_equal(view_a.kernel_norms, view_again.kernel_norms)
    assert b.kernel_view(X_new).metadata["replay_max_abs_difference"] == 0.0


def test_kernel_view_survives_pickling_and_works_on_unseen_points():
    X, y, X_new = _data("regression")
    model = TelescopingMLPRegressor(
        (16, 16), max_steps=25, batch_size=16, random_state=0
    ).fit(X, y)
    before = model.kernel_view(X_new)
    loaded = pickle.loads(pickle.dumps(model))
    after = loaded.kernel_view(X_new)
    for field in ("offset", "contributions", "unattributed", "prediction", "kernel_norms"):
        np.testing.assert_array_equal(getattr(before, field), getattr(after, field))
    assert after.metadata["replay_max_abs_difference"] == 0.0
    # the telescoping model tracks the trained network on points fit never saw
    np.testing.assert_allclose(after.prediction, model.predict(X_new), atol=0.05)
    assert before.smoother is None  # Adam: the smoother is costly, so "auto" skips it
    assert "skipped" in before.metadata["smoother"]


def test_replay_that_does_not_reproduce_fit_raises():
    X, y, X_new = _data("regression")
    model = TelescopingMLPRegressor((8,), max_steps=10, random_state=0).fit(X, y)
    with torch.no_grad():
        model.module_[0].weight[0, 0] += 0.5
    with pytest.raises(ReplayDivergenceError, match="did not reproduce the fitted parameters"):
        model.kernel_view(X_new)
    with pytest.raises(ReplayDivergenceError):
        model.predict_telescoping(X_new)


def test_set_params_after_fit_does_not_change_the_replayed_run():
    X, y, X_new = _data("regression")
    model = TelescopingMLPRegressor((8,), max_steps=10, random_state=0).fit(X, y)
    before = model.predict_telescoping(X_new)
    model.set_params(learning_rate=0.5, batch_size=3, optimizer="sgd")
    np.testing.assert_array_equal(model.predict_telescoping(X_new), before)


# ---------------------------------------------------------------------------------------
# Acceptance 7: bad inputs
# ---------------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors():
    X, y, X_new = _data("regression")
    model = TelescopingMLPRegressor((8,), max_steps=5, random_state=0)
    with pytest.raises(NotFittedError):
        model.kernel_view(X_new)
    with pytest.raises(NotFittedError):
        model.predict_telescoping(X_new)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.fit(bad, y)
    model.fit(X, y)
    with pytest.raises(ValueError, match="infinity"):
        model.predict(bad)
    with pytest.raises(ValueError, match="NaN"):
        model.kernel_view(np.where(np.isinf(bad), np.nan, bad))
    expected = "X has 3 features, but TelescopingMLPRegressor is expecting 10"
    with pytest.raises(ValueError, match=expected):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        model.kernel_view(X[:, :3])
    with pytest.raises(ValueError, match="'norm' parameter of TelescopingMLPRegressor.kernel_view"):
        model.kernel_view(X_new, norm="l3")
    with pytest.raises(ValueError, match="'order' parameter of .*predict_telescoping"):
        model.predict_telescoping(X_new, order="second_order")
    with pytest.raises(ValueError, match="'norm_sample_size' parameter"):
        model.kernel_view(X_new, norm_sample_size=0)
    with pytest.raises(ValueError, match="max_smoother_train"):
        model.kernel_view(X_new, smoother=True, max_smoother_train=10)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(optimizer="rmsprop"), ValueError, "'optimizer' parameter .* must be a str among"),
        (dict(learning_rate=-0.1), ValueError, "'learning_rate' parameter .* range"),
        (dict(learning_rate=float("nan")), ValueError, "'learning_rate' parameter"),
        (dict(learning_rate=float("inf")), ValueError, "'learning_rate' parameter"),
        (dict(momentum=1.0), ValueError, "'momentum' parameter .* range"),
        (dict(batch_size=0), ValueError,
         r"'batch_size' parameter .* must be an int in the range \[1, inf\) or None"),
        (dict(max_steps=2.5), ValueError, "'max_steps' parameter .* must be an int"),
        (dict(telescope="second"), ValueError, "'telescope' parameter"),
        (dict(dtype="float16"), ValueError, "'dtype' parameter"),
        (dict(device="nowhere"), ValueError, "device must be a torch device"),
        (dict(hidden_layer_sizes=(4, 0)), ValueError, "'hidden_layer_sizes' parameter"),
        (dict(activation="swish"), ValueError, "'activation' parameter"),
    ],
)
def test_bad_hyperparameters_are_named(params, error, message):
    X, y, _ = _data("regression")
    with pytest.raises(error, match=message):
        TelescopingMLPRegressor(**{"max_steps": 2, **params}).fit(X, y)


def test_bad_modules_give_clear_errors():
    X, y, _ = _data("binary")
    with pytest.raises(ValueError, match="structured kernel path.*Sequential"):
        TelescopingNetClassifier(_Residual, kernel_method="structured", max_steps=2).fit(X, y)
    with pytest.raises(TypeError, match="'module' parameter of TelescopingNetClassifier"):
        TelescopingNetClassifier("mlp", max_steps=2).fit(X, y)
    with pytest.raises(TypeError, match="module factory must return a torch.nn.Module"):
        TelescopingNetClassifier(lambda d, k: None, max_steps=2).fit(X, y)
    wrong_width = nn.Sequential(nn.Linear(X.shape[1], 2))
    with pytest.raises(ValueError, match=r"outputs of shape \(n, 1\)"):
        TelescopingNetClassifier(wrong_width, max_steps=2).fit(X, y)
    with pytest.raises(ValueError, match="'kernel_method' parameter of TelescopingNetClassifier"):
        TelescopingNetClassifier(_Residual, kernel_method="fast", max_steps=2).fit(X, y)
    model = TelescopingNetClassifier(_Residual, max_steps=2).fit(X, y)
    with pytest.raises(ValueError, match="smoother=True needs squared loss"):
        model.kernel_view(X[:3], smoother=True)
    with pytest.raises(ValueError, match="at least 2 classes"):
        TelescopingMLPClassifier(max_steps=2).fit(X, np.zeros(len(X)))


def test_lazy_layers_are_initialised_from_the_seed():
    X, y, X_new = _data("regression")
    lazy = nn.Sequential(nn.LazyLinear(8), nn.Tanh(), nn.Linear(8, 1))
    torch.manual_seed(0)
    a = TelescopingNetRegressor(lazy, max_steps=5, random_state=3).fit(X, y)
    torch.manual_seed(1)
    b = TelescopingNetRegressor(lazy, max_steps=5, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict(X_new), b.predict(X_new))
    assert isinstance(lazy[0].weight, nn.parameter.UninitializedParameter)  # untouched
    assert a.training_config_.kernel_method == "structured"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_training_and_new_rows_give_the_separate_views(optimizer):
    X, y, X_new = _data("regression", n=40)
    model = TelescopingMLPRegressor(
        (12,), optimizer=optimizer, learning_rate=0.02, batch_size=8, max_steps=12,
        n_checkpoints=3, random_state=0,
    ).fit(X, y)
    stacked = model.kernel_view(np.vstack([X, X_new]), smoother=True)
    train = model.kernel_view(X, smoother=True)
    new = model.kernel_view(X_new, smoother=True)
    for field in ("contributions", "kernel_norms", "smoother", "prediction"):
        both = np.concatenate([getattr(train, field), getattr(new, field)])
        np.testing.assert_allclose(getattr(stacked, field), both, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stacked.train_kernel_norms, new.train_kernel_norms, rtol=1e-5)
    np.testing.assert_allclose(stacked.train_kernel_norms, train.kernel_norms, rtol=1e-5)
    assert stacked.metadata["effective_parameters_train"] == pytest.approx(
        new.metadata["effective_parameters_train"], rel=1e-5
    )
