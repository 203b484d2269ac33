"""Read a results directory into the tidy frames the report is built from.

Nothing here trains or recomputes anything: every number comes from the store written by
:mod:`tabscope.bench`. Array files that cannot be read are not fatal: they are collected
in :attr:`ReportData.problems` so the report can show them next to the failed cells and
analyses, instead of silently dropping rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tabscope.bench.store import CELL_INPUTS_ARRAY, ResultsStore, StoreError, cell_id

__all__ = ["ReportData", "load_results"]


@dataclass
class ReportData:
    """Everything a report shows, read from one results directory.

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
    problems : list of (str, str)
        ``(what, error)`` for every array file the report needed but could not read.
    """

    directory: Path
    meta: dict
    cells: pd.DataFrame
    analyses: pd.DataFrame
    store: ResultsStore = field(repr=False)
    problems: list[tuple[str, str]] = field(default_factory=list)

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


def load_results(directory: str | os.PathLike) -> ReportData:
    """Read the results directory ``directory`` for a report.

    Parameters
    ----------
    directory : str or path-like
        A results directory written by ``tabscope run`` (it holds ``tabscope.sqlite``).

    Returns
    -------
    data : ReportData

    Raises
    ------
    TypeError
        If ``directory`` is not a path.
    tabscope.bench.store.StoreError
        (a ValueError) If ``directory`` holds no tabscope results or they are unreadable.
    """
    store = ResultsStore(directory, create=False)
    return ReportData(
        directory=Path(directory), meta=store.meta(), cells=store.cells(),
        analyses=store.analyses(), store=store,
    )
