"""One colour per concept, used by every figure of the course, and the helpers that set up an image axis.

The palette is Okabe-Ito (readable with the common colour-vision deficiencies):

* the **query** pixel is a vermillion star,
* **reference points** are sky-blue circles,
* **sampling points** (reference + offset) are yellow diamonds,
* **offset arrows** are bluish green, drawn from a reference point to its sampling point,
* **attention weights** use the ``viridis`` colormap (dark = little weight, yellow = much),
* the **query pixel grid** (every pixel centre of the map) is grey plus signs,
* a point **outside the map** (its read is partly, or from 1 px out wholly, zero padding) gets a blue ring,
  and the map's edge is dashed.

Every position in the package is a ``(y, x)`` pair; matplotlib wants ``(x, y)``. ``xy`` does the flip.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

QUERY_COLOR = "#D55E00"  # vermillion
REFERENCE_COLOR = "#56B4E9"  # sky blue
SAMPLING_COLOR = "#F0E442"  # yellow
OFFSET_COLOR = "#009E73"  # bluish green
GRID_COLOR = "#3A3A3A"  # dark grey: the query pixels / cell borders
NEIGHBOUR_COLOR = "#CC79A7"  # reddish purple: the four bilinear neighbours
OUTSIDE_COLOR = "#0072B2"  # blue: the ring around a point outside the map
ATTENTION_CMAP = "viridis"
EDGE_COLOR = "black"  # thin outline that keeps light markers visible on light images

QUERY_STYLE = dict(marker="*", s=260, c=QUERY_COLOR, edgecolors="white", linewidths=1.2, zorder=6)
REFERENCE_STYLE = dict(marker="o", s=28, c=REFERENCE_COLOR, edgecolors=EDGE_COLOR, linewidths=0.6, zorder=4)
SAMPLING_STYLE = dict(marker="D", s=22, c=SAMPLING_COLOR, edgecolors=EDGE_COLOR, linewidths=0.6, zorder=5)
GRID_STYLE = dict(marker="+", s=30, c=GRID_COLOR, linewidths=1.0, zorder=3)
OUTSIDE_STYLE = dict(marker="o", s=110, facecolors="none", edgecolors=OUTSIDE_COLOR, linewidths=1.6, zorder=6)

LABELS = {
    "query": "query",
    "reference": "reference points",
    "sampling": "sampling points",
    "offset": "offsets",
    "grid": "query pixels",
    "attention": "attention weight",
    "outside": "off the map (reads zero padding, in part within 1 px)",
}


def xy(points_yx: torch.Tensor | np.ndarray) -> np.ndarray:
    """(..., 2) positions as (y, x) -> (N, 2) numpy array of (x, y), the order matplotlib wants."""
    p = points_yx.detach().cpu().numpy() if isinstance(points_yx, torch.Tensor) else np.asarray(points_yx)
    return p.reshape(-1, 2)[:, ::-1].astype(float)


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (5.0, 5.0)) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def as_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An image as a numpy (H, W, 3) or (H, W) float array; accepts (H, W, C) arrays or (C, H, W) tensors."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu().float()
        if t.dim() == 4:
            t = t[0]
        if t.dim() == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
            t = t.permute(1, 2, 0)  # (H, W, C)
        image = t.numpy()
    a = np.asarray(image, dtype=float)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"expected an image (H, W), (H, W, 3) or (3, H, W), got shape {a.shape}")
    return a


def show_image(
    image: np.ndarray | torch.Tensor | None,
    ax: Axes | None = None,
    title: str | None = None,
    size: tuple[int, int] | None = None,
    unit: str = "pixels",
    alpha: float = 1.0,
) -> tuple[Figure, Axes]:
    """Show an image with pixel axes: pixel (i, j) is centred at (x=j, y=i), origin top-left, y down.

    ``image=None`` draws an empty light map of ``size`` (H, W) instead, with the same axes.
    """
    fig, ax = axes_or_new(ax)
    if image is None:
        if size is None:
            raise ValueError("show_image needs an image or a size (H, W)")
        H, W = size
        ax.imshow(np.full((H, W, 3), 0.96), extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
    else:
        a = as_hwc(image)
        H, W = a.shape[:2]
        cmap = "gray" if a.ndim == 2 else None
        ax.imshow(np.clip(a, 0, 1) if a.ndim == 3 else a, cmap=cmap, alpha=alpha,
                  extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest" if max(H, W) <= 64 else None)
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)  # origin top-left, y grows downwards as in the image
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    if title:
        ax.set_title(title)
    return fig, ax


def legend(ax: Axes, below: bool = True, **kw) -> None:
    """A compact legend, by default in a row under the axes so that it hides nothing of the image."""
    defaults = dict(fontsize="small", framealpha=0.85, markerscale=0.8)
    if below:
        n = len(ax.get_legend_handles_labels()[1])
        defaults.update(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=min(n, 3), frameon=False)
    else:
        defaults.update(loc="upper right")
    defaults.update(kw)
    ax.legend(**defaults)
