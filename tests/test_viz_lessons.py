"""The concept figures of notebooks 1 to 4: what they draw is where the formulas say."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dattn.attention import DAttention  # noqa: E402
from dattn.viz.attention_plots import log_spacing, plot_cost, plot_log_cpb_spacing, plot_position_bias, query_bias  # noqa: E402
from dattn.viz.coordinates import plot_align_corners, plot_offset_bound  # noqa: E402
from dattn.viz.sampling_plots import border_profile, gradient_walk, plot_border_profile, plot_gradient_walk  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_align_corners_labels_and_ends():
    n = 5
    fig = plot_align_corners(n)
    top, bottom = fig.axes[:2]
    assert [t.get_text() for t in top.texts] == [f"{2 * i / (n - 1) - 1:+.2f}" for i in range(n)]
    assert [t.get_text() for t in bottom.texts] == [f"{(2 * i + 1) / n - 1:+.2f}" for i in range(n)]
    ends_true = top.collections[-1].get_offsets()[:, 0]
    ends_false = bottom.collections[-1].get_offsets()[:, 0]
    assert list(ends_true) == [0, n - 1] and list(ends_false) == [-0.5, n - 0.5]


def test_offset_bound_lines_reach_the_formula():
    fig = plot_offset_bound(H=20, strides=(1, 4), factors=(2, 4))
    for ax, Hk in zip(fig.axes[:2], (20, 5), strict=True):
        for line, f in zip(ax.get_lines()[:2], (2, 4), strict=True):
            assert line.get_ydata().max() == pytest.approx(np.tanh(4) * f / (Hk - 1) * 19 / 2, rel=1e-5)


def test_border_profile_matches_the_tent_formula():
    W = 6
    px, values = border_profile(W)
    outside = np.maximum(np.maximum(-px.numpy(), px.numpy() - (W - 1)), 0)  # distance beyond the end centres
    assert np.allclose(values.numpy(), np.clip(1 - outside, 0, 1), atol=1e-9)
    assert plot_border_profile(W).axes[0].get_lines()[0].get_ydata().max() == 1


def test_gradient_walk_climbs_the_brightness():
    yy, xx = np.mgrid[0:48, 0:48]
    image = np.repeat(np.exp(-((yy - 30) ** 2 + (xx - 12) ** 2) / 300.0)[..., None], 3, -1)  # one bright blob
    lum, paths = gradient_walk(image, size=48, steps=30, lr=0.05, n_points=4, seed=0)

    def read(p):  # nearest pixel brightness, an independent read
        return lum[p[:, 0].round().long().clamp(0, 47), p[:, 1].round().long().clamp(0, 47)]

    assert (read(paths[-1]) > read(paths[0])).all()
    assert paths.shape == (31, 4, 2)
    assert len(plot_gradient_walk(image, size=48, steps=5).axes[0].get_lines()) == 6


def test_position_bias_plot_colours_are_the_trace_bias():
    torch.manual_seed(0)
    m = DAttention(16, (8, 8), n_heads=4, n_groups=2, stride=2, dwc_pe=False)
    with torch.no_grad():
        m.rpe_table.normal_()
    t = m.trace(torch.randn(1, 16, 8, 8))
    fig = plot_position_bias(None, t, query=(3, 5), head=1)
    sc = next(c for c in fig.axes[0].collections if c.get_gid() == "bias")
    assert np.allclose(sc.get_array(), t.bias[0, 1, 3 * 8 + 5].numpy())
    with pytest.raises(ValueError, match="no additive position bias"):
        query_bias(DAttention(16, (8, 8), n_heads=4, n_groups=2).trace(torch.randn(1, 16, 8, 8)), (0, 0), 0)


def test_log_spacing_values_and_plot():
    d = torch.tensor([0.0, 0.25, -0.25, 1.75])
    assert torch.allclose(log_spacing(d), torch.tensor([0.0, 1 / 3, -1 / 3, 1.0]))
    assert len(plot_log_cpb_spacing().axes[0].get_lines()) == 2


def test_cost_plot_bars_are_the_rows():
    rows = [dict(name="dense", keys=100, gflops=2.0, attention_gflops=1.5, scores_mib=4.0, peak_mib_explicit=None,
                 peak_mib_fused=1.0, ms_best=5.0, ms_median=6.0, ms_worst=9.0),
            dict(name="stride 2", keys=25, gflops=0.5, attention_gflops=0.25, scores_mib=1.0, peak_mib_explicit=3.0,
                 peak_mib_fused=0.5, ms_best=2.0, ms_median=2.5, ms_worst=4.0)]
    fig = plot_cost(rows)
    assert [p.get_height() for p in fig.axes[0].patches] == [2.0, 0.5, 1.5, 0.25]  # forward, then attention
    assert [p.get_height() for p in fig.axes[1].patches] == [4.0, 1.0, 1.0, 0.5]  # weights, then fused peak
    assert [p.get_height() for p in fig.axes[2].patches] == [5.0, 2.0]  # best runs
    (segments,) = [c.get_segments() for c in fig.axes[2].collections]
    assert [(s[0][1], s[1][1]) for s in segments] == [(5.0, 9.0), (2.0, 4.0)]  # from best to worst


def test_layer_params_bars_and_highlight():
    from dattn.viz.yolo_plots import plot_layer_params
    from dattn.yolo import build_model

    model = build_model("yolov5_C3_DAttention.yaml", scale="n")
    fig = plot_layer_params(model)
    bars = fig.axes[0].patches
    assert len(bars) == len(model.model)
    assert bars[8].get_height() == pytest.approx(sum(p.numel() for p in model.model[8].parameters()) / 1e6)
    assert bars[8].get_facecolor() != bars[7].get_facecolor()  # the C3_DAttention layer stands out


def test_gflops_vs_size_draws_both_counts_and_the_unseen_part():
    from dattn.viz.yolo_plots import plot_gflops_vs_size

    fig = plot_gflops_vs_size([320, 640], [27.0, 110.0], [28.0, 112.5], [0.06, 1.0], [0.0625, 1.0])
    left, right = fig.axes
    assert [list(line.get_ydata()) for line in left.get_lines()] == [[27.0, 110.0], [28.0, 112.5]]
    assert [t.get_text() for t in left.texts] == ["27.0 / 28.0", "110.0 / 112.5"]
    assert right.get_xscale() == right.get_yscale() == "log"
    assert [list(line.get_ydata()) for line in right.get_lines()] == [[0.0625, 1.0], [0.06, 1.0]]
    assert [t.get_text() for t in right.texts] == ["0.06", "1.00"]


def test_scaling_plot_labels_the_increase():
    from dattn.viz.yolo_plots import plot_scaling

    rows = [dict(scale="n", params_base=2e6, params_attn=2.5e6, gflops_base=4.0, gflops_attn=5.0)]
    fig = plot_scaling(rows)
    assert [t.get_text() for t in fig.axes[0].texts] == ["2.00 -> 2.50\n+25.0%"]
    assert [p.get_height() for p in fig.axes[1].patches] == [4.0, 5.0]
    assert [t.get_text() for t in fig.axes[1].texts] == ["4.0 -> 5.0\n+25.0%"]
    assert fig.axes[0].get_yscale() == fig.axes[1].get_yscale() == "log"  # a small model's bars stay visible


def test_read_and_slope_follow_the_formula():
    """Autograd's slope of the read equals f(x0 + 1) - f(x0) with x0 = floor(x), zeros outside, written here."""
    from dattn.viz.sampling_plots import plot_read_and_slope, read_and_slope

    row = [2.0, 3.0, 1.0, 4.0, 3.5]
    f = lambda i: row[i] if 0 <= i < len(row) else 0.0  # noqa: E731
    xs = [-2.5, -1.0, -0.6, 0.0, 0.3, 1.0, 2.0, 2.75, 4.0, 4.4, 5.0, 6.2]
    values, slopes = read_and_slope(row, torch.tensor(xs, dtype=torch.float64))
    for x, v, s in zip(xs, values.tolist(), slopes.tolist(), strict=True):
        x0 = math.floor(x)
        w = x - x0
        assert v == pytest.approx((1 - w) * f(x0) + w * f(x0 + 1), abs=1e-12)
        assert s == pytest.approx(f(x0 + 1) - f(x0), abs=1e-9), x  # at a centre: the cell to the right
    fig = plot_read_and_slope(row)
    assert len(fig.axes) == 2


def test_block_paths_draw_every_step_and_join():
    from dattn.viz.yolo_plots import plot_block_paths

    columns = {"a": (["Conv 1x1", "DAttention"], []),
               "b": (["LayerNorm", "attention", "LayerNorm", "MLP"], [(0, 1, "+", "x"), (2, 3, "+", "x")])}
    fig = plot_block_paths(columns)
    left, right = fig.axes
    texts = [t.get_text() for t in left.texts]
    assert texts[:1] + [t for t in texts if t in ("Conv 1x1", "DAttention", "+")] == ["input", "Conv 1x1", "DAttention"]
    texts = [t.get_text() for t in right.texts]
    steps = ["LayerNorm", "attention", "LayerNorm", "MLP"]
    assert [t for t in texts if t in steps] == steps
    assert texts.count("+") == 2 and texts.count("x") == 2  # two residuals, each with its side label
    assert len(right.get_lines()) == 2 and len(left.get_lines()) == 0  # one side path per join, none without
