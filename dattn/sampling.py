"""Bilinear sampling: a from-scratch version that explains ``F.grid_sample``, and the call DAttention makes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from .geometry import _check_size, norm_to_pixel


def corner_weights(
    grid: torch.Tensor, H: int, W: int, align_corners: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four neighbours of each (x, y) grid position and their bilinear weights.

    grid (N, Ho, Wo, 2) in normalized (x, y) -> x0, y0 (integer pixel of the top-left neighbour, as floats)
    and wx, wy (the weight of the right and bottom neighbours); all (N, Ho, Wo).
    """
    ix = norm_to_pixel(grid[..., 0], W, align_corners)  # (N, Ho, Wo) pixel x
    iy = norm_to_pixel(grid[..., 1], H, align_corners)
    x0, y0 = ix.floor(), iy.floor()
    return x0, y0, ix - x0, iy - y0


def _gather(flat: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Values of flat (N, C, H*W) at integer pixels (N, P); zero where the pixel lies outside the map (or is
    not a number)."""
    inside = (xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)  # (N, P); False for NaN
    idx = torch.where(inside, yi * W + xi, 0).long()  # (N, P)
    vals = flat.gather(2, idx[:, None, :].expand(-1, flat.shape[1], -1))  # (N, C, P)
    return vals * inside[:, None, :].to(flat.dtype)


def bilinear_sample(inp: torch.Tensor, grid: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    """Bilinear sampling with zero padding, written with plain indexing; equals
    ``F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)``.

    inp (N, C, H, W), grid (N, Ho, Wo, 2) holding normalized (x, y) -> (N, C, Ho, Wo).
    Gradients reach both ``inp`` and ``grid``. Positions that are not finite read NaN, as in grid_sample.
    Where grid_sample requires one floating dtype for both, this computes in their promoted dtype (an integer
    image with a float grid reads in the grid's dtype).
    """
    if not isinstance(inp, torch.Tensor) or not isinstance(grid, torch.Tensor):
        raise ValueError(f"expected two tensors inp and grid, got {type(inp).__name__} and {type(grid).__name__}")
    if inp.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2 or grid.shape[0] != inp.shape[0]:
        raise ValueError(
            f"expected inp (N, C, H, W) and grid (N, Ho, Wo, 2) with the same N, "
            f"got {tuple(inp.shape)} and {tuple(grid.shape)}"
        )
    dtype = torch.promote_types(inp.dtype, grid.dtype)
    dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    inp, grid = inp.to(dtype), grid.to(dtype)
    N, C, H, W = inp.shape
    Ho, Wo = grid.shape[1:3]
    x0, y0, wx, wy = corner_weights(grid, H, W, align_corners)  # (N, Ho, Wo) each
    x0, y0, wx, wy = (rearrange(t, "n h w -> n (h w)") for t in (x0, y0, wx, wy))
    flat = rearrange(inp, "n c h w -> n c (h w)")
    out = 0
    for dy, weight_y in ((0, 1 - wy), (1, wy)):
        for dx, weight_x in ((0, 1 - wx), (1, wx)):
            w = (weight_y * weight_x)[:, None, :]  # (N, 1, P)
            out = out + w * _gather(flat, x0 + dx, y0 + dy, H, W)
    return rearrange(out, "n c (h w) -> n c h w", h=Ho, w=Wo)


def sample_keys(
    x: torch.Tensor, pos: torch.Tensor, n_groups: int, sampler: str = "grid_sample"
) -> torch.Tensor:
    """Sample each channel group of x at its own positions.

    x (B, C, H, W), pos (B*g, Hk, Wk, 2) normalized (y, x) -> sampled (B*g, C/g, Hk, Wk), read with
    ``align_corners=True`` and zero padding. ``sampler="manual"`` uses ``bilinear_sample`` instead.
    """
    n_groups = _check_size(n_groups, "n_groups")
    if not torch.jit.is_tracing():  # while tracing, sizes are tensors (DAttention has checked its own)
        _check_sample_keys_shapes(x, pos, n_groups)
    xg = rearrange(x, "b (g c) h w -> (b g) c h w", g=n_groups)  # (B*g, Cg, H, W)
    grid = pos.flip(-1).to(x.dtype)  # (B*g, Hk, Wk, 2) as (x, y)
    if sampler == "grid_sample":
        return F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    if sampler == "manual":
        return bilinear_sample(xg, grid, align_corners=True)
    raise ValueError(f"sampler must be 'grid_sample' or 'manual', got {sampler!r}")


def _check_sample_keys_shapes(x: torch.Tensor, pos: torch.Tensor, n_groups: int) -> None:
    if x.dim() != 4 or pos.dim() != 4 or pos.shape[-1] != 2:
        raise ValueError(
            f"expected x (B, C, H, W) and pos (B*g, Hk, Wk, 2), got {tuple(x.shape)} and {tuple(pos.shape)}"
        )
    if x.shape[1] % n_groups or pos.shape[0] != x.shape[0] * n_groups:
        raise ValueError(
            f"expected x's channels ({x.shape[1]}) divisible by n_groups ({n_groups}) and pos with B*g = "
            f"{x.shape[0]}*{n_groups} rows, got {pos.shape[0]}"
        )
