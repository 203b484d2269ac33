"""Write ``report.html``, ``report.md`` and ``figures/*.png`` into a results directory.

Each file is written to a temporary file in its final folder and renamed over the target,
so a reader (a browser, a README build) never sees a half-written report, and an error while
building leaves the previous report in place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .build import build_sections
from .data import load_results
from .document import iter_figures, render_html, render_markdown

__all__ = ["FIGURES_DIR", "HTML_NAME", "MARKDOWN_NAME", "write_report"]

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
FIGURES_DIR = "figures"
#: Figures the report may write; one not made this time is removed so none goes stale.
FIGURE_NAMES = ("scores", "irregularity", "kernel_norms", "effective_parameters", "fidelity",
                "normalised_scores", "critical_difference", "win_rates", "pooled_lens",
                "effective_parameters_across", "kappa_paths", "compare", "tuning", "assembly",
                "normalised_trials")


def _write_atomic(target: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(directory: str | os.PathLike) -> dict[str, Path]:
    """Write the HTML and Markdown comparison reports of the results in ``directory``.

    ``DIR/report.html`` is one self-contained page (figures embedded as PNG data URIs, no
    script, nothing fetched), ``DIR/report.md`` the same content in Markdown with its
    figures in ``DIR/figures/`` (``irregularity.png`` among them when the irregularity
    analysis has data). Only the results directory is read: nothing is trained. A run that
    is incomplete, or has failed cells or analyses, still gets a report that says so.

    Parameters
    ----------
    directory : str or path-like
        A results directory written by ``tabscope run``.

    Returns
    -------
    paths : dict
        ``{"html": Path, "markdown": Path, "figures": Path}``; the figures folder holds one
        PNG per figure in the report.

    Raises
    ------
    TypeError
        If ``directory`` is not a path.
    tabscope.bench.store.StoreError
        (a ValueError) If ``directory`` holds no readable tabscope results.
    OSError
        If the report files cannot be written.

    Examples
    --------
    >>> paths = write_report("tabscope-results/quick")  # doctest: +SKIP
    >>> paths["html"].name
    'report.html'
    """
    data = load_results(directory)
    title, subtitle, sections = build_sections(data)
    root = Path(directory)
    figures_dir = root / FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)
    written = set()
    for figure in iter_figures(sections):
        _write_atomic(figures_dir / f"{figure.name}.png", figure.png)
        written.add(figure.name)
    markdown_path, html_path = root / MARKDOWN_NAME, root / HTML_NAME
    _write_atomic(markdown_path, render_markdown(title, subtitle, sections, FIGURES_DIR).encode())
    _write_atomic(html_path, render_html(title, subtitle, sections).encode())
    for name in set(FIGURE_NAMES) - written:
        (figures_dir / f"{name}.png").unlink(missing_ok=True)
    return {"html": html_path, "markdown": markdown_path, "figures": figures_dir}
