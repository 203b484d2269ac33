"""Tangent kernels: the structured factorisation against torch.func and against autograd."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jvp

from tabscope.models.tangent_kernels import (
    FunctionalNetwork,
    StructuredMLP,
    UnsupportedModuleError,
    elementwise_activation,
    make_network,
    tangent_kernel,
)
from tabscope.vocabulary import KernelMethod

# torch's first forward-mode call loads jit-scripted decompositions, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@pytest.fixture(autouse=True)
def _one_thread():
    # Two shared cores: torch's spinning worker threads make small matmuls far slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mlp(widths, activation, *, seed=0, dtype=torch.float64, bias=True):
    torch.manual_seed(seed)
    layers = []
    for position, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype))
        if position < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _relative(a, b):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max())


def _reference_kernel(module, X1, X2, preconditioner=None):
    """J(X1) P J(X2)^T from full Jacobians through torch.autograd.functional."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach() for p in module.parameters())

    def flat_jacobian(X):
        def f(*p):
            return functional_call(module, dict(zip(names, p)), (X,)).reshape(X.shape[0], -1)

        jac = torch.autograd.functional.jacobian(f, params)
        n, k = X.shape[0], jac[0].shape[1]
        return torch.cat([j.reshape(n, k, -1) for j in jac], dim=2)

    j1, j2 = flat_jacobian(X1), flat_jacobian(X2)
    if preconditioner is not None:
        j2 = j2 * torch.cat([c.reshape(-1) for c in preconditioner])
    return torch.einsum("akp,bqp->abkq", j1, j2)


ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Softplus,
               lambda: nn.LeakyReLU(0.1), lambda: nn.GELU(approximate="tanh")]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_derivatives_match_autograd(activation):
    module = activation()
    spec = elementwise_activation(module)
    z = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(module(z).sum(), z)
    torch.testing.assert_close(spec.derivative(z.detach()), grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(spec(z.detach()), module(z).detach())


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.GELU])
def test_structured_and_functional_kernels_agree(n_outputs, activation):
    module = _mlp([5, 16, 12, n_outputs], activation)
    X1 = torch.randn(9, 5, dtype=torch.float64)
    X2 = torch.randn(7, 5, dtype=torch.float64)
    structured = tangent_kernel(module, X1, X2, kernel_method="structured")
    functional = tangent_kernel(module, X1, X2, kernel_method="functional")
    reference = _reference_kernel(module, X1, X2)
    if n_outputs == 1:
        reference = reference[:, :, 0, 0]
    assert structured.shape == reference.shape
    assert _relative(structured, functional) < 1e-12
    assert _relative(structured, reference) < 1e-12
    # the kernel is not trivially symmetric in its blocks for K > 1, but K(X, X) is PSD
    gram = tangent_kernel(module, X1, kernel_method="structured")
    if n_outputs > 1:
        gram = gram.permute(0, 2, 1, 3).reshape(9 * n_outputs, 9 * n_outputs)
    assert float(torch.linalg.eigvalsh(gram).min()) > -1e-9


def test_float32_structured_and_functional_agree_to_1e5():
    module = _mlp([10, 256, 256, 1], nn.ReLU, dtype=torch.float32)
    X1, X2 = torch.randn(50, 10), torch.randn(80, 10)
    structured = tangent_kernel(module, X1, X2, kernel_method="structured")
    functional = tangent_kernel(module, X1, X2, kernel_method="functional")
    assert _relative(structured, functional) < 1e-5


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_preconditioned_kernels_agree(n_outputs):
    module = _mlp([4, 8, 6, n_outputs], nn.Tanh, bias=True)
    generator = torch.Generator().manual_seed(3)
    preconditioner = [
        torch.rand(p.shape, generator=generator, dtype=torch.float64) + 0.1
        for p in module.parameters()
    ]
    X1, X2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    structured = tangent_kernel(module, X1, X2, kernel_method="structured", preconditioner=preconditioner)
    functional = tangent_kernel(module, X1, X2, kernel_method="functional", preconditioner=preconditioner)
    reference = _reference_kernel(module, X1, X2, preconditioner)
    if n_outputs == 1:
        reference = reference[:, :, 0, 0]
    assert _relative(structured, reference) < 1e-12
    assert _relative(functional, reference) < 1e-12
    plain = tangent_kernel(module, X1, X2, kernel_method="structured")
    assert _relative(plain, structured) > 1e-2  # the preconditioner does change it


def test_layers_without_bias_and_nested_sequential():
    inner = nn.Sequential(nn.Linear(3, 7, bias=False, dtype=torch.float64), nn.Tanh())
    module = nn.Sequential(inner, nn.Identity(), nn.Linear(7, 2, dtype=torch.float64))
    X = torch.randn(5, 3, dtype=torch.float64)
    structured = tangent_kernel(module, X, kernel_method="structured")
    assert _relative(structured, _reference_kernel(module, X, X)) < 1e-12


def test_structured_jvp_matches_torch_func():
    module = _mlp([4, 10, 10, 3], nn.SiLU)
    network = StructuredMLP.from_module(module)
    params = tuple(p.detach() for p in module.parameters())
    tangents = [tuple(torch.randn_like(p) for p in params) for _ in range(2)]
    X = torch.randn(6, 4, dtype=torch.float64)
    ours = network.evaluate(params, X).jvp(tangents)
    functional = FunctionalNetwork(module, 3)
    for index, tangent in enumerate(tangents):
        _, expected = jvp(lambda *p: functional.forward(p, X), params, tangent)
        torch.testing.assert_close(ours[index], expected, rtol=1e-12, atol=1e-12)


def test_structured_training_gradient_matches_autograd():
    module = _mlp([4, 10, 10, 2], nn.ReLU)
    network = StructuredMLP.from_module(module)
    params = tuple(p.detach() for p in module.parameters())
    X = torch.randn(8, 4, dtype=torch.float64)
    Y = torch.randn(8, 2, dtype=torch.float64)

    from tabscope.models._losses import SquaredError

    record = network.loss_and_gradients(params, X, Y, SquaredError())
    loss = 0.5 * ((module(X) - Y) ** 2).sum(dim=1).mean()
    expected = torch.autograd.grad(loss, list(module.parameters()))
    for ours, reference in zip(record.gradients, expected):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
    assert float(record.loss) == pytest.approx(float(loss.detach()), rel=1e-12)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 5, dtype=torch.float64)
        self.second = nn.Linear(5, 1, dtype=torch.float64)

    def forward(self, x):
        h = torch.tanh(self.first(x))
        return self.second(h + h**2).squeeze(-1)


def test_unsupported_module_is_rejected_by_structured_path_only():
    module = _Residual()
    X = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(UnsupportedModuleError, match="structured kernel path.*Sequential"):
        tangent_kernel(module, X, kernel_method="structured")
    assert issubclass(UnsupportedModuleError, ValueError)
    kernel = tangent_kernel(module, X, kernel_method="auto")
    assert _relative(kernel, _reference_kernel(module, X, X)[:, :, 0, 0]) < 1e-12
    network, route = make_network(module, 1, "auto")
    assert route == KernelMethod.FUNCTIONAL and isinstance(network, FunctionalNetwork)
    with pytest.warns(FutureWarning, match="kernel_method"):
        renamed = tangent_kernel(module, X, method="auto")
    assert torch.equal(renamed, kernel)


@pytest.mark.parametrize(
    "module, message",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.Hardtanh(), nn.Linear(4, 1)), r"'1' \(Hardtanh\)"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 1)), "first layer"),
        (
            nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 1)),
            "second activation",
        ),
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), "buffers"),
    ],
)
def test_structured_path_names_what_it_cannot_handle(module, message):
    with pytest.raises(UnsupportedModuleError, match=message):
        StructuredMLP.from_module(module)


def test_tangent_kernel_rejects_bad_inputs():
    module = _mlp([3, 4, 1], nn.ReLU)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        tangent_kernel("not a module", torch.zeros(2, 3))
    with pytest.raises(ValueError, match="X1 must be a 2-D"):
        tangent_kernel(module, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="'kernel_method' parameter of tangent_kernel"):
        tangent_kernel(module, torch.zeros(2, 3, dtype=torch.float64), kernel_method="fast")
    with pytest.raises(ValueError, match="preconditioner must hold one tensor per parameter"):
        tangent_kernel(
            module, torch.zeros(2, 3, dtype=torch.float64), preconditioner=[torch.ones(1)]
        )


def test_blocks_bound_memory_without_changing_values():
    from tabscope.models.tangent_kernels import assemble_kernel

    module = _mlp([4, 9, 9, 2], nn.Tanh)
    network = StructuredMLP.from_module(module)
    params = tuple(p.detach() for p in module.parameters())
    X1, X2 = torch.randn(13, 4, dtype=torch.float64), torch.randn(11, 4, dtype=torch.float64)
    left = network.evaluate(params, X1).factors
    right = network.evaluate(params, X2).factors
    diagonal = tuple(torch.rand_like(p) for p in params)
    for coefficient in (0.3, diagonal):
        whole = assemble_kernel([(1.0, left)], right, coefficient)
        tiny = assemble_kernel([(1.0, left)], right, coefficient, max_elements=50)
        torch.testing.assert_close(whole, tiny, rtol=1e-12, atol=1e-12)
    functional = FunctionalNetwork(module, 2)
    f_left = functional.evaluate(params, X1).factors
    f_right = functional.evaluate(params, X2).factors
    torch.testing.assert_close(
        assemble_kernel([(1.0, f_left)], f_right, diagonal, max_elements=100),
        assemble_kernel([(1.0, left)], right, diagonal),
        rtol=1e-12,
        atol=1e-12,
    )
    assert np.isfinite(whole.numpy()).all()
