"""What every map figure shares: map pixels <-> image pixels, the axes, the query star, and points off the map.

Positions are computed on an ``H x W`` *map* (a feature map, pixel centres at integers, ``align_corners=True``)
and drawn over an image of any size: map pixel ``i`` of ``H`` sits at image coordinate
``i * (Himg - 1) / (H - 1)``, the correspondence ``F.interpolate(..., align_corners=True)`` uses. The map's
cells therefore reach half a map pixel beyond the image's first and last pixel centres; the figures draw
that edge of the map, and every point, also those off the map: nothing is cropped. A point outside the
map's cells is ringed and counted (``mark_outside``).

Artists carry a ``gid`` naming what they show ("grid", "reference", "sampling", "offsets", "query",
"attention", "outside", "map edge", "neighbours") so that tests and the widgets can find them.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ..geometry import norm_to_pixel, pixel_to_norm
from . import style


def map_to_image(
    points_yx: torch.Tensor, map_hw: tuple[int, int], image_hw: tuple[int, int]
) -> torch.Tensor:
    """(..., 2) map pixels (y, x) -> image pixels, with align_corners=True: map pixel centre i of an H-long
    axis lands on image coordinate ``i * (Himg - 1) / (H - 1)`` (a singleton axis lands on the centre)."""
    p = torch.as_tensor(points_yx, dtype=torch.float32)
    ys = norm_to_pixel(pixel_to_norm(p[..., 0], map_hw[0]), image_hw[0])
    xs = norm_to_pixel(pixel_to_norm(p[..., 1], map_hw[1]), image_hw[1])
    return torch.stack((ys, xs), dim=-1)


def image_to_map(
    points_yx: torch.Tensor, map_hw: tuple[int, int], image_hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of ``map_to_image``: (..., 2) image pixels (y, x) -> map pixels."""
    return map_to_image(points_yx, image_hw, map_hw)


def outside_map(points_yx: torch.Tensor, map_hw: tuple[int, int]) -> torch.Tensor:
    """Which (..., 2) map-pixel points lie outside the map's cells ``[-0.5, H - 0.5] x [-0.5, W - 0.5]``."""
    p = torch.as_tensor(points_yx, dtype=torch.float32)
    H, W = map_hw
    return (p[..., 0] < -0.5) | (p[..., 0] > H - 0.5) | (p[..., 1] < -0.5) | (p[..., 1] > W - 0.5)


def image_hw_of(image, map_hw: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) of the image, or the map's size when there is no image."""
    return tuple(map_hw) if image is None else tuple(style.as_hwc(image).shape[:2])


def setup_axes(
    image, map_hw: tuple[int, int], ax: Axes | None, title: str, alpha: float = 1.0
) -> tuple[Figure, Axes, tuple[int, int]]:
    """Show the image (or an empty map) and, when it is not the map's size, add the map's pixel axes."""
    img_hw = image_hw_of(image, map_hw)
    scaled = img_hw != tuple(map_hw)
    fig, ax = style.show_image(image, ax, title=title, size=map_hw, alpha=alpha,
                               unit="image pixels" if scaled else "pixels")
    if scaled:
        _map_axes(ax, map_hw, img_hw)
    return fig, ax, img_hw


def _map_axes(ax: Axes, map_hw: tuple[int, int], img_hw: tuple[int, int]) -> None:
    """Top and right axes graduated in map pixels."""
    for axis, i, name in (("x", 1, "top"), ("y", 0, "right")):
        n, m = map_hw[i], img_hw[i]
        k = (m - 1) / (n - 1) if n > 1 else 1.0
        fns = (lambda v, k=k: v / k, lambda v, k=k: v * k)
        if axis == "x":
            sec = ax.secondary_xaxis(name, functions=fns)
            sec.set_xlabel("x (map pixels)", fontsize="small", color="0.35")
        else:
            sec = ax.secondary_yaxis(name, functions=fns)
            sec.set_ylabel("y (map pixels)", fontsize="small", color="0.35")
        (sec.xaxis if axis == "x" else sec.yaxis).set_major_locator(MaxNLocator(integer=True))
        sec.tick_params(labelsize="small", colors="0.35")


def scatter(ax: Axes, points_yx: torch.Tensor, gid: str, label: str | None, **kw) -> PathCollection:
    """Scatter (..., 2) (y, x) points, tagged with ``gid``."""
    pts = style.xy(points_yx)  # (N, 2) as (x, y)
    sc = ax.scatter(pts[:, 0], pts[:, 1], label=label, **kw)
    sc.set_gid(gid)
    return sc


def check_query(query: tuple[int, int], H: int, W: int) -> tuple[int, int]:
    """The query as two ints inside the H x W map, or a ValueError naming it."""
    if len(query) != 2 or not all(_is_whole(v) for v in query):
        raise ValueError(f"query must be two whole pixel indices (y, x), got {tuple(query)!r}")
    y, x = int(query[0]), int(query[1])
    if not (0 <= y < H and 0 <= x < W):
        raise ValueError(f"query {(y, x)} is outside the {H}x{W} map (y in 0..{H - 1}, x in 0..{W - 1})")
    return y, x


def _is_whole(v) -> bool:
    """An int, a numpy int or a one-element integer tensor; not a bool, not a float such as 1.5."""
    if isinstance(v, torch.Tensor):
        return v.numel() == 1 and not v.is_floating_point() and not v.is_complex() and v.dtype != torch.bool
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_index(name: str, value, n: int) -> int:
    """``value`` as an int in 0..n-1, or a ValueError naming it (floats such as 1.5 and bools are refused)."""
    if not _is_whole(value):
        raise ValueError(f"{name} must be a whole number in 0..{n - 1}, got {value!r}")
    if not 0 <= int(value) < n:
        raise ValueError(f"{name} ({int(value)}) must be in 0..{n - 1}")
    return int(value)


def mark_query(ax: Axes, query: tuple[int, int], map_hw: tuple[int, int], img_hw: tuple[int, int]):
    """The query pixel as a star, in image pixels."""
    q = map_to_image(torch.tensor([float(query[0]), float(query[1])]), map_hw, img_hw)
    return scatter(ax, q, "query", style.LABELS["query"], **style.QUERY_STYLE)


def move_query(ax: Axes, query: tuple[int, int], map_hw: tuple[int, int], img_hw: tuple[int, int]) -> None:
    """Move the query star of ``ax`` (or draw one)."""
    star = find(ax, "query")
    y, x = check_query(query, *map_hw)
    if star is None:
        mark_query(ax, (y, x), map_hw, img_hw)
        return
    star.set_offsets(style.xy(map_to_image(torch.tensor([float(y), float(x)]), map_hw, img_hw)))


def cell_borders(ax: Axes, map_hw: tuple[int, int], img_hw: tuple[int, int], every: int = 1) -> None:
    """Thin lines between the map's pixels (every ``every``-th border), in image pixels."""
    H, W = map_hw
    ys = map_to_image(torch.stack((torch.arange(0, H + 1, every) - 0.5, torch.zeros(len(range(0, H + 1, every)))), -1),
                      map_hw, img_hw)[:, 0].numpy()
    xs = map_to_image(torch.stack((torch.zeros(len(range(0, W + 1, every))), torch.arange(0, W + 1, every) - 0.5), -1),
                      map_hw, img_hw)[:, 1].numpy()
    kw = dict(color=style.GRID_COLOR, lw=0.5, alpha=0.6, zorder=2)
    ax.hlines(ys, xs[0], xs[-1], **kw)
    ax.vlines(xs, ys[0], ys[-1], **kw)


def map_edge(ax: Axes, map_hw: tuple[int, int], img_hw: tuple[int, int]) -> Rectangle:
    """The outline of the map's cells (where zero padding begins), in image pixels."""
    H, W = map_hw
    (y0, x0), (y1, x1) = map_to_image(torch.tensor([[-0.5, -0.5], [H - 0.5, W - 0.5]]), map_hw, img_hw).tolist()
    rect = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=style.GRID_COLOR, lw=1.2, ls="--", zorder=3,
                     gid="map edge")
    ax.add_patch(rect)
    return rect


def fit_points(ax: Axes, points_yx: torch.Tensor, map_hw: tuple[int, int], img_hw: tuple[int, int]) -> None:
    """Widen the axes so that the image, the map's cells and every map-pixel point are in view."""
    H, W = map_hw
    corners = torch.tensor([[-0.5, -0.5], [H - 0.5, W - 0.5]])
    p = torch.cat((torch.as_tensor(points_yx, dtype=torch.float32).reshape(-1, 2), corners))
    img = map_to_image(p, map_hw, img_hw)  # (N, 2) image pixels
    pad = [0.6 * ((m - 1) / (n - 1) if n > 1 else 1.0) for m, n in zip(img_hw, map_hw, strict=True)]
    lo = torch.minimum(img.min(0).values, torch.tensor([-0.5, -0.5]))
    hi = torch.maximum(img.max(0).values, torch.tensor(img_hw, dtype=torch.float32) - 0.5)
    pts = p[:-2]  # points on the map's edge or beyond it get a margin, so that their markers show whole
    edge = ((pts[:, 0] <= -0.5) | (pts[:, 0] >= H - 0.5) | (pts[:, 1] <= -0.5) | (pts[:, 1] >= W - 0.5)).any()
    my, mx = pad if bool(edge) else (0.0, 0.0)
    ax.set_xlim(float(lo[1]) - mx, float(hi[1]) + mx)
    ax.set_ylim(float(hi[0]) + my, float(lo[0]) - my)  # origin top-left


def mark_outside(
    ax: Axes, points_yx: torch.Tensor, map_hw: tuple[int, int], img_hw: tuple[int, int],
    legend: bool | str = True,
) -> int:
    """Ring the map-pixel points that lie outside the map's cells; return how many there are.

    The rings are one artist (gid "outside") that ``update_outside`` moves; the legend entry is a proxy so
    that it shows even when no point is outside yet (``legend="auto"``: only when some point is outside).
    """
    pts = torch.as_tensor(points_yx, dtype=torch.float32).reshape(-1, 2)
    out = outside_map(pts, map_hw)
    scatter(ax, map_to_image(pts[out], map_hw, img_hw).reshape(-1, 2), "outside", None, **style.OUTSIDE_STYLE)
    if legend is True or (legend == "auto" and bool(out.any())):
        ax.plot([], [], ls="", marker="o", ms=9, mfc="none", mec=style.OUTSIDE_COLOR, mew=1.6,
                label=style.LABELS["outside"])
    return int(out.sum())


def update_outside(ax: Axes, points_yx: torch.Tensor, map_hw: tuple[int, int], img_hw: tuple[int, int]) -> int:
    """Move ``mark_outside``'s rings to the outside points of another point set; return their count."""
    pts = torch.as_tensor(points_yx, dtype=torch.float32).reshape(-1, 2)
    out = outside_map(pts, map_hw)
    find(ax, "outside").set_offsets(style.xy(map_to_image(pts[out], map_hw, img_hw)).reshape(-1, 2))
    return int(out.sum())


def outside_note(n_out: int, n: int) -> str:
    """``"19 of 100 off the map (ringed)"``, or ``"all 100 on the map"``."""
    return f"{n_out} of {n} off the map (ringed)" if n_out else f"all {n} on the map"


def find(ax: Axes, gid: str):
    """The first artist of ``ax`` with this gid, or None."""
    for artist in (*ax.collections, *ax.lines, *ax.texts, *ax.patches):
        if artist.get_gid() == gid:
            return artist
    return None


def find_all(ax: Axes, gid: str) -> list:
    """Every artist of ``ax`` with this gid."""
    return [a for a in (*ax.collections, *ax.lines, *ax.texts, *ax.patches) if a.get_gid() == gid]
