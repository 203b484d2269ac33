"""Cells on a real Dask LocalCluster: same results as in-process, survival of a killed worker."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

from tabscope.bench.executors import DaskExecutor, make_executor
from tabscope.bench.runner import run_suite
from tabscope.bench.store import ResultsStore
from tabscope.bench.suite import parse_suite
from tabscope.vocabulary import Metric, Task

pytestmark = pytest.mark.slow  # a real Dask LocalCluster: seconds a test

distributed = pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")

SUITE = {
    "name": "dask",
    "datasets": ["sklearn:diabetes", "sklearn:wine"],
    "seeds": [0, 1],
    "models": {"xgboost": {"n_estimators": 20, "max_depth": 3},
               "sklearn-gb": {"n_estimators": 30}},
}


@pytest.fixture(scope="module")
def dask_executor():
    executor = DaskExecutor(n_workers=2, retries=2)
    yield executor
    executor.close()


def test_dask_matches_in_process(tmp_path, dask_executor):
    suite = parse_suite(SUITE)
    run_suite(suite, tmp_path / "local")
    summary = run_suite(suite, tmp_path / "dask", executor=dask_executor)
    assert summary.n_ok == 8 and summary.n_failed == 0
    local = ResultsStore(tmp_path / "local").cells().set_index("cell_id")
    remote = ResultsStore(tmp_path / "dask").cells().set_index("cell_id").loc[local.index]
    assert set(local["status"]) == set(remote["status"]) == {"ok"}
    for task in Task:
        metrics = list(map(str, Metric.of_task(task)))
        rows = local["task"] == task
        assert np.isfinite(local.loc[rows, metrics].to_numpy(dtype=float)).all()
        np.testing.assert_array_equal(local.loc[rows, metrics].to_numpy(dtype=float),
                                      remote.loc[rows, metrics].to_numpy(dtype=float))
    assert (local["split_hash"] == remote["split_hash"]).all()


def test_tuning_on_dask_matches_in_process(tmp_path, dask_executor):
    suite = parse_suite(SUITE | {"tuning": {"n_trials": 3}, "seeds": [0]})
    run_suite(suite, tmp_path / "local")
    run_suite(suite, tmp_path / "dask", executor=dask_executor)
    local, remote = (ResultsStore(tmp_path / name).trials().drop(columns="seconds")
                     for name in ("local", "dask"))
    assert len(local) == 4 * 3
    pd.testing.assert_frame_equal(local, remote)


def test_killed_worker_cells_are_retried(tmp_path, dask_executor):
    suite = parse_suite({**SUITE, "seeds": [0, 1, 2, 3],
                         "models": {"sklearn-gb": {"n_estimators": 200}}})
    client = dask_executor.client
    pids = client.run(os.getpid)  # worker address -> process id
    out = tmp_path / "killed"
    lost_cells: list[str] = []

    def kill_a_worker_running_a_cell():
        """Once a cell is stored, SIGKILL a worker while the scheduler has a cell on it."""
        deadline = time.time() + 120
        while time.time() < deadline and not lost_cells:
            try:
                started = len(ResultsStore(out, create=False).cells()) >= 1
            except Exception:  # the store is not created yet
                started = False
            busy = {address: keys for address, keys in client.processing().items() if keys}
            if started and busy:
                address, keys = next(iter(busy.items()))
                os.kill(pids[address], signal.SIGKILL)
                lost_cells.extend(map(str, keys))
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_running_a_cell)
    killer.start()
    summary = run_suite(suite, out, executor=dask_executor)
    killer.join()
    assert lost_cells, "no worker was killed while it was running a cell"
    cells = ResultsStore(out).cells()
    assert len(cells) == 8 and cells["cell_id"].is_unique
    assert summary.n_ok + summary.n_failed == 8
    # Lost cells were retried on a live worker: none needs to be recorded as failed.
    assert set(cells["status"]) == {"ok"}, cells[["cell_id", "error"]]
    assert ResultsStore(out).integrity_check() == "ok"


def test_dask_executor_validates_arguments():
    with pytest.raises(ValueError, match="n_workers"):
        DaskExecutor(n_workers=0)
    with pytest.raises(ValueError, match="executor must be one of"):
        make_executor("spark")
    with pytest.raises(ValueError, match="scheduler is only meaningful"):
        make_executor("processes", scheduler="tcp://127.0.0.1:1")


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'tabscope\[distributed\]'"):
        DaskExecutor(n_workers=1)
