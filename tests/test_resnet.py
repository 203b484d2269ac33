"""The tabular ResNet: its structured route against torch.func, the KernelView identity,
reproducibility, bad parameters, the registry entry and the estimator contract.

docs/design.md §1.1-1.3 (the identity) and §1.7 (structured kernels).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_wine
from sklearn.preprocessing import scale
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from tabscope.models._functional import FunctionalNetwork
from tabscope.models._resnet import TabularResNet, build_resnet
from tabscope.models._structured_resnet import StructuredResNet
from tabscope.models.registry import get_model_spec, make_estimator
from tabscope.models.resnet import TelescopingResNetClassifier, TelescopingResNetRegressor
from tabscope.models.tangent_kernels import (
    UnsupportedModuleError,
    make_network,
    tangent_kernel,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

SMALL = dict(n_blocks=2, d_main=12, d_hidden=20)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _perturbed_resnet(n_outputs: int) -> TabularResNet:
    """A float64 ResNet whose LayerNorms are away from gamma = 1, beta = 0."""
    module = build_resnet(5, n_outputs, **SMALL, seed=3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module


def _points(n, seed):
    return torch.randn(n, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("diagonal", [False, True], ids=["scalar", "diagonal"])
def test_structured_kernel_equals_functional(n_outputs, diagonal):
    module = _perturbed_resnet(n_outputs)
    X1, X2 = _points(9, 0), _points(6, 1)
    preconditioner = None
    if diagonal:
        generator = torch.Generator().manual_seed(5)
        preconditioner = [
            torch.rand(p.shape, generator=generator, dtype=p.dtype) for p in module.parameters()
        ]
    structured = tangent_kernel(module, X1, X2, kernel_method="structured",
                                preconditioner=preconditioner)
    functional = tangent_kernel(module, X1, X2, kernel_method="functional",
                                preconditioner=preconditioner)
    error = float((structured - functional).abs().max() / functional.abs().max())
    assert error <= 1e-6


def test_structured_kernel_in_small_blocks_is_the_same():
    module = _perturbed_resnet(2)
    X1, X2 = _points(9, 0), _points(7, 1)
    whole = tangent_kernel(module, X1, X2, kernel_method="structured")
    blocks = tangent_kernel(module, X1, X2, kernel_method="structured", max_block_elements=40)
    torch.testing.assert_close(blocks, whole, rtol=1e-12, atol=1e-12)


def test_structured_passes_match_the_module_and_torch_func():
    module = _perturbed_resnet(2)
    X = _points(8, 2)
    network = StructuredResNet.from_module(module)
    functional = FunctionalNetwork(module, 2)
    params = tuple(p.detach() for p in module.parameters())
    point = network.evaluate(params, X)
    torch.testing.assert_close(point.output, module(X), rtol=1e-12, atol=1e-12)
    generator = torch.Generator().manual_seed(6)
    tangents = [
        tuple(torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params)
        for _ in range(3)
    ]
    torch.testing.assert_close(
        point.jvp(tangents), functional.jvp(params, X, tangents), rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(
        point.factors.rows(slice(0, 8)),
        functional.evaluate(params, X).factors.rows(slice(0, 8)),
        rtol=1e-10, atol=1e-12,
    )


def test_structured_loss_gradient_is_autograd_gradient():
    from tabscope.models._losses import make_loss

    module = _perturbed_resnet(1)
    X, Y = _points(10, 7), _points(10, 8)[:, :1]
    network = StructuredResNet.from_module(module)
    params = tuple(p.detach() for p in module.parameters())
    record = network.loss_and_gradients(params, X, Y, make_loss("regression"))
    reference = FunctionalNetwork(module, 1).loss_and_gradients(
        params, X, Y, make_loss("regression")
    )
    for mine, theirs in zip(record.gradients, reference.gradients):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


def test_auto_takes_the_structured_resnet_route_and_other_modules_do_not():
    module = build_resnet(4, 1, **SMALL, seed=0)
    network, name = make_network(module, 1, "auto")
    assert isinstance(network, StructuredResNet) and name == "structured"
    with pytest.raises(UnsupportedModuleError, match="TabularResNet"):
        StructuredResNet.from_module(nn.Sequential(nn.Linear(4, 1)))


def _regression(n=80):
    X, y = load_diabetes(return_X_y=True)
    return scale(X)[:n], y[:n], scale(X)[n : n + 15]


@pytest.mark.parametrize("kernel_method", ["structured", "functional"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adamw"])
def test_kernel_view_identity(kernel_method, optimizer):
    X, y, X_test = _regression()
    model = TelescopingResNetRegressor(
        **SMALL, kernel_method=kernel_method, optimizer=optimizer,
        learning_rate=1e-3 if optimizer == "adamw" else 1e-2, batch_size=32, max_steps=25,
        random_state=0,
    ).fit(X, y)
    assert model.training_config_.kernel_method == kernel_method
    view = model.kernel_view(X_test, norm_sample_size=20)
    view.check_identity(rtol=1e-5)
    if optimizer == "sgd":
        assert np.all(view.unattributed == 0.0)
    else:
        assert np.abs(view.unattributed).max() > 0  # momentum and AdamW carry memory


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_routes_give_the_same_view(optimizer):
    """Trained in float64 through either route, the two lenses agree closely."""
    X, y, X_test = _regression(60)
    views = {}
    for kernel_method in ("structured", "functional"):
        model = TelescopingResNetRegressor(
            **SMALL, kernel_method=kernel_method, optimizer=optimizer, dtype="float64",
            learning_rate=1e-2 if optimizer == "sgd" else 1e-3, batch_size=20, max_steps=15,
            random_state=1,
        ).fit(X, y)
        views[kernel_method] = model.kernel_view(X_test[:6], norm_sample_size=None)
    s, f = views["structured"], views["functional"]
    scale_ = np.abs(f.contributions).max()
    assert np.abs(s.contributions - f.contributions).max() <= 1e-8 * scale_
    np.testing.assert_allclose(s.kernel_norms, f.kernel_norms, rtol=1e-8)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "multiclass"])
def test_classifier_kernel_view_identity(binary):
    X, y = load_wine(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = scale(X)[order], y[order]
    if binary:
        X, y = X[y < 2], y[y < 2]
    model = TelescopingResNetClassifier(**SMALL, batch_size=32, max_steps=20, random_state=0)
    model.fit(X[:60], y[:60])
    view = model.kernel_view(X[60:70], norm_sample_size=20)
    view.check_identity(rtol=1e-5)
    assert view.contributions.shape == ((10, 60) if binary else (10, 60, 3))


def test_same_seed_same_bits():
    X, y, X_test = _regression()
    fits = [
        TelescopingResNetRegressor(**SMALL, max_steps=20, random_state=7).fit(X, y)
        for _ in range(2)
    ]
    assert np.array_equal(fits[0].predict(X_test), fits[1].predict(X_test))
    other = TelescopingResNetRegressor(**SMALL, max_steps=20, random_state=8).fit(X, y)
    assert not np.array_equal(other.predict(X_test), fits[0].predict(X_test))


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_blocks": -1}, "n_blocks"),
        ({"d_main": 0}, "d_main"),
        ({"d_hidden": 2.5}, "d_hidden"),
        ({"kernel_method": "jacobian"}, "kernel_method"),
    ],
)
def test_bad_parameters_name_the_argument(params, name):
    X, y, _ = _regression(20)
    with pytest.raises((ValueError, TypeError), match=name):
        TelescopingResNetRegressor(**params).fit(X, y)


def test_registry_entry():
    spec = get_model_spec("resnet")
    assert (spec.preprocessing, spec.role) == ("network", "network")
    assert isinstance(make_estimator("resnet", "regression", random_state=3),
                      TelescopingResNetRegressor)
    classifier = make_estimator("resnet", "classification", {"n_blocks": 1})
    assert isinstance(classifier, TelescopingResNetClassifier) and classifier.n_blocks == 1
    with pytest.raises(ValueError, match="d_main"):
        make_estimator("resnet", "regression", {"d_main": -3})


@pytest.mark.slow
@parametrize_with_checks(
    [
        TelescopingResNetRegressor(n_blocks=1, d_main=32, d_hidden=64, max_steps=50),
        TelescopingResNetClassifier(n_blocks=1, d_main=32, d_hidden=64, max_steps=50),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
