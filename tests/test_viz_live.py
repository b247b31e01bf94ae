"""The live explorer sends the browser what the module computes: the positions it sampled (checked by reading the
input there with F.grid_sample), the softmax weights (recomputed by hand from the projections), every scene
and stride; its update(), checks, PNG fallback and the book's embedding."""

import matplotlib

matplotlib.use("Agg")

import base64  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from einops import rearrange  # noqa: E402

from dattn.viz import features_from_image, load_image, synthetic_scene  # noqa: E402
from dattn.viz.features import build_model  # noqa: E402
from dattn.viz.live import (  # noqa: E402
    LIVE_MIME,
    book_script,
    explorer_for,
    live_html,
    live_js,
    trained_explorer,
    untrained_explorer,
)
from dattn.viz.live_data import pack, pack_weights, query_dependence, unpack, unpack_weights  # noqa: E402
from dattn.viz.live_plots import live_explorer_figure  # noqa: E402
from dattn.viz.mapping import map_to_image  # noqa: E402

IMAGE = synthetic_scene(0, 40)  # (40, 40, 3)


def decoded_view(data: dict, input: int = 0, option: int = 0):
    """What live.js decodes from the payload: positions (g, Ns, 2) image px and map px, weights (heads, HW, Ns)."""
    v = data["views"][input][option]
    g, Ns, HW = data["n_groups"], v["Hk"] * v["Wk"], data["H"] * data["W"]
    return (unpack(v["positions"], "float32", (g, Ns, 2)), unpack(v["positions_map"], "float32", (g, Ns, 2)),
            unpack_weights(v["attn"], (data["n_heads"], HW, Ns)))


def hand_attention(m, x: torch.Tensor, pos_map: np.ndarray) -> torch.Tensor:
    """softmax(q k / sqrt(c)) per head, from the module's projections, with the keys read by F.grid_sample at
    the given map-pixel positions (g, Ns, 2) of a batch-1 input: (heads, HW, Ns)."""
    H, W = x.shape[-2:]
    g, Ns = pos_map.shape[:2]
    p = torch.as_tensor(pos_map)
    grid = torch.stack((2 * p[..., 1] / (W - 1) - 1, 2 * p[..., 0] / (H - 1) - 1), -1)  # (g, Ns, 2) as (x, y)
    xg = rearrange(x, "1 (g c) h w -> g c h w", g=g)
    read = F.grid_sample(xg, grid[:, None], mode="bilinear", align_corners=True)  # (g, Cg, 1, Ns)
    kv = rearrange(read, "g c 1 n -> 1 (g c) 1 n")
    with torch.no_grad():
        q = rearrange(m.proj_q(x), "1 (hd c) h w -> hd (h w) c", hd=m.n_heads)
        k = rearrange(m.proj_k(kv), "1 (hd c) 1 n -> hd n c", hd=m.n_heads)
    c = q.shape[-1]
    return torch.softmax(q @ k.transpose(1, 2) / c**0.5, -1)


# -- packing -----------------------------------------------------------------------------------------------------
def test_pack_is_little_endian_bytes_in_base64():
    assert base64.b64decode(pack(np.array([1.5, -2.0]), "float32")) == struct.pack("<2f", 1.5, -2.0)
    assert base64.b64decode(pack(np.array([1, 65535]), "uint16")) == struct.pack("<2H", 1, 65535)
    a = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    assert np.array_equal(unpack(pack(a, "float32"), "float32", (3, 4)), a)


def test_weights_travel_exact_to_four_decimals_and_garbage_is_refused():
    w = np.random.default_rng(1).dirichlet(np.ones(9), size=50).astype(np.float32)  # (50, 9), rows sum to 1
    back = unpack_weights(pack_weights(w), w.shape)
    assert np.abs(back - w).max() <= 0.5 / 65535 + 1e-7
    for bad in (np.array([0.5, np.nan]), np.array([-0.1, 1.0]), np.array([1.5])):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            pack_weights(bad)


def test_query_dependence_matches_a_count_by_hand():
    rng = np.random.default_rng(2)
    attn = rng.dirichlet(np.ones(5) * 0.3, size=(3, 40)).astype(np.float32)  # (heads, HW, Ns)
    attn[1, :, 2] += 5  # head 1: every query's heaviest key is 2
    attn[1] /= attn[1].sum(-1, keepdims=True)
    got = query_dependence(attn)
    for head, d in enumerate(got):
        heaviest = [max(range(5), key=lambda k, row=row: row[k]) for row in attn[head]]
        _, n = Counter(heaviest).most_common(1)[0]
        assert d["share"] == pytest.approx(n / 40)
        assert Counter(heaviest)[d["key"]] == n  # a most common key (ties: any of them)
        assert d["median_max"] == pytest.approx(statistics.median(max(row) for row in attn[head]), rel=1e-6)
    assert got[1] == dict(key=2, share=1.0, median_max=pytest.approx(float(np.median(attn[1].max(-1)))))


# -- the numbers the browser gets ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained():
    return untrained_explorer(IMAGE, size=10, channels=16, n_heads=4, n_groups=2, strides=(2, 4))


def test_untrained_explorer_sends_the_positions_the_module_read_and_its_weights(untrained):
    x = features_from_image(IMAGE, 16, 10, 0)  # (1, 16, 10, 10)
    for option, stride in enumerate((2, 4)):
        m = build_model(16, 10, 4, 2, stride, 2.0, 0)
        pos_img, pos_map, weights = decoded_view(untrained.data, 0, option)
        Hk = (10 - 1) // stride + 1  # the offset network's 3x3 conv, padding 1
        assert pos_map.shape == (2, Hk * Hk, 2)
        # F.grid_sample at the sent positions reads what the module sampled there
        t = m.trace(x)
        read = F.grid_sample(rearrange(x, "1 (g c) h w -> g c h w", g=2), torch.stack(
            (2 * torch.as_tensor(pos_map[..., 1]) / 9 - 1, 2 * torch.as_tensor(pos_map[..., 0]) / 9 - 1), -1)[:, None],
            align_corners=True)  # (g, Cg, 1, Ns)
        assert torch.allclose(read[:, :, 0], t.sampled[0].flatten(2), atol=1e-5)
        assert np.abs(weights - hand_attention(m, x, pos_map).numpy()).max() < 1e-4
        # image pixels: map pixel i of 10 sits at i * 39 / 9 of the 40-pixel image
        assert np.allclose(pos_img, pos_map * 39 / 9, atol=1e-4)
    d = untrained.data
    assert d["options"] == ["2", "4"] and d["option_name"] == "stride" and "Untrained" in d["label"]
    assert len(json.dumps(d)) < 400_000


def test_the_trained_explorer_shows_the_shipped_model_on_its_held_out_scenes():
    from dattn.train import heldout, load_shipped

    ex = trained_explorer("deformable", n_scenes=3)
    model = load_shipped("deformable")
    scenes = heldout(model.cfg)
    d = ex.data
    assert [i["name"] for i in d["inputs"]] == ["held-out scene 0", "held-out scene 1", "held-out scene 2"]
    assert "Trained" in d["label"] and "held-out" in d["label"] and "load_shipped('deformable')" in d["label"]
    for i in range(3):  # one scene at a time, not the batch the explorer ran
        x = model.attention_input(scenes.images[i : i + 1])
        pos_img, pos_map, weights = decoded_view(d, i)
        assert np.abs(weights - hand_attention(model.blocks[0], x, pos_map).numpy()).max() < 1e-4
        assert np.allclose(pos_img, model.to_image_px(torch.as_tensor(pos_map)).numpy(), atol=1e-5)
        mask = unpack(d["inputs"][i]["mask"], "uint8", (18, 18))
        assert np.array_equal(mask, scenes.masks[i].numpy().astype(np.uint8))
        for head, dep in enumerate(d["views"][i][0]["dependence"]):
            heaviest = weights[head].argmax(-1)
            assert dep["share"] == pytest.approx(float((heaviest == dep["key"]).mean()), abs=1e-9)


def test_any_model_with_any_pixel_mapping():
    """explorer_for takes a DAttention, its inputs and a map -> image mapping: here a 2x affine one."""
    m = build_model(16, 8, 2, 2, 2, 2.0, 3)
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    ex = explorer_for(m, x, [np.zeros((17, 17, 3)), np.ones((17, 17, 3))], lambda p: 2 * p + 0.5,
                      ["a", "b"], title="t", label="untrained")
    q = unpack(ex.data["queries"], "float32", (64, 2))
    assert np.allclose(q[8 * 3 + 5], [2 * 3 + 0.5, 2 * 5 + 0.5])
    pos_img, pos_map, w = decoded_view(ex.data, 1)
    assert np.allclose(pos_img, 2 * pos_map + 0.5, atol=1e-5)
    assert np.abs(w - hand_attention(m, x[1:], pos_map).numpy()).max() < 1e-4
    with pytest.raises(ValueError, match="as many input names"):
        explorer_for(m, x, [np.zeros((17, 17, 3))] * 2, lambda p: p, ["only one"])
    with pytest.raises(ValueError, match="one size"):
        explorer_for(m, x, [np.zeros((17, 17, 3)), np.zeros((9, 9, 3))], lambda p: p, ["a", "b"])


# -- the widget --------------------------------------------------------------------------------------------------
def test_update_moves_the_view_and_checks_what_it_is_given(untrained):
    fig = untrained.update(query=(3, 4), head=3)
    assert untrained.selection == dict(input=0, option=0, query=[3, 4], head=3, key=None)
    bars = [p for p in fig.axes[1].patches]
    x = features_from_image(IMAGE, 16, 10, 0)
    _, pos_map, _ = decoded_view(untrained.data, 0, 0)
    expected = hand_attention(build_model(16, 10, 4, 2, 2, 2.0, 0), x, pos_map)[3, 3 * 10 + 4].numpy()
    assert np.allclose([b.get_height() for b in bars], expected, atol=1e-4)
    assert np.allclose(untrained.weights(), expected, atol=1e-4)
    untrained.update(group=0)  # head 3 is in group 1: the group's first head
    assert untrained.selection["head"] == 0
    untrained.update(stride=4, key=5)
    assert untrained.selection["option"] == 1 and untrained.selection["key"] == 5
    before = dict(untrained.selection)
    for bad, match in ((dict(query=(10, 0)), r"query y must be a whole number in 0..9"), (dict(head=1.5), "head"),
                       (dict(head=True), "head"), (dict(stride=3), r"stride must be one of \['2', '4'\]"),
                       (dict(key=9), r"key must be a whole number in 0..8"), (dict(colour=1), "unknown"),
                       (dict(query=[1]), "two pixel indices")):
        with pytest.raises(ValueError, match=match):
            untrained.update(**bad)
        assert untrained.selection == before


def test_the_figure_joins_one_key_index_across_the_groups(untrained):
    untrained.update(option=0, query=[5, 5], head=1, key=7)
    fig = untrained.figure()
    pos, _, _ = decoded_view(untrained.data, 0, 0)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "key 7 in every group")
    assert np.allclose(np.c_[line.get_xdata(), line.get_ydata()], pos[:, 7, ::-1], atol=1e-4)
    data = untrained.explorer
    assert fig is not live_explorer_figure(data, untrained.selection)  # a new Figure every time


def test_mimebundle_has_the_live_view_a_png_and_the_payload(untrained):
    data, _ = untrained._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == untrained.model_id
    assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"
    assert data[LIVE_MIME] == {"data": untrained.data, "selection": untrained.selection}


def test_the_book_embedding_keeps_the_json_whole_and_the_script_closed(untrained):
    bundle = {"data": {**untrained.data, "title": "a </script><script>alert(1)</script> title"},
              "selection": untrained.selection}
    page = live_html(bundle, "iVBORw0KGgo=", "live-1")
    assert page.count("</script>") == 1  # only the JSON element's own end
    body = re.search(r'<script type="application/json" id="live-1">(.*?)</script>', page, re.S)[1]
    assert json.loads(body) == bundle
    assert 'data-payload="live-1"' in page and 'src="data:image/png;base64,iVBORw0KGgo="' in page
    script = book_script()
    assert script.startswith('<script type="module">') and script.count("</script>") == 1
    assert live_js() in script and "mountStatic(el)" in script


def test_a_trained_explorer_needs_a_sensible_number_of_scenes():
    with pytest.raises(ValueError, match="n_scenes"):
        trained_explorer(n_scenes=0)


def test_map_to_image_is_what_the_untrained_explorer_uses():
    img = load_image("grace_hopper")
    ex = untrained_explorer(img, size=8, channels=16, n_heads=2, n_groups=1, strides=(4,))
    q = unpack(ex.data["queries"], "float32", (64, 2))
    assert np.allclose(q, map_to_image(torch.tensor([[i, j] for i in range(8) for j in range(8)]).float(), (8, 8),
                                       img.shape[:2]).numpy())


def test_the_book_turns_a_live_output_into_its_payload_and_one_script(untrained):
    """.ci/book.py on a notebook whose output is the explorer's display: the page holds the payload as JSON (the
    same numbers), the PNG as the stand-in, and live.js once; a plain figure output is left alone."""
    import importlib.util
    from pathlib import Path

    import nbformat

    spec = importlib.util.spec_from_file_location("book", Path(__file__).resolve().parents[1] / ".ci" / "book.py")
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    data, _ = untrained._repr_mimebundle_()
    figure = {"image/png": data["image/png"], "text/plain": "<Figure>"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("explorer", outputs=[
        nbformat.v4.new_output("display_data", data=data), nbformat.v4.new_output("display_data", data=figure)])])
    outputs = book.static_page(nb).cells[0].outputs
    assert list(outputs[0].data) == ["text/html"] and outputs[1].data == figure
    page = book.offline(f"<html><body>{outputs[0].data['text/html']}</body></html>", "t")
    payload = re.search(r'<script type="application/json" id="dattn-live-1">(.*?)</script>', page, re.S)[1]
    assert json.loads(payload) == {"data": untrained.data, "selection": untrained.selection}
    assert page.count('<script type="module">') == 1 and page.index("dattn-live-host") < page.index("mountStatic(el)")
    assert f'src="data:image/png;base64,{data["image/png"]}"' in page
