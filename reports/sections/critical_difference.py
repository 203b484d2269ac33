"""Section 'Critical differences': ranks over dataset × seed blocks, the Friedman test and
the Nemenyi post-hoc test (Demšar 2006), drawn as a critical-difference diagram."""

from __future__ import annotations

from .. import across
from ..document import Paragraph, Section, Table
from ..figures_across import critical_difference_figure
from ._common import ReportContext, ReportSection, figure_block, fmt, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "In every (dataset, seed) block where all models have a score, models are ranked by "
        "the primary metric (1 = best, ties share their mean rank). The Friedman test asks "
        "whether the mean ranks differ more than chance allows (scipy.stats."
        "friedmanchisquare); if so, the Nemenyi post-hoc test (scikit-posthocs) says which "
        "pairs differ, and two models whose mean ranks differ by less than the critical "
        "difference CD = q_α √(k(k+1)/6N) are joined by a bar (Demšar 2006). Seeds of one "
        "dataset share its data, so blocks are not fully independent and the p-values are "
        "somewhat optimistic."))
    result = across.friedman_nemenyi(across.per_seed_scores(context.data.cells))
    if result["n_blocks"] == 0:
        section.blocks.append(no_data("no dataset and seed has a score of every model."))
        return section
    if result["n_models"] < 3:
        section.blocks.append(no_data(f"{result['n_models']} model(s) in common: the Friedman "
                                       "test needs three; see the win rates for two models."))
        return section
    section.blocks.append(Table(
        "Mean rank over dataset × seed blocks (1 = best)",
        ["model", "mean rank"],
        [[model, fmt(rank, 3)] for model, rank in result["mean_ranks"].items()],
        note=f"Friedman χ² = {fmt(result['statistic'], 4)}, p = {fmt(result['pvalue'], 3)}; "
             f"{result['n_blocks']} blocks from {result['n_datasets']} datasets, "
             f"{result['n_models']} models; Nemenyi CD at α = {result['alpha']}: "
             f"{fmt(result['critical_difference'], 3)}.",
    ))
    if not result["enough"]:
        section.blocks.append(Paragraph(
            f"Only {result['n_datasets']} dataset(s): the critical-difference diagram needs "
            f"at least {across.MIN_DATASETS} (Demšar 2006 warns the test has little power and "
            "an inexact null distribution with few data sets), so none is drawn; the ranks "
            "above are descriptive.", kind="note"))
        return section
    if result["n_datasets"] < 10:
        section.blocks.append(Paragraph(
            f"{result['n_datasets']} datasets: below Demšar's N > 10 the diagram is "
            "indicative only.", kind="note"))
    block = figure_block(
        "critical_difference", critical_difference_figure(result, context.palette),
        alt="Critical-difference diagram of the models' mean ranks",
        caption="Mean ranks on an axis (left = better); a horizontal bar joins models the "
                "Nemenyi test does not separate at the stated α.")
    if block:
        section.blocks.append(block)
    nemenyi = result["nemenyi"]
    section.blocks.append(Table(
        "Nemenyi p-values", ["model", *nemenyi.columns],
        [[model, *(fmt(v, 3) for v in nemenyi.loc[model])] for model in nemenyi.index]))
    return section


SECTION = ReportSection("critical_difference", "Critical differences", _build)
