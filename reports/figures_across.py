"""The figures that read across datasets: normalised scores, the critical-difference
diagram, win rates, the pooled lens findings, effective parameters, and the differences of
two results directories.

Same conventions as :mod:`tabscope.reports.figures`: Agg canvases (never pyplot's figure
list), the model palette, one style.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import _model_legend, _new_figure, _style

__all__ = ["assembly_figure", "compare_figure", "critical_difference_figure", "effective_parameters_scatter",
           "normalised_figure", "normalised_trials_figure", "pooled_lens_figure", "win_rate_figure"]

_ROLE_MARKERS = {"network": "o", "tree": "s", "other": "^"}


def normalised_figure(normalised: pd.DataFrame, summary: pd.DataFrame,
                      palette: dict) -> Figure | None:
    """Normalised score per model: each dataset's mean over seeds as a dot, the mean over
    datasets as a large marker with ± std over seeds. None without data."""
    if summary.empty:
        return None
    models = [m for m in palette if m in set(summary["model"])]
    per_dataset = normalised.groupby(["model", "dataset"])["normalised"].mean().reset_index()
    rng = np.random.default_rng(0)
    with _style():
        figure = _new_figure(max(5.0, 1.1 * len(models) + 2.5), 4.2)
        ax = figure.subplots()
        for x, model in enumerate(models):
            dots = per_dataset[per_dataset["model"] == model]["normalised"].to_numpy()
            ax.scatter(x + rng.uniform(-0.15, 0.15, dots.size), dots, s=16, alpha=0.5,
                       color=palette[model], linewidths=0)
            row = summary[summary["model"] == model].iloc[0]
            ax.errorbar(x, row["mean"], yerr=np.nan_to_num(row["std"]), fmt="D", markersize=9,
                        capsize=6, elinewidth=2, color=palette[model], markeredgecolor="black")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=30 if len(models) > 3 else 0, ha="right"
                           if len(models) > 3 else "center")
        ax.set_ylabel("normalised score\n(1 = best model, 0 = worst mean)")
        ax.set_ylim(-0.05, max(1.1, float(np.nanmax(per_dataset["normalised"])) + 0.05))
    return figure


def normalised_trials_figure(curves: pd.DataFrame, palette: dict) -> Figure | None:
    """Normalised score of the validation-selected configuration against the number of
    trials, one line per model with a band of ± std over seeds. None without data."""
    if curves.empty:
        return None
    with _style():
        figure = _new_figure(6.0, 4.0)
        ax = figure.subplots()
        for model in [m for m in palette if m in set(curves["model"])]:
            curve = curves[curves["model"] == model].sort_values("n_trials")
            k, mean = curve["n_trials"].to_numpy(), curve["mean"].to_numpy(dtype=float)
            spread = np.nan_to_num(curve["std"].to_numpy(dtype=float))
            ax.plot(k, mean, color=palette[model], label=model, marker="o", markersize=3)
            ax.fill_between(k, mean - spread, mean + spread, color=palette[model], alpha=0.2,
                            linewidth=0)
        ax.set_xlabel("number of trials")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("normalised test score\n(averaged over datasets)")
        ax.legend(fontsize="small")
    return figure


def critical_difference_figure(result: dict, palette: dict) -> Figure | None:
    """The critical-difference diagram of scikit-posthocs (Nemenyi p-values), coloured by
    the model palette. None when the test did not run."""
    if result.get("nemenyi") is None:
        return None
    import scikit_posthocs

    with _style():
        figure = _new_figure(8.0, 0.45 * result["n_models"] + 1.6)
        ax = figure.subplots()
        scikit_posthocs.critical_difference_diagram(
            result["mean_ranks"], result["nemenyi"], ax=ax, alpha=result["alpha"],
            color_palette={m: palette.get(m, "grey") for m in result["mean_ranks"].index})
        ax.set_title(f"Mean rank over {result['n_blocks']} dataset × seed blocks; "
                     f"bars: Nemenyi, α = {result['alpha']}", fontsize=11)
    return figure


def win_rate_figure(rates: pd.DataFrame) -> Figure | None:
    """Each pair's win rate of the first model with its bootstrap interval. None if empty."""
    if rates.empty:
        return None
    with _style():
        figure = _new_figure(7.0, 0.45 * len(rates) + 1.4)
        ax = figure.subplots()
        labels = [f"{a} vs {b}" for a, b in zip(rates["model_a"], rates["model_b"])]
        y = np.arange(len(rates))[::-1]
        ax.errorbar(rates["win_rate"], y, xerr=[rates["win_rate"] - rates["low"],
                                                rates["high"] - rates["win_rate"]],
                    fmt="o", color="black", capsize=4)
        ax.axvline(0.5, color="grey", linestyle=":")
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("win rate of the first model (ties count ½), 95% bootstrap interval")
    return figure


def pooled_lens_figure(frame: pd.DataFrame, correlation: dict, palette: dict) -> Figure | None:
    """Network κ̄ ratio against the relative gap increase, one point per dataset and pair
    (colour = the pair's GBDT), with the rank correlation in the title. None if empty."""
    if frame.empty:
        return None
    with _style():
        figure = _new_figure(6.5, 4.8)
        ax = figure.subplots()
        for tree, group in frame.groupby("tree", sort=False):
            ax.errorbar(group["network_kappa_ratio"], group["relative_increase"],
                        xerr=np.nan_to_num(group["network_kappa_ratio_std"].to_numpy(float)),
                        fmt="o", color=palette.get(tree, "grey"), capsize=3,
                        markeredgecolor="black", label=f"network vs {tree}")
            for _, row in group.iterrows():
                ax.annotate(str(row["dataset_name"]), (row["network_kappa_ratio"],
                            row["relative_increase"]), fontsize=9, xytext=(4, 4),
                            textcoords="offset points")
        ax.axvline(1.0, color="black", linestyle=":", linewidth=0.8)
        ax.axhline(0.0, color="black", linestyle=":", linewidth=0.8)
        ax.set_yscale("symlog", linthresh=1.0)  # a gap near 0 at p = 0 makes huge ratios
        ax.set_xlabel("network κ̄ ratio, irregular / regular test inputs")
        ax.set_ylabel("relative gap increase p = 0 → 1\n(above 0: network loses ground; symlog)")
        rho = correlation.get("rho", np.nan)
        ax.set_title(f"Spearman ρ = {rho:.2f} [{correlation['low']:.2f}, {correlation['high']:.2f}]"
                     if np.isfinite(rho) else "too few points for a rank correlation", fontsize=11)
        ax.legend(frameon=False, fontsize=9)
    return figure


def effective_parameters_scatter(frame: pd.DataFrame, palette: dict) -> Figure | None:
    """p_test against p_train, one point per (dataset, model), marker = role. None if empty."""
    frame = frame.dropna(subset=["p_train", "p_test"])
    if frame.empty:
        return None
    with _style():
        figure = _new_figure(6.5, 5.0)
        ax = figure.subplots()
        for model, group in frame.groupby("model", sort=False):
            ax.scatter(group["p_train"], group["p_test"], s=50, color=palette.get(model, "grey"),
                       marker=_ROLE_MARKERS.get(group["role"].iloc[0], "o"),
                       edgecolor="black", label=model)
        values = frame[["p_train", "p_test"]].to_numpy(float)
        low, high = float(np.nanmin(values)) * 0.8, float(np.nanmax(values)) * 1.2
        ax.plot([low, high], [low, high], color="grey", linestyle=":", label="p_test = p_train")
        if low > 0:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("p_train (effective parameters on training data)")
        ax.set_ylabel("p_test (on test data)")
        ax.legend(frameon=False, fontsize=9)
    return figure


def compare_figure(differences: pd.DataFrame, palette: dict) -> Figure | None:
    """Relative difference B − A of the primary score (oriented: above 0 = B better) per
    dataset and model, with ± std. None if empty."""
    if differences.empty:
        return None
    datasets = list(dict.fromkeys(differences["dataset_name"]))
    models = [m for m in palette if m in set(differences["model"])]
    width = 0.8 / max(len(models), 1)
    with _style():
        figure = _new_figure(max(6.0, 1.2 * len(datasets) + 2.5), 4.6)
        ax = figure.subplots()
        for slot, model in enumerate(models):
            rows = differences[differences["model"] == model]
            x = np.array([datasets.index(d) for d in rows["dataset_name"]]) + \
                (slot - (len(models) - 1) / 2) * width
            ax.errorbar(x, rows["relative_difference"],
                        yerr=np.nan_to_num(rows["relative_difference_std"].to_numpy(float)),
                        fmt="o", color=palette[model], capsize=3, markeredgecolor="black")
        ax.axhline(0.0, color="black", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, rotation=30, ha="right")
        ax.set_ylabel("relative difference B − A\n(above 0: B better)")
        _model_legend(figure, models, palette, extra=[
            Line2D([], [], color="grey", label="whisker: ± std over seed pairs")])
    return figure


def kappa_path_figure(paths: pd.DataFrame, palette: dict) -> Figure | None:
    """Mean κ_t on test points over the training mean, against the fraction of training
    done, one panel per dataset, one line per model and seed. None if empty."""
    if paths.empty:
        return None
    from .figures import _grid, _hide_unused

    datasets = list(dict.fromkeys(paths["dataset"]))
    with _style():
        figure, axes, columns = _grid(len(datasets), extra_height=1.0)
        for index, dataset in enumerate(datasets):
            ax = axes[divmod(index, columns)]
            here = paths[paths["dataset"] == dataset]
            for (model, _seed), line in here.groupby(["model", "seed"], sort=False):
                ax.plot(line["fraction"], line["relative"], color=palette.get(model, "grey"),
                        alpha=0.8, linewidth=1.5)
            ax.axhline(1.0, color="black", linestyle=":", linewidth=0.8)
            ax.set_title(here["dataset_name"].iloc[0])
            ax.set_xlabel("fraction of steps / rounds")
            ax.set_ylabel("mean κ_t test / train")
        _hide_unused(axes, len(datasets), columns)
        _model_legend(figure, [m for m in palette if m in set(paths["model"])], palette)
    return figure


def assembly_figure(shares: pd.DataFrame, palette: dict) -> Figure | None:
    """Share of the prediction's movement made in each tenth of training, one line per
    model (mean over datasets and seeds, band: min to max over datasets). None if empty."""
    if shares.empty:
        return None
    per_dataset = shares.groupby(["model", "dataset", "part"])["share"].mean().reset_index()
    with _style():
        figure = _new_figure(6.0, 4.0)
        ax = figure.subplots()
        for model in [m for m in palette if m in set(per_dataset["model"])]:
            line = per_dataset[per_dataset["model"] == model].groupby("part")["share"]
            parts = np.asarray(sorted(per_dataset["part"].unique()))
            mean, low, high = (line.mean().reindex(parts), line.min().reindex(parts),
                               line.max().reindex(parts))
            ax.plot(parts, mean, color=palette[model], marker="o", markersize=3, label=model)
            ax.fill_between(parts, low, high, color=palette[model], alpha=0.15, linewidth=0)
        ax.set_xlabel("tenth of the training steps / boosting rounds")
        ax.set_ylabel("share of the prediction's movement")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    return figure
