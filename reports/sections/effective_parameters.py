"""Section 'Effective parameters': p on training and test data of each lens (docs/design.md
§1.6)."""

from __future__ import annotations

from tabscope.vocabulary import CellJob

from .. import lens
from ..document import Section, Table
from ..figures import effective_parameters_figure
from ..tables import format_mean_std
from ._common import ReportContext, ReportSection, failed_note, figure_block, fmt, in_report_order, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data, palette = context.data, context.palette
    section = Section(SECTION.title)
    section.blocks += failed_note(data, (CellJob.EFFECTIVE_PARAMETERS,))
    frame = in_report_order(lens.effective_parameter_frame(data), data)
    if frame.empty:
        section.blocks.append(no_data("no effective-parameters analysis has finished (it is "
                                       "defined for squared loss, so regression datasets only)."))
        return section
    block = figure_block(
        "effective_parameters", effective_parameters_figure(frame, palette),
        alt="Effective parameters on training and test data per model",
        caption="p_E = (n/|E|) Σ_{x∈E} ‖s(x)‖², s the linear-smoother weights; light bars: "
                "training data, full-colour bars: test data; whiskers ± std and dots over "
                "seeds. A gap between the two measures how differently the model treats unseen "
                "points.",
    )
    if block:
        section.blocks.append(block)
    grouped = frame.groupby(["dataset", "dataset_name", "model"], sort=False)
    section.blocks.append(Table(
        "Effective parameters (mean ± std over seeds)",
        ["dataset", "model", "p on training data", "p on test data", "training examples", "seeds"],
        [[name, model, format_mean_std(g["p_train"].mean(), g["p_train"].std(), 3),
          format_mean_std(g["p_test"].mean(), g["p_test"].std(), 3),
          fmt(g["n_train"].mean()), len(g)]
         for (_, name, model), g in grouped],
    ))
    return section


SECTION = ReportSection("effective_parameters", "Effective parameters", _build)
