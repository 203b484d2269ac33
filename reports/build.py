"""The report's content: its title, subtitle and sections, built from a
:class:`~tabscope.reports.data.ReportData` through the section registry
(:mod:`tabscope.reports.sections`).

A section whose stored data trips it up says so instead of taking the whole report down, and
failed cells and analyses are listed with their error messages.
"""

from __future__ import annotations

import logging

from .data import ReportData
from .document import Paragraph, Section
from .figures import model_palette
from .sections import SECTION_TITLES, SECTIONS, ReportContext, ReportSection
from .sections._common import in_report_order
from .tables import primary_scores

__all__ = ["SECTION_TITLES", "build_sections"]

logger = logging.getLogger(__name__)


def _guarded(entry: ReportSection, context: ReportContext) -> Section:
    """Build one section; if the stored data trips it up, the section says so instead of
    taking the whole report (written at the end of a long run) down with it."""
    try:
        return entry.build(context)
    except Exception as exc:  # any failure here is confined to this one section
        logger.warning("report section %r could not be built", entry.title, exc_info=True)
        return Section(entry.title, [Paragraph(
            f"This section could not be built from the stored results: "
            f"{type(exc).__name__}: {exc}", kind="note")])


def build_sections(data: ReportData) -> tuple[str, str, list[Section]]:
    """The report's title, subtitle and sections for ``data``."""
    context = ReportContext(data=data,
                            scores=in_report_order(primary_scores(data.cells), data),
                            palette=model_palette(data.models))
    build_order = sorted(SECTIONS, key=lambda entry: entry.built_last)  # stable
    built = {entry.name: _guarded(entry, context) for entry in build_order}
    sections = [built[entry.name] for entry in SECTIONS]
    name = data.meta.get("suite_name") or data.directory.name
    # The newest result's time rather than the clock: the same results give the same report.
    finished = [t for t in [*data.cells["finished_at"], *data.analyses["finished_at"]]
                if isinstance(t, str)]
    as_of = f" Latest result recorded {max(finished)}." if finished else ""
    subtitle = (f"Networks versus gradient-boosted trees through the telescoping lens. "
                f"Results directory: {data.directory}.{as_of}")
    return f"tabscope report: {name}", subtitle, sections
