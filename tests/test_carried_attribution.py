"""Crediting the optimiser's memory to examples (docs/design.md §1.8), checked by brute force.

The reference here shares nothing with the lens but the batch order: it trains a copy of
the module with ``torch.optim``, takes every per-example gradient at every step with
``torch.func`` (``vmap(grad)``) and every evaluation Jacobian with ``jacrev``, and sums the
unrolled momentum (or Adam first moment) over the attribution window term by term.
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import scale
from torch.func import functional_call, grad, jacrev, vmap

from tabscope.models import TelescopingMLPRegressor
from tabscope.models._carried import default_attribution_window
from tabscope.models._training import BatchSchedule

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

MU, BETA_1, LR, DECAY = 0.8, 0.85, {"momentum": 0.05, "nesterov": 0.05, "adam": 0.02,
                                    "adamw": 0.02}, 0.02
N_TRAIN, BATCH, STEPS = 24, 8, 13


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data():
    X, y = load_diabetes(return_X_y=True)
    X, y = scale(X), scale(y)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:N_TRAIN + 7]


def _fit(optimizer, weight_decay):
    X, y, _ = _data()
    return TelescopingMLPRegressor(
        (6,), activation="tanh", optimizer=optimizer, learning_rate=LR[optimizer],
        weight_decay=weight_decay, momentum=MU, beta_1=BETA_1, batch_size=BATCH,
        max_steps=STEPS, telescope="first_order", dtype="float64", early_stopping=False,
        standardize_target=False, random_state=0,
    ).fit(X, y)


def _torch_optimizer(name, params, weight_decay):
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, lr=LR[name], momentum=MU, weight_decay=weight_decay,
                               nesterov=name == "nesterov")
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=LR[name], betas=(BETA_1, 0.999), eps=1e-8,
               weight_decay=weight_decay)


def _lag_weights(name, t, s, coefficient):
    """The weight of batch ``s``'s mean gradient in the update of step ``t``."""
    k = t - s
    if name == "momentum":
        return LR[name] * MU**k
    if name == "nesterov":
        return LR[name] * ((1 + MU) if k == 0 else MU ** (k + 1))
    return coefficient * BETA_1**k  # Adam: the step's diagonal preconditioner D_t


def _brute_force(model, name, weight_decay, window):
    """Contributions and unattributed residual of the first-order model, term by term."""
    X, y, X_eval = _data()
    X, y, X_eval = (torch.tensor(a, dtype=torch.float64) for a in (X, y, X_eval))
    module = copy.deepcopy(model.module_)
    with torch.no_grad():
        for p, start in zip(module.parameters(), model.initial_parameters_):
            p.copy_(torch.as_tensor(start))
    names = [n for n, _ in module.named_parameters()]
    optimizer = _torch_optimizer(name, list(module.parameters()), weight_decay)
    batches = iter(BatchSchedule(N_TRAIN, BATCH, model.training_config_.batch_seed,
                                 torch.device("cpu")))

    def flat(params):
        return torch.cat([p.reshape(-1) for p in params])

    def output(params_flat, x):
        params, start = {}, 0
        for n_, p in module.named_parameters():
            params[n_] = params_flat[start:start + p.numel()].reshape(p.shape)
            start += p.numel()
        return functional_call(module, params, (x[None],))[0, 0]

    def loss(params_flat, x, target):
        return 0.5 * (output(params_flat, x) - target) ** 2

    thetas, batch_index, coefficients = [flat(module.parameters()).detach().clone()], [], []
    for t in range(1, STEPS + 1):
        index = next(batches)
        batch_index.append(index)
        optimizer.zero_grad()
        prediction = module(X[index])[:, 0]
        (0.5 * (prediction - y[index]) ** 2).mean().backward()
        optimizer.step()
        thetas.append(flat(module.parameters()).detach().clone())
        if name in ("adam", "adamw"):
            state = [optimizer.state[p] for p in module.parameters()]
            v_hat = flat([s["exp_avg_sq"] for s in state]) / (1 - 0.999**t)
            coefficients.append(LR[name] * (1 - BETA_1) / (1 - BETA_1**t)
                                / (v_hat.sqrt() + 1e-8))
        else:
            coefficients.append(None)
    fitted = flat(model.module_.parameters()).detach()
    torch.testing.assert_close(thetas[-1], fitted, rtol=1e-10, atol=1e-12)

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    eval_jacobian = vmap(jacrev(output), in_dims=(None, 0))
    contributions = torch.zeros(len(X_eval), N_TRAIN, dtype=torch.float64)
    unattributed = torch.zeros(len(X_eval), dtype=torch.float64)
    mean_gradients = []
    for t in range(1, STEPS + 1):
        s_index = batch_index[t - 1]
        gradients = per_example(thetas[t - 1], X[s_index], y[s_index])  # (|B|, P)
        mean_gradients.append(gradients.mean(0))
        J = eval_jacobian(thetas[t - 1], X_eval)  # (m, P)
        credited = torch.zeros_like(thetas[0])
        for s in range(max(1, t - window + 1), t + 1):
            weight = _lag_weights(name, t, s, coefficients[t - 1])
            index = batch_index[s - 1]
            grads_s = per_example(thetas[s - 1], X[index], y[index])
            contributions[:, index] -= (J * weight) @ grads_s.T / len(index)
            credited -= weight * mean_gradients[s - 1]
        update = thetas[t] - thetas[t - 1]
        unattributed += J @ (update - credited)
    return contributions.numpy(), unattributed.numpy()


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adamw"])
@pytest.mark.parametrize("window", [1, 4, STEPS])
def test_contributions_equal_the_brute_force_sum_over_the_window(name, window):
    model = _fit(name, weight_decay=DECAY)
    view = model.kernel_view(_data()[2], attribution_window=window, kernel_norms=False)
    assert view.metadata["attribution_window"] == window
    contributions, unattributed = _brute_force(model, name, DECAY, window)
    scale = np.abs(contributions).max()
    assert scale > 1e-3  # the network moved: the comparison is not vacuous
    np.testing.assert_allclose(view.contributions, contributions, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(view.unattributed, unattributed, rtol=0, atol=1e-9 * scale)
    assert view.identity_error() < 1e-9


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adamw"])
def test_a_window_over_all_steps_leaves_only_weight_decay_unattributed(name):
    X_eval = _data()[2]
    plain = _fit(name, weight_decay=0.0).kernel_view(X_eval, attribution_window=STEPS)
    change = np.abs(plain.prediction - plain.offset).mean()
    assert np.abs(plain.unattributed).max() < 1e-10 * change
    assert plain.coverage == pytest.approx(1.0, abs=1e-10)

    decayed_model = _fit(name, weight_decay=DECAY)
    decayed = decayed_model.kernel_view(X_eval, attribution_window=STEPS)
    # what remains is weight decay's own term, by brute force
    _, decay_term = _brute_force(decayed_model, name, DECAY, STEPS)
    np.testing.assert_allclose(decayed.unattributed, decay_term, rtol=0, atol=1e-9 * change)
    assert np.abs(decay_term).max() > 1e-6 * change
    # the current-batch-only view leaves the memory unattributed: the window explains more
    current = decayed_model.kernel_view(X_eval, attribution_window=1)
    assert current.coverage < decayed.coverage


def test_default_window_and_bad_windows():
    assert default_attribution_window(0.9) == 66  # 0.9^66 < 1e-3 < 0.9^65
    assert 0.9**66 <= 1e-3 < 0.9**65
    assert default_attribution_window(0.0) == 1
    model = _fit("momentum", weight_decay=0.0)
    X_eval = _data()[2]
    view = model.kernel_view(X_eval)  # "auto": capped by the steps taken
    assert view.metadata["attribution_window"] == STEPS
    assert view.metadata["memory_outside_window"] == 0.0
    for bad in (0, -2, 1.5, "long"):
        with pytest.raises((ValueError, TypeError), match="attribution_window"):
            model.kernel_view(X_eval, attribution_window=bad)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_the_smoother_follows_the_optimizers_memory(name):
    """A linear model's prediction is ``f_0(x) + s_T(x) (y - f_0(X_train))`` exactly when
    the smoother credits every lag of the memory; the current batch alone falls short."""
    X, y, X_eval = _data()
    model = TelescopingMLPRegressor(
        (), optimizer=name, learning_rate=LR[name], momentum=MU, beta_1=BETA_1,
        batch_size=BATCH, max_steps=STEPS, telescope="first_order", dtype="float64",
        early_stopping=False, standardize_target=False, random_state=0,
    ).fit(X, y)
    initial_train = model.kernel_view(X, smoother=False).offset
    complete = model.kernel_view(X_eval, smoother=True, attribution_window=STEPS)
    assert complete.metadata["smoother"] == "computed"
    rebuilt = complete.offset + complete.smoother @ (y - initial_train)
    np.testing.assert_allclose(rebuilt, model.predict(X_eval), rtol=0, atol=1e-9)

    partial = model.kernel_view(X_eval, smoother=True, attribution_window=1)
    assert partial.metadata["smoother"].startswith("computed, partial")
    rebuilt = partial.offset + partial.smoother @ (y - initial_train)
    assert np.abs(rebuilt - model.predict(X_eval)).max() > 1e-3
    # the sketch path runs the same recursion
    sketched = model.effective_parameters(X_eval, sketch_size=None, attribution_window=STEPS)
    assert sketched.smoother == "computed" and sketched.attribution_window == STEPS
    p_test = len(X) / len(X_eval) * np.sum(complete.smoother**2)
    assert sketched.p_test == pytest.approx(p_test, rel=1e-9)
