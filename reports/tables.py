"""Comparisons computed from stored cell scores: best per dataset, average ranks, win/tie/loss.

All statistics use the task's primary metric (:meth:`tabscope.vocabulary.Metric.primary`:
RMSE for regression, accuracy for classification) aggregated over seeds by
:func:`tabscope.bench.results.summarise_scores`; only cells with status "ok" count.

Tie rule of :func:`win_tie_loss`: a network and a GBDT tie on a dataset when the absolute
difference of their mean scores is at most the pooled standard deviation over seeds,
``sqrt((s_network**2 + s_tree**2) / 2)``. With a single seed neither has a spread, the
pooled deviation is 0, and only an exactly equal mean is a tie.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabscope.bench.results import summarise_scores
from tabscope.vocabulary import Metric, Task, choices

__all__ = [
    "METRIC_LABELS",
    "TIE_RULE",
    "average_ranks",
    "format_mean_std",
    "primary_scores",
    "win_tie_loss",
]

#: Axis and column labels of the stored metrics, with units and direction.
METRIC_LABELS = {
    Metric.RMSE: "RMSE (target units, lower is better)",
    Metric.MAE: "MAE (target units, lower is better)",
    "mse": "MSE (squared target units, lower is better)",
    Metric.R2: "R² (1 = perfect, higher is better)",
    Metric.ACCURACY: "accuracy (fraction correct, higher is better)",
    "error_rate": "error rate (fraction wrong, lower is better)",
    Metric.LOG_LOSS: "log loss (nats, lower is better)",
    Metric.ROC_AUC: "ROC AUC (higher is better)",
}

#: The tie rule as the report states it.
TIE_RULE = (
    "A tie is a mean difference no larger than the pooled standard deviation over seeds, "
    "sqrt((s_network² + s_GBDT²) / 2); with a single seed only an exactly equal mean ties."
)


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``"mean ± std"`` with ``digits`` significant digits; "—" for a missing mean."""
    if mean is None or not np.isfinite(mean):
        return "—"
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def primary_scores(cells: pd.DataFrame) -> pd.DataFrame:
    """Primary-metric mean and std over seeds per (dataset, model), with the best marked.

    Parameters
    ----------
    cells : pandas.DataFrame
        Cell rows as returned by ``ResultsStore.cells()``.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``task``, ``dataset``, ``dataset_name``, ``model``, ``role``, ``metric``,
        ``higher_is_better``, ``mean``, ``std`` (NaN with fewer than two successful
        seeds), ``n_ok``, ``n_failed`` and ``best`` (True for the model or models with the
        best mean on the dataset; a model without a successful seed is never best), one
        row per (dataset, model) that has at least one recorded cell.
    """
    columns = ["task", "dataset", "dataset_name", "model", "role", "metric",
               "higher_is_better", "mean", "std", "n_ok", "n_failed", "best"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    summary = summarise_scores(cells)
    roles = dict(zip(cells["model"], cells["role"]))
    rows = []
    for _, row in summary.iterrows():
        metric, higher = None, False
        if row["task"] in choices(Task):
            primary = Metric.primary(row["task"])
            metric, higher = primary.value, primary.greater_is_better
        mean = float(row.get(f"{metric}_mean", np.nan)) if metric else np.nan
        std = float(row.get(f"{metric}_std", np.nan)) if metric else np.nan
        rows.append({
            "task": row["task"], "dataset": row["dataset"], "dataset_name": row["dataset_name"],
            "model": row["model"], "role": roles.get(row["model"], "other"), "metric": metric,
            "higher_is_better": higher, "mean": mean, "std": std,
            "n_ok": int(row["n_ok"]), "n_failed": int(row["n_failed"]),
        })
    scores = pd.DataFrame(rows, columns=columns[:-1])
    scores["best"] = False
    for _, group in scores.groupby("dataset", sort=False):
        valid = group["mean"].dropna()
        if valid.empty:
            continue
        target = valid.max() if bool(group["higher_is_better"].iloc[0]) else valid.min()
        scores.loc[valid.index[valid == target], "best"] = True
    return scores


def average_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean rank of each model over the datasets it was scored on (1 = best).

    Models are ranked on each dataset by their mean primary metric; equal means share the
    average of their ranks. A model with no successful cell on a dataset is not ranked
    there, and ``n_datasets`` says on how many datasets each model was ranked.

    Parameters
    ----------
    scores : pandas.DataFrame
        The output of :func:`primary_scores`.

    Returns
    -------
    ranks : pandas.DataFrame
        Columns ``model``, ``role``, ``mean_rank``, ``n_datasets``, sorted by mean rank.
    """
    valid = scores.dropna(subset=["mean"])
    if valid.empty:
        return pd.DataFrame(columns=["model", "role", "mean_rank", "n_datasets"])
    ranked = []
    for _, group in valid.groupby("dataset", sort=False):
        ascending = not bool(group["higher_is_better"].iloc[0])
        ranked.append(group.assign(rank=group["mean"].rank(ascending=ascending, method="average")))
    ranks = pd.concat(ranked).groupby(["model", "role"], sort=False)["rank"].agg(["mean", "count"])
    ranks = ranks.reset_index().rename(columns={"mean": "mean_rank", "count": "n_datasets"})
    return ranks.sort_values(["mean_rank", "model"], kind="stable").reset_index(drop=True)


def win_tie_loss(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare every network (role "network") with every GBDT (role "tree") per dataset.

    Parameters
    ----------
    scores : pandas.DataFrame
        The output of :func:`primary_scores`.

    Returns
    -------
    totals : pandas.DataFrame
        One row per (network, tree) pair: ``network``, ``tree``, ``wins``, ``ties``,
        ``losses`` (from the network's side) and ``n_datasets``.
    detail : pandas.DataFrame
        One row per (dataset, network, tree): ``dataset_name``, ``metric``,
        ``network_mean``, ``tree_mean``, ``difference`` (network − tree), ``pooled_std``
        and ``outcome`` ("win", "tie" or "loss" for the network).

    Notes
    -----
    The tie rule is the module's :data:`TIE_RULE`.
    """
    detail_rows = []
    valid = scores.dropna(subset=["mean"])
    for dataset, group in valid.groupby("dataset", sort=False):
        higher = bool(group["higher_is_better"].iloc[0])
        networks = group[group["role"] == "network"]
        trees = group[group["role"] == "tree"]
        for _, network in networks.iterrows():
            for _, tree in trees.iterrows():
                difference = network["mean"] - tree["mean"]
                stds = np.array([network["std"], tree["std"]], dtype=np.float64)
                pooled = float(np.sqrt(np.mean(np.nan_to_num(stds) ** 2)))
                if abs(difference) <= pooled:
                    outcome = "tie"
                elif (difference > 0) == higher:
                    outcome = "win"
                else:
                    outcome = "loss"
                detail_rows.append({
                    "dataset": dataset, "dataset_name": network["dataset_name"],
                    "network": network["model"], "tree": tree["model"],
                    "metric": network["metric"], "network_mean": network["mean"],
                    "tree_mean": tree["mean"], "difference": difference,
                    "pooled_std": pooled, "outcome": outcome,
                })
    detail = pd.DataFrame(detail_rows, columns=[
        "dataset", "dataset_name", "network", "tree", "metric", "network_mean", "tree_mean",
        "difference", "pooled_std", "outcome",
    ])
    totals = []
    for (network, tree), group in detail.groupby(["network", "tree"], sort=False):
        counts = group["outcome"].value_counts()
        totals.append({"network": network, "tree": tree, "wins": int(counts.get("win", 0)),
                       "ties": int(counts.get("tie", 0)), "losses": int(counts.get("loss", 0)),
                       "n_datasets": len(group)})
    totals = pd.DataFrame(totals, columns=["network", "tree", "wins", "ties", "losses", "n_datasets"])
    return totals, detail
