"""The static figures put every point where the math says, and the course images load."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dattn.attention import DAttention  # noqa: E402
from dattn.viz import images, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def artist(ax, gid):
    found = [a for a in (*ax.collections, *ax.lines, *ax.texts) if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r}"
    return found[0]


def small_trace(H=8, W=8, stride=1, seed=0):
    torch.manual_seed(seed)
    m = DAttention(16, (H, W), n_heads=4, n_groups=2, stride=stride).eval()
    x = torch.randn(1, 16, H, W, generator=torch.Generator().manual_seed(seed + 1))
    return m.trace(x)


def expected_reference_px(H, Hk, convention):
    """Reference rows in pixels, from the formulas of geometry.reference_points, written out again."""
    i = np.arange(Hk, dtype=float)
    if convention == "seed":
        return (i + 0.5) / (Hk - 1) * (H - 1)  # normalized (i + .5)/(Hk - 1)*2 - 1, then (u + 1)(H - 1)/2
    return (i + 0.5) * H / Hk - 0.5


# -- reference points ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("convention", ["seed", "centered"])
@pytest.mark.parametrize("stride", [1, 2])
def test_reference_points_sit_where_the_formula_says(convention, stride):
    H, W = 8, 6
    fig = plots.plot_reference_grid(np.zeros((H, W, 3)), stride, convention)
    ax = fig.axes[0]
    ys, xs = expected_reference_px(H, H // stride, convention), expected_reference_px(W, W // stride, convention)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    np.testing.assert_allclose(artist(ax, "reference").get_offsets(), np.c_[xx.ravel(), yy.ravel()], atol=1e-5)
    grid = artist(ax, "grid").get_offsets()  # every query pixel centre, at integers
    assert len(grid) == H * W and np.allclose(grid, np.round(grid))
    assert ax.get_legend() is not None and "stride" in ax.get_title()


def test_reference_points_scale_to_a_larger_image():
    img = np.zeros((41, 31, 3))
    fig = plots.plot_reference_grid(img, 1, "centered", size=(5, 4))
    ref = artist(fig.axes[0], "reference").get_offsets()  # (x, y), centered at stride 1 = the pixel centres
    yy, xx = np.meshgrid(np.arange(5) * 40 / 4, np.arange(4) * 30 / 3, indexing="ij")
    np.testing.assert_allclose(ref, np.c_[xx.ravel(), yy.ravel()], atol=1e-4)


def test_half_pixel_shift_is_half_a_pixel():
    ax = plots.plot_half_pixel_shift(4, 1).axes[0]
    seed, centered = artist(ax, "seed").get_offsets(), artist(ax, "centered").get_offsets()
    np.testing.assert_allclose(seed - centered, 0.5, atol=1e-6)
    np.testing.assert_allclose(centered, artist(ax, "grid").get_offsets(), atol=1e-6)


def test_map_to_image_uses_align_corners():
    p = torch.tensor([[0.0, 0.0], [19.0, 19.0], [3.0, 7.0]])
    out = plots.map_to_image(p, (20, 20), (600, 512))
    np.testing.assert_allclose(out[0], [0, 0])
    np.testing.assert_allclose(out[1], [599, 511], rtol=1e-6)
    np.testing.assert_allclose(out[2], [3 * 599 / 19, 7 * 511 / 19], rtol=1e-6)
    np.testing.assert_allclose(plots.image_to_map(out, (20, 20), (600, 512)), p, atol=1e-4)


# -- offsets ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2])
def test_offset_arrows_go_from_reference_to_sampling_points(stride):
    tr = small_trace(stride=stride)
    for group in range(tr.n_groups):
        ax = plots.plot_offsets(None, tr, group, query=(2, 5)).axes[0]
        q = artist(ax, "offsets")
        ref = tr.reference_px.reshape(-1, 2).numpy()[:, ::-1]  # (Ns, 2) as (x, y)
        pos = tr.positions_px[0, group].reshape(-1, 2).numpy()[:, ::-1]
        np.testing.assert_allclose(np.c_[q.X, q.Y], ref, atol=1e-5)
        np.testing.assert_allclose(np.c_[q.X + q.U, q.Y + q.V], pos, atol=1e-5)
        np.testing.assert_allclose(artist(ax, "sampling").get_offsets(), pos, atol=1e-5)
        np.testing.assert_allclose(artist(ax, "query").get_offsets(), [[5, 2]])


def test_offsets_on_a_larger_image_are_scaled():
    tr = small_trace()
    ax = plots.plot_offsets(np.zeros((71, 36, 3)), tr, 1).axes[0]
    pos = tr.positions_px[0, 1].reshape(-1, 2).numpy() * np.array([70 / 7, 35 / 7])  # (y, x) image pixels
    np.testing.assert_allclose(artist(ax, "sampling").get_offsets(), pos[:, ::-1], rtol=1e-5, atol=1e-4)
    plots.update_offsets(ax, tr, 0, img_hw=(71, 36))
    pos0 = tr.positions_px[0, 0].reshape(-1, 2).numpy() * np.array([70 / 7, 35 / 7])
    np.testing.assert_allclose(artist(ax, "sampling").get_offsets(), pos0[:, ::-1], rtol=1e-5, atol=1e-4)


# -- attention ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", [0, 3])
def test_attention_colours_and_sizes_follow_the_weights(head):
    tr = small_trace(stride=2)
    query = (3, 6)
    ax = plots.plot_attention(None, tr, query, head).axes[0]
    sc = artist(ax, "attention")
    w = tr.attn[0, head, query[0] * tr.W + query[1]].numpy()  # (Ns,)
    pos = tr.positions_px[0, tr.group_of_head(head)].reshape(-1, 2).numpy()[:, ::-1]  # (Ns, 2) (x, y)
    order = np.argsort(w, kind="stable")
    np.testing.assert_allclose(sc.get_array(), w[order], rtol=1e-6)
    np.testing.assert_allclose(sc.get_offsets(), pos[order], atol=1e-5)
    sizes = sc.get_sizes()
    assert np.all(np.diff(sizes) >= 0) and sizes[-1] > sizes[0]
    assert np.argmax(sizes) == len(w) - 1
    np.testing.assert_allclose(artist(ax, "query").get_offsets(), [[6, 3]])
    assert f"Head {head}" in ax.get_title() and len(ax.figure.axes) >= 2  # with its colorbar


def test_attention_rejects_a_query_outside_the_map():
    tr = small_trace()
    with pytest.raises(ValueError, match=r"query \(25, 3\) is outside the 8x8 map"):
        plots.plot_attention(None, tr, (25, 3), 0)
    with pytest.raises(ValueError, match=r"head \(9\)"):
        plots.plot_attention(None, tr, (1, 1), 9)


# -- bilinear -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pos", [(2.3, 3.7), (0.0, 4.5), (4.6, 5.2)])
def test_bilinear_weights_and_value(pos):
    values = np.random.default_rng(0).random((5, 6))
    ax = plots.plot_bilinear(values, pos).axes[0]
    y, x = pos
    y0, x0, wy, wx = int(np.floor(y)), int(np.floor(x)), y - np.floor(y), x - np.floor(x)
    expected = [(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]
    texts = [t.get_text() for t in ax.texts if t.get_gid() == "weight"]
    assert [float(t.split("=")[1].split()[0]) for t in texts] == pytest.approx(expected, abs=1e-3)
    nb = artist(ax, "neighbours").get_offsets()
    np.testing.assert_allclose(nb, [[x0, y0], [x0 + 1, y0], [x0, y0 + 1], [x0 + 1, y0 + 1]])
    grid = torch.tensor([[[[2 * x / 5 - 1, 2 * y / 4 - 1]]]], dtype=torch.float64)
    ref = F.grid_sample(torch.tensor(values)[None, None], grid, align_corners=True).item()
    assert plots.bilinear_value(values, pos) == pytest.approx(ref, abs=1e-9)
    assert f"{ref:.3f}" in ax.get_title()


def test_bilinear_marks_neighbours_outside_the_map():
    ax = plots.plot_bilinear(np.ones((4, 4)), (3.5, 1.25)).axes[0]
    assert sum("outside" in t.get_text() for t in ax.texts) == 2
    assert plots.bilinear_value(np.ones((4, 4)), (3.5, 1.25)) == pytest.approx(0.5)


# -- features and the explorer figure -----------------------------------------------------------------------
def test_resize_image_keeps_align_corners_centres():
    ramp = np.repeat(np.linspace(0, 1, 101)[:, None, None], 3, axis=2).repeat(40, axis=1)  # (101, 40, 3)
    out = plots.resize_image(ramp, (11, 5))[0, 0, :, 0]  # (11,) map pixel i <-> image row 10 i
    np.testing.assert_allclose(out.numpy(), np.linspace(0, 1, 11), atol=0.02)


def test_features_are_deterministic_and_image_dependent():
    a, b = images.synthetic_scene(0, 64), images.synthetic_scene(1, 64)
    fa = plots.features_from_image(a, 16, 10)
    assert fa.shape == (1, 16, 10, 10)
    assert torch.equal(fa, plots.features_from_image(a, 16, 10))
    assert not torch.allclose(fa, plots.features_from_image(b, 16, 10))
    model = plots.build_model(16, 10, n_heads=4, n_groups=2)
    off_a = model.trace(fa).offsets_px
    off_b = model.trace(plots.features_from_image(b, 16, 10)).offsets_px
    assert off_a.abs().mean() > 0.05 and not torch.allclose(off_a, off_b)


def test_explorer_figure_has_three_panels():
    img = images.synthetic_scene(2, 48)
    fig = plots.explorer_figure(None, img, query=(3, 4), head=5, stride=2, size=10)
    names = [ax.get_label() for ax in fig.axes]
    for name in ("offsets", "attention", "bilinear"):
        assert name in names
    att = next(ax for ax in fig.axes if ax.get_label() == "attention")
    assert "Head 5" in att.get_title()
    np.testing.assert_allclose(artist(att, "query").get_offsets(), [[4 * 47 / 9, 3 * 47 / 9]], rtol=1e-5)


# -- images -------------------------------------------------------------------------------------------------
def test_course_images_load():
    names = images.list_images()
    assert names[0] == "grace_hopper"
    for name in names:
        img = images.load_image(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0
    assert images.image_to_tensor(images.load_image(names[0])).shape == (1, 3, 600, 512)
    with pytest.raises(ValueError, match="known images"):
        images.load_image("no_such_image")
    assert names[1:] == ["scene_0", "scene_1"]  # README figures in assets/ are not course inputs
    with pytest.raises(ValueError, match="known images"):
        images.load_image("explorer")


def test_synthetic_scene_is_deterministic():
    a = images.synthetic_scene(3, 40)
    assert a.shape == (40, 40, 3) and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, images.synthetic_scene(3, 40))
    assert not np.array_equal(a, images.synthetic_scene(4, 40))


def test_write_assets(tmp_path):
    written = images.write_assets(tmp_path, size=64)
    assert {p.name for p in written} == {"scene_0.png", "scene_1.png", "grace_hopper.jpg"}
    for p in written:
        assert 0 < p.stat().st_size < 300_000


# -- honest pictures: the module as taught, nothing cropped, the global generator untouched ---------------------
def test_build_model_is_plain_dattention_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    model = plots.build_model(16, 10, n_heads=4, n_groups=2, stride=2, seed=5)
    assert torch.equal(torch.rand(4), expected)  # the caller's random stream did not move
    torch.manual_seed(5)
    plain = DAttention(16, (10, 10), n_heads=4, n_groups=2, stride=2)  # as PyTorch initialises it
    for (name, p), q in zip(model.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert not model.training


def test_features_carry_no_position_ramps():
    flat = np.full((30, 30, 3), 0.5, dtype=np.float32)  # no colour, no edges: nothing but position could show
    assert plots.features_from_image(flat, 16, 10).abs().max() < 1e-3


@pytest.mark.parametrize("stride, n_out", [(1, 0), (2, 19), (4, 9)])
def test_reference_points_off_the_map_are_drawn_ringed_and_counted(stride, n_out):
    img = np.zeros((600, 512, 3))
    ax = plots.plot_reference_grid(img, stride, "seed", size=20).axes[0]
    ref = artist(ax, "reference").get_offsets()
    Hk = (20 - 1) // stride + 1
    assert len(ref) == Hk * Hk  # every point is drawn ...
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    assert ((ref[:, 0] > x0) & (ref[:, 0] < x1) & (ref[:, 1] > y0) & (ref[:, 1] < y1)).all()  # ... in view
    rows = (np.arange(Hk) + 0.5) * 19 / (Hk - 1)  # the seed's rows in map pixels, by hand
    hand = int((np.add.outer(rows > 19.5, rows > 19.5)).sum())  # row or column past the map's last cell
    assert hand == n_out and len(artist(ax, "outside").get_offsets()) == n_out
    assert (f"{n_out} of {Hk * Hk} off the map" if n_out else f"all {Hk * Hk} on the map") in ax.get_title()
    assert any("off the map" in t.get_text() for t in ax.get_legend().get_texts()) == (n_out > 0)


def test_sampling_points_off_the_map_are_kept_in_view():
    tr = small_trace(stride=2)
    tr.positions_px[0, 1, 0, 0] = torch.tensor([-3.0, 11.5])  # one key pushed off the 8x8 map
    ax = plots.plot_offsets(None, tr, 1).axes[0]
    ring = artist(ax, "outside").get_offsets()
    assert len(ring) >= 1 and np.allclose(ring[0], [11.5, -3.0])
    assert ax.get_ylim()[1] < -3.0 and ax.get_xlim()[1] > 11.5  # y axis points down: top limit below -3
    assert "off the map" in ax.get_title()


def test_stride_zero_and_bad_strides_are_value_errors():
    for stride in (0, -1, 1.5):
        with pytest.raises(ValueError, match="stride must be a positive int"):
            plots.reference_grid_px(20, 20, stride)
        with pytest.raises(ValueError, match="stride must be a positive int"):
            plots.plot_reference_grid(None, stride, size=20)
