"""The offset network: from query features to one bounded (dy, dx) per key position and group."""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .geometry import _check_size


class LayerNormProxy(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c h w -> b h w c")
        x = self.norm(x)
        return rearrange(x, "b h w c -> b c h w")


def offset_padding(ksize: int, stride: int) -> int:
    """Padding of the offset network's first conv: ``ksize // 2``, or none when the kernel equals the stride."""
    return 0 if ksize == stride else ksize // 2


def check_offset_range_factor(offset_range_factor: float) -> float:
    """The factor as a float if it is a finite real number (negative: unbounded offsets, clamped positions)."""
    if isinstance(offset_range_factor, bool) or not isinstance(offset_range_factor, numbers.Real) \
            or not math.isfinite(offset_range_factor):
        raise ValueError(
            "offset_range_factor must be a finite number (>= 0: tanh-bounded offsets, < 0: unbounded offsets "
            f"with clamped positions), got {offset_range_factor!r}"
        )
    return float(offset_range_factor)


def key_grid_size(H: int, W: int, ksize: int, stride: int) -> tuple[int, int]:
    """Size (Hk, Wk) of the key grid the offset network produces from an H x W query map."""
    H, W = _check_size(H, "H"), _check_size(W, "W")
    ksize, stride = _check_size(ksize, "ksize"), _check_size(stride, "stride")
    pad = offset_padding(ksize, stride)
    Hk, Wk = (H + 2 * pad - ksize) // stride + 1, (W + 2 * pad - ksize) // stride + 1
    if Hk < 1 or Wk < 1:
        raise ValueError(
            f"a {H}x{W} map is too small for the offset network (ksize={ksize}, stride={stride}): "
            f"it would give a {Hk}x{Wk} key grid"
        )
    return Hk, Wk


def offset_network(n_group_channels: int, ksize: int = 3, stride: int = 1) -> nn.Sequential:
    """Depth-wise ``ksize`` conv (with the stride), LayerNorm, GELU, then a 1x1 conv to two channels (dy, dx).

    Input (B*g, Cg, H, W) -> raw offsets (B*g, 2, Hk, Wk). Its layout (indices 0..3) matches the seed's
    ``conv_offset`` so that state_dicts load unchanged.
    """
    Cg = _check_size(n_group_channels, "n_group_channels")
    ksize, stride = _check_size(ksize, "ksize"), _check_size(stride, "stride")
    return nn.Sequential(
        nn.Conv2d(Cg, Cg, ksize, stride, offset_padding(ksize, stride), groups=Cg),
        LayerNormProxy(Cg),
        nn.GELU(),
        nn.Conv2d(Cg, 2, 1, 1, 0, bias=False),
    )


def grouped_offsets(net: nn.Sequential, q: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Raw offsets of every group at once: q (B, C, H, W) -> (B*g, 2, Hk, Wk).

    The same numbers as ``net(rearrange(q, "b (g c) h w -> (b g) c h w"))``, the per-group form the course
    teaches, computed without regrouping q: the shared depth-wise kernel is tiled over the groups, and
    LayerNorm, GELU and the 1x1 conv run on a channels-last (B, Hk, Wk, g, Cg) view.
    """
    conv, proxy, act, point = net
    Cg = conv.in_channels
    if q.dim() != 4 or _check_size(q.shape[1], "channels of q") != n_groups * Cg:
        raise ValueError(
            f"expected q (B, n_groups * {Cg}, H, W) = (B, {n_groups * Cg}, H, W) for a network of {Cg} channels "
            f"and n_groups={n_groups}, got shape {tuple(q.shape)}"
        )
    h = F.conv2d(q, conv.weight.repeat(n_groups, 1, 1, 1), conv.bias.repeat(n_groups), conv.stride,
                 conv.padding, groups=n_groups * Cg)  # (B, C, Hk, Wk)
    h = rearrange(h, "b (g c) h w -> b h w g c", g=n_groups)  # a view when q is channels-last
    h = act(proxy.norm(h))
    raw = torch.matmul(h, rearrange(point.weight, "p c 1 1 -> c p"))  # (B, Hk, Wk, g, 2)
    return rearrange(raw, "b h w g p -> (b g) p h w")


def offset_scale(Hk: int, Wk: int, offset_range_factor: float) -> tuple[float, float]:
    """Largest |offset| along (y, x), in normalized units: ``factor / (n - 1)`` per axis, as in the seed.

    A singleton axis (n == 1) has no pixel spacing; there the bound is 1, so its only key row (or column)
    can slide from the centre to either edge of the map but never outside it.
    """
    Hk, Wk = _check_size(Hk, "Hk"), _check_size(Wk, "Wk")
    offset_range_factor = check_offset_range_factor(offset_range_factor)
    return tuple(offset_range_factor / (n - 1.0) if n > 1 else 1.0 for n in (Hk, Wk))  # type: ignore[return-value]


def bound_offsets(raw: torch.Tensor, offset_range_factor: float) -> torch.Tensor:
    """Raw offsets (B*g, 2, Hk, Wk) -> offsets (B*g, Hk, Wk, 2) as (dy, dx) in normalized units.

    With ``offset_range_factor >= 0`` they are squashed by tanh into ``offset_scale``; with a negative factor
    they stay raw and the sampling *positions* are clamped to the map instead (see ``sampling_positions``).
    """
    if raw.dim() != 4 or _check_size(raw.shape[1], "raw.shape[1]") != 2:
        raise ValueError(f"expected raw offsets (B*g, 2, Hk, Wk), got shape {tuple(raw.shape)}")
    if check_offset_range_factor(offset_range_factor) >= 0:
        sy, sx = offset_scale(raw.shape[-2], raw.shape[-1], offset_range_factor)
        scale = raw.new_tensor([sy, sx]).reshape(1, 2, 1, 1)
        raw = raw.tanh() * scale
    return rearrange(raw, "bg p h w -> bg h w p")  # (B*g, Hk, Wk, 2)


def sampling_positions(
    reference: torch.Tensor, offsets: torch.Tensor, offset_range_factor: float
) -> torch.Tensor:
    """Reference (Hk, Wk, 2) + offsets (B*g, Hk, Wk, 2) -> normalized (y, x) positions (B*g, Hk, Wk, 2).

    A negative ``offset_range_factor`` means unbounded offsets, with the positions clamped to [-1, 1].
    """
    if not torch.jit.is_tracing() and (reference.dim() != 3 or reference.shape != offsets.shape[-3:]):
        raise ValueError(
            f"expected reference (Hk, Wk, 2) and offsets (B*g, Hk, Wk, 2), got {tuple(reference.shape)} and "
            f"{tuple(offsets.shape)}"
        )
    pos = reference + offsets
    return pos if check_offset_range_factor(offset_range_factor) >= 0 else pos.clamp(-1.0, 1.0)
