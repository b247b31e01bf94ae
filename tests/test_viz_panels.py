"""The small plot widgets: update() redraws what the controls say."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dattn.viz import synthetic_scene  # noqa: E402
from dattn.viz.widgets import offsets_widget, reference_grid_widget  # noqa: E402

IMAGE = synthetic_scene(0, 40)


def _points(fig, gid):
    return next(c for c in fig.axes[0].collections if c.get_gid() == gid).get_offsets()


def test_reference_grid_widget_follows_stride_and_convention():
    w = reference_grid_widget(IMAGE, size=20)
    fig = w.update(stride=4, convention="centered")
    pts = np.asarray(_points(fig, "reference"))
    # centered, stride 4 on 20 map pixels: cells of 4 map pixels, centres 1.5 + 4i; image has 40 pixels
    centres_img = (1.5 + 4 * np.arange(5)) * 39 / 19
    assert np.allclose(np.unique(pts[:, 0].round(4)), centres_img.round(4), atol=1e-3)
    fig = w.update(convention="seed")
    seed_img = (np.arange(5) + 0.5) / 4 * 19 * 39 / 19
    assert np.allclose(np.unique(np.asarray(_points(fig, "reference"))[:, 0].round(4)), seed_img, atol=1e-3)
    assert bytes(w._picture.value[:4]) == b"\x89PNG"
    with pytest.raises(ValueError, match="unknown settings"):
        w.update(strides=2)


def test_offsets_widget_draws_one_arrow_per_key_and_follows_the_factor():
    w = offsets_widget(IMAGE, size=20)
    fig = w.update(stride=4, offset_range_factor=0.0, group=1)
    quiver = fig.axes[0].collections[0] if fig.axes[0].collections[0].get_gid() == "offsets" else next(
        c for c in fig.axes[0].collections if c.get_gid() == "offsets")
    assert len(quiver.U) == 5 * 5
    assert np.allclose(quiver.U, 0) and np.allclose(quiver.V, 0)  # factor 0: no offsets
    fig = w.update(offset_range_factor=4.0)
    quiver = next(c for c in fig.axes[0].collections if c.get_gid() == "offsets")
    assert np.abs(quiver.U).max() > 0
    assert "image/png" in w._repr_mimebundle_()
