"""YOLOv5 blocks and the C3_DAttention fusion: parameter counts and FLOPs against formulas written here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dattn.attention import DAttention
from dattn.yolo import C3, SPPF, Bottleneck, Bottleneck_DAttention, C3_DAttention, Concat, Conv, Detect, Proto
from dattn.yolo.summary import count_flops

torch.manual_seed(0)


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- hand-written parameter formulas --------------------------------------------------------------------------
def conv_p(c1: int, c2: int, k: int = 1, g: int = 1) -> int:
    """Conv2d without bias + BatchNorm (weight and bias)."""
    return c2 * (c1 // g) * k * k + 2 * c2


def bottleneck_p(c1: int, c2: int, k: tuple[int, int], e: float, g: int = 1) -> int:
    c_ = int(c2 * e)
    return conv_p(c1, c_, k[0]) + conv_p(c_, c2, k[1], g)


def c3_p(c1: int, c2: int, n: int, e: float = 0.5) -> int:
    c_ = int(c2 * e)
    return 2 * conv_p(c1, c_) + conv_p(2 * c_, c2) + n * bottleneck_p(c_, c_, (1, 3), 1.0)


def dattention_p(C: int, groups: int = 4, k: int = 3) -> int:
    """Offset net (depth-wise k x k + bias, LayerNorm, 1x1 to 2 without bias), 4 projections, dwc pe."""
    cg = C // groups
    offset = cg * k * k + cg + 2 * cg + 2 * cg
    projections = 4 * (C * C + C)
    pe = C * 9 + C
    return offset + projections + pe


def c3_dattention_p(c1: int, c2: int, n: int, e: float = 0.5) -> int:
    c_ = int(c2 * e)
    outer = 2 * conv_p(c1, c_) + conv_p(2 * c_, c2)
    return outer + n * (bottleneck_p(c_, c_, (1, 3), 1.0) + dattention_p(c_))


# -- parameter counts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("c1, c2, k, s, g", [(3, 64, 6, 2, 1), (64, 128, 3, 2, 1), (32, 32, 3, 1, 4), (16, 8, 1, 1, 1)])
def test_conv_params(c1, c2, k, s, g):
    assert n_params(Conv(c1, c2, k, s, g=g)) == conv_p(c1, c2, k, g)


def test_conv_same_padding_and_stride():
    x = torch.randn(1, 8, 17, 20)
    assert Conv(8, 4, 3, 1)(x).shape == (1, 4, 17, 20)
    assert Conv(8, 4, 3, 2)(x).shape == (1, 4, 9, 10)
    assert Conv(3, 4, 6, 2, 2)(torch.randn(1, 3, 64, 64)).shape == (1, 4, 32, 32)  # YOLOv5's stem


def test_convs_share_one_activation():
    assert Conv(4, 4).act is Conv(8, 8).act


@pytest.mark.parametrize("k", [(1, 3), (3, 3), (1, 1)])
def test_bottleneck_k_argument(k):
    assert n_params(Bottleneck(32, 32, k=k, e=0.5)) == bottleneck_p(32, 32, k, 0.5)


def test_bottleneck_shortcut():
    b = Bottleneck(8, 8, shortcut=True).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        assert torch.allclose(b(x), x + b.cv2(b.cv1(x)))
    assert not Bottleneck(8, 16, shortcut=True).add  # channels differ: no residual


@pytest.mark.parametrize("c1, c2, n", [(128, 128, 3), (1024, 512, 3), (64, 32, 1)])
def test_c3_params(c1, c2, n):
    assert n_params(C3(c1, c2, n)) == c3_p(c1, c2, n)


@pytest.mark.parametrize("c1, c2, k", [(1024, 1024, 5), (64, 48, 3)])
def test_sppf_params_and_shape(c1, c2, k):
    m = SPPF(c1, c2, k)
    assert n_params(m) == conv_p(c1, c1 // 2) + conv_p(4 * (c1 // 2), c2)
    if c1 == 64:
        assert m(torch.randn(1, c1, 7, 9)).shape == (1, c2, 7, 9)


def test_concat():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    assert Concat(1)([a, b]).shape == (2, 8, 4, 4)


def test_dattention_params_formula():
    assert n_params(DAttention(512, [20, 20])) == dattention_p(512)
    assert dattention_p(512) == 1_057_536  # the number the seed's module has


def test_c3_dattention_params_seed_layer8():
    m = C3_DAttention(1024, 1024, n=3, fmapsize=[20, 20])
    c_ = 512
    outer = 2 * conv_p(1024, c_) + conv_p(2 * c_, 1024)
    inner = bottleneck_p(c_, c_, (1, 3), 1.0) + dattention_p(c_)
    assert outer == 2_101_248 and inner == 3_681_024
    assert n_params(m) == outer + 3 * inner == c3_dattention_p(1024, 1024, 3) == 13_144_320
    assert all(isinstance(b, Bottleneck_DAttention) for b in m.m) and len(m.m) == 3
    assert not any(b.add for b in m.m)  # the seed's default: no shortcut


def test_c3_dattention_forward_any_size():
    m = C3_DAttention(64, 64, n=2, fmapsize=[4, 4]).eval()
    with torch.no_grad():
        for hw in [(4, 4), (1, 1), (3, 7)]:
            assert m(torch.randn(2, 64, *hw)).shape == (2, 64, *hw)


def test_bottleneck_dattention_needs_fmapsize():
    with pytest.raises(ValueError, match="fmapsize"):
        Bottleneck_DAttention(32, 32, None)


def test_fixed_pe_through_attn_kwargs():
    kw = {"dwc_pe": False, "fixed_pe": True}
    m = C3_DAttention(64, 64, n=1, fmapsize=[3, 3], attn_kwargs=kw).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 64, 3, 3)).shape == (1, 64, 3, 3)
        with pytest.raises(ValueError, match="3x3"):
            m(torch.randn(1, 64, 4, 4))


def test_detect_and_proto_params():
    ch, nc, na = (16, 32, 64), 5, 3
    anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
    no = nc + 5
    assert n_params(Detect(nc, anchors, ch)) == sum(c * no * na + no * na for c in ch)
    assert n_params(Proto(16, 24, 8)) == conv_p(16, 24, 3) + conv_p(24, 24, 3) + conv_p(24, 8, 1)


# -- FLOPs against formulas (2 FLOPs per multiply-add; convolutions and matmuls only) ----------------------
def conv_flops(cin: int, cout: int, k: int, ho: int, wo: int, g: int = 1, b: int = 1) -> int:
    return 2 * (cin // g) * k * k * cout * ho * wo * b


@pytest.mark.parametrize("c1, c2, k, s, g, hw", [(8, 16, 3, 2, 1, 32), (3, 64, 6, 2, 1, 64), (16, 16, 3, 1, 4, 10)])
def test_conv_flops(c1, c2, k, s, g, hw):
    ho = (hw + 2 * (k // 2) - k) // s + 1
    assert count_flops(Conv(c1, c2, k, s, g=g), hw, ch=c1) == conv_flops(c1, c2, k, ho, ho, g)


def dattention_flops(B: int, C: int, H: int, W: int, heads: int = 8, groups: int = 4) -> int:
    """DAttention, stride 1, ksize 3, dwc_pe: Ns = H*W sampled keys."""
    HW, Ns, d, cg = H * W, H * W, C // heads, C // groups
    proj_q = conv_flops(C, C, 1, H, W, b=B)
    offset = conv_flops(cg, cg, 3, H, W, g=cg, b=B * groups) + conv_flops(cg, 2, 1, H, W, b=B * groups)
    proj_kv = 2 * 2 * B * C * C * Ns  # 1x1 convs on the (B, C, 1, Ns) sampled keys
    attention = 2 * (2 * B * heads * HW * Ns * d)  # q k^T, then attn v
    pe = conv_flops(C, C, 3, H, W, g=C, b=B)
    proj_out = conv_flops(C, C, 1, H, W, b=B)
    return proj_q + offset + proj_kv + attention + pe + proj_out


@pytest.mark.parametrize("B, C, H, W", [(1, 64, 8, 8), (2, 128, 5, 7), (1, 32, 1, 1)])
def test_dattention_flops(B, C, H, W):
    m = DAttention(C, [H, W])
    counted = count_flops(m, (H, W), batch=B, ch=C)
    assert counted == dattention_flops(B, C, H, W)


def test_attention_flops_grow_with_square_of_pixels():
    m = DAttention(64, [8, 8])
    small, big = count_flops(m, 8, ch=64), count_flops(m, 16, ch=64)  # 4x the pixels
    assert big > 4 * small
    attention = lambda hw: 4 * 64 * (hw * hw) ** 2  # noqa: E731
    assert big - 4 * small == attention(16) - 4 * attention(8)
