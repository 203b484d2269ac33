"""The report's sections: an ordered registry, one module per section.

Each module holds one section's data shaping, figure call and text, and exports a
:class:`ReportSection` named ``SECTION``. :data:`SECTIONS` lists them in the order the
report shows them; code finds a section by its name (:func:`section`), never by position.
Every section is always present, so a reader (and a test) finds the same outline for any
run; a section without data says why instead of disappearing.
"""

from __future__ import annotations

from . import (boosting_parallels, contributions, critical_difference, data,
               effective_parameters, fidelity, irregularity, kernel_norms, normalised,
               pooled_lens, ranks, scores, status, suite, tuning, versus, win_rates)
from ._common import ReportContext, ReportSection

__all__ = ["SECTIONS", "SECTION_TITLES", "ReportContext", "ReportSection", "section"]

#: The report's sections, in the order it shows them.
SECTIONS: tuple[ReportSection, ...] = (
    suite.SECTION,
    status.SECTION,
    data.SECTION,
    scores.SECTION,
    tuning.SECTION,
    ranks.SECTION,
    versus.SECTION,
    normalised.SECTION,
    critical_difference.SECTION,
    win_rates.SECTION,
    irregularity.SECTION,
    pooled_lens.SECTION,
    kernel_norms.SECTION,
    effective_parameters.SECTION,
    fidelity.SECTION,
    contributions.SECTION,
    boosting_parallels.SECTION,
)

#: Their headings, in order.
SECTION_TITLES: tuple[str, ...] = tuple(entry.title for entry in SECTIONS)


def section(name: str) -> ReportSection:
    """The registered section called ``name`` (for example ``"irregularity"``)."""
    for entry in SECTIONS:
        if entry.name == name:
            return entry
    raise KeyError(f"no report section named {name!r}; known: {[s.name for s in SECTIONS]}")
