"""A small document model (sections of paragraphs, tables and figures) and its two renderings.

The report's content is built once as :class:`Section` objects; :func:`render_html` and
:func:`render_markdown` turn the same objects into a self-contained HTML page (figures as
base64 PNG data URIs, no script, no external resource) and a Markdown file (figures as PNG
files beside it), so both formats always show the same tables.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

__all__ = [
    "Cell",
    "Code",
    "FigureBlock",
    "Paragraph",
    "Section",
    "Table",
    "render_html",
    "render_markdown",
    "slug",
]


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, and whether it is marked as the best of its row or column."""

    text: str
    best: bool = False
    failed: bool = False


@dataclass
class Table:
    """A table with a caption; ``rows`` hold :class:`Cell` objects or plain values."""

    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str | None = None

    def __post_init__(self):
        width = len(self.columns)
        cells = []
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(
                    f"row {index} of table {self.caption!r} has {len(row)} cells, "
                    f"expected {width}"
                )
            cells.append([value if isinstance(value, Cell) else Cell(_text(value))
                          for value in row])
        self.rows = cells


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text; ``kind`` "note" renders it as a highlighted remark."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Code:
    """A preformatted block (the suite file), shown folded in HTML."""

    summary: str
    text: str
    language: str = ""


@dataclass(frozen=True)
class FigureBlock:
    """A PNG figure with a file name (for Markdown), alt text and a caption."""

    name: str
    png: bytes = field(repr=False)
    alt: str
    caption: str


@dataclass
class Section:
    """A titled part of the report with its blocks and optional sub-sections."""

    title: str
    blocks: list = field(default_factory=list)
    subsections: list["Section"] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return slug(self.title)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def slug(title: str) -> str:
    """An HTML id from a title: lower case ASCII words joined by hyphens."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words) or "section"


# ------------------------------------------------------------------------------------ HTML

_CSS = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 15px;
       line-height: 1.45; color: #1d1d1f; max-width: 1200px; margin: 0 auto; padding: 1.5em; }
h1 { font-size: 1.9em; margin-bottom: 0.2em; }
h2 { font-size: 1.45em; border-bottom: 2px solid #d0d4da; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.15em; margin-top: 1.4em; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 0 0 1.2em; font-size: 0.92em; }
p.tabletitle { font-weight: bold; margin: 1em 0 0.3em; }
th, td { border: 1px solid #c9ced6; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.best { font-weight: bold; background: #e3f4e6; }
td.failed { color: #a3141b; background: #fdecec; }
p.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
p.tablenote { font-size: 0.88em; color: #4a4f57; margin-top: -0.8em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e1e4e8; }
figcaption { font-size: 0.9em; color: #33373d; margin-top: 0.3em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
.wide { overflow-x: auto; }
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th scope=\"col\">{html.escape(column)}</th>" for column in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for cell in row:
            classes = " ".join(name for name, on in (("best", cell.best), ("failed", cell.failed)) if on)
            attribute = f' class="{classes}"' if classes else ""
            cells.append(f"<td{attribute}>{html.escape(cell.text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    # The title sits above the table rather than in <caption>, which browsers squeeze to
    # the width of a narrow table.
    out = (f'<div class="wide"><p class="tabletitle">{html.escape(table.caption)}</p><table>'
           f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
    if table.note:
        out += f'<p class="tablenote">{html.escape(table.note)}</p>'
    return out


def _html_block(block) -> str:
    if isinstance(block, Paragraph):
        css = ' class="note"' if block.kind == "note" else ""
        return f"<p{css}>{html.escape(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Code):
        return (f"<details><summary>{html.escape(block.summary)}</summary>"
                f"<pre>{html.escape(block.text)}</pre></details>")
    if isinstance(block, FigureBlock):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="figure-{slug(block.name)}"><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(block.alt, quote=True)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    raise TypeError(f"block must be a Paragraph, Table, Code or FigureBlock, got {type(block).__name__}")


def _html_section(section: Section, level: int) -> str:
    parts = [f'<section id="{section.anchor}"><h{level}>{html.escape(section.title)}</h{level}>']
    parts += [_html_block(block) for block in section.blocks]
    parts += [_html_section(sub, level + 1) for sub in section.subsections]
    parts.append("</section>")
    return "\n".join(parts)


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole report as one self-contained HTML page (no script, no external resource)."""
    contents = "".join(
        f'<li><a href="#{section.anchor}">{html.escape(section.title)}</a></li>'
        for section in sections
    )
    body = "\n".join(_html_section(section, 2) for section in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n"
        f"<nav><ol>{contents}</ol></nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# -------------------------------------------------------------------------------- Markdown


def _md_cell(cell: Cell) -> str:
    # Pipes and line breaks would end the cell; an error message can contain both.
    text = cell.text.replace("\\", "\\\\").replace("|", "\\|")
    text = " ".join(text.split())
    if cell.best and text:
        text = f"**{text}**"
    return text


def _md_table(table: Table) -> str:
    lines = [f"**{table.caption}**", ""]
    lines.append("| " + " | ".join(_md_cell(Cell(c)) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(cell) for cell in row) + " |")
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines)


def _md_block(block, figure_dir: str) -> str:
    if isinstance(block, Paragraph):
        return f"> {block.text}" if block.kind == "note" else block.text
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Code):
        return f"<details><summary>{html.escape(block.summary)}</summary>\n\n" \
               f"```{block.language}\n{block.text.rstrip()}\n```\n\n</details>"
    if isinstance(block, FigureBlock):
        alt = block.alt.replace("]", ")").replace("[", "(")
        return f"![{alt}]({figure_dir}/{block.name}.png)\n\n*{block.caption}*"
    raise TypeError(f"block must be a Paragraph, Table, Code or FigureBlock, got {type(block).__name__}")


def _md_section(section: Section, level: int, figure_dir: str) -> str:
    parts = [f"{'#' * level} {section.title}"]
    parts += [_md_block(block, figure_dir) for block in section.blocks]
    parts += [_md_section(sub, level + 1, figure_dir) for sub in section.subsections]
    return "\n\n".join(parts)


def render_markdown(title: str, subtitle: str, sections: list[Section],
                    figure_dir: str = "figures") -> str:
    """The whole report as Markdown; figures are linked as ``figure_dir/NAME.png``."""
    contents = "\n".join(f"{i}. [{s.title}](#{s.anchor})" for i, s in enumerate(sections, 1))
    body = "\n\n".join(_md_section(section, 2, figure_dir) for section in sections)
    return f"# {title}\n\n{subtitle}\n\n{contents}\n\n{body}\n"


def iter_figures(sections: list[Section]):
    """Every figure block of the sections, depth first, in document order."""
    for section in sections:
        for block in section.blocks:
            if isinstance(block, FigureBlock):
                yield block
        yield from iter_figures(section.subsections)


def iter_tables(sections: list[Section]):
    """Every table of the sections, depth first, in document order."""
    for section in sections:
        for block in section.blocks:
            if isinstance(block, Table):
                yield block
        yield from iter_tables(section.subsections)
