"""A results directory read back as pandas frames (:class:`Results`, :func:`load_results`),
and summaries of its cells: score tables with mean ± std over seeds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tabscope.vocabulary import Metric, Task

from .store import CELL_INPUTS_ARRAY, METRIC_COLUMNS, ResultsStore, StoreError, cell_id

__all__ = ["PRIMARY_METRIC", "Results", "load_results", "score_table", "summarise_scores"]

#: The metric each task is ranked by, and whether larger is better (from :class:`Metric`).
PRIMARY_METRIC = {
    task.value: (Metric.primary(task).value, Metric.primary(task).greater_is_better)
    for task in Task
}


def summarise_scores(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds of every metric, per (task, dataset, model).

    Only cells with status ok enter the statistics; ``n_failed`` counts the others.
    """
    ok = cells[cells["status"] == "ok"]
    metrics = [m for m in METRIC_COLUMNS if m in cells and ok[m].notna().any()]
    keys = ["task", "dataset_name", "dataset", "model"]
    grouped = ok.groupby(keys, sort=True)[metrics + ["fit_seconds"]]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["n_ok"] = grouped.size()
    failed = cells[cells["status"] != "ok"].groupby(keys).size().rename("n_failed")
    summary = summary.join(failed, how="outer").reset_index()
    summary["n_ok"] = summary["n_ok"].fillna(0).astype(int)
    summary["n_failed"] = summary["n_failed"].fillna(0).astype(int)
    return summary


def _format(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.4g} ± {0.0 if np.isnan(std) else std:.2g}"


def score_table(cells: pd.DataFrame) -> pd.DataFrame:
    """A display table: one row per (dataset, model), metrics as ``mean ± std`` strings."""
    summary = summarise_scores(cells)
    rows = []
    for _, row in summary.iterrows():
        out = {"task": row["task"], "dataset": row["dataset_name"], "model": row["model"]}
        for metric in METRIC_COLUMNS:
            if f"{metric}_mean" in summary and Metric(metric).task == row["task"]:
                out[metric] = _format(row[f"{metric}_mean"], row[f"{metric}_std"])
        out["fit s"] = _format(row["fit_seconds_mean"], row["fit_seconds_std"])
        out["seeds ok"] = f"{row['n_ok']}/{row['n_ok'] + row['n_failed']}"
        rows.append(out)
    return pd.DataFrame(rows)


@dataclass
class Results:
    """A results directory as pandas frames: cells, analyses, extra tables, arrays.

    Everything a report shows comes from here; build one with :func:`load_results`.

    Attributes
    ----------
    directory : Path
        The results directory.
    meta : dict
        Run metadata (suite, environment, seeds, models, compare, analyses, datasets).
    cells : pandas.DataFrame
        One row per recorded cell (``ResultsStore.cells``).
    analyses : pandas.DataFrame
        One row per recorded analysis, ``summary`` decoded and ``models`` a list.
    extra_tables : dict of str to pandas.DataFrame
        Any further table of the database (for example ``trials`` of tuned runs).
    problems : list of (str, str)
        ``(what, error)`` for every array file the report needed but could not read.

    Examples
    --------
    >>> import tabscope
    >>> results = tabscope.load_results("tabscope-results/quick")  # doctest: +SKIP
    >>> results.cells.groupby("model")["rmse"].mean()  # doctest: +SKIP
    >>> results.arrays("kernel_norms", "kernel_norms").head()  # doctest: +SKIP
    """

    directory: Path
    meta: dict
    cells: pd.DataFrame
    analyses: pd.DataFrame
    store: ResultsStore = field(repr=False)
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def trials(self) -> pd.DataFrame | None:
        """The ``trials`` table of tuned runs, or None when the results have no trial (an
        untuned run, or a store written before tuning existed)."""
        trials = self.extra_tables.get("trials")
        return None if trials is None or trials.empty else trials

    def arrays(self, kind: str, name: str) -> pd.DataFrame:
        """One per-example array of every ok analysis of ``kind``, stacked.

        Parameters
        ----------
        kind : str
            An analysis or cell job (``"kernel_norms"``, ``"irregularity"``, ...).
        name : str
            The array's name (``"kernel_norms"``, ``"influence"``, ``"curve"``, ...).

        Returns
        -------
        frame : pandas.DataFrame
            The arrays with ``dataset``, ``seed`` and ``models`` (comma-joined) columns in
            front; empty when none is stored. Unreadable files land in :attr:`problems`.
        """
        frames = []
        for _, row in self.analyses_of(kind).iterrows():
            if name not in self.store.array_paths(row):
                continue
            frame = self.read_array(row, name)
            if frame is not None:
                frame.insert(0, "models", ",".join(row["models"]))
                frame.insert(0, "seed", int(row["seed"]))
                frame.insert(0, "dataset", row["dataset"])
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def predictions(self) -> pd.DataFrame:
        """Every ok cell's test predictions, stacked, with ``dataset``, ``model``, ``seed``."""
        frames = []
        for _, cell in self.cells[self.cells["status"] == "ok"].iterrows():
            path = cell.get("predictions_path")
            if not isinstance(path, str) or not path:
                continue
            try:
                frame = self.store.read_frame(path)
            except StoreError as exc:
                self.problems.append((f"{cell['cell_id']} [predictions]", str(exc)))
                continue
            frame.insert(0, "seed", int(cell["seed"]))
            frame.insert(0, "model", cell["model"])
            frame.insert(0, "dataset", cell["dataset"])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- names and roles ------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """Model names in suite order, then any others seen in the results (sorted)."""
        ordered = list((self.meta.get("models") or {}).keys())
        seen = set(self.cells["model"].dropna()) if "model" in self.cells else set()
        for models in self.analyses.get("models", []):
            seen.update(models)
        return ordered + sorted(seen - set(ordered))

    @property
    def roles(self) -> dict[str, str]:
        """``{model: role}`` from the metadata, completed from the cells."""
        roles = {name: str(spec.get("role", "other"))
                 for name, spec in (self.meta.get("models") or {}).items()}
        for model, role in zip(self.cells.get("model", []), self.cells.get("role", [])):
            if model not in roles and isinstance(role, str):
                roles[model] = role
        return roles

    @property
    def dataset_names(self) -> dict[str, str]:
        """``{dataset source: short name}``; the part after the source's scheme as fallback."""
        names = {}
        sources = list(self.meta.get("datasets") or [])
        sources += [s for s in self.analyses.get("dataset", []) if s not in sources]
        for source in sources:
            names[source] = str(source).split(":", 1)[-1]
        for source, name in zip(self.cells.get("dataset", []), self.cells.get("dataset_name", [])):
            if isinstance(name, str) and name:
                names[source] = name
        return names

    def dataset_order(self) -> list[str]:
        """Dataset sources in suite order, then any others recorded."""
        order = list(self.meta.get("datasets") or [])
        for source in list(self.cells.get("dataset", [])) + list(self.analyses.get("dataset", [])):
            if source not in order:
                order.append(source)
        return order

    def tasks(self) -> dict[str, str]:
        """``{dataset source: task}`` as recorded in the cells (or irregularity summaries)."""
        tasks = dict(zip(self.cells.get("dataset", []), self.cells.get("task", [])))
        for source, summary in zip(self.analyses.get("dataset", []),
                                   self.analyses.get("summary", [])):
            if source not in tasks and isinstance(summary, dict) and "task" in summary:
                tasks[source] = summary["task"]
        return {source: task for source, task in tasks.items() if isinstance(task, str)}

    # -- analyses ----------------------------------------------------------------------------

    def analyses_of(self, kind: str, status: str | None = "ok") -> pd.DataFrame:
        """Analysis rows of one kind, optionally of one status."""
        frame = self.analyses[self.analyses["analysis"] == kind]
        if status is not None:
            frame = frame[frame["status"] == status]
        return frame

    def read_array(self, analysis: pd.Series, name: str) -> pd.DataFrame | None:
        """One named array of an analysis row, or None (recorded as a problem) if unreadable."""
        try:
            return self.store.read_array(analysis, name)
        except StoreError as exc:
            self.problems.append((f"{analysis['analysis_id']} [{name}]", str(exc)))
            return None

    def model_inputs(self, dataset: str) -> dict[str, dict]:
        """``{model: what it received}`` on ``dataset``, from each model's first ok cell.

        Each value is the JSON :func:`tabscope.datasets.describe_inputs` stored beside the
        cell's predictions (``CELL_INPUTS_ARRAY``): the network input width, or the
        boosters' categorical features. Seeds share the column roles; the number of levels
        seen in training can differ slightly between seeds, so the first seed stands for all.
        Results written before cells stored it give {}.
        """
        cells = self.cells[(self.cells["dataset"] == dataset) & (self.cells["status"] == "ok")]
        inputs: dict[str, dict] = {}
        for _, cell in cells.sort_values("seed", kind="stable").iterrows():
            if cell["model"] in inputs:
                continue
            path = self.store.array_path(cell["cell_id"], CELL_INPUTS_ARRAY)
            if not (self.store.directory / path).exists():
                continue
            try:
                inputs[cell["model"]] = json.loads(self.store.read_frame(path)["inputs"].iloc[0])
            except (StoreError, KeyError, IndexError, ValueError) as exc:
                self.problems.append((f"{cell['cell_id']} [{CELL_INPUTS_ARRAY}]", str(exc)))
        return inputs

    def expected_cells(self) -> list[str]:
        """Cell ids the suite asks for: every dataset × model × seed in the metadata."""
        datasets = self.meta.get("datasets") or []
        models = list((self.meta.get("models") or {}).keys())
        seeds = self.meta.get("seeds") or []
        return [cell_id(d, m, s) for d in datasets for m in models for s in seeds]

    def missing_cells(self) -> list[str]:
        """Expected cells that have no row yet (a run still going, or interrupted)."""
        recorded = set(self.cells["cell_id"])
        return [cell for cell in self.expected_cells() if cell not in recorded]


def load_results(directory: str | os.PathLike) -> Results:
    """Read the results directory ``directory`` as pandas frames.

    Parameters
    ----------
    directory : str or path-like
        A results directory written by ``tabscope run`` (it holds ``tabscope.sqlite``).

    Returns
    -------
    results : Results

    Raises
    ------
    TypeError
        If ``directory`` is not a path.
    tabscope.bench.store.StoreError
        (a ValueError) If ``directory`` holds no tabscope results or they are unreadable.
    """
    store = ResultsStore(directory, create=False)
    return Results(
        directory=Path(directory), meta=store.meta(), cells=store.cells(),
        analyses=store.analyses(), store=store, extra_tables=store.extra_tables(),
    )
