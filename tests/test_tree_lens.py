"""TreeLens: boosted trees as kernel-weighted sums over their training examples.

Every identity is checked against the library's own raw prediction (XGBoost
``output_margin``, LightGBM ``raw_score``, scikit-learn ``decision_function``/``predict``),
which the lens never uses to build its view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from threadpoolctl import threadpool_limits

from tabscope.models import KernelView, TreeLens
from tabscope.models._hist_gradient_boosting_lens import predictor_leaves
from tabscope.models.tree_lens import UnsupportedBoosterError
from tabscope.models._tree_view import (
    _multi_output_l1_norms,
    _subset_count_l1_norms,
    build_kernel_view,
)

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

RTOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """On two shared cores OpenMP pools only add contention to these small fits."""
    with threadpool_limits(1, "openmp"):
        yield


# -- libraries -------------------------------------------------------------------------


def _xgboost(task: str, **params):
    cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    return cls(n_jobs=1, **params)


def _lightgbm(task: str, **params):
    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return cls(n_jobs=1, verbose=-1, **params)


def _hist_gradient_boosting(task: str, **params):
    if "n_estimators" in params:
        params["max_iter"] = params.pop("n_estimators")
    if task == "regression":
        return HistGradientBoostingRegressor(**params)
    return HistGradientBoostingClassifier(**params)


def _gradient_boosting(task: str, **params):
    if task == "regression":
        return GradientBoostingRegressor(**params)
    return GradientBoostingClassifier(**params)


LIBRARIES = {
    "xgboost": {
        "make": _xgboost,
        "default": {"n_estimators": 25},
        "tuned": {
            "n_estimators": 25,
            "learning_rate": 0.2,
            "max_depth": 4,
            "reg_lambda": 3.0,
            "colsample_bytree": 0.7,
            "colsample_bynode": 0.8,
            "min_child_weight": 2.0,
            "random_state": 0,
        },
        "one_tree": {"n_estimators": 1, "learning_rate": 1.0, "reg_lambda": 0.0, "max_depth": 3},
    },
    "lightgbm": {
        "make": _lightgbm,
        "default": {"n_estimators": 25},
        "tuned": {
            "n_estimators": 25,
            "learning_rate": 0.2,
            "num_leaves": 8,
            "reg_lambda": 3.0,
            "colsample_bytree": 0.7,
            "min_child_samples": 10,
            "min_child_weight": 1e-2,
            "random_state": 0,
        },
        "one_tree": {"n_estimators": 1, "learning_rate": 1.0, "num_leaves": 6},
    },
    "hist_gradient_boosting": {
        "make": _hist_gradient_boosting,
        "default": {"n_estimators": 25},
        "tuned": {
            "n_estimators": 25,
            "learning_rate": 0.2,
            "max_leaf_nodes": 8,
            "l2_regularization": 3.0,
            "max_features": 0.7,
            "min_samples_leaf": 10,
            "random_state": 0,
        },
        "one_tree": {"n_estimators": 1, "learning_rate": 1.0, "max_leaf_nodes": 6},
    },
    "gradient_boosting": {
        "make": _gradient_boosting,
        "default": {"n_estimators": 25},
        "tuned": {
            "n_estimators": 25,
            "learning_rate": 0.2,
            "max_depth": 2,
            "max_features": 0.6,
            "min_samples_leaf": 5,
            "random_state": 0,
        },
        "one_tree": {"n_estimators": 1, "learning_rate": 1.0, "max_depth": 3},
    },
}


def library_raw(model, X) -> np.ndarray:
    """The library's own raw prediction, through its public API."""
    module = type(model).__module__.split(".")[0]
    if module == "xgboost":
        return np.asarray(model.predict(X, output_margin=True), dtype=np.float64)
    if module == "lightgbm":
        return np.asarray(model.predict(X, raw_score=True), dtype=np.float64)
    if is_classifier(model):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64)


def relative_error(actual, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    return float(np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected)) / scale)


# -- data ------------------------------------------------------------------------------


def _split(X, y, n_train, seed=0):
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:n_train], order[n_train:]
    return X[train], y[train], X[test], y[test]


def load(task: str, name: str):
    """Bundled datasets: two per task."""
    if task == "regression":
        if name == "diabetes":
            X, y = load_diabetes(return_X_y=True)
        else:  # digits, regressing the digit's value on its pixels
            X, y = load_digits(return_X_y=True)
            X, y = X[:500], y[:500].astype(float)
        return _split(X, y, int(0.75 * len(y)))
    if task == "binary":
        if name == "breast_cancer":
            X, y = load_breast_cancer(return_X_y=True)
        else:  # wine: cultivar 0 against the others
            X, y = load_wine(return_X_y=True)
            y = (y == 0).astype(int)
        return _split(X, y, int(0.75 * len(y)))
    if name == "iris":
        X, y = load_iris(return_X_y=True)
    else:  # digits, ten classes
        X, y = load_digits(return_X_y=True)
        X, y = X[:400], y[:400]
    return _split(X, y, int(0.75 * len(y)))


DATASETS = {
    "regression": ("diabetes", "digits_value"),
    "binary": ("breast_cancer", "wine"),
    "multiclass": ("iris", "digits"),
}
TASK_CASES = [(task, name) for task, names in DATASETS.items() for name in names]


def fitted_lens(library: str, task: str, variant: str, X, y) -> TreeLens:
    spec = LIBRARIES[library]
    model_task = "regression" if task == "regression" else "classification"
    return TreeLens(spec["make"](model_task, **spec[variant])).fit(X, y)


# -- acceptance 1: the identity, number for number ------------------------------------------


@pytest.mark.parametrize("variant", ["default", "tuned"])
@pytest.mark.parametrize("task,dataset", TASK_CASES)
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_view_matches_library_raw_prediction(library, task, dataset, variant):
    X_train, y_train, X_test, _ = load(task, dataset)
    lens = fitted_lens(library, task, variant, X_train, y_train)
    X_eval = np.vstack([X_test, X_train[:20]])
    view = lens.kernel_view(X_eval)
    raw = library_raw(lens.estimator_, X_eval)

    assert isinstance(view, KernelView)
    assert view.prediction.shape == raw.shape
    assert relative_error(view.prediction, raw) <= RTOL
    assert relative_error(view.offset + view.contributions.sum(axis=1), raw) <= RTOL
    view.check_identity(RTOL)
    assert np.all(view.unattributed == 0.0)
    np.testing.assert_array_equal(view.checkpoints, np.arange(1, lens.n_rounds_ + 1))
    assert view.kernel_norms.shape == (len(X_eval), lens.n_rounds_)
    assert view.train_kernel_norms.shape == (len(X_train), lens.n_rounds_)
    # The trees moved the prediction: the contributions are not trivially zero.
    assert np.max(np.abs(view.contributions.sum(axis=1))) > 1e-3 * np.max(np.abs(raw))
    expected_loss = "squared_error" if task == "regression" else "log_loss"
    assert view.loss == lens.loss_ == expected_loss
    if is_classifier(lens):
        np.testing.assert_allclose(lens.decision_function(X_eval), raw, rtol=1e-6, atol=1e-6)


# -- acceptance 2: tree kernel weights ----------------------------------------------------


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_kernel_weights_are_nonnegative_and_match_the_norms(library, task):
    X_train, y_train, X_test, _ = load(task, DATASETS[task][0])
    lens = fitted_lens(library, task, "tuned", X_train, y_train)
    l1 = lens.kernel_view(X_test, norm="l1")
    l2 = lens.kernel_view(X_test, norm="l2")
    for t in (1, lens.n_rounds_ // 2, lens.n_rounds_):
        weights = lens.kernel_weights(X_test, t)
        assert weights.min() >= 0.0
        assert weights.max() > 0.0
        if weights.ndim == 2:
            weights = weights[:, :, None]
        frobenius = np.sqrt((weights**2).sum(axis=2))  # diagonal K x K blocks
        np.testing.assert_allclose(l1.kernel_norms[:, t - 1], frobenius.sum(axis=1), rtol=1e-10)
        np.testing.assert_allclose(
            l2.kernel_norms[:, t - 1], np.sqrt((frobenius**2).sum(axis=1)), rtol=1e-10
        )


def _library_predictor_leaves(model, X) -> np.ndarray:
    """HistGradientBoosting's own traversal, made to return node ids instead of values."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    X_raw = model._preprocess_X(X, reset=False)
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    columns = []
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes.copy()
            nodes["value"] = np.arange(len(nodes))
            relabelled = TreePredictor(
                nodes, predictor.binned_left_cat_bitsets, predictor.raw_left_cat_bitsets
            )
            columns.append(relabelled.predict(X_raw, known, feature_map, n_threads=1))
    return np.column_stack(columns).astype(int)


def test_multi_output_l1_norms_of_ten_classes_match_dense_weights():
    """Ten outputs take the sparse-product path (2^10 match patterns are too many)."""
    X_train, y_train, X_test, _ = load("multiclass", "digits")
    lens = fitted_lens("lightgbm", "multiclass", "tuned", X_train, y_train)
    view = lens.kernel_view(X_test)
    for t in (1, lens.n_rounds_):
        frobenius = np.sqrt((lens.kernel_weights(X_test, t) ** 2).sum(axis=2))
        np.testing.assert_allclose(view.kernel_norms[:, t - 1], frobenius.sum(axis=1), rtol=1e-10)


def test_both_multi_output_l1_algorithms_agree():
    X_train, y_train, X_test, _ = load("multiclass", "iris")
    lens = fitted_lens("xgboost", "multiclass", "tuned", X_train, y_train)
    kernel = lens.tree_kernel_
    for nodes in (kernel.adapter.leaf_nodes(X_test), kernel.train_nodes):
        np.testing.assert_allclose(
            _subset_count_l1_norms(kernel, nodes),
            _multi_output_l1_norms(kernel, nodes, block_nonzeros=64),
            rtol=1e-12,
        )


def _leaf_ids(model, X) -> np.ndarray:
    """Leaf of each row in each tree, from the library itself (regression: one tree a round)."""
    module = type(model).__module__.split(".")[0]
    if module == "xgboost":
        return np.asarray(model.apply(X)).astype(int)
    if module == "lightgbm":
        return np.asarray(model.predict(X, pred_leaf=True)).astype(int)
    if hasattr(model, "apply"):
        return np.asarray(model.apply(X)).reshape(len(X), -1)
    return _library_predictor_leaves(model, X)


# How each library names lambda (none for GradientBoosting) and eta.
L2_PARAMS = {
    "xgboost": ("reg_lambda", "learning_rate"),
    "lightgbm": ("reg_lambda", "learning_rate"),
    "hist_gradient_boosting": ("l2_regularization", "learning_rate"),
    "gradient_boosting": (None, "learning_rate"),
}


@pytest.mark.parametrize("library", sorted(L2_PARAMS))
def test_squared_loss_weights_sum_to_shrunk_leaf_fraction(library):
    """Each round's weights of a test point sum to eta n_l / (n_l + lambda)."""
    X_train, y_train, X_test, _ = load("regression", "diabetes")
    params = LIBRARIES[library]["tuned"]
    lambda_name, eta_name = L2_PARAMS[library]
    lens = fitted_lens(library, "regression", "tuned", X_train, y_train)
    train_leaves = _leaf_ids(lens.estimator_, X_train)
    test_leaves = _leaf_ids(lens.estimator_, X_test)
    lam = params[lambda_name] if lambda_name else 0.0
    eta = params[eta_name]
    assert lam > 0 or lambda_name is None
    for t in (1, 7, lens.n_rounds_):
        weights = lens.kernel_weights(X_test, t)
        n_leaf = (test_leaves[:, t - 1][:, None] == train_leaves[:, t - 1][None, :]).sum(axis=1)
        np.testing.assert_allclose(weights.sum(axis=1), eta * n_leaf / (n_leaf + lam), rtol=1e-6)


# -- acceptance 6: effective parameters -----------------------------------------------------


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_one_tree_has_as_many_effective_parameters_as_leaves(library):
    X_train, y_train, X_test, _ = load("regression", "diabetes")
    lens = fitted_lens(library, "regression", "one_tree", X_train, y_train)
    view = lens.kernel_view(X_train, smoother=True)
    n_leaves = len(np.unique(_leaf_ids(lens.estimator_, X_train)))
    p_train = len(X_train) / len(X_train) * np.sum(view.smoother**2)
    assert n_leaves > 2
    assert p_train == pytest.approx(n_leaves, rel=1e-12)
    # Off the training set a point's weights still sum to one leaf's worth.
    test_view = lens.kernel_view(X_test, smoother=True)
    np.testing.assert_allclose(test_view.smoother.sum(axis=1), 1.0, rtol=1e-12)


def test_smoother_reproduces_predictions_without_offset():
    """With a zero initial score, f(x) = s_T(x)^T y exactly (docs/design.md §1.6)."""
    X_train, y_train, X_test, _ = load("regression", "diabetes")
    model = xgboost.XGBRegressor(
        n_estimators=15, max_depth=3, base_score=0.0, reg_lambda=2.0, n_jobs=1
    )
    lens = TreeLens(model).fit(X_train, y_train)
    view = lens.kernel_view(X_test, smoother=True)
    assert relative_error(view.smoother @ y_train, view.prediction) <= 1e-6
    with pytest.raises(ValueError, match="max_smoother_train"):
        lens.kernel_view(X_test, smoother=True, max_smoother_train=100)


def test_smoother_is_refused_for_log_loss():
    X_train, y_train, X_test, _ = load("binary", "breast_cancer")
    lens = TreeLens(xgboost.XGBClassifier(n_estimators=3)).fit(X_train, y_train)
    with pytest.raises(ValueError, match="squared loss"):
        lens.kernel_view(X_test, smoother=True)


# -- memory-bounded blocks, determinism, wrapping ----------------------------------------------


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_blocked_computation_equals_one_block(task):
    X_train, y_train, X_test, _ = load(task, DATASETS[task][0])
    lens = fitted_lens("xgboost", task, "tuned", X_train, y_train)
    whole = build_kernel_view(lens.tree_kernel_, X_test, block_nonzeros=1 << 30)
    blocked = build_kernel_view(lens.tree_kernel_, X_test, block_nonzeros=len(y_train) + 1)
    threaded = lens.kernel_view(X_test, n_jobs=3)
    np.testing.assert_array_equal(whole.contributions, blocked.contributions)
    np.testing.assert_array_equal(whole.contributions, threaded.contributions)
    np.testing.assert_allclose(whole.kernel_norms, blocked.kernel_norms, rtol=1e-14)
    np.testing.assert_allclose(whole.train_kernel_norms, blocked.train_kernel_norms, rtol=1e-14)


def test_same_seed_same_bits():
    X_train, y_train, X_test, _ = load("multiclass", "iris")
    views = [
        fitted_lens("xgboost", "multiclass", "tuned", X_train, y_train).kernel_view(X_test)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(views[0].contributions, views[1].contributions)
    np.testing.assert_array_equal(views[0].kernel_norms, views[1].kernel_norms)


def test_from_fitted_wraps_the_users_model():
    X_train, y_train, X_test, _ = load("multiclass", "iris")
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=2).fit(X_train, y_train)
    lens = TreeLens.from_fitted(model, X_train, y_train)
    assert lens.estimator_ is model and lens.estimator is model
    np.testing.assert_array_equal(lens.predict(X_test), model.predict(X_test))
    np.testing.assert_allclose(lens.predict_proba(X_test), model.predict_proba(X_test))
    view = lens.kernel_view(X_test)
    assert relative_error(view.prediction, library_raw(model, X_test)) <= RTOL


def test_fit_accepts_any_labels_and_keeps_them():
    X_train, y_train, X_test, y_test = load("multiclass", "iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    lens = TreeLens(xgboost.XGBClassifier(n_estimators=10)).fit(X_train, names[y_train])
    np.testing.assert_array_equal(lens.classes_, names)
    assert np.mean(lens.predict(X_test) == names[y_test]) > 0.85


def test_from_fitted_detects_other_training_data():
    X_train, y_train, _, _ = load("regression", "diabetes")
    model = xgboost.XGBRegressor(n_estimators=10, max_depth=3).fit(X_train, y_train)
    with pytest.raises(ValueError, match="Newton steps"):
        TreeLens.from_fitted(model, X_train, np.roll(y_train, 1))
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y_train))
    weighted = xgboost.XGBRegressor(n_estimators=10, max_depth=3)
    weighted.fit(X_train, y_train, sample_weight=weights)
    with pytest.raises(ValueError, match="sample weights"):
        TreeLens.from_fitted(weighted, X_train, y_train)


def test_unsupported_estimator_is_a_type_error():
    from sklearn.linear_model import Ridge

    X_train, y_train, _, _ = load("regression", "diabetes")
    with pytest.raises(TypeError, match="Ridge is not supported"):
        TreeLens(Ridge()).fit(X_train, y_train)
    with pytest.raises(TypeError, match="not supported"):
        TreeLens.from_fitted(Ridge().fit(X_train, y_train), X_train, y_train)
    assert not TreeLens.supports(Ridge())
    assert TreeLens.supports(xgboost.XGBRegressor())
    assert TreeLens.supports(lightgbm.LGBMClassifier())


def test_bad_arguments_are_named():
    X_train, y_train, X_test, _ = load("regression", "diabetes")
    lens = TreeLens(xgboost.XGBRegressor(n_estimators=3)).fit(X_train, y_train)
    with pytest.raises(ValueError, match="'norm' parameter of TreeLens.kernel_view"):
        lens.kernel_view(X_test, norm="max")
    with pytest.raises(ValueError, match=r"'round_index' parameter .* range \[1, 3\]"):
        lens.kernel_weights(X_test, 0)
    with pytest.raises(ValueError, match="'n_jobs' parameter of TreeLens.kernel_view"):
        lens.kernel_view(X_test, n_jobs=0)
    with pytest.raises(TypeError, match="'smoother' parameter of TreeLens.kernel_view"):
        lens.kernel_view(X_test, smoother="yes")
    with pytest.raises(ValueError, match="features"):
        lens.kernel_view(X_test[:, :5])


# -- acceptance 3: unsupported settings are named ----------------------------------------------


UNSUPPORTED = [
    ("xgboost", "regression", {"subsample": 0.7}, "subsample"),
    ("xgboost", "regression", {"reg_alpha": 0.5}, "reg_alpha"),
    ("xgboost", "regression", {"max_delta_step": 1.0}, "max_delta_step"),
    ("xgboost", "regression", {"booster": "dart"}, "booster='dart'"),
    ("xgboost", "regression", {"objective": "reg:absoluteerror"}, "objective"),
    ("xgboost", "regression", {"monotone_constraints": "(1,0,0,0,0,0,0,0,0,0)"}, "monotone"),
    ("xgboost", "regression", {"num_parallel_tree": 3}, "num_parallel_tree"),
    ("xgboost", "binary", {"scale_pos_weight": 2.0}, "scale_pos_weight"),
    ("lightgbm", "regression", {"subsample": 0.7, "subsample_freq": 1}, "bagging"),
    ("lightgbm", "regression", {"reg_alpha": 0.5}, "lambda_l1"),
    ("lightgbm", "regression", {"max_delta_step": 1.0}, "max_delta_step"),
    ("lightgbm", "regression", {"boosting_type": "dart"}, "boosting_type='dart'"),
    ("lightgbm", "regression", {"data_sample_strategy": "goss"}, "goss"),
    ("lightgbm", "regression", {"objective": "huber"}, "objective='huber'"),
    ("lightgbm", "regression", {"linear_tree": True}, "linear_tree"),
    ("lightgbm", "regression", {"path_smooth": 1.0}, "path_smooth"),
    ("lightgbm", "regression", {"monotone_constraints": [1] + [0] * 9}, "monotone"),
    ("lightgbm", "binary", {"is_unbalance": True}, "is_unbalance"),
    ("lightgbm", "binary", {"class_weight": "balanced"}, "class_weight"),
    ("lightgbm", "multiclass", {"objective": "multiclassova"}, "objective='multiclassova'"),
    ("hist_gradient_boosting", "regression", {"loss": "absolute_error"}, "loss"),
    ("hist_gradient_boosting", "regression", {"monotonic_cst": [1] + [0] * 9}, "monotonic_cst"),
    ("hist_gradient_boosting", "binary", {"class_weight": "balanced"}, "class_weight"),
    ("gradient_boosting", "regression", {"subsample": 0.7}, "subsample"),
    ("gradient_boosting", "regression", {"loss": "huber"}, "loss='huber'"),
    ("gradient_boosting", "regression", {"n_iter_no_change": 2}, "n_iter_no_change"),
    ("gradient_boosting", "binary", {"loss": "exponential"}, "loss='exponential'"),
]


@pytest.mark.parametrize("library,task,params,setting", UNSUPPORTED)
def test_unsupported_settings_raise_naming_them(library, task, params, setting):
    dataset = DATASETS[task][0]
    X_train, y_train, _, _ = load(task, dataset)
    model_task = "regression" if task == "regression" else "classification"
    make = LIBRARIES[library]["make"]
    with pytest.raises(UnsupportedBoosterError, match=f"{setting}.*not supported"):
        TreeLens(make(model_task, n_estimators=3, **params)).fit(X_train, y_train)
    model = make(model_task, n_estimators=3, **params).fit(X_train, y_train)
    assert TreeLens.supports(model)  # the class is; this setting is not
    with pytest.raises(UnsupportedBoosterError, match=f"{setting}.*not supported"):
        TreeLens.from_fitted(model, X_train, y_train)


# -- initial predictions -------------------------------------------------------------------


def test_offset_is_the_libraries_initial_prediction():
    X_train, y_train, X_test, _ = load("regression", "diabetes")
    _, yb_train, _, _ = load("binary", "breast_cancer")
    Xm_train, ym_train, Xm_test, _ = load("multiclass", "iris")

    lens = TreeLens(_xgboost("regression", n_estimators=3, base_score=3.0)).fit(X_train, y_train)
    np.testing.assert_allclose(lens.kernel_view(X_test).offset, 3.0)
    lens = TreeLens(_lightgbm("regression", n_estimators=3)).fit(X_train, y_train)
    np.testing.assert_allclose(lens.kernel_view(X_test).offset, y_train.mean(), rtol=1e-7)
    lens = TreeLens(_lightgbm("multiclass", n_estimators=3)).fit(Xm_train, ym_train)
    priors = np.bincount(ym_train) / len(ym_train)
    expected = np.tile(np.log(priors), (len(Xm_test), 1))
    np.testing.assert_allclose(lens.kernel_view(Xm_test).offset, expected)
    lens = TreeLens(_lightgbm("regression", n_estimators=3, boost_from_average=False))
    np.testing.assert_array_equal(lens.fit(X_train, y_train).kernel_view(X_test).offset, 0.0)
    lens = TreeLens(_hist_gradient_boosting("regression", n_estimators=3)).fit(X_train, y_train)
    np.testing.assert_allclose(lens.kernel_view(X_test).offset, y_train.mean())


def test_gradient_boosting_init_estimator_gives_a_varying_offset():
    from sklearn.linear_model import LinearRegression

    X_train, y_train, X_test, _ = load("regression", "diabetes")
    model = GradientBoostingRegressor(n_estimators=20, init=LinearRegression())
    lens = TreeLens(model).fit(X_train, y_train)
    view = lens.kernel_view(X_test)
    # GradientBoosting hands its init estimator float32 inputs, at fit and predict time.
    expected = lens.estimator_.init_.predict(X_test.astype(np.float32))
    np.testing.assert_allclose(view.offset, expected, rtol=1e-12)
    assert np.std(view.offset) > 1.0
    assert relative_error(view.reconstruction(), library_raw(lens.estimator_, X_test)) <= RTOL


# -- missing values and categorical features ------------------------------------------------


def mixed_frame(n_rows: int = 700, seed: int = 0):
    """Two categorical features (3 and 8 levels) and two numeric ones with missing values."""
    rng = np.random.default_rng(seed)
    few = rng.integers(0, 3, n_rows)
    many = rng.integers(0, 8, n_rows)
    numeric = rng.normal(size=(n_rows, 2))
    numeric[rng.random((n_rows, 2)) < 0.15] = np.nan
    y = (
        np.array([0.0, 2.0, -1.0])[few]
        + np.array([0.0, 3.0, 1.0, -2.0, 0.5, 2.0, -1.0, 1.0])[many]
        + np.nan_to_num(numeric).sum(axis=1)
        + 0.3 * rng.normal(size=n_rows)
    )
    frame = pd.DataFrame(
        {
            "few": pd.Categorical(np.array(["a", "b", "c"])[few]),
            "many": pd.Categorical(many),
            "x0": numeric[:, 0],
            "x1": numeric[:, 1],
        }
    )
    return frame, y


CATEGORICAL_MODELS = {
    "xgboost": lambda task: _xgboost(
        task, n_estimators=20, enable_categorical=True, max_cat_to_onehot=4
    ),
    # Eight levels exceed max_cat_to_onehot: many-vs-many splits with lambda + cat_l2.
    "lightgbm": lambda task: _lightgbm(
        task, n_estimators=20, min_data_per_group=10, cat_smooth=1.0
    ),
    "hist_gradient_boosting": lambda task: _hist_gradient_boosting(task, n_estimators=20),
}


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("library", sorted(CATEGORICAL_MODELS))
def test_categorical_and_missing_inputs(library, task):
    frame, y = mixed_frame()
    if task == "classification":
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    train, test = frame.iloc[:500], frame.iloc[500:]
    lens = TreeLens(CATEGORICAL_MODELS[library](task)).fit(train, y[:500])
    view = lens.kernel_view(test)
    raw = library_raw(lens.estimator_, test)
    assert relative_error(view.prediction, raw) <= RTOL
    assert relative_error(view.reconstruction(), raw) <= RTOL


def test_lightgbm_many_vs_many_leaves_carry_cat_l2():
    """Leaves of a sorted-category split are regularised by lambda + cat_l2."""
    frame, y = mixed_frame()
    lens = TreeLens(CATEGORICAL_MODELS["lightgbm"]("regression")).fit(frame, y)
    l2 = lens.tree_kernel_.structure.node_l2
    assert set(np.unique(l2)) == {0.0, 10.0}  # default lambda_l2 = 0, cat_l2 = 10


def test_hist_gradient_boosting_traversal_matches_the_library():
    rng = np.random.default_rng(1)
    n_rows = 600
    X = np.column_stack([rng.integers(0, 6, n_rows), rng.normal(size=(n_rows, 3))]).astype(float)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X).sum(axis=1) + np.where(X[:, 0] == 2, 3.0, 0.0)
    model = HistGradientBoostingRegressor(max_iter=15, categorical_features=[0]).fit(X, y)
    probe = X[:120].copy()
    probe[:10, 0] = 7.0  # unknown category
    probe[10:20, 0] = -1.0  # negative: treated as missing
    probe[20:30, 0] = np.nan
    probe[30:40, 1] = np.nan
    lens = TreeLens.from_fitted(model, X, y)
    kernel = lens.tree_kernel_
    mine = kernel.adapter.leaf_nodes(probe) - kernel.structure.node_offsets[:-1]
    np.testing.assert_array_equal(mine, _library_predictor_leaves(model, probe))
    view = lens.kernel_view(probe)
    assert relative_error(view.reconstruction(), model.predict(probe)) <= RTOL


def test_predictor_leaves_on_a_single_leaf_tree():
    model = HistGradientBoostingRegressor(max_iter=2, min_samples_leaf=50)
    X = np.arange(40.0).reshape(-1, 1)
    model.fit(X, X[:, 0])  # too few rows to split: the root stays a leaf
    predictor = model._predictors[0][0]
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    leaves = predictor_leaves(
        predictor.nodes, predictor.raw_left_cat_bitsets, known, feature_map, X
    )
    np.testing.assert_array_equal(leaves, 0)
    view = TreeLens.from_fitted(model, X, X[:, 0]).kernel_view(X)
    np.testing.assert_array_equal(view.contributions, 0.0)  # a constant tree adds nothing
    np.testing.assert_array_equal(view.kernel_norms, 0.0)


# -- rows a library holds out ------------------------------------------------------------------


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_hist_gradient_boosting_early_stopping_holdout_is_reproduced(task):
    X_train, y_train, X_test, _ = load(task, "digits_value" if task == "regression" else "digits")
    model = _hist_gradient_boosting(
        task, n_estimators=30, early_stopping=True, validation_fraction=0.2, random_state=4
    )
    lens = TreeLens(model).fit(X_train, y_train)
    held_out = ~lens.tree_kernel_.in_bag
    assert held_out.sum() == round(0.2 * len(y_train))
    view = lens.kernel_view(X_test)
    assert relative_error(view.prediction, library_raw(lens.estimator_, X_test)) <= RTOL
    view.check_identity(RTOL)
    assert np.all(view.contributions[:, held_out] == 0.0)
    assert np.any(view.contributions[:, ~held_out] != 0.0)


# -- labels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["lightgbm", "hist_gradient_boosting", "gradient_boosting"])
def test_from_fitted_keeps_the_models_own_labels(library):
    X_train, y_train, X_test, _ = load("binary", "wine")
    labels = np.array(["other", "cultivar 0"])[y_train]
    model = LIBRARIES[library]["make"]("classification", n_estimators=10).fit(X_train, labels)
    lens = TreeLens.from_fitted(model, X_train, labels)
    np.testing.assert_array_equal(lens.classes_, model.classes_)
    np.testing.assert_array_equal(lens.predict(X_test), model.predict(X_test))
    view = lens.kernel_view(X_test)
    assert relative_error(view.prediction, library_raw(model, X_test)) <= RTOL
    with pytest.raises(ValueError, match="not among the model's classes_"):
        TreeLens.from_fitted(model, X_train, np.where(labels == "other", "unknown", labels))


def test_fitted_lens_survives_pickling():
    import pickle

    X_train, y_train, X_test, _ = load("multiclass", "iris")
    lens = fitted_lens("lightgbm", "multiclass", "tuned", X_train, y_train)
    restored = pickle.loads(pickle.dumps(lens))
    np.testing.assert_array_equal(
        restored.kernel_view(X_test).contributions, lens.kernel_view(X_test).contributions
    )
