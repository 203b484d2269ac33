"""What every report section shares: the context it is built from, and small helpers for
figures, notes, row order and number formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..data import ReportData
from ..document import FigureBlock, Paragraph, Section
from ..figures import figure_png

__all__ = ["ReportContext", "ReportSection", "failed_note", "figure_block", "fmt",
           "in_report_order", "message", "no_data"]


@dataclass(frozen=True)
class ReportContext:
    """The inputs of every section, computed once per report: the stored results, each
    (dataset, model)'s primary score and the model colours."""

    data: ReportData
    scores: pd.DataFrame
    palette: dict


@dataclass(frozen=True)
class ReportSection:
    """One section of the report: its name in the registry, its heading and its builder.

    ``built_last`` sections are built after all others (the status section lists every
    unreadable file the others came across), though they keep their place in the outline.
    """

    name: str
    title: str
    build: Callable[[ReportContext], Section]
    built_last: bool = False


def figure_block(name: str, figure, alt: str, caption: str) -> FigureBlock | None:
    """A figure as a block of the report, or None when there was nothing to draw."""
    if figure is None:
        return None
    return FigureBlock(name=name, png=figure_png(figure), alt=alt, caption=caption)


def no_data(what: str) -> Paragraph:
    """The note of a section without data, saying why."""
    return Paragraph(f"No data: {what}", kind="note")


def failed_note(data: ReportData, kinds: tuple[str, ...]) -> list[Paragraph]:
    """A note that analyses of ``kinds`` behind a section failed, or nothing."""
    failed = data.analyses[data.analyses["analysis"].isin(kinds)
                           & ~data.analyses["status"].isin(["ok", "skipped"])]
    if failed.empty:
        return []
    noun = "analysis" if len(failed) == 1 else "analyses"
    return [Paragraph(f"{len(failed)} {noun} behind this section ({', '.join(kinds)}) failed; "
                      "the errors are listed under 'Run status and failures'.", kind="note")]


def in_report_order(frame: pd.DataFrame, data: ReportData, model: str = "model") -> pd.DataFrame:
    """Rows sorted by the suite's dataset order, then its model order (seed kept stable)."""
    datasets = {source: i for i, source in enumerate(data.dataset_order())}
    models = {name: i for i, name in enumerate(data.models)}
    keys = frame.assign(_dataset=frame["dataset"].map(datasets), _model=frame[model].map(models))
    return frame.loc[keys.sort_values(["_dataset", "_model"], kind="stable").index]


def message(value: object) -> str:
    """An error message as stored; SQL NULL reads as None or NaN."""
    return value if isinstance(value, str) and value else "(no message recorded)"


def fmt(value: float, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; "—" when missing."""
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"
