"""How fast the live widgets answer, measured in the browser (not a test): from a pointer or key event to the
next painted frame, in JupyterLab and on a book page, p50 and p95 in milliseconds.

A notebook with the three live widgets (the trained explorer of notebooks 0 and 4, the reference grid of
notebook 1, the offsets of notebook 2) runs in a real JupyterLab (as ``make test-browser`` starts it) and is
rendered as ``make book`` renders a page; headless Chromium (Debian's, ``$DATTN_CHROMIUM``) is driven by
Playwright. Each event is timed in the page: its ``timeStamp`` to a message posted from the
``requestAnimationFrame`` callback after it, which runs once that frame has been produced. Targets: p95 below
50 ms for a query move, below 100 ms for any other control.

    python benchmarks/bench_live.py [--n 60] [--screenshot assets/book_live_explorer.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.lab_server import running_lab  # noqa: E402
from tests.browser.live_checks import explorers, panels, point_at, query_point, timed  # noqa: E402
from tests.browser.test_lab_widgets import open_notebook, run_all  # noqa: E402

CELLS = [
    "from dattn.viz import load_image\nfrom dattn.viz.widgets import offsets_widget, reference_grid_widget, "
    "trained_explorer\n\nimage = load_image('grace_hopper')",
    "trained_explorer()",
    "reference_grid_widget(image, size=20)",
    "offsets_widget(image, size=20)",
]
TARGETS = {"query move": 50.0, "other controls": 100.0}


def widget_notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
                                    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})


def book_page(out: Path) -> Path:
    """The notebook executed and rendered as ``.ci/book.py`` renders a page."""
    spec = importlib.util.spec_from_file_location("book", ROOT / ".ci" / "book.py")
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    nb = widget_notebook()
    os.environ.pop("MPLBACKEND", None)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(book.static_page(nb))
    page = out / "bench_live.html"
    page.write_text(book.offline(body, "bench_live"), encoding="utf-8")
    return page


def measure(page, n: int) -> dict[str, list[float]]:
    """Milliseconds per event: ``n`` query moves by the pointer, ``n`` by the arrow keys, and ``n`` clicks
    spread over the other controls of the three widgets."""
    ex, grid, offsets = explorers(page).first, panels(page).nth(0), panels(page).nth(1)
    H, W = ex.evaluate("el => [el.dattnLive.d.H, el.dattnLive.d.W]")
    out: dict[str, list[float]] = {"query move": [], "query move (arrow key)": [], "other controls": []}
    point_at(page, ex, 0, 0)
    for i in range(n):
        y, x = (3 + 7 * i) % H, (5 + 11 * i) % W
        if ex.get_attribute("data-query") == f"{y},{x}":
            y = (y + 1) % H
        target = query_point(page, ex, y, x)
        out["query move"].append(timed(page, ex, "pointermove", lambda t=target: page.mouse.move(*t)))
        assert ex.get_attribute("data-query") == f"{y},{x}", "the pointer did not move the query"
    ex.locator("canvas.dattn-keys").click(position={"x": 5, "y": 5})  # focus: the arrow keys go to the explorer
    for i in range(n):
        key = ("ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp")[(i // 3) % 4]
        out["query move (arrow key)"].append(timed(page, ex, "keydown", lambda k=key: page.keyboard.press(k)))
    buttons = []
    for root, names in ((ex, ("head", "group", "scene")), (grid, ("stride", "convention")),
                        (offsets, ("stride", "group"))):
        for name in names:
            b = root.locator(f'[role="group"][aria-label="{name}"] button')
            buttons += [(root, b.nth(0)), (root, b.nth(1))]
    for i in range(n):
        root, button = buttons[i % len(buttons)]
        button.scroll_into_view_if_needed()
        out["other controls"].append(timed(page, root, "click", button.click))
    return out


def percentiles(ms: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ms, n=20, method="inclusive")
    return statistics.median(ms), q[18]


def report(results: dict[str, dict[str, list[float]]]) -> None:
    print(f"{'where':<12} {'event':<24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}  target p95")
    for where, per in results.items():
        for event, ms in per.items():
            p50, p95 = percentiles(ms)
            target = TARGETS["query move" if event.startswith("query") else "other controls"]
            verdict = "met" if p95 < target else "MISSED"
            print(f"{where:<12} {event:<24} {len(ms):>4} {p50:>8.1f} {p95:>8.1f}  < {target:.0f} ms: {verdict}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="events per kind and place (default 60)")
    ap.add_argument("--screenshot", type=Path,
                    help="save the book's explorer here, e.g. assets/book_live_explorer.png")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        with running_lab(Path(tmp) / "lab") as lab:
            nbformat.write(widget_notebook(), lab.root / "notebooks" / "bench_live.ipynb")
            open_notebook(page, lab, "bench_live.ipynb")
            run_all(page)
            page.wait_for_function("() => document.querySelectorAll('.dattn-live').length === 3", timeout=120_000)
            results["JupyterLab"] = measure(page, args.n)
        (Path(tmp) / "book").mkdir()
        html = book_page(Path(tmp) / "book")
        page.goto(html.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.dattn-live').length === 3", timeout=30_000)
        results["book"] = measure(page, args.n)
        if args.screenshot:
            ex = explorers(page).first
            page.mouse.move(0, 0)
            point_at(page, ex, 5, 12)
            ex.screenshot(path=args.screenshot)
            print(f"screenshot of the book's explorer -> {args.screenshot}")
        browser.close()
    report(results)


if __name__ == "__main__":
    main()
