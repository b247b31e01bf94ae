"""What stock YOLOv5 (v7.0) prints for a model: its summary line, GFLOPs counted the way it counts them.

YOLOv5's ``model_info`` runs ``thop.profile`` on one ``s x s`` image, s = max(largest stride, 32), doubles the
multiply-adds and scales them by (H/s) * (W/s). thop puts a forward hook on every module whose *type* has a
rule (``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.LayerNorm``, ``nn.Linear``, ``nn.Upsample``, ...) and adds up
what those hooks saw. So it misses two things:

* work done through torch functions rather than module calls (``F.linear``, ``torch.baddbmm``, ``einsum``,
  ``F.scaled_dot_product_attention``): in DAttention the two attention products q·k and weights·v,
  4·C·HW·Ns FLOPs per image, and any projection that calls a weight instead of its module;
* growth faster than the pixel count: at the probe the P5 map is 1 x 1, and the scaling is linear.

The rules below are those of thop 0.1.1 (the version YOLOv5's requirements resolve to), replicated so that the
light core need not import thop; ``tests/test_yolo_stock.py`` checks them against thop itself and
``make test-yolov5`` against the line real YOLOv5 prints.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from ..profiling import flop_counter
from .summary import ImgSize, check_multiple_of_stride, image_size

Rule = Callable[[nn.Module, torch.Tensor, torch.Tensor], int]


def _conv(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Output elements x (input channels / groups) x kernel elements; no bias."""
    return y.numel() * (x.shape[1] // m.groups) * math.prod(m.weight.shape[2:])


def _norm(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """2 per input element, twice that with an affine transform."""
    affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
    return 2 * x.numel() * (2 if affine else 1)


def _zero(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return 0


def _prelu(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return 0 if m.training else x.numel()


def _softmax(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    n = x.shape[m.dim]
    return x.numel() // n * (3 * n - 1)


def _avgpool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return y.numel()


def _adaptive_avgpool(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    kernel = math.prod(a / b for a, b in zip(x.shape[2:], y.shape[2:], strict=True))
    return int((kernel + 1) * y.numel())


def _linear(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return m.in_features * y.numel()


UPSAMPLE_OPS = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259}


def _upsample(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return UPSAMPLE_OPS.get(m.mode, 0) * y.numel()


#: thop 0.1.1's rules, multiply-adds per call, by module type (other types count 0)
THOP_RULES: dict[type[nn.Module], Rule] = {
    **dict.fromkeys((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
                    _conv),
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
                     nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d), _norm),
    **dict.fromkeys((nn.ZeroPad2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                     nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Dropout, nn.Sequential,
                     nn.PixelShuffle), _zero),
    nn.PReLU: _prelu,
    nn.Softmax: _softmax,
    **dict.fromkeys((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avgpool),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), _adaptive_avgpool),
    nn.Linear: _linear,
    **dict.fromkeys((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), _upsample),
}
NOT_REPLICATED = (nn.RNNBase, nn.RNNCellBase)  # thop has rules for these; they are not copied here
TRANSPARENT = (nn.Sequential, nn.ModuleList)  # thop adds up their children even though Sequential has a rule


def thop_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one eval-mode forward of x as ``thop.profile(model, (x,))[0]`` counts them.

    Hooks go on modules whose type has a rule (once per time ``model.apply`` visits them); the total adds,
    down the tree, the hooked modules' counts without looking inside them, and looks inside the rest.
    """
    for m in model.modules():
        if isinstance(m, NOT_REPLICATED):
            raise ValueError(f"thop's rule for {type(m).__name__} is not replicated here")
    counts: dict[int, int] = {}
    handles = []

    def add_hook(m: nn.Module) -> None:
        rule = THOP_RULES.get(type(m))
        if rule is None:
            return
        counts.setdefault(id(m), 0)

        def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            counts[id(mod)] += int(rule(mod, inputs[0], output))

        handles.append(m.register_forward_hook(hook))

    was_training = model.training
    model.eval()
    model.apply(add_hook)
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    def total(module: nn.Module) -> int:
        n = 0
        for child in module.children():
            n += counts[id(child)] if id(child) in counts and not isinstance(child, TRANSPARENT) else total(child)
        return n

    return counts.get(id(model), 0) + total(model)


def probe_size(model: nn.Module) -> int:
    """The side of YOLOv5's profile image: the largest stride, at least 32."""
    return max(int(model.stride.max()), 32) if hasattr(model, "stride") else 32


def yolov5_gflops(model: nn.Module, img: ImgSize = 640) -> float:
    """GFLOPs as YOLOv5's ``model_info`` computes them: 2 x thop's multiply-adds of one probe-size image (in
    eval mode, on a copy), x (H / probe) x (W / probe). Raises what the profile raises."""
    s = probe_size(model)
    p = next(model.parameters())
    model = copy.deepcopy(model)  # as YOLOv5 does: nothing the forward caches reaches the caller's model
    with FakeTensorMode(allow_non_fake_inputs=True):  # shapes are all the rules read
        macs = thop_macs(model, torch.empty(1, p.shape[1], s, s, device=p.device))
    h, w = image_size(img)
    return macs / 1e9 * 2 * h / s * w / s


def yolov5_summary_line(model: nn.Module, img: ImgSize = 640) -> str:
    """The line YOLOv5 v7.0 logs when it builds the model (no GFLOPs where the profile raises, as there)."""
    n_p = sum(p.numel() for p in model.parameters())
    n_g = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        fs = f", {yolov5_gflops(model, img):.1f} GFLOPs"
    except Exception:  # noqa: BLE001 (YOLOv5 swallows every exception here)
        fs = ""
    yaml_file = getattr(model, "yaml_file", None)
    name = Path(yaml_file).stem.replace("yolov5", "YOLOv5") if yaml_file else "Model"
    return f"{name} summary: {len(list(model.modules()))} layers, {n_p} parameters, {n_g} gradients{fs}"


def unseen_by_thop(model: nn.Module, img: ImgSize = 640) -> dict[str, int]:
    """FLOPs of one eval-mode forward at img that thop's hooks cannot see, as torch's counter counts them.

    ``attention``: ``scaled_dot_product_attention`` (q·k and weights·v); ``other``: the other convolutions and
    matrix products that run outside a call of an ``nn.Conv*`` or ``nn.Linear`` module (a weight passed to
    ``F.linear``, ``torch.baddbmm``, ``einsum``); ``total``: their sum. For those two module types thop's
    multiply-adds x 2 equal torch's FLOPs, so the rest of torch's count is what thop does not see.
    """
    h, w = image_size(img)
    check_multiple_of_stride(model, h, w)
    p = next(model.parameters())
    counted = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
    seen = 0
    handles = []

    def hook(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal seen
        seen += 2 * THOP_RULES[type(m)](m, inputs[0], output)

    for m in model.modules():
        if type(m) in counted:
            handles.append(m.register_forward_hook(hook))
    counter = flop_counter()
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True), counter:
            model(torch.zeros(1, p.shape[1], h, w, device=p.device))
    finally:
        model.train(was_training)
        for hd in handles:
            hd.remove()
    by_op = counter.get_flop_counts().get("Global", {})
    attention = sum(n for op, n in by_op.items() if "scaled_dot_product" in str(op))
    total = counter.get_total_flops() - seen
    return {"attention": attention, "other": total - attention, "total": total}
