"""The course in a real JupyterLab and a real browser: run every cell, move the widgets, see them redraw."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .live_checks import check_explorer, check_panel, explorers, panels

ROOT = Path(__file__).resolve().parents[2]

RUN_TIMEOUT_S = 240


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    # JupyterLab 4.6 may still ask which kernel to use (seen on a loaded machine, with the kernel already
    # started from the notebook's kernelspec): take the one it offers, the notebook's own
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=3_000)
    except PlaywrightTimeout:
        return
    dialog.locator("button", has_text="Select").click()
    dialog.wait_for(state="detached", timeout=10_000)


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


def test_explorer_answers_the_pointer_and_the_arrow_keys(page, lab, screens):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    open_notebook(page, lab, "04_attention.ipynb")
    run_all(page)
    page.screenshot(path=screens / "04_run_all.png")
    assert error_outputs(page) == []
    ex = explorers(page).first
    ex.wait_for(timeout=60_000)
    check_explorer(page, ex)
    ex.screenshot(path=screens / "04_lab_live_explorer.png")
    assert error_outputs(page) == []
    # anywidget loads live.js from a blob: URL the page made itself
    away = [u for u in requests if not u.startswith((lab.url + "/", f"blob:{lab.url}/", "data:"))]
    assert away == [], f"requests that left JupyterLab's own server: {away[:5]}"


def test_reference_grid_answers_a_button(page, lab, screens):
    open_notebook(page, lab, "01_reference_points.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    grid = panels(page).first
    grid.wait_for(timeout=60_000)
    grid.scroll_into_view_if_needed()
    check_panel(grid, "convention", "centered")
    check_panel(grid, "stride", "4")
    grid.screenshot(path=screens / "01_reference_grid_centered.png")


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
    run_all(page)  # returns at the first error output: the figure printed as text, maybe before 1 / 0 has run
    deadline = time.time() + 60
    while not any("ZeroDivisionError" in e for e in error_outputs(page)) and time.time() < deadline:
        time.sleep(0.5)
    errors = error_outputs(page)
    assert errors[0].startswith("<Figure size 640x480 with 1 Axes>") and "ZeroDivisionError" in errors[-1]
