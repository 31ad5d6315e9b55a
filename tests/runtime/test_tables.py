"""Grids of display strings laid out as Markdown and as HTML: alignment, escaping, the page."""

import re
from html.parser import HTMLParser

import pandas as pd

from mmsa.runtime.tables import MISSING, markdown_table, number, p_value, signed, write_html_tables

GRID = pd.DataFrame({"dataset": ["bbbp", "a<b & c"], "mmsa": ["0.843 ± 0.010", "n/a"]})


class Cells(HTMLParser):
    """The text of every th/td, row by row, and the class of every td, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[str | None] = []
        self.inside = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self.inside = True
            self.rows[-1].append("")
            if tag == "td":
                self.classes.append(dict(attrs).get("class"))

    def handle_endtag(self, tag):
        self.inside = self.inside and tag not in ("th", "td")

    def handle_data(self, data):
        if self.inside:
            self.rows[-1][-1] += data


def test_markdown_table_right_aligns_the_number_columns_only():
    assert markdown_table(GRID, right=["mmsa"]).splitlines() == [
        "| dataset | mmsa |",
        "|---|---:|",
        "| bbbp | 0.843 ± 0.010 |",
        "| a<b & c | n/a |",
    ]


def test_html_tables_hold_every_cell_escaped_and_scope_their_style(tmp_path):
    path = tmp_path / "t.html"
    write_html_tables("Results <all>", [("Part", "what it holds", GRID, ["mmsa"])], path)
    text = path.read_text(encoding="utf-8")
    parser = Cells()
    parser.feed(text)
    assert parser.rows == [["dataset", "mmsa"], ["bbbp", "0.843 ± 0.010"], ["a<b & c", "n/a"]]
    assert parser.classes == [None, "number", None, "number"]
    assert "a&lt;b &amp; c" in text and "<h1>Results &lt;all&gt;</h1>" in text
    # every style rule is scoped to the tables' section: placed inside another page, it styles
    # nothing of that page's own
    style = text[text.index("<style>") + 7 : text.index("</style>")]
    selectors = [s.strip() for group in re.findall(r"([^{}]+)\{", style) for s in group.split(",")]
    assert len(selectors) > 5 and all(s.startswith(".mmsa-tables") for s in selectors), selectors
    assert text.startswith('<meta charset="utf-8">') and "<html" not in text  # a fragment
    assert [p.name for p in tmp_path.iterdir()] == ["t.html"]  # written atomically


def test_numbers_differences_and_p_values_share_one_missing_mark():
    assert [number(0.84312), signed(0.0021), signed(-0.5), p_value(0.0004), p_value(0.0123)] == [
        "0.843",
        "+0.002",
        "-0.500",
        "<0.001",
        "0.012",
    ]
    assert {number(float("nan")), signed(float("nan")), p_value(float("nan"))} == {MISSING}


def test_a_bar_inside_a_cell_cannot_split_it():
    grid = pd.DataFrame({"input": ["a|b"], "n": [1]})
    assert markdown_table(grid, ["n"]) == "| input | n |\n|---|---:|\n| a\\|b | 1 |\n"
