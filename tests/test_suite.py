"""Suite files: validation names the offending key, built-in suites load."""

import pytest

from tabscope.bench.suite import SuiteError, load_suite, parse_suite

BASE = {
    "datasets": ["sklearn:diabetes"],
    "models": {"xgboost": {"n_estimators": 5}},
}


def suite(**changes):
    return parse_suite({**BASE, **changes})


@pytest.mark.parametrize("name", ["quick", "paper-fig5"])
def test_builtin_suites_are_valid(name):
    loaded = load_suite(name)
    assert loaded.name == name
    assert loaded.datasets and loaded.models and loaded.seeds


def test_quick_suite_meets_its_promise():
    quick = load_suite("quick")
    assert len(quick.datasets) >= 4 and len(quick.models) >= 4 and len(quick.seeds) >= 3
    assert set(quick.analyses) == {"irregularity", "effective_parameters", "fidelity"}
    roles = {quick.model(name).spec.role for pair in quick.compare for name in pair}
    assert roles == {"network", "tree"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dataset": ["sklearn:wine"]}, "unknown key 'dataset'"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"seeds": [1, 1]}, "seed twice"),
        ({"metrics": ["rmse", "auc"]}, "unknown metric 'auc'"),
        ({"analyses": ["irregular"]}, "unknown analysis 'irregular'"),
        ({"analyses": ["irregularity"]}, "needs at least one compare pair"),
        ({"compare": [["mlp", "xgboost"]]}, "compare names model 'mlp'"),
        ({"models": {"xgbost": {}}}, "unknown model 'xgbost'"),
        ({"models": {"xgboost": {"n_estimator": 5}}}, "unknown parameter(s) ['n_estimator']"),
        ({"models": {"ridge": {"estimator": "sklearn.linear_model:Rigde"}}}, "no attribute 'Rigde'"),
        ({"split": {"test_size": 1.5}}, "split.test_size"),
        ({"split": {"tests_size": 0.2}}, "unknown key 'tests_size' in [split]"),
        ({"analysis": {"n_redraws": 0}}, "'n_redraws' parameter of [analysis]"),
        ({"analysis": {"max_train": 2000}}, "unknown key 'max_train' in [analysis]"),
        ({"analysis": {"max_eval": True}}, "analysis.max_eval must not be a boolean"),
        ({"analysis": {"norm": "l3"}}, "'norm' parameter of [analysis]"),
        ({"analysis": {"irregularity_method": "lof"}}, "irregularity_method"),
        ({"analysis": {"attribution_window": 0}}, "'attribution_window' parameter of [analysis]"),
        ({"analysis": {"attribution_window": "all"}}, "'attribution_window' parameter of [analysis]"),
        ({"datasets": []}, "datasets"),
        ({"seeds": [True]}, "seeds"),
    ],
)
def test_bad_suites_name_the_problem(changes, message):
    with pytest.raises(SuiteError, match=None) as info:
        suite(**changes)
    assert message in str(info.value)


def test_plugin_by_import_path_with_parameters():
    loaded = suite(models={"ridge": {"estimator": "sklearn.linear_model:Ridge", "alpha": 2.0},
                           "sklearn.neighbors:KNeighborsRegressor": {"n_neighbors": 3}})
    ridge = loaded.model("ridge").spec.build("regression", loaded.model("ridge").params)
    assert ridge.alpha == 2.0
    knn = loaded.model("sklearn.neighbors:KNeighborsRegressor")
    assert knn.spec.build("regression", knn.params).n_neighbors == 3
    with pytest.raises(ValueError, match="no estimator for classification"):
        knn.spec.build("classification")


def test_malformed_toml_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('datasets = ["sklearn:wine"\n')
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(path)


def test_missing_suite_lists_builtins():
    with pytest.raises(SuiteError, match="quick"):
        load_suite("no-such-suite")


def test_config_hash_changes_with_parameters():
    a = suite(models={"xgboost": {"n_estimators": 5}}).models[0]
    b = suite(models={"xgboost": {"n_estimators": 6}}).models[0]
    assert a.config_hash() != b.config_hash()
    assert a.config_hash() == suite().models[0].config_hash()
