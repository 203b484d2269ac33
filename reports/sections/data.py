"""Section 'Data: what each model received': the column roles and the inputs per model family.

Per dataset: rows and feature columns before and after the column roles (docs/design.md
§3.5), each dropped column and why, each column's role and encoding where a rule changed
something, the network's input width and the boosters' categorical features.
"""

from __future__ import annotations

from ..document import Paragraph, Section, Table
from ._common import ReportContext, ReportSection, no_data

__all__ = ["SECTION"]

#: Roles whose columns reach the models as they came; only the others get a table row.
_PLAIN_ROLES = {"numeric", "categorical"}


def _overview(context: ReportContext) -> Table | None:
    data = context.data
    described = data.meta.get("data") or {}
    rows = []
    for source in data.dataset_order():
        description = described.get(source)
        if description is None:
            continue
        inputs = data.model_inputs(source)
        widths = sorted({i["input_width"] for i in inputs.values() if "input_width" in i})
        categorical = next((i["categorical_features"] for i in inputs.values()
                            if "categorical_features" in i), None)
        rows.append([
            data.dataset_names.get(source, source),
            f"{description['rows']['total']:,}",
            str(description["columns_before"]),
            str(description["columns_after"]),
            ", ".join(map(str, widths)) or "—",
            "—" if categorical is None else (
                ", ".join(f"{name} ({levels})" for name, levels in categorical.items()) or "none"),
        ])
    if not rows:
        return None
    return Table(
        "Rows and columns per dataset",
        ["dataset", "rows", "columns in", "columns kept", "network input width",
         "booster categorical features (levels)"],
        rows,
    )


def _changes(context: ReportContext) -> Table | None:
    data = context.data
    described = data.meta.get("data") or {}
    rows = []
    for source in data.dataset_order():
        description = described.get(source) or {}
        name = data.dataset_names.get(source, source)
        for column, reason in (description.get("dropped") or {}).items():
            rows.append([name, str(column), "dropped", str(reason)])
        for entry in description.get("columns") or []:
            if entry.get("role") in _PLAIN_ROLES or entry.get("role") == "dropped":
                continue
            rows.append([name, str(entry.get("column", "")), str(entry.get("role", "")),
                         str(entry.get("encoding") or entry.get("reason") or "")])
    if not rows:
        return None
    return Table("Columns the roles changed", ["dataset", "column", "role", "why / encoding"],
                 rows)


def _build(context: ReportContext) -> Section:
    section = Section(SECTION.title, [Paragraph(
        "Networks get quantile-transformed numbers, one-hot categories and imputed values; "
        "boosters get the raw numbers and ordinal category codes (Grinsztajn et al. 2022). "
        "Before that, column roles drop identifiers, turn dates into numbers and encode "
        "high-cardinality text into a few numbers (docs/design.md §3.5). Input widths and "
        "category levels are those of each model's first seed."
    )])
    notes = context.data.meta.get("dataset_notes") or {}
    tables = [table for table in (_overview(context), _changes(context)) if table is not None]
    if not tables:
        section.blocks.append(no_data("this run recorded no description of its datasets "
                                      "(results written before tabscope stored one)."))
        return section
    section.blocks += tables
    if notes:
        section.blocks.append(Table(
            "Why each dataset is in the suite", ["dataset", "note"],
            [[context.data.dataset_names.get(source, source), str(note)]
             for source, note in notes.items()],
        ))
    return section


SECTION = ReportSection("data", "Data: what each model received", _build)
