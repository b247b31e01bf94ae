"""Figures for coordinates and bounds: align_corners conventions (notebook 1), the offset bound (notebook 2)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..geometry import pixel_to_norm
from ..offsets import bound_offsets, key_grid_size
from . import style


def plot_align_corners(n: int = 5) -> Figure:
    """An n-pixel axis with the normalized coordinate of each pixel centre under both align_corners values."""
    fig, axes = plt.subplots(2, 1, figsize=(8, 3.4), sharex=True, layout="constrained")
    centres = torch.arange(n, dtype=torch.float64)
    for ax, ac in zip(axes, (True, False), strict=True):
        for i in range(n):  # the pixels as cells
            ax.add_patch(plt.Rectangle((i - 0.5, -0.5), 1, 1, fc="#EEEEEE" if i % 2 else "#DDDDDD", ec="white"))
        u = pixel_to_norm(centres, n, ac).numpy()
        ax.scatter(centres, np.zeros(n), **style.GRID_STYLE, label="pixel centres")
        for i, ui in enumerate(u):
            ax.annotate(f"{ui:+.2f}", (i, 0), xytext=(0, 12), textcoords="offset points", ha="center", fontsize=9)
        ends = (0, n - 1) if ac else (-0.5, n - 0.5)
        ax.scatter(ends, (0, 0), marker="|", s=600, c=style.QUERY_COLOR, linewidths=2.5, label="u = -1 and u = +1")
        ax.set_title(f"align_corners={ac}: -1 and +1 are the {'centres' if ac else 'outer edges'} "
                     "of the end pixels", fontsize=10)
        ax.set_ylim(-0.8, 0.9)
        ax.set_yticks([])
    axes[1].set_xlabel("pixel x")
    axes[1].set_xticks(range(n))
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return fig


def plot_offset_bound(
    H: int = 20, strides: tuple[int, ...] = (1, 2, 4), factors: tuple[float, ...] = (1, 2, 4, 8), ksize: int = 3
) -> Figure:
    """Bounded offset in map pixels against the raw network output, one panel per stride, one line per factor."""
    fig, axes = plt.subplots(1, len(strides), figsize=(4 * len(strides), 3.4), sharey=True, layout="constrained")
    axes = np.atleast_1d(axes)
    raw = torch.linspace(-4, 4, 161)
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(factors)))
    for ax, stride in zip(axes, strides, strict=True):
        Hk, Wk = key_grid_size(H, H, ksize, stride)
        grid = raw.reshape(1, 1, 1, -1).expand(1, 2, Hk, raw.numel())  # (1, 2, Hk, n)
        for f, c in zip(factors, colors, strict=True):
            dy_px = bound_offsets(grid, f)[0, 0, :, 0] * (H - 1) / 2  # (n,) in map pixels
            ax.plot(raw, dy_px, color=c, label=f"factor {f:g}")
        ax.axhline(0, color=style.GRID_COLOR, lw=0.8)
        ax.set_title(f"stride {stride}: {Hk}x{Wk} keys")
        ax.set_xlabel("raw network output")
    axes[0].set_ylabel("offset along y (map pixels)")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"tanh(raw) x factor / (Hk - 1), in pixels of a {H}-pixel map")
    return fig
