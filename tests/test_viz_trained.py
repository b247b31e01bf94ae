"""Figures of the trained models draw what they are given: key positions, weights, bar heights, legends; the
scene explorer colours keys by the model's attention and refuses negative indices."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dattn.data import make_scenes  # noqa: E402
from dattn.train import Config, History, build_model  # noqa: E402
from dattn.viz import comparison_plots as cp  # noqa: E402
from dattn.viz import trained_plots as tp  # noqa: E402

CFG = Config(channels=16, offset_init="default", seed=1)


@pytest.fixture(scope="module")
def model():
    return build_model(CFG).eval()


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(4, size=18, seed=3, radius=(1, 1))


def keys_of(ax, group: int) -> np.ndarray:
    return next(c for c in ax.collections if c.get_label() == f"keys of group {group}").get_offsets()


def test_draw_keys_puts_every_group_where_it_is(model, scenes):
    pos, ref = model.sampling_points(scenes.images[:1])  # (1, 1, 2, 3, 3, 2)
    fig, ax = matplotlib.pyplot.subplots()
    tp.draw_keys(ax, scenes.images[0], scenes.masks[0], pos[0, 0], ref[0])
    for g in range(2):
        assert np.allclose(keys_of(ax, g), pos[0, 0, g].reshape(-1, 2).flip(-1).numpy())
    styles = [tp.group_style(g) for g in range(2)]
    assert styles[0]["c"] != styles[1]["c"] and styles[0]["marker"] != styles[1]["marker"]
    assert all(s["edgecolors"] == "black" for s in styles)  # visible on any object colour


def test_plot_scene_keys_colours_by_weight_and_writes_the_largest(scenes):
    pos = torch.tensor([[2.0, 3.0], [10.0, 4.5], [15.0, 15.0]])
    w = torch.tensor([0.2, 0.7, 0.1])
    fig, ax = matplotlib.pyplot.subplots()
    tp.plot_scene_keys(ax, scenes.images[0], scenes.masks[0], pos, pos, weights=w, query=(5.0, 6.0))
    keys = next(c for c in ax.collections if c.get_gid() == "keys")
    assert np.allclose(keys.get_array(), w.numpy())
    assert np.allclose(keys.get_offsets(), pos.flip(-1).numpy())
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.20", "0.70"]


def test_two_queries_share_the_keys_and_differ_in_weights(model, scenes):
    image = scenes.images[:1]
    t = model.blocks[0].trace(model.attention_input(image))
    fig = tp.plot_two_queries(image[0], scenes.masks[0], t, [(2, 3), (15, 9)], group=1, to_image_px=model.to_image_px)
    a, b, bars = fig.axes[:3]
    ka, kb = (next(c for c in ax.collections if c.get_gid() == "keys") for ax in (a, b))
    assert np.array_equal(ka.get_offsets(), kb.get_offsets())  # the same keys for both queries
    head = 1  # one head per group
    for keys, (qy, qx) in ((ka, (2, 3)), (kb, (15, 9))):
        assert np.allclose(keys.get_array(), t.attn[0, head, qy * 18 + qx].numpy())
    heights = np.array([p.get_height() for p in bars.patches])
    assert np.allclose(heights[:9], t.attn[0, head, 2 * 18 + 3].numpy())
    assert not np.allclose(ka.get_array(), kb.get_array())


def test_variant_keys_titles_say_right_or_wrong(model, scenes):
    pos, ref = model.sampling_points(scenes.images)
    keys = {"deformable": (pos[:, 0], ref[0]), "fixed": (ref[0][None, None].expand_as(pos[:, 0]), ref[0])}
    labels = scenes.colour_labels
    preds = {"deformable": labels.clone(), "fixed": (labels + 1) % 6}
    fig = tp.plot_variant_keys(scenes, keys, preds, labels, names=[str(i) for i in range(6)], n=3)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title().endswith("(right)") and "(wrong, is" in fig.axes[3].get_title()
    assert fig.legends and "keys of group 1" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_accuracy_bars_are_the_means_with_each_seed():
    runs = [dict(variant=v, accuracy=a) for v, accs in (("deformable", (0.99, 1.0, 0.98)), ("fixed", (0.5, 0.52, 0.48)),
                                                        ("dense", (1.0, 1.0, 1.0))) for a in accs]
    fig = cp.plot_accuracy(runs, chance=1 / 6)
    ax = fig.axes[0]
    assert np.allclose([p.get_height() for p in ax.patches], [0.99, 0.5, 1.0])
    assert any("0.990" in t.get_text() and "3 seeds" in t.get_text() for t in ax.texts)


def test_key_shares_bars_and_labels():
    s = lambda on, reached: dict(object_area=0.02, keys_on_objects=on, scenes_reached=reached)  # noqa: E731
    fig = cp.plot_key_shares({"fixed grid": s(0.025, 0.45), "deformable": s(0.1, 0.99)})
    a, b = fig.axes
    assert np.allclose([p.get_height() for p in a.patches], [2.0, 2.5, 10.0])
    assert np.allclose([p.get_height() for p in b.patches], [45.0, 99.0])
    assert [t.get_text() for t in a.texts] == ["2.0%", "2.5%", "10.0%"]


def test_distance_histograms_name_their_medians():
    before = torch.tensor([1.0, 2.0, 3.0, 8.0]).reshape(2, 1, 1, 1, 2)  # 2 scenes, 1 group of 2 keys
    after = torch.tensor([0.5, 0.5, 1.0, 6.0]).reshape(2, 1, 1, 1, 2)
    fig = cp.plot_distances(before, after)
    labels = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
    assert labels[0] == ["before training (median 2.5 px)", "after training (median 0.8 px)"]
    # nearest of each scene's two keys: (1, 3) before, (0.5, 1) after
    assert labels[1] == ["before training (median 2.0 px)", "after training (median 0.8 px)"]
    assert sum(p.get_height() for p in fig.axes[0].patches[:35]) == pytest.approx(100)


def test_group_stats_and_stride_sweep():
    summary = dict(group_keys_on_objects=[0.1, 0.02], group_scenes_with_key_on_objects=[0.8, 0.9],
                   group_nearest_distance_mean=[0.5, 1.5], group_offset_px_mean=[2.0, 1.0])
    fig = cp.plot_group_stats(summary)
    assert np.allclose([p.get_height() for p in fig.axes[0].patches], [80.0, 90.0])
    assert np.allclose([p.get_height() for p in fig.axes[1].patches], [0.5, 1.5])
    runs = [dict(variant="fixed", key_grid=k, accuracy=a) for k, a in ((2, 0.3), (3, 0.5), (6, 0.9))]
    runs += [dict(variant="deformable", key_grid=k, accuracy=a) for k, a in ((2, 0.8), (3, 0.99), (6, 1.0))]
    fig = cp.plot_stride_sweep(runs, predicted={4: 0.35, 9: 0.55, 36: 0.92}, dense=1.0, chance=1 / 6)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["fixed (trained)"].get_xdata()) == [4, 9, 36]
    assert list(lines["deformable (trained)"].get_ydata()) == [0.8, 0.99, 1.0]
    assert list(lines["fixed, predicted from geometry"].get_ydata()) == [0.35, 0.55, 0.92]
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [4, 9, 36]  # one tick per measured grid, named by its size
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4\n(2x2)", "9\n(3x3)", "36\n(6x6)"]
    fig = cp.plot_stride_sweep(runs, predicted={4: 0.35, 36: 0.92})  # no prediction at 9: the line breaks there
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "fixed, predicted from geometry")
    assert list(line.get_xdata()) == [4, 9, 36] and np.isnan(line.get_ydata()[1])


def test_training_strip_and_gif(model, scenes, tmp_path):
    h = History(snapshot_steps=[0, 5, 10], reference=model.sampling_points(scenes.images[:1])[1])
    for k in range(3):
        pos, _ = model.sampling_points(scenes.images[:1])
        h.snapshots.append(pos[0] + k)
    fig = tp.plot_training_strip(h, scenes.subset([0]), k=3)
    assert [ax.get_title() for ax in fig.axes] == ["step 0", "step 5", "step 10"]
    assert np.allclose(keys_of(fig.axes[2], 0), (h.snapshots[2][0, 0]).reshape(-1, 2).flip(-1).numpy())
    tp.gif_frames(h, scenes.subset([0]), tmp_path / "k.gif", hold=2)
    with Image.open(tmp_path / "k.gif") as im:
        assert im.n_frames >= 3


def test_scene_explorer_colours_keys_by_attention_and_refuses_negative_indices(model, scenes):
    from dattn.viz.widgets import scene_explorer

    w = scene_explorer(model, scenes, n_scenes=4)
    fig = w.update(scene=2, query_y=3, query_x=11, head=1)
    keys = next(c for c in fig.axes[0].collections if c.get_gid() == "keys")
    t = model.trace(scenes.images[2:3])[0]
    assert np.allclose(keys.get_array(), t.attn[0, 1, 3 * t.W + 11].numpy())
    pos = model.to_image_px(t.positions_px[0, t.group_of_head(1)])
    assert np.allclose(keys.get_offsets(), pos.reshape(-1, 2).flip(-1).numpy(), atol=1e-5)
    for bad in (dict(scene=-1), dict(query_y=-2), dict(query_x=18), dict(head=-1), dict(scene=4)):
        with pytest.raises(ValueError, match="must be an integer in 0.."):
            w.update(**bad)
        w.state.update(scene=2, query_y=3, query_x=11, head=1)  # a failed update is the widget shell's business
