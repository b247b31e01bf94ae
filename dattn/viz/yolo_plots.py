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
    sizes: Sequence[int],
    yolov5: Sequence[float],
    counted: Sequence[float],
    unseen: Sequence[float],
    formula: Sequence[float],
) -> Figure:
    """Left: GFLOPs of one model against the input size, as YOLOv5's summary line prints them (thop) and as
    ``torch.utils.flop_counter`` counts them. Right: the GFLOPs thop cannot see (measured by torch's counter)
    beside the formula for them, log-log, each point labelled with its value."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    ax = axes[0]
    ax.plot(sizes, yolov5, "--s", color=style.REFERENCE_COLOR, mec="black", label="YOLOv5's summary line (thop)")
    ax.plot(sizes, counted, "-o", color=style.QUERY_COLOR, mec="black", label="torch.utils.flop_counter")
    for x, a, b in zip(sizes, yolov5, counted, strict=True):
        ax.annotate(f"{a:.1f} / {b:.1f}", (x, max(a, b)), xytext=(0, 6), textcoords="offset points", ha="center",
                    fontsize=8)
    ax.margins(y=0.12)
    ax.set_ylabel("GFLOPs per image")
    ax.set_title("GFLOPs per image, labelled YOLOv5's line / torch's count")
    ax = axes[1]
    ax.loglog(sizes, formula, "-", color=style.GRID_COLOR, label="formula")
    ax.loglog(sizes, unseen, "o", color=style.OFFSET_COLOR, mec="black", label="measured (torch's counter)")
    for x, u in zip(sizes, unseen, strict=True):
        ax.annotate(f"{u:.2f}", (x, u), xytext=(6, -10), textcoords="offset points", fontsize=8)
    ax.set_xticks(list(sizes), [str(x) for x in sizes])
    ax.minorticks_off()
    ax.set_ylabel("GFLOPs thop does not see")
    ax.set_title("What thop misses grows as the pixel count squared (stride 1)")
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
            fmt = ".2f" if key == "params" else ".1f"
            ax.annotate(f"{b:{fmt}} -> {a:{fmt}}\n+{100 * (a / b - 1):.1f}%", (x, a), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=8)
        ax.set_yscale("log")  # the scales differ 25-fold: on a linear axis the small model's bars vanish
        ax.set_ylim(min(base + attn) / 4, max(base + attn) * 4)  # room below the smallest bar, above for labels
        ax.set_xticks(xs, [f"yolov5{s}" for s in scales])
        ax.set_ylabel(label + ", log scale")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("What C3_DAttention at P5 adds, per model scale (values: without -> with the block)")
    return fig
