"""Static figures of deformable attention: reference grids, offsets, attention weights, bilinear reads.

Every function draws on the given ``ax`` (or a new figure) and returns the Figure. Positions are computed
on an ``H x W`` *map* (a feature map, pixel centres at integers, ``align_corners=True``) and drawn over an
image of any size: map pixel ``i`` of ``H`` sits at image coordinate ``i * (Himg - 1) / (H - 1)``, the same
correspondence ``F.interpolate(..., align_corners=True)`` uses (see ``map_to_image``). When the image and
the map differ in size the axes are in image pixels, with the map's pixels on the top and right axes.

Artists carry a ``gid`` naming what they show ("grid", "reference", "sampling", "offsets", "query",
"attention", "neighbours") so that tests and the widgets can find them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..attention import DAttention, DAttentionTrace
from ..geometry import REF_CONVENTIONS, norm_to_pixel, pixel_to_norm, reference_points
from ..offsets import key_grid_size
from ..sampling import corner_weights
from . import style
from .images import image_to_tensor

# ----------------------------------------------------------------------------------------------------------
# Coordinates: map pixels <-> image pixels
# ----------------------------------------------------------------------------------------------------------


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


def _image_hw(image, map_hw: tuple[int, int]) -> tuple[int, int]:
    return map_hw if image is None else tuple(style.as_hwc(image).shape[:2])


def _setup(
    image, map_hw: tuple[int, int], ax: Axes | None, title: str, alpha: float = 1.0
) -> tuple[Figure, Axes, tuple[int, int]]:
    """Show the image (or an empty map) and, when it is not the map's size, add the map's pixel axes."""
    img_hw = _image_hw(image, map_hw)
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


def _scatter(ax: Axes, points_yx: torch.Tensor, gid: str, label: str | None, **kw) -> PathCollection:
    pts = style.xy(points_yx)  # (N, 2) as (x, y)
    sc = ax.scatter(pts[:, 0], pts[:, 1], label=label, **kw)
    sc.set_gid(gid)
    return sc


def _check_query(query: tuple[int, int], H: int, W: int) -> tuple[int, int]:
    y, x = int(query[0]), int(query[1])
    if not (0 <= y < H and 0 <= x < W):
        raise ValueError(f"query {(y, x)} is outside the {H}x{W} map (y in 0..{H - 1}, x in 0..{W - 1})")
    return y, x


def _check_index(name: str, value: int, n: int) -> None:
    if not 0 <= value < n:
        raise ValueError(f"{name} ({value}) must be in 0..{n - 1}")


def mark_query(ax: Axes, query: tuple[int, int], map_hw: tuple[int, int], img_hw: tuple[int, int]):
    """The query pixel as a star, in image pixels."""
    q = map_to_image(torch.tensor([float(query[0]), float(query[1])]), map_hw, img_hw)
    return _scatter(ax, q, "query", style.LABELS["query"], **style.QUERY_STYLE)


def _cell_borders(ax: Axes, map_hw: tuple[int, int], img_hw: tuple[int, int], every: int = 1) -> None:
    """Thin lines between the map's pixels (every ``every``-th border), in image pixels."""
    H, W = map_hw
    ys = map_to_image(torch.stack((torch.arange(0, H + 1, every) - 0.5, torch.zeros(len(range(0, H + 1, every)))), -1),
                      map_hw, img_hw)[:, 0].numpy()
    xs = map_to_image(torch.stack((torch.zeros(len(range(0, W + 1, every))), torch.arange(0, W + 1, every) - 0.5), -1),
                      map_hw, img_hw)[:, 1].numpy()
    kw = dict(color=style.GRID_COLOR, lw=0.5, alpha=0.6, zorder=2)
    ax.hlines(ys, xs[0], xs[-1], **kw)
    ax.vlines(xs, ys[0], ys[-1], **kw)


# ----------------------------------------------------------------------------------------------------------
# Notebook 1: reference points
# ----------------------------------------------------------------------------------------------------------


def reference_grid_px(H: int, W: int, stride: int, convention: str = "seed", ksize: int = 3) -> torch.Tensor:
    """Reference points of an H x W map at this stride, in map pixels: (Hk, Wk, 2) as (y, x)."""
    Hk, Wk = key_grid_size(H, W, ksize, stride)
    ref = reference_points(Hk, Wk, H, W, convention)  # (Hk, Wk, 2) normalized
    return torch.stack((norm_to_pixel(ref[..., 0], H), norm_to_pixel(ref[..., 1], W)), dim=-1)


def plot_reference_grid(
    image, stride: int = 1, convention: str = "seed", ax: Axes | None = None,
    size: int | tuple[int, int] | None = None, ksize: int = 3,
) -> Figure:
    """The query pixels of a map and the reference points laid over it at ``stride``, in one convention.

    ``size`` is the map (S or (H, W)); by default the image itself is the map. ``image=None`` needs a size.
    """
    if convention not in REF_CONVENTIONS:
        raise ValueError(f"convention must be one of {REF_CONVENTIONS}, got {convention!r}")
    if size is None:
        if image is None:
            raise ValueError("plot_reference_grid needs an image or a map size")
        size = style.as_hwc(image).shape[:2]
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    ref = reference_grid_px(H, W, stride, convention, ksize)  # (Hk, Wk, 2) map pixels
    Hk, Wk = ref.shape[:2]
    title = f"{H}x{W} query pixels and {Hk}x{Wk} reference points\n(stride {stride}, {convention!r} convention)"
    fig, ax, img_hw = _setup(image, (H, W), ax, title, alpha=0.8)
    _cell_borders(ax, (H, W), img_hw)
    q = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).float()  # (H, W, 2)
    grid_style = dict(style.GRID_STYLE, s=max(4.0, 600.0 / max(H, W)) if max(H, W) > 16 else 40)
    _scatter(ax, map_to_image(q, (H, W), img_hw), "grid", style.LABELS["grid"], **grid_style)
    _scatter(ax, map_to_image(ref, (H, W), img_hw), "reference", style.LABELS["reference"], **style.REFERENCE_STYLE)
    # room for the seed's points that lie outside the map
    ref_img = map_to_image(ref, (H, W), img_hw).reshape(-1, 2)  # (Ns, 2) image pixels
    cell = [(m - 1) / (n - 1) if n > 1 else 1.0 for m, n in zip(img_hw, (H, W), strict=True)]
    lo = torch.minimum(ref_img.min(0).values, torch.tensor([-0.5, -0.5])) - 0.6 * torch.tensor(cell)
    hi = torch.maximum(ref_img.max(0).values, torch.tensor(img_hw) - 0.5) + 0.6 * torch.tensor(cell)
    ax.set_xlim(float(lo[1]), float(hi[1]))
    ax.set_ylim(float(hi[0]), float(lo[0]))
    style.legend(ax)
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
    _scatter(ax, q, "grid", "pixel centres", **dict(style.GRID_STYLE, s=40, zorder=6))
    _scatter(ax, centered, "centered", "centered", **dict(style.REFERENCE_STYLE, s=80, marker="o"))
    _scatter(ax, seed, "seed", "seed", **dict(style.REFERENCE_STYLE, s=80, marker="s", c=style.QUERY_COLOR))
    s, c = style.xy(seed), style.xy(centered)
    q_arrows = ax.quiver(c[:, 0], c[:, 1], s[:, 0] - c[:, 0], s[:, 1] - c[:, 1], angles="xy", scale_units="xy",
                         scale=1, color="0.3", width=0.006, zorder=3)
    q_arrows.set_gid("shift")
    shift = (seed - centered)[0, 0].tolist()
    ax.text(1.03, 0.62, f"seed - centered,\nfirst point:\ndy = {shift[0]:+.2f} px\ndx = {shift[1]:+.2f} px",
            transform=ax.transAxes, fontsize="small", va="top")
    ax.set_xlim(-0.9, W - 0.1 + 0.4)
    ax.set_ylim(H - 0.1 + 0.4, -0.9)
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))
    style.legend(ax, below=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


# ----------------------------------------------------------------------------------------------------------
# Notebook 2: offsets
# ----------------------------------------------------------------------------------------------------------


def _offset_arrows(trace: DAttentionTrace, group: int, batch: int, img_hw: tuple[int, int]):
    """Reference and sampling points of one group in image pixels, each (Ns, 2) as (x, y)."""
    map_hw = (trace.H, trace.W)
    ref = map_to_image(trace.reference_px, map_hw, img_hw)  # (Hk, Wk, 2)
    pos = map_to_image(trace.positions_px[batch, group], map_hw, img_hw)  # (Hk, Wk, 2)
    return style.xy(ref), style.xy(pos)


def _find(ax: Axes, gid: str):
    """The first artist of ``ax`` with this gid, or None."""
    for artist in (*ax.collections, *ax.lines, *ax.texts):
        if artist.get_gid() == gid:
            return artist
    return None


def _find_all(ax: Axes, gid: str) -> list:
    return [a for a in (*ax.collections, *ax.lines, *ax.texts) if a.get_gid() == gid]


def _offsets_title(trace: DAttentionTrace, group: int, query: tuple[int, int] | None = None) -> str:
    return f"Group {group}: offsets of the {trace.Hk}x{trace.Wk} reference points"


def plot_offsets(
    image, trace: DAttentionTrace, group: int = 0, ax: Axes | None = None, batch: int = 0,
    query: tuple[int, int] | None = None, title: str | None = None,
) -> Figure:
    """Arrows from each reference point to its sampling point (reference + offset) for one group."""
    _check_index("group", group, trace.n_groups)
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = _setup(image, map_hw, ax, title or _offsets_title(trace, group, query), alpha=0.75)
    r, p = _offset_arrows(trace, group, batch, img_hw)  # (Ns, 2) each, as (x, y)
    small = len(r) > 150  # many points: smaller markers
    arrows = ax.quiver(r[:, 0], r[:, 1], p[:, 0] - r[:, 0], p[:, 1] - r[:, 1], angles="xy", scale_units="xy",
                       scale=1, color=style.OFFSET_COLOR, width=0.004 if small else 0.006, headwidth=4,
                       headlength=4.5, headaxislength=4, zorder=4)
    arrows.set_gid("offsets")
    ax.plot([], [], color=style.OFFSET_COLOR, lw=2, label=style.LABELS["offset"])  # legend entry
    _scatter(ax, torch.tensor(r[:, ::-1].copy()), "reference", style.LABELS["reference"],
             **dict(style.REFERENCE_STYLE, s=10 if small else 22))
    _scatter(ax, torch.tensor(p[:, ::-1].copy()), "sampling", style.LABELS["sampling"],
             **dict(style.SAMPLING_STYLE, s=12 if small else 22))
    if query is not None:
        mark_query(ax, _check_query(query, *map_hw), map_hw, img_hw)
    style.legend(ax)
    return fig


def update_offsets(
    ax: Axes, trace: DAttentionTrace, group: int, query: tuple[int, int] | None = None, batch: int = 0,
    img_hw: tuple[int, int] | None = None, title: str | None = None,
) -> None:
    """Redraw ``plot_offsets``'s arrows for another group (and move its query) without a new axes."""
    _check_index("group", group, trace.n_groups)
    map_hw = (trace.H, trace.W)
    img_hw = img_hw or map_hw
    r, p = _offset_arrows(trace, group, batch, img_hw)
    _find(ax, "offsets").set_UVC(p[:, 0] - r[:, 0], p[:, 1] - r[:, 1])
    _find(ax, "sampling").set_offsets(p)
    if query is not None:
        _move_query(ax, query, map_hw, img_hw)
    ax.title.set_text(title or _offsets_title(trace, group, query))  # set_title would reset its position


def _move_query(ax: Axes, query: tuple[int, int], map_hw: tuple[int, int], img_hw: tuple[int, int]) -> None:
    star = _find(ax, "query")
    if star is None:
        mark_query(ax, _check_query(query, *map_hw), map_hw, img_hw)
        return
    y, x = _check_query(query, *map_hw)
    star.set_offsets(style.xy(map_to_image(torch.tensor([float(y), float(x)]), map_hw, img_hw)))


# ----------------------------------------------------------------------------------------------------------
# Notebook 4: attention of one query
# ----------------------------------------------------------------------------------------------------------


def query_attention(trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0):
    """Weights (Ns,) of one query and head over its group's keys, and their positions (Ns, 2) in map pixels."""
    y, x = _check_query(query, trace.H, trace.W)
    _check_index("head", head, trace.n_heads)
    weights = trace.attn[batch, head, y * trace.W + x]  # (Ns,)
    pos = rearrange(trace.positions_px[batch, trace.group_of_head(head)], "h w p -> (h w) p")  # (Ns, 2)
    return weights, pos


def attention_sizes(weights: torch.Tensor, wmax: float | None = None) -> np.ndarray:
    """Marker areas that grow with the weight: 8 points^2 for none, 260 for the largest."""
    w = weights.detach().cpu().numpy().astype(float)
    top = float(w.max()) if wmax is None else wmax
    return 8.0 + 252.0 * w / max(top, 1e-12)


def _attention_title(trace: DAttentionTrace, query: tuple[int, int], head: int) -> str:
    q = tuple(int(v) for v in query)
    top = float(query_attention(trace, query, head)[0].max())
    return f"Head {head} (group {trace.group_of_head(head)}): attention of query {q}\n(largest weight {top:.3f})"


def plot_attention(
    image, trace: DAttentionTrace, query: tuple[int, int] = (0, 0), head: int = 0, ax: Axes | None = None,
    batch: int = 0, colorbar: bool = True, title: str | None = None, relative: bool = False,
) -> Figure:
    """The sampling points of the head's group, coloured and sized by the query's attention weight.

    Points are drawn from the lightest to the heaviest weight, so the heavy ones are on top. Sizes are
    relative to this query's largest weight; colours run from 0 to that largest weight, or with
    ``relative=True`` show weight / largest weight on a fixed 0..1 scale (the explorer's choice: the largest
    weight of a query ranges from about 0.02 to 1 in an untrained model).
    """
    query_attention(trace, query, head, batch)  # validates before drawing
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = _setup(image, map_hw, ax, title or _attention_title(trace, query, head), alpha=0.6)
    sc = ax.scatter([], [], c=[], cmap=style.ATTENTION_CMAP, edgecolors=style.EDGE_COLOR, linewidths=0.4,
                    zorder=5, label="sampling points (by weight)")
    sc.set_gid("attention")
    mark_query(ax, query, map_hw, img_hw)
    update_attention(ax, trace, query, head, batch, img_hw, title, relative)
    if colorbar:
        label = style.LABELS["attention"] + (" / its largest" if relative else "")
        fig.colorbar(sc, ax=ax, shrink=0.8, label=label)
    style.legend(ax)
    return fig


def update_attention(
    ax: Axes, trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0,
    img_hw: tuple[int, int] | None = None, title: str | None = None, relative: bool = False,
) -> None:
    """Put another query's (or head's) weights on ``plot_attention``'s points, in place."""
    weights, pos = query_attention(trace, query, head, batch)  # (Ns,), (Ns, 2)
    map_hw = (trace.H, trace.W)
    img_hw = img_hw or map_hw
    order = torch.argsort(weights, stable=True)  # lightest first, heaviest drawn on top
    w = weights[order]
    sc = _find(ax, "attention")
    sc.set_offsets(style.xy(map_to_image(pos[order], map_hw, img_hw)))
    top = float(w[-1])
    sc.set_array(w.numpy() / top if relative else w.numpy())
    sc.set_sizes(attention_sizes(w))
    sc.set_clim(0.0, 1.0 if relative else top)
    _move_query(ax, query, map_hw, img_hw)
    ax.title.set_text(title or _attention_title(trace, query, head))  # set_title would reset its position


# ----------------------------------------------------------------------------------------------------------
# Notebook 3: bilinear sampling of one position
# ----------------------------------------------------------------------------------------------------------


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
    _scatter(ax, torch.zeros(2), "sampling", "sampling position", **dict(style.SAMPLING_STYLE, s=90))
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
    for (ny, nx, w), line, ann in zip(neigh, _find_all(ax, "link"), _find_all(ax, "weight"), strict=True):
        line.set_data([x, nx], [y, ny])
        line.set_linewidth(0.8 + 5 * w)
        inside = 0 <= ny < H and 0 <= nx < W
        dy, dx = (ny - y0) * 2 - 1, (nx - x0) * 2 - 1  # -1 above / left, +1 below / right
        ann.xy = (nx, ny)
        ann.set_position((nx + 0.28 * dx, ny + 0.3 * dy))
        ann.set_text(f"w = {w:.3f}" + ("" if inside else "\n(outside: 0)"))
    _find(ax, "neighbours").set_offsets([(nx, ny) for ny, nx, _ in neigh])
    _find(ax, "cell").set_data([x0, x0 + 1, x0 + 1, x0, x0], [y0, y0, y0 + 1, y0 + 1, y0])
    _find(ax, "sampling").set_offsets([(x, y)])
    ax.set_xlim(x0 - 1.0, x0 + 2.0)
    ax.set_ylim(y0 + 2.0, y0 - 1.0)
    ax.set_xticks(range(x0 - 1, x0 + 3))
    ax.set_yticks(range(y0 - 1, y0 + 3))
    value = bilinear_value(a, (y, x))
    shown = f" = {float(value):.3f}" if np.ndim(value) == 0 else ""
    ax.title.set_text(title or f"Bilinear read at (y, x) = ({y:.2f}, {x:.2f}){shown}")


# ----------------------------------------------------------------------------------------------------------
# Everything together: a randomly initialised DAttention on image features
# ----------------------------------------------------------------------------------------------------------


def box_blur(x: torch.Tensor, k: tuple[int, int]) -> torch.Tensor:
    """Centred box blur of (N, C, H, W) with odd widths k = (ky, kx), replicate padding, via cumulative sums."""
    for dim, width in ((2, k[0]), (3, k[1])):
        if width > 1:
            r = width // 2
            pad = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
            c = F.pad(x, pad, mode="replicate").cumsum(dim)
            c = torch.cat((torch.zeros_like(c.narrow(dim, 0, 1)), c), dim)  # leading zero row / column
            n = x.shape[dim]
            x = (c.narrow(dim, width, n) - c.narrow(dim, 0, n)) / width
    return x


def resize_image(image, size: int | tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) image -> (1, 3, S, S) tensor, blurred then resized with align_corners=True so that map pixel
    i is the (smoothed) image at ``i * (H - 1) / (S - 1)`` (see ``map_to_image``)."""
    S = (size, size) if isinstance(size, int) else tuple(size)
    x = image_to_tensor(np.asarray(image))  # (1, 3, H, W)
    k = tuple(max(1, int(round(n / s))) // 2 * 2 + 1 for n, s in zip(x.shape[-2:], S, strict=True))  # odd
    x = box_blur(x, k)  # against aliasing; a centred blur moves no pixel centre
    return F.interpolate(x, size=S, mode="bilinear", align_corners=True)  # (1, 3, S, S)


def features_from_image(image, channels: int = 32, size: int = 20, seed: int = 0) -> torch.Tensor:
    """A deterministic (1, C, S, S) feature map of an RGB image, so that a random DAttention sees the image.

    Eight base channels (centred RGB, luminance, its y and x gradients, y and x position ramps) are each
    standardized and mixed by a fixed random 1x1 projection seeded by ``seed``.
    """
    rgb = resize_image(image, size)[0]  # (3, S, S)
    lum = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)  # (S, S)
    gy, gx = torch.gradient(lum)
    ramp_y, ramp_x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    base = torch.stack((*(rgb - 0.5), lum - 0.5, gy, gx, ramp_y, ramp_x))  # (8, S, S)
    base = (base - base.mean((1, 2), keepdim=True)) / (base.std((1, 2), keepdim=True) + 1e-6)
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(channels, base.shape[0], generator=g) / base.shape[0] ** 0.5  # (C, 8)
    feats = torch.einsum("cb, b h w -> c h w", proj, base)  # (C, S, S)
    return feats[None]  # (1, C, S, S)


def build_model(
    channels: int = 32, size: int = 20, n_heads: int = 8, n_groups: int = 4, stride: int = 1,
    offset_range_factor: float = 4.0, seed: int = 0, sharpness: float = 8.0, offset_gain: float = 2.0,
    ref_convention: str = "seed",
) -> DAttention:
    """A randomly initialised DAttention for the pictures, the same weights for every stride and factor.

    Untrained, its offsets are tiny and its attention almost uniform; for the pictures the query and key
    projections are scaled by ``sqrt(sharpness)`` and the offset network's last conv by ``offset_gain``.
    """
    torch.manual_seed(seed)
    m = DAttention(channels, (size, size), n_heads=n_heads, n_groups=n_groups, stride=stride,
                   offset_range_factor=offset_range_factor, ref_convention=ref_convention)
    with torch.no_grad():
        for proj in (m.proj_q, m.proj_k):
            proj.weight.mul_(sharpness**0.5)
        m.conv_offset[-1].weight.mul_(offset_gain)
    return m.eval()


def map_luminance(image, map_hw: tuple[int, int]) -> np.ndarray:
    """The image's luminance at the map's resolution, (H, W): what the bilinear panel reads from."""
    rgb = resize_image(image, map_hw)[0]  # (3, H, W)
    return (rgb * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0).numpy()


def heaviest_key(trace: DAttentionTrace, query: tuple[int, int], head: int) -> tuple[int, float, tuple]:
    """Index, weight and (y, x) map position of the key the query attends to most in this head."""
    weights, pos = query_attention(trace, query, head)
    best = int(weights.argmax())
    return best, float(weights[best]), tuple(pos[best].tolist())


def _panel(fig: Figure, name: str) -> Axes:
    return next(ax for ax in fig.axes if ax.get_label() == name)


def _bilinear_title(trace: DAttentionTrace, query, head) -> tuple[str, tuple]:
    _, w, (y, x) = heaviest_key(trace, query, head)
    return (f"Its heaviest key ({w:.3f}), at ({y:.2f}, {x:.2f}),\n"
            f"read from 4 neighbours on the {trace.H}x{trace.W} map"), (y, x)


def explorer_figure(
    model: DAttention | None, image, query: tuple[int, int] = (10, 10), head: int = 0, stride: int = 1,
    offset_range_factor: float = 4.0, size: int = 20, group: int | None = None,
    trace: DAttentionTrace | None = None, fig: Figure | None = None, lum: np.ndarray | None = None,
) -> Figure:
    """Three panels for one query and head: a group's offsets (by default the head's group), the query's
    attention over the head's sampled keys (coloured relative to its largest weight),
    and the bilinear read of its heaviest key on the map's luminance.

    ``model=None`` builds one with ``build_model(size=size, stride=stride, offset_range_factor=...)``;
    a given ``trace`` (of ``features_from_image(image, ...)``) skips the forward pass. ``update_explorer``
    moves the query, head or group of the figure in place.
    """
    if trace is None:
        if model is None:
            model = build_model(size=size, stride=stride, offset_range_factor=offset_range_factor)
        trace = model.trace(features_from_image(image, model.channel, model.q_h))
    if model is not None:
        stride, offset_range_factor = model.stride, model.offset_range_factor
    group = trace.group_of_head(head) if group is None else group
    lum = map_luminance(image, (trace.H, trace.W)) if lum is None else lum
    if fig is None:
        fig = plt.figure(figsize=(15.0, 5.0), layout="constrained")
    else:
        fig.clear()
        fig.set_layout_engine("constrained")
    fig.suptitle(f"Deformable attention on a {trace.H}x{trace.W} map of the image: stride {stride}, "
                 f"offset_range_factor {offset_range_factor:g}, {trace.n_heads} heads in {trace.n_groups} groups")
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=(1, 1.2, 0.9)))
    for ax, name in zip(axes, ("offsets", "attention", "bilinear"), strict=True):
        ax.set_label(name)
    plot_offsets(image, trace, group, axes[0], query=query)
    plot_attention(image, trace, query, head, axes[1], relative=True)
    title, pos = _bilinear_title(trace, query, head)
    plot_bilinear(lum, pos, axes[2], title=title, legend=False)
    axes[2].set_xlabel("x (map pixels)")
    axes[2].set_ylabel("y (map pixels)")
    return fig


def update_explorer(
    fig: Figure, trace: DAttentionTrace, image_hw: tuple[int, int], lum: np.ndarray,
    query: tuple[int, int], head: int, group: int | None = None,
) -> Figure:
    """Move an ``explorer_figure`` to another query, head or group without rebuilding it (same trace)."""
    group = trace.group_of_head(head) if group is None else group
    update_offsets(_panel(fig, "offsets"), trace, group, query, img_hw=image_hw)
    update_attention(_panel(fig, "attention"), trace, query, head, img_hw=image_hw, relative=True)
    title, pos = _bilinear_title(trace, query, head)
    update_bilinear(_panel(fig, "bilinear"), lum, pos, title=title)
    return fig
