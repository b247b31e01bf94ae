"""What the browser tests and benchmarks/bench_live.py do to a live widget (``dattn.viz.live``) on a page, in
JupyterLab or in the book: point at a query, press keys, click buttons, and read back what was drawn.

Each live widget's root element (``.dattn-live``) carries its state in data attributes (``data-query``,
``data-head``, ``data-frame``) and its view object as ``root.dattnLive`` (``queryCss(y, x)``: where a query's
pixel is drawn on the keys canvas).
"""

from __future__ import annotations

import hashlib

# one event's latency: from the event's timestamp to the frame painted after it (a message posted from the
# requestAnimationFrame callback runs once that frame is handed to the compositor)
LATENCY_JS = """([el, type]) => { window.__dattnLatency = new Promise((resolve) => {
  el.addEventListener(type, (ev) => {
    const t0 = ev.timeStamp;
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => resolve(performance.now() - t0);
      ch.port2.postMessage(0);
    });
  }, { capture: true, once: true });
}); }"""


def explorers(page):
    return page.locator(".dattn-live:has(canvas.dattn-keys)")


def panels(page):
    return page.locator(".dattn-live:not(:has(canvas.dattn-keys))")


def state(root) -> dict:
    """The widget's data attributes and what it shows in text."""
    return root.evaluate("el => ({...el.dataset, text: el.querySelector('.dattn-readouts, .dattn-pre')?.innerText})")


def canvas_digest(root, selector: str = "canvas") -> str:
    """A hash of the pixels of the widget's first canvas matching ``selector``."""
    url = root.evaluate(f"el => el.querySelector({selector!r}).toDataURL()")
    return hashlib.sha256(url.encode()).hexdigest()


def query_point(page, root, y: int, x: int) -> tuple[float, float]:
    """Page coordinates of query (y, x) on the explorer's keys canvas."""
    canvas = root.locator("canvas.dattn-keys")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    cx, cy = root.evaluate(f"el => el.dattnLive.queryCss({y}, {x})")
    return box["x"] + cx, box["y"] + cy


def point_at(page, root, y: int, x: int) -> None:
    page.mouse.move(*query_point(page, root, y, x))
    page.wait_for_function("([el, q]) => el.dataset.query === q", arg=[root.element_handle(), f"{y},{x}"],
                           timeout=10_000)


def timed(page, root, event: str, action) -> float:
    """Milliseconds from ``event`` (dispatched by ``action()``) to the next painted frame."""
    page.evaluate(LATENCY_JS, [root.element_handle(), event])
    action()
    return float(page.evaluate("() => window.__dattnLatency"))


def check_explorer(page, ex) -> None:
    """Pointing at two pixels gives two query readouts and two drawings; a click focuses the explorer and the
    arrow keys move its query; a head button and a scene button redraw."""
    H, W = ex.evaluate("el => [el.dattnLive.d.H, el.dattnLive.d.W]")
    keys = "canvas.dattn-keys"
    point_at(page, ex, 2, 3)
    a, a_px = state(ex), canvas_digest(ex, keys)
    point_at(page, ex, H - 3, W - 4)
    b, b_px = state(ex), canvas_digest(ex, keys)
    assert (a["query"], b["query"]) == ("2,3", f"{H - 3},{W - 4}")
    assert "Query (y 2, x 3)" in a["text"] and f"Query (y {H - 3}, x {W - 4})" in b["text"]
    assert a_px != b_px, "two queries, one drawing"
    x, y = query_point(page, ex, 5, 5)
    page.mouse.click(x, y)  # picks (5, 5) and gives the explorer the keyboard
    page.wait_for_function("el => el.dataset.query === '5,5'", arg=ex.element_handle(), timeout=10_000)
    for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
        page.keyboard.press(key)
    assert ex.get_attribute("data-query") == "6,7"
    assert "Query (y 6, x 7)" in state(ex)["text"]
    page.keyboard.press("ArrowUp")
    assert ex.get_attribute("data-query") == "5,7"
    for name in ("head", "scene"):
        before = canvas_digest(ex, keys)
        ex.locator(f'[role="group"][aria-label="{name}"] button').nth(1).click()
        assert ex.get_attribute(f"data-{'input' if name == 'scene' else name}") == "1"
        assert canvas_digest(ex, keys) != before, f"the {name} button did not redraw"


def check_panel(panel, name: str, value: str) -> None:
    """Clicking a panel's button shows another frame, drawn differently."""
    before, frame = canvas_digest(panel), panel.get_attribute("data-frame")
    panel.locator(f'[role="group"][aria-label="{name}"] button', has_text=value).click()
    assert panel.get_attribute("data-frame") != frame
    assert canvas_digest(panel) != before
