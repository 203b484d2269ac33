"""Section 'Pairwise win rates': how often one model beats another over dataset × seed
blocks, ties by a stated tolerance, with bootstrap intervals over datasets."""

from __future__ import annotations

from .. import across
from ..document import Paragraph, Section, Table
from ..figures_across import win_rate_figure
from ._common import ReportContext, ReportSection, figure_block, fmt, no_data

__all__ = ["SECTION"]


def _build(context: ReportContext) -> Section:
    section = Section(SECTION.title)
    section.blocks.append(Paragraph(
        "For every pair of models and every (dataset, seed) block where both have a score: a "
        "win when the first model's primary metric is better by more than "
        f"{100 * across.TIE_TOLERANCE:g}% of the larger magnitude, a tie otherwise within "
        "that tolerance. Win rate = (wins + ties/2) / blocks (as in TabArena). The 95% "
        "interval is a percentile bootstrap (1000 resamples) over datasets, each resampled "
        "with all its seeds."))
    rates = across.win_rates(across.per_seed_scores(context.data.cells))
    if rates.empty:
        section.blocks.append(no_data("no two models were scored on the same dataset and seed."))
        return section
    section.blocks.append(Table(
        "Win rate of the first model (network first where there is one)",
        ["first", "second", "wins", "ties", "losses", "blocks", "datasets", "win rate",
         "95% interval"],
        [[r["model_a"], r["model_b"], r["wins"], r["ties"], r["losses"], r["n_blocks"],
          r["n_datasets"], fmt(r["win_rate"], 3), f"{fmt(r['low'], 3)} – {fmt(r['high'], 3)}"]
         for _, r in rates.iterrows()],
    ))
    block = figure_block("win_rates", win_rate_figure(rates),
                         alt="Pairwise win rates with bootstrap intervals",
                         caption="Win rate of the first model of each pair; dotted line: 0.5.")
    if block:
        section.blocks.append(block)
    return section


SECTION = ReportSection("win_rates", "Pairwise win rates", _build)
