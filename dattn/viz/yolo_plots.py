"""Figures for the C3 fusion (notebook 5): parameters per layer, cost against input size, n/s/m/l/x."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import nn

from . import style


def plot_layer_params(model: nn.Module, highlight: str = "C3_DAttention", title: str | None = None) -> Figure:
    """Parameters of each yaml layer as bars, the layers of type ``highlight`` in the query colour."""
    layers = list(model.model)
    params = [sum(p.numel() for p in m.parameters()) / 1e6 for m in layers]
    names = [type(m).__name__ for m in layers]
    colors = [style.QUERY_COLOR if n == highlight else style.REFERENCE_COLOR for n in names]
    fig, ax = plt.subplots(figsize=(11, 3.6), layout="constrained")
    ax.bar(range(len(layers)), params, color=colors)
    ax.set_xticks(range(len(layers)), [f"{i} {n}" for i, n in enumerate(names)], rotation=70, fontsize=8)
    ax.set_ylabel("parameters (millions)")
    total = sum(params)
    ax.set_title(title or f"Parameters per layer: {total:.2f} M in all, {highlight} in orange")
    return fig


def plot_gflops_vs_size(
    sizes: Sequence[int], counted: dict[str, Sequence[float]], scaled: dict[str, Sequence[float | None]]
) -> Figure:
    """GFLOPs counted at each input size against YOLOv5's 32x32 profile scaled up, per model (left), and
    how much the scaled profile misses, in percent of the true count (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    colors = [style.QUERY_COLOR, style.REFERENCE_COLOR, style.OFFSET_COLOR, style.GRID_COLOR]
    for (name, true), color in zip(counted.items(), colors, strict=False):
        est = [np.nan if v is None else v for v in scaled[name]]
        axes[0].plot(sizes, true, "-o", color=color, label=f"{name}: counted at the size")
        axes[0].plot(sizes, est, "--x", color=color, label=f"{name}: 32x32 profile x (size/32)^2")
        missed = [100 * (t - e) / t for t, e in zip(true, est, strict=True)]
        axes[1].plot(sizes, missed, "-o", color=color, label=name)
    axes[0].set_ylabel("GFLOPs")
    axes[0].set_title("Counted at each size vs the scaled-up 32x32 profile")
    axes[1].set_ylabel("missed by the scaled profile (% of the count)")
    axes[1].set_title("Attention grows with pixels squared: the profile misses more as inputs grow")
    for ax in axes:
        ax.set_xlabel("input size (pixels, square)")
        ax.legend(fontsize=8)
    return fig


def plot_scaling(rows: list[dict]) -> Figure:
    """Parameters and GFLOPs of the baseline and the C3_DAttention model per scale (``scaling_table`` rows)."""
    scales = [r["scale"] for r in rows]
    xs = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    for ax, key, label in zip(axes, ("params", "gflops"), ("parameters (millions)", "GFLOPs at 640"), strict=True):
        div = 1e6 if key == "params" else 1.0
        base = [r[f"{key}_base"] / div for r in rows]
        attn = [r[f"{key}_attn"] / div for r in rows]
        ax.bar(xs - 0.2, base, 0.4, color=style.REFERENCE_COLOR, label="YOLOv5 (C3)")
        ax.bar(xs + 0.2, attn, 0.4, color=style.QUERY_COLOR, label="with C3_DAttention")
        for x, b, a in zip(xs, base, attn, strict=True):
            ax.annotate(f"+{100 * (a / b - 1):.1f}%", (x + 0.2, a), xytext=(0, 3), textcoords="offset points",
                        ha="center", fontsize=8)
        ax.set_xticks(xs, [f"yolov5{s}" for s in scales])
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle("What C3_DAttention at P5 adds, per model scale")
    return fig
