"""Figures that compare the trained variants (notebook 6): accuracy over seeds, where the keys are, how far
from the object, what each group does, and accuracy as the key grid gets coarser.

Every bar carries its value as text; variants keep one colour in every figure (``VARIANT_COLORS``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from . import style
from .trained_plots import GROUP_COLORS

VARIANT_COLORS = {"deformable": style.SAMPLING_COLOR, "fixed": style.REFERENCE_COLOR, "dense": style.GRID_COLOR}
AREA_COLOR = "#BBBBBB"


def _label_bars(ax, bars, values: Sequence[float], fmt: str = "{:.3f}") -> None:
    for b, v in zip(bars, values, strict=True):
        ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=9)


def plot_accuracy(runs: Sequence[dict], variants: Sequence[str] = ("deformable", "fixed", "dense"),
                  chance: float | None = None) -> Figure:
    """Held-out accuracy per variant: the mean over seeds as a bar, each seed as a dot, min-max as a bar."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    means = []
    for i, v in enumerate(variants):
        acc = np.array([r["accuracy"] for r in runs if r["variant"] == v])
        means.append(acc.mean())
        ax.bar(i, acc.mean(), color=VARIANT_COLORS[v], edgecolor="black", linewidth=0.6, width=0.6)
        ax.errorbar(i, acc.mean(), yerr=[[acc.mean() - acc.min()], [acc.max() - acc.mean()]], color="black",
                    capsize=6, lw=1.2)
        ax.scatter(np.full(len(acc), i) + np.linspace(-0.12, 0.12, len(acc)), acc, s=22, c="white",
                   edgecolors="black", zorder=5, label="one seed" if i == 0 else None)
        ax.annotate(f"{acc.mean():.3f}\n({len(acc)} seeds, {acc.min():.3f}-{acc.max():.3f})", (i, acc.max()),
                    xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8.5)
    if chance is not None:
        ax.axhline(chance, color="black", ls=":", lw=1, label=f"chance ({chance:.3f})")
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylim(0, 1.22)
    ax.set_ylabel("held-out accuracy")
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    ax.set_title("Same data, budget and seeds: held-out accuracy of each variant")
    return fig


def plot_key_shares(rows: dict[str, dict], colors: Sequence[str] | None = None) -> Figure:
    """Two panels of bars, one bar per row of ``rows`` (label -> ``placement_summary``): the share of keys on
    an object (left, against the objects' area) and the share of scenes where some key reads the object."""
    labels = list(rows)
    colors = list(colors or [VARIANT_COLORS["fixed"], VARIANT_COLORS["deformable"]][: len(labels)])
    area = next(iter(rows.values()))["object_area"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    vals = [area] + [r["keys_on_objects"] for r in rows.values()]
    bars = a.bar(["objects' area", *labels], [100 * v for v in vals], color=[AREA_COLOR, *colors],
                 edgecolor="black", linewidth=0.6)
    _label_bars(a, bars, [100 * v for v in vals], "{:.1f}%")
    a.set_ylabel("% of keys on an object")
    a.set_title("Keys on the object (the pixel a key falls in)")
    vals = [r["scenes_reached"] for r in rows.values()]
    bars = b.bar(labels, [100 * v for v in vals], color=colors, edgecolor="black", linewidth=0.6)
    _label_bars(b, bars, [100 * v for v in vals], "{:.1f}%")
    b.set_ylabel("% of scenes")
    b.set_ylim(0, 115)
    b.set_title("Scenes where at least one key's read touches the object")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8.5)
    fig.suptitle("Held-out scenes: do the keys find the object?")
    return fig


def plot_distances(before: torch.Tensor, after: torch.Tensor, labels: Sequence[str] = ("before training",
                   "after training")) -> Figure:
    """How far keys are from the nearest object pixel (image pixels), before and after training.

    before, after (N, n_blocks, g, Hk, Wk): left, every key; right, the nearest key of each group in each
    scene. Histograms in % with their medians as vertical lines and in the legend.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.7), layout="constrained")
    nearest = [t.flatten(3).min(-1).values for t in (before, after)]
    for ax, (b, a), what in zip(axes, ((before, after), nearest), ("every key", "each group's nearest key"),
                                strict=True):
        b, a = b.flatten().numpy(), a.flatten().numpy()
        bins = np.linspace(0, max(b.max(), a.max()) + 0.5, 36)
        for d, label, c, hatch, ls in ((b, labels[0], style.REFERENCE_COLOR, None, ":"),
                                       (a, labels[1], style.SAMPLING_COLOR, "//", "--")):
            ax.hist(d, bins=bins, weights=np.full(len(d), 100 / len(d)), color=c, alpha=0.75, edgecolor="black",
                    linewidth=0.4, hatch=hatch, label=f"{label} (median {np.median(d):.1f} px)")
            ax.axvline(np.median(d), color="black", ls=ls, lw=1.2)
        ax.set_xlabel("distance to the nearest object pixel (image pixels)")
        ax.set_ylabel("% of keys" if what == "every key" else "% of (scene, group) pairs")
        ax.legend(fontsize=9)
        ax.set_title(what)
    fig.suptitle("How far the keys are from the object")
    return fig


def plot_group_stats(summary: dict) -> Figure:
    """What each group does: how often it has a key on the object, how near its nearest key is, how far its
    keys move (``placement_summary``'s per-group lists)."""
    n = len(summary["group_keys_on_objects"])
    panels = (("group_scenes_with_key_on_objects", "% of scenes with one of\nits keys on the object", 100, "{:.1f}%"),
              ("group_nearest_distance_mean", "mean distance of its nearest\nkey to the object (px)", 1, "{:.2f}"),
              ("group_offset_px_mean", "mean offset length of\nits keys (px)", 1, "{:.2f}"))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
    for ax, (key, ylabel, scale, fmt) in zip(axes, panels, strict=True):
        vals = [scale * v for v in summary[key]]
        bars = ax.bar([f"group {g}" for g in range(n)], vals, color=GROUP_COLORS[:n], edgecolor="black", linewidth=0.6)
        _label_bars(ax, bars, vals, fmt)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)
    fig.suptitle("Each group places its own keys: what the groups of the trained model do")
    return fig


def plot_stride_sweep(runs: Sequence[dict], predicted: dict[int, float] | None = None,
                      dense: float | None = None, chance: float | None = None) -> Figure:
    """Accuracy against the number of keys per group (coarser grids to the left), for deformable and fixed,
    with the fixed grid's accuracy predicted from geometry alone and the dense model's as a line."""
    fig, ax = plt.subplots(figsize=(7.2, 4), layout="constrained")
    for v, marker in (("deformable", "D"), ("fixed", "o")):
        rs = sorted((r for r in runs if r["variant"] == v), key=lambda r: r["key_grid"])
        if not rs:
            continue
        x = [r["key_grid"] ** 2 for r in rs]
        y = [r["accuracy"] for r in rs]
        ax.plot(x, y, marker=marker, color=VARIANT_COLORS[v], mec="black", ms=8, lw=2, label=f"{v} (trained)")
        for xi, yi in zip(x, y, strict=True):
            ax.annotate(f"{yi:.2f}", (xi, yi), xytext=(0, 8 if v == "deformable" else -14), textcoords="offset points",
                        ha="center", fontsize=8)
    if predicted:
        ks = sorted(set(predicted) | {r["key_grid"] ** 2 for r in runs})  # a grid without a prediction: a gap
        ax.plot(ks, [predicted.get(k, np.nan) for k in ks], ls="--", color="black", marker="x",
                label="fixed, predicted from geometry")
    if dense is not None:
        ax.axhline(dense, color=VARIANT_COLORS["dense"], lw=1.2, label=f"dense ({dense:.3f})")
    if chance is not None:
        ax.axhline(chance, color="black", ls=":", lw=1, label=f"chance ({chance:.3f})")
    ax.set_xscale("log", base=2)
    counts = sorted({r["key_grid"] ** 2 for r in runs})
    ax.set_xticks(counts, [f"{k}\n({math.isqrt(k)}x{math.isqrt(k)})" for k in counts])  # the measured grids
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("keys per group (log scale; coarser grid to the left)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8.5, loc="lower right")
    ax.set_title("As the key grid gets coarser")
    return fig
