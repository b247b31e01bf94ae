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
