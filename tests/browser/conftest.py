"""A real JupyterLab on 127.0.0.1 and a headless Chromium driven by Playwright, for the browser tests.

JupyterLab serves a temporary copy of notebooks/ (running cells must never write outputs into the
repository) and is stopped, with every process it started, when the session ends. Chromium is Debian's
(/usr/bin/chromium, or $DATTN_CHROMIUM); Playwright never downloads a browser here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from .lab_server import Lab, running_lab

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "build" / "screens"
CHROMIUM = os.environ.get("DATTN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    with running_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """The whole book, built once (``.ci/book.py``) into a temporary folder."""
    spec = importlib.util.spec_from_file_location("book", ROOT / ".ci" / "book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("book")
    module.build(out)
    return out


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # Playwright gives each launch a fresh, temporary profile
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screens() -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    return SCREENS
