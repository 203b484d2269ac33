"""Section 'Average ranks': each model's mean rank over datasets by the primary metric."""

from __future__ import annotations

from ..document import Cell, Section, Table
from ..tables import average_ranks
from ._common import ReportContext, ReportSection, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    scores = context.scores
    section = Section(SECTION.title)
    ranks = average_ranks(scores)
    if ranks.empty:
        section.blocks.append(no_data("no model has a score yet."))
        return section
    best = ranks["mean_rank"].min()
    section.blocks.append(Table(
        "Average rank across datasets (1 = best)", ["model", "role", "average rank", "datasets ranked"],
        [[row["model"], row["role"], Cell(f"{row['mean_rank']:.2f}", best=row["mean_rank"] == best),
          int(row["n_datasets"])] for _, row in ranks.iterrows()],
        note="Models are ranked on each dataset by the primary metric (RMSE for regression, "
             "accuracy for classification); equal means share their average rank.",
    ))
    return section


SECTION = ReportSection("ranks", "Average ranks", _build)
