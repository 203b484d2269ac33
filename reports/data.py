"""Read a results directory into the tidy frames the report is built from.

The reading itself is :class:`tabscope.bench.results.Results` (public as
``tabscope.load_results``); the report calls it :class:`ReportData`. Nothing here trains or
recomputes anything.
"""

from __future__ import annotations

from tabscope.bench.results import Results, load_results

__all__ = ["ReportData", "load_results"]

#: The report's name for a loaded results directory.
ReportData = Results
