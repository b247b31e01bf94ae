"""What stock YOLOv5 prints: dattn's copy of thop's rules against thop itself, and what thop cannot see."""

from __future__ import annotations

import copy

import pytest
import thop
import torch
from torch import nn

from dattn import DAttention
from dattn.yolo import build_model, count_flops, make_divisible
from dattn.yolo.stock import thop_macs, unseen_by_thop, yolov5_gflops, yolov5_summary_line
from dattn.yolo.summary import stock_profile_gflops

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def real_thop(model: nn.Module, x: torch.Tensor, **kwargs) -> float:
    return thop.profile(copy.deepcopy(model), inputs=(x,), verbose=False, **kwargs)[0]


class Zoo(nn.Module):
    """Every kind of rule thop has that a vision model meets, a shared module, and a functional product."""

    def __init__(self) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.1)
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, groups=1, bias=True), nn.BatchNorm2d(8), act)
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.InstanceNorm2d(8), act, nn.PReLU())
        self.pool = nn.ModuleList([nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(3), nn.MaxPool2d(2)])
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 5)
        self.soft = nn.Softmax(dim=-1)
        self.t = nn.ConvTranspose2d(8, 4, 2, stride=2)

    def forward(self, x):
        x = self.b(self.a(x))  # the shared LeakyReLU is called twice
        y = self.up(self.pool[0](x)) + self.pool[2](self.t(x)).repeat(1, 2, 1, 1)
        z = self.pool[1](y).mean((2, 3))  # (B, 8)
        z = z + (z @ self.fc.weight.T).sum(-1, keepdim=True)  # a product thop cannot see
        return self.soft(self.fc(self.ln(z)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: build_model("yolov5n.yaml"),
        lambda: build_model("yolov5_C3_DAttention.yaml", scale="n"),
        lambda: build_model("yolov5_C3_DAttention_seg.yaml", scale="n"),
        lambda: DAttention(32, (4, 4), n_heads=4, n_groups=2, stride=2),
        lambda: DAttention(32, (4, 4), n_heads=4, n_groups=2, no_off=True),
        lambda: DAttention(32, (4, 4), n_heads=4, n_groups=2, dwc_pe=False, log_cpb=True),
        Zoo,
    ],
    ids=["yolov5n", "seed_n", "seed_seg_n", "dattn_stride2", "dattn_no_off", "dattn_log_cpb", "zoo"],
)
def test_thop_rules_equal_thop(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(2, 32, 4, 4) if isinstance(model, DAttention) else torch.randn(2, 3, 64, 64)
    assert thop_macs(copy.deepcopy(model), x) == real_thop(model, x)


def test_yolov5_gflops_is_thop_at_the_stride_probe_scaled():
    """model_info's formula, with real thop: 2 x MACs of one 32x32 image / 1e9, x (H/32) (W/32)."""
    model = build_model("yolov5_C3_DAttention.yaml", scale="n")
    at_probe = real_thop(model, torch.zeros(1, 3, 32, 32)) * 2 / 1e9
    assert yolov5_gflops(model, 640) == pytest.approx(at_probe * 20 * 20, rel=1e-12)
    assert yolov5_gflops(model, (320, 256)) == pytest.approx(at_probe * 10 * 8, rel=1e-12)
    assert stock_profile_gflops(model, 640) == yolov5_gflops(model, 640)
    line = yolov5_summary_line(model, 640)
    n_p = sum(p.numel() for p in model.parameters())
    assert line == (
        f"YOLOv5_C3_DAttention summary: {len(list(model.modules()))} layers, {n_p} parameters, {n_p} gradients, "
        f"{at_probe * 400:.1f} GFLOPs"
    )


def test_stock_line_has_no_gflops_where_the_profile_raises():
    class Fails(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            if x.shape[-1] == 1:  # the seed's 1.0 / (Hk - 1.0) on the probe's 1x1 P5 map
                raise ZeroDivisionError("float division by zero")
            return self.inner(x)

    model = build_model("yolov5_C3_DAttention.yaml", scale="n")
    for b in model.model[8].m:
        b.attention = Fails(b.attention)
    assert stock_profile_gflops(model, 640) is None
    assert yolov5_summary_line(model).endswith(" gradients")


def test_thop_does_not_see_the_attention_products():
    """q·k and weights·v: 4·C·HW·Ns FLOPs per DAttention (here stride 1, Ns = HW), all unseen; with the
    convolutions and linears thop does see (2 x its MACs, other rules off), they add up to torch's count."""
    model = build_model("yolov5_C3_DAttention.yaml", scale="n")
    base = build_model("yolov5n.yaml")
    c = make_divisible(1024 * 0.25) // 2  # the attention's channels at scale n
    for img in (640, (320, 256)):
        h, w = (img, img) if isinstance(img, int) else img
        hw = (h // 32) * (w // 32)
        unseen = unseen_by_thop(model, img)
        assert unseen["attention"] == 4 * c * hw * hw  # one bottleneck at scale n
        assert unseen["total"] == unseen["attention"] + unseen["other"]
        zero = {t: (lambda m, x, y: None) for t in (nn.BatchNorm2d, nn.LayerNorm, nn.Upsample, nn.GroupNorm)}
        seen = 2 * real_thop(model, torch.zeros(1, 3, h, w), custom_ops=zero)
        assert unseen["total"] + seen == count_flops(model, img)
        assert unseen_by_thop(base, img)["total"] == 0  # stock YOLOv5 runs every product in a module


def test_bad_sizes_are_rejected():
    model = build_model("yolov5n.yaml")
    for bad in ("64", 0, -32, (64,), (64, 64, 3), 64.0, True, None, [64, "64"]):
        with pytest.raises(ValueError, match="image size"):
            count_flops(model, bad)
    with pytest.raises(ValueError, match="multiple of the model's largest stride 32"):
        count_flops(model, (64, 100))
    with pytest.raises(ValueError, match="image size"):
        stock_profile_gflops(model, "640")
