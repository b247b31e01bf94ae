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


def plot_block_paths(columns: dict[str, tuple[Sequence[str], Sequence[tuple[int, int, str, str]]]]) -> Figure:
    """Data paths of blocks, one column each, input at the top. ``columns``: title -> (steps, joins): ``steps``
    are the box labels in order (a label with "attention" is drawn in the query colour); a join
    ``(a, b, op, side)`` takes the input of step ``a`` around steps a..b on a side path labelled ``side`` and
    merges it after step ``b`` with ``op`` ("+" for a residual, "cat" for a concatenation)."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.3 * len(columns), 5.4), layout="constrained")
    N = max(len(steps) for steps, _ in columns.values())  # the same vertical scale in every column
    for ax, (title, (steps, joins)) in zip(np.atleast_1d(axes), columns.items(), strict=True):
        n = len(steps)
        y = {i: 2 * (N - i) for i in range(n)}  # step i's box centre, top to bottom
        merge = {b: op for _, b, op, _ in joins}  # a merge node below step b
        ax.annotate("input", (0, y[0] + 1.0), ha="center", va="center", fontsize=9)
        ax.annotate("", (0, y[0] + 0.45), xytext=(0, y[0] + 0.8), arrowprops=dict(arrowstyle="->"))
        for i, label in enumerate(steps):
            color = style.QUERY_COLOR if "attention" in label.lower() else style.REFERENCE_COLOR
            ax.text(0, y[i], label, ha="center", va="center", fontsize=8.5, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="black", alpha=0.9, lw=0.8))
            below = y[i] - 2  # the next box's centre, or the output's
            if i in merge:
                ax.annotate("", (0, y[i] - 0.85), xytext=(0, y[i] - 0.4), arrowprops=dict(arrowstyle="->"))
                ax.text(0, y[i] - 1.05, merge[i], ha="center", va="center", fontsize=8, zorder=3,
                        bbox=dict(boxstyle="circle,pad=0.2", fc="white", ec="black", lw=0.8))
                ax.annotate("", (0, below + 0.45), xytext=(0, y[i] - 1.3), arrowprops=dict(arrowstyle="->"))
            else:
                ax.annotate("", (0, below + 0.45), xytext=(0, y[i] - 0.4), arrowprops=dict(arrowstyle="->"))
        for a, b, _, side in joins:
            top, bottom = y[a] + 0.7, y[b] - 1.05
            ax.plot([0, 1.1, 1.1], [top, top, bottom], color=style.OFFSET_COLOR, lw=1.6)
            ax.annotate("", (0.22, bottom), xytext=(1.1, bottom),
                        arrowprops=dict(arrowstyle="->", color=style.OFFSET_COLOR, lw=1.6))
            ax.text(1.18, (top + bottom) / 2, side, rotation=90, va="center", ha="left", fontsize=8,
                    color=style.OFFSET_COLOR)
        ax.annotate("output", (0, y[n - 1] - 2 + 0.15), ha="center", va="center", fontsize=9)
        ax.set_xlim(-1.6, 1.8)
        ax.set_ylim(-0.3, 2 * N + 1.4)
        ax.set_title(title, fontsize=9.5)
        ax.axis("off")
    fig.suptitle("Data paths, input at the top (green: paths around the steps they skip)")
    return fig
