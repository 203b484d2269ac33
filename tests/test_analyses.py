"""Tests of the lens analyses on hand-built kernel views, closed forms and synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from tabscope.bench.analyses import (
    effective_parameters,
    fidelity_summary,
    irregularity_curve,
    irregularity_scores,
    kernel_norm_summary,
    normalized_kernel_norms,
)
from tabscope.models import KernelView


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return X[:300], y[:300], X[300:]


def _linear_network_views(X_train, y, X_eval, n_steps=30, learning_rate=0.5):
    """Full-batch gradient descent on a linear model with bias, written as KernelViews.

    Squared loss 1/2 (f - y)^2, theta_0 = 0. The tangent kernel of f(x) = w.x + b is
    K(x, x') = x.x' + 1 at every step, and first-order telescoping is exact, so the views
    satisfy the identity of docs/design.md §1.3 with prediction computed from theta_T alone.
    Returns (view of X_eval, view of X_train).
    """
    n, d = X_train.shape
    theta = np.zeros(d + 1)
    design = np.hstack([X_train, np.ones((n, 1))])

    def views_for(points):
        features = np.hstack([points, np.ones((points.shape[0], 1))])
        weights = learning_rate / n * (features @ design.T)  # w_t(x, i), the same every step
        return features, weights

    eval_features, eval_weights = views_for(X_eval)
    train_features, train_weights = views_for(X_train)
    contributions = {"eval": np.zeros_like(eval_weights), "train": np.zeros_like(train_weights)}
    smoother = {"eval": np.zeros_like(eval_weights), "train": np.zeros_like(train_weights)}
    for _ in range(n_steps):
        gradient = design @ theta - y  # g_i of 1/2 (f - y)^2
        for key, weights in (("eval", eval_weights), ("train", train_weights)):
            contributions[key] -= weights * gradient
        # s_t(x) = s_{t-1}(x) - sum_i w(x, i) (s_{t-1}(x_i) - e_i), with the training rows old.
        previous_train = smoother["train"].copy()
        for key, weights in (("eval", eval_weights), ("train", train_weights)):
            smoother[key] = smoother[key] - weights @ (previous_train - np.eye(n))
        theta = theta - learning_rate / n * design.T @ gradient

    norms = {"eval": np.abs(eval_weights).sum(axis=1), "train": np.abs(train_weights).sum(axis=1)}
    checkpoints = np.array([1, n_steps])
    views = []
    for key, features in (("eval", eval_features), ("train", train_features)):
        m = features.shape[0]
        views.append(
            KernelView(
                offset=np.zeros(m),
                contributions=contributions[key],
                unattributed=np.zeros(m),
                prediction=features @ theta,
                checkpoints=checkpoints,
                kernel_norms=np.column_stack([norms[key]] * 2),
                train_kernel_norms=np.column_stack([norms["train"]] * 2),
                smoother=smoother[key],
                metadata={"kind": "linear network, full-batch GD"},
            )
        )
    return views[0], views[1], theta


def _boosted_tree_views(X_train, y, X_eval, n_rounds=6, eta=0.3, lam=2.0, seed=0):
    """Squared-loss gradient boosting with Newton leaves and L2 penalty, as KernelViews.

    Each round's tree structure comes from a scikit-learn tree grown on the residuals; its
    leaf values are set by docs/design.md §1.4, v = -eta sum_leaf g / (n_leaf + lam). Predictions
    accumulate leaf values; contributions accumulate the kernel eta 1{same leaf} / (n_l + lam)
    times -g, so the identity of 1.3 is checked, not assumed.
    """
    n = X_train.shape[0]
    offset = float(y.mean())
    f_train = np.full(n, offset)
    f_eval = np.full(X_eval.shape[0], offset)
    parts = {
        "eval": [np.zeros((X_eval.shape[0], n)), [], np.zeros((X_eval.shape[0], n))],
        "train": [np.zeros((n, n)), [], np.zeros((n, n))],
    }
    for round_index in range(n_rounds):
        gradient = f_train - y
        structure = DecisionTreeRegressor(max_leaf_nodes=6, random_state=seed + round_index)
        structure.fit(X_train, -gradient)
        train_leaves = structure.apply(X_train)
        eval_leaves = structure.apply(X_eval)
        leaf_ids, leaf_sizes = np.unique(train_leaves, return_counts=True)
        leaf_values = {
            leaf: -eta * gradient[train_leaves == leaf].sum() / (size + lam)
            for leaf, size in zip(leaf_ids, leaf_sizes, strict=True)
        }
        size_of = dict(zip(leaf_ids, leaf_sizes, strict=True))
        previous_train_smoother = parts["train"][2].copy()
        for key, leaves in (("eval", eval_leaves), ("train", train_leaves)):
            same_leaf = leaves[:, None] == train_leaves[None, :]
            denominators = np.array([size_of[leaf] + lam for leaf in leaves])
            weights = eta * same_leaf / denominators[:, None]
            parts[key][0] -= weights * gradient
            parts[key][1].append(np.abs(weights).sum(axis=1))
            parts[key][2] = parts[key][2] + weights @ (np.eye(n) - previous_train_smoother)
        f_train = f_train + np.array([leaf_values[leaf] for leaf in train_leaves])
        f_eval = f_eval + np.array([leaf_values[leaf] for leaf in eval_leaves])

    train_norms = np.column_stack(parts["train"][1])
    views = []
    for key, prediction in (("eval", f_eval), ("train", f_train)):
        m = prediction.shape[0]
        views.append(
            KernelView(
                offset=np.full(m, offset),
                contributions=parts[key][0],
                unattributed=np.zeros(m),
                prediction=prediction,
                checkpoints=np.arange(1, n_rounds + 1),
                kernel_norms=np.column_stack(parts[key][1]),
                train_kernel_norms=train_norms,
                smoother=parts[key][2],
                metadata={"kind": "hand-built boosted trees"},
            )
        )
    return views[0], views[1]


def _far_away(X_eval, factor=25.0):
    """X_eval with one extra point far outside the training cloud (its last row)."""
    return np.vstack([X_eval, factor * np.ones((1, X_eval.shape[1]))])


# ------------------------------------------------------------------- normalised norms


def test_helper_views_satisfy_the_kernel_view_identity(diabetes):
    X, y, X_test = diabetes
    for views in (_linear_network_views(X, y, X_test)[:2], _boosted_tree_views(X, y, X_test)):
        for view in views:
            view.check_identity(rtol=1e-10)


def test_training_kappa_bar_averages_to_one(diabetes):
    X, y, X_test = diabetes
    for eval_view, train_view in (
        _linear_network_views(X, y, X_test)[:2],
        _boosted_tree_views(X, y, X_test),
    ):
        kappa_bar_train = normalized_kernel_norms(train_view, train_view)
        assert kappa_bar_train.mean() == pytest.approx(1.0, rel=1e-12)
        # Not trivially 1 everywhere: the norms differ between training examples.
        assert kappa_bar_train.std() > 1e-3
        # The eval view's own train_kernel_norms give the same normalisation.
        np.testing.assert_allclose(
            normalized_kernel_norms(eval_view),
            normalized_kernel_norms(eval_view, train_view),
            rtol=1e-14,
        )


def test_kappa_bar_is_max_over_checkpoints_over_training_mean():
    norms_eval = np.array([[1.0, 3.0], [4.0, 2.0], [0.0, 0.5]])
    norms_train = np.array([[1.0, 2.0], [2.0, 1.0], [0.5, 0.5], [1.5, 1.0]])
    expected = np.array([3.0, 4.0, 0.5]) / np.mean([2.0, 2.0, 0.5, 1.5])
    np.testing.assert_allclose(normalized_kernel_norms(norms_eval, norms_train), expected)
    np.testing.assert_allclose(
        normalized_kernel_norms(norms_eval.max(axis=1), norms_train.max(axis=1)), expected
    )


def test_tree_kappa_bar_never_exceeds_training_maximum(diabetes):
    X, y, X_test = diabetes
    far_test = _far_away(X_test)
    eval_view, train_view = _boosted_tree_views(X, y, far_test)
    kappa_bar = normalized_kernel_norms(eval_view, train_view)
    kappa_bar_train = normalized_kernel_norms(train_view, train_view)
    # With lam > 0 the per-leaf norms eta n_l / (n_l + lam) differ, so this is not all ones.
    assert kappa_bar_train.max() > kappa_bar_train.min() * 1.01
    assert kappa_bar.max() <= kappa_bar_train.max() * (1 + 1e-12)
    # Even the far-away point stays within the training range: tree weights are bounded.
    assert kappa_bar[-1] <= kappa_bar_train.max() * (1 + 1e-12)


def test_network_kappa_bar_is_not_clipped(diabetes):
    X, y, X_test = diabetes
    far_test = _far_away(X_test)
    eval_view, train_view, _ = _linear_network_views(X, y, far_test)
    kappa_bar = normalized_kernel_norms(eval_view, train_view)
    kappa_bar_train = normalized_kernel_norms(train_view, train_view)
    # Closed form: kappa(x) = (lr / n) sum_i |x.x_i + 1|, the same at every step.
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    far = np.append(far_test[-1], 1.0)
    train_kappa = np.abs(design @ design.T).sum(axis=1)
    expected_far = np.abs(design @ far).sum() / train_kappa.mean()
    assert kappa_bar[-1] == pytest.approx(expected_far, rel=1e-12)
    assert kappa_bar[-1] > 5 * kappa_bar_train.max()
    assert np.argmax(kappa_bar) == far_test.shape[0] - 1


def test_kernel_norm_summary(diabetes):
    X, y, X_test = diabetes
    far_test = _far_away(X_test)
    eval_view, train_view, _ = _linear_network_views(X, y, far_test)
    scores = irregularity_scores(X, far_test)
    summary = kernel_norm_summary(eval_view, train_view, scores=scores)
    assert summary["train_mean"] == pytest.approx(1.0, rel=1e-12)
    assert summary["train_max"] == pytest.approx(summary["kappa_bar_train"].max())
    assert summary["eval_max"] == pytest.approx(summary["kappa_bar"][-1])
    assert summary["eval_mean"] == pytest.approx(summary["kappa_bar"].mean())
    above = np.mean(summary["kappa_bar"] > summary["train_max"])
    assert summary["eval_fraction_above_train_max"] == pytest.approx(above)
    assert 0 < above < 1
    expected = stats.spearmanr(scores, summary["kappa_bar"])
    assert summary["spearman_rho"] == pytest.approx(expected.statistic)
    assert summary["spearman_pvalue"] == pytest.approx(expected.pvalue)
    # For a linear model the kernel grows with distance from the data: a positive rank link.
    assert summary["spearman_rho"] > 0.3
    assert summary["spearman_pvalue"] < 1e-3

    without_scores = kernel_norm_summary(eval_view, train_view)
    assert np.isnan(without_scores["spearman_rho"]) and np.isnan(without_scores["spearman_pvalue"])
    constant = kernel_norm_summary(np.ones(5), np.ones(3), scores=np.arange(5.0))
    assert np.isnan(constant["spearman_rho"])


def test_normalized_kernel_norms_bad_inputs(diabetes):
    X, y, X_test = diabetes
    eval_view, train_view, _ = _linear_network_views(X, y, X_test, n_steps=2)
    tree_eval, _ = _boosted_tree_views(X, y, X_test, n_rounds=3)
    other_train, _ = _boosted_tree_views(X[:100], y[:100], X_test, n_rounds=2)
    with pytest.raises(ValueError, match="view_train"):
        normalized_kernel_norms(eval_view, other_train)  # different training set
    with pytest.raises(ValueError, match="checkpoints"):
        normalized_kernel_norms(tree_eval, train_view)  # different checkpoints
    with pytest.raises(ValueError, match="view_train.*zero"):
        normalized_kernel_norms(np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match="view_eval.*negative"):
        normalized_kernel_norms(np.array([1.0, -1.0]), np.ones(4))
    with pytest.raises(ValueError, match="view_train.*finite"):
        normalized_kernel_norms(np.ones(3), np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="view_train"):
        normalized_kernel_norms(np.ones(3))


# ------------------------------------------------------------------ effective parameters


def _view_from_smoother(smoother, y_train):
    m = smoother.shape[0]
    return KernelView(
        offset=np.zeros(m),
        contributions=smoother * y_train[None, :],
        unattributed=np.zeros(m),
        prediction=smoother @ y_train,
        checkpoints=np.array([1]),
        kernel_norms=np.abs(smoother).sum(axis=1, keepdims=True),
        train_kernel_norms=np.ones((smoother.shape[1], 1)),
        smoother=smoother,
    )


def test_effective_parameters_of_one_tree_is_its_number_of_leaves(diabetes):
    X, y, X_test = diabetes
    tree = DecisionTreeRegressor(max_leaf_nodes=11, random_state=0).fit(X, y)
    train_leaves, test_leaves = tree.apply(X), tree.apply(X_test)
    sizes = {leaf: np.sum(train_leaves == leaf) for leaf in np.unique(train_leaves)}

    def smoother(leaves):
        same = leaves[:, None] == train_leaves[None, :]
        return same / np.array([sizes[leaf] for leaf in leaves])[:, None]

    train_view = _view_from_smoother(smoother(train_leaves), y)
    test_view = _view_from_smoother(smoother(test_leaves), y)
    # The hand-built smoother is the tree: s(x).y is the leaf mean the tree predicts.
    np.testing.assert_allclose(train_view.prediction, tree.predict(X), rtol=1e-12)
    np.testing.assert_allclose(test_view.prediction, tree.predict(X_test), rtol=1e-12)

    assert effective_parameters(train_view, X.shape[0]) == pytest.approx(11, rel=1e-12)
    assert tree.get_n_leaves() == 11
    # ||s(x)||^2 = 1 / n_leaf(x), so p_test = (n / m) sum_x 1 / n_leaf(x).
    expected_test = X.shape[0] / X_test.shape[0] * sum(1 / sizes[leaf] for leaf in test_leaves)
    assert effective_parameters(test_view, X.shape[0]) == pytest.approx(expected_test, rel=1e-12)


def test_effective_parameters_of_least_squares_and_ridge(diabetes):
    X, y, X_test = diabetes
    n, d = X.shape
    gram_inverse = np.linalg.inv(X.T @ X)
    hat = X @ gram_inverse @ X.T
    # OLS: the hat matrix is a projection of rank d, so p_train = trace(H^2) = d.
    assert effective_parameters(_view_from_smoother(hat, y)) == pytest.approx(d, rel=1e-10)
    # Off the training set ||s(x)||^2 = x^T (X^T X)^-1 x.
    test_view = _view_from_smoother(X_test @ gram_inverse @ X.T, y)
    expected = n / X_test.shape[0] * np.einsum("ij,jk,ik->", X_test, gram_inverse, X_test)
    assert effective_parameters(test_view, n) == pytest.approx(expected, rel=1e-10)
    assert effective_parameters(test_view, n) > d  # unseen points are fit less smoothly

    # Ridge: p_train = sum_j (sigma_j^2 / (sigma_j^2 + alpha))^2 < d.
    alpha = 50.0
    ridge_smoother = X @ np.linalg.solve(X.T @ X + alpha * np.eye(d), X.T)
    ridge_view = _view_from_smoother(ridge_smoother, y)
    ridge = Ridge(alpha=alpha, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(ridge_view.prediction, ridge.predict(X), rtol=1e-8)
    singular = np.linalg.svd(X, compute_uv=False)
    expected_ridge = np.sum((singular**2 / (singular**2 + alpha)) ** 2)
    assert effective_parameters(ridge_view, n) == pytest.approx(expected_ridge, rel=1e-10)
    assert expected_ridge < d - 0.5


def test_effective_parameters_of_gradient_descent_smoother(diabetes):
    X, y, X_test = diabetes
    n = X.shape[0]
    _, train_view, _ = _linear_network_views(X, y, X_test, n_steps=25, learning_rate=0.5)
    # Closed form of full-batch GD from 0 (docs/design.md §1.6): S_T = I - (I - lr K / n)^T on train.
    design = np.hstack([X, np.ones((n, 1))])
    kernel = design @ design.T
    closed = np.eye(n) - np.linalg.matrix_power(np.eye(n) - 0.5 / n * kernel, 25)
    np.testing.assert_allclose(train_view.smoother, closed, atol=1e-10)
    expected = np.sum(closed**2)
    assert effective_parameters(train_view, n) == pytest.approx(expected, rel=1e-10)


def test_effective_parameters_bad_inputs(diabetes):
    X, y, X_test = diabetes
    view = _view_from_smoother(np.eye(4), np.arange(4.0))
    without = KernelView(
        offset=view.offset,
        contributions=view.contributions,
        unattributed=view.unattributed,
        prediction=view.prediction,
        checkpoints=view.checkpoints,
        kernel_norms=view.kernel_norms,
        train_kernel_norms=view.train_kernel_norms,
        smoother=None,
        loss="log_loss",
    )
    with pytest.raises(ValueError, match="smoother"):
        effective_parameters(without, 4)
    with pytest.raises(ValueError, match="n_train=5"):
        effective_parameters(view, 5)
    with pytest.raises(TypeError, match="n_train"):
        effective_parameters(view, 4.0)
    with pytest.raises(ValueError, match="view must be a 2-D"):
        effective_parameters(np.ones(4), 4)
    with pytest.raises(ValueError, match="view must be finite"):
        effective_parameters(np.full((2, 4), np.nan), 4)


def test_effective_parameters_accepts_smoother_rows(diabetes):
    X, y, X_test = diabetes
    hat = X @ np.linalg.solve(X.T @ X, X.T)
    assert effective_parameters(hat, X.shape[0]) == pytest.approx(X.shape[1], rel=1e-10)
    # Rows of one stacked smoother give p_train and p_test separately, as the runner does.
    view = _view_from_smoother(np.vstack([hat, X_test @ np.linalg.solve(X.T @ X, X.T)]), y)
    stacked = np.asarray(view.smoother)
    assert effective_parameters(stacked[: X.shape[0]], X.shape[0]) == pytest.approx(
        X.shape[1], rel=1e-10
    )
    assert effective_parameters(stacked[X.shape[0]:]) > X.shape[1]


# ------------------------------------------------------------------ irregularity scores


@pytest.mark.parametrize("method", ["knn", "mahalanobis", "isolation_forest"])
def test_far_away_point_is_the_most_irregular(method):
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(200, 3))
    X_eval = np.vstack([rng.normal(size=(30, 3)), [[8.0, -8.0, 8.0]]])
    scores = irregularity_scores(X_train, X_eval, method=method, random_state=0)
    assert scores.shape == (31,)
    assert np.all(np.isfinite(scores))
    assert np.argmax(scores) == 30
    # Clearly apart, not a near-tie: the margin exceeds the regular points' own spread.
    assert scores[30] - np.max(scores[:30]) > 2 * np.std(scores[:30])


def test_knn_score_is_the_mean_distance_to_the_k_nearest():
    X_train = np.arange(10.0).reshape(-1, 1)
    scores = irregularity_scores(X_train, [[4.5], [20.0], [-1.0]], n_neighbors=3)
    np.testing.assert_allclose(scores, [(0.5 + 0.5 + 1.5) / 3, (11 + 12 + 13) / 3, 2.0])


def test_mahalanobis_matches_closed_form_and_survives_singular_covariance():
    rng = np.random.default_rng(1)
    X_train = rng.normal(size=(2000, 2)) * [1.0, 10.0]
    # With n >> d Ledoit-Wolf barely shrinks: distances close to the exact Mahalanobis.
    points = np.array([[3.0, 0.0], [0.0, 30.0], [0.0, 0.0]])
    scores = irregularity_scores(X_train, points, method="mahalanobis")
    assert scores[0] == pytest.approx(3.0, rel=0.1)
    assert scores[1] == pytest.approx(3.0, rel=0.1)
    assert scores[2] < 0.2

    # A duplicated and a constant feature make the sample covariance singular.
    singular = np.column_stack([X_train, X_train[:, 0], np.full(2000, 4.0)])
    far = np.array([[0.0, 0.0, 0.0, 4.0], [6.0, 0.0, 6.0, 4.0]])
    singular_scores = irregularity_scores(singular, far, method="mahalanobis")
    assert np.all(np.isfinite(singular_scores))
    assert singular_scores[1] > 3 * singular_scores[0]


def test_isolation_forest_scores_are_seeded():
    rng = np.random.default_rng(2)
    X_train, X_eval = rng.normal(size=(100, 4)), rng.normal(size=(20, 4))
    first = irregularity_scores(X_train, X_eval, method="isolation_forest", random_state=3)
    again = irregularity_scores(X_train, X_eval, method="isolation_forest", random_state=3)
    other = irregularity_scores(X_train, X_eval, method="isolation_forest", random_state=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all((first > 0) & (first <= 1))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X_train": np.ones(5)}, ValueError, "X_train must be a 2-D"),
        ({"X_eval": np.ones((2, 3))}, ValueError, "X_eval must have the 2 features"),
        ({"X_eval": np.array([[np.nan, 1.0]])}, ValueError, "X_eval must be finite"),
        ({"X_train": np.array([["a", "b"]] * 5)}, TypeError, "X_train must be numeric"),
        ({"X_train": np.ones((0, 2))}, ValueError, "X_train must have at least one row"),
        ({"method": "lof"}, ValueError, "'method' parameter of irregularity_scores"),
        ({"n_neighbors": 7}, ValueError, "n_neighbors must be at most"),
        ({"n_neighbors": 0}, ValueError, "'n_neighbors' parameter of irregularity_scores"),
        ({"n_neighbors": 2.5}, TypeError, "'n_neighbors' parameter of irregularity_scores"),
        (
            {"method": "mahalanobis", "X_train": np.ones((6, 2))},
            ValueError,
            "X_train has no variance",
        ),
    ],
)
def test_irregularity_scores_bad_inputs(kwargs, error, match):
    arguments = {"X_train": np.arange(12.0).reshape(6, 2), "X_eval": np.ones((3, 2))}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        irregularity_scores(**arguments)


# ----------------------------------------------------------------- the irregularity curve


@pytest.fixture(scope="module")
def synthetic_regression():
    """Scores, targets and two models whose errors relate to the score differently."""
    rng = np.random.default_rng(0)
    m = 400
    scores = rng.exponential(size=m)
    y = rng.normal(size=m)
    tree = y + 0.5 * rng.normal(size=m)
    # The network is slightly better on regular points and much worse on irregular ones.
    network = y + (0.3 + 0.8 * np.maximum(scores - 1.5, 0.0)) * rng.normal(size=m)
    kappa_bar = {"mlp": 1.0 + 0.3 * scores, "xgb": np.clip(1 + 0.05 * rng.normal(size=m), 0, None)}
    return y, {"mlp": network, "xgb": tree}, kappa_bar, scores


def _curve(data, **kwargs):
    y, predictions, kappa_bar, scores = data
    arguments = {"network": "mlp", "tree": "xgb", "task": "regression"}
    arguments.update(kwargs)
    return irregularity_curve(y, predictions, kappa_bar, scores, **arguments)


def test_curve_has_every_proportion_for_both_models(synthetic_regression):
    curve = _curve(synthetic_regression)
    proportions = np.linspace(0, 1, 11)
    assert len(curve) == 22
    np.testing.assert_array_equal(curve["p"].to_numpy()[::2], proportions)
    assert set(curve.groupby("p")["model"].apply(frozenset)) == {frozenset({"mlp", "xgb"})}
    roles = dict(zip(curve["model"], curve["role"], strict=True))
    assert roles == {"mlp": "network", "xgb": "tree"}
    assert (curve["metric"] == "rmse").all()
    numeric = curve.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()
    assert (curve["n_subset"] == 40).all() and (curve["n_redraws"] == 20).all()
    np.testing.assert_array_equal(curve["n_irregular"].to_numpy()[::2], np.arange(0, 41, 4))
    # Spread is present where the subsets vary between redraws, absent where they cannot.
    middle = curve[(curve["p"] > 0.05) & (curve["p"] < 0.95)]
    spreads = ["metric_std", "gap_std", "relative_increase_std", "kappa_bar_std"]
    assert (middle[spreads] > 0).all().all()
    # (At p = 1 all redraws agree; the mean of equal numbers may differ from them by an ulp.)
    assert (curve["metric_q10"] <= curve["metric_mean"] + 1e-12).all()
    assert (curve["metric_mean"] <= curve["metric_q90"] + 1e-12).all()
    assert (curve.loc[curve["p"] == 0, "relative_increase_mean"] == 0).all()
    assert curve.attrs["n_irregular_pool"] == 40 and curve.attrs["n_regular_pool"] == 360


def test_curve_at_p_one_is_the_irregular_pool_exactly(synthetic_regression):
    y, predictions, kappa_bar, scores = synthetic_regression
    curve = _curve(synthetic_regression)
    irregular = scores > np.quantile(scores, 0.9)
    at_one = curve[curve["p"] == 1.0].set_index("model")
    for name in ("mlp", "xgb"):
        rmse = np.sqrt(np.mean((predictions[name][irregular] - y[irregular]) ** 2))
        assert at_one.loc[name, "metric_mean"] == pytest.approx(rmse, rel=1e-12)
        assert at_one.loc[name, "metric_std"] == pytest.approx(0, abs=1e-12)
        assert at_one.loc[name, "kappa_bar_mean"] == pytest.approx(
            kappa_bar[name][irregular].mean(), rel=1e-12
        )
    gap = at_one.loc["mlp", "metric_mean"] - at_one.loc["xgb", "metric_mean"]
    assert at_one.loc["mlp", "gap_mean"] == pytest.approx(gap, rel=1e-12)


def test_gap_and_network_kappa_rise_with_the_irregular_share(synthetic_regression):
    curve = _curve(synthetic_regression)
    network = curve[curve["role"] == "network"]
    tree = curve[curve["role"] == "tree"]
    gap = network["gap_mean"].to_numpy()
    assert gap[0] < 0 < gap[-1]  # the network wins on regular data, loses on irregular
    assert stats.spearmanr(network["p"], gap).statistic > 0.95
    assert network["relative_increase_mean"].iloc[-1] > 2
    assert network["kappa_bar_mean"].iloc[-1] > network["kappa_bar_mean"].iloc[0] + 0.5
    assert abs(tree["kappa_bar_mean"].iloc[-1] - tree["kappa_bar_mean"].iloc[0]) < 0.05


def test_gap_does_not_rise_when_errors_ignore_the_score():
    rng = np.random.default_rng(5)
    m = 600
    scores = rng.exponential(size=m)
    y = rng.normal(size=m)
    predictions = {"mlp": y + 0.6 * rng.normal(size=m), "xgb": y + 0.5 * rng.normal(size=m)}
    curve = irregularity_curve(
        y, predictions, None, scores, network="mlp", tree="xgb", task="regression"
    )
    network = curve[curve["role"] == "network"]
    # Same error law everywhere: the gap's change stays within its own noise.
    change = network["gap_mean"].iloc[-1] - network["gap_mean"].iloc[0]
    assert abs(change) < 3 * network["gap_std"].iloc[0] + 0.05
    assert curve["kappa_bar_mean"].isna().all()


def test_relative_increase_is_paired_difference_over_mean_gap_at_zero(synthetic_regression):
    curve = _curve(synthetic_regression, proportions=[0.0, 0.5])
    without_zero = _curve(synthetic_regression, proportions=[0.5])
    network = curve[curve["role"] == "network"].set_index("p")
    expected = (network.loc[0.5, "gap_mean"] - network.loc[0.0, "gap_mean"]) / abs(
        network.loc[0.0, "gap_mean"]
    )
    assert network.loc[0.5, "relative_increase_mean"] == pytest.approx(expected, rel=1e-10)
    # Delta(0) comes from the p = 0 subsets whether or not 0 is requested.
    pd.testing.assert_frame_equal(
        without_zero.reset_index(drop=True),
        curve[curve["p"] == 0.5].reset_index(drop=True),
    )


def test_curve_is_deterministic_for_a_seed(synthetic_regression):
    first = _curve(synthetic_regression, random_state=7)
    again = _curve(synthetic_regression, random_state=7)
    other = _curve(synthetic_regression, random_state=8)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert not np.allclose(first["gap_mean"].to_numpy()[2:-2], other["gap_mean"].to_numpy()[2:-2])


def test_curve_without_scale_gives_nan_relative_increase(synthetic_regression):
    y, predictions, _, scores = synthetic_regression
    same = {"mlp": predictions["xgb"], "xgb": predictions["xgb"]}
    with pytest.warns(RuntimeWarning, match="exactly 0"):
        curve = irregularity_curve(y, same, None, scores, network="mlp", tree="xgb",
                                   task="regression")
    assert curve["relative_increase_mean"].isna().all()
    assert (curve["gap_mean"] == 0).all()
    assert "exactly 0" in curve.attrs["relative_increase_note"]


def test_curve_for_classification_with_probabilities_and_labels():
    rng = np.random.default_rng(3)
    m, n_classes = 300, 3
    classes = np.array(["a", "b", "c"])
    codes = rng.integers(0, n_classes, size=m)
    y = classes[codes]
    scores = rng.uniform(size=m)

    def probabilities(confidence):
        logits = rng.normal(size=(m, n_classes))
        logits[np.arange(m), codes] += confidence
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    network_proba = probabilities(3.0 - 4.0 * scores)  # confident only on regular points
    tree_proba = probabilities(np.full(m, 1.5))
    predictions = {"net": network_proba, "gbdt": tree_proba}
    curve = irregularity_curve(y, predictions, None, scores, network="net", tree="gbdt",
                               task="classification", classes=classes)
    assert (curve["metric"] == "log_loss").all()
    irregular = scores > np.quantile(scores, 0.9)
    at_one = curve[curve["p"] == 1.0].set_index("model")
    for name, proba in predictions.items():
        expected = log_loss(y[irregular], proba[irregular], labels=classes)
        assert at_one.loc[name, "metric_mean"] == pytest.approx(expected, rel=1e-10)
    network = curve[curve["role"] == "network"]
    assert network["gap_mean"].iloc[-1] > network["gap_mean"].iloc[0]

    # Labels (1-D) make the default metric the error rate; integer codes need no classes.
    labels = {"net": classes[network_proba.argmax(axis=1)], "gbdt": tree_proba}
    errors = irregularity_curve(y, labels, None, scores, network="net", tree="gbdt",
                                task="classification", classes=classes)
    assert (errors["metric"] == "error_rate").all()
    error_at_one = errors[errors["p"] == 1.0].set_index("model")
    expected_error = np.mean(network_proba[irregular].argmax(axis=1) != codes[irregular])
    assert error_at_one.loc["net", "metric_mean"] == pytest.approx(expected_error)
    coded = irregularity_curve(codes, predictions, None, scores, network="net", tree="gbdt",
                               task="classification")
    pd.testing.assert_frame_equal(coded, curve)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y_true": np.zeros(10)}, ValueError, "scores must have 10 entries, got 400"),
        ({"predictions": {"mlp": np.zeros(399), "xgb": np.zeros(400)}}, ValueError,
         "predictions\\['mlp'\\] must have 400 entries"),
        ({"scores": np.zeros(10)}, ValueError, "scores must have 400 entries"),
        ({"network": "resnet"}, ValueError, "network='resnet' is not a key of predictions"),
        ({"tree": "mlp"}, ValueError, "network and tree must name different models"),
        ({"kappa_bar": {"mlp": np.ones(400), "lgbm": np.ones(400)}}, ValueError, "unknown model"),
        ({"kappa_bar": {"mlp": np.ones(3)}}, ValueError, "kappa_bar\\['mlp'\\] must have 400"),
        ({"n_redraws": 0}, ValueError, "'n_redraws' parameter of irregularity_curve"),
        ({"n_redraws": 2.0}, TypeError, "'n_redraws' parameter of irregularity_curve"),
        ({"proportions": [0.0, 1.5]}, ValueError, "proportions must lie in \\[0, 1\\]"),
        ({"proportions": []}, ValueError, "proportions must be a non-empty"),
        ({"proportions": [0.5, 0.5]}, ValueError, "proportions must not repeat"),
        ({"quantile": 1.0}, ValueError, "'quantile' parameter of irregularity_curve"),
        ({"quantile": 0.995}, ValueError, "too few irregular examples"),
        ({"task": "ranking"}, ValueError, "'task' parameter of irregularity_curve"),
        ({"metric": "accuracy"}, ValueError, "'metric' parameter of irregularity_curve"),
        ({"metric": "log_loss"}, ValueError, "metric for task='regression' must be one of"),
        ({"predictions": [1, 2]}, TypeError, "'predictions' parameter of irregularity_curve"),
        ({"classes": ["a"]}, ValueError, "classes applies to classification only"),
    ],
)
def test_curve_bad_inputs(synthetic_regression, kwargs, error, match):
    y, predictions, kappa_bar, scores = synthetic_regression
    arguments = {
        "y_true": y,
        "predictions": predictions,
        "kappa_bar": kappa_bar,
        "scores": scores,
        "network": "mlp",
        "tree": "xgb",
        "task": "regression",
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        irregularity_curve(**arguments)


def test_curve_bad_classification_inputs():
    y = np.array(["a", "b"] * 20)
    scores = np.arange(40.0)
    proba = np.full((40, 2), 0.5)
    common = {"network": "n", "tree": "t", "task": "classification"}
    with pytest.raises(ValueError, match="y_true must hold integer class codes"):
        irregularity_curve(y, {"n": proba, "t": proba}, None, scores, **common)
    with pytest.raises(ValueError, match="label 'a', which is not in classes"):
        irregularity_curve(y, {"n": proba, "t": proba}, None, scores, classes=["x", "b"], **common)
    with pytest.raises(ValueError, match="needs class probabilities"):
        irregularity_curve(y, {"n": y, "t": proba}, None, scores, metric="log_loss", **common)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        irregularity_curve(y, {"n": proba * 0.9, "t": proba}, None, scores, classes=["a", "b"],
                           **common)


# ------------------------------------------------------------------------------ fidelity


def test_fidelity_summary_rejects_what_is_not_a_telescoping_network(diabetes):
    X, y, _ = diabetes
    with pytest.raises(TypeError, match="telescoping network.*Ridge"):
        fidelity_summary(Ridge().fit(X, y), X)
    with pytest.raises(TypeError, match="telescoping network"):
        fidelity_summary(DecisionTreeRegressor, X)


def test_fidelity_summary_of_a_telescoping_network(diabetes):
    models = pytest.importorskip("tabscope.models")
    if not hasattr(models, "TelescopingMLPRegressor"):
        pytest.skip("tabscope.models.TelescopingMLPRegressor is not available yet")
    from sklearn.exceptions import NotFittedError

    X, y, X_test = diabetes
    network = models.TelescopingMLPRegressor(
        hidden_layer_sizes=(16,), optimizer="sgd", learning_rate=0.01, batch_size=None,
        max_steps=30, random_state=0,
    )
    with pytest.raises(NotFittedError):
        fidelity_summary(network, X_test)
    network.fit(X, y)
    summary = fidelity_summary(network, X_test)
    assert summary == network.telescoping_fidelity(X_test)
    assert set(summary) >= {"first_order", "trapezoid", "linearized"}
    assert all(isinstance(value, float) and value >= 0 for value in summary.values())
    # Small steps: telescoping tracks training far better than the model linearised at init.
    assert summary["trapezoid"] < summary["linearized"]
