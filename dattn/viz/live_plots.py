"""The live explorer's picture in matplotlib: what static viewers show (nbmake, nbconvert, GitHub, the README),
and what ``LiveExplorer.update`` returns. Same drawing as ``static/live.js``: every group's keys (shared by all
queries), the selected head's group sized and coloured by the query's weights, one key index joined across the
groups, and the weights as bars with their values written out.
"""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import style
from .live_data import ExplorerData
from .trained_plots import GROUP_COLORS, GROUP_MARKERS, outline, scatter_keys


def explorer_state(data: ExplorerData, selection: dict) -> dict:
    """The numbers one state shows: the view, the head's group, the weights (Ns,), the heaviest and the
    highlighted key (``selection["key"]``, or the heaviest when it is None)."""
    s = selection
    v = data.views[s["input"]][s["option"]]
    w = data.weights(s["input"], s["option"], s["head"], tuple(s["query"]))  # (Ns,)
    heaviest = int(np.argmax(w))
    key = heaviest if s.get("key") is None else int(s["key"])
    return dict(view=v, group=data.group_of_head(s["head"]), weights=w, heaviest=heaviest, key=key)


def dependence_note(data: ExplorerData, selection: dict) -> str:
    """How much the query matters for this head, in words (as the live widget writes it)."""
    dep = data.views[selection["input"]][selection["option"]].dependence[selection["head"]]
    note = (f"head {selection['head']}: for {100 * dep['share']:.0f}% of the {data.H * data.W} queries key "
            f"{dep['key']} is the heaviest; median largest weight {dep['median_max']:.2f}")
    return note + (" (moving the query changes these weights little)" if dep["share"] >= 0.9 else "")


def live_explorer_figure(data: ExplorerData, selection: dict) -> Figure:
    """Two panels for one state of the explorer: the keys on the image, and the query's weights per key."""
    st = explorer_state(data, selection)
    v, g, w, key = st["view"], st["group"], st["weights"], st["key"]
    s = selection
    qy, qx = s["query"]
    Ns = v.Hk * v.Wk
    fig = Figure(figsize=(12.5, 5.6), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=(1.1, 1))
    style.show_image(data.images[s["input"]], ax, alpha=0.8)
    if data.masks and data.masks[s["input"]] is not None:
        outline(ax, torch.as_tensor(data.masks[s["input"]]))
    y0, x0, y1, x1 = data.map_edge
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=1.0, ec=style.GRID_COLOR, zorder=2))
    ref, pos = style.xy(v.reference), v.positions  # (Ns, 2) as (x, y); (g, Ns, 2) as (y, x)
    ax.scatter(*ref.T, **dict(style.REFERENCE_STYLE, s=14), label=style.LABELS["reference"])
    p = style.xy(pos[g])
    ax.quiver(ref[:, 0], ref[:, 1], p[:, 0] - ref[:, 0], p[:, 1] - ref[:, 1], angles="xy", scale_units="xy", scale=1,
              color=style.OFFSET_COLOR, width=0.004, zorder=4, label=f"offsets of group {g}")
    for gg in range(data.n_groups):
        if gg != g:
            scatter_keys(ax, torch.as_tensor(pos[gg]), gg, s=22, label=f"keys of group {gg}")
    wmax = max(float(w.max()), 1e-12)
    order = np.argsort(w, kind="stable")
    sizes = 14 + 220 * w[order] / wmax
    ax.scatter(*p[order].T, s=sizes * 2.2, c="white", linewidths=0, zorder=4.5)
    ax.scatter(*p[order].T, s=sizes, c=w[order] / wmax, cmap=style.ATTENTION_CMAP, vmin=0, vmax=1,
               marker=GROUP_MARKERS[g % len(GROUP_MARKERS)], edgecolors="black", linewidths=0.8, zorder=5,
               label=f"keys of group {g}, by weight")
    out = style.xy(pos[v.outside]) if v.outside.any() else np.zeros((0, 2))
    ax.scatter(*out.T, **style.OUTSIDE_STYLE, label=style.LABELS["outside"] if len(out) else None)
    joined = style.xy(pos[:, key])  # (g, 2): key index `key` in every group
    if data.n_groups > 1:
        ax.plot(*joined.T, color="black", lw=3.2, zorder=6)
        ax.plot(*joined.T, color="white", lw=1.4, ls="--", zorder=6.1, label=f"key {key} in every group")
    qi = qy * data.W + qx
    ax.scatter([data.queries[qi, 1]], [data.queries[qi, 0]], **style.QUERY_STYLE, label=style.LABELS["query"])
    for i in order[-3:]:
        ax.annotate(f"{w[i]:.3f}", p[i], xytext=(7, 6), textcoords="offset points", fontsize=8, zorder=7,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    b = data.bounds()
    ax.set_xlim(b[1], b[3])
    ax.set_ylim(b[2], b[0])
    name = f"{data.input_names[s['input']]}, " if len(data.images) > 1 else ""
    opt = f", {data.option_name} {data.options[s['option']]}" if len(data.options) > 1 else ""
    ax.set_title(f"{name}head {s['head']} (group {g}){opt}: query ({qy}, {qx})\n"
                 f"the keys are the same for every query; only their weights change", fontsize=10)
    style.legend(ax, ncols=3)

    cmap = matplotlib.colormaps[style.ATTENTION_CMAP]
    bars = bx.bar(np.arange(Ns), w, color=cmap(w / wmax), edgecolor="black", linewidth=0.3 if Ns > 40 else 0.6)
    bars[key].set_edgecolor("black")
    bars[key].set_linewidth(2.0)
    bx.set_xlabel(f"key index of group {g} (row-major over its {v.Hk}x{v.Wk} grid)")
    bx.set_ylabel("attention weight")
    top = order[::-1][:3]
    lines = [f"key {i} at ({pos[g, i, 0]:.1f}, {pos[g, i, 1]:.1f}): {w[i]:.3f}" for i in top]
    bx.set_title(f"Weights of query ({qy}, {qx}), head {s['head']}, over group {g}'s {Ns} keys", fontsize=10)
    reads = ", ".join(f"group {gg} reads ({pos[gg, key, 0]:.1f}, {pos[gg, key, 1]:.1f})" for gg in range(data.n_groups))
    text = "largest: " + "; ".join(lines) + f"\nkey {key}: {reads}\n" + dependence_note(data, s)
    bx.text(0.02, 0.97, "\n".join(textwrap.fill(t, 70) for t in text.split("\n")), transform=bx.transAxes, va="top",
            fontsize=8, bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.7", alpha=0.9))
    bx.set_ylim(0, max(wmax * 1.6, 1e-3))
    fig.suptitle(textwrap.fill(f"{data.title}. {data.label}", 150), fontsize=10)
    return fig


__all__ = ["GROUP_COLORS", "dependence_note", "explorer_state", "live_explorer_figure"]
