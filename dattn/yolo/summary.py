"""Model summaries in YOLOv5's format, FLOP counts, and the baseline-vs-C3_DAttention scaling table.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode``: convolutions, matrix products (mm,
bmm, addmm, baddbmm, einsum through them) and scaled-dot-product attention, one multiply-add = 2 FLOPs;
element-wise work (activations, normalization, softmax, sampling) is not counted. GFLOPs = FLOPs / 1e9.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from ..profiling import flop_counter

ImgSize = int | Sequence[int]

HEADER = f"{'':>3}{'from':>18}{'n':>3}{'params':>10}  {'module':<40}{'arguments':<30}"


def image_size(img: ImgSize) -> tuple[int, int]:
    """(H, W) from a positive int S (an S x S image) or a pair (H, W) of positive ints; ValueError otherwise."""

    def size(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"an image size must be a positive int or a pair (H, W) of them, got {img!r}")
        return int(v)

    if isinstance(img, (str, bytes)) or not isinstance(img, (int, np.integer, Sequence)):
        size(img)  # raises
    if isinstance(img, Sequence):
        if len(img) != 2:
            raise ValueError(f"an image size must be a positive int or a pair (H, W) of them, got {img!r}")
        return size(img[0]), size(img[1])
    return size(img), size(img)


def check_multiple_of_stride(model: nn.Module, h: int, w: int) -> None:
    """ValueError unless H and W are multiples of the model's largest stride (its P5 levels must line up)."""
    stride = getattr(model, "stride", None)
    if stride is None:
        return
    s = int(torch.as_tensor(stride).max())
    if h % s or w % s:
        raise ValueError(f"image size {h}x{w} is not a multiple of the model's largest stride {s}")


def _in_channels(model: nn.Module) -> int:
    """Input channels: the yaml's ``ch``, else those of the first parameter (YOLOv5's rule)."""
    yaml_cfg = getattr(model, "yaml", None)
    if isinstance(yaml_cfg, dict) and "ch" in yaml_cfg:
        return int(yaml_cfg["ch"])
    return next(model.parameters()).shape[1]


def count_flops(model: nn.Module, img: ImgSize = 640, batch: int = 1, ch: int | None = None) -> int:
    """FLOPs of one eval-mode forward of a (batch, ch, H, W) image, as FlopCounterMode counts them.

    ``ch`` defaults to the model's input channels. The model is put in eval mode for the count (as thop
    does) and its mode restored afterwards. The forward runs on fake tensors: FLOPs depend only on shapes,
    so nothing is computed.
    """
    h, w = image_size(img)
    check_multiple_of_stride(model, h, w)
    ch = _in_channels(model) if ch is None else ch
    counter = flop_counter()
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True), counter:
            model(torch.zeros(batch, ch, h, w, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def gflops(model: nn.Module, img: ImgSize = 640) -> float:
    """GFLOPs of one forward at img (FLOPs / 1e9)."""
    return count_flops(model, img) / 1e9


def stock_profile_gflops(model: nn.Module, img: ImgSize = 640) -> float | None:
    """The GFLOPs YOLOv5 v7.0's summary line prints for this model, or None where it prints none.

    YOLOv5 counts with thop at one probe-size image (the largest stride, at least 32) and scales by the pixel
    count; see :mod:`dattn.yolo.stock` for the rules and what they do not see. Any exception is swallowed, as
    YOLOv5's ``except Exception`` does: with the seed's DAttention the 1 x 1 P5 map of the probe raised
    ZeroDivisionError, which is why the seed's summary has no GFLOPs.
    """
    from .stock import yolov5_gflops

    image_size(img)  # a bad size is the caller's error, not a profile failure
    try:
        return yolov5_gflops(model, img)
    except Exception:  # noqa: BLE001 (YOLOv5 swallows every exception here)
        return None


def model_name(model: nn.Module) -> str:
    """'YOLOv5_C3_DAttention' from 'yolov5_C3_DAttention.yaml', as YOLOv5 names its summaries."""
    yaml_file = getattr(model, "yaml_file", None)
    return Path(yaml_file).stem.replace("yolov5", "YOLOv5") if yaml_file else "Model"


def layer_rows(model: nn.Module) -> list[str]:
    """One row per layer: index, from, repeats, parameters, module, arguments."""
    rows = []
    for m in model.model:
        rows.append(f"{m.i:>3}{m.f!s:>18}{m.n:>3}{m.np:10.0f}  {m.type:<40}{m.args!s:<30}")
    return rows


def summary_line(model: nn.Module, img: ImgSize | None = 640, flops: float | None = None) -> str:
    """'NAME summary: L layers, P parameters, G gradients, F GFLOPs' (L = len(list(model.modules()))).

    The GFLOPs are counted at img (a full forward, attention included) unless ``flops`` is given; with
    img=None and flops=None they are left out, as in the seed's summary.
    """
    n_p = sum(p.numel() for p in model.parameters())
    n_g = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if flops is None and img is not None:
        flops = gflops(model, img)
    fs = "" if flops is None else f", {flops:.1f} GFLOPs" if flops >= 0.1 else f", {flops:.3f} GFLOPs"
    layers = len(list(model.modules()))
    return f"{model_name(model)} summary: {layers} layers, {n_p} parameters, {n_g} gradients{fs}"


def summary(model: nn.Module, img: ImgSize | None = 640, flops: float | None = None) -> str:
    """The header, one row per layer, then the summary line; as YOLOv5 prints it when it builds a model."""
    return "\n".join([HEADER, *layer_rows(model), summary_line(model, img, flops)])


# ----------------------------------------------------------------------------------------------------------
# Baseline vs C3_DAttention across n/s/m/l/x
# ----------------------------------------------------------------------------------------------------------
def _time_pair(
    a: nn.Module, b: nn.Module, x: torch.Tensor, repeats: int, step: Any = None, warmup: int = 2
) -> tuple[float, float]:
    """Median forward seconds of a and b, measured side by side after ``warmup`` runs each.

    The order alternates (a b, b a, a b, ...) so that a drift in machine load hits both alike.
    """
    times: dict[int, list[float]] = {id(a): [], id(b): []}
    with torch.no_grad():
        for _ in range(warmup):
            a(x), b(x)
        for r in range(repeats):
            for m in (a, b) if r % 2 == 0 else (b, a):
                t0 = time.perf_counter()
                m(x)
                times[id(m)].append(time.perf_counter() - t0)
            if step is not None:
                step()
    return statistics.median(times[id(a)]), statistics.median(times[id(b)])


def scaling_table(
    img: ImgSize = 640,
    scales: Iterable[str] = "nsmlx",
    repeats: int = 3,
    threads: int | None = None,
    timing: bool = True,
    base_cfg: str = "yolov5l.yaml",
    attn_cfg: str = "yolov5_C3_DAttention.yaml",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Per scale: parameters and GFLOPs (at img) of the baseline and of the C3_DAttention model, and the
    ratio of their median CPU forward times (attention / baseline, measured side by side; None when
    ``timing`` is off). ``threads`` sets torch's CPU threads for the timings (restored afterwards)."""
    from tqdm.auto import tqdm

    from .model import build_model

    scales = list(scales)
    h, w = image_size(img)
    old_threads = torch.get_num_threads()
    rows = []
    bar = tqdm(total=len(scales) * (1 + (repeats if timing else 0)), desc="scaling table", disable=not progress)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        for s in scales:
            bar.set_postfix(scale=s)
            base = build_model(base_cfg, scale=s).eval()
            attn = build_model(attn_cfg, scale=s).eval()
            row: dict[str, Any] = {
                "scale": s,
                "params_base": sum(p.numel() for p in base.parameters()),
                "params_attn": sum(p.numel() for p in attn.parameters()),
                "gflops_base": gflops(base, (h, w)),
                "gflops_attn": gflops(attn, (h, w)),
                "time_ratio": None,
            }
            bar.update(1)
            if timing:
                x = torch.zeros(1, 3, h, w)
                tb, ta = _time_pair(base, attn, x, repeats, step=lambda: bar.update(1))
                row["time_base_s"], row["time_attn_s"], row["time_ratio"] = tb, ta, ta / tb
            rows.append(row)
    finally:
        torch.set_num_threads(old_threads)
        bar.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The scaling table as aligned text."""
    names = ("params base", "params attn", "GFLOPs base", "GFLOPs attn")
    head = f"{'scale':>5} " + " ".join(f"{n:>12}" for n in names) + f" {'time x':>7}"
    lines = [head]
    for r in rows:
        t = "-" if r["time_ratio"] is None else f"{r['time_ratio']:.2f}"
        lines.append(
            f"{r['scale']:>5} {r['params_base']:>12,} {r['params_attn']:>12,} "
            f"{r['gflops_base']:>12.1f} {r['gflops_attn']:>12.1f} {t:>7}"
        )
    return "\n".join(lines)
