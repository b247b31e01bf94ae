"""The explorer's update method: it changes the picture, caches the trace, and keeps head and group in step."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dattn.viz.images import list_images  # noqa: E402
from dattn.viz.widgets import Explorer  # noqa: E402


@pytest.fixture(scope="module")
def ex():
    e = Explorer(image=list_images()[-1], size=10, stride=2)  # a small scene when assets/ has one
    yield e
    plt.close("all")


def panel(ex, name):
    return next(ax for ax in ex.fig.axes if ax.get_label() == name)


def artist(ax, gid):
    return next(a for a in (*ax.collections, *ax.lines, *ax.texts) if a.get_gid() == gid)


def test_query_move_changes_the_figure_without_running_the_model(ex):
    ex.update(query_y=2, query_x=3, head=0)
    runs = ex.trace_runs
    att = panel(ex, "attention")
    before = artist(att, "attention").get_array().copy()
    star = artist(att, "query").get_offsets().copy()
    picture = ex.jpeg()
    fig = ex.update(query_y=7)
    assert fig is ex.fig
    assert ex.trace_runs == runs  # the cached trace was reused
    assert not np.allclose(artist(att, "attention").get_array(), before)
    assert not np.allclose(artist(att, "query").get_offsets(), star)
    assert artist(att, "query").get_offsets()[0][1] > star[0][1]  # moved down the image
    assert "(7, 3)" in att.get_title()
    assert ex.jpeg() != picture


def test_attention_panel_follows_the_trace(ex):
    ex.update(query_y=4, query_x=5, head=3)
    tr = ex.trace()
    w = tr.attn[0, 3, 4 * tr.W + 5].numpy()
    shown = artist(panel(ex, "attention"), "attention").get_array()  # relative weights, sorted
    np.testing.assert_allclose(shown, np.sort(w) / w.max(), rtol=1e-5)


def test_head_moves_the_group_and_group_moves_the_head(ex):
    ex.update(head=5)
    assert ex.state.group == 5 // (ex.n_heads // ex.n_groups)
    ex.update(group=0)
    assert ex.state.head == 0 and ex.state.group == 0
    ex.update(group=1, head=0)  # both given: shown as asked
    assert (ex.state.head, ex.state.group) == (0, 1)
    assert "Group 1" in panel(ex, "offsets").get_title()


def test_stride_factor_and_image_rerun_the_model_once(ex):
    runs = ex.trace_runs
    ex.update(stride=4)
    assert ex.trace_runs == runs + 1 and ex.trace().Hk == 3  # (10 - 1) // 4 + 1
    ex.update(stride=2)
    assert ex.trace_runs == runs + 1  # cached
    ex.update(offset_range_factor=1.0)
    assert ex.trace_runs == runs + 2
    assert ex.trace().offsets_px.abs().max() <= 1.0 * 9 / (2 * 4) + 1e-5  # factor (H-1) / (2 (Hk-1))


def test_widgets_call_update(ex):
    ex.w["query_x"].value = 1
    assert ex.state.query_x == 1
    ex.w["head"].value = 6
    assert ex.state.head == 6 and ex.w["group"].value == ex.state.group == 3
    ex.update(query_y=0)
    assert ex.w["query_y"].value == 0  # the controls follow update


def test_bad_settings_name_the_numbers(ex):
    with pytest.raises(ValueError, match=r"query \(25, 3\) is outside the 10x10 map"):
        ex.update(query_y=25, query_x=3)
    with pytest.raises(ValueError, match="stride"):
        ex.update(stride=3)
    with pytest.raises(ValueError, match="unknown explorer settings"):
        ex.update(colour="red")
    assert ex.state.query_y < 10  # a refused update changes nothing


def test_static_output(ex):
    fig = ex.static_figure()
    assert fig is not ex.fig and {"offsets", "attention", "bilinear"} <= {a.get_label() for a in fig.axes}
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "text/plain" in bundle
    assert ex.png()[:4] == b"\x89PNG" and ex.jpeg()[:2] == b"\xff\xd8"


def test_fast_redraw_matches_a_full_redraw(ex):
    """Blitting the moving parts onto the cached background gives the picture a full redraw gives."""
    ex.update(query_y=6, query_x=2, head=5)
    fast = np.asarray(ex.fig.canvas.buffer_rgba()).astype(int)
    ex._redraw(full=True)
    full = np.asarray(ex.fig.canvas.buffer_rgba()).astype(int)
    assert fast.shape == full.shape
    assert (np.abs(fast - full).max(-1) > 8).mean() < 1e-3  # only the legend's colour swatch may differ


# -- robustness: a refused or failed update leaves everything as it was ------------------------------------------
def test_a_refused_update_leaves_the_explorer_working(ex):
    ex.update(query_y=3, query_x=4, head=2)
    before = (ex.state, ex.jpeg())
    for bad in (dict(head=1.5), dict(query_y=2.5), dict(head=True), dict(group="1"), dict(stride=2.0),
                dict(offset_range_factor=float("nan")), dict(offset_range_factor="big"), dict(image=3)):
        with pytest.raises(ValueError):
            ex.update(**bad)
        assert ex.state == before[0] and ex.jpeg() == before[1], bad
    fig = ex.update(head=3)  # later updates still work
    assert ex.state.head == 3 and "Head 3" in panel(ex, "attention").get_title() and fig is ex.fig


def test_a_failed_redraw_rolls_back_state_picture_and_controls(ex, monkeypatch):
    ex.update(query_y=1, query_x=1, head=0)
    ex._redraw(full=True)
    state, picture = ex.state, np.asarray(ex.fig.canvas.buffer_rgba()).astype(int)
    calls = []

    def broken(*args, **kwargs):  # the first redraw fails, the rollback redraw works
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("drawing failed")
        return real(*args, **kwargs)

    import dattn.viz.widgets as w

    real = w.explorer_figure
    monkeypatch.setattr(w, "explorer_figure", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        ex.update(stride=4)
    monkeypatch.undo()
    assert ex.state == state and ex.w["stride"].value == state.stride
    assert np.array_equal(np.asarray(ex.fig.canvas.buffer_rgba()).astype(int), picture)  # the old picture
    ex.update(query_x=5)
    assert ex.state.query_x == 5


@pytest.mark.parametrize("kwargs, match", [(dict(n_heads=3), r"n_heads \(3\) must be divisible by n_groups \(4\)"),
                                           (dict(n_groups=0), "n_groups must be a positive int"),
                                           (dict(channels=30), r"channels \(30\) must be divisible by n_heads"),
                                           (dict(head=9), r"head \(9\)"), (dict(query=(3, 40)), "outside")])
def test_bad_explorer_sizes_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Explorer(size=10, **kwargs)


def test_a_failed_plot_widget_update_leaves_it_as_it_was():
    from dattn.viz import synthetic_scene
    from dattn.viz.widgets import offsets_widget

    w = offsets_widget(synthetic_scene(0, 40), size=10)
    w.update(group=1)
    state, picture = dict(w.state), w._picture.value
    with pytest.raises(ValueError, match="group"):
        w.update(group=7)
    assert w.state == state and w._picture.value == picture
    fig = w.update(group=2)
    assert "group 2" in fig.axes[0].get_title()
