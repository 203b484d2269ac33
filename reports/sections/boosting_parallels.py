"""Section 'Boosting parallels': a network and a GBDT of a compared pair on the same test
points (docs/design.md §1.10): agreement of their per-example influence, and κ_t over
training for both."""

from __future__ import annotations

from tabscope.vocabulary import CellJob

from ..document import Paragraph, Section, Table
from ..lens import attribution_coverage_frame, coverage_text
from ..figures_across import assembly_figure, kappa_path_figure
from ..parallels import TOP_K, assembly_shares, influence_agreement, kappa_paths
from ._common import ReportContext, ReportSection, failed_note, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]


def _assembly(context: ReportContext) -> list:
    """(b): a table of the share made in the first tenth and the first half, and a figure."""
    shares = assembly_shares(context.data)
    if shares.empty:
        return [no_data("no cell stored how its predictions were assembled over training "
                        "(results written before the kernel-norms job stored it).")]
    rows = []
    for (name, model), group in in_report_order(shares, context.data).groupby(
            ["dataset_name", "model"], sort=False):
        per_seed = group.groupby("seed")
        first = per_seed.apply(lambda g: g.loc[g["part"] == g["part"].min(), "share"].sum())
        half = per_seed.apply(lambda g: g.loc[g["fraction"] <= 0.5 + 1e-9, "share"].sum())
        rows.append([name, model, group["role"].iloc[0], fmt(first.mean(), 3),
                     fmt(half.mean(), 3), int(per_seed.ngroups)])
    blocks = [Table("(b) Share of the prediction's movement made early in training",
                    ["dataset", "model", "role", "first tenth", "first half", "seeds"], rows,
                    note="Mean over the stored test points and over seeds. With equal "
                         "steps throughout, each tenth would make 0.1.")]
    block = figure_block(
        "assembly", assembly_figure(shares, context.palette),
        alt="Share of the prediction's movement in each tenth of training",
        caption="(b) Mean share of the prediction's movement made in each tenth of the "
                "training steps (networks) or boosting rounds (GBDTs), averaged over test "
                "points, seeds and datasets; band: lowest to highest dataset.")
    if block:
        blocks.append(block)
    return blocks


def _build(context: ReportContext) -> Section:
    data = context.data
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "Both kinds of model predict through weights on training examples (docs/design.md "
        "§1.3–1.4). On the same test points: (a) do the network and the GBDT lean on the "
        "same training examples? Spearman ρ between the two models' influence |C(x, i)| over "
        f"the training set, and the share of the top {TOP_K} most influential examples they "
        "have in common, each against chance (ρ = 0; overlap k/n). (b) How each model "
        "assembles its prediction: the share of the prediction's movement (|f_j(x) − "
        "f_{j−1}(x)| over the sum of those moves) made in each tenth of the training steps "
        "or boosting rounds (0.1 each if every tenth moved it equally). (c) The kernel weight norm κ_t across training, as "
        "a fraction of the steps or boosting rounds done."))
    section.blocks += failed_note(data, (CellJob.KERNEL_NORMS,))
    agreement = influence_agreement(data)
    if agreement.empty:
        section.blocks.append(no_data("no compared pair has stored influence frames on the "
                                       "same dataset and seed (results written before the "
                                       "kernel-norms job stored them, or no pair compared)."))
    else:
        agreement = in_report_order(agreement, data, model="tree")
        coverage = attribution_coverage_frame(data)
        grouped = agreement.groupby(["dataset", "dataset_name", "network", "tree"], sort=False)
        section.blocks.append(Table(
            "(a) Agreement of network and GBDT influence on the same test points",
            ["dataset", "pair", "Spearman ρ (mean over points)", "2.5–97.5% over points",
             f"top-{TOP_K} overlap", "chance overlap", "test points × seeds",
             "network coverage"],
            [[name, f"{network} vs {tree}", fmt(g["spearman"].mean(), 3),
              f"{fmt(g['spearman_low'].mean(), 2)} – {fmt(g['spearman_high'].mean(), 2)}",
              fmt(g["overlap"].mean(), 3), fmt(g["chance_overlap"].mean(), 3),
              int(g["n_points"].sum()), coverage_text(coverage, dataset, network)]
             for (dataset, name, network, tree), g in grouped],
            note="Influence of training example i at x: |C(x, i)|, its total contribution "
                 "(Frobenius norm over outputs). Overlap above chance means the two models "
                 "rely on the same neighbours. Network coverage: the share of the network's "
                 "prediction change on these points that its contributions explain (mean "
                 "over seeds; the GBDT's is 1), docs/design.md §1.8.",
        ))
    section.blocks += _assembly(context)
    paths = kappa_paths(data)
    if paths.empty:
        section.blocks.append(no_data("no kernel-norm path is stored (κ_t over training)."))
        return section
    block = figure_block(
        "kappa_paths", kappa_path_figure(in_report_order(paths, data), context.palette),
        alt="Kernel weight norm over training for networks and GBDTs",
        caption="(c) Mean κ_t over test points divided by its mean over training points, at "
                "each checkpoint (networks) or round (GBDTs); one line per model and seed.")
    if block:
        section.blocks.append(block)
    return section


SECTION = ReportSection("boosting_parallels", "Boosting parallels", _build)
