"""Figures of the trained detectors (notebook 7): results per seed, training curves, detections on val images,
and where the trained attention puts its weight.

The two models keep one colour each in every figure (``KIND_COLORS``); seeds are told apart by line style and
marker, and every bar carries its value as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import style

KIND_COLORS = {"stock": "#0072B2", "c3_dattention": style.QUERY_COLOR}  # Okabe-Ito blue, vermillion
KIND_LABELS = {"stock": "yolov5n (stock C3)", "c3_dattention": "yolov5n + C3_DAttention"}
CLASS_COLORS = ("#E69F00", "#56B4E9", "#009E73")  # Okabe-Ito orange, sky blue, bluish green
SEED_STYLES = ("-", "--", ":", "-.")
SEED_MARKERS = ("o", "s", "^", "D")


def as_unit_float(image) -> np.ndarray:
    """An image as (H, W, 3) floats in [0, 1]; uint8 pixels are divided by 255."""
    if isinstance(image, torch.Tensor):  # as_hwc moves a tensor's channel axis last
        return style.as_hwc(image.float() / 255 if image.dtype == torch.uint8 else image)
    a = np.asarray(image)
    return style.as_hwc(a.astype(np.float32) / 255 if a.dtype == np.uint8 else a)


def plot_results(records: list[dict[str, Any]], metrics: Sequence[str] = ("mAP50", "mAP50-95")) -> Figure:
    """Each model's val metrics: one dot per seed and a bar at their mean, values written beside them."""
    kinds = [k for k in KIND_COLORS if any(r["kind"] == k for r in records)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), layout="constrained")
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        for i, kind in enumerate(kinds):
            runs = sorted((r for r in records if r["kind"] == kind), key=lambda r: r["seed"])
            values = [r["metrics"][m] for r in runs]
            mean = float(np.mean(values))
            ax.bar(i, mean, width=0.6, color=KIND_COLORS[kind], alpha=0.35, edgecolor=KIND_COLORS[kind])
            ax.annotate(f"mean\n{mean:.3f}", (i, mean / 2), ha="center", va="center", fontsize=9,
                        fontweight="bold")  # inside the bar: clear of the seeds' labels
            for j, (r, v) in enumerate(zip(runs, values, strict=True)):
                x = i + 0.12 * (j - (len(runs) - 1) / 2)
                ax.scatter([x], [v], color=KIND_COLORS[kind], marker=SEED_MARKERS[j % 4], edgecolors="black",
                           linewidths=0.6, zorder=3, s=40, label=f"seed {r['seed']}" if i == 0 else None)
            top = 1.05 * max(r["metrics"][m] for r in records) + 0.05
            gap, last = 0.045 * top, -1.0  # labels in a column right of the dots, at least a line apart
            for r, v in sorted(zip(runs, values, strict=True), key=lambda rv: rv[1]):
                last = max(v, last + gap)
                ax.annotate(f"seed {r['seed']}: {v:.3f}", (i + 0.2, last), va="center", fontsize=7)
        ax.set_xticks(range(len(kinds)), [KIND_LABELS[k] for k in kinds], fontsize=8)
        ax.set_ylabel(f"val {m}")
        ax.set_ylim(0, 1.05 * max(r["metrics"][m] for r in records) + 0.05)
        ax.set_xlim(-0.5, len(kinds) - 0.5 + 0.25)
        ax.set_title(f"val {m}: each seed and the mean")
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="lower left")
    return fig


def plot_training_curves(records: list[dict[str, Any]]) -> Figure:
    """Per epoch, from YOLOv5's results.csv: val mAP50, val mAP50-95 and the summed training loss."""
    panels = [("metrics/mAP_0.5", "val mAP50"), ("metrics/mAP_0.5:0.95", "val mAP50-95"),
              (("train/box_loss", "train/obj_loss", "train/cls_loss"), "training loss (box + obj + cls)")]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8), layout="constrained")
    for ax, (cols, title) in zip(axes, panels, strict=True):
        for r in records:
            c = r["curves"]
            y = np.sum([c[k] for k in cols], 0) if isinstance(cols, tuple) else np.asarray(c[cols])
            seeds = sorted({q["seed"] for q in records})
            ax.plot(np.asarray(c["epoch"]) + 1, y, color=KIND_COLORS[r["kind"]],
                    ls=SEED_STYLES[seeds.index(r["seed"]) % 4], marker=".",
                    label=f"{KIND_LABELS[r['kind']]}, seed {r['seed']}")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def plot_detections(image, dets: torch.Tensor, labels: np.ndarray, names: Sequence[str], ax: Axes | None = None,
                    conf: float = 0.25, title: str | None = None) -> Figure:
    """The labels (white dashed boxes) and the detections scoring above ``conf`` (coloured by class, with the
    class and score written), on an image (uint8 or floats in [0, 1]); boxes are x1, y1, x2, y2 in pixels
    (label rows: class, x1..y2)."""
    fig, ax = style.show_image(as_unit_float(image), ax, title=title)
    for _, x1, y1, x2, y2 in labels:
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ls="--", lw=1.2,
                               edgecolor="white", zorder=3, gid="label"))
    keep = dets[dets[:, 4] > conf]
    for x1, y1, x2, y2, s, c in keep.tolist():
        col = CLASS_COLORS[int(c) % len(CLASS_COLORS)]
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.6, edgecolor=col, zorder=4,
                               gid="detection"))
        ax.text(x1 - 0.5, y1 - 1.5, f"{names[int(c)]} {s:.2f}", color="black", fontsize=6.5, zorder=5,
                bbox=dict(boxstyle="square,pad=0.1", facecolor=col, edgecolor="none", alpha=0.9))
    ax.plot([], [], ls="--", color="0.4", label="labels")
    for i, n in enumerate(names):
        ax.plot([], [], color=CLASS_COLORS[i % len(CLASS_COLORS)], lw=2, label=f"detected {n}")
    return fig


def plot_weight_on_objects(shares: dict[str, Any], n_groups: int) -> Figure:
    """Per head, the share of attention weight that falls on keys lying on objects, for queries on objects and
    queries on background (``dattn.viz.any_model.weight_on_mask``); a black line on each bar marks what equal
    weights over the same keys would give to the same queries."""
    heads = len(shares["object"])
    fig, ax = plt.subplots(figsize=(9.5, 3.9), layout="constrained")
    x = np.arange(heads)
    for off, key, color, label in ((-0.2, "object", style.QUERY_COLOR, "queries on objects"),
                                   (0.2, "background", style.REFERENCE_COLOR, "queries on background")):
        bars = ax.bar(x + off, 100 * shares[key], width=0.4, color=color, edgecolor="black", lw=0.5, label=label)
        for b, v in zip(bars, shares[key], strict=True):
            ax.annotate(f"{100 * v:.1f}", (b.get_x() + b.get_width() / 2, 100 * v), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=7)
        ax.hlines(100 * shares[f"uniform_{key}"], x + off - 0.2, x + off + 0.2, color="black", lw=2,
                  label="equal weights over the same keys" if key == "object" else None)
    ax.set_xticks(x, [f"head {h}\n(group {h // (heads // n_groups)})" for h in x], fontsize=8)
    ax.set_ylabel("% of the attention weight on object keys")
    ax.set_title("Trained detector, val images: how much of each head's weight falls on objects")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
