"""The explorer's figure: a group's offsets, one query's attention over the keys, and one bilinear read."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..attention import DAttention, DAttentionTrace
from .attention_plots import plot_attention, query_attention, update_attention
from .bilinear_plots import plot_bilinear, update_bilinear
from .features import build_model, features_from_image, map_luminance
from .mapping import check_index, check_query, outside_map, outside_note
from .offset_plots import plot_offsets, update_offsets


def heaviest_key(trace: DAttentionTrace, query: tuple[int, int], head: int) -> tuple[int, float, tuple]:
    """Index, weight and (y, x) map position of the key the query attends to most in this head."""
    weights, pos = query_attention(trace, query, head)
    best = int(weights.argmax())
    return best, float(weights[best]), tuple(pos[best].tolist())


def _panel(fig: Figure, name: str) -> Axes:
    return next(ax for ax in fig.axes if ax.get_label() == name)


def _offsets_panel_title(trace: DAttentionTrace, group: int) -> str:
    n_out = int(outside_map(trace.positions_px[0, group], (trace.H, trace.W)).sum())
    return (f"Group {group}: {trace.Hk}x{trace.Wk} keys, for every query\n"
            f"{outside_note(n_out, trace.Hk * trace.Wk)}")


def _bilinear_title(trace: DAttentionTrace, query, head) -> tuple[str, tuple]:
    _, w, (y, x) = heaviest_key(trace, query, head)
    return (f"Heaviest key ({w:.3f}) at ({y:.2f}, {x:.2f}):\n"
            f"its 4 neighbours, on the map's luminance"), (y, x)


def explorer_figure(
    model: DAttention | None, image, query: tuple[int, int] = (10, 10), head: int = 0, stride: int = 1,
    offset_range_factor: float = 4.0, size: int = 20, group: int | None = None,
    trace: DAttentionTrace | None = None, fig: Figure | None = None, lum: np.ndarray | None = None,
    label: str | None = "untrained DAttention",
) -> Figure:
    """Three panels for one query and head: a group's offsets (by default the head's group), the query's
    attention over the head's sampled keys (coloured relative to its largest weight),
    and the bilinear read of its heaviest key on the map's luminance.

    The offsets panel has no query: every query of the map attends to the same sampled keys. ``label``
    names the module in the title (the default says it is untrained: pass another for a trained one).
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
    group = trace.group_of_head(check_index("head", head, trace.n_heads)) if group is None else group
    lum = map_luminance(image, (trace.H, trace.W)) if lum is None else lum
    if fig is None:
        fig = plt.figure(figsize=(15.0, 5.0), layout="constrained")
    else:
        fig.clear()
        fig.set_layout_engine("constrained")
    fig.suptitle(f"{label or 'DAttention'}, {trace.H}x{trace.W} map, stride {stride}, factor "
                 f"{offset_range_factor:g}, {trace.n_heads} heads in {trace.n_groups} groups: "
                 f"every query attends to the same keys")
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=(1, 1.2, 0.9)))
    for ax, name in zip(axes, ("offsets", "attention", "bilinear"), strict=True):
        ax.set_label(name)
    plot_offsets(image, trace, group, axes[0], title=_offsets_panel_title(trace, group))
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
    check_query(query, trace.H, trace.W)
    check_index("head", head, trace.n_heads)
    update_offsets(_panel(fig, "offsets"), trace, group, img_hw=image_hw, title=_offsets_panel_title(trace, group))
    update_attention(_panel(fig, "attention"), trace, query, head, img_hw=image_hw, relative=True)
    title, pos = _bilinear_title(trace, query, head)
    update_bilinear(_panel(fig, "bilinear"), lum, pos, title=title)
    return fig
