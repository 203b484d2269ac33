"""The lens findings pooled across datasets (docs/design.md §1.5, §1.6): per compared pair
and dataset the gap increase, the network's κ̄ ratio and the irregularity–κ̄ correlation,
then whether gap increase and κ̄ ratio go together across datasets.

Inputs are the stored irregularity summaries (one per dataset, seed and pair) and the
effective-parameter summaries; nothing is recomputed from models.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from tabscope.vocabulary import Analysis

from .data import ReportData

__all__ = ["effective_parameter_roles", "lens_per_dataset", "rank_correlation", "row_spearman",
           "verdicts"]


def _number(summary: dict, key: str) -> float:
    try:
        return float(summary.get(key))
    except (TypeError, ValueError, AttributeError):
        return float("nan")


def lens_per_dataset(data: ReportData) -> pd.DataFrame:
    """Per (dataset, network, tree), averaged over seeds: the findings of figure 5.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``network``, ``tree``, ``n_seeds``,
        ``gap_increase`` (gap at p = 1 minus gap at p = 0, metric units, above 0: the
        network loses ground on irregular inputs), ``relative_increase`` ((gap(1) − gap(0))
        / |gap(0)|), ``network_kappa_ratio`` and ``tree_kappa_ratio`` (mean κ̄ on the all-
        irregular subset over the all-regular one), ``network_rho`` and ``tree_rho``
        (Spearman ρ of irregularity score and κ̄), each a mean over seeds, and
        ``gap_increase_std``, ``network_kappa_ratio_std`` (spread over seeds).
    """
    records = []
    names = data.dataset_names
    for _, row in data.analyses_of(Analysis.IRREGULARITY).iterrows():
        summary = row["summary"] if isinstance(row["summary"], dict) else {}
        network, tree = (list(row["models"]) + [None, None])[:2]
        records.append({
            "dataset": row["dataset"], "dataset_name": names.get(row["dataset"], row["dataset"]),
            "network": network, "tree": tree, "seed": row["seed"],
            "gap_increase": _number(summary, "gap_p1") - _number(summary, "gap_p0"),
            "relative_increase": _number(summary, "relative_increase_p1"),
            "network_kappa_ratio": _number(summary, "network_kappa_bar_p1")
            / _number(summary, "network_kappa_bar_p0"),
            "tree_kappa_ratio": _number(summary, "tree_kappa_bar_p1")
            / _number(summary, "tree_kappa_bar_p0"),
            "network_rho": _number(summary, "network_spearman_score_kappa"),
            "tree_rho": _number(summary, "tree_spearman_score_kappa"),
        })
    keys = ["gap_increase", "relative_increase", "network_kappa_ratio", "tree_kappa_ratio",
            "network_rho", "tree_rho"]
    columns = ["dataset", "dataset_name", "network", "tree", "n_seeds", *keys,
               "gap_increase_std", "network_kappa_ratio_std"]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    grouped = frame.groupby(["dataset", "dataset_name", "network", "tree"], sort=False)
    out = grouped[keys].mean()
    out["n_seeds"] = grouped.size()
    out["gap_increase_std"] = grouped["gap_increase"].std(ddof=1)
    out["network_kappa_ratio_std"] = grouped["network_kappa_ratio"].std(ddof=1)
    return out.reset_index()[columns]


def rank_correlation(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
                     n_boot: int = 2000, confidence: float = 0.95, random_state: int = 0) -> dict:
    """Spearman ρ of ``x`` and ``y`` with a percentile bootstrap interval.

    The bootstrap resamples the points, or, with ``groups``, whole groups (a dataset's
    points share its network, so they are not independent).

    Returns
    -------
    result : dict
        ``rho``, ``pvalue`` (scipy's, against ρ = 0), ``low``, ``high`` and ``n``; NaN
        with fewer than three finite pairs.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    labels = np.arange(x.size) if groups is None else np.asarray(groups)[keep]
    members = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    result = {"rho": np.nan, "pvalue": np.nan, "low": np.nan, "high": np.nan, "n": int(x.size)}
    if x.size < 3:
        return result
    test = stats.spearmanr(x, y)
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, len(members), size=(n_boot, len(members)))
    indices = np.array([np.concatenate([members[g] for g in draw]) for draw in draws],
                       dtype=object if len({len(m) for m in members}) > 1 else np.int64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample of tied values has no correlation
        if indices.dtype == object:
            boot = np.array([stats.spearmanr(x[i], y[i]).statistic for i in indices])
        else:  # equal group sizes: all resamples at once, Pearson on the ranks per row
            boot = _row_correlation(stats.rankdata(x[indices], axis=1),
                                    stats.rankdata(y[indices], axis=1))
    boot = boot[np.isfinite(boot)]
    tail = (1 - confidence) / 2
    result.update(rho=float(test.statistic), pvalue=float(test.pvalue))
    if boot.size:
        result.update(low=float(np.quantile(boot, tail)), high=float(np.quantile(boot, 1 - tail)))
    return result


def _row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``a`` with the same row of ``b`` (ties averaged)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _row_correlation(stats.rankdata(a, axis=1), stats.rankdata(b, axis=1))


def verdicts(frame: pd.DataFrame, correlation: dict) -> list[str]:
    """Plain sentences: where the pooled data support the paper's claim and where not."""
    if frame.empty:
        return []
    n = len(frame)
    lines = []
    grows = int((frame["gap_increase"] > 0).sum())
    lines.append(f"The network's gap to the GBDT grows from regular to irregular inputs on "
                 f"{grows} of {n} dataset–pair(s)"
                 + (" — supported." if grows > n / 2 else " — not supported by these data."))
    rises = int((frame["network_kappa_ratio"] > 1).sum())
    lines.append(f"The network's κ̄ is higher on irregular than on regular inputs on {rises} "
                 f"of {n}" + (" — supported." if rises > n / 2 else " — not supported."))
    tree = frame["tree_kappa_ratio"].to_numpy(dtype=float)
    network = frame["network_kappa_ratio"].to_numpy(dtype=float)
    near = int(np.sum(np.abs(tree - 1) < np.abs(network - 1)))
    lines.append(f"The GBDT's κ̄ ratio is closer to 1 than the network's on {near} of {n}"
                 + (" — supported." if near > n / 2 else " — not supported."))
    if np.isfinite(correlation["rho"]):
        excludes = correlation["low"] > 0
        lines.append(
            f"Across datasets, gap increase and network κ̄ ratio have Spearman ρ = "
            f"{correlation['rho']:.2f} (95% bootstrap interval {correlation['low']:.2f} to "
            f"{correlation['high']:.2f}, n = {correlation['n']})"
            + (": they go together." if excludes else
               ": the interval includes 0 or lies below it, so these data do not show that "
               "the two go together."))
    else:
        lines.append("Fewer than three dataset–pairs: no rank correlation across datasets.")
    return lines


def effective_parameter_roles(data: ReportData) -> pd.DataFrame:
    """``p_train`` and ``p_test`` per (dataset, model), means over seeds, with the role.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``model``, ``role``, ``p_train``, ``p_test``
        and ``n_seeds``.
    """
    from .lens import effective_parameter_frame

    frame = effective_parameter_frame(data)
    columns = ["dataset", "dataset_name", "model", "role", "p_train", "p_test", "n_seeds"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(["dataset", "dataset_name", "model"], sort=False)
    out = grouped[["p_train", "p_test"]].mean()
    out["n_seeds"] = grouped.size()
    out = out.reset_index()
    out["role"] = out["model"].map(data.roles).fillna("other")
    return out[columns]
