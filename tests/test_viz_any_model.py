"""dattn.viz.any_model: DAttention found and traced inside any model (dattn.yolo, a module with the official DAT
layout), positions mapped from feature maps to input pixels, keys drawn on the input image."""

import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from dattn import DAttention  # noqa: E402
from dattn.viz import any_model as am  # noqa: E402
from dattn.yolo import build_model, scale_cfg  # noqa: E402


def seed_yolo(depth: float = 0.33) -> nn.Module:
    """The seed's yaml at width n (q_size 8 x 8: a 256 input), eval mode."""
    cfg = scale_cfg("yolov5_C3_DAttention.yaml", "n")
    cfg["depth_multiple"] = depth
    cfg["backbone"][8][3] = [1024, [8, 8]]
    torch.manual_seed(0)
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def yolo():
    return seed_yolo()


def own_outputs(model, names):
    """The modules' outputs, recorded by the test's own hooks."""
    got = {}
    handles = [dict(model.named_modules())[n].register_forward_hook(
        lambda m, a, o, n=n: got.__setitem__(n, o)) for n in names]
    return got, handles


def test_finds_every_dattention_of_a_yolo_model():
    assert list(am.find_dattention(seed_yolo())) == ["model.8.m.0.attention"]
    two = seed_yolo(depth=0.67)  # 3 x 0.67 -> 2 bottlenecks in C3_DAttention
    assert list(am.find_dattention(two)) == ["model.8.m.0.attention", "model.8.m.1.attention"]


def test_traces_are_of_the_forward_that_ran(yolo):
    x = torch.rand(2, 3, 256, 320)
    name = "model.8.m.0.attention"
    got, handles = own_outputs(yolo, [name])
    try:
        recs = am.record_traces(yolo, x)
    finally:
        for h in handles:
            h.remove()
    rec = recs[name]
    assert (rec.trace.H, rec.trace.W) == (8, 10) and rec.image_hw == (256, 320) and rec.stride == (32, 32)
    assert not rec.twin
    torch.testing.assert_close(rec.trace.output, got[name], rtol=1e-4, atol=1e-4)
    assert rec.trace.positions_px.shape == (2, 4, 8, 10, 2)  # 4 groups, stride 1: an 8 x 10 key grid each
    assert not yolo._forward_hooks and not dict(yolo.named_modules())[name]._forward_hooks  # hooks removed


def test_the_hook_refuses_a_trace_that_is_not_the_forward(yolo):
    model = copy.deepcopy(yolo).train()  # train mode: BatchNorm uses batch statistics, dropout is 0: still equal
    am.record_traces(model, torch.rand(2, 3, 64, 64))
    attn = dict(model.named_modules())["model.8.m.0.attention"]
    attn.attn_drop.p = 0.5  # dropout in train mode: the trace cannot reproduce the output
    with pytest.raises(RuntimeError, match="trace's output differs"):
        am.record_traces(model, torch.rand(2, 3, 64, 64))


def test_map_to_input_by_hand():
    # a 8 x 8 map of a 256 x 256 image: stride 32, cell i covers pixels 32 i .. 32 i + 31, centre 32 i + 15.5
    pts = torch.tensor([[0.0, 0.0], [7.0, 7.0], [-0.5, 3.0], [2.25, 7.5]])
    want = torch.tensor([[15.5, 15.5], [239.5, 239.5], [-0.5, 111.5], [87.5, 255.5]])
    torch.testing.assert_close(am.map_to_input(pts, (8, 8), (256, 256)), want)
    torch.testing.assert_close(am.input_to_map(want, (8, 8), (256, 256)), pts)
    # other strides per axis: a 9 x 5 map of a 288 x 80 image (32 and 16)
    torch.testing.assert_close(am.map_to_input(torch.tensor([1.0, 1.0]), (9, 5), (288, 80)),
                               torch.tensor([32 + 15.5, 16 + 7.5]))


def test_receptive_field_centre_is_the_conv_arithmetic_of_yolov5(yolo):
    # layer 0 is a 6x6 conv, stride 2, padding 2: output i is centred on input 2i - 2 + 2.5 = 2i + 0.5; layers
    # 1, 3, 5, 7 are 3x3 convs, stride 2, padding 1: output i is centred on input 2i; everything else up to the
    # attention's input is stride 1 and symmetric. So P5 cell i is centred on image pixel 32 i + 0.5.
    attn = dict(yolo.named_modules())["model.8.m.0.attention"]
    assert am.receptive_field_centre(yolo, attn, (576, 576), (9, 8)) == (32 * 9 + 0.5, 32 * 8 + 0.5)
    with pytest.raises(ValueError, match="reaches the image border"):
        am.receptive_field_centre(yolo, attn, (256, 256), (4, 4))


def test_queries_on_mask_by_hand(yolo):
    rec = am.record_traces(yolo, torch.rand(1, 3, 256, 256))["model.8.m.0.attention"]
    mask = np.zeros((256, 256), bool)
    mask[40:100, 60:130] = True  # centres 47.5 and 79.5 (rounded to 48, 80) on rows; 79.5, 111.5 on columns
    on, off = am.queries_on_mask(rec, mask)
    assert on == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert len(off) == 64 - 4 and (0, 0) in off


def test_plot_keys_draws_the_traced_keys_on_the_image(yolo):
    model = copy.deepcopy(yolo)
    attn = dict(model.named_modules())["model.8.m.0.attention"]
    with torch.no_grad():
        attn.conv_offset[-1].weight.mul_(50)  # large offsets: some keys leave the map
    image = torch.rand(3, 256, 256)
    rec = am.record_traces(model, image[None])["model.8.m.0.attention"]
    pos = rec.trace.positions_px[0, 1]  # head 2's group (8 heads in 4 groups)
    off = ((pos < -0.5) | (pos > 7.5)).any(-1).sum().item()
    assert off > 0
    fig = am.plot_keys(image, rec, head=2, query=(3, 4))
    ax = fig.axes[0]
    img = next(a for a in ax.images if a.get_gid() == "input image")
    assert img.get_extent() == [-0.5, 7.5, 7.5, -0.5]  # the image spans the map's cells
    shown = next(c for c in ax.collections if c.get_gid() == "attention").get_offsets()
    want = pos.reshape(-1, 2).flip(-1).numpy()  # (x, y) in map pixels, drawn in some order
    assert sorted(map(tuple, np.round(shown, 4))) == sorted(map(tuple, np.round(want, 4)))
    circled = next(c for c in ax.collections if c.get_gid() == "off image")
    assert len(circled.get_offsets()) == off
    x0, x1 = ax.get_xlim()
    assert x0 <= pos[..., 1].min() and x1 >= pos[..., 1].max()  # nothing cropped
    plt.close(fig)
    fig = am.plot_keys(image, rec, head=2)  # offsets of the group
    assert any(c.get_gid() == "offsets" for c in fig.axes[0].collections)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"head \(8\) must be an int in 0\.\.7"):
        am.plot_keys(image, rec, head=8)
    with pytest.raises(ValueError, match="the image is 128x128"):
        am.plot_keys(torch.rand(3, 128, 128), rec, head=0)


def test_errors(yolo):
    with pytest.raises(ValueError, match="contains no DAttention"):
        am.record_traces(nn.Conv2d(3, 3, 1), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"no DAttention module named \['model.9'\]"):
        am.record_traces(yolo, torch.rand(1, 3, 64, 64), names=["model.9"])


# -- a module with the official DAT layout (LeapLabTHU/DAT, models/dat_blocks.py, DAttentionBaseline) -------
class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of (B, C, H, W); the official code's proxy keeps it in ``norm``."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class OfficialLayoutDAttention(nn.Module):
    """The official constructor and parameter names; the forward written here from the paper's steps, with the
    depth-wise position encoding, returning (y, positions, reference) as the official module does."""

    def __init__(self, q_size, kv_size, n_heads, n_head_channels, n_groups, attn_drop, proj_drop, stride,
                 offset_range_factor, use_pe, dwc_pe, no_off, fixed_pe, ksize, log_cpb):
        super().__init__()
        assert use_pe and dwc_pe and not (no_off or fixed_pe or log_cpb), "this double has the dwc encoding only"
        self.q_h, self.q_w = q_size
        self.n_heads, self.n_head_channels, self.n_groups = n_heads, n_head_channels, n_groups
        self.nc = n_heads * n_head_channels
        self.n_group_channels = self.nc // n_groups
        self.stride, self.ksize, self.offset_range_factor = stride, ksize, offset_range_factor
        self.use_pe, self.dwc_pe, self.no_off, self.fixed_pe, self.log_cpb = use_pe, dwc_pe, no_off, fixed_pe, log_cpb
        cg = self.n_group_channels
        self.conv_offset = nn.Sequential(nn.Conv2d(cg, cg, ksize, stride, ksize // 2, groups=cg), ChannelLayerNorm(cg),
                                         nn.GELU(), nn.Conv2d(cg, 2, 1, 1, 0, bias=False))
        self.proj_q, self.proj_k, self.proj_v, self.proj_out = (nn.Conv2d(self.nc, self.nc, 1) for _ in range(4))
        self.rpe_table = nn.Conv2d(self.nc, self.nc, 3, 1, 1, groups=self.nc)

    def forward(self, x):
        B, C, H, W = x.shape
        g, cg, h, c = self.n_groups, self.n_group_channels, self.n_heads, self.n_head_channels
        q = self.proj_q(x)
        raw = self.conv_offset(q.reshape(B * g, cg, H, W))  # (B*g, 2, Hk, Wk)
        Hk, Wk = raw.shape[-2:]
        bound = torch.tensor([1 / (Hk - 1), 1 / (Wk - 1)]).view(1, 2, 1, 1) * self.offset_range_factor
        offset = (raw.tanh() * bound).permute(0, 2, 3, 1)  # (B*g, Hk, Wk, 2) as (dy, dx)
        ys = (torch.arange(Hk) + 0.5) / (Hk - 1) * 2 - 1  # half a cell past each key row, as the paper's code
        xs = (torch.arange(Wk) + 0.5) / (Wk - 1) * 2 - 1
        ref = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1)  # (Hk, Wk, 2)
        pos = ref + offset
        keys = F.grid_sample(x.reshape(B * g, cg, H, W), pos.flip(-1), mode="bilinear", align_corners=True)
        keys = keys.reshape(B, C, 1, Hk * Wk)
        k = self.proj_k(keys).reshape(B * h, c, -1)
        v = self.proj_v(keys).reshape(B * h, c, -1)
        w = torch.softmax(torch.einsum("bcm,bcn->bmn", q.reshape(B * h, c, H * W), k) * c**-0.5, dim=2)
        out = torch.einsum("bmn,bcn->bcm", w, v) + self.rpe_table(q).reshape(B * h, c, H * W)
        y = self.proj_out(out.reshape(B, C, H, W))
        return y, pos.reshape(B, g, Hk, Wk, 2), ref.expand(B * g, -1, -1, -1).reshape(B, g, Hk, Wk, 2)


class DATStage(nn.Module):
    """A 4x patch stem and the official-layout attention (used as DAT's stages use it: ``y, pos, ref = attn(x)``)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 4, 4)
        self.attn = OfficialLayoutDAttention((12, 16), (12, 16), 4, 8, 2, 0.0, 0.0, 2, 3.0, True, True, False, False,
                                             3, False)
        self.positions = None

    def forward(self, x):
        y, pos, _ = self.attn(self.stem(x))
        self.positions = pos
        return y


def test_official_layout_is_found_and_traced_through_a_twin():
    torch.manual_seed(3)
    model = DATStage().eval()
    with torch.no_grad():
        model.attn.conv_offset[-1].weight.mul_(20)  # offsets well away from zero
    assert list(am.find_dattention(model)) == ["attn"]
    twin = am.twin_of(model.attn)
    assert isinstance(twin, DAttention) and twin.channel == 32 and twin.stride == 2 and twin.n_groups == 2
    x = torch.rand(2, 3, 48, 64)
    rec = am.record_traces(model, x)["attn"]  # the hook checks that the twin's output is the module's
    assert rec.twin and rec.stride == (4, 4) and (rec.trace.Hk, rec.trace.Wk) == (6, 8)
    torch.testing.assert_close(rec.trace.positions, model.positions)  # the official module's own positions
    with torch.no_grad():
        torch.testing.assert_close(rec.trace.output, model.attn(model.stem(x))[0], rtol=1e-5, atol=1e-5)


def test_weight_on_mask_against_a_loop(yolo):
    model = copy.deepcopy(yolo)
    attn = dict(model.named_modules())["model.8.m.0.attention"]
    with torch.no_grad():
        attn.conv_offset[-1].weight.mul_(30)  # keys spread, some off the image
        attn.proj_q.weight.mul_(4)  # weights far from uniform
    rec = am.record_traces(model, torch.rand(2, 3, 128, 128))["model.8.m.0.attention"]
    tr = rec.trace
    masks = torch.zeros(2, 128, 128, dtype=torch.bool)
    masks[0, 10:70, 20:90] = True
    masks[1, 60:128, 0:50] = True
    got = am.weight_on_mask(rec, masks)
    s = 32.0
    obj_sum, obj_n, bg_sum, bg_n = np.zeros(8), np.zeros(8), np.zeros(8), np.zeros(8)
    uni_obj = np.zeros(8)
    for b in range(2):
        for h in range(8):
            g = h // 2
            keys = tr.positions_px[b, g].reshape(-1, 2)
            on = []
            for y, x in keys.tolist():
                py, px = round(s * (y + 0.5) - 0.5), round(s * (x + 0.5) - 0.5)
                on.append(0 <= py < 128 and 0 <= px < 128 and bool(masks[b, py, px]))
            on = torch.tensor(on, dtype=torch.float32)
            for qy in range(4):
                for qx in range(4):
                    share = float(tr.attn[b, h, qy * 4 + qx] @ on)
                    assert got["per_query"][b, h, qy * 4 + qx].item() == pytest.approx(share, abs=1e-6)
                    cy, cx = round(s * qy + 15.5), round(s * qx + 15.5)  # the cell's centre pixel
                    if masks[b, cy, cx]:
                        obj_sum[h] += share
                        obj_n[h] += 1
                        uni_obj[h] += float(on.mean())
                    else:
                        bg_sum[h] += share
                        bg_n[h] += 1
    np.testing.assert_allclose(got["object"], obj_sum / obj_n, atol=1e-6)
    np.testing.assert_allclose(got["background"], bg_sum / bg_n, atol=1e-6)
    np.testing.assert_allclose(got["uniform_object"], uni_obj / obj_n, atol=1e-6)
    assert got["object_queries"] == obj_n[0] and got["background_queries"] == bg_n[0]
    with pytest.raises(ValueError, match=r"expected masks of shape \(2, 128, 128\)"):
        am.weight_on_mask(rec, masks[:1])


def test_plot_keys_legend_names_off_image_keys_once_and_says_what_they_read(yolo):
    model = copy.deepcopy(yolo)
    attn = dict(model.named_modules())["model.8.m.0.attention"]
    with torch.no_grad():
        attn.conv_offset[-1].weight.mul_(50)  # large offsets: some keys leave the map
    image = torch.rand(3, 256, 256)
    rec = am.record_traces(model, image[None])["model.8.m.0.attention"]
    fig = am.plot_keys(image, rec, head=2, query=(3, 4))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sum("off the" in lab for lab in labels) == 1, labels  # the two rings mark the same keys: one entry
    plt.close(fig)
    # what the label claims, by grid_sample itself (align_corners=True, zero padding) on an 8-pixel row of ones:
    # a key 0.7 map pixel past the last cell centre (off the image: the image ends 0.5 past it) still reads 0.3
    # of that cell, a key one whole map pixel past it reads only zeros
    row = torch.ones(1, 1, 1, 8)
    x_px = torch.tensor([7.7, 8.0, 8.3])
    grid = torch.stack((x_px / 7 * 2 - 1, torch.zeros(3)), -1).view(1, 1, 3, 2)
    read = F.grid_sample(row, grid, align_corners=True, padding_mode="zeros").flatten()
    assert torch.allclose(read, torch.tensor([0.3, 0.0, 0.0]), atol=1e-5)
