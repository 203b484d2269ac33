"""Section 'Kernel irregularity': the paper's figure 5 (docs/design.md §1.5), the metric gap and
each model's kappa-bar as test subsets grow irregular, with effect sizes per pair."""

from __future__ import annotations

from tabscope.vocabulary import Analysis, CellJob

from .. import lens
from ..data import ReportData
from ..document import FigureBlock, Paragraph, Section, Table
from ..figures import irregularity_figure
from ..tables import format_mean_std
from ._common import ReportContext, ReportSection, failed_note, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]


def _irregularity_settings(data: ReportData) -> str:
    """How the stored irregularity analyses defined the irregular pool, in words."""
    rows = data.analyses[(data.analyses["analysis"] == Analysis.IRREGULARITY)
                         & (data.analyses["status"] == "ok")]
    described = sorted({
        (summary.get("method", "?"), summary.get("settings", {}).get("quantile"))
        for summary in rows["summary"]
    }, key=str)
    if not described:
        return "no finished analysis to describe"
    return "; ".join(
        f"score: {method}, irregular pool: "
        + (f"the top {100 * (1 - quantile):.0f}% of the score" if quantile else "unknown")
        for method, quantile in described
    )


def _build(context: ReportContext) -> Section:
    data, palette = context.data, context.palette
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "Test examples are scored by how unlike the training data they are "
        f"({_irregularity_settings(data)}); subsets with a growing proportion p of the most "
        "irregular examples are drawn repeatedly. The paper's finding: as p grows, the network "
        "loses ground to the GBDT (the gap network − GBDT grows) and its normalised kernel "
        "weight norm κ̄ rises, while the GBDT's κ̄ stays near 1."))
    section.blocks += failed_note(data, (Analysis.IRREGULARITY, CellJob.KERNEL_NORMS))
    curves = lens.irregularity_curves(data)
    gaps, kappa = lens.aggregate_irregularity(curves)
    gaps, kappa = in_report_order(gaps, data, model="tree"), in_report_order(kappa, data)
    if gaps.empty and kappa.empty:
        section.blocks.append(no_data("no irregularity analysis has finished (it needs a "
                                       "compared network/GBDT pair with kernel norms)."))
        return section
    bands = set(gaps["band"]) | set(kappa["band"])
    band_text = ("± one standard deviation over seeds" if bands == {"seeds"}
                 else "± one standard deviation over seeds, or over the random subsets where "
                      "only one seed is available")
    block = figure_block(
        "irregularity", irregularity_figure(gaps, kappa, palette),
        alt="Metric gap and mean kappa-bar against the proportion of irregular test examples",
        caption=f"Top: metric gap network − GBDT (above 0: the network is worse), drawn in "
                f"the GBDT's colour. Bottom: "
                f"each model's mean κ̄ on the subset (dotted line: the training mean, 1). "
                f"Lines: mean over seeds; bands: {band_text}.",
    )
    if block:
        section.blocks.append(block)
    table = in_report_order(lens.irregularity_table(data), data, model="tree")
    if not table.empty:
        section.blocks.append(Table(
            "Effect sizes (mean ± std over seeds)",
            ["dataset", "pair", "metric", "gap at p=0", "gap at p=1", "relative increase at p=1",
             "network κ̄ p=0 → 1", "GBDT κ̄ p=0 → 1", "Spearman ρ(score, κ̄) network / GBDT",
             "seeds"],
            [[row["dataset_name"], f"{row['network']} vs {row['tree']}", row["metric"],
              format_mean_std(row["gap_p0_mean"], row["gap_p0_std"], 3),
              format_mean_std(row["gap_p1_mean"], row["gap_p1_std"], 3),
              format_mean_std(row["relative_increase_p1_mean"], row["relative_increase_p1_std"], 3),
              f"{fmt(row['network_kappa_bar_p0_mean'], 3)} → {fmt(row['network_kappa_bar_p1_mean'], 3)}",
              f"{fmt(row['tree_kappa_bar_p0_mean'], 3)} → {fmt(row['tree_kappa_bar_p1_mean'], 3)}",
              f"{fmt(row['network_spearman_score_kappa_mean'], 2)} / "
              f"{fmt(row['tree_spearman_score_kappa_mean'], 2)}",
              row["n_seeds"]]
             for _, row in table.iterrows()],
            note="Relative increase = (gap(p) − gap(0)) / |gap(0)|. Spearman ρ: rank "
                 "correlation between the irregularity score and κ̄ over all evaluated test "
                 "examples, averaged over seeds.",
        ))
    return section


SECTION = ReportSection("irregularity", "Kernel irregularity", _build)
