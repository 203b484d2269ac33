"""The runner end to end on bundled data: cells, resume, determinism, failures."""

import numpy as np
import pandas as pd
import pytest

from tabscope.bench.runner import run_suite
from tabscope.bench.store import ResultsStore
from tabscope.bench.suite import parse_suite
from tabscope.vocabulary import Metric, Task

REGRESSION_METRICS = tuple(map(str, Metric.of_task(Task.REGRESSION)))
CLASSIFICATION_METRICS = tuple(map(str, Metric.of_task(Task.CLASSIFICATION)))

SMALL = {
    "name": "small",
    "datasets": ["sklearn:diabetes", "sklearn:iris"],
    "seeds": [0, 1],
    "models": {
        "xgboost": {"n_estimators": 10, "max_depth": 3},
        "sklearn-gb": {"n_estimators": 10},
        "lightgbm": {"n_estimators": 10, "num_leaves": 7},
    },
}


def test_small_suite_runs_every_cell(tmp_path):
    summary = run_suite(parse_suite(SMALL), tmp_path)
    assert (summary.n_cells, summary.n_ok, summary.n_failed) == (12, 12, 0)
    cells = ResultsStore(tmp_path).cells()
    assert len(cells) == 12 and set(cells["status"]) == {"ok"}
    regression = cells[cells["task"] == "regression"]
    classification = cells[cells["task"] == "classification"]
    assert regression[["rmse", "mae", "r2"]].notna().all().all()
    assert regression["accuracy"].isna().all()
    assert classification[["accuracy", "log_loss", "roc_auc"]].notna().all().all()
    assert (classification["accuracy"] > 0.8).all()  # iris is easy: a broken pipeline is not
    # Every model of a (dataset, seed) saw the same split.
    assert cells.groupby(["dataset", "seed"])["split_hash"].nunique().eq(1).all()
    predictions = ResultsStore(tmp_path).read_frame(cells["predictions_path"].iloc[0])
    assert len(predictions) == cells["n_test"].iloc[0]


def assert_same_scores(first: pd.DataFrame, second: pd.DataFrame) -> None:
    """Both runs scored every cell, with bit-identical metrics.

    Every cell must be ok and carry its task's metrics: NaN equals NaN in numpy's
    comparisons, so two runs whose cells all failed would otherwise look identical.
    """
    first = first.set_index("cell_id")
    second = second.set_index("cell_id").loc[first.index]
    for cells in (first, second):
        assert set(cells["status"]) == {"ok"}, cells.loc[cells["status"] != "ok", "error"]
    for task, metrics in (("regression", REGRESSION_METRICS), ("classification", CLASSIFICATION_METRICS)):
        rows = first["task"] == task
        assert rows.any(), f"no {task} cells to compare"
        values = first.loc[rows, list(metrics)].to_numpy(dtype=float)
        assert np.isfinite(values).all(), f"{task} cells without scores"
        np.testing.assert_array_equal(values, second.loc[rows, list(metrics)].to_numpy(dtype=float))


def test_rerun_skips_finished_cells_and_seeds_reproduce(tmp_path):
    suite = parse_suite(SMALL)
    run_suite(suite, tmp_path / "a")
    before = ResultsStore(tmp_path / "a").cells()
    again = run_suite(suite, tmp_path / "a")
    assert again.n_skipped == 12 and again.n_ok == 0
    after = ResultsStore(tmp_path / "a").cells()
    pd.testing.assert_series_equal(before["fit_seconds"], after["fit_seconds"])
    run_suite(suite, tmp_path / "b")
    assert_same_scores(before, ResultsStore(tmp_path / "b").cells())


def test_changed_parameters_rerun_the_model(tmp_path):
    run_suite(parse_suite(SMALL), tmp_path)
    changed = {**SMALL, "models": {**SMALL["models"], "xgboost": {"n_estimators": 12}}}
    summary = run_suite(parse_suite(changed), tmp_path)
    assert summary.n_ok == 4 and summary.n_skipped == 8


def test_changed_split_settings_rerun_every_cell(tmp_path):
    run_suite(parse_suite(SMALL), tmp_path)
    summary = run_suite(parse_suite({**SMALL, "split": {"test_size": 0.3}}), tmp_path)
    assert summary.n_skipped == 0 and summary.n_ok == 12
    assert ResultsStore(tmp_path).cells()["cell_id"].is_unique


def test_failing_plugin_is_recorded_and_run_goes_on(tmp_path):
    # MultinomialNB refuses the negative features that network preprocessing produces.
    suite = parse_suite({**SMALL, "datasets": ["sklearn:iris"], "models": {
        "sklearn.naive_bayes:MultinomialNB": {}, "xgboost": {"n_estimators": 5}}})
    summary = run_suite(suite, tmp_path)
    assert summary.n_failed == 2 and summary.n_ok == 2
    cells = ResultsStore(tmp_path).cells()
    failed = cells[cells["status"] == "failed"]
    assert failed["error"].str.contains("Negative values").all()
    assert failed["model"].eq("sklearn.naive_bayes:MultinomialNB").all()


def test_model_without_the_task_fails_its_cells_clearly(tmp_path):
    suite = parse_suite({**SMALL, "models": {"sklearn.linear_model:Ridge": {}}})
    summary = run_suite(suite, tmp_path)
    cells = ResultsStore(tmp_path).cells().set_index("dataset")
    assert summary.n_failed == 2
    assert cells.loc["sklearn:iris", "error"].str.contains("no estimator for classification").all()


@pytest.mark.slow
def test_processes_give_the_same_metrics(tmp_path):
    suite = parse_suite({**SMALL, "seeds": [0]})
    run_suite(suite, tmp_path / "serial")
    run_suite(suite, tmp_path / "parallel", n_jobs=2)
    # One thread per cell: the number of workers changes no bit of any score.
    assert_same_scores(ResultsStore(tmp_path / "serial").cells(),
                       ResultsStore(tmp_path / "parallel").cells())


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="suite must be a Suite"):
        run_suite({"datasets": []}, tmp_path)
    with pytest.raises(ValueError, match="n_jobs"):
        run_suite(parse_suite(SMALL), tmp_path, n_jobs=0)
