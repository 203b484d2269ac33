"""Tidy frames of the stored lens analyses, aggregated over seeds for the report.

Inputs are the analysis rows and array files the benchmark stored (see
``tabscope.bench.cells`` and ``tabscope.bench.pairs``); nothing is recomputed from models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabscope.vocabulary import Analysis, CellJob

from .data import ReportData

__all__ = [
    "FIDELITY_KINDS",
    "aggregate_irregularity",
    "attribution_coverage_frame",
    "coverage_text",
    "effective_parameter_frame",
    "fidelity_frame",
    "irregularity_curves",
    "irregularity_table",
    "kernel_norm_frame",
    "kernel_norm_table",
    "top_contribution_tables",
]

#: The telescoping approximations whose fidelity is stored, with their display names.
FIDELITY_KINDS = {"first_order": "first order", "trapezoid": "trapezoid",
                  "linearized": "linearised at init"}


#: Columns of a stored irregularity curve that the report reads.
_CURVE_COLUMNS = {"p", "model", "role", "metric", "gap_mean", "gap_std", "kappa_bar_mean",
                  "kappa_bar_std"}
#: Columns of a stored top-contributions frame that the report reads.
_TOP_COLUMNS = {"eval_row", "rank", "train_row", "contribution", "prediction", "offset",
                "output"}


def _number(summary: dict, key: str) -> float:
    value = summary.get(key) if isinstance(summary, dict) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


# ------------------------------------------------------------------------- irregularity


def irregularity_curves(data: ReportData) -> pd.DataFrame:
    """Every stored irregularity curve, stacked, with dataset, pair and seed columns added.

    Returns
    -------
    curves : pandas.DataFrame
        The columns of ``tabscope.bench.analyses.irregularity_curve`` plus ``dataset``,
        ``dataset_name``, ``network``, ``tree`` and ``seed``; empty when nothing is stored.
    """
    names = data.dataset_names
    frames = []
    for _, row in data.analyses_of(Analysis.IRREGULARITY).iterrows():
        curve = data.read_array(row, "curve")
        if curve is None or curve.empty:
            continue
        missing = sorted(_CURVE_COLUMNS - set(curve.columns))
        if missing:
            data.problems.append((f"{row['analysis_id']} [curve]",
                                  f"the stored curve lacks the column(s) {missing}"))
            continue
        network, tree = (list(row["models"]) + [None, None])[:2]
        frames.append(curve.assign(
            dataset=row["dataset"], dataset_name=names.get(row["dataset"], row["dataset"]),
            network=network, tree=tree, seed=int(row["seed"]),
        ))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _seed_mean_and_band(group: pd.DataFrame, column: str) -> tuple[float, float, str]:
    """Mean over seeds of ``column_mean`` and its band: the spread over seeds, or over
    redraws when only one seed is there (a single seed has no spread over seeds)."""
    means = group[f"{column}_mean"].to_numpy(dtype=np.float64)
    if len(means) >= 2:
        return float(np.mean(means)), float(np.std(means)), "seeds"
    return float(means[0]), float(group[f"{column}_std"].iloc[0]), "redraws"


def aggregate_irregularity(curves: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average the irregularity curves over seeds.

    Parameters
    ----------
    curves : pandas.DataFrame
        The output of :func:`irregularity_curves`.

    Returns
    -------
    gaps : pandas.DataFrame
        One row per (dataset, network, tree, p): ``metric``, ``gap`` (mean over seeds of the
        mean metric gap network − GBDT), ``gap_band`` (standard deviation over seeds),
        ``n_seeds`` and ``band`` ("seeds", or "redraws" when one seed leaves only the
        spread over the random subsets).
    kappa : pandas.DataFrame
        One row per (dataset, model, p): ``role``, ``kappa_bar``, ``kappa_bar_band``,
        ``n_seeds``, ``band``. A network compared with several GBDTs sees the same
        subsets in each pair, so its curve is taken from its first pair.
    """
    gap_columns = ["dataset", "dataset_name", "network", "tree", "p", "metric", "gap",
                   "gap_band", "n_seeds", "band"]
    kappa_columns = ["dataset", "dataset_name", "model", "role", "p", "kappa_bar",
                     "kappa_bar_band", "n_seeds", "band"]
    if curves.empty:
        return pd.DataFrame(columns=gap_columns), pd.DataFrame(columns=kappa_columns)
    gaps = []
    network_rows = curves[curves["role"] == "network"]
    for (dataset, network, tree, p), group in network_rows.groupby(
            ["dataset", "network", "tree", "p"], sort=False):
        gap, band, kind = _seed_mean_and_band(group, "gap")
        gaps.append({"dataset": dataset, "dataset_name": group["dataset_name"].iloc[0],
                     "network": network, "tree": tree, "p": p,
                     "metric": group["metric"].iloc[0], "gap": gap, "gap_band": band,
                     "n_seeds": len(group), "band": kind})
    kappas = []
    first_pair = curves.drop_duplicates(["dataset", "model"])[["dataset", "model", "network", "tree"]]
    chosen = curves.merge(first_pair, on=["dataset", "model", "network", "tree"])
    for (dataset, model, p), group in chosen.groupby(["dataset", "model", "p"], sort=False):
        kappa, band, kind = _seed_mean_and_band(group, "kappa_bar")
        kappas.append({"dataset": dataset, "dataset_name": group["dataset_name"].iloc[0],
                       "model": model, "role": group["role"].iloc[0], "p": p,
                       "kappa_bar": kappa, "kappa_bar_band": band, "n_seeds": len(group),
                       "band": kind})
    return (pd.DataFrame(gaps, columns=gap_columns).sort_values(["dataset", "network", "tree", "p"],
                                                                kind="stable"),
            pd.DataFrame(kappas, columns=kappa_columns).sort_values(["dataset", "model", "p"],
                                                                    kind="stable"))


def irregularity_table(data: ReportData) -> pd.DataFrame:
    """Effect sizes of the irregularity analysis per (dataset, pair), mean and std over seeds.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``network``, ``tree``, ``metric``,
        ``n_seeds``, and ``<key>_mean`` / ``<key>_std`` (std over seeds, NaN for one seed)
        for ``gap_p0``, ``gap_p1``, ``relative_increase_p1``, ``network_kappa_bar_p0``,
        ``network_kappa_bar_p1``, ``tree_kappa_bar_p0``, ``tree_kappa_bar_p1``,
        ``network_spearman_score_kappa`` and ``tree_spearman_score_kappa``.
    """
    keys = ["gap_p0", "gap_p1", "relative_increase_p1", "network_kappa_bar_p0",
            "network_kappa_bar_p1", "tree_kappa_bar_p0", "tree_kappa_bar_p1",
            "network_spearman_score_kappa", "tree_spearman_score_kappa"]
    rows = data.analyses_of(Analysis.IRREGULARITY)
    names = data.dataset_names
    records = []
    for _, row in rows.iterrows():
        network, tree = (list(row["models"]) + [None, None])[:2]
        summary = row["summary"]
        records.append({"dataset": row["dataset"], "network": network, "tree": tree,
                        "metric": summary.get("metric", ""), "seed": row["seed"],
                        **{key: _number(summary, key) for key in keys}})
    columns = ["dataset", "dataset_name", "network", "tree", "metric", "n_seeds"]
    columns += [f"{key}_{stat}" for key in keys for stat in ("mean", "std")]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    out = []
    for (dataset, network, tree), group in frame.groupby(["dataset", "network", "tree"], sort=False):
        entry = {"dataset": dataset, "dataset_name": names.get(dataset, dataset),
                 "network": network, "tree": tree, "metric": group["metric"].iloc[0],
                 "n_seeds": len(group)}
        for key in keys:
            values = group[key].to_numpy(dtype=np.float64)
            entry[f"{key}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
            entry[f"{key}_std"] = (float(np.nanstd(values, ddof=1))
                                   if np.isfinite(values).sum() >= 2 else np.nan)
        out.append(entry)
    return pd.DataFrame(out, columns=columns)


# ------------------------------------------------------------------------- kernel norms


def kernel_norm_frame(data: ReportData) -> pd.DataFrame:
    """Per-example ``kappa_bar`` of every lens cell, training and test rows stacked.

    Returns
    -------
    norms : pandas.DataFrame
        Columns ``dataset``, ``dataset_name``, ``model``, ``seed``, ``split`` ("train" or
        "test"), ``row`` and ``kappa_bar``.
    """
    names = data.dataset_names
    frames = []
    for _, row in data.analyses_of(CellJob.KERNEL_NORMS).iterrows():
        model = row["models"][0] if row["models"] else "?"
        for split, array in (("test", "kernel_norms"), ("train", "train_kernel_norms")):
            frame = data.read_array(row, array)
            if frame is None or "kappa_bar" not in frame:
                continue
            frames.append(pd.DataFrame({
                "dataset": row["dataset"], "dataset_name": names.get(row["dataset"], row["dataset"]),
                "model": model, "seed": int(row["seed"]), "split": split,
                "row": frame["row"].to_numpy() if "row" in frame else np.arange(len(frame)),
                "kappa_bar": frame["kappa_bar"].to_numpy(dtype=np.float64),
            }))
    if not frames:
        return pd.DataFrame(columns=["dataset", "dataset_name", "model", "seed", "split", "row",
                                     "kappa_bar"])
    return pd.concat(frames, ignore_index=True)


def kernel_norm_table(norms: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): test mean and max ``kappa_bar``, training max, and the share of
    test examples above the largest training ``kappa_bar``, each averaged over seeds."""
    columns = ["dataset", "dataset_name", "model", "n_seeds", "test_mean", "test_max",
               "train_max", "share_above_train_max"]
    if norms.empty:
        return pd.DataFrame(columns=columns)
    per_seed = []
    for (dataset, model, seed), group in norms.groupby(["dataset", "model", "seed"], sort=False):
        test = group.loc[group["split"] == "test", "kappa_bar"].to_numpy()
        train = group.loc[group["split"] == "train", "kappa_bar"].to_numpy()
        train_max = float(train.max()) if train.size else np.nan
        per_seed.append({
            "dataset": dataset, "dataset_name": group["dataset_name"].iloc[0], "model": model,
            "test_mean": float(test.mean()) if test.size else np.nan,
            "test_max": float(test.max()) if test.size else np.nan,
            "train_max": train_max,
            "share_above_train_max": (float(np.mean(test > train_max))
                                      if test.size and train.size else np.nan),
        })
    per_seed = pd.DataFrame(per_seed)
    grouped = per_seed.groupby(["dataset", "dataset_name", "model"], sort=False)
    table = grouped[columns[4:]].mean().reset_index()
    table.insert(3, "n_seeds", grouped.size().to_numpy())
    return table[columns]


# ------------------------------------------------------------ effective parameters, fidelity


def _summary_frame(data: ReportData, kind: str, keys: list[str]) -> pd.DataFrame:
    names = data.dataset_names
    records = []
    for _, row in data.analyses_of(kind).iterrows():
        records.append({
            "dataset": row["dataset"], "dataset_name": names.get(row["dataset"], row["dataset"]),
            "model": row["models"][0] if row["models"] else "?", "seed": int(row["seed"]),
            **{key: _number(row["summary"], key) for key in keys},
        })
    return pd.DataFrame(records, columns=["dataset", "dataset_name", "model", "seed", *keys])


def attribution_coverage_frame(data: ReportData) -> pd.DataFrame:
    """Per (dataset, model, seed): the share of the displayed test rows' prediction change
    that the contributions explain (docs/design.md §1.8) and the attribution window.

    NaN for results written before cells stored it."""
    return _summary_frame(data, CellJob.KERNEL_NORMS,
                          ["attribution_coverage", "attribution_window"])


def coverage_text(coverage: pd.DataFrame, dataset: str, model: str, seed: int | None = None) -> str:
    """``"0.97 (window 66 steps)"`` for one model on one dataset (one seed, or the mean)."""
    rows = coverage[(coverage["dataset"] == dataset) & (coverage["model"] == model)]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    values = rows["attribution_coverage"].dropna()
    if values.empty:
        return "not stored"
    windows = rows["attribution_window"].dropna()
    window = ""
    if not windows.empty and windows.max() > 1:
        window = f" (window {int(windows.max())} steps)"
    return f"{values.mean():.2f}{window}"


def effective_parameter_frame(data: ReportData) -> pd.DataFrame:
    """``p_train``, ``p_test``, ``n_train`` and ``n_eval`` per (dataset, model, seed)."""
    return _summary_frame(data, CellJob.EFFECTIVE_PARAMETERS, ["p_train", "p_test", "n_train", "n_eval"])


def fidelity_frame(data: ReportData) -> pd.DataFrame:
    """Relative errors of the telescoping approximations per (dataset, network, seed)."""
    return _summary_frame(data, CellJob.FIDELITY, list(FIDELITY_KINDS))


# --------------------------------------------------------------------- top contributions


def _pairs(data: ReportData) -> list[tuple[str, str]]:
    """Network/GBDT pairs to show: the suite's compared pairs, else the first of each role."""
    pairs = [tuple(pair) for pair in data.meta.get("compare") or [] if len(pair) == 2]
    if pairs:
        return pairs
    roles = data.roles
    networks = [m for m in data.models if roles.get(m) == "network"]
    trees = [m for m in data.models if roles.get(m) == "tree"]
    return [(networks[0], trees[0])] if networks and trees else []


def top_contribution_tables(data: ReportData) -> list[dict]:
    """Side-by-side top contributions of a network and a GBDT for a few test examples.

    For each dataset and compared pair, the smallest seed at which both models stored their
    ``top_contributions`` array is used.

    Returns
    -------
    tables : list of dict
        Each with ``dataset_name``, ``task``, ``seed``, ``network``, ``tree`` and ``frame``: one row
        per (test row, rank) with ``eval_row``, ``rank`` and, per role, ``<role>_train_row``,
        ``<role>_contribution``, ``<role>_prediction``, ``<role>_offset``,
        ``<role>_output`` and ``<role>_total``.
    """
    norms = data.analyses_of(CellJob.KERNEL_NORMS)
    names = data.dataset_names
    out = []
    for dataset in data.dataset_order():
        here = norms[norms["dataset"] == dataset]
        for network, tree in _pairs(data):
            by_model = {
                model: here[np.array([models == [model] for models in here["models"]], dtype=bool)]
                for model in (network, tree)
            }
            seeds = sorted(set(by_model[network]["seed"]) & set(by_model[tree]["seed"]))
            for seed in seeds:
                frames = {}
                for role, model in (("network", network), ("tree", tree)):
                    row = by_model[model][by_model[model]["seed"] == seed].iloc[0]
                    frame = data.read_array(row, "top_contributions")
                    if frame is None or frame.empty:
                        break
                    missing = sorted(_TOP_COLUMNS - set(frame.columns))
                    if missing:
                        data.problems.append((f"{row['analysis_id']} [top_contributions]",
                                              f"the stored frame lacks the column(s) {missing}"))
                        break
                    frames[role] = frame.rename(columns={
                        "train_row": f"{role}_train_row", "contribution": f"{role}_contribution",
                        "prediction": f"{role}_prediction", "offset": f"{role}_offset",
                        "output": f"{role}_output", "total_contribution": f"{role}_total",
                    })
                if len(frames) < 2:
                    continue
                merged = frames["network"].merge(frames["tree"], on=["eval_row", "rank"],
                                                 how="outer").sort_values(["eval_row", "rank"])
                out.append({"dataset": dataset, "dataset_name": names.get(dataset, dataset),
                            "seed": int(seed),
                            "task": data.tasks().get(dataset, ""),
                            "network": network, "tree": tree,
                            "frame": merged.reset_index(drop=True)})
                break
    return out
