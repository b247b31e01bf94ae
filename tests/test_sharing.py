"""DAT's shared keys against per-query points: the illustration layer, the cost counts and their figures,
each checked against a hand computation."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dattn import DAttention  # noqa: E402
from dattn.cost import attention_flops, cost_table, sharing_cost  # noqa: E402
from dattn.per_query_points import PerQueryPoints  # noqa: E402
from dattn.profiling import best_times  # noqa: E402
from dattn.viz.attention_plots import plot_cost  # noqa: E402
from dattn.viz.mapping import map_to_image  # noqa: E402
from dattn.viz.sharing_plots import (  # noqa: E402
    plot_key_sources,
    plot_per_query_points,
    plot_query_weights,
    plot_shared_vs_per_query,
)


def sorted_rows(a) -> np.ndarray:
    a = np.asarray(a, dtype=float).reshape(-1, 2)
    return a[np.lexsort(a.T[::-1])]


# ----------------------------------------------------------------------------------------------------------
# The per-query illustration
# ----------------------------------------------------------------------------------------------------------
def test_per_query_points_are_each_querys_own_linear_prediction():
    torch.manual_seed(0)
    layer = PerQueryPoints(6, n_points=3)
    x = torch.randn(2, 6, 4, 5)
    points, weights = layer(x)
    assert points.shape == (2, 20, 3, 2) and weights.shape == (2, 20, 3)
    for b, y, xx in ((0, 0, 0), (1, 2, 3), (1, 3, 4)):  # a hand computation for single queries
        f = x[b, :, y, xx]
        off = (layer.offsets.weight @ f + layer.offsets.bias).view(3, 2)
        assert torch.allclose(points[b, y * 5 + xx], torch.tensor([y, xx], dtype=torch.float32) + off, atol=1e-6)
        w = torch.softmax(layer.weights.weight @ f + layer.weights.bias, 0)
        assert torch.allclose(weights[b, y * 5 + xx], w, atol=1e-6)


def test_per_query_points_depend_on_the_querys_own_pixel_only():
    torch.manual_seed(1)
    layer = PerQueryPoints(4)
    x = torch.randn(1, 4, 3, 3)
    changed = x.clone()
    changed[0, :, 1, 2] += 1.0
    diff = (layer(x)[0] - layer(changed)[0]).abs().sum((-1, -2))[0]  # (HW,)
    assert torch.nonzero(diff).flatten().tolist() == [1 * 3 + 2]


def test_per_query_points_refuse_bad_input():
    layer = PerQueryPoints(4)
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\), got \(1, 3, 2, 2\)"):
        layer(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="got list"):
        layer([1, 2])
    with pytest.raises(ValueError, match="n_points"):
        PerQueryPoints(4, n_points=0)


# ----------------------------------------------------------------------------------------------------------
# Counting what sharing buys
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("B, h, m, n, d", [(1, 8, 400, 100, 4), (2, 2, 7, 3, 5)])
def test_attention_flops_is_two_products_of_multiply_adds(B, h, m, n, d):
    assert attention_flops(B, h, m, n, d) == 2 * (2 * B * h * m * n * d)


def test_sharing_cost_matches_a_hand_count():
    C, S, stride = 16, 12, 3
    c = sharing_cost(channel=C, size=S, stride=stride, n_heads=4, n_groups=2)
    Hk = (S + 2 - 3) // stride + 1  # the offset network's 3x3 conv, padding 1
    Ns, HW = Hk * Hk, S * S
    assert (c["queries"], c["keys"], c["per_query_keys"]) == (HW, Ns, Ns)
    assert c["shared"]["sampled_bytes"] == C * Ns * 4
    assert c["per_query"]["sampled_bytes"] == HW * C * Ns * 4
    assert c["shared"]["kv_flops"] == 2 * (2 * C * C * Ns)  # two 1x1 convs over Ns positions
    assert c["per_query"]["kv_flops"] == HW * c["shared"]["kv_flops"]
    assert c["shared"]["attention_flops"] == c["per_query"]["attention_flops"] == 4 * HW * Ns * C


def test_sharing_cost_with_fewer_points_per_query():
    c = sharing_cost(channel=8, size=8, stride=2, n_heads=2, n_groups=2, n_per_query=4)
    assert c["per_query"]["sampled_bytes"] == 64 * 4 * 8 * 4
    assert c["per_query"]["attention_flops"] == 4 * 64 * 4 * 8


def test_best_times_runs_each_function_in_turn_and_restores_threads():
    calls = []
    before = torch.get_num_threads()
    seen = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: (calls.append("b"), seen.append(torch.get_num_threads()))}
    t = best_times(fns, runs=4, threads=1)
    assert calls == ["a", "b"] * 5  # one warm-up round, then four
    assert set(seen) == {1} and torch.get_num_threads() == before
    for v in t.values():
        assert 0 <= v["best"] <= v["median"] <= v["worst"]
    with pytest.raises(ValueError, match="runs"):
        best_times({"a": lambda: None}, runs=0)
    with pytest.raises(TypeError, match="expects a function"):
        best_times({"a": 3})


def test_cost_table_rows_against_hand_counts():
    rows = cost_table(channel=16, size=8, strides=(1, 2), n_heads=4, n_groups=2, runs=2)
    assert [r["name"] for r in rows] == ["dense", "stride 1", "stride 2"]
    for r, keys in zip(rows, (64, 64, 16), strict=True):
        assert r["keys"] == keys
        assert r["attention_gflops"] * 1e9 == pytest.approx(4 * 64 * keys * 16)
        assert r["scores_mib"] * 2**20 == 4 * 64 * keys * 4
        assert r["ms_best"] <= r["ms_median"] <= r["ms_worst"]
        assert r["gflops"] > r["attention_gflops"]  # the projections come on top
    assert rows[0]["peak_mib_explicit"] is None
    assert rows[1]["peak_mib_explicit"] * 2**20 >= 2 * 4 * 64 * 64 * 4  # scores and weights held
    fig = plot_cost(rows)
    heights = [p.get_height() for p in fig.axes[0].patches[:3]]
    assert heights == pytest.approx([r["gflops"] for r in rows])
    plt.close(fig)


# ----------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------
def test_query_weights_draw_every_key_with_its_weight():
    keys = torch.tensor([[0.0, 0.0], [3.0, 4.0], [9.5, -2.0], [5.0, 5.0]])  # one off the 8x8 map
    w = torch.tensor([0.1, 0.5, 0.15, 0.25])
    fig, ax = plt.subplots()
    sc = plot_query_weights(ax, None, keys, w, (2, 2), (8, 8), title="t")
    drawn = sc.get_offsets()
    assert np.allclose(sorted_rows(drawn), sorted_rows(keys.flip(-1)))  # (x, y), no image: map pixels
    by_pos = {tuple(np.round(p, 4)): v for p, v in zip(np.asarray(drawn), sc.get_array().tolist(), strict=True)}
    for k, v in zip(keys.flip(-1).tolist(), w.tolist(), strict=True):
        assert by_pos[tuple(np.round(k, 4))] == pytest.approx(v)
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.15", "0.25", "0.50"]
    assert "1 of 4 off the map" in ax.get_title()
    plt.close(fig)


def test_shared_panels_draw_the_same_keys_and_per_query_points_their_own():
    keys = torch.rand(9, 2) * 17
    weights = torch.softmax(torch.randn(2, 9), -1)
    points = torch.rand(2, 4, 2) * 17
    fig = plot_shared_vs_per_query(torch.rand(18, 18, 3), keys, weights, [[3, 4], [12, 10]], points, (18, 18),
                                   torch.softmax(torch.randn(2, 4), -1), mask=torch.zeros(18, 18), label="x")
    a, b, c = fig.axes[:3]
    ka, kb = ([s for s in ax.collections if s.get_gid() == "keys"][0] for ax in (a, b))
    assert np.allclose(sorted_rows(ka.get_offsets()), sorted_rows(kb.get_offsets()))
    assert not np.allclose(np.sort(ka.get_array()), np.sort(kb.get_array())) or torch.allclose(weights[0], weights[1])
    own = [s for s in c.collections if s.get_gid() == "points"]
    for i in range(2):
        assert np.allclose(own[i].get_offsets(), points[i].flip(-1).numpy())
    assert len(c.lines) == 8  # a line from each query to each of its points
    plt.close(fig)
    with pytest.raises(ValueError, match=r"weights must be \(2, Ns\)"):
        plot_shared_vs_per_query(None, keys, weights[:1], [[0, 0], [1, 1]], points, (18, 18))
    with pytest.raises(ValueError, match=r"points must be \(Q, K, 2\)"):
        fig, ax = plt.subplots()
        plot_per_query_points(ax, None, torch.zeros(3, 4, 2), [[0, 0], [1, 1]], (4, 4))
    plt.close("all")


def test_key_sources_are_every_groups_read_at_that_index():
    torch.manual_seed(0)
    m = DAttention(16, (8, 8), n_heads=4, n_groups=2, stride=2).eval()
    t = m.trace(torch.randn(1, 16, 8, 8))
    img = np.zeros((30, 30, 3))
    fig = plot_key_sources(img, t, key=5, head=3)
    ax = fig.axes[0]
    src = [s for s in ax.collections if s.get_gid() == "sources"]
    want = map_to_image(t.positions_px[0].reshape(2, -1, 2)[:, 5], (8, 8), (30, 30)).flip(-1).numpy()
    assert np.allclose(np.concatenate([s.get_offsets() for s in src]), want, atol=1e-5)
    assert "head's group" in src[1].get_label() and "head's group" not in src[0].get_label()  # head 3 -> group 1
    plt.close(fig)
    with pytest.raises(ValueError, match="key"):
        plot_key_sources(img, t, key=16, head=0)
