"""Exercise checkers: each compares a learner's answer with the package's computation and says what is
wrong, not only that it is wrong. Every checker prints its verdict and returns True or False."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .geometry import norm_to_pixel, reference_points
from .offsets import key_grid_size, offset_scale
from .sampling import bilinear_sample


def _verdict(ok: bool, message: str) -> bool:
    print(("Correct! " if ok else "Not yet: ") + message)
    return ok


def _missing(answer) -> bool:
    """True (after saying so) when the learner has not answered yet."""
    if answer is None:
        print("Not yet: replace None with your answer and run the cell again.")
        return True
    return False


def check_key_count(answer: int, H: int, W: int, stride: int, ksize: int = 3) -> bool:
    """Exercise 0: how many keys each query attends to on an H x W map at this stride."""
    if _missing(answer):
        return False
    Hk, Wk = key_grid_size(H, W, ksize, stride)
    got = int(answer)
    if got == Hk * Wk:
        return _verdict(True, f"a {Hk}x{Wk} key grid: {Hk * Wk} keys for each of the {H * W} queries.")
    if got == (H // stride) * (W // stride):
        return _verdict(False, f"H / stride is close, but the {ksize}x{ksize} conv with padding {ksize // 2} "
                               f"gives (H + 2*pad - ksize) // stride + 1 rows.")
    if got == H * W:
        return _verdict(False, "that is the number of queries; the keys live on the stride-reduced grid.")
    return _verdict(False, f"expected {Hk} x {Wk} keys, got {got}.")


def _as_array(answer) -> np.ndarray:
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    return np.asarray(answer, dtype=np.float64)


def check_reference_pixels(answer, Hk: int, H: int, convention: str = "seed") -> bool:
    """Exercise 1: the y pixel coordinates (length Hk) of the reference rows of an Hk-row key grid on H rows."""
    if _missing(answer):
        return False
    want = norm_to_pixel(reference_points(Hk, 1, H, 1, convention, dtype=torch.float64)[:, 0, 0], H).numpy()
    got = _as_array(answer).reshape(-1)
    if got.shape != want.shape:
        return _verdict(False, f"expected {Hk} numbers (one per key row), got {got.size}.")
    if np.allclose(got, want, atol=1e-6):
        return _verdict(True, f"the reference rows sit at pixels {np.round(want, 3).tolist()}.")
    shift = got - want
    if np.allclose(shift, shift[0], atol=1e-6):
        return _verdict(False, f"every value is off by {shift[0]:+.3f} pixels: check the half-pixel term "
                               f"and which pixel is number 0.")
    if convention == "seed" and np.allclose(got, np.arange(Hk) * (H - 1) / max(Hk - 1, 1), atol=1e-6):
        return _verdict(False, "these are evenly spread from the first to the last pixel centre; the seed "
                               "starts at linspace(0.5, Hk - 0.5) before dividing by Hk - 1.")
    return _verdict(False, f"expected values like {np.round(want[:3], 3).tolist()}..., got "
                           f"{np.round(got[:3], 3).tolist()}...; convert normalized u to pixels with "
                           f"(u + 1) / 2 * (H - 1).")


def check_max_offset_pixels(answer: float, H: int, stride: int, offset_range_factor: float, ksize: int = 3) -> bool:
    """Exercise 2: the largest offset, in pixels of the H-row input map, that the tanh bound allows along y."""
    if _missing(answer):
        return False
    Hk, _ = key_grid_size(H, H, ksize, stride)
    want = offset_scale(Hk, Hk, offset_range_factor)[0] * (H - 1) / 2
    got = float(answer)
    if abs(got - want) < 1e-6 * max(1.0, abs(want)):
        return _verdict(True, f"tanh reaches at most 1, times {offset_range_factor}/(Hk - 1) with Hk = {Hk}, "
                              f"which is {want:.4g} pixels on a {H}-pixel axis.")
    norm = offset_scale(Hk, Hk, offset_range_factor)[0]
    if abs(got - norm) < 1e-6:
        return _verdict(False, f"{got:.4g} is the bound in normalized units; one normalized unit is "
                               f"(H - 1) / 2 = {(H - 1) / 2} pixels.")
    return _verdict(False, f"expected about {want:.3g} pixels, got {got:.4g}. The key grid has Hk = {Hk} rows "
                           f"(the offset network's conv has stride {stride}).")


def check_bilinear(fn: Callable[[torch.Tensor, float, float], torch.Tensor]) -> bool:
    """Exercise 3: fn(image (C, H, W), y, x) -> values (C,) at pixel (y, x), with zero padding."""
    if _missing(fn):
        return False
    g = torch.Generator().manual_seed(7)
    img = torch.randn(2, 5, 6, generator=g, dtype=torch.float64)
    cases = [(1.25, 2.5, "inside"), (2.0, 3.0, "on a pixel centre"), (4.5, 1.0, "half below the last row"),
             (-0.75, 5.25, "past the top-right corner")]
    for y, x, where in cases:
        grid = torch.tensor([[[[x / 5 * 2 - 1, y / 4 * 2 - 1]]]], dtype=torch.float64)
        want = bilinear_sample(img[None], grid, align_corners=True).reshape(2)
        try:
            result = fn(img, y, x)
        except Exception as e:  # the learner's code: report, don't crash the notebook
            return _verdict(False, f"at pixel (y={y}, x={x}) your function raised {type(e).__name__}: {e}")
        if result is None:
            return _verdict(False, "your function returned None: return a tensor of the C values.")
        got = torch.as_tensor(result, dtype=torch.float64).reshape(-1)
        if got.shape != want.shape or not torch.allclose(got, want, atol=1e-6):
            return _verdict(False, f"at pixel (y={y}, x={x}), {where}, expected {want.tolist()} but got "
                                   f"{got.tolist()}. Outside neighbours must count as zero.")
    return _verdict(True, "your bilinear read matches grid_sample inside, on centres and at the border.")


def check_attention_flops(answer: int, B: int, n_heads: int, HW: int, Ns: int, head_dim: int) -> bool:
    """Exercise 4: FLOPs of the two attention matmuls (q k^T and attn v), a multiply-add counting 2."""
    if _missing(answer):
        return False
    want = 2 * (2 * B * n_heads * HW * Ns * head_dim)
    got = int(answer)
    if got == want:
        return _verdict(True, f"{want:,} FLOPs: two matmuls of 2*B*heads*HW*Ns*head_dim each.")
    if got * 2 == want:
        return _verdict(False, "that is one matmul, or multiply-adds counted once: there are two matmuls and "
                               "a multiply-add is 2 FLOPs.")
    if got * 4 == want:
        return _verdict(False, "count both matmuls, and 2 FLOPs per multiply-add.")
    return _verdict(False, f"expected {want:,}, got {got:,} (ratio {got / want:.3g}).")


def check_parameter_count(answer: int, module: torch.nn.Module) -> bool:
    """Exercise 5: the number of parameters of a module, counted by hand."""
    if _missing(answer):
        return False
    want = sum(p.numel() for p in module.parameters())
    got = int(answer)
    if got == want:
        return _verdict(True, f"{want:,} parameters.")
    parts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    detail = ", ".join(f"{k}: {v:,}" for k, v in parts.items())
    return _verdict(False, f"expected {want:,}, got {got:,} (off by {got - want:+,}). Its parts: {detail}.")
