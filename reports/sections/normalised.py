"""Section 'Normalised scores across datasets': each dataset's scores rescaled between its
worst and best model (Grinsztajn et al. 2022), averaged per model, with spread over seeds."""

from __future__ import annotations

from .. import across
from ..document import Cell, Paragraph, Section, Table
from ..figures_across import normalised_figure, normalised_trials_figure
from ..tables import format_mean_std
from ._common import ReportContext, ReportSection, figure_block, no_data

__all__ = ["SECTION"]


def _trials_curve(context: ReportContext) -> list:
    """The normalised score against the tuning budget, or a note saying why there is none."""
    trials = context.data.trials
    if trials is None:
        return [Paragraph("The curve of normalised score against the tuning budget needs the "
                          "'trials' table of tuned runs; these results have none.", kind="note")]
    cells = context.data.cells[["cell_id", "dataset", "task", "model", "seed"]]
    curves = across.normalised_trial_curves(trials.merge(cells, on="cell_id", how="inner"))
    block = figure_block(
        "normalised_trials", normalised_trials_figure(curves, context.palette),
        alt="Normalised score against the number of tuning trials",
        caption="Test score of the configuration selected on the validation part among the "
                f"first k trials (median over {across.N_ORDERINGS} random orderings), "
                "normalised per dataset between the lowest and the best value any model "
                "reaches at any budget, averaged over datasets; band: ± std over seeds "
                "(Grinsztajn et al. 2022, figure 1).")
    return [block] if block else [no_data("no tuned cell has a completed trial.")]


def _build(context: ReportContext) -> Section:
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "Scores of different datasets are on different scales. On each dataset the primary "
        "metric is oriented so that larger is better and rescaled so that the best model's "
        "mean over seeds is 1 and the worst model's mean is 0, values below 0 clipped "
        "(Grinsztajn, Oyallon & Varoquaux 2022, §3.3, who take a low quantile of many "
        "random-search models as 0). A model's normalised score is then averaged over "
        "datasets for each seed; the table gives the mean and spread of that average over "
        "seeds. Because 0 is the worst model here, the numbers rank models within this "
        "benchmark; they do not compare across benchmarks with other model sets."))
    section.blocks += _trials_curve(context)
    normalised = across.normalised_scores(across.per_seed_scores(context.data.cells))
    summary = across.normalised_summary(normalised)
    if summary.empty:
        section.blocks.append(no_data("no dataset has scores of two models with different "
                                       "means."))
        return section
    best = summary["mean"].max()
    section.blocks.append(Table(
        "Normalised score averaged over datasets (mean ± std over seeds; 1 = best)",
        ["model", "role", "normalised score", "datasets", "seeds"],
        [[row["model"], row["role"], Cell(format_mean_std(row["mean"], row["std"], 3),
                                          best=row["mean"] == best),
          int(row["n_datasets"]), int(row["n_seeds"])] for _, row in summary.iterrows()],
    ))
    block = figure_block(
        "normalised_scores", normalised_figure(normalised, summary, context.palette),
        alt="Normalised score of every model across datasets",
        caption="Small dots: a dataset's normalised score (mean over seeds); diamond: the "
                "average over datasets, whisker ± std over seeds.")
    if block:
        section.blocks.append(block)
    return section


SECTION = ReportSection("normalised", "Normalised scores across datasets", _build)
