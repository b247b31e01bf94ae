"""PlotWidget (the kernel-side shell that scene_explorer uses): update() redraws, a control calls it, and a
failed update leaves the widget as it was."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import pytest  # noqa: E402

from dattn.viz.widgets import PlotWidget  # noqa: E402


def make() -> PlotWidget:
    def draw(fig, n: int, word: str) -> None:
        if n > 5:
            raise ValueError(f"n ({n}) must be at most 5")
        ax = fig.add_subplot()
        ax.plot(range(n + 1))
        ax.set_title(f"{word} {n}")

    return PlotWidget(draw, {"n": widgets.IntSlider(1, 0, 9), "word": widgets.Dropdown(options=["a", "b"])})


def test_update_and_the_controls_redraw():
    w = make()
    fig = w.update(n=3)
    assert fig.axes[0].get_title() == "a 3" and len(fig.axes[0].lines[0].get_xdata()) == 4
    w.w["word"].value = "b"  # what a click does
    assert w.state == dict(n=3, word="b") and w.fig.axes[0].get_title() == "b 3"
    with pytest.raises(ValueError, match="unknown settings"):
        w.update(colour=1)


def test_a_failed_update_leaves_state_picture_and_controls_as_they_were():
    w = make()
    w.update(n=2)
    state, picture = dict(w.state), w._picture.value
    with pytest.raises(ValueError, match=r"n \(7\) must be at most 5"):
        w.w["n"].value = 7
    assert w.state == state and w._picture.value == picture and w.w["n"].value == 2
    assert w.update(n=4).axes[0].get_title() == "a 4"
    assert w._repr_mimebundle_()["image/png"]
