"""Tables of display strings, laid out as Markdown and as an HTML page.

The report shows each of its tables in more than one place: in ``results.md``, and as a page that
Snakemake's HTML report displays inline (the report viewer offers a CSV only as a download, so a
CSV there is a file, not a table). The stage that owns a table formats its cells once, into a
frame of strings (a *grid*); this module only lays a grid out, so both views say the same thing.
"""

from __future__ import annotations

import html
import os
from collections.abc import Collection, Sequence

import pandas as pd

from mmsa.runtime.io import write_text

MISSING = "—"  # a cell with no value: an undefined metric, a difference without pairs

# scoped to the tables' own section: the same file is also placed inside the front page of
# Snakemake's report, whose own tables these rules must not touch; there it sits in a narrow text
# column beside the rule graph, so a wide table scrolls inside its section instead of running under
# the graph
_STYLE = """
.mmsa-tables { font-family: system-ui, sans-serif; color: #1f2328; background: #fff; padding: 0.5em;
  max-width: 100%; overflow-x: auto; }
.mmsa-tables h1 { font-size: 1.3em; font-weight: bold; margin: 0.4em 0; }
.mmsa-tables h2 { font-size: 1.1em; font-weight: bold; margin: 1.2em 0 0.4em; }
.mmsa-tables p { max-width: 60em; line-height: 1.4; margin: 0.4em 0; }
.mmsa-tables table { border-collapse: collapse; font-size: 0.9em; margin: 0.4em 0; }
.mmsa-tables th, .mmsa-tables td { border: 1px solid #d0d7de; padding: 0.25em 0.5em; }
.mmsa-tables th { background: #f6f8fa; text-align: left; font-weight: bold; }
.mmsa-tables td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mmsa-tables tr:nth-child(even) td { background: #fafbfc; }
"""


def number(value: float) -> str:
    """A metric to three decimals."""
    return MISSING if pd.isna(value) else f"{value:.3f}"


def signed(value: float) -> str:
    """A difference to three decimals, with its sign."""
    return MISSING if pd.isna(value) else f"{value:+.3f}"


def interval(low: float, high: float) -> str:
    """A confidence interval of a difference, ``[low, high]`` with signs."""
    return f"[{signed(low)}, {signed(high)}]"


def p_value(value: float) -> str:
    """A p-value to three decimals, or ``<0.001``."""
    return MISSING if pd.isna(value) else f"{value:.3f}" if value >= 0.001 else "<0.001"


def markdown_table(grid: pd.DataFrame, right: Collection[str] = ()) -> str:
    """The grid as a Markdown table; the columns in ``right`` are right-aligned (numbers). A ``|``
    inside a cell is escaped, so that it cannot split the cell."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    head = "| " + " | ".join(cell(c) for c in grid.columns) + " |"
    rule = "|" + "".join("---:|" if c in right else "---|" for c in grid.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in grid.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) + "\n"


def html_table(grid: pd.DataFrame, right: Collection[str] = ()) -> str:
    """The grid as an HTML ``<table>``, every cell escaped; ``right`` columns hold numbers."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in grid.columns)
    rows = []
    for row in grid.itertuples(index=False):
        cells = "".join(
            ('<td class="number">' if c in right else "<td>") + f"{html.escape(str(v))}</td>"
            for c, v in zip(grid.columns, row, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"


def write_html_tables(
    title: str,
    sections: Sequence[tuple[str, str, pd.DataFrame, Collection[str]]],
    path: str | os.PathLike,
) -> None:
    """A title, then per section a heading, a paragraph of plain text and a grid (with its
    right-aligned columns), written atomically as one HTML file.

    The file is a fragment (a charset, a scoped style and one ``<section>``), not a whole document:
    a browser opens it as it is, Snakemake's report viewer shows it inline, and the report's front
    page can place it inside its own page (reStructuredText ``raw`` with ``:file:``)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, text, grid, right in sections:
        if heading:
            body.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            body.append(f"<p>{html.escape(text)}</p>")
        body.append(html_table(grid, right))
    page = (
        f'<meta charset="utf-8">\n<style>{_STYLE}</style>\n<section class="mmsa-tables">\n'
        + "\n".join(body)
        + "</section>\n"
    )
    write_text(page, path)
