"""Figures of attention (notebook 4): one query's weights over its head's keys, position encodings, cost."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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
from .offset_plots import all_points_px


# ----------------------------------------------------------------------------------------------------------
# One query's attention
# ----------------------------------------------------------------------------------------------------------
def query_attention(trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0):
    """Weights (Ns,) of one query and head over its group's keys, and their positions (Ns, 2) in map pixels."""
    y, x = check_query(query, trace.H, trace.W)
    head = check_index("head", head, trace.n_heads)
    weights = trace.attn[batch, head, y * trace.W + x]  # (Ns,)
    pos = rearrange(trace.positions_px[batch, trace.group_of_head(head)], "h w p -> (h w) p")  # (Ns, 2)
    return weights, pos


def attention_sizes(weights: torch.Tensor, wmax: float | None = None) -> np.ndarray:
    """Marker areas that grow with the weight: 8 points^2 for none, 260 for the largest."""
    w = weights.detach().cpu().numpy().astype(float)
    top = float(w.max()) if wmax is None else wmax
    return 8.0 + 252.0 * w / max(top, 1e-12)


def attention_title(trace: DAttentionTrace, query: tuple[int, int], head: int, label: str | None = None) -> str:
    """The default title: head, group, query, the largest weight, and how many keys lie off the map."""
    q = tuple(int(v) for v in query)
    weights, pos = query_attention(trace, query, head)
    n_out = int(outside_map(pos, (trace.H, trace.W)).sum())
    start = f"{label}: h" if label else "H"
    return (f"{start}ead {head} (group {trace.group_of_head(head)}): attention of query {q}\n"
            f"largest weight {float(weights.max()):.3f}; {outside_note(n_out, len(weights))}")


def plot_attention(
    image, trace: DAttentionTrace, query: tuple[int, int] = (0, 0), head: int = 0, ax: Axes | None = None,
    batch: int = 0, colorbar: bool = True, title: str | None = None, relative: bool = False,
    label: str | None = None,
) -> Figure:
    """The sampling points of the head's group, coloured and sized by the query's attention weight.

    Points are drawn from the lightest to the heaviest weight, so the heavy ones are on top. Sizes are
    relative to this query's largest weight; colours run from 0 to that largest weight, or with
    ``relative=True`` show weight / largest weight on a fixed 0..1 scale. Keys off the map are drawn and
    ringed. ``label`` (e.g. "untrained DAttention") starts the default title.
    """
    query_attention(trace, query, head, batch)  # validates before drawing
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = setup_axes(image, map_hw, ax, "", alpha=0.6)
    map_edge(ax, map_hw, img_hw)
    sc = ax.scatter([], [], c=[], cmap=style.ATTENTION_CMAP, edgecolors=style.EDGE_COLOR, linewidths=0.4,
                    zorder=5, label="sampling points (by weight)")
    sc.set_gid("attention")
    mark_query(ax, query, map_hw, img_hw)
    mark_outside(ax, torch.zeros(0, 2), map_hw, img_hw)
    fit_points(ax, all_points_px(trace, batch), map_hw, img_hw)
    update_attention(ax, trace, query, head, batch, img_hw, title, relative, label)
    if colorbar:
        cb_label = style.LABELS["attention"] + (" / its largest" if relative else "")
        fig.colorbar(sc, ax=ax, shrink=0.8, label=cb_label)
    style.legend(ax, ncols=2)
    return fig


def update_attention(
    ax: Axes, trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0,
    img_hw: tuple[int, int] | None = None, title: str | None = None, relative: bool = False,
    label: str | None = None,
) -> None:
    """Put another query's (or head's) weights on ``plot_attention``'s points, in place."""
    weights, pos = query_attention(trace, query, head, batch)  # (Ns,), (Ns, 2)
    map_hw = (trace.H, trace.W)
    img_hw = img_hw or map_hw
    order = torch.argsort(weights, stable=True)  # lightest first, heaviest drawn on top
    w = weights[order]
    sc = find(ax, "attention")
    sc.set_offsets(style.xy(map_to_image(pos[order], map_hw, img_hw)))
    top = float(w[-1])
    sc.set_array(w.numpy() / top if relative else w.numpy())
    sc.set_sizes(attention_sizes(w))
    sc.set_clim(0.0, 1.0 if relative else top)
    update_outside(ax, pos, map_hw, img_hw)
    move_query(ax, query, map_hw, img_hw)
    ax.title.set_text(title or attention_title(trace, query, head, label))  # set_title would reset its position


# ----------------------------------------------------------------------------------------------------------
# Position encodings and cost
# ----------------------------------------------------------------------------------------------------------


def query_bias(trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0):
    """Position bias (Ns,) that one query gives its head's keys, and the keys' positions (Ns, 2) in map pixels."""
    if trace.bias is None:
        raise ValueError("this trace has no additive position bias (dwc_pe or no position encoding)")
    y, x = check_query(query, trace.H, trace.W)
    head = check_index("head", head, trace.n_heads)
    bias = trace.bias[batch, head, y * trace.W + x]  # (Ns,)
    pos = rearrange(trace.positions_px[batch, trace.group_of_head(head)], "h w p -> (h w) p")  # (Ns, 2)
    return bias, pos


def plot_position_bias(image, trace: DAttentionTrace, query: tuple[int, int], head: int = 0, batch: int = 0) -> Figure:
    """The additive bias one query gives each sampled key of a head, drawn at the keys' positions."""
    bias, pos = query_bias(trace, query, head, batch)
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = setup_axes(image, map_hw, None, "", alpha=0.5)
    map_edge(ax, map_hw, img_hw)
    sc = scatter(ax, map_to_image(pos, map_hw, img_hw), "bias", "sampling points", c=bias.numpy(),
                 cmap="magma", s=70, edgecolors="black", linewidths=0.5, zorder=5)
    mark_query(ax, query, map_hw, img_hw)
    n_out = mark_outside(ax, pos, map_hw, img_hw, legend="auto")
    fit_points(ax, pos, map_hw, img_hw)
    ax.set_title(f"Position bias of query {tuple(query)}, head {head}, read at each key's deformed position\n"
                 f"{outside_note(n_out, len(pos))}")
    fig.colorbar(sc, ax=ax, shrink=0.8, label="bias added to the score")
    style.legend(ax, ncols=2)
    return fig


def log_spacing(d: torch.Tensor) -> torch.Tensor:
    """The log_cpb input transform of a normalized displacement: sign(4d) log2(1 + |4d|) / log2(8)."""
    d = d * 4.0
    return torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8.0)


def plot_log_cpb_spacing() -> Figure:
    """log_cpb's input against the displacement: fine near the query, coarse far away."""
    d = torch.linspace(-2, 2, 401)
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    ax.plot(d, log_spacing(d), color=style.OFFSET_COLOR, lw=2, label="log-spaced input of the MLP")
    ax.plot(d, d, color=style.GRID_COLOR, ls="--", label="the displacement itself")
    ax.set_xlabel("displacement query - key (normalized units)")
    ax.set_ylabel("MLP input")
    ax.set_title("log_cpb: small displacements are told apart finely, large ones coarsely")
    ax.legend(fontsize=8)
    return fig


def plot_cost(rows: list[dict]) -> Figure:
    """The rows of ``dattn.cost.cost_table``: GFLOPs (the attention products' share hatched), memory (the
    HW x keys weights the explicit path holds, and the fused path's peak), and wall time (best run as the
    bar, the range of all runs as a line), with the numbers written on the bars."""
    names = [r["name"] for r in rows]
    xs = np.arange(len(rows))
    colors = [style.QUERY_COLOR if n == "dense" else style.REFERENCE_COLOR for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0), layout="constrained")
    ax = axes[0]
    ax.bar(xs, [r["gflops"] for r in rows], color=colors, edgecolor="black", lw=0.5, label="whole forward")
    ax.bar(xs, [r["attention_gflops"] for r in rows], color="none", edgecolor="black", hatch="//", lw=0.5,
           label="of which q k and weights v")
    for x, r in zip(xs, rows, strict=True):
        ax.annotate(f"{r['gflops']:.3f}", (x, r["gflops"]), ha="center", va="bottom", fontsize=8)
    ax.set_title("GFLOPs (torch's counter; the same on every run)")
    ax = axes[1]
    ax.bar(xs - 0.2, [r["scores_mib"] for r in rows], 0.4, color=style.GRID_COLOR,
           label="the HW x keys weights of all heads (an explicit path holds them)")
    ax.bar(xs + 0.2, [r["peak_mib_fused"] for r in rows], 0.4, color=colors, edgecolor="black", lw=0.5,
           label="fused path: peak tensor memory")
    for x, r in zip(xs, rows, strict=True):
        ax.annotate(f"{r['scores_mib']:.1f}", (x - 0.2, r["scores_mib"]), ha="center", va="bottom", fontsize=8)
        ax.annotate(f"{r['peak_mib_fused']:.1f}", (x + 0.2, r["peak_mib_fused"]), ha="center", va="bottom",
                    fontsize=8)
    ax.set_title("memory of one forward (MiB)")
    ax = axes[2]
    best = np.array([r["ms_best"] for r in rows])
    ax.bar(xs, best, color=colors, edgecolor="black", lw=0.5, label="best run")
    ax.vlines(xs, best, [r["ms_worst"] for r in rows], color="black", lw=1.5, label="range of the runs")
    for x, r in zip(xs, rows, strict=True):
        ax.annotate(f"{r['ms_best']:.0f}", (x, r["ms_best"]), xytext=(4, 2), textcoords="offset points",
                    fontsize=8)
    ax.set_title("wall time per forward (ms), one thread: this machine only")
    # the bar colours say dense or DAttention, so each panel's legend draws its kinds of bars without them
    plain = dict(facecolor="white", edgecolor="black", lw=0.5)
    handles = [[Patch(**plain, label="whole forward"), Patch(**plain, hatch="//", label="of which q k and weights v")],
               [Patch(color=style.GRID_COLOR, label="the HW x keys weights of all heads (an explicit path holds them)"),
                Patch(**plain, label="fused path: peak tensor memory")],
               [Patch(**plain, label="best run"), Line2D([], [], color="black", lw=1.5, label="range of the runs")]]
    for ax, hs in zip(axes, handles, strict=True):
        ax.set_xticks(xs, names, rotation=30)
        ax.legend(handles=hs, fontsize=7)
    fig.legend(handles=[Patch(color=style.QUERY_COLOR, label="dense attention (every pixel a key)"),
                        Patch(color=style.REFERENCE_COLOR, label="DAttention (sampled keys)")],
               loc="outside lower center", ncols=2, fontsize=8)
    keys = ", ".join(f"{r['name']}: {r['keys']}" for r in rows)
    fig.suptitle(f"One inference forward. Keys per query: {keys}", fontsize=10)
    return fig
