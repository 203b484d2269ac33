"""Section 'Kernel weight norms on training and test data': the distribution of each model's
kappa-bar (docs/design.md §1.5) on training and test examples."""

from __future__ import annotations

from tabscope.vocabulary import CellJob

from .. import lens
from ..document import Section, Table
from ..figures import kernel_norm_figure
from ._common import ReportContext, ReportSection, failed_note, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data, palette = context.data, context.palette
    section = Section(SECTION.title)
    section.blocks += failed_note(data, (CellJob.KERNEL_NORMS,))
    norms = in_report_order(lens.kernel_norm_frame(data), data)
    if norms.empty:
        section.blocks.append(no_data("no kernel norms are stored (no lens model finished "
                                       "the kernel_norms analysis)."))
        return section
    block = figure_block(
        "kernel_norms", kernel_norm_figure(norms, palette),
        alt="Distributions of kappa-bar on training and test examples per model",
        caption="κ̄(x) = max over checkpoints of the kernel weight norm, divided by its mean "
                "over the training examples. Boxes: quartiles; whiskers: 5th–95th percentile; "
                "dots: examples beyond. Pooled over seeds; light boxes are training examples, "
                "full-colour boxes test examples.",
    )
    if block:
        section.blocks.append(block)
    table = lens.kernel_norm_table(norms)
    section.blocks.append(Table(
        "κ̄ on test examples against the training range (mean over seeds)",
        ["dataset", "model", "test mean", "test max", "training max",
         "test share above training max", "seeds"],
        [[row["dataset_name"], row["model"], fmt(row["test_mean"], 3), fmt(row["test_max"], 3),
          fmt(row["train_max"], 3), fmt(row["share_above_train_max"], 3), row["n_seeds"]]
         for _, row in table.iterrows()],
    ))
    return section


SECTION = ReportSection("kernel_norms", "Kernel weight norms on training and test data", _build)
