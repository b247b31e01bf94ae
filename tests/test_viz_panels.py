"""The reference-grid and offsets widgets: every setting is computed once and sent to the browser; what is sent
is the reference formula and the module's own forward, and update() returns the matplotlib picture of a state."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dattn.viz import features_from_image, synthetic_scene  # noqa: E402
from dattn.viz.features import build_model  # noqa: E402
from dattn.viz.live_data import unpack  # noqa: E402
from dattn.viz.live_panels import OFFSET_FACTORS, frame_key, offsets_data, reference_grid_data  # noqa: E402
from dattn.viz.widgets import offsets_widget, reference_grid_widget  # noqa: E402

IMAGE = synthetic_scene(0, 40)


def points(data: dict, name: str) -> np.ndarray:
    a = data["arrays"][name]
    return unpack(a["data"], "float32", (a["n"], 2))


def by_hand_outside(p: np.ndarray, n: int) -> list[int]:
    return [i for i, (y, x) in enumerate(p) if not (-0.5 <= y <= n - 0.5 and -0.5 <= x <= n - 0.5)]


def test_frame_keys_are_the_control_values_as_the_browser_writes_them():
    assert frame_key(2, 4.0, 1) == "2|4|1" and frame_key(1, -1.0, 0) == "1|-1|0" and frame_key(4, "seed") == "4|seed"
    assert frame_key(2, 0.5) == "2|0.5"


@pytest.fixture(scope="module")
def grid():
    return reference_grid_data(IMAGE, size=20)


def test_reference_grid_data_holds_every_stride_and_convention(grid):
    assert set(grid["frames"]) == {f"{s}|{c}" for s in (1, 2, 4, 8) for c in ("seed", "centered")}
    # centered, stride 4 on 20 map pixels: the cells' centres 1.5 + 4i
    p = points(grid, "reference 4 centered")
    assert np.allclose(np.unique(p[:, 0]), 1.5 + 4 * np.arange(5), atol=1e-5)
    # seed: (i + 0.5) / (Hk - 1) of the map's span H - 1: spacing 19 / 4 = 4.75, not 4
    assert np.allclose(np.unique(points(grid, "reference 4 seed")[:, 1]), (np.arange(5) + 0.5) * 19 / 4, atol=1e-4)
    for s in (1, 2, 4, 8):
        for c in ("seed", "centered"):
            p = points(grid, f"reference {s} {c}")
            rings = grid["arrays"][f"reference {s} {c}"]["rings"]
            assert rings == by_hand_outside(p, 20)
            assert grid["frames"][f"{s}|{c}"]["title"].endswith(
                f"{len(rings)} of {len(p)} off the map (ringed)" if rings else f"all {len(p)} on the map")
    assert len(points(grid, "grid")) == 400
    # the map <-> image mapping: map pixel i of 20 at i * 39 / 19 of the 40-pixel image
    y0, sy, x0, sx = grid["to_image"]
    assert (y0, x0) == (0.0, 0.0) and sy == pytest.approx(39 / 19) and sx == pytest.approx(39 / 19)


def test_offsets_data_equals_the_forward_at_every_factor():
    data = offsets_data(IMAGE, size=12, channels=16, n_groups=2, strides=(2, 4), factors=(-1.0, 0.0, 0.5, 4.0))
    x = features_from_image(IMAGE, 16, 12, 0)
    for s in (2, 4):
        m = build_model(16, 12, n_groups=2, stride=s)
        ref = points(data, f"reference {s}")
        for f in (-1.0, 0.0, 0.5, 4.0):
            m.offset_range_factor = f
            with torch.no_grad():
                t = m.trace(x)  # the whole forward, not the steps offsets_data runs
            pos = points(data, f"sampling {s} {f:g}")
            assert np.allclose(pos, t.positions_px[0].reshape(-1, 2).numpy(), atol=1e-5)
            assert data["arrays"][f"sampling {s} {f:g}"]["rings"] == by_hand_outside(pos, 12)
            if f == 0:
                assert np.allclose(pos.reshape(2, -1, 2), ref[None], atol=1e-6)  # no offsets
            Ns = len(ref)
            for g in range(2):
                frame = data["frames"][frame_key(s, f, g)]
                assert frame["layers"][-1] == dict(style="sampling", points=f"sampling {s} {f:g}", start=g * Ns,
                                                   count=Ns)
                n_out = len(by_hand_outside(pos[g * Ns : (g + 1) * Ns], 12))
                assert f"group {g}" in frame["title"] and (f"{n_out} of {Ns} off" in frame["title"] or n_out == 0)
    assert OFFSET_FACTORS[0] == -1.0 and OFFSET_FACTORS[-1] == 8.0 and len(OFFSET_FACTORS) == 19


def test_reference_grid_widget_update_draws_the_state():
    w = reference_grid_widget(IMAGE, size=20)
    fig = w.update(stride=4, convention="centered")
    ref = next(c for c in fig.axes[0].collections if c.get_gid() == "reference").get_offsets()
    assert np.allclose(np.unique(np.asarray(ref)[:, 0].round(4)), ((1.5 + 4 * np.arange(5)) * 39 / 19).round(4))
    assert w.selection == dict(stride=4, convention="centered")
    for bad in (dict(strides=2), dict(stride=3), dict(convention="other"), dict(stride=True)):
        with pytest.raises(ValueError):
            w.update(**bad)
        assert w.selection == dict(stride=4, convention="centered")
    assert "image/png" in w._repr_mimebundle_()[0]


def test_offsets_widget_update_draws_one_arrow_per_key():
    w = offsets_widget(IMAGE, size=20)
    assert w.selection == dict(stride=2, offset_range_factor=4.0, group=0)
    fig = w.update(stride=4, offset_range_factor=0.0, group=1)
    quiver = next(c for c in fig.axes[0].collections if c.get_gid() == "offsets")
    assert len(quiver.U) == 5 * 5 and np.allclose(quiver.U, 0) and np.allclose(quiver.V, 0)
    fig = w.update(offset_range_factor=4.0)
    assert np.abs(next(c for c in fig.axes[0].collections if c.get_gid() == "offsets").U).max() > 0
    with pytest.raises(ValueError, match=r"group must be one of \[0, 1, 2, 3\], got 7"):
        w.update(group=7)
    assert w.selection["group"] == 1 and "group 1" in w.figure().axes[0].get_title()
