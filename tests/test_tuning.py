"""Tuning studies (bench/tuning.py) and early stopping on the validation part
(models/fitting.py) as a benchmark runs them: deterministic, resumable, exact lenses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from tabscope.bench.cell_fitting import fit_model, fit_target
from tabscope.bench.cells import lens_for
from tabscope.bench.runner import prepare_cells, run_suite
from tabscope.bench.store import ResultsStore, storage_key
from tabscope.bench.suite import SuiteError, load_suite, parse_suite
from tabscope.bench.tuning import TuningSettings, journal_path, read_journal, run_study
from tabscope.datasets import load_dataset, prepare_data
from tabscope.models.search_spaces import check_search_space
from tabscope.reports import write_report

from support import tabscope_command, write_suite

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

SUITE = """
name = "tuning"
datasets = ["sklearn:diabetes", "sklearn:breast_cancer"]
seeds = [0]
[split]
test_size = 0.25
valid_size = 0.15
[tuning]
n_trials = 3
[models.mlp]
hidden_layer_sizes = [16]
optimizer = "momentum"
learning_rate = 0.01
max_steps = 60
validation_interval = 10
n_iter_no_change = 2
[models.xgboost]
n_estimators = 30
[models.sklearn-hgb]
max_iter = 30
"""

VOLATILE = ["fit_seconds", "predict_seconds", "finished_at", "predictions_path"]


def _cells(store: ResultsStore) -> pd.DataFrame:
    return store.cells().drop(columns=VOLATILE).set_index("cell_id")


def _trials(store: ResultsStore) -> pd.DataFrame:
    return store.trials().drop(columns=["seconds"]).set_index(["cell_id", "trial"])


def test_a_tuned_run_stores_every_trial_and_selects_on_validation(tmp_path):
    suite = load_suite(write_suite(tmp_path / "t.toml", SUITE))
    summary = run_suite(suite, tmp_path / "out")
    assert summary.n_failed == 0
    store = ResultsStore(tmp_path / "out")
    trials = store.trials()
    assert len(trials) == 6 * 3
    for cell_id, group in trials.groupby("cell_id"):
        assert list(group["trial"]) == [0, 1, 2]
        assert group["selected"].sum() == 1
        complete = group[group["status"] == "complete"]
        maximize = "breast_cancer" in cell_id  # accuracy; rmse otherwise
        best = complete["validation_score"].max() if maximize else complete["validation_score"].min()
        chosen = group[group["selected"] == 1].iloc[0]
        assert chosen["validation_score"] == best
        # the cell's test score is the selected trial's: the refit is the same model
        cell = store.cell(cell_id)
        assert cell[("accuracy" if maximize else "rmse")] == pytest.approx(chosen["test_score"],
                                                                           rel=1e-12)
        assert cell["stopping_step"] == chosen["steps"]
    assert json.loads(trials.loc[0, "params"]) == {}  # trial 0: the suite's configuration
    assert not (tmp_path / "out" / "journals").exists() or not any(
        (tmp_path / "out" / "journals").iterdir())

    markdown = write_report(tmp_path / "out")["markdown"].read_text()
    tuning = markdown.split("## Tuning and early stopping")[1].split("\n## ")[0]
    assert "Selected configuration per cell" in tuning and "figures/tuning.png" in tuning
    assert "Stopping point on the validation part" in tuning
    assert (tmp_path / "out" / "figures" / "tuning.png").exists()
    normalised = markdown.split("## Normalised scores across datasets")[1].split("\n## ")[0]
    assert "figures/normalised_trials.png" in normalised and "needs the 'trials'" not in normalised


def test_the_report_says_why_a_run_without_tuning_has_no_curve(tmp_path):
    toml = 'name = "n"\ndatasets = ["sklearn:diabetes"]\nseeds = [0]\n[models.xgboost]\n'
    run_suite(load_suite(write_suite(tmp_path / "n.toml", toml)), tmp_path / "out")
    markdown = write_report(tmp_path / "out")["markdown"].read_text()
    tuning = markdown.split("## Tuning and early stopping")[1].split("\n## ")[0]
    assert "No data: the suite has no [tuning] table" in tuning


def test_a_timeout_stops_the_study_after_the_running_trial():
    space = check_search_space({"x": {"low": 0.0, "high": 1.0}}, "search")

    def objective(params, report):
        time.sleep(0.05)
        return 0.0, 0.0, 1

    trials, selected = run_study(TuningSettings(n_trials=10, timeout=0.01), space, 0,
                                 objective, maximize=True)
    assert len(trials) == 1 and selected == 0


def test_the_pruner_stops_hopeless_networks_only_after_its_warm_up():
    """A network that cannot learn (learning rate 1e-7) is pruned once the pruner has its
    startup trials, and never before the warm-up steps; one that learns is never pruned."""
    from sklearn.datasets import load_diabetes
    from tabscope.bench.tuning import PRUNING_STARTUP_TRIALS, PRUNING_WARMUP_STEPS
    from tabscope.models import TelescopingMLPRegressor
    from tabscope.models.fitting import fit_with_validation

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    space = check_search_space({"learning_rate": {"choices": [1e-2, 1e-7]}}, "search")

    def objective(params, report):
        model = TelescopingMLPRegressor((16,), max_steps=400, validation_interval=20,
                                        n_iter_no_change=100, random_state=0, **params)
        fit_with_validation("network", model, X[:300], y[:300], X[300:380], y[300:380],
                            validation_callback=report)
        return model.score(X[300:380], y[300:380]), model.score(X[380:], y[380:]), model.best_step_

    trials, _ = run_study(TuningSettings(n_trials=14, sampler="random"), space, 3, objective,
                          maximize=True)
    pruned = [t for t in trials if t.status == "pruned"]
    assert pruned, [(t.params, t.status) for t in trials]
    assert all(t.params["learning_rate"] == 1e-7 for t in pruned)
    assert all(t.steps >= PRUNING_WARMUP_STEPS for t in pruned)
    hopeless_late = [t for t in trials[1 + PRUNING_STARTUP_TRIALS:]
                     if t.params["learning_rate"] == 1e-7]
    assert all(t.status == "pruned" for t in hopeless_late)


def test_one_and_two_workers_give_the_same_store(tmp_path):
    suite = load_suite(write_suite(tmp_path / "t.toml", SUITE))
    run_suite(suite, tmp_path / "one", n_jobs=1)
    run_suite(suite, tmp_path / "two", n_jobs=2)
    one, two = ResultsStore(tmp_path / "one"), ResultsStore(tmp_path / "two")
    pd.testing.assert_frame_equal(_cells(one), _cells(two))
    pd.testing.assert_frame_equal(_trials(one), _trials(two))


def test_an_interrupted_study_resumes_without_repeating_a_trial(tmp_path):
    settings = TuningSettings(n_trials=6, sampler="tpe")
    space = check_search_space({"x": {"low": -3.0, "high": 3.0}, "k": {"low": 1, "high": 9}},
                               "search")
    calls = []

    def objective(params, report):
        calls.append(params)
        if params.get("crash"):
            raise KeyboardInterrupt
        value = -(params.get("x", 0.0) - 1.0) ** 2 - params.get("k", 5)
        return value, value, 1

    whole, selected = run_study(settings, space, 7, objective, maximize=True)
    assert len(calls) == 6
    journal = tmp_path / "cell.jsonl"

    calls.clear()
    stop_after = 3

    def interrupted(params, report):
        if len(calls) == stop_after:
            raise KeyboardInterrupt  # the worker dies mid-study
        return objective(params, report)

    with pytest.raises(KeyboardInterrupt):
        run_study(settings, space, 7, interrupted, maximize=True, journal=journal,
                  config_hash="h")
    assert len(read_journal(journal, "h")) == stop_after
    assert read_journal(journal, "other configuration") == []
    with open(journal, "a") as handle:
        handle.write('{"number": 3, "para')  # killed in the middle of writing a line
    calls.clear()
    resumed, resumed_selected = run_study(settings, space, 7, objective, maximize=True,
                                          journal=journal, config_hash="h")
    assert len(calls) == 6 - stop_after  # the finished trials were read, not rerun
    assert [t.params for t in resumed] == [t.params for t in whole]
    assert [t.validation_score for t in resumed] == [t.validation_score for t in whole]
    assert resumed_selected == selected


def test_random_and_tpe_samplers_are_seeded_by_the_cell(tmp_path):
    space = check_search_space({"x": {"low": 1e-4, "high": 1.0, "log": True}}, "search")

    def objective(params, report):
        return params.get("x", 0.5), 0.0, 1

    for sampler in ("random", "tpe"):
        settings = TuningSettings(n_trials=4, sampler=sampler)
        first = [t.params for t in run_study(settings, space, 1, objective, maximize=True)[0]]
        again = [t.params for t in run_study(settings, space, 1, objective, maximize=True)[0]]
        other = [t.params for t in run_study(settings, space, 2, objective, maximize=True)[0]]
        assert first == again and first != other
        assert all(1e-4 <= p["x"] <= 1.0 for p in first[1:])


@pytest.mark.parametrize("model, params", [
    ("xgboost", {"n_estimators": 300, "learning_rate": 0.3}),
    ("lightgbm", {"n_estimators": 300, "learning_rate": 0.3}),
    ("sklearn-hgb", {"max_iter": 300, "learning_rate": 0.3}),
    ("sklearn-gb", {"n_estimators": 300, "learning_rate": 0.3}),
])
@pytest.mark.parametrize("dataset", ["sklearn:diabetes", "sklearn:breast_cancer"])
def test_tree_lens_is_exact_on_the_early_stopped_booster_of_a_cell(tmp_path, model, params,
                                                                   dataset):
    toml = (f'name = "es"\ndatasets = ["{dataset}"]\nseeds = [0]\n'
            f'[models.{model}]\n' + "".join(f"{k} = {v}\n" for k, v in params.items()))
    suite = load_suite(write_suite(tmp_path / "es.toml", toml))
    tasks, _ = prepare_cells(suite, [load_dataset(dataset)])
    task = tasks[0]
    data = prepare_data(task.dataset, task.split, task.model.spec.preprocessing)
    estimator = fit_model(task, data, task.model.params)
    step = task.model.spec.stopping_step(estimator)
    assert step < 300  # it stopped on the validation part
    lens = lens_for(estimator, data, fit_target(data))
    assert lens.n_rounds_ == step
    if model == "sklearn-gb":  # the refit is the full fit cut at the selected stage count
        full = task.model.spec.build(task.dataset.task, {**task.model.params},
                                     random_state=task.seed).fit(data.X_train, fit_target(data))
        staged = list(full.staged_predict(data.X_test))[step - 1]
        np.testing.assert_array_equal(estimator.predict(data.X_test), staged)
    view = lens.kernel_view(data.X_test)
    if model == "xgboost":
        expected = estimator.predict(data.X_test, output_margin=True)
    elif model == "lightgbm":
        expected = estimator.predict(data.X_test, raw_score=True)
    elif hasattr(estimator, "decision_function"):
        expected = estimator.decision_function(data.X_test)
    else:
        expected = estimator.predict(data.X_test)
    expected = np.asarray(expected, dtype=np.float64)
    error = np.abs(view.reconstruction() - expected).max() / np.abs(expected).max()
    assert error <= 1e-5


def test_a_plug_in_is_tuned_on_its_own_configuration_only(tmp_path):
    toml = ('name = "p"\ndatasets = ["sklearn:diabetes"]\nseeds = [0]\n[tuning]\nn_trials = 3\n'
            '[models.ridge]\nestimator = "sklearn.linear_model:Ridge"\n')
    run_suite(load_suite(write_suite(tmp_path / "p.toml", toml)), tmp_path / "out")
    store = ResultsStore(tmp_path / "out")
    assert store.cells()["status"].tolist() == ["ok"]
    assert store.cells()["stopping_step"].isna().all()
    assert store.trials()["trial"].tolist() == [0]  # no search space: nothing else to try


def test_early_stopping_false_trains_the_whole_budget(tmp_path):
    toml = ('name = "es"\ndatasets = ["sklearn:diabetes"]\nseeds = [0]\n'
            '[models.xgboost]\nn_estimators = 300\nlearning_rate = 0.3\nearly_stopping = false\n')
    suite = load_suite(write_suite(tmp_path / "es.toml", toml))
    run_suite(suite, tmp_path / "out")
    assert ResultsStore(tmp_path / "out").cells()["stopping_step"].tolist() == [300]


@pytest.mark.parametrize("table, key", [
    ({"tuning": {"n_trial": 3}}, "n_trial"),
    ({"tuning": {"sampler": "grid"}}, "sampler"),
    ({"tuning": {"n_trials": -1}}, "n_trials"),
    ({"tuning": {"timeout": 0}}, "timeout"),
    ({"models": {"xgboost": {"search": {"max_dept": {"low": 1, "high": 3}}}}}, "max_dept"),
    ({"models": {"xgboost": {"search": {"eta": {"low": 1, "high": 0.5}}}}}, "eta"),
    ({"models": {"xgboost": {"search": {"gamma": {"low": 0.0, "high": 1.0, "log": True}}}}},
     "gamma"),
    ({"models": {"xgboost": {"early_stopping": "yes"}}}, "early_stopping"),
    ({"tuning": {"n_trials": 2}, "split": {"valid_size": 0}}, "valid_size"),
])
def test_tuning_mistakes_name_the_key(table, key):
    data = {"datasets": ["sklearn:diabetes"], "models": {"xgboost": {}}} | table
    with pytest.raises(SuiteError, match=key):
        parse_suite(data)


KILL_SUITE = """
name = "kill"
datasets = ["sklearn:diabetes"]
seeds = [0]
[split]
valid_size = 0.15
[tuning]
n_trials = 5
[models.sklearn-gb]
n_estimators = 400
"""


@pytest.mark.slow
def test_kill_9_mid_study_then_resume(tmp_path):
    suite = write_suite(tmp_path / "kill.toml", KILL_SUITE)
    out = tmp_path / "out"
    journal = journal_path(out, storage_key("sklearn:diabetes::sklearn-gb::0"))
    command = [*tabscope_command(), "run", str(suite), "--out", str(out), "--no-report"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    lines = 0
    while time.time() < deadline and process.poll() is None:
        lines = len(journal.read_text().splitlines()) if journal.exists() else 0
        if lines >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {json.loads(line)["number"]: json.loads(line)
                for line in journal.read_text().splitlines() if line.endswith("}")}
    assert 2 <= len(finished) < 5
    assert ResultsStore(out).trials().empty  # the cell was not stored

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run(
        [*tabscope_command(), "run", str(suite), "--out", str(tmp_path / "ref"), "--no-report"],
        capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    store, uninterrupted = ResultsStore(out), ResultsStore(tmp_path / "ref")
    trials = store.trials()
    assert list(trials["trial"]) == [0, 1, 2, 3, 4]
    # No finished trial was repeated: its time is the one journalled before the kill.
    for number, record in finished.items():
        assert trials.loc[number, "seconds"] == record["seconds"]
    pd.testing.assert_frame_equal(_trials(store), _trials(uninterrupted))
    pd.testing.assert_frame_equal(_cells(store), _cells(uninterrupted))
    assert store.integrity_check() == "ok"
