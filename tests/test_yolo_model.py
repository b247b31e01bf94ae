"""YOLOv5 models from yaml: the seed's table, parse_model's rules, forward shapes, FLOPs, the CLI."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from dattn.yolo import (
    SCALES,
    C3_DAttention,
    Detect,
    DetectionModel,
    Segment,
    SegmentationModel,
    build_model,
    load_cfg,
    make_divisible,
    parse_model,
    scale_cfg,
    shipped_configs,
    summary,
)
from dattn.yolo.summary import count_flops, format_table, gflops, scaling_table, stock_profile_gflops

torch.manual_seed(0)


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]

# The table printed in the seed post (an external fact): index, from, n, params, module, arguments.
SEED_TABLE = [
    (0, "-1", 1, 7040, "Conv", "[3, 64, 6, 2, 2]"),
    (1, "-1", 1, 73984, "Conv", "[64, 128, 3, 2]"),
    (2, "-1", 3, 156928, "C3", "[128, 128, 3]"),
    (3, "-1", 1, 295424, "Conv", "[128, 256, 3, 2]"),
    (4, "-1", 6, 1118208, "C3", "[256, 256, 6]"),
    (5, "-1", 1, 1180672, "Conv", "[256, 512, 3, 2]"),
    (6, "-1", 9, 6433792, "C3", "[512, 512, 9]"),
    (7, "-1", 1, 4720640, "Conv", "[512, 1024, 3, 2]"),
    (8, "-1", 3, 13144320, "C3_DAttention", "[1024, 1024, 3, [20, 20]]"),
    (9, "-1", 1, 2624512, "SPPF", "[1024, 1024, 5]"),
    (10, "-1", 1, 525312, "Conv", "[1024, 512, 1, 1]"),
    (11, "-1", 1, 0, "Upsample", "[None, 2, 'nearest']"),
    (12, "[-1, 6]", 1, 0, "Concat", "[1]"),
    (13, "-1", 3, 2757632, "C3", "[1024, 512, 3, False]"),
    (14, "-1", 1, 131584, "Conv", "[512, 256, 1, 1]"),
    (15, "-1", 1, 0, "Upsample", "[None, 2, 'nearest']"),
    (16, "[-1, 4]", 1, 0, "Concat", "[1]"),
    (17, "-1", 3, 690688, "C3", "[512, 256, 3, False]"),
    (18, "-1", 1, 590336, "Conv", "[256, 256, 3, 2]"),
    (19, "[-1, 14]", 1, 0, "Concat", "[1]"),
    (20, "-1", 3, 2495488, "C3", "[512, 512, 3, False]"),
    (21, "-1", 1, 2360320, "Conv", "[512, 512, 3, 2]"),
    (22, "[-1, 10]", 1, 0, "Concat", "[1]"),
    (23, "-1", 3, 9971712, "C3", "[1024, 1024, 3, False]"),
    (
        24,
        "[17, 20, 23]",
        1,
        457725,
        "Detect",
        "[80, [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]], [256, 512, 1024]]",
    ),
]
SEED_SUMMARY = "YOLOv5_C3_DAttention summary: 410 layers, 49736317 parameters, 49736317 gradients"


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def seed_l() -> DetectionModel:
    return build_model("yolov5_C3_DAttention.yaml")


@pytest.fixture(scope="module")
def stock_l() -> DetectionModel:
    return build_model("yolov5l.yaml")


@pytest.fixture(scope="module")
def base_n() -> DetectionModel:
    return build_model("yolov5n.yaml")


@pytest.fixture(scope="module")
def seed_n() -> DetectionModel:
    return build_model("yolov5_C3_DAttention.yaml", scale="n")


@pytest.fixture(scope="module")
def seg_n() -> SegmentationModel:
    return build_model("yolov5_C3_DAttention_seg.yaml", scale="n")


# -- the seed's table --------------------------------------------------------------------------------------
def test_seed_table_columns(seed_l):
    layers = list(seed_l.model)
    assert len(layers) == len(SEED_TABLE)
    assert [m.i for m in layers] == [r[0] for r in SEED_TABLE]
    assert [str(m.f) for m in layers] == [r[1] for r in SEED_TABLE]
    assert [m.n for m in layers] == [r[2] for r in SEED_TABLE]
    assert [m.np for m in layers] == [r[3] for r in SEED_TABLE]
    assert [m.type.rsplit(".", 1)[-1] for m in layers] == [r[4] for r in SEED_TABLE]
    assert [str(m.args) for m in layers] == [r[5] for r in SEED_TABLE]


def test_seed_summary_text(seed_l):
    text = summary(seed_l, img=None)
    lines = text.splitlines()
    assert lines[0].split() == ["from", "n", "params", "module", "arguments"]
    for row, (i, f, n, p, module, args) in zip(lines[1:-1], SEED_TABLE, strict=True):
        # YOLOv5's fixed-width columns: index 3, from 18, n 3, params 10, 2 spaces, module 40, arguments
        cols = [row[:3], row[3:21], row[21:24], row[24:34], row[36:76], row[76:]]
        assert [c.strip() for c in cols[:4]] == [str(i), f, str(n), str(p)]
        assert cols[4].strip().endswith("." + module) and cols[5].strip() == args
    assert lines[-1] == SEED_SUMMARY
    assert isinstance(seed_l.model[8], C3_DAttention)


def test_stock_yolov5l(stock_l):
    assert summary(stock_l, img=None).splitlines()[-1] == (
        "YOLOv5l summary: 368 layers, 46563709 parameters, 46563709 gradients"
    )


def test_seed_and_stock_differ_by_three_attentions(seed_l, stock_l):
    attn = seed_l.model[8].m[0].attention
    assert n_params(seed_l) - n_params(stock_l) == 3 * n_params(attn)
    assert len(list(seed_l.modules())) - len(list(stock_l.modules())) == 3 * len(list(attn.modules()))


def test_segmentation_head_params(seg_n, seed_n):
    no_seg, no_det, na = 80 + 5 + 32, 85, 3
    ch = (64, 128, 256)  # P3, P4, P5 widths at scale n
    npr = 64  # 256 prototype channels x width 0.25
    head = lambda no: sum(c * no * na + no * na for c in ch)  # noqa: E731
    proto = (ch[0] * npr * 9 + 2 * npr) + (npr * npr * 9 + 2 * npr) + (npr * 32 + 2 * 32)
    assert isinstance(seg_n, SegmentationModel) and isinstance(seg_n.model[-1], Segment)
    assert seg_n.model[-1].args[3] == npr
    assert n_params(seg_n) - n_params(seed_n) == head(no_seg) + proto - head(no_det)


# -- parse_model rules on small configs --------------------------------------------------------------------
def tiny_cfg(gd: float = 1.0, gw: float = 1.0, nc: int = 80) -> dict:
    return {
        "nc": nc,
        "depth_multiple": gd,
        "width_multiple": gw,
        "anchors": ANCHORS,
        "backbone": [
            [-1, 1, "Conv", [64, 3, 2]],  # 0 P1/2
            [-1, 1, "Conv", [20, 3, 2]],  # 1 P2/4
            [-1, 9, "C3", [40]],  # 2
            [-1, 1, "Conv", [64, 3, 2]],  # 3 P3/8
            [-1, 1, "Conv", [128, 3, 2]],  # 4 P4/16
            [-1, 1, "Conv", [256, 3, 2]],  # 5 P5/32
            [-1, 3, "C3_DAttention", [256, [2, 2]]],  # 6
            [-1, 1, "Conv", [255, 1, 1]],  # 7 width == Detect output: not scaled
        ],
        "head": [
            [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],  # 8 P4
            [[-1, 4], 1, "Concat", [1]],  # 9
            [[3, 9, 6], 1, "Detect", ["nc", "anchors"]],  # 10
        ],
    }


def test_parse_rules_depth_width():
    gd, gw = 0.33, 0.25
    layers, save = parse_model(tiny_cfg(gd, gw))
    c = lambda x: -(-x * gw // 8) * 8  # noqa: E731  smallest multiple of 8 >= x * gw
    assert [m.args for m in layers[:2]] == [[3, c(64), 3, 2], [c(64), c(20), 3, 2]]
    assert c(20) == 8 and make_divisible(20 * gw) == 8
    # C3: repeats scaled (9 * 0.33 = 2.97 -> 3) and moved into the args, built once
    assert layers[2].n == round(9 * gd) == 3 and layers[2].args == [c(20), c(40), 3]
    assert isinstance(layers[2], nn.Module) and not isinstance(layers[2], nn.Sequential)
    assert len(layers[2].m) == 3
    # C3_DAttention: 3 * 0.33 = 0.99 -> 1, inserted the same way
    assert layers[6].args == [c(256), c(256), 1, [2, 2]] and len(layers[6].m) == 1
    assert layers[7].args == [c(256), 255, 1, 1]  # 255 = 3 * (80 + 5) is left as is
    assert layers[8].args == [None, 2, "nearest"] and isinstance(layers[8], nn.Upsample)
    assert layers[9].args == [1]
    det = layers[10]
    assert isinstance(det, Detect) and det.args[2] == [c(64), 255 + c(128), c(256)]  # Concat sums channels
    assert save == [3, 4, 6, 9]


def test_parse_rules_repeat_of_one_is_never_scaled():
    layers, _ = parse_model(tiny_cfg(gd=2.0))
    assert layers[0].n == 1 and layers[2].n == 18 and layers[6].args[2] == 6


def test_plain_modules_repeat_as_sequential():
    cfg = tiny_cfg()
    cfg["backbone"][0] = [-1, 2, "Conv", [64, 3, 2]]
    layers, _ = parse_model(cfg)
    assert isinstance(layers[0], nn.Sequential) and len(layers[0]) == 2


def test_unknown_module_is_named():
    cfg = tiny_cfg()
    cfg["backbone"][1] = [-1, 1, "C2f", [32]]
    with pytest.raises(ValueError, match="C2f"):
        parse_model(cfg)


def test_shipped_scales_match_the_table():
    names = shipped_configs()
    for s, (gd, gw) in SCALES.items():
        assert f"yolov5{s}.yaml" in names
        d = load_cfg(f"yolov5{s}.yaml")
        assert (d["depth_multiple"], d["width_multiple"]) == (gd, gw)
    base_l = load_cfg("yolov5l.yaml")
    seed = load_cfg("yolov5_C3_DAttention.yaml")
    diff = [i for i, (a, b) in enumerate(zip(base_l["backbone"], seed["backbone"], strict=True)) if a != b]
    assert diff == [8] and seed["head"] == base_l["head"]


def test_scale_any_yaml(base_n):
    assert n_params(DetectionModel("yolov5l.yaml", scale="n")) == n_params(base_n)
    d = scale_cfg("yolov5_C3_DAttention.yaml", "s")
    assert (d["depth_multiple"], d["width_multiple"]) == SCALES["s"]
    with pytest.raises(ValueError, match="scale"):
        scale_cfg("yolov5l.yaml", "q")


def test_strides_and_anchors(seed_n):
    head = seed_n.model[-1]
    assert seed_n.stride.tolist() == [8.0, 16.0, 32.0]
    assert torch.allclose(head.anchors * head.stride.view(-1, 1, 1), torch.tensor(ANCHORS).float().view(3, 3, 2))


# -- forward shapes ----------------------------------------------------------------------------------------
SIZES = [(640, 640), (320, 320), (512, 512), (416, 640), (32, 32)]


@pytest.mark.parametrize("hw", SIZES)
def test_detect_shapes(seed_n, hw):
    H, W = hw
    grids = [(H // s, W // s) for s in (8, 16, 32)]
    x = torch.zeros(2, 3, H, W)
    with torch.no_grad():
        seed_n.train()
        raw = seed_n(x)
        seed_n.eval()
        preds, raw_eval = seed_n(x)
    assert [tuple(p.shape) for p in raw] == [(2, 3, ny, nx, 85) for ny, nx in grids]
    assert [tuple(p.shape) for p in raw_eval] == [(2, 3, ny, nx, 85) for ny, nx in grids]
    assert tuple(preds.shape) == (2, 3 * sum(ny * nx for ny, nx in grids), 85)
    assert torch.isfinite(preds).all()
    if hw == (32, 32):
        assert grids[-1] == (1, 1)  # P5 is one pixel: the case the seed's DAttention could not run


def test_eval_boxes_in_pixels(seed_n):
    seed_n.eval()
    with torch.no_grad():
        preds, _ = seed_n(torch.zeros(1, 3, 320, 320))
    xy, conf = preds[..., :2], preds[..., 4:]
    assert (xy > -64).all() and (xy < 320 + 64).all()
    assert (conf >= 0).all() and (conf <= 1).all()


@pytest.mark.parametrize("hw", SIZES)
def test_segment_shapes(seg_n, hw):
    H, W = hw
    grids = [(H // s, W // s) for s in (8, 16, 32)]
    x = torch.zeros(2, 3, H, W)  # batch 2: train-mode BatchNorm needs more than one value at a 1x1 P5
    with torch.no_grad():
        seg_n.train()
        raw, protos = seg_n(x)
        seg_n.eval()
        preds, protos_eval, raw_eval = seg_n(x)
    no = 80 + 5 + 32
    assert [tuple(p.shape) for p in raw] == [(2, 3, ny, nx, no) for ny, nx in grids]
    assert tuple(protos.shape) == tuple(protos_eval.shape) == (2, 32, H // 4, W // 4)
    assert tuple(preds.shape) == (2, 3 * sum(ny * nx for ny, nx in grids), no)
    assert len(raw_eval) == 3


def test_forward_backward_640(seed_n):
    seed_n.train()
    seed_n.zero_grad()
    out = seed_n(torch.randn(1, 3, 640, 640))
    sum(p.square().mean() for p in out).backward()
    attn = seed_n.model[8].m[0].attention
    assert attn.proj_q.weight.grad is not None and attn.proj_q.weight.grad.abs().sum() > 0
    assert attn.conv_offset[0].weight.grad is not None
    assert all(p.grad is not None for p in seed_n.model[0].parameters())
    seed_n.zero_grad()


def test_fixed_pe_model_runs_only_at_its_size():
    cfg = tiny_cfg(gw=0.25)
    cfg["backbone"][6] = [-1, 1, "C3_DAttention", [256, [2, 2], False, 1, 0.5, {"dwc_pe": False, "fixed_pe": True}]]
    with pytest.raises(ValueError, match="probe"):  # YOLOv5's 256 x 256 stride probe gives an 8x8 P5 map
        DetectionModel(copy.deepcopy(cfg))
    model = DetectionModel(cfg, probe=64).eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
        with pytest.raises(ValueError, match="2x2"):
            model(torch.zeros(1, 3, 96, 96))


# -- FLOPs ---------------------------------------------------------------------------------------------------
def dattention_flops(C: int, H: int, W: int, heads: int = 8, groups: int = 4) -> int:
    """Batch 1, stride 1, ksize 3, dwc_pe (same formula as tests/test_yolo_blocks.py)."""
    HW, cg = H * W, C // groups
    convs = 4 * 2 * C * C * HW + 2 * 9 * C * HW + groups * (2 * 9 * cg * HW + 2 * cg * 2 * HW)
    return convs + 4 * C * HW * HW


def test_gflops_difference_is_the_attention(seed_n, base_n):
    base = base_n
    c_ = make_divisible(1024 * SCALES["n"][1]) // 2  # hidden width of layer 8 at scale n
    for img in (640, 320):
        p5 = img // 32
        assert count_flops(seed_n, img) - count_flops(base, img) == dattention_flops(c_, p5, p5)


class RaisesAtOnePixel(nn.Module):
    """Stands in for the seed's DAttention, which divides by (Hk - 1) and fails on a 1 x 1 map."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _ = 1.0 / (x.shape[2] - 1.0)  # ZeroDivisionError at H == 1
        return self.inner(x)


def test_stock_profile_swallows_the_seed_error(seed_n):
    model = copy.deepcopy(seed_n)
    for b in model.model[8].m:
        b.attention = RaisesAtOnePixel(b.attention)
    assert stock_profile_gflops(model, 640) is None  # what YOLOv5 did: no GFLOPs in the summary line
    assert gflops(model, 640) == pytest.approx(gflops(seed_n, 640))  # the 640 count is unaffected
    with pytest.raises(ZeroDivisionError):
        model.eval()(torch.zeros(1, 3, 32, 32))


def test_summary_line_has_gflops(seed_n):
    line = summary(seed_n, img=320).splitlines()[-1]
    assert re.fullmatch(r"YOLOv5_C3_DAttention summary: \d+ layers, \d+ parameters, \d+ gradients, [\d.]+ GFLOPs", line)


def test_scaling_table_cheap():
    rows = scaling_table(img=64, scales="n", repeats=1, threads=1, progress=False)
    (row,) = rows
    c_ = make_divisible(1024 * SCALES["n"][1]) // 2
    cg = c_ // 4
    one_attention = (cg * 9 + cg + 2 * cg + 2 * cg) + 4 * (c_ * c_ + c_) + (c_ * 9 + c_)
    assert row["scale"] == "n"
    assert row["params_attn"] - row["params_base"] == one_attention  # n: one bottleneck at scale n
    assert row["gflops_attn"] > row["gflops_base"] and row["time_ratio"] > 0
    assert "GFLOPs" in format_table(rows)


# -- CLI -----------------------------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dattn.yolo", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)


def test_cli_shipped_name(seed_n):
    r = run_cli("--cfg", "yolov5_C3_DAttention.yaml", "--img", "64", "--scale", "n", "--stock-profile")
    assert r.returncode == 0, r.stderr
    layers = len(list(seed_n.modules()))
    assert f"YOLOv5_C3_DAttention summary: {layers} layers, {n_params(seed_n)} parameters" in r.stdout
    assert re.search(r"gradients, [\d.]+ GFLOPs", r.stdout)
    assert "C3_DAttention" in r.stdout and "YOLOv5 v7.0 prints" in r.stdout


def test_cli_path_and_errors(tmp_path):
    cfg = load_cfg("yolov5n.yaml")
    path = tmp_path / "yolov5_tiny.yaml"
    cfg.pop("yaml_file")
    path.write_text(yaml.safe_dump(cfg))
    r = run_cli("--cfg", str(path), "--img", "64")
    assert r.returncode == 0, r.stderr
    assert "YOLOv5_tiny summary:" in r.stdout
    bad = run_cli("--cfg", "no_such_model.yaml")
    assert bad.returncode == 2 and "no_such_model.yaml" in bad.stderr


def test_flop_counts_leave_no_fake_state_behind(seed_n):
    """Counting runs on fake tensors; a real forward afterwards must give the same real outputs."""
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        before = seed_n.eval()(x)[0]
        gflops(seed_n, (64, 96))
        after = seed_n(x)[0]
    assert type(after) is torch.Tensor and torch.equal(before, after)
    assert all(type(t) in (torch.Tensor, nn.Parameter) for t in [*seed_n.parameters(), *seed_n.buffers()])


def test_eval_decoding_follows_yolov5_formulas(seed_n):
    """Boxes from the raw maps, decoded here cell by cell: xy = (2 sigmoid - 0.5 + cell) * stride,
    wh = (2 sigmoid)^2 * anchor (pixels)."""
    seed_n.eval()
    head = seed_n.model[-1]
    with torch.no_grad():
        preds, raw = seed_n(torch.rand(1, 3, 64, 64))
    start = 0
    for i, p in enumerate(raw):  # (1, na, ny, nx, no)
        _, na, ny, nx, no = p.shape
        a, y, x = na - 1, ny - 1, 0  # one cell per level: last anchor, bottom-left
        r = p[0, a, y, x]
        s = float(head.stride[i])
        anchor_px = head.anchors[i, a] * s
        want_xy = (torch.sigmoid(r[:2]) * 2 - 0.5 + torch.tensor([x, y])) * s
        want_wh = (torch.sigmoid(r[2:4]) * 2) ** 2 * anchor_px
        got = preds[0, start + (a * ny + y) * nx + x]
        assert torch.allclose(got[:2], want_xy, atol=1e-4) and torch.allclose(got[2:4], want_wh, atol=1e-4)
        assert torch.allclose(got[4:], torch.sigmoid(r[4:]), atol=1e-6)
        start += na * ny * nx
