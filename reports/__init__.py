"""HTML and Markdown comparison reports built from a results directory.

``write_report(DIR)`` reads what ``tabscope run`` stored in ``DIR`` and writes
``DIR/report.html`` (self-contained), ``DIR/report.md`` and ``DIR/figures/*.png``. Nothing
here trains a model: data flows datasets -> models -> bench -> reports.
"""

from .data import ReportData, load_results
from .figures import model_palette
from .tables import average_ranks, primary_scores, win_tie_loss
from .comparison import write_comparison
from .writer import write_report

__all__ = [
    "ReportData",
    "average_ranks",
    "load_results",
    "model_palette",
    "primary_scores",
    "win_tie_loss",
    "write_comparison",
    "write_report",
]
