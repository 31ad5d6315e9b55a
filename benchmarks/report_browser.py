"""Open ``snakemake --report``'s HTML in headless Chromium as a reader would, click through every
page and figure, and print what each one shows (a table; a screenshot of each view in ``--out``).

    python benchmarks/report_browser.py report.html --out report-shots [--chromium /usr/bin/chromium]

Needs Debian's Chromium (``apt-get install chromium``) and the Python driver (``pip install
'.[browser]'``; no browser download: the driver starts the given executable). The front page is
checked for the results table (its rows, and that it does not run under the rule graph beside it);
then each category of the sidebar is opened, and each of its items is opened with its eye button:
a figure must load as an image, a table page must show table rows, and each item's caption (the
information button) must say something.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from _common import table

# as the probe of this machine kind started it: without the background-networking flags Chromium
# tries hosts that this machine's closed network refuses
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEADER = ["view", "what it shows", "screenshot"]
ITEMS = "table.table-auto tbody tr"  # a category's items, listed in the sidebar (white on slate)


@dataclass
class Shot:
    """One view of the report and the screenshot taken of it."""

    view: str
    shows: str
    path: Path

    def row(self) -> list[str]:
        from PIL import Image  # matplotlib's dependency: the screenshot's size as a reader sees it

        with Image.open(self.path) as image:
            width, height = image.size
        kib = self.path.stat().st_size // 1024
        return [self.view, self.shows, f"{self.path.name}, {width}x{height}, {kib} KiB"]


def front_page(page, out: Path) -> Shot:
    """The front page: its text, the results table's rows, and where the table lies against the
    rule graph (the description and the graph share the page side by side)."""
    path = out / "00-front.png"
    page.screenshot(path=path)
    rows = page.locator(".mmsa-tables tr").count()
    tables = page.locator(".mmsa-tables")
    graph = page.locator("div#rulegraph")
    overlap = "no results table"
    if tables.count():
        # the section's box is what shows (a wider table scrolls inside it)
        box, right_of = tables.first.bounding_box(), graph.bounding_box()
        clear = right_of is None or box["x"] + box["width"] <= right_of["x"]
        overlap = "left of the rule graph, clear of it" if clear else "RUNS UNDER THE RULE GRAPH"
        if tables.first.evaluate("s => s.scrollWidth > s.clientWidth"):
            overlap += ", scrolls sideways"
    heading = page.locator(".prose p").first.inner_text()[:60]
    shows = f'front page: "{heading}..."; results table with {rows} rows (header included), {overlap}'
    return Shot("Workflow (front page)", shows, path)


def content_of(page) -> str:
    """What the main view shows after an eye button: an image and its size, or a page's tables."""
    image = page.locator("img[src^='data:image/png']")
    if image.count():
        size = image.first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        return f"image {size[0]}x{size[1]}" if size[0] else "IMAGE DID NOT LOAD"
    frame = page.locator("iframe")
    if frame.count():
        inner = frame.first.content_frame
        rows = inner.locator("tr").count()
        title = inner.locator("h1").first.inner_text() if inner.locator("h1").count() else "?"
        return f'table page "{title}", {rows} rows' if rows else "PAGE WITHOUT A TABLE"
    return "NOTHING SHOWN"


def caption_of(page, row) -> str:
    """The caption behind an item's information button (its "Description" in the sidebar), first
    words."""
    row.locator("a[iconname='information-circle']").click()
    page.wait_for_timeout(300)
    caption = page.locator("li.prose-invert")
    return ('"' + " ".join(caption.first.inner_text().split()[:8]) + '..."') if caption.count() else ""


def categories(page, out: Path, home) -> list[Shot]:
    """Every sidebar category, then every item in it."""
    shots = []
    names = page.locator("li a span").all_inner_texts()
    names = names[names.index("About") + 1 :] if "About" in names else names
    for c, name in enumerate(names, start=1):

        def open_category(name: str = name) -> None:
            home()
            page.locator("li a span", has_text=re.compile(f"^{re.escape(name)}$")).click()
            page.wait_for_timeout(500)

        open_category()
        rows = page.locator(ITEMS)
        labels = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
        path = out / f"{c:02d}-{name}.png"
        page.screenshot(path=path)
        shots.append(Shot(f"category {name}", f"{len(labels)} items: " + "; ".join(labels), path))
        for i, label in enumerate(labels, start=1):
            open_category()
            caption = caption_of(page, page.locator(ITEMS).nth(i - 1))
            open_category()
            page.locator(ITEMS).nth(i - 1).locator("a[iconname='eye']").click()
            page.wait_for_timeout(800)
            path = out / f"{c:02d}-{name}-{i}.png"
            page.screenshot(path=path)
            shots.append(Shot(f"{name} / {label}", f"{content_of(page)}; caption: {caption or 'NONE'}", path))
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the HTML file of snakemake --report")
    parser.add_argument("--out", type=Path, default=Path("report-shots"), help="folder for the screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        url = args.report.resolve().as_uri()

        def home() -> None:
            page.goto(url)
            page.wait_for_selector("div#rulegraph", timeout=15_000)
            page.wait_for_timeout(500)

        home()
        shots = [front_page(page, args.out), *categories(page, args.out, home)]
        version = browser.version
        browser.close()
    print(
        f"Chromium {version}, headless, {args.width}x{args.height}; {args.report.name}, "
        f"{args.report.stat().st_size / 2**20:.1f} MiB\n"
    )
    print(table(HEADER, [s.row() for s in shots]))


if __name__ == "__main__":
    main()
