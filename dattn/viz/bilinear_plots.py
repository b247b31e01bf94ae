"""Figures of one bilinear read (notebook 3): a position, its four neighbours and their weights."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..geometry import pixel_to_norm
from ..sampling import corner_weights
from . import style
from .mapping import find, find_all, scatter


def bilinear_neighbours(position: tuple[float, float], H: int, W: int) -> list[tuple[int, int, float]]:
    """The four neighbours (y, x, weight) of a (y, x) pixel position, top-left, top-right, bottom-left,
    bottom-right, from ``dattn.sampling.corner_weights`` (the function the course teaches)."""
    y, x = float(position[0]), float(position[1])
    p = torch.tensor([x, y], dtype=torch.float64)
    grid = torch.stack((pixel_to_norm(p[0], W), pixel_to_norm(p[1], H))).view(1, 1, 1, 2)  # as (x, y)
    x0, y0, wx, wy = (t.item() for t in corner_weights(grid, H, W, align_corners=True))
    x0, y0 = int(x0), int(y0)
    return [(y0 + dy, x0 + dx, (wy if dy else 1 - wy) * (wx if dx else 1 - wx)) for dy in (0, 1) for dx in (0, 1)]


def bilinear_value(values, position: tuple[float, float]):
    """The bilinear read of ``values`` (H, W) or (H, W, 3) at (y, x), zero outside: a float or (3,) array."""
    a = style.as_hwc(values)
    H, W = a.shape[:2]
    return sum(w * a[ny, nx] for ny, nx, w in bilinear_neighbours(position, H, W)
               if 0 <= ny < H and 0 <= nx < W) + 0.0 * a[0, 0]


def plot_bilinear(
    values, position: tuple[float, float], ax: Axes | None = None, title: str | None = None,
    legend: bool = True,
) -> Figure:
    """Zoom on a map around one sampling position: its four neighbours and their bilinear weights.

    ``values`` is the map (H, W) or (H, W, 3); ``position`` is (y, x) in its pixels. A neighbour outside the
    map reads zero (grid_sample's ``padding_mode="zeros"``).
    """
    a = style.as_hwc(values)
    fig, ax = style.show_image(a, ax, title=title)
    box = dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.9, edgecolor=style.NEIGHBOUR_COLOR)
    for _ in range(4):
        ax.plot([], [], color=style.NEIGHBOUR_COLOR, alpha=0.8, zorder=4, solid_capstyle="round", gid="link")
        ax.annotate("", (0, 0), xytext=(0, 0), ha="center", va="center", fontsize="small", bbox=box,
                    zorder=7, gid="weight")
    nb = ax.scatter([], [], marker="s", s=90, c=style.NEIGHBOUR_COLOR, edgecolors="white", linewidths=1.0,
                    zorder=5, label="4 neighbours")
    nb.set_gid("neighbours")
    ax.plot([], [], ls="--", color="white", lw=0.8, zorder=3, gid="cell")
    scatter(ax, torch.zeros(2), "sampling", "sampling position", **dict(style.SAMPLING_STYLE, s=90))
    update_bilinear(ax, a, position, title)
    if legend:
        style.legend(ax)
    return fig


def update_bilinear(ax: Axes, values, position: tuple[float, float], title: str | None = None) -> None:
    """Move ``plot_bilinear``'s zoom, neighbours and weights to another position, in place."""
    a = style.as_hwc(values)
    H, W = a.shape[:2]
    y, x = float(position[0]), float(position[1])
    neigh = bilinear_neighbours((y, x), H, W)
    y0, x0 = neigh[0][:2]
    for (ny, nx, w), line, ann in zip(neigh, find_all(ax, "link"), find_all(ax, "weight"), strict=True):
        line.set_data([x, nx], [y, ny])
        line.set_linewidth(0.8 + 5 * w)
        inside = 0 <= ny < H and 0 <= nx < W
        dy, dx = (ny - y0) * 2 - 1, (nx - x0) * 2 - 1  # -1 above / left, +1 below / right
        ann.xy = (nx, ny)
        ann.set_position((nx + 0.28 * dx, ny + 0.3 * dy))
        ann.set_text(f"w = {w:.3f}" + ("" if inside else "\n(outside: 0)"))
    find(ax, "neighbours").set_offsets([(nx, ny) for ny, nx, _ in neigh])
    find(ax, "cell").set_data([x0, x0 + 1, x0 + 1, x0, x0], [y0, y0, y0 + 1, y0 + 1, y0])
    find(ax, "sampling").set_offsets([(x, y)])
    ax.set_xlim(x0 - 1.0, x0 + 2.0)
    ax.set_ylim(y0 + 2.0, y0 - 1.0)
    ax.set_xticks(range(x0 - 1, x0 + 3))
    ax.set_yticks(range(y0 - 1, y0 + 3))
    value = bilinear_value(a, (y, x))
    shown = f" = {float(value):.3f}" if np.ndim(value) == 0 else ""
    ax.title.set_text(title or f"Bilinear read at (y, x) = ({y:.2f}, {x:.2f}){shown}")
