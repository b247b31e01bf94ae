"""The course in a real JupyterLab and a real browser: run every cell, move the widgets, see them redraw."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN_TIMEOUT_S = 240


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)


def run_all(page) -> None:
    """Run > Run All Cells, then wait until every code cell has an execution number.

    A freshly opened notebook can report an idle kernel before its connection is up and drop the
    request; if no cell has started after a while, the menu command is given again.
    """
    prompts_of = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputPrompt")
    deadline = time.time() + RUN_TIMEOUT_S
    for _attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        started = time.time()
        while time.time() < deadline:
            prompts = [p.strip() for p in prompts_of.all_inner_texts()]
            if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
                return
            if error_outputs(page):
                return  # Run All stops at an error; the caller reports it
            if all(p == "[ ]:" for p in prompts) and time.time() - started > 15:
                break  # nothing started: ask again
            time.sleep(1)
    pytest.fail(f"cells still running or not run after {RUN_TIMEOUT_S} s: {prompts}")


def error_outputs(page) -> list[str]:
    """Outputs that show a traceback, or a figure printed as text instead of drawn."""
    texts = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").all_inner_texts()
    pattern = r"Traceback \(most recent call last\)|^\w+Error\s+Traceback|<Figure size \d+x\d+"
    return [t[:300] for t in texts if re.search(pattern, t)]


def image_digest(locator) -> str:
    return hashlib.sha256(locator.screenshot()).hexdigest()


def wait_for_change(locator, before: str, timeout_s: float = 30) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        now = image_digest(locator)
        if now != before:
            return now
        time.sleep(0.3)
    pytest.fail("the widget's picture did not change")


def test_explorer_redraws_when_a_slider_and_a_dropdown_move(page, lab, screens):
    open_notebook(page, lab, "04_attention.ipynb")
    run_all(page)
    page.screenshot(path=screens / "04_run_all.png")
    assert error_outputs(page) == []

    explorer = page.locator(".widget-vbox", has=page.locator(".widget-image")).last
    explorer.scroll_into_view_if_needed()
    picture = explorer.locator(".widget-image").first
    picture.wait_for(state="visible", timeout=30_000)
    first = image_digest(picture)
    explorer.screenshot(path=screens / "04_explorer_before.png")

    slider = explorer.locator(".widget-slider", has_text="query y").first
    slider.locator(".noUi-handle").first.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    readout = slider.locator(".widget-readout").first
    assert readout.inner_text().strip() == "13"  # starts at the map's centre, 10
    after_slider = wait_for_change(picture, first)
    explorer.screenshot(path=screens / "04_explorer_after_slider.png")

    head = explorer.locator(".widget-dropdown", has_text="head").first.locator("select")
    head.select_option(index=5)
    wait_for_change(picture, after_slider)
    explorer.screenshot(path=screens / "04_explorer_after_dropdown.png")
    assert error_outputs(page) == []


def test_reference_grid_widget_redraws_on_a_toggle(page, lab, screens):
    open_notebook(page, lab, "01_reference_points.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    widget = page.locator(".widget-vbox", has=page.locator(".widget-toggle-buttons")).last
    widget.scroll_into_view_if_needed()
    picture = widget.locator(".widget-image").first
    before = image_digest(picture)
    widget.locator(".widget-toggle-button", has_text="centered").click()
    wait_for_change(picture, before)
    widget.screenshot(path=screens / "01_reference_grid_centered.png")


# 01 and 04 run in full in the widget tests above
OTHERS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p.name[:2] not in {"01", "04"})


@pytest.mark.parametrize("name", OTHERS)
def test_notebook_runs_in_lab_without_errors(page, lab, screens, name):
    open_notebook(page, lab, name)
    run_all(page)
    assert error_outputs(page) == []
    outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output img")
    assert outputs.count() >= 1, f"{name} shows no figure"  # figures and widget pictures render
    page.screenshot(path=screens / f"{name.split('.')[0]}_run_all.png")


def test_an_error_and_a_figure_printed_as_text_are_seen(page, lab):
    """The checks above can fail: a cell that raises, and a figure that comes out as text, are reported."""
    cells = ["print('fine')",
             # no picture format: the figure shows as text, as it did when MPLBACKEND=Agg reached the kernel
             "%config InlineBackend.figure_formats = set()\nimport matplotlib.pyplot as plt\n"
             "fig = plt.figure()\nfig.add_subplot()\nfig",
             "1 / 0"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(nb, lab.root / "notebooks" / "broken.ipynb")
    open_notebook(page, lab, "broken.ipynb")
    run_all(page)
    errors = error_outputs(page)
    assert errors[0].startswith("<Figure size 640x480 with 1 Axes>") and "ZeroDivisionError" in errors[-1]
