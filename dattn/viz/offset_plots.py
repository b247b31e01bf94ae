"""Figures of offsets (notebook 2): arrows from each reference point to its sampling point, for one group."""

from __future__ import annotations

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..attention import DAttentionTrace
from . import style
from .mapping import (
    check_index,
    check_query,
    find,
    fit_points,
    map_edge,
    map_to_image,
    mark_outside,
    mark_query,
    move_query,
    outside_map,
    outside_note,
    scatter,
    setup_axes,
    update_outside,
)


def _offset_arrows(trace: DAttentionTrace, group: int, batch: int, img_hw: tuple[int, int]):
    """Reference and sampling points of one group in image pixels, each (Ns, 2) as (x, y)."""
    map_hw = (trace.H, trace.W)
    ref = map_to_image(trace.reference_px, map_hw, img_hw)  # (Hk, Wk, 2)
    pos = map_to_image(trace.positions_px[batch, group], map_hw, img_hw)  # (Hk, Wk, 2)
    return style.xy(ref), style.xy(pos)


def all_points_px(trace: DAttentionTrace, batch: int = 0) -> torch.Tensor:
    """Every reference and sampling point of the trace (all groups), (N, 2) map pixels: what the axes show."""
    return torch.cat((trace.reference_px.reshape(-1, 2), trace.positions_px[batch].reshape(-1, 2)))


def offsets_title(trace: DAttentionTrace, group: int, batch: int = 0, label: str | None = None) -> str:
    """The default title: the group, the grid, and how many sampling points lie off the map."""
    n_out = int(_outside_count(trace, group, batch))
    head = f"{label}, " if label else ""
    return (f"{head}group {group}: offsets of {trace.Hk}x{trace.Wk} keys\n"
            f"{outside_note(n_out, trace.Hk * trace.Wk)}")


def _outside_count(trace: DAttentionTrace, group: int, batch: int) -> int:
    return int(outside_map(trace.positions_px[batch, group], (trace.H, trace.W)).sum())


def plot_offsets(
    image, trace: DAttentionTrace, group: int = 0, ax: Axes | None = None, batch: int = 0,
    query: tuple[int, int] | None = None, title: str | None = None, label: str | None = None,
) -> Figure:
    """Arrows from each reference point to its sampling point (reference + offset) for one group.

    Every point is drawn: the axes widen to show the points of all groups that fall off the map, and the
    sampling points outside it are ringed and counted in the title. ``label`` (e.g. "untrained DAttention")
    starts the default title.
    """
    group = check_index("group", group, trace.n_groups)
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = setup_axes(image, map_hw, ax, "", alpha=0.75)
    map_edge(ax, map_hw, img_hw)
    r, p = _offset_arrows(trace, group, batch, img_hw)  # (Ns, 2) each, as (x, y)
    small = len(r) > 150  # many points: smaller markers
    arrows = ax.quiver(r[:, 0], r[:, 1], p[:, 0] - r[:, 0], p[:, 1] - r[:, 1], angles="xy", scale_units="xy",
                       scale=1, color=style.OFFSET_COLOR, width=0.004 if small else 0.006, headwidth=4,
                       headlength=4.5, headaxislength=4, zorder=4)
    arrows.set_gid("offsets")
    ax.plot([], [], color=style.OFFSET_COLOR, lw=2, label=style.LABELS["offset"])  # legend entry
    scatter(ax, torch.tensor(r[:, ::-1].copy()), "reference", style.LABELS["reference"],
            **dict(style.REFERENCE_STYLE, s=10 if small else 22))
    scatter(ax, torch.tensor(p[:, ::-1].copy()), "sampling", style.LABELS["sampling"],
            **dict(style.SAMPLING_STYLE, s=12 if small else 22))
    mark_outside(ax, trace.positions_px[batch, group], map_hw, img_hw)
    if query is not None:
        mark_query(ax, check_query(query, *map_hw), map_hw, img_hw)
    fit_points(ax, all_points_px(trace, batch), map_hw, img_hw)
    ax.set_title(title or offsets_title(trace, group, batch, label))
    style.legend(ax, ncols=2)
    return fig


def update_offsets(
    ax: Axes, trace: DAttentionTrace, group: int, query: tuple[int, int] | None = None, batch: int = 0,
    img_hw: tuple[int, int] | None = None, title: str | None = None, label: str | None = None,
) -> None:
    """Redraw ``plot_offsets``'s arrows for another group (and move its query) without a new axes."""
    group = check_index("group", group, trace.n_groups)
    map_hw = (trace.H, trace.W)
    img_hw = img_hw or map_hw
    if query is not None:
        check_query(query, *map_hw)
    r, p = _offset_arrows(trace, group, batch, img_hw)
    find(ax, "offsets").set_UVC(p[:, 0] - r[:, 0], p[:, 1] - r[:, 1])
    find(ax, "sampling").set_offsets(p)
    update_outside(ax, trace.positions_px[batch, group], map_hw, img_hw)
    if query is not None:
        move_query(ax, query, map_hw, img_hw)
    ax.title.set_text(title or offsets_title(trace, group, batch, label))  # set_title would reset its position
