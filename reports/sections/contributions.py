"""Section 'Most influential training examples': a network's and a GBDT's top contributors to
the same test predictions, side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import lens
from ..document import Cell, Paragraph, Section, Table
from ._common import ReportContext, ReportSection, fmt, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    data = context.data
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "For the first evaluated test examples, the five training examples with the largest "
        "|contribution| C(x, i) to each model's prediction, network and GBDT side by side "
        "(rows are dataset row numbers, so the same training example can be recognised in "
        "both columns). Predictions are raw model outputs with the initial prediction f_0 in "
        "brackets: for classification the logit of the output shown (the predicted class "
        "when there are several), and a network's regression output is on its standardised "
        "target scale, so compare ranks and signs across models rather than magnitudes. "
        "Coverage, under each table, is the share of the prediction's change (offset "
        "excluded) on these test rows that the contributions explain; the rest is weight "
        "decay and optimiser memory older than the attribution window (docs/design.md §1.8)."))
    tables = lens.top_contribution_tables(data)
    if not tables:
        section.blocks.append(no_data("no network/GBDT pair has stored top contributions for "
                                       "a common seed."))
        return section
    coverage = lens.attribution_coverage_frame(data)
    for entry in tables:
        frame, network, tree = entry["frame"], entry["network"], entry["tree"]
        covered = {model: lens.coverage_text(coverage, entry["dataset"], model, entry["seed"])
                   for model in (network, tree)}
        classification = entry["task"] == "classification"
        rows, n_shared = [], 0
        for eval_row, group in frame.groupby("eval_row", sort=False):
            # Training rows among both models' top contributors for this test row.
            shared = set(group["network_train_row"].dropna()) & set(group["tree_train_row"].dropna())
            n_shared += len(shared)
            for position, (_, row) in enumerate(group.iterrows()):
                first = position == 0
                rows.append([
                    int(eval_row) if first else "", int(row["rank"]),
                    _prediction(row, "network", classification) if first else "",
                    Cell(_int_or_dash(row.get("network_train_row")),
                         best=row.get("network_train_row") in shared),
                    fmt(row.get("network_contribution"), 3),
                    _prediction(row, "tree", classification) if first else "",
                    Cell(_int_or_dash(row.get("tree_train_row")),
                         best=row.get("tree_train_row") in shared),
                    fmt(row.get("tree_contribution"), 3),
                ])
        section.blocks.append(Table(
            f"{entry['dataset_name']} (seed {entry['seed']}): {network} vs {tree}",
            ["test row", "rank", f"{network} prediction (offset)", f"{network} training row",
             f"{network} contribution", f"{tree} prediction (offset)", f"{tree} training row",
             f"{tree} contribution"],
            rows,
            note=f"Bold: a training row among the top contributors of both models for the same "
                 f"test row ({n_shared} such pairs in this table). Coverage: {network} "
                 f"{covered[network]}, {tree} {covered[tree]}.",
        ))
    return section


def _int_or_dash(value) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return "—"


def _prediction(row: pd.Series, role: str, classification: bool) -> str:
    prediction, offset = row.get(f"{role}_prediction"), row.get(f"{role}_offset")
    output = row.get(f"{role}_output")
    text = f"{fmt(prediction, 3)} ({fmt(offset, 3)})"
    if classification and output is not None and np.isfinite(output):
        text = f"output {int(output)}: {text}"
    return text


SECTION = ReportSection("contributions", "Most influential training examples", _build)
