"""Figures for position encodings and the cost of attention (notebook 4)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.figure import Figure

from ..attention import DAttentionTrace
from . import style
from .plots import _check_index, _check_query, _scatter, _setup, map_to_image, mark_query


def query_bias(trace: DAttentionTrace, query: tuple[int, int], head: int, batch: int = 0):
    """Position bias (Ns,) that one query gives its head's keys, and the keys' positions (Ns, 2) in map pixels."""
    if trace.bias is None:
        raise ValueError("this trace has no additive position bias (dwc_pe or no position encoding)")
    y, x = _check_query(query, trace.H, trace.W)
    _check_index("head", head, trace.n_heads)
    bias = trace.bias[batch, head, y * trace.W + x]  # (Ns,)
    pos = rearrange(trace.positions_px[batch, trace.group_of_head(head)], "h w p -> (h w) p")  # (Ns, 2)
    return bias, pos


def plot_position_bias(image, trace: DAttentionTrace, query: tuple[int, int], head: int = 0, batch: int = 0) -> Figure:
    """The additive bias one query gives each sampled key of a head, drawn at the keys' positions."""
    bias, pos = query_bias(trace, query, head, batch)
    map_hw = (trace.H, trace.W)
    fig, ax, img_hw = _setup(image, map_hw, None, f"Position bias of query {tuple(query)}, head {head}, "
                                                  "read at each key's deformed position", alpha=0.5)
    sc = _scatter(ax, map_to_image(pos, map_hw, img_hw), "bias", "sampling points", c=bias.numpy(),
                  cmap="magma", s=70, edgecolors="black", linewidths=0.5, zorder=5)
    mark_query(ax, query, map_hw, img_hw)
    fig.colorbar(sc, ax=ax, shrink=0.8, label="bias added to the score")
    style.legend(ax)
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
    """Bars of GFLOPs, time and peak memory for the rows of ``dattn.cost.cost_table``."""
    names = [r["name"] for r in rows]
    colors = [style.QUERY_COLOR if n == "dense" else style.REFERENCE_COLOR for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    for ax, key, label in zip(axes, ("gflops", "ms", "peak"), ("GFLOPs", "time per forward (ms)",
                                                                "peak tensor memory (MiB)"), strict=True):
        if key == "peak":
            explicit = [r["peak_mib_explicit"] or 0.0 for r in rows]
            fused = [r["peak_mib_fused"] for r in rows]
            xs = np.arange(len(rows))
            ax.bar(xs - 0.2, explicit, 0.4, color=style.GRID_COLOR, label="explicit path (holds the weights)")
            ax.bar(xs + 0.2, fused, 0.4, color=colors, label="fused path (forward)")
            ax.set_xticks(xs, names)
            ax.legend(fontsize=8)
        else:
            ax.bar(names, [r[key] for r in rows], color=colors)
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    keys = ", ".join(f"{r['name']}: {r['keys']}" for r in rows)
    fig.suptitle(f"One forward, measured here. Keys per query: {keys}", fontsize=10)
    return fig
