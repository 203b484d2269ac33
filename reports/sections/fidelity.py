"""Section 'Telescoping fidelity': how closely the telescoping approximations follow each trained
network (docs/design.md §1.1)."""

from __future__ import annotations

from tabscope.vocabulary import CellJob

from .. import lens
from ..document import Section, Table
from ..figures import fidelity_figure
from ..tables import format_mean_std
from ._common import ReportContext, ReportSection, failed_note, figure_block, in_report_order, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data, palette = context.data, context.palette
    section = Section(SECTION.title)
    section.blocks += failed_note(data, (CellJob.FIDELITY,))
    frame = in_report_order(lens.fidelity_frame(data), data)
    if frame.empty:
        section.blocks.append(no_data("no fidelity analysis has finished (it needs a "
                                       "telescoping network)."))
        return section
    block = figure_block(
        "fidelity", fidelity_figure(frame, palette),
        alt="Relative error of the telescoping approximations per dataset",
        caption="Relative error mean|f̃(x) − f_T(x)| / mean|f_T(x) − f_0(x)| on evaluated test "
                "examples of the first-order and trapezoid telescoping models and of the model "
                "linearised at initialisation. Large markers: geometric mean over seeds; small "
                "dots: seeds.",
    )
    if block:
        section.blocks.append(block)
    grouped = frame.groupby(["dataset", "dataset_name", "model"], sort=False)
    section.blocks.append(Table(
        "Telescoping fidelity (relative error, mean ± std over seeds; lower is better)",
        ["dataset", "network", *lens.FIDELITY_KINDS.values(), "seeds"],
        [[name, model, *(format_mean_std(g[k].mean(), g[k].std(), 3) for k in lens.FIDELITY_KINDS),
          len(g)] for (_, name, model), g in grouped],
    ))
    return section


SECTION = ReportSection("fidelity", "Telescoping fidelity", _build)
