"""Render the course as a static HTML book: execute every notebook, export it to HTML, write an index.

    python .ci/book.py [--out build/book]

The live widgets (``dattn.viz.live``: the explorer, the reference grid, the offsets) stay live: each output
that carries their payload becomes the payload in a JSON script element, and one module script per page
(``static/live.js`` itself) draws them, with no kernel and nothing fetched; their PNG shows until the script
runs. Other widgets appear as their static fallback figure (an image/png beside the live view). TeX in
the markdown is drawn by matplotlib's mathtext into inline SVG, so the pages need no MathJax from a CDN and
read the same offline. Stops with nbclient's error, naming the cell, if any cell fails.
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import io
import os
import re
import shutil
import time
from pathlib import Path

import matplotlib
import nbformat
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser, math_to_image
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from dattn.viz.live import LIVE_MIME, book_script, live_html

ROOT = Path(__file__).resolve().parents[1]
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)  # display $$...$$ or inline $...$
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)  # spans where a dollar is only a dollar
# TeX that mathtext cannot parse: names it lacks (\tfrac, \ge ...) and fractions without braces (\frac12)
ALIASES = {"tfrac": "frac", "dfrac": "frac", "ge": "geq", "le": "leq", "ne": "neq"}  # TeX names mathtext lacks
ALIAS = re.compile(r"\\(" + "|".join(ALIASES) + r")(?![A-Za-z])")
BARE_FRACTION = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")
BARE_SQRT = re.compile(r"\\sqrt\s+([0-9A-Za-z])")
MATH_PX = 15  # font size of the drawn TeX, a little above the 14 px body text of the lab template


@functools.cache
def tex_image(tex: str, display: bool) -> str:
    """An <img> holding `tex` drawn by mathtext as SVG, its baseline on the text's baseline."""
    drawn = ALIAS.sub(lambda m: "\\" + ALIASES[m[1]], " ".join(tex.splitlines()))  # mathtext: one line
    drawn = BARE_SQRT.sub(r"\\sqrt{\1}", BARE_FRACTION.sub(r"\\frac{\1}{\2}", drawn))
    with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.fonttype": "path"}):
        prop = FontProperties(size=MATH_PX)
        width, height, depth, *_ = MathTextParser("path").parse(f"${drawn}$", dpi=72, prop=prop)
        svg = io.BytesIO()
        math_to_image(f"${drawn}$", svg, prop=prop, dpi=72, format="svg")
    src = "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()
    style = f"width:{width:.1f}px;height:{height:.1f}px;vertical-align:{-depth:.1f}px;border:0"
    if display:
        style += ";display:block;margin:.6em auto"
    return f'<img class="tex" alt="{html.escape(tex)}" style="{style}" src="{src}">'


def draw_math(markdown: str) -> str:
    """Every $...$ and $$...$$ outside code spans replaced by its drawn image."""
    parts = CODE.split(markdown)  # odd items are code spans
    for i in range(0, len(parts), 2):
        parts[i] = MATH.sub(lambda m: tex_image((m[1] or m[2]).strip(), display=m[1] is not None), parts[i])
    return "".join(parts)


def inline_markdown(text: str) -> str:
    """HTML for one line of markdown as the index shows it: **bold**, `code`, $math$."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return draw_math(out)


def title_and_summary(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """The first markdown heading, and the first sentence of the paragraph after it."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = [line.strip() for line in cell.source.splitlines()]
        heading = next((line.lstrip("# ") for line in lines if line.startswith("#")), None)
        if heading:
            body = " ".join(line for line in lines if line and not line.startswith("#"))
            return heading, body.split(". ")[0].rstrip(".") + "."
    return "untitled", ""


def static_page(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Live widgets (``LIVE_MIME``) become their embedded payload and a host for the page's script; other
    widget views (they need a kernel or a CDN) are dropped, so each shows its static image/png; the TeX of
    the markdown cells is drawn."""
    nb.metadata.pop("widgets", None)
    n_live = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = draw_math(cell.source)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if LIVE_MIME in data:
                n_live += 1
                host = live_html(data[LIVE_MIME], data.get("image/png"), f"dattn-live-{n_live}")
                out["data"] = nbformat.from_dict({"text/html": host})
            elif "image/png" in data:
                data.pop("application/vnd.jupyter.widget-view+json", None)
    return nb


def offline(page: str, title: str) -> str:
    """The exported page without the scripts it would fetch from a CDN (the TeX is drawn already and the
    widgets are figures), titled after its notebook."""
    page = re.sub(r'<script src="https?://[^"]*">\s*</script>', "", page)
    if "dattn-live-host" in page:  # the live widgets' script, once, after everything it mounts
        head, body_end, tail = page.rpartition("</body>")
        page = f"{head}{book_script()}\n{body_end}{tail}"
    return page.replace("<title>Notebook</title>", f"<title>{html.escape(title.replace('`', ''))}</title>", 1)


def build(out: Path, timeout: int = 300) -> list[dict]:
    """Execute and export every notebook in notebooks/ into out/, then write out/index.html."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("MPLBACKEND", None)  # kernels inherit it; with Agg they would print <Figure ...> for figures
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - t0  # execute() raised already, naming the cell, if one failed
        title, summary = title_and_summary(nb)
        body, _ = exporter.from_notebook_node(static_page(nb))
        page = out / f"{path.stem}.html"
        page.write_text(offline(body, title), encoding="utf-8")
        pages.append(dict(file=page.name, notebook=path.name, title=title, summary=summary, seconds=seconds))
        print(f"{path.name}: {seconds:.1f} s -> {page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}")
    shutil.copy(ROOT / "assets" / "book_live_explorer.png", out / "explorer.png")
    (out / "index.html").write_text(index_page(pages), encoding="utf-8")
    return pages


def index_page(pages: list[dict]) -> str:
    items = "\n".join(
        f'<li><a href="{html.escape(p["file"])}">{inline_markdown(p["title"])}</a>'
        f'<p>{inline_markdown(p["summary"])}</p></li>' for p in pages
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dattn: Deformable Attention, from reference points to YOLOv5</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 820px; margin: 3em auto; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.7em; }} ol {{ padding-left: 1.2em; }} li {{ margin: 1em 0; }}
li a {{ font-size: 1.15em; font-weight: 600; color: #0b5394; text-decoration: none; }}
li p {{ margin: .3em 0 0; color: #444; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>dattn: Deformable Attention, from reference points to YOLOv5</h1>
<p>An interactive course, rendered with every cell executed. The explorer and the widgets of notebooks 1
and 2 stay live here (point at the image; the arrow keys move the query), drawn by a script in the page from
numbers computed once: no kernel, no network. Run the notebooks in JupyterLab (<code>make lab</code>) to
change the code.</p>
<img src="explorer.png" alt="The live explorer of the trained scene model (notebooks 0 and 4)">
<ol>
{items}
</ol>
</body></html>
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "book")
    args = ap.parse_args(argv)
    pages = build(args.out)
    print(f"{len(pages)} notebooks in {sum(p['seconds'] for p in pages):.0f} s -> {args.out / 'index.html'}")


if __name__ == "__main__":
    main()
