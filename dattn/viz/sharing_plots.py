"""DAT's central idea as figures: every query attends to the same keys, with its own weights; beside it,
per-query sampling points (Deformable DETR's scheme); and what one key of a head really mixes.

Positions are (y, x) pixels of an ``H x W`` map drawn over an image of any size, as in every map figure
(``dattn.viz.mapping``): the map's edge is dashed, every point is drawn, and points off the map (which read
zero padding) are ringed and counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..attention import DAttentionTrace
from . import style
from .mapping import check_index, fit_points, map_edge, map_to_image, mark_outside, outside_note, setup_axes

QUERY_MARKERS = ("*", "P")  # query A, query B
POINT_COLORS = (style.QUERY_COLOR, style.OUTSIDE_COLOR)  # each query's own points (vermillion, blue)


def _points(p) -> torch.Tensor:
    """Positions or weights as a detached float tensor on the CPU (accepts tensors, arrays, lists)."""
    return torch.as_tensor(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=torch.float32)


def _axes(ax: Axes, image, map_hw, title: str, mask) -> tuple[int, int]:
    _, _, img_hw = setup_axes(image, map_hw, ax, title, alpha=0.8)
    map_edge(ax, map_hw, img_hw)
    if mask is not None:  # object outline, black under white: visible on any colour
        m = np.asarray(_points(mask))
        ax.contour(m, levels=[0.5], colors="black", linewidths=2.4, zorder=3)
        ax.contour(m, levels=[0.5], colors="white", linewidths=1.0, zorder=3.1)
    return img_hw


def _query(ax: Axes, q: torch.Tensor, map_hw, img_hw, i: int, name: str) -> None:
    y, x = map_to_image(q, map_hw, img_hw).tolist()
    # above the keys and their value labels (zorder 7): a query on its heaviest key stays visible
    ax.scatter([x], [y], **dict(style.QUERY_STYLE, marker=QUERY_MARKERS[i % 2], zorder=8), label=f"query {name}",
               gid="query")


def plot_query_weights(
    ax: Axes, image, keys: torch.Tensor, weights: torch.Tensor, query, map_hw: tuple[int, int], name: str = "A",
    index: int = 0, mask=None, vmax: float | None = None, title: str | None = None, n_values: int = 3,
):
    """One query's weights (Ns,) over shared keys (Ns, 2) of an ``map_hw`` map, the query (y, x) marked.
    Colour and size follow the weight on 0..``vmax``; the ``n_values`` largest are written beside their keys.
    Returns the keys' scatter (gid "keys")."""
    keys, w, query = _points(keys).reshape(-1, 2), _points(weights).reshape(-1), _points(query).reshape(2)
    if len(keys) != len(w):
        raise ValueError(f"{len(keys)} keys but {len(w)} weights")
    img_hw = _axes(ax, image, map_hw, "", mask)
    top = float(w.max()) if vmax is None else vmax
    order = torch.argsort(w, stable=True)  # heaviest drawn last, on top
    pts, wo = style.xy(map_to_image(keys[order], map_hw, img_hw)), w[order].numpy()
    sizes = (8 + 160 * wo / max(top, 1e-12)) * (1.0 if len(keys) <= 30 else 0.45)
    ax.scatter(*pts.T, s=sizes * 2.0, c="white", marker="D", linewidths=0, zorder=4.5)  # halo
    sc = ax.scatter(*pts.T, c=wo, s=sizes, cmap=style.ATTENTION_CMAP, vmin=0, vmax=top, marker="D",
                    edgecolors=style.EDGE_COLOR, linewidths=0.6, zorder=5, label="shared keys (by weight)")
    sc.set_gid("keys")
    qxy = style.xy(map_to_image(query[None], map_hw, img_hw))[0]
    for j in np.argsort(-wo, kind="stable")[:n_values]:
        # written on the side of the key away from the query, so that the query's marker does not hide it
        sx, sy = (1 if pts[j][0] >= qxy[0] else -1), (1 if pts[j][1] <= qxy[1] else -1)  # image y grows down
        ax.annotate(f"{wo[j]:.2f}", pts[j], xytext=(6 * sx, 5 * sy), textcoords="offset points", fontsize=8,
                    zorder=7, ha="left" if sx > 0 else "right", va="bottom" if sy > 0 else "top",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    n_out = mark_outside(ax, keys, map_hw, img_hw, legend="auto")
    _query(ax, query, map_hw, img_hw, index, name)
    fit_points(ax, torch.cat((keys, query[None])), map_hw, img_hw)
    head = title or f"query {name}: its weights over the shared keys"
    ax.set_title(f"{head}\n{outside_note(n_out, len(keys))}")
    return sc


def plot_per_query_points(
    ax: Axes, image, points: torch.Tensor, queries, map_hw: tuple[int, int], weights: torch.Tensor | None = None,
    names: Sequence[str] = "AB", mask=None, title: str | None = None,
) -> list:
    """Each query's own sampling points, points (Q, K, 2) and queries (Q, 2) in map pixels, a line from each
    query to its points; ``weights`` (Q, K) size them and the largest of each query is written beside it.
    Returns one scatter per query (gid "points")."""
    points, queries = _points(points), _points(queries).reshape(-1, 2)
    if points.dim() != 3 or points.shape[0] != len(queries) or points.shape[-1] != 2:
        raise ValueError(f"points must be (Q, K, 2) for {len(queries)} queries, got {tuple(points.shape)}")
    img_hw = _axes(ax, image, map_hw, "", mask)
    drawn = []
    for i, (pts_q, q) in enumerate(zip(points, queries, strict=True)):
        pts = style.xy(map_to_image(pts_q, map_hw, img_hw))
        qy, qx = map_to_image(q, map_hw, img_hw).tolist()
        for p in pts:
            ax.plot([qx, p[0]], [qy, p[1]], color=POINT_COLORS[i % 2], lw=1.2, zorder=4)
        w = None if weights is None else _points(weights[i]).reshape(-1).numpy()
        s = 40 if w is None else 12 + 100 * w / max(w.max(), 1e-12)
        sc = ax.scatter(*pts.T, s=s, c=POINT_COLORS[i % 2], marker="o", edgecolors="white", linewidths=1.0,
                        zorder=5, label=f"query {names[i]}'s own points")
        sc.set_gid("points")
        drawn.append(sc)
        if w is not None:
            j = int(np.argmax(w))
            ax.annotate(f"{w[j]:.2f}", pts[j], xytext=(6, -12), textcoords="offset points", fontsize=8, zorder=7,
                        color=POINT_COLORS[i % 2], bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none",
                                                             alpha=0.85))
        _query(ax, q, map_hw, img_hw, i, names[i])
    n_out = mark_outside(ax, points.reshape(-1, 2), map_hw, img_hw, legend="auto")
    fit_points(ax, torch.cat((points.reshape(-1, 2), queries)), map_hw, img_hw)
    ax.set_title(f"{title or 'per-query points: each query reads its own'}\n"
                 f"{outside_note(n_out, points.shape[0] * points.shape[1])}")
    return drawn


def plot_shared_vs_per_query(
    image, keys: torch.Tensor, weights: torch.Tensor, queries, points: torch.Tensor, map_hw: tuple[int, int],
    point_weights: torch.Tensor | None = None, mask=None, label: str = "DAttention",
    points_label: str = "Deformable DETR's scheme\n(an untrained per-query linear layer, an illustration)",
) -> Figure:
    """Left and middle: two queries (2, 2) over the same keys (Ns, 2), each with its own weights (2, Ns), on
    one colour scale; right: the two queries' own points (2, K, 2). All in pixels of the ``map_hw`` map.
    ``label`` names the model of the left panels (say "untrained" when it is), ``points_label`` the right."""
    weights, keys, queries = _points(weights), _points(keys), _points(queries).reshape(-1, 2)
    if weights.dim() != 2 or weights.shape[0] != 2 or len(queries) != 2:
        raise ValueError(f"weights must be (2, Ns) and queries (2, 2), got {tuple(weights.shape)} and "
                         f"{tuple(queries.shape)}")
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 5.6), layout="constrained")
    vmax = float(weights.max())
    for i, name in enumerate("AB"):
        sc = plot_query_weights(axes[i], image, keys, weights[i], queries[i], map_hw, name, i, mask, vmax=vmax,
                                title=f"{label}\nquery {name}: its weights over the {len(keys)} shared keys")
        style.legend(axes[i], ncols=2)
    fig.colorbar(sc, ax=axes[:2], shrink=0.7, label=style.LABELS["attention"])
    plot_per_query_points(axes[2], image, points, queries, map_hw, point_weights, mask=mask,
                          title=f"{points_label}:\neach query predicts its own {points.shape[1]} points")
    style.legend(axes[2], ncols=2)
    fig.suptitle("DAT: the same keys for every query, only the weights differ (left, middle);  "
                 "per-query sampling: every query reads its own points (right)")
    return fig


def plot_key_sources(image, trace: DAttentionTrace, key: int, head: int, ax: Axes | None = None,
                     batch: int = 0) -> Figure:
    """What key ``key`` of a head is made of: proj_k mixes all C channels, so it holds what every group read
    at its ``key``-th sampling point. Draws those g positions, linked; the head's own group's is filled."""
    head = check_index("head", head, trace.n_heads)
    key = check_index("key", key, trace.Hk * trace.Wk)
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = setup_axes(image, map_hw, ax, "", alpha=0.8)
    map_edge(ax, map_hw, img_hw)
    src = rearrange(trace.positions_px[batch], "g h w p -> g (h w) p")[:, key]  # (g, 2) map pixels
    own = trace.group_of_head(head)
    pts = style.xy(map_to_image(src, map_hw, img_hw))
    ax.plot(*np.vstack([pts, pts[:1]]).T, color=style.GRID_COLOR, lw=1.4, ls=":", zorder=4)
    # labels in a column at the right, top to bottom in the order of the reads, each linked to its read: reads
    # that nearly coincide keep separate labels
    rank = {gi: r for r, gi in enumerate(np.argsort(pts[:, 1], kind="stable"))}
    for gi, p in enumerate(pts):
        filled = gi == own
        # the head's group's (large, filled) below the others' (small, white): coinciding reads stay visible
        ax.scatter([p[0]], [p[1]], s=170 if filled else 60, marker="D",
                   c=style.SAMPLING_COLOR if filled else "white", edgecolors=style.EDGE_COLOR, linewidths=1.2,
                   zorder=5 if filled else 6, gid="sources",
                   label=f"group {gi}'s read #{key}" + (" (head's group)" if filled else ""))
        ax.annotate(f"g{gi}", p, xytext=(0.95, 0.85 - 0.7 * rank[gi] / max(len(pts) - 1, 1)),
                    textcoords="axes fraction", fontsize=9, zorder=7, ha="center", va="center",
                    arrowprops=dict(arrowstyle="-", lw=0.6, color=style.EDGE_COLOR, alpha=0.7),
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=style.EDGE_COLOR, lw=0.5))
    n_out = mark_outside(ax, src, map_hw, img_hw, legend="auto")
    fit_points(ax, rearrange(trace.positions_px[batch], "g h w p -> (g h w) p"), map_hw, img_hw)
    ax.set_title(f"key {key} of head {head} mixes what all {trace.n_groups} groups read at index {key}\n"
                 f"{outside_note(n_out, trace.n_groups)}")
    style.legend(ax, ncols=2)
    return fig
