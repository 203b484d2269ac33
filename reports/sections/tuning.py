"""Section 'Tuning and early stopping': where each model stopped on the validation part,
and, for tuned runs, the test score of the validation-selected configuration against the
number of trials, the selected parameters, and default against tuned.

The curve follows Grinsztajn et al. (2022, figures 1-3): for many random orderings of a
cell's trials, the configuration with the best validation score among the first ``k`` is
selected and its test score read; the line is the median over orderings and seeds, the band
the 25th to 75th percentiles. The per-trial test scores it reads are stored for this curve
only; selection never sees them (bench/tuning.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tabscope.vocabulary import Metric, TrialStatus

from ..across import N_ORDERINGS, selection_curve
from ..document import Paragraph, Section, Table
from ._common import ReportContext, ReportSection, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]

def _with_cells(context: ReportContext, trials: pd.DataFrame) -> pd.DataFrame:
    cells = context.data.cells[["cell_id", "dataset", "dataset_name", "task", "model", "seed"]]
    return trials.merge(cells, on="cell_id", how="inner")


def _curve_figure(trials: pd.DataFrame, palette: dict, order: list[str]) -> Figure | None:
    datasets = [d for d in order if d in set(trials["dataset"])]
    if not datasets:
        return None
    columns = min(3, len(datasets))
    rows = -(-len(datasets) // columns)
    figure = Figure(figsize=(max(3.6 * columns, 6.5), 3.1 * rows + 0.6), dpi=110,
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, dataset in enumerate(datasets):
        ax = axes[divmod(index, columns)]
        frame = trials[trials["dataset"] == dataset]
        metric = Metric.primary(frame["task"].iloc[0])
        for model, group in frame.groupby("model", sort=False):
            curves = np.vstack([selection_curve(cell, metric.greater_is_better)
                                for _, cell in group.groupby("cell_id")])
            k = np.arange(1, curves.shape[1] + 1)
            with np.errstate(all="ignore"):
                median = np.nanmedian(curves, axis=0)
                low, high = np.nanpercentile(curves, [25, 75], axis=0)
            colour = palette.get(model)
            ax.plot(k, median, color=colour, label=model)
            ax.fill_between(k, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.set_title(frame["dataset_name"].iloc[0])
        ax.set_xlabel("trials")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(f"test {metric.value}")
        ax.legend(fontsize="small")
    for index in range(len(datasets), rows * columns):
        axes[divmod(index, columns)].set_visible(False)
    return figure


def _params_text(params: str) -> str:
    values = json.loads(params)
    if not values:
        return "(the suite's configuration)"
    return ", ".join(f"{k}={fmt(v, 3) if isinstance(v, float) else v}"
                     for k, v in sorted(values.items()))


def _stopping_table(context: ReportContext) -> Table | Paragraph:
    cells = context.data.cells
    if "stopping_step" not in cells:
        return no_data("these results predate stopping points (no stopping_step column).")
    ok = cells[(cells["status"] == "ok") & cells["stopping_step"].notna()]
    if ok.empty:
        return no_data("no finished cell recorded a stopping point (plug-ins record none).")
    rows = []
    for (dataset, model), group in in_report_order(ok, context.data).groupby(
            ["dataset", "model"], sort=False):
        steps = group["stopping_step"].astype(int)
        rows.append([group["dataset_name"].iloc[0], model, f"{int(np.median(steps))}",
                     f"{steps.min()}–{steps.max()}", str(len(steps))])
    return Table("Stopping point on the validation part (network: step; boosters: rounds)",
                 ["dataset", "model", "median", "range", "seeds"], rows,
                 note="Networks keep the best step's weights; XGBoost predicts with its best "
                      "iteration; LightGBM is cut at it; HistGradientBoosting stops after "
                      "n_iter_no_change rounds without improvement; GradientBoosting keeps "
                      "the stage count with the lowest validation loss.")


def _build(context: ReportContext) -> Section:
    section = Section(SECTION.title)
    section.blocks.append(_stopping_table(context))
    try:
        trials = context.data.store.trials()
    except Exception:  # a store written before the trials table existed
        trials = pd.DataFrame()
    if trials.empty:
        section.blocks.append(no_data("the suite has no [tuning] table (n_trials = 0), so "
                                      "every cell fitted the suite's configuration once."))
        return section
    trials = _with_cells(context, trials)
    block = figure_block(
        "tuning", _curve_figure(trials, context.palette, context.data.dataset_order()),
        alt="Test score of the validation-selected configuration against the number of trials",
        caption=f"Test score of the configuration selected on the validation part among the "
                f"first k trials: median over {N_ORDERINGS} random orderings of the trials "
                "and over seeds; band: 25th–75th percentiles (as Grinsztajn et al. 2022).",
    )
    if block:
        section.blocks.append(block)
    rows = []
    trials = in_report_order(trials.sort_values(["seed", "trial"], kind="stable"), context.data)
    for cell_id, group in trials.groupby("cell_id", sort=False):
        chosen = group[group["selected"] == 1]
        default = group[group["trial"] == 0]
        if chosen.empty:
            continue
        first = chosen.iloc[0]
        rows.append([first["dataset_name"], first["model"], str(first["seed"]),
                     str(int(first["trial"])), f"{len(group)}",
                     fmt(default["test_score"].iloc[0]) if not default.empty else "—",
                     fmt(first["test_score"]), _params_text(first["params"])])
    section.blocks.append(Table(
        "Selected configuration per cell: default (trial 0) against tuned, test primary metric",
        ["dataset", "model", "seed", "selected trial", "trials", "default", "tuned",
         "selected parameters"], rows,
        note="Selected on the validation part; trial 0 is the suite's own configuration. "
             "Pruned and failed trials count towards the trials but are never selected."))
    return section


SECTION = ReportSection("tuning", "Tuning and early stopping", _build)
