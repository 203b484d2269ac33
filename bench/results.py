"""Summaries of stored cells: score tables with mean ± std over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabscope.vocabulary import Metric, Task

from .store import METRIC_COLUMNS

__all__ = ["PRIMARY_METRIC", "score_table", "summarise_scores"]

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
