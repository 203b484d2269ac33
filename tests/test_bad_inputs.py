"""The bad-input table: what a user may feed tabscope, and the exact error each one gets.

Each row is (what is tried, the exception type or CLI exit status, words the message must
contain). Python API rows raise; CLI rows run the real `tabscope` command and must print one
line, never a traceback, and leave the results directory as it was.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

from support import write_suite

from tabscope.bench.store import DB_NAME, ResultsStore, StoreError
from tabscope.bench.suite import SuiteError, parse_suite
from tabscope.datasets import DatasetError, load_dataset
from tabscope.models import TelescopingMLPClassifier, TelescopingMLPRegressor, TreeLens

X_REG, Y_REG = load_diabetes(return_X_y=True)
X_CLF, Y_CLF = load_iris(return_X_y=True)


def small_mlp(**params):
    params = {"hidden_layer_sizes": (8,), "max_steps": 5, "n_checkpoints": 2, "random_state": 0,
              **params}
    return TelescopingMLPRegressor(**params)


def with_value(value):
    X = X_REG[:50].copy()
    X[3, 2] = value
    return X


def fitted_mlp():
    return small_mlp().fit(X_REG[:60], Y_REG[:60])


def fitted_lens():
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=3).fit(X_CLF, Y_CLF)


API_CASES = [
    ("nan in X", lambda: small_mlp().fit(with_value(np.nan), Y_REG[:50]), ValueError, "NaN"),
    ("inf in X", lambda: small_mlp().fit(with_value(np.inf), Y_REG[:50]), ValueError, "infinity"),
    ("string features", lambda: small_mlp().fit(np.array([["a", "b"]] * 10), np.arange(10.0)),
     ValueError, "float"),
    ("empty data", lambda: small_mlp().fit(np.empty((0, 3)), np.empty(0)), ValueError, "0 sample"),
    ("single row classification",
     lambda: TelescopingMLPClassifier(max_steps=2, n_checkpoints=1).fit(X_CLF[:1], Y_CLF[:1]), ValueError, "class"),
    ("one class", lambda: TelescopingMLPClassifier(max_steps=2, n_checkpoints=1).fit(X_CLF[:40], np.zeros(40)),
     ValueError, "class"),
    ("wrong feature count at predict", lambda: fitted_mlp().predict(X_REG[:5, :4]), ValueError,
     "features"),
    ("mismatched X and y", lambda: small_mlp().fit(X_REG[:50], Y_REG[:40]), ValueError,
     "inconsistent numbers of samples"),
    ("kernel_view before fit", lambda: small_mlp().kernel_view(X_REG[:5]), Exception, "not fitted"),
    ("negative learning rate", lambda: small_mlp(learning_rate=-0.1).fit(X_REG[:50], Y_REG[:50]),
     ValueError, "learning_rate"),
    ("n_checkpoints above max_steps",
     lambda: small_mlp(n_checkpoints=50).fit(X_REG[:50], Y_REG[:50]), ValueError, "n_checkpoints"),
    ("unknown optimizer", lambda: small_mlp(optimizer="rmsprop").fit(X_REG[:50], Y_REG[:50]),
     ValueError, "optimizer"),
    ("more classes than the booster knows",
     lambda: TreeLens.from_fitted(fitted_lens(), X_CLF, np.where(Y_CLF == 2, 3, Y_CLF)),
     ValueError, "class"),
    ("unsupported booster setting",
     lambda: TreeLens.from_fitted(
         __import__("xgboost").XGBRegressor(n_estimators=2, subsample=0.5).fit(X_REG, Y_REG),
         X_REG, Y_REG), ValueError, "subsample"),
    ("unknown dataset scheme", lambda: load_dataset("kaggle:titanic"), DatasetError, "kaggle"),
    ("unknown bundled dataset", lambda: load_dataset("sklearn:irises"), DatasetError, "irises"),
    ("uncached OpenML id offline", lambda: load_dataset("openml:123456789"), DatasetError,
     "123456789"),
    ("suite: negative seed", lambda: parse_suite({"datasets": ["sklearn:iris"], "seeds": [-1],
                                                  "models": {"xgboost": {}}}), SuiteError, "seeds"),
    ("suite: unknown analysis", lambda: parse_suite({"datasets": ["sklearn:iris"], "analyses": ["x"],
                                                     "models": {"xgboost": {}}}), SuiteError, "'x'"),
    ("suite: negative learning rate for the mlp",
     lambda: parse_suite({"datasets": ["sklearn:iris"],
                          "models": {"mlp": {"learning_rate": -1.0}}}), SuiteError, "learning_rate"),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in API_CASES],
                         ids=[c[0] for c in API_CASES])
def test_python_api_bad_input(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words.lower() in str(info.value).lower()


GOOD_SUITE = """
datasets = ["sklearn:iris"]
seeds = [0]
[models.xgboost]
n_estimators = 3
"""


def _csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


CLI_CASES = [
    ("unknown model in suite", lambda t: ["run", write_suite(t / "s.toml", GOOD_SUITE.replace(
        "xgboost", "xgbooost"))], 2, "xgbooost"),
    ("typo in a suite key", lambda t: ["run", write_suite(t / "s.toml", GOOD_SUITE.replace(
        "seeds", "sedes"))], 2, "sedes"),
    ("malformed toml", lambda t: ["run", write_suite(t / "s.toml", GOOD_SUITE + "[[[")], 2, "TOML"),
    ("missing suite file", lambda t: ["run", t / "nothing.toml"], 2, "nothing.toml"),
    ("truncated parquet source", lambda t: ["datasets", "show", f"file:{_csv(t, 'x.parquet', 'PAR1')}?target=y"],
     2, "parquet"),
    ("duplicate column names", lambda t: ["datasets", "show",
                                          f"file:{_csv(t, 'd.csv', 'a,a,y' + chr(10) + '1,2,3' + chr(10))}?target=y"],
     2, "more than once"),
    ("missing target column", lambda t: ["datasets", "show",
                                         f"file:{_csv(t, 'm.csv', 'a,b' + chr(10) + '1,2' + chr(10))}?target=y"],
     2, "target column 'y'"),
    ("results of a missing directory", lambda t: ["results", t / "none"], 2, "no tabscope results"),
    ("non-positive --n-jobs", lambda t: ["run", "--n-jobs", "0"], 2, "positive integer"),
    ("--workers without dask", lambda t: ["run", "--workers", "2"], 2, "--executor dask"),
]


@pytest.mark.parametrize("make_args, status, words", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(run_cli, tmp_path, make_args, status, words):
    out = tmp_path / "results"
    args = [str(a) for a in make_args(tmp_path)]
    if args[0] == "run":
        args += ["--out", str(out), "--no-report"]
    result = run_cli(*args)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    message = (result.stderr.strip().splitlines() or [""])[-1]
    assert words.lower() in message.lower(), result.stderr
    assert not (out / DB_NAME).exists() or ResultsStore(out).cells().empty


def dump(path):
    with sqlite3.connect(path) as connection:
        return list(connection.iterdump())


def test_incompatible_results_directory(run_cli, tmp_path):
    out = tmp_path / "old"
    ResultsStore(out)
    with sqlite3.connect(out / DB_NAME) as connection:
        connection.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    before = dump(out / DB_NAME)
    result = run_cli("run", write_suite(tmp_path / "s.toml", GOOD_SUITE), "--out", out, "--no-report")
    assert result.returncode == 2 and "schema version 0" in result.stderr
    assert dump(out / DB_NAME) == before
    with pytest.raises(StoreError, match="schema version 0"):
        ResultsStore(out)


def test_plugin_that_raises_in_fit(run_cli, tmp_path):
    suite = GOOD_SUITE + '\n[models."sklearn.naive_bayes:MultinomialNB"]\n'
    result = run_cli("run", write_suite(tmp_path / "s.toml", suite), "--out", tmp_path / "o",
                     "--no-report")
    assert result.returncode == 1  # the run completes; the failed cell is reported
    cells = ResultsStore(tmp_path / "o").cells().set_index("model")
    assert cells.loc["xgboost", "status"] == "ok"
    assert cells.loc["sklearn.naive_bayes:MultinomialNB", "status"] == "failed"
    assert "Negative values" in cells.loc["sklearn.naive_bayes:MultinomialNB", "error"]


def test_read_only_results_directory(run_cli, tmp_path, read_only_directory):
    result = run_cli("run", write_suite(tmp_path / "s.toml", GOOD_SUITE), "--out",
                     read_only_directory, "--no-report")
    assert result.returncode == 2 and "not writable" in result.stderr
    assert list(read_only_directory.iterdir()) == []
