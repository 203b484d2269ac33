"""Section 'Lens findings across datasets': the paper's irregularity finding (docs/design.md
§1.5) pooled over datasets, and effective parameters p_train vs p_test per model family."""

from __future__ import annotations

from tabscope.vocabulary import Analysis

from ..document import Paragraph, Section, Table
from ..figures_across import effective_parameters_scatter, pooled_lens_figure
from ..pooled_lens import (effective_parameter_roles, lens_per_dataset, rank_correlation,
                           verdicts)
from ._common import ReportContext, ReportSection, failed_note, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data, palette = context.data, context.palette
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "The telescoping paper's tabular claim is a cross-dataset one: the network's error gap "
        "to the GBDT grows with the share of irregular test inputs, while the network's κ̄ "
        "grows and the GBDT's stays near 1. Per dataset and compared pair: the gap increase "
        "from p = 0 (regular inputs only) to p = 1 (irregular only), the network's κ̄ ratio "
        "(mean κ̄ at p = 1 over p = 0) and the rank correlation of irregularity score and κ̄. "
        "Across datasets: whether a larger κ̄ ratio goes with a larger relative gap increase "
        "(Spearman ρ over dataset–pairs, with a bootstrap interval that resamples datasets, "
        "since a dataset's pairs share its network)."))
    section.blocks += failed_note(data, (Analysis.IRREGULARITY,))
    frame = lens_per_dataset(data)
    if frame.empty:
        section.blocks.append(no_data("no irregularity analysis has finished (it needs a "
                                       "compared network/GBDT pair with kernel norms)."))
    else:
        frame = in_report_order(frame, data, model="tree")
        correlation = rank_correlation(frame["network_kappa_ratio"], frame["relative_increase"],
                                       groups=frame["dataset"].to_numpy())
        section.blocks.append(Table(
            "Per dataset and pair (means over seeds)",
            ["dataset", "pair", "gap increase p=0→1", "relative increase",
             "network κ̄ ratio", "GBDT κ̄ ratio", "ρ(score, κ̄) network / GBDT", "seeds"],
            [[r["dataset_name"], f"{r['network']} vs {r['tree']}", fmt(r["gap_increase"], 3),
              fmt(r["relative_increase"], 3), fmt(r["network_kappa_ratio"], 3),
              fmt(r["tree_kappa_ratio"], 3), f"{fmt(r['network_rho'], 2)} / {fmt(r['tree_rho'], 2)}",
              int(r["n_seeds"])] for _, r in frame.iterrows()],
            note="Gap = metric network − GBDT of a loss-type metric (above 0: the network is "
                 "worse). κ̄ ratio: mean κ̄ on the all-irregular subset / on the all-regular one.",
        ))
        for line in verdicts(frame, correlation):
            section.blocks.append(Paragraph(line, kind="note" if "not" in line else "text"))
        block = figure_block(
            "pooled_lens", pooled_lens_figure(frame, correlation, palette),
            alt="Network kappa-bar ratio against the relative gap increase across datasets",
            caption="One point per dataset and compared pair: x = the network's κ̄ ratio "
                    "(irregular / regular inputs; whisker ± std over seeds), y = the relative "
                    "increase of the gap network − GBDT from p = 0 to 1. The paper's claim puts "
                    "the points in the upper right, rising together.")
        if block:
            section.blocks.append(block)
    section.subsections.append(_effective_parameters(context))
    return section


def _effective_parameters(context: ReportContext) -> Section:
    section = Section("Effective parameters across datasets")
    frame = effective_parameter_roles(context.data)
    if frame.empty:
        section.blocks.append(no_data("no effective-parameters analysis has finished "
                                       "(regression datasets only)."))
        return section
    ratio = (frame["p_test"] / frame["p_train"]).groupby(frame["role"]).median()
    section.blocks.append(Paragraph(
        "Median p_test / p_train by model family: "
        + "; ".join(f"{role}: {fmt(value, 3)}" for role, value in ratio.items())
        + ". A ratio below 1 means the model uses fewer effective parameters on unseen "
          "points than on its training points (the paper's benign-overfitting reading)."))
    block = figure_block(
        "effective_parameters_across", effective_parameters_scatter(frame, context.palette),
        alt="Effective parameters on test against training data, per dataset and model",
        caption="One point per dataset and model (means over seeds); marker shape: circle = "
                "network, square = GBDT; dotted: p_test = p_train.")
    if block:
        section.blocks.append(block)
    return section


SECTION = ReportSection("pooled_lens", "Lens findings across datasets", _build)
