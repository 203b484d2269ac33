"""The runner: expand a suite into cells, run them, store every result as it arrives.

Datasets are loaded and split once, in the driver, and shipped with each cell; the driver alone
writes the store. A cell already finished with the same configuration is skipped, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tabscope.datasets import (Dataset, OpenMLUnavailableError, Split, describe_dataset,
                               expand_source, load_dataset, make_split)
from tabscope.vocabulary import Analysis

from .cells import CellOutcome, CellTask, failed_outcome, run_cell
from .executors import Executor, WorkerLost, available_cores, make_executor
from .pairs import PairScheduler
from .store import ARRAYS_DIR, DB_NAME, ResultsStore, storage_key
from .suite import Suite
from .tuning import JOURNAL_DIR, journal_path

__all__ = ["RunSummary", "default_output_dir", "prepare_cells", "run_suite"]

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did."""

    output_dir: Path
    n_cells: int = 0
    n_skipped: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_analyses_failed: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


def default_output_dir(suite: Suite) -> Path:
    """Where ``tabscope run`` writes when no ``--out`` is given."""
    return Path("tabscope-results") / suite.name


def environment() -> dict:
    """Versions and machine facts stored with every run, for the report."""
    import lightgbm
    import numpy
    import pandas
    import sklearn
    import torch
    import xgboost

    import tabscope

    return {
        "tabscope": tabscope.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": available_cores(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "xgboost": xgboost.__version__,
        "lightgbm": lightgbm.__version__,
    }


def _load_all(sources, cache_dir) -> list[Dataset]:
    datasets: list[Dataset] = []
    seen: set[str] = set()
    for source in sources:
        for member in expand_source(source, cache_dir=cache_dir):
            if member not in seen:
                seen.add(member)
                datasets.append(load_dataset(member, cache_dir=cache_dir))
    return datasets


def load_suite_datasets(suite: Suite, cache_dir=None) -> tuple[list[Dataset], bool]:
    """Load every dataset of the suite once; suites of datasets expand to their members.

    When OpenML is out of reach and the suite names ``fallback_datasets``, those are used
    instead, with a warning; otherwise the error propagates before any cell runs. Returns the
    datasets and whether they are the fallback.
    """
    try:
        return _load_all(suite.datasets, cache_dir), False
    except OpenMLUnavailableError as exc:
        if not suite.fallback_datasets:
            raise
        logger.warning("%s; suite %r falls back to %s", exc, suite.name,
                       ", ".join(suite.fallback_datasets))
        return _load_all(suite.fallback_datasets, cache_dir), True


def prepare_cells(
    suite: Suite, datasets: list[Dataset], n_threads: int | None = None,
    results_dir: str | Path | None = None,
) -> tuple[list[CellTask], dict[tuple[str, int], tuple[Dataset, Split]]]:
    """Expand the suite into cell tasks (dataset x seed x model) with shared splits;
    ``results_dir`` holds the cells' tuning journals."""
    tasks = []
    splits = {}
    # The network side of each compared pair scores its evaluation rows' irregularity.
    scorers = ({network for network, _ in suite.compare}
               if Analysis.IRREGULARITY in suite.analyses else set())
    for dataset in datasets:
        for seed in suite.seeds:
            split = make_split(
                dataset, seed, test_size=suite.split.test_size,
                valid_size=suite.split.valid_size, max_train=suite.split.max_train,
            )
            splits[(dataset.source, seed)] = (dataset, split)
            for entry in suite.models:
                tasks.append(CellTask(
                    dataset=dataset, split=split, model=entry, seed=seed,
                    metrics=suite.metrics_for(dataset.task), analyses=suite.analyses,
                    analysis_settings=suite.analysis, n_threads=n_threads,
                    stores_irregularity_scores=entry.name in scorers,
                    tuning=suite.tuning,
                    results_dir=None if results_dir is None else str(Path(results_dir).resolve()),
                ))
    return tasks, splits


def clear_results(directory: Path) -> None:
    """Remove what tabscope wrote in ``directory`` (``--fresh``), and nothing else."""
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / ARRAYS_DIR, ignore_errors=True)
    shutil.rmtree(directory / JOURNAL_DIR, ignore_errors=True)


def store_outcome(store: ResultsStore, outcome: CellOutcome) -> None:
    """Write a cell's frames, then its rows in one transaction."""
    paths = store.write_arrays(outcome.row["cell_id"], outcome.frames)
    row = dict(outcome.row)
    row["predictions_path"] = paths.get("predictions")
    analyses = []
    for analysis in outcome.analyses:
        names = outcome.arrays.get(analysis["analysis"], ())
        analyses.append(dict(analysis) | ({"arrays_path": {n: paths[n] for n in names}}
                                          if names else {}))
    store.record(cells=[row], analyses=analyses, trials=outcome.trials)
    # The trials are in the store now: the cell's journal has served its purpose.
    journal_path(store.directory, storage_key(row["cell_id"])).unlink(missing_ok=True)


def run_suite(
    suite: Suite,
    output_dir: str | Path | None = None,
    *,
    executor: Executor | str = "local",
    n_jobs: int = 1,
    scheduler: str | None = None,
    retries: int = 1,
    fresh: bool = False,
    cache_dir=None,
    progress: bool = False,
    threads_per_cell: int = 1,
) -> RunSummary:
    """Run ``suite`` and store its results in ``output_dir``.

    Parameters
    ----------
    suite : Suite
        The validated suite.
    output_dir : str or Path, optional
        Results directory; default ``tabscope-results/<suite name>``.
    executor : {"local", "processes", "dask"} or Executor, default="local"
        Where cells run. "local" with ``n_jobs > 1`` uses local processes.
    n_jobs : int, default=1
        Number of workers (local processes, or LocalCluster workers for Dask).
    scheduler : str, optional
        Address of a running Dask scheduler.
    retries : int, default=1
        Times a cell is retried after its worker died.
    fresh : bool, default=False
        Discard earlier results in ``output_dir`` instead of resuming.
    cache_dir : path, optional
        Dataset cache directory.
    progress : bool, default=False
        Show a progress bar.
    threads_per_cell : int, default=1
        Threads each cell may use (torch, BLAS, OpenMP). Parallelism comes from running
        cells side by side; one thread per cell also makes every result independent of the
        number of workers, bit for bit.

    Returns
    -------
    RunSummary
    """
    if not isinstance(suite, Suite):
        raise TypeError(f"suite must be a Suite (see load_suite), got {type(suite).__name__}")
    for name, value in (("n_jobs", n_jobs), ("threads_per_cell", threads_per_cell)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    started = time.perf_counter()
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir(suite)
    if fresh and output_dir.exists():
        clear_results(output_dir)
    store = ResultsStore(output_dir)
    # Load everything that can fail on bad input before the first cell runs.
    datasets, used_fallback = load_suite_datasets(suite, cache_dir=cache_dir)

    own_executor = isinstance(executor, str)
    if own_executor:
        executor = make_executor(executor, n_workers=n_jobs, scheduler=scheduler, retries=retries)
    try:
        tasks, splits = prepare_cells(suite, datasets, n_threads=threads_per_cell,
                                      results_dir=output_dir)
        store.set_meta({
            "suite_name": suite.name,
            "suite": suite.source_text,
            "environment": environment(),
            "seeds": list(suite.seeds),
            "models": {e.name: {"role": e.spec.role, "preprocessing": e.spec.preprocessing,
                                "params": e.params, "early_stopping": e.early_stopping,
                                "search": e.search if suite.tuning.n_trials else {}}
                       for e in suite.models},
            "compare": [list(pair) for pair in suite.compare],
            "analyses": list(suite.analyses),
            "tuning": dataclasses.asdict(suite.tuning),
            "threads_per_cell": threads_per_cell,
            "workers": executor.n_workers,
            "datasets": [dataset.source for dataset in datasets],
            "used_fallback_datasets": used_fallback,
            # What the column roles did to each dataset (known at load, before any split);
            # each cell stores what its model family then received.
            "data": {dataset.source: describe_dataset(dataset) for dataset in datasets},
            "dataset_notes": dict(suite.dataset_notes),
        })
        states = store.cell_states()
        todo = [
            task for task in tasks
            if states.get(task.cell_id) != ("ok", task.config_hash)
        ]
        # Longest first, so that no worker is left alone with a slow cell at the end.
        todo.sort(key=lambda task: (task.model.spec.role != "network", -task.dataset.n_samples))
        summary = RunSummary(output_dir=output_dir, n_cells=len(tasks),
                             n_skipped=len(tasks) - len(todo))
        pairs = PairScheduler(suite, store, splits, {task.cell_id for task in todo})
        with _progress(progress, len(todo), suite.name) as advance:
            for task, result in executor.run(run_cell, todo):
                if isinstance(result, WorkerLost):
                    result = failed_outcome(task, f"WorkerLost: {result}")
                store_outcome(store, result)
                _count(summary, result)
                advance(result)
                pairs.cell_stored(task.cell_id, task.dataset.source, task.seed)
        summary.n_analyses_failed += pairs.finish()
    finally:
        if own_executor:
            executor.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(summary: RunSummary, outcome: CellOutcome) -> None:
    if outcome.row["status"] == "ok":
        summary.n_ok += 1
    else:
        summary.n_failed += 1
        summary.failed.append(f"{outcome.row['cell_id']}: {outcome.row.get('error')}")
    summary.n_analyses_failed += sum(a["status"] == "failed" for a in outcome.analyses)


class _progress:
    """A rich progress bar over cells, or nothing."""

    def __init__(self, enabled: bool, total: int, title: str):
        self.enabled = enabled and total > 0
        self.total = total
        self.title = title

    def __enter__(self):
        if not self.enabled:
            return lambda outcome: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
            transient=False,
        )
        self._progress.__enter__()
        task_id = self._progress.add_task(self.title, total=self.total, last="")

        def advance(outcome: CellOutcome) -> None:
            row = outcome.row
            mark = "ok" if row["status"] == "ok" else "FAILED"
            self._progress.update(
                task_id, advance=1,
                last=f"{row['dataset_name']} / {row['model']} / seed {row['seed']}: {mark}",
            )

        return advance

    def __exit__(self, *exc_info):
        if self.enabled:
            self._progress.__exit__(*exc_info)
        return False

