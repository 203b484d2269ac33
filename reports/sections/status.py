"""Section 'Run status and failures': counts of cells and analyses, what has not run yet, and
every failure and unreadable result file with its error message."""

from __future__ import annotations

from ..data import ReportData
from ..document import Cell, Paragraph, Section, Table
from ._common import ReportContext, ReportSection, message

__all__ = ["SECTION"]

#: Longest list of not-yet-run cells printed in full.
_MAX_LISTED_MISSING = 30


def _build(context: ReportContext) -> Section:
    data = context.data
    cells, analyses = data.cells, data.analyses
    expected = data.expected_cells()
    missing = data.missing_cells()
    n_ok = int((cells["status"] == "ok").sum())
    n_failed = int((cells["status"] != "ok").sum())
    rows = [["cells expected", len(expected) if expected else "unknown"],
            ["cells ok", n_ok], ["cells failed", n_failed],
            ["cells not run yet", len(missing)],
            ["analyses ok", int((analyses["status"] == "ok").sum())],
            ["analyses skipped", int((analyses["status"] == "skipped").sum())],
            ["analyses failed", int((~analyses["status"].isin(["ok", "skipped"])).sum())]]
    section = Section(SECTION.title, [Table("Run status", ["count", "value"], rows)])
    if missing:
        listed = ", ".join(missing[:_MAX_LISTED_MISSING])
        more = f" and {len(missing) - _MAX_LISTED_MISSING} more" if len(missing) > _MAX_LISTED_MISSING else ""
        section.blocks.append(Paragraph(
            f"This run is incomplete: {len(missing)} cells have no result yet ({listed}{more}). "
            "Sections below use the cells that finished.", kind="note"))
    failed_cells = cells[cells["status"] != "ok"]
    if failed_cells.empty:
        section.blocks.append(Paragraph("No cell failed."))
    else:
        section.blocks.append(Table(
            "Failed cells", ["dataset", "model", "seed", "error"],
            [[data.dataset_names.get(row["dataset"], row["dataset"]), row["model"], row["seed"],
              Cell(message(row["error"]), failed=True)]
             for _, row in failed_cells.iterrows()],
        ))
    failed_analyses = analyses[~analyses["status"].isin(["ok", "skipped"])]
    skipped_analyses = analyses[analyses["status"] == "skipped"]
    names = data.dataset_names
    if failed_analyses.empty:
        section.blocks.append(Paragraph("No analysis failed."))
    else:
        section.blocks.append(Table(
            "Failed analyses", ["analysis", "dataset", "seed", "models", "error"],
            [[row["analysis"], names.get(row["dataset"], row["dataset"]), row["seed"],
              ", ".join(row["models"]), Cell(message(row["error"]), failed=True)]
             for _, row in failed_analyses.iterrows()],
        ))
    if not skipped_analyses.empty:
        # Beyond the machine's budget, by an estimate of their cost: not failures.
        section.blocks.append(Table(
            "Skipped analyses (estimated too costly; not failures)",
            ["analysis", "dataset", "seed", "models", "reason"],
            [[row["analysis"], names.get(row["dataset"], row["dataset"]), row["seed"],
              ", ".join(row["models"]), message(row["error"])]
             for _, row in skipped_analyses.iterrows()],
        ))
    problems = _problems_table(data)
    if problems is not None:
        section.blocks.append(problems)
    return section


def _problems_table(data: ReportData) -> Table | None:
    if not data.problems:
        return None
    return Table("Unreadable result files (their rows are left out above)", ["result", "error"],
                 [[what, Cell(error, failed=True)] for what, error in data.problems])


SECTION = ReportSection("status", "Run status and failures", _build, built_last=True)
