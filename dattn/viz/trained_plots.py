"""Figures of the trained scene model (notebook 6): where its sampled keys land, before and after training.

Positions here are already in image pixels (``SceneDAT.sampling_points`` maps them through the stem's
convolutions), so they are drawn as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import style


def plot_scene_keys(
    ax: Axes, image: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, reference: torch.Tensor,
    weights: torch.Tensor | None = None, query: Sequence[float] | None = None, title: str | None = None,
) -> None:
    """One scene (3, S, S) with its object outlined, the reference points and the sampled keys.

    positions (..., 2) and reference (..., 2) are (y, x) image pixels; ``weights`` (same count as the
    positions) colour and size the keys by attention, and ``query`` (y, x) is marked as a star.
    """
    style.show_image(rearrange(image, "c h w -> h w c").numpy(), ax, title=title)
    ax.contour(mask.numpy().astype(float), levels=[0.5], colors="white", linewidths=1.2)
    ax.scatter(*style.xy(reference).T, **dict(style.REFERENCE_STYLE, s=18), label=style.LABELS["reference"])
    pts = style.xy(positions)
    if weights is None:
        sc = ax.scatter(*pts.T, **style.SAMPLING_STYLE, label=style.LABELS["sampling"])
    else:
        w = weights.reshape(-1).numpy()
        sc = ax.scatter(*pts.T, c=w, s=10 + 200 * w / max(w.max(), 1e-9), cmap=style.ATTENTION_CMAP,
                        edgecolors="black", linewidths=0.5, zorder=5, label="sampled keys (by weight)")
    sc.set_gid("keys")
    if query is not None:
        ax.scatter([query[1]], [query[0]], **style.QUERY_STYLE, label=style.LABELS["query"])
    S = image.shape[-1]
    ax.set_xlim(-0.5 - 0.08 * S, S - 0.5 + 0.08 * S)
    ax.set_ylim(S - 0.5 + 0.08 * S, -0.5 - 0.08 * S)


def plot_before_after(
    scenes, before: torch.Tensor, after: torch.Tensor, reference: torch.Tensor, n: int = 6
) -> Figure:
    """Sampled keys on the same held-out scenes: untrained (top row) and trained (bottom row).

    before, after (N, n_blocks, g, Hk, Wk, 2) and reference (n_blocks, Hk, Wk, 2), image pixels.
    """
    n = min(n, len(scenes))
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.6), layout="constrained")
    axes = np.asarray(axes).reshape(2, n)
    for row, (pos, label) in enumerate(((before, "untrained"), (after, "trained"))):
        for i in range(n):
            ax = axes[row, i]
            plot_scene_keys(ax, scenes.images[i], scenes.masks[i], pos[i], reference, title=f"{label}, scene {i}")
            ax.set_xlabel("")
            ax.set_ylabel("")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(0, -0.02), fontsize=7, ncol=1)
    fig.suptitle("The same held-out scenes: where the keys are sampled before and after training")
    return fig


def plot_share(before: dict[str, float], after: dict[str, float]) -> Figure:
    """Share of sampled keys on objects, before and after training, against the reference grid and coverage."""
    labels = ["objects' share\nof the image", "reference grid\n(no offsets)", "sampled keys\nuntrained",
              "sampled keys\ntrained"]
    values = [after["coverage"], after["reference"], before["learned"], after["learned"]]
    colors = [style.GRID_COLOR, style.REFERENCE_COLOR, style.SAMPLING_COLOR, style.QUERY_COLOR]
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    bars = ax.bar(labels, [100 * v for v in values], color=colors, edgecolor="black", linewidth=0.5)
    for b, v in zip(bars, values, strict=True):
        ax.annotate(f"{100 * v:.1f}%", (b.get_x() + b.get_width() / 2, 100 * v), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=9)
    ax.set_ylabel("% of points on an object")
    ax.set_title("Held-out scenes: do the keys land on the object?")
    return fig


def plot_training_strip(history, scene, k: int = 6) -> Figure:
    """Up to k snapshots of the sampled keys on one scene during training, left to right."""
    idx = np.unique(np.linspace(0, len(history.snapshots) - 1, k).round().astype(int))
    fig, axes = plt.subplots(1, len(idx), figsize=(2.5 * len(idx), 2.9), layout="constrained")
    for ax, i in zip(np.atleast_1d(axes), idx, strict=True):
        plot_scene_keys(ax, scene.images[0], scene.masks[0], history.snapshots[i], history.reference,
                        title=f"step {history.snapshot_steps[i]}")
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle("Sampled keys on one held-out scene during training")
    return fig
