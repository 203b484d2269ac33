"""Section 'Networks versus GBDTs': wins, ties and losses of every network against every GBDT."""

from __future__ import annotations

from ..document import Cell, Section, Table
from ..tables import TIE_RULE, win_tie_loss
from ._common import ReportContext, ReportSection, fmt, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    scores = context.scores
    section = Section(SECTION.title)
    totals, detail = win_tie_loss(scores)
    if totals.empty:
        section.blocks.append(no_data("no dataset has scores of both a network (role "
                                       "'network') and a GBDT (role 'tree')."))
        return section
    section.blocks.append(Table(
        "Wins, ties and losses of each network against each GBDT",
        ["network", "GBDT", "wins", "ties", "losses", "datasets"],
        totals[["network", "tree", "wins", "ties", "losses", "n_datasets"]].values.tolist(),
        note=TIE_RULE,
    ))
    section.blocks.append(Table(
        "Per dataset", ["dataset", "network", "GBDT", "metric", "network mean", "GBDT mean",
                        "difference", "pooled std", "network"],
        [[row["dataset_name"], row["network"], row["tree"], row["metric"],
          fmt(row["network_mean"]), fmt(row["tree_mean"]), fmt(row["difference"], 3),
          fmt(row["pooled_std"], 3), Cell(row["outcome"], best=row["outcome"] == "win")]
         for _, row in detail.iterrows()],
    ))
    return section


SECTION = ReportSection("versus", "Networks versus GBDTs", _build)
