"""Benchmark-grade training of the telescoping networks, with the lens still exact.

Target standardisation (the view in target units, docs/design.md §1.3, §1.6), training that
fails loudly, learning-rate schedules replayed step by step (§1.2) and early stopping whose
lens describes the kept model (§1.1: the replay ends where fit did).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import scale

from tabscope.models import TelescopingMLPClassifier, TelescopingMLPRegressor
from tabscope.vocabulary import LearningRateSchedule

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _diabetes():
    """Standardised X, raw y (about 150 +- 77): the acceptance data of the issue."""
    X, y = load_diabetes(return_X_y=True)
    return scale(X), y


SMALL = dict(hidden_layer_sizes=(16,), batch_size=32, random_state=0)


# ---------------------------------------------------------------------------------------
# Target standardisation: predictions and the kernel view in the target's units
# ---------------------------------------------------------------------------------------


def test_raw_target_fits_like_the_standardised_one_and_the_view_is_exact():
    X, y = _diabetes()
    X_train, y_train, X_new = X[:200], y[:200], X[200:260]
    kw = dict(SMALL, optimizer="sgd", learning_rate=0.01, max_steps=60)
    raw = TelescopingMLPRegressor(**kw).fit(X_train, y_train)
    mu, sigma = y_train.mean(), y_train.std()
    assert raw.target_mean_ == pytest.approx(mu) and raw.target_scale_ == pytest.approx(sigma)
    standardised = TelescopingMLPRegressor(**kw).fit(X_train, (y_train - mu) / sigma)
    predictions = raw.predict(X_new)
    assert np.isfinite(predictions).all()
    np.testing.assert_allclose(
        predictions, mu + sigma * standardised.predict(X_new), rtol=1e-6
    )

    view = raw.kernel_view(X_new, smoother=True)
    assert view.identity_error() <= 1e-5
    assert np.abs(view.unattributed).max() == 0.0  # plain SGD
    np.testing.assert_allclose(view.prediction, raw.predict_telescoping(X_new), rtol=1e-12)
    # the view is in y's units: the telescoping model tracks predict, not predict / sigma
    np.testing.assert_allclose(view.prediction, predictions, rtol=1e-3)
    reference = standardised.kernel_view(X_new, smoother=True)
    np.testing.assert_allclose(view.offset, mu + sigma * reference.offset, rtol=1e-9)
    np.testing.assert_allclose(
        view.contributions, sigma * reference.contributions, rtol=1e-6, atol=1e-9
    )
    # smoother weights are unit-free; the offset absorbs mu (1 - sum_i s_i)
    np.testing.assert_allclose(view.smoother, reference.smoother, rtol=1e-6, atol=1e-12)
    assert raw.predict_linearized(X_new) == pytest.approx(
        mu + sigma * standardised.predict_linearized(X_new), rel=1e-9
    )


def test_standardize_target_false_trains_on_y_as_given():
    X, y = _diabetes()
    model = TelescopingMLPRegressor(
        **SMALL, optimizer="sgd", learning_rate=1e-4, max_steps=5, standardize_target=False
    ).fit(X[:100], y[:100])
    assert (model.target_mean_, model.target_scale_) == (0.0, 1.0)
    np.testing.assert_array_equal(model.y_train_[:, 0], y[:100].astype(np.float32))


def test_constant_target_keeps_unit_scale():
    X, _ = _diabetes()
    model = TelescopingMLPRegressor(**SMALL, max_steps=3).fit(X[:50], np.full(50, 7.0))
    assert model.target_scale_ == 1.0
    np.testing.assert_allclose(model.predict(X[:5]), 7.0, atol=1.0)


# ---------------------------------------------------------------------------------------
# Training fails loudly
# ---------------------------------------------------------------------------------------


def test_diverging_fit_raises_naming_the_step_and_the_learning_rate():
    X, y = _diabetes()
    model = TelescopingMLPRegressor(
        **SMALL, optimizer="sgd", learning_rate=10, max_steps=200, standardize_target=False
    )
    with pytest.raises(ValueError, match=r"non-finite at step \d+ of 200 \(learning_rate=10"):
        model.fit(X, y)
    assert not hasattr(model, "module_")


# ---------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------


def test_schedule_factors():
    cosine, linear = LearningRateSchedule.COSINE, LearningRateSchedule.LINEAR
    assert [cosine.factor(t, 10, 2) for t in (1, 2, 3)] == [0.5, 1.0, 1.0]
    assert linear.factor(10, 10, 0) == pytest.approx(0.1)  # the last step still moves
    assert cosine.factor(7, 10, 2) == pytest.approx(0.5)  # half way through the decay
    assert LearningRateSchedule.CONSTANT.factor(5, 10, 0) == 1.0


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_lens_follows_a_schedule_exactly(schedule, optimizer):
    X, y = _diabetes()
    lr = 0.05 if optimizer == "sgd" else 0.01
    kw = dict(SMALL, optimizer=optimizer, learning_rate=lr, max_steps=40, n_checkpoints=3)
    model = TelescopingMLPRegressor(
        **kw, lr_schedule=schedule, warmup_fraction=0.25
    ).fit(X[:120], y[:120])
    constant = TelescopingMLPRegressor(**kw).fit(X[:120], y[:120])
    X_new = X[120:150]
    # the schedule changed the run (else the check below would be vacuous)
    assert np.abs(model.predict(X_new) - constant.predict(X_new)).max() > 1e-2
    view = model.kernel_view(X_new)
    assert view.identity_error() <= 1e-5
    if optimizer == "sgd":
        assert np.abs(view.unattributed).max() == 0.0
    np.testing.assert_allclose(view.prediction, model.predict_telescoping(X_new), rtol=1e-5)


# ---------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------


def test_early_stopped_model_is_the_model_of_its_best_step():
    X, y = _diabetes()
    kw = dict(SMALL, optimizer="sgd", learning_rate=0.2, n_checkpoints=4)
    model = TelescopingMLPRegressor(
        **kw, max_steps=1000, validation_interval=10, n_iter_no_change=3
    ).fit(X[:150], y[:150], X_val=X[150:250], y_val=y[150:250])
    assert model.best_step_ < model.n_iter_ < 1000  # it overfits 150 rows, then stops
    assert len(model.loss_curve_) == model.n_iter_
    assert model.best_step_ == model.validation_steps_[np.argmax(model.validation_scores_)]
    assert model.n_iter_ == model.validation_steps_[-1]
    np.testing.assert_array_equal(model.validation_steps_ % 10, 0)
    # same seed, trained for best_step_ steps without a validation set: the same bits
    plain = TelescopingMLPRegressor(**kw, max_steps=model.best_step_).fit(X[:150], y[:150])
    np.testing.assert_array_equal(model.predict(X[250:]), plain.predict(X[250:]))
    # the lens replays best_step_ steps and describes that model
    view = model.kernel_view(X[250:300])
    assert view.metadata["n_steps"] == model.best_step_
    assert view.checkpoints.max() == model.best_step_
    assert view.identity_error() <= 1e-5
    np.testing.assert_allclose(
        view.prediction, plain.kernel_view(X[250:300]).prediction, rtol=1e-12
    )
    # scores are negated validation losses in the target's units
    residual = model.predict(X[150:250]) - y[150:250]
    assert model.validation_scores_.max() == pytest.approx(
        -0.5 * np.mean(residual**2), rel=1e-4
    )


def test_early_stopping_defaults_and_held_out_fraction():
    X, y = _diabetes()
    kw = dict(SMALL, max_steps=40, validation_interval=10)
    # "auto" without a validation set: no early stopping
    model = TelescopingMLPRegressor(**kw).fit(X[:100], y[:100])
    assert model.n_iter_ == model.best_step_ == 40 and model.validation_scores_.size == 0
    # False ignores a validation set
    model = TelescopingMLPRegressor(**kw, early_stopping=False).fit(
        X[:100], y[:100], X_val=X[100:120], y_val=y[100:120]
    )
    assert model.n_iter_ == 40 and model.validation_scores_.size == 0
    # True without a validation set holds out validation_fraction of the rows
    model = TelescopingMLPRegressor(**kw, early_stopping=True, validation_fraction=0.2).fit(
        X[:100], y[:100]
    )
    assert len(model.X_train_) == 80 and model.validation_scores_.size == 4
    assert model.kernel_view(X[100:110]).contributions.shape == (10, 80)


def test_classifier_early_stopping_and_view():
    X, y = load_breast_cancer(return_X_y=True)
    X = scale(X)
    model = TelescopingMLPClassifier(
        **SMALL, optimizer="adamw", learning_rate=0.01, max_steps=200, validation_interval=5,
        n_iter_no_change=3,
    ).fit(X[:150], y[:150], X_val=X[150:300], y_val=y[150:300])
    assert model.best_step_ <= model.n_iter_ <= 200
    assert model.kernel_view(X[300:330]).identity_error() <= 1e-5
    with pytest.raises(ValueError, match="y_val has labels absent from y"):
        model.fit(X[:150], y[:150], X_val=X[150:160], y_val=np.full(10, 7))


@pytest.mark.parametrize(
    "params, fit_args, message",
    [
        (dict(lr_schedule="step"), {}, "'lr_schedule' parameter"),
        (dict(warmup_fraction=1.0), {}, "'warmup_fraction' parameter"),
        (dict(early_stopping="yes"), {}, "'early_stopping' parameter"),
        (dict(validation_interval=0), {}, "'validation_interval' parameter"),
        (dict(n_iter_no_change=0), {}, "'n_iter_no_change' parameter"),
        (dict(validation_fraction=1.0), {}, "'validation_fraction' parameter"),
        (dict(standardize_target="yes"), {}, "'standardize_target' parameter"),
        ({}, dict(X_val=np.zeros((3, 10))), "X_val and y_val must be passed together"),
        ({}, dict(X_val=np.zeros((3, 4)), y_val=np.zeros(3)), "X has 4 features"),
        ({}, dict(X_val=np.zeros((3, 10)), y_val=np.zeros(2)), "y_val must be"),
    ],
)
def test_bad_training_settings_are_named(params, fit_args, message):
    X, y = _diabetes()
    with pytest.raises(ValueError, match=message):
        TelescopingMLPRegressor(**{"max_steps": 2, **params}).fit(X[:50], y[:50], **fit_args)
