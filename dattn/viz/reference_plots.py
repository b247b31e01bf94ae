"""Figures of reference points (notebook 1): the grid per stride and convention, and the seed's half pixel."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..geometry import REF_CONVENTIONS, norm_to_pixel, reference_points
from ..offsets import key_grid_size
from . import style
from .mapping import (
    cell_borders,
    fit_points,
    map_edge,
    map_to_image,
    mark_outside,
    outside_note,
    scatter,
    setup_axes,
)


def _check_stride(stride, ksize) -> None:
    for name, value in (("stride", stride), ("ksize", ksize)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def reference_grid_px(H: int, W: int, stride: int, convention: str = "seed", ksize: int = 3) -> torch.Tensor:
    """Reference points of an H x W map at this stride, in map pixels: (Hk, Wk, 2) as (y, x)."""
    _check_stride(stride, ksize)
    Hk, Wk = key_grid_size(H, W, ksize, stride)
    ref = reference_points(Hk, Wk, H, W, convention)  # (Hk, Wk, 2) normalized
    return torch.stack((norm_to_pixel(ref[..., 0], H), norm_to_pixel(ref[..., 1], W)), dim=-1)


def plot_reference_grid(
    image, stride: int = 1, convention: str = "seed", ax: Axes | None = None,
    size: int | tuple[int, int] | None = None, ksize: int = 3, title: str | None = None,
) -> Figure:
    """The query pixels of a map and the reference points laid over it at ``stride``, in one convention.

    ``size`` is the map (S or (H, W)); by default the image itself is the map. ``image=None`` needs a size.
    Points outside the map are drawn (the axes widen to show them), ringed, and counted in the title.
    """
    if convention not in REF_CONVENTIONS:
        raise ValueError(f"convention must be one of {REF_CONVENTIONS}, got {convention!r}")
    _check_stride(stride, ksize)
    if size is None:
        if image is None:
            raise ValueError("plot_reference_grid needs an image or a map size")
        size = style.as_hwc(image).shape[:2]
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    ref = reference_grid_px(H, W, stride, convention, ksize)  # (Hk, Wk, 2) map pixels
    Hk, Wk = ref.shape[:2]
    fig, ax, img_hw = setup_axes(image, (H, W), ax, "", alpha=0.8)
    cell_borders(ax, (H, W), img_hw)
    map_edge(ax, (H, W), img_hw)
    q = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).float()  # (H, W, 2)
    grid_style = dict(style.GRID_STYLE, s=max(4.0, 600.0 / max(H, W)) if max(H, W) > 16 else 40)
    scatter(ax, map_to_image(q, (H, W), img_hw), "grid", style.LABELS["grid"], **grid_style)
    scatter(ax, map_to_image(ref, (H, W), img_hw), "reference", style.LABELS["reference"], **style.REFERENCE_STYLE)
    n_out = mark_outside(ax, ref, (H, W), img_hw, legend="auto")
    fit_points(ax, ref, (H, W), img_hw)
    ax.set_title(title or f"{Hk}x{Wk} reference points, stride {stride} ({convention})\n"
                          f"{outside_note(n_out, Hk * Wk)}")
    style.legend(ax, ncols=2)
    return fig


def plot_half_pixel_shift(size: int = 4, stride: int = 1, ax: Axes | None = None, ksize: int = 3) -> Figure:
    """Seed vs centered reference points on a small ``size x size`` map: the seed's are half a pixel off."""
    H = W = size
    seed = reference_grid_px(H, W, stride, "seed", ksize)  # (Hk, Wk, 2)
    centered = reference_grid_px(H, W, stride, "centered", ksize)
    fig, ax = style.show_image(None, ax, size=(H, W),
                               title=f"Reference points on a {H}x{W} map, stride {stride}:\nseed vs centered")
    checker = (np.add.outer(np.arange(H), np.arange(W)) % 2) * 0.06 + 0.9
    ax.imshow(np.repeat(checker[..., None], 3, -1), extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
    q = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).float()
    scatter(ax, q, "grid", "pixel centres", **dict(style.GRID_STYLE, s=40, zorder=6))
    scatter(ax, centered, "centered", "centered", **dict(style.REFERENCE_STYLE, s=80, marker="o"))
    scatter(ax, seed, "seed", "seed", **dict(style.REFERENCE_STYLE, s=80, marker="s", c=style.QUERY_COLOR))
    s, c = style.xy(seed), style.xy(centered)
    q_arrows = ax.quiver(c[:, 0], c[:, 1], s[:, 0] - c[:, 0], s[:, 1] - c[:, 1], angles="xy", scale_units="xy",
                         scale=1, color="0.3", width=0.006, zorder=3)
    q_arrows.set_gid("shift")
    shift = (seed - centered)[0, 0].tolist()
    ax.text(1.03, 0.62, f"seed - centered,\nfirst point:\ndy = {shift[0]:+.2f} px\ndx = {shift[1]:+.2f} px",
            transform=ax.transAxes, fontsize="small", va="top")
    ext = max(float(seed.max()), float(centered.max()), H - 0.5)
    ax.set_xlim(-0.9, ext + 0.4)
    ax.set_ylim(ext + 0.4, -0.9)
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))
    style.legend(ax, below=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
