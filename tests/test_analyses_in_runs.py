"""The lens analyses as part of ordinary runs (docs/design.md §1.5, §1.6; issue acceptance cases)."""

import dataclasses
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from xgboost import XGBClassifier, XGBRegressor

from tabscope.bench import analyses
from tabscope.bench.pairs import recompute_irregularity
from tabscope.bench.runner import run_suite
from tabscope.bench.store import ResultsStore
from tabscope.bench.suite import load_suite
from tabscope.models import TelescopingMLPRegressor, TreeLens


@pytest.fixture(scope="module")
def quick_diabetes(tmp_path_factory):
    """The quick suite's models and analyses on its regression dataset, one seed."""
    quick = load_suite("quick")
    suite = dataclasses.replace(quick, datasets=("sklearn:diabetes",), seeds=(0,))
    out = tmp_path_factory.mktemp("quick-diabetes")
    summary = run_suite(suite, out)
    assert summary.n_failed == 0
    return suite, ResultsStore(out)


def test_every_analysis_ran(quick_diabetes):
    _, store = quick_diabetes
    table = store.analyses()
    assert set(table["status"]) == {"ok"}, table[["analysis_id", "error"]]
    ran = set(zip(table["analysis"], table["models"].map(tuple)))
    assert ("irregularity", ("mlp", "xgboost")) in ran
    assert ("fidelity", ("mlp",)) in ran
    for model in ("mlp", "xgboost", "lightgbm", "sklearn-hgb"):
        assert ("effective_parameters", (model,)) in ran and ("kernel_norms", (model,)) in ran


def test_irregularity_curve_is_complete(quick_diabetes):
    _, store = quick_diabetes
    row = store.analyses().query("analysis == 'irregularity'").iloc[0]
    curve = store.read_array(row, "curve")
    assert sorted(curve["model"].unique()) == ["mlp", "xgboost"]
    for model, frame in curve.groupby("model"):
        np.testing.assert_allclose(np.sort(frame["p"].to_numpy()), np.linspace(0, 1, 11))
        values = frame[["metric_mean", "gap_mean", "kappa_bar_mean", "gap_std", "kappa_bar_std"]]
        assert np.isfinite(values.to_numpy()).all()
        assert (frame["n_redraws"] >= 20).all()
    # Redraws differ for p strictly between 0 and 1: the spread is really measured.
    inner = curve[(curve["p"] > 0) & (curve["p"] < 1)]
    assert (inner["gap_std"] > 0).all()


def test_irregularity_recomputes_from_stored_arrays(quick_diabetes):
    _, store = quick_diabetes
    row = store.analyses().query("analysis == 'irregularity'").iloc[0]
    stored = store.read_array(row, "curve")
    again = recompute_irregularity(store, row)
    np.testing.assert_array_equal(stored.to_numpy(dtype=object), again.to_numpy(dtype=object))


def test_pair_reads_the_scores_its_network_cell_stored(quick_diabetes):
    # The driver never preprocesses: the scores come from the network's cell, and equal
    # those of the split preprocessed for networks (docs/design.md §1.5).
    from tabscope.bench.cells import evaluation_rows
    from tabscope.bench.runner import prepare_cells
    from tabscope.datasets import load_dataset, prepare_data

    suite, store = quick_diabetes
    norms = store.analysis("kernel_norms::sklearn:diabetes::0::mlp")
    assert "irregularity_scores" in store.array_paths(norms)
    tree_norms = store.analysis("kernel_norms::sklearn:diabetes::0::xgboost")
    assert "irregularity_scores" not in store.array_paths(tree_norms)
    pair = store.analyses().query("analysis == 'irregularity'").iloc[0]
    arrays = store.read_array(pair, "arrays")
    _, splits = prepare_cells(suite, [load_dataset("sklearn:diabetes")])
    dataset, split = splits[("sklearn:diabetes", 0)]
    data = prepare_data(dataset, split, "network")
    rows = evaluation_rows(len(split.test), suite.analysis.max_eval, 0)
    expected = analyses.irregularity_scores(data.X_train, data.X_test[rows], random_state=0)
    by_row = dict(zip(split.test[rows], expected))
    np.testing.assert_array_equal(arrays["score"].to_numpy(),
                                  [by_row[row] for row in arrays["row"]])


def test_costly_analysis_is_skipped_and_keeps_the_cell(tmp_path):
    # Effective parameters above the cost budget are recorded as skipped with the
    # estimate, never as failed; GBDTs (no budget) and the other analyses still run.
    quick = load_suite("quick")
    suite = dataclasses.replace(
        quick, datasets=("sklearn:diabetes",), seeds=(0,),
        models=tuple(m for m in quick.models if m.name in ("mlp", "xgboost")),
        analysis=dataclasses.replace(quick.analysis, max_smoother_train=10, max_lens_gflop=1e-3),
    )
    summary = run_suite(suite, tmp_path)
    store = ResultsStore(tmp_path)
    cells = store.cells()
    assert summary.n_failed == 0 and cells["rmse"].notna().all()
    table = store.analyses().set_index("analysis_id")
    rows = table[table["analysis"] == "effective_parameters"]
    by_model = {json.loads(models)[0] if isinstance(models, str) else models[0]: row
                for models, row in zip(rows["models"], rows.to_dict("records"))}
    assert by_model["mlp"]["status"] == "skipped"
    assert "estimated" in by_model["mlp"]["error"] and "GFLOP" in by_model["mlp"]["error"]
    assert by_model["xgboost"]["status"] == "ok"
    assert by_model["xgboost"]["summary"]["method"] == "sketch"
    assert table.loc["irregularity::sklearn:diabetes::0::mlp+xgboost", "status"] == "ok"


BOOSTERS = [
    ("xgboost", XGBRegressor(n_estimators=30, max_depth=3), XGBClassifier(n_estimators=30, max_depth=3)),
    ("lightgbm", LGBMRegressor(n_estimators=30, num_leaves=7, verbose=-1),
     LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1)),
    ("sklearn-hgb", HistGradientBoostingRegressor(max_iter=30, early_stopping=False, l2_regularization=1.0),
     __import__("sklearn.ensemble", fromlist=["_"]).HistGradientBoostingClassifier(max_iter=30, early_stopping=False)),
    ("sklearn-gb", __import__("sklearn.ensemble", fromlist=["_"]).GradientBoostingRegressor(n_estimators=30),
     GradientBoostingClassifier(n_estimators=30)),
]


@pytest.mark.parametrize("name, regressor, classifier", BOOSTERS, ids=[b[0] for b in BOOSTERS])
def test_tree_kappa_bar_is_bounded_by_training(name, regressor, classifier):
    # Single-output trees (regression, binary): kappa_t(x) depends only on x's leaf, and every
    # leaf holds training points. (With K > 1 class trees, the Frobenius norm of a test point's
    # combination of leaves, one per class, need not occur among training points.)
    for booster, (X, y) in ((regressor, load_diabetes(return_X_y=True)),
                            (classifier, load_breast_cancer(return_X_y=True))):
        X_train, y_train, X_test = X[::2], y[::2], X[1::2]
        # Far-away inputs too: trees route them into leaves that training points define.
        X_eval = np.vstack([X_test, X_test[:5] * 50])
        lens = TreeLens(booster).fit(X_train, y_train)
        view = lens.kernel_view(X_eval)
        train_bar = analyses.normalized_kernel_norms(view.train_kernel_norms, view.train_kernel_norms)
        test_bar = analyses.normalized_kernel_norms(view)
        assert train_bar.mean() == pytest.approx(1.0, rel=1e-12)
        assert test_bar.max() <= train_bar.max() * (1 + 1e-9)


def test_network_kappa_bar_is_not_clipped():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    net = TelescopingMLPRegressor(hidden_layer_sizes=(32,), optimizer="sgd", learning_rate=0.01,
                                  batch_size=None, max_steps=50, random_state=0).fit(X[::2], y[::2])
    view = net.kernel_view(np.vstack([X[1::2], X[1:6:2] * 40]), norm_sample_size=None)
    train_bar = analyses.normalized_kernel_norms(view.train_kernel_norms, view.train_kernel_norms)
    test_bar = analyses.normalized_kernel_norms(view)
    assert train_bar.mean() == pytest.approx(1.0, rel=1e-12)
    # Tangent kernels grow with the input: far-away points leave the training range.
    assert test_bar[-3:].min() > train_bar.max()
