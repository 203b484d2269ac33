"""The report's figures, drawn with matplotlib and seaborn on the Agg backend.

Every figure is a :class:`matplotlib.figure.Figure` attached to a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` explicitly, never a pyplot
figure: the report needs no display, and a user's interactive backend (and pyplot's global
figure list) is left untouched. Colours come from one palette keyed by model name
(:func:`model_palette`), so a model has the same colour in every figure.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from contextlib import contextmanager

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .lens import FIDELITY_KINDS
from .tables import METRIC_LABELS

__all__ = [
    "effective_parameters_figure",
    "fidelity_figure",
    "figure_png",
    "irregularity_figure",
    "kernel_norm_figure",
    "model_palette",
    "scores_figure",
]

#: Readable defaults for a page, also when a wide figure is scaled down to the page width.
_RC = {
    "font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11,
    "ytick.labelsize": 11, "legend.fontsize": 11, "figure.titlesize": 14,
    "axes.titleweight": "bold",
}
_PANEL_COLUMNS = 4
_DPI = 110
#: How much white a training-set box or bar is mixed with, to tell it from the test one.
_LIGHTEN = 0.55


def model_palette(models: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per model name, in the order given (the suite's order).

    Parameters
    ----------
    models : sequence of str
        Model names without repeats.

    Returns
    -------
    palette : dict of str to RGB tuple
        Colour-blind-safe colours for up to 10 models, evenly spaced hues beyond.
    """
    if isinstance(models, str) or not all(isinstance(m, str) for m in models):
        raise TypeError("models must be a sequence of model names (str)")
    names = list(dict.fromkeys(models))
    base = sns.color_palette("colorblind", 10)
    if len(names) > len(base):
        base = sns.color_palette("husl", len(names))
    return {name: tuple(base[i]) for i, name in enumerate(names)}


def _lighten(colour, amount: float = _LIGHTEN) -> tuple[float, float, float]:
    rgb = np.asarray(matplotlib.colors.to_rgb(colour))
    return tuple(rgb + (1.0 - rgb) * amount)


def _wrap(label: str, width: int = 14) -> str:
    return "\n".join(textwrap.wrap(str(label), width, break_long_words=True)) or str(label)


@contextmanager
def _style():
    with sns.axes_style("whitegrid"), matplotlib.rc_context(_RC):
        yield


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _grid(count: int, panel_width: float = 3.6, panel_height: float = 3.1,
          rows_per_panel: int = 1, extra_height: float = 0.6):
    columns = min(_PANEL_COLUMNS, max(count, 1))
    rows = -(-count // columns)
    figure = _new_figure(max(panel_width * columns, 6.5),
                         panel_height * rows * rows_per_panel + extra_height)
    axes = figure.subplots(rows * rows_per_panel, columns, squeeze=False)
    return figure, axes, columns


def _hide_unused(axes, used: int, columns: int, rows_per_panel: int = 1) -> None:
    total = (axes.shape[0] // rows_per_panel) * columns
    for index in range(used, total):
        block, column = divmod(index, columns)
        for offset in range(rows_per_panel):
            axes[block * rows_per_panel + offset, column].set_visible(False)


def _model_legend(figure: Figure, models: Sequence[str], palette: dict, extra=()) -> None:
    handles = [Patch(facecolor=palette[m], label=m) for m in models] + list(extra)
    # Enough rows that each fits the figure's width (about 0.085 in per character at
    # 11 pt plus the handle), so no entry is cut off at the figure's edges.
    needed = sum(0.65 + 0.085 * len(h.get_label()) for h in handles)
    rows = max(1, int(np.ceil(needed / (figure.get_figwidth() * 0.95))))
    figure.legend(handles=handles, loc="outside lower center",
                  ncols=int(np.ceil(len(handles) / rows)), frameon=False)


def _model_ticks(ax, labels: Sequence[str]) -> None:
    ax.set_xticks(range(len(labels)))
    rotate = len(labels) > 3 or max((len(label) for label in labels), default=0) > 10
    ax.set_xticklabels([_wrap(label) for label in labels], rotation=30 if rotate else 0,
                       ha="right" if rotate else "center", rotation_mode="anchor")


class _PlainLogFormatter(matplotlib.ticker.LogFormatter):
    """LogFormatter's choice of which minor ticks to label, written as plain numbers."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def _plain_log_axis(ax) -> None:
    """A log-scaled y axis labelled 0.5, 1, 2 rather than 5×10⁻¹, 10⁰, 2×10⁰."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False,
                                                    minor_thresholds=(1.5, 0.5)))


def figure_png(figure: Figure) -> bytes:
    """Render ``figure`` to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


# ------------------------------------------------------------------------------- scores


def scores_figure(per_seed: pd.DataFrame, scores: pd.DataFrame, palette: dict) -> Figure | None:
    """Primary metric per dataset and model: mean ± std over seeds, seeds as dots.

    Parameters
    ----------
    per_seed : pandas.DataFrame
        Columns ``dataset``, ``model``, ``seed``, ``value`` (ok cells only).
    scores : pandas.DataFrame
        The output of :func:`tabscope.reports.tables.primary_scores`.
    palette : dict
        Colour per model name.

    Returns
    -------
    figure : Figure or None
        None when no dataset has a score.
    """
    datasets = list(dict.fromkeys(scores["dataset"]))
    if not datasets or scores["mean"].notna().sum() == 0:
        return None
    rng = np.random.default_rng(0)  # jitter of the seed dots only
    with _style():
        figure, axes, columns = _grid(len(datasets), extra_height=1.0)
        for index, dataset in enumerate(datasets):
            ax = axes[divmod(index, columns)]
            here = scores[scores["dataset"] == dataset]
            models = [m for m in palette if m in set(here["model"])]
            labels = []
            for x, model in enumerate(models):
                row = here[here["model"] == model].iloc[0]
                labels.append(model if row["n_ok"] else f"{model} (failed)")
                if not np.isfinite(row["mean"]):
                    continue
                dots = per_seed[(per_seed["dataset"] == dataset) & (per_seed["model"] == model)]
                ax.scatter(x + rng.uniform(-0.12, 0.12, len(dots)), dots["value"], s=14,
                           color=palette[model], alpha=0.5, linewidths=0, zorder=2)
                ax.errorbar(x, row["mean"], yerr=np.nan_to_num(row["std"]), fmt="o",
                            color=palette[model], markersize=8, capsize=5, elinewidth=2,
                            markeredgecolor="black" if row["best"] else palette[model], zorder=3)
            _model_ticks(ax, labels)
            ax.set_xlim(-0.6, len(models) - 0.4)
            ax.set_title(f"{here['dataset_name'].iloc[0]} ({here['task'].iloc[0]})")
            metric = here["metric"].iloc[0]
            ax.set_ylabel(METRIC_LABELS.get(metric, metric).replace(" (", "\n(", 1))
        _hide_unused(axes, len(datasets), columns)
        shown = [m for m in palette if m in set(scores["model"])]
        _model_legend(figure, shown, palette, extra=[
            Line2D([], [], marker="o", color="grey", linestyle="", markeredgecolor="black",
                   markersize=8, label="best mean (black edge)"),
        ])
    return figure


# ------------------------------------------------------------------------- irregularity


_IRREGULARITY_METRICS = {
    "rmse": "RMSE", "mse": "MSE", "mae": "MAE", "log_loss": "log loss",
    "error_rate": "error rate",
}


def irregularity_figure(gaps: pd.DataFrame, kappa: pd.DataFrame, palette: dict) -> Figure | None:
    """The paper's figure 5: metric gap and mean ``kappa_bar`` against the share ``p`` of
    irregular test examples, one column of two panels per dataset, bands = spread.

    Parameters
    ----------
    gaps, kappa : pandas.DataFrame
        The outputs of :func:`tabscope.reports.lens.aggregate_irregularity`.
    palette : dict
        Colour per model name; a gap line takes its GBDT's colour.

    Returns
    -------
    figure : Figure or None
        None when no curve is stored.
    """
    if gaps.empty and kappa.empty:
        return None
    datasets = list(dict.fromkeys(list(gaps["dataset"]) + list(kappa["dataset"])))
    with _style():
        figure, axes, columns = _grid(len(datasets), panel_width=3.7, panel_height=2.7,
                                      rows_per_panel=2, extra_height=1.0)
        for index, dataset in enumerate(datasets):
            block, column = divmod(index, columns)
            top, bottom = axes[2 * block, column], axes[2 * block + 1, column]
            here = gaps[gaps["dataset"] == dataset]
            name = (here["dataset_name"].iloc[0] if not here.empty
                    else kappa.loc[kappa["dataset"] == dataset, "dataset_name"].iloc[0])
            metric = here["metric"].iloc[0] if not here.empty else ""
            for (network, tree), pair in here.groupby(["network", "tree"], sort=False):
                colour = palette.get(tree, "grey")
                top.plot(pair["p"], pair["gap"], marker="o", markersize=3.5, color=colour,
                         label=f"{network} − {tree}")
                top.fill_between(pair["p"], pair["gap"] - pair["gap_band"],
                                 pair["gap"] + pair["gap_band"], color=colour, alpha=0.2,
                                 linewidth=0)
            top.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
            top.set_title(name)
            top.set_ylabel(f"{_IRREGULARITY_METRICS.get(metric, metric)} gap\n(network − GBDT)")
            top.tick_params(labelbottom=False)
            for model, curve in kappa[kappa["dataset"] == dataset].groupby("model", sort=False):
                colour = palette.get(model, "grey")
                bottom.plot(curve["p"], curve["kappa_bar"], marker="o", markersize=3.5,
                            color=colour, label=model)
                bottom.fill_between(curve["p"], curve["kappa_bar"] - curve["kappa_bar_band"],
                                    curve["kappa_bar"] + curve["kappa_bar_band"], color=colour,
                                    alpha=0.2, linewidth=0)
            bottom.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
            bottom.set_ylabel("mean κ̄ on subset\n(1 = training mean)")
            bottom.set_xlabel("proportion p of irregular\ntest examples")
            bottom.sharex(top)
            bottom.set_xlim(-0.02, 1.02)
        _hide_unused(axes, len(datasets), columns, rows_per_panel=2)
        shown = [m for m in palette if m in set(kappa["model"]) | set(gaps["tree"])]
        over = "seeds" if set(gaps["band"]) | set(kappa["band"]) == {"seeds"} else "seeds or redraws"
        _model_legend(figure, shown, palette, extra=[
            Patch(facecolor="grey", alpha=0.25, label=f"band: ± std over {over}"),
        ])
    return figure


# ------------------------------------------------------------------------- kernel norms


def kernel_norm_figure(norms: pd.DataFrame, palette: dict) -> Figure | None:
    """Distributions of ``kappa_bar`` on training (light) and test (full colour) examples,
    per model, one panel per dataset, pooled over seeds; log scale when all are positive.

    Returns None when no kernel norms are stored.
    """
    if norms.empty:
        return None
    datasets = list(dict.fromkeys(norms["dataset"]))
    with _style():
        figure, axes, columns = _grid(len(datasets), extra_height=1.0)
        for index, dataset in enumerate(datasets):
            ax = axes[divmod(index, columns)]
            here = norms[norms["dataset"] == dataset]
            models = [m for m in palette if m in set(here["model"])]
            for x, model in enumerate(models):
                for shift, split in ((-0.2, "train"), (0.2, "test")):
                    values = here.loc[(here["model"] == model) & (here["split"] == split),
                                      "kappa_bar"].to_numpy()
                    values = values[np.isfinite(values)]
                    if values.size == 0:
                        continue
                    colour = palette[model] if split == "test" else _lighten(palette[model])
                    ax.boxplot(values, positions=[x + shift], widths=0.34, patch_artist=True,
                               whis=(5, 95), manage_ticks=False,
                               boxprops={"facecolor": colour, "edgecolor": "black"},
                               medianprops={"color": "black"},
                               flierprops={"marker": ".", "markersize": 3,
                                           "markerfacecolor": colour, "markeredgecolor": colour})
            positive = bool((here["kappa_bar"] > 0).all())
            if positive:
                _plain_log_axis(ax)
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
            _model_ticks(ax, models)
            ax.set_xlim(-0.6, len(models) - 0.4)
            ax.set_title(here["dataset_name"].iloc[0])
            ax.set_ylabel("κ̄ (kernel weight norm /\ntraining mean" + (", log scale)" if positive else ")"))
        _hide_unused(axes, len(datasets), columns)
        shown = [m for m in palette if m in set(norms["model"])]
        _model_legend(figure, shown, palette, extra=[
            Patch(facecolor="white", edgecolor="black", label="light: training"),
            Patch(facecolor="dimgrey", edgecolor="black", label="full colour: test"),
        ])
    return figure


# ------------------------------------------------------------------ effective parameters


def effective_parameters_figure(frame: pd.DataFrame, palette: dict) -> Figure | None:
    """Effective parameters on training (light) and test (full colour) data per model:
    bars are means over seeds, whiskers the std, dots the seeds. None without data."""
    if frame.empty:
        return None
    datasets = list(dict.fromkeys(frame["dataset"]))
    with _style():
        figure, axes, columns = _grid(len(datasets), extra_height=1.0)
        for index, dataset in enumerate(datasets):
            ax = axes[divmod(index, columns)]
            here = frame[frame["dataset"] == dataset]
            models = [m for m in palette if m in set(here["model"])]
            for x, model in enumerate(models):
                rows = here[here["model"] == model]
                for shift, column in ((-0.2, "p_train"), (0.2, "p_test")):
                    values = rows[column].to_numpy(dtype=np.float64)
                    values = values[np.isfinite(values)]
                    if values.size == 0:
                        continue
                    colour = palette[model] if column == "p_test" else _lighten(palette[model])
                    ax.bar(x + shift, values.mean(), width=0.38, color=colour, edgecolor="black",
                           yerr=values.std(ddof=1) if values.size > 1 else None, capsize=4)
                    ax.scatter(np.full(values.size, x + shift), values, s=12, color="black",
                               zorder=3, linewidths=0)
            _model_ticks(ax, models)
            ax.set_xlim(-0.6, len(models) - 0.4)
            ax.set_title(here["dataset_name"].iloc[0])
            ax.set_ylabel("effective number of\nparameters p (count)")
        _hide_unused(axes, len(datasets), columns)
        shown = [m for m in palette if m in set(frame["model"])]
        _model_legend(figure, shown, palette, extra=[
            Patch(facecolor="white", edgecolor="black", label="light: training data"),
            Patch(facecolor="dimgrey", edgecolor="black", label="full colour: test data"),
        ])
    return figure


# ----------------------------------------------------------------------------- fidelity


_FIDELITY_MARKERS = {"first_order": "o", "trapezoid": "s", "linearized": "^"}


def fidelity_figure(frame: pd.DataFrame, palette: dict) -> Figure | None:
    """Relative error of each telescoping approximation per dataset (log scale): mean over
    seeds as a marker (shape = approximation, colour = network), seeds as small dots."""
    if frame.empty:
        return None
    datasets = list(dict.fromkeys(frame["dataset"]))
    names = dict(zip(frame["dataset"], frame["dataset_name"]))
    models = [m for m in palette if m in set(frame["model"])]
    slots = [(model, kind) for model in models for kind in FIDELITY_KINDS]
    width = 0.8 / len(slots)
    with _style():
        figure = _new_figure(max(5.0, 1.5 * len(datasets) + 2.5), 4.4)
        ax = figure.subplots()
        for slot, (model, kind) in enumerate(slots):
            shift = (slot - (len(slots) - 1) / 2) * width
            for x, dataset in enumerate(datasets):
                values = frame.loc[(frame["dataset"] == dataset) & (frame["model"] == model), kind]
                values = values.to_numpy(dtype=np.float64)
                values = values[np.isfinite(values) & (values > 0)]
                if values.size == 0:
                    continue
                ax.scatter(np.full(values.size, x + shift), values, s=10, color=palette[model],
                           alpha=0.45, linewidths=0)
                ax.scatter([x + shift], [np.exp(np.mean(np.log(values)))], s=60,
                           marker=_FIDELITY_MARKERS[kind], color=palette[model],
                           edgecolor="black", zorder=3)
        _plain_log_axis(ax)
        _model_ticks(ax, [names[d] for d in datasets])
        ax.set_xlim(-0.6, len(datasets) - 0.4)
        ax.set_ylabel("relative error  mean|f̃ − f_T| / mean|f_T − f_0|\n(log scale, lower is better)")
        handles = [Patch(facecolor=palette[m], label=m) for m in models]
        handles += [Line2D([], [], marker=_FIDELITY_MARKERS[k], linestyle="", color="grey",
                           markeredgecolor="black", markersize=8, label=label)
                    for k, label in FIDELITY_KINDS.items()]
        figure.legend(handles=handles, loc="outside right upper", frameon=False)
    return figure
