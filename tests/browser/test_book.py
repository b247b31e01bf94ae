"""The rendered HTML book: every notebook, in order, executed, without errors; the live widgets answer the pointer
and the keys with no kernel and no network, other widgets show their figure."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .live_checks import check_explorer, check_panel, explorers, panels

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_index_links_every_notebook_in_order(book):
    index = (book / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)\.html">', index)
    assert links == NOTEBOOKS
    for name in NOTEBOOKS:
        assert (book / f"{name}.html").is_file()


def test_pages_hold_figures_and_no_errors(book):
    for name in NOTEBOOKS:
        page = (book / f"{name}.html").read_text()
        assert "Traceback (most recent call last)" not in page, name
        assert 'data-mime-type="application/vnd.jupyter.error"' not in page, name
        assert page.count("data:image/png;base64") >= 1, f"{name} shows no figure"
        assert "&lt;Figure size" not in page, f"{name}: a figure came out as text, not as a picture"
        assert not re.search(r'<script src="https?:', page), f"{name} fetches a script from the network"
    explorer_page = (book / "04_attention.html").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in explorer_page  # no view that needs a kernel
    # one live host with its payload, and live.js once, mounting it
    assert explorer_page.count('data-payload="dattn-live-') == 1 and explorer_page.count('id="dattn-live-1"') == 1
    assert explorer_page.count("mountStatic(el);\n</script>") == 1


def test_tex_is_drawn_not_left_as_dollars(book):
    page = (book / "03_grid_sample.html").read_text()
    source = (ROOT / "notebooks" / "03_grid_sample.ipynb").read_text()
    # one drawn image per formula of the notebook's markdown (the counts are of the notebook itself)
    formulas = re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", "".join(
        "".join(c["source"]) for c in json.loads(source)["cells"] if c["cell_type"] == "markdown"), flags=re.S)
    assert formulas
    assert page.count('class="tex"') == len(formulas)
    assert 'alt="w_x = x - x_0"' in page
    text = re.sub(r"<[^>]+>", "", page)  # what a reader sees as text
    assert "w_x = x - x_0" not in text and "\\lfloor" not in text


def decoded(page) -> list[int]:
    """naturalWidth of every image on the page: 0 for one the browser could not decode."""
    return page.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")


def test_screenshots_of_the_index_and_notebook_pages(book, page, screens):
    page.goto((book / "index.html").as_uri())
    assert page.locator("ol li a").count() == len(NOTEBOOKS)
    assert all(w > 0 for w in decoded(page))
    page.screenshot(path=screens / "book_index.png", full_page=True)

    page.goto((book / "03_grid_sample.html").as_uri())
    widths = decoded(page)
    assert len(widths) >= 5 and all(w > 0 for w in widths)  # figures and drawn TeX
    page.locator("img.tex[style*='display:block']").first.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=screens / "book_03_grid_sample.png")

    page.goto((book / "04_attention.html").as_uri())
    assert all(w > 0 for w in decoded(page))
    page.get_by_text("The explorer puts everything together").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=screens / "book_04_attention.png")


def test_the_live_widgets_answer_with_no_kernel_and_no_network(book, page, screens):
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((book / "04_attention.html").as_uri())
    ex = explorers(page).first
    ex.wait_for(timeout=10_000)
    check_explorer(page, ex)
    ex.screenshot(path=screens / "book_04_live_explorer.png")
    page.goto((book / "01_reference_points.html").as_uri())
    check_panel(panels(page).first, "convention", "centered")
    page.goto((book / "02_learned_offsets.html").as_uri())
    offsets = panels(page).first
    check_panel(offsets, "group", "2")
    check_panel(offsets, "stride", "4")
    pages = {(book / f"{n}.html").as_uri() for n in ("04_attention", "01_reference_points", "02_learned_offsets")}
    assert [u for u in requests if u not in pages and not u.startswith("data:")] == []
    assert errors == []
