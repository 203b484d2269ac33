"""Section 'Scores by dataset': each model's primary metric per dataset (mean ± std over seeds),
its figure, and every stored metric in a subsection."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabscope.bench.results import summarise_scores
from tabscope.bench.store import METRIC_COLUMNS
from tabscope.vocabulary import Metric, Task, choices

from ..data import ReportData
from ..document import Cell, Section, Table
from ..figures import scores_figure
from ..tables import METRIC_LABELS, format_mean_std
from ._common import ReportContext, ReportSection, figure_block, in_report_order, no_data

__all__ = ["SECTION"]


def _score_cell(row: pd.Series) -> Cell:
    if row["n_ok"] == 0:
        return Cell(f"failed ({row['n_failed']}/{row['n_failed']} seeds)", failed=True)
    text = format_mean_std(row["mean"], row["std"])
    if row["n_failed"]:
        text += f" ({row['n_failed']} of {row['n_ok'] + row['n_failed']} seeds failed)"
    return Cell(text, best=bool(row["best"]))


def _build(context: ReportContext) -> Section:
    data, scores, palette = context.data, context.scores, context.palette
    section = Section(SECTION.title)
    if scores.empty:
        section.blocks.append(no_data("no cell has finished yet."))
        return section
    models = [m for m in palette if m in set(scores["model"])]
    order = {source: i for i, source in enumerate(data.dataset_order())}
    scores = scores.sort_values("dataset", key=lambda c: c.map(order), kind="stable")
    for task, frame in scores.groupby("task", sort=True):
        metric = frame["metric"].iloc[0]
        rows = []
        for dataset, group in frame.groupby("dataset", sort=False):
            by_model = {row["model"]: row for _, row in group.iterrows()}
            rows.append([group["dataset_name"].iloc[0]] + [
                _score_cell(by_model[m]) if m in by_model else Cell("not run")
                for m in models
            ])
        section.blocks.append(Table(
            f"{task.capitalize()}: {METRIC_LABELS.get(metric, metric)}, mean ± std over seeds",
            ["dataset", *models], rows,
            note="Bold (highlighted in HTML): the best mean on the dataset.",
        ))
    per_seed = data.cells[data.cells["status"] == "ok"].copy()
    per_seed["value"] = [
        row.get(Metric.primary(row["task"]), np.nan) if row["task"] in choices(Task) else np.nan
        for _, row in per_seed.iterrows()
    ]
    block = figure_block(
        "scores", scores_figure(per_seed, scores, palette),
        alt="Primary score of every model on every dataset",
        caption="Primary metric per dataset and model: large marker = mean over seeds, "
                "whisker = ± std, small dots = individual seeds; a black edge marks the best mean.",
    )
    if block:
        section.blocks.append(block)
    section.subsections.append(_all_metrics_section(data))
    return section


def _all_metrics_section(data: ReportData) -> Section:
    """Every stored metric and the fit time, per task, mean ± std over seeds."""
    section = Section("All metrics")
    summary = in_report_order(summarise_scores(data.cells), data)
    for task, frame in summary.groupby("task", sort=True):
        metrics = [m for m in METRIC_COLUMNS
                   if f"{m}_mean" in frame and frame[f"{m}_mean"].notna().any()]
        rows = []
        for _, row in frame.iterrows():
            rows.append([row["dataset_name"], row["model"],
                         *(format_mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in metrics),
                         format_mean_std(row["fit_seconds_mean"], row["fit_seconds_std"], 3),
                         f"{row['n_ok']}/{row['n_ok'] + row['n_failed']}"])
        section.blocks.append(Table(f"{task.capitalize()}: every metric, mean ± std over seeds",
                                    ["dataset", "model", *metrics, "fit seconds", "seeds ok"],
                                    rows))
    return section


SECTION = ReportSection("scores", "Scores by dataset", _build)
