"""Figures of the trained scene models (notebook 6): keys on scenes, by group, by variant, during training,
and two queries' weights over the same keys.

Positions here are (y, x) image pixels (``SceneDAT.sampling_points`` and ``SceneDAT.to_image_px`` map
them through the stem), drawn as they are. Keys have one colour and marker per group, with a black edge
and a white halo so that they stay visible on any object colour; objects are outlined black and white.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import style

GROUP_COLORS = (style.SAMPLING_COLOR, "#0072B2", "#E69F00", style.NEIGHBOUR_COLOR)  # Okabe-Ito
GROUP_MARKERS = ("D", "s", "^", "v")


def group_style(g: int) -> dict:
    """Marker and colour of group ``g``'s keys."""
    return dict(marker=GROUP_MARKERS[g % len(GROUP_MARKERS)], c=GROUP_COLORS[g % len(GROUP_COLORS)],
                edgecolors=style.EDGE_COLOR, linewidths=0.8, zorder=5)


def scatter_keys(ax: Axes, points: torch.Tensor, g: int, s: float = 34, label: str | None = None, **kw):
    """Keys (..., 2) of group g as haloed markers; returns (halo, keys), two scatters."""
    xy = style.xy(points)
    st = group_style(g)
    halo = ax.scatter(*xy.T, s=s * 2.4, marker=st["marker"], c="white", linewidths=0, zorder=4.5)
    return halo, ax.scatter(*xy.T, s=s, label=label, **{**st, **kw})


def outline(ax: Axes, mask: torch.Tensor) -> None:
    """The objects' outline: a black line under a white one, visible on any colour."""
    m = mask.numpy().astype(float)
    ax.contour(m, levels=[0.5], colors="black", linewidths=2.6, zorder=3)
    ax.contour(m, levels=[0.5], colors="white", linewidths=1.1, zorder=3.1)


def _frame(ax: Axes, S: int, *points: torch.Tensor) -> None:
    """Show a margin around the image that holds every point given, so that keys read off the map (where
    grid_sample reads zero padding) stay in view, with a dashed line on the image's border."""
    lo, hi = -0.5 - 0.08 * S, S - 0.5 + 0.08 * S
    for p in points:
        if p is not None and p.numel():
            lo, hi = min(lo, p.min().item() - 1), max(hi, p.max().item() + 1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(hi, lo)
    ax.add_patch(matplotlib.patches.Rectangle((-0.5, -0.5), S, S, fill=False, ls="--", lw=0.8, ec="black", zorder=2))


def draw_keys(
    ax: Axes, image: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, reference: torch.Tensor | None = None,
    title: str | None = None, s: float = 34,
) -> list:
    """One scene (3, S, S) with its objects outlined, the reference points and every group's keys.
    Returns the (halo, keys) scatters of each group.

    positions (g, Hk, Wk, 2) or (g, N, 2), reference (Hk, Wk, 2), both (y, x) image pixels.
    """
    style.show_image(image, ax, title=title)
    outline(ax, mask)
    if reference is not None:
        ax.scatter(*style.xy(reference).T, **dict(style.REFERENCE_STYLE, s=16), label=style.LABELS["reference"])
    drawn = [scatter_keys(ax, positions[g], g, s=s, label=f"keys of group {g}") for g in range(positions.shape[0])]
    _frame(ax, image.shape[-1], positions, reference)
    return drawn


def plot_scene_keys(
    ax: Axes, image: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, reference: torch.Tensor,
    weights: torch.Tensor | None = None, query: Sequence[float] | None = None, title: str | None = None,
    group: int = 0,
) -> None:
    """One group's keys on a scene; with ``weights`` (one per key) they are coloured and sized by a query's
    attention, the query (y, x) marked as a star and the three largest weights written beside their keys."""
    style.show_image(image, ax, title=title)
    outline(ax, mask)
    ax.scatter(*style.xy(reference).T, **dict(style.REFERENCE_STYLE, s=16), label=style.LABELS["reference"])
    pts = style.xy(positions)
    if weights is None:
        _, sc = scatter_keys(ax, positions, group, label=f"keys of group {group}")
    else:
        w = weights.reshape(-1).numpy()
        ax.scatter(*pts.T, s=2.4 * (14 + 260 * w / max(w.max(), 1e-9)), c="white", linewidths=0, zorder=4.5)
        sc = ax.scatter(*pts.T, c=w, s=14 + 260 * w / max(w.max(), 1e-9), cmap=style.ATTENTION_CMAP, vmin=0,
                        vmax=max(w.max(), 1e-9), marker=GROUP_MARKERS[group], edgecolors="black", linewidths=0.8,
                        zorder=5, label=f"keys of group {group} (by weight)")
        for i in np.argsort(-w)[:3]:
            ax.annotate(f"{w[i]:.2f}", pts[i], xytext=(6, 5), textcoords="offset points", fontsize=8, zorder=7,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    sc.set_gid("keys")
    if query is not None:
        ax.scatter([query[1]], [query[0]], **style.QUERY_STYLE, label=style.LABELS["query"])
    _frame(ax, image.shape[-1], positions, reference)


def keys_legend(fig: Figure, n_groups: int, reference: bool = True, extra: Sequence[Line2D] = (),
                ncols: int | None = None) -> None:
    """One legend for a figure of key drawings: reference points, each group, the object outline."""
    def marker(label: str, **kw) -> Line2D:
        return Line2D([], [], linestyle="none", markeredgecolor="black", label=label, **kw)

    handles = [marker(f"keys of group {g}", markersize=7, marker=GROUP_MARKERS[g], markerfacecolor=GROUP_COLORS[g])
               for g in range(n_groups)]
    if reference:
        handles.insert(0, marker(style.LABELS["reference"], marker="o", markersize=6,
                                 markerfacecolor=style.REFERENCE_COLOR))
    handles.append(Line2D([], [], color="black", lw=2.6, label="object outline"))
    handles += list(extra)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols or len(handles), fontsize=9, frameon=False)


def plot_variant_keys(
    scenes, keys: dict[str, tuple[torch.Tensor, torch.Tensor]], predictions: dict[str, torch.Tensor] | None = None,
    labels: torch.Tensor | None = None, names: Sequence[str] = (), n: int = 5,
) -> Figure:
    """Rows: variants; columns: the same held-out scenes, with each variant's keys.

    keys[name] = (positions (N, g, Hk, Wk, 2), reference (Hk, Wk, 2)) of the first block; with ``predictions``
    and ``labels`` (class indices) and ``names`` (class names) each title says what the model answered.
    """
    n = min(n, len(scenes))
    name = (lambda c: names[c] if names else str(c))  # noqa: E731
    fig, axes = plt.subplots(len(keys), n, figsize=(2.5 * n, 2.75 * len(keys) + 0.5), layout="constrained",
                             squeeze=False)
    for r, (variant, (pos, ref)) in enumerate(keys.items()):
        for i in range(n):
            title = variant
            if predictions is not None and labels is not None:
                p, y = int(predictions[variant][i]), int(labels[i])
                title += f": {name(p)} " + ("(right)" if p == y else f"(wrong, is {name(y)})")
            draw_keys(axes[r, i], scenes.images[i], scenes.masks[i], pos[i], ref, title=title, s=28)
            axes[r, i].set_xlabel("x (pixels)" if r == len(keys) - 1 else "")
            axes[r, i].set_ylabel("y (pixels)" if i == 0 else "")
            axes[r, i].title.set_fontsize(9)
    keys_legend(fig, next(iter(keys.values()))[0].shape[1])
    fig.suptitle("The same held-out scenes: where each trained variant reads its keys")
    return fig


def plot_two_queries(
    image: torch.Tensor, mask: torch.Tensor, trace, queries: Sequence[tuple[int, int]], group: int = 0,
    to_image_px=lambda p: p,
) -> Figure:
    """DAT's central idea: one set of keys per group, shared by every query. Two queries (feature pixels)
    attend over the same keys of ``group``, each with its own weights (left, middle); right: both weight
    vectors side by side, key by key. ``trace`` is the block's ``DAttentionTrace`` of this one image."""
    heads = [h for h in range(trace.n_heads) if trace.group_of_head(h) == group]
    keys = to_image_px(trace.positions_px[0, group])  # (Hk, Wk, 2)
    ref = to_image_px(trace.reference_px)
    fig = plt.figure(figsize=(13, 4.4), layout="constrained")
    sub = fig.subplots(1, 3, width_ratios=[1, 1, 1.35])
    weights = []
    for ax, (qy, qx), name in zip(sub[:2], queries, ("A", "B"), strict=True):
        w = trace.attn[0, heads, qy * trace.W + qx].mean(0)  # (Ns,) averaged over the group's heads
        weights.append(w)
        q = to_image_px(torch.tensor([float(qy), float(qx)]))
        plot_scene_keys(ax, image, mask, keys, ref, weights=w, query=q.tolist(), group=group,
                        title=f"query {name} at ({qy}, {qx}): its weights")
    ax = sub[2]
    idx = np.arange(len(weights[0]))
    for k, (w, name, c) in enumerate(zip(weights, "AB", (style.QUERY_COLOR, style.REFERENCE_COLOR), strict=True)):
        ax.bar(idx + (k - 0.5) * 0.4, w.numpy(), width=0.4, color=c, edgecolor="black", linewidth=0.4,
               label=f"query {name}")
    ax.set_xlabel(f"key index (the same {len(idx)} keys of group {group} for both queries)")
    ax.set_ylabel("attention weight")
    ax.set_xticks(idx)
    ax.legend(fontsize=9)
    ax.set_title("same keys, different weights")
    heads_text = "its one head" if len(heads) == 1 else f"mean over its {len(heads)} heads"
    fig.suptitle(f"Group {group} ({heads_text}): one set of keys per image, shared by every query; "
                 f"the queries differ only in their weights")
    return fig


def plot_training_strip(history, scene, k: int = 6) -> Figure:
    """Up to k snapshots of the sampled keys on one scene during training, left to right."""
    idx = np.unique(np.linspace(0, len(history.snapshots) - 1, k).round().astype(int))
    fig, axes = plt.subplots(1, len(idx), figsize=(2.5 * len(idx), 3.2), layout="constrained")
    for ax, i in zip(np.atleast_1d(axes), idx, strict=True):
        draw_keys(ax, scene.images[0], scene.masks[0], history.snapshots[i][0], history.reference[0],
                  title=f"step {history.snapshot_steps[i]}", s=28)
        ax.set_xlabel("")
        ax.set_ylabel("")
    keys_legend(fig, history.snapshots[0].shape[1])
    fig.suptitle("Sampled keys on one held-out scene during training")
    return fig


def gif_frames(history, scene, path, fps: int = 5, hold: int = 8) -> None:
    """The training animation: each snapshot of the keys on one scene, with a line from each reference point."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(3.6, 4.0), dpi=72, layout="constrained")
    first = history.snapshots[0][0]  # (g, Hk, Wk, 2) of the first block
    ref = history.reference[0]
    halos, dots = zip(*draw_keys(ax, scene.images[0], scene.masks[0], first, ref, s=30), strict=True)
    _frame(ax, scene.images.shape[-1], ref, *(snap[0] for snap in history.snapshots))
    lines = [ax.add_collection(LineCollection([], colors=[GROUP_COLORS[g]], linewidths=1.0, zorder=4))
             for g in range(first.shape[0])]
    ax.set_xlabel("")
    ax.set_ylabel("")
    keys_legend(fig, first.shape[0], ncols=2)
    title = ax.set_title("", fontsize=10)
    starts = style.xy(ref)

    def draw(i: int) -> list:
        pos = history.snapshots[i][0]  # (g, Hk, Wk, 2)
        for g, (d, h, ln) in enumerate(zip(dots, halos, lines, strict=True)):
            p = style.xy(pos[g])
            d.set_offsets(p)
            h.set_offsets(p)
            ln.set_segments(np.stack([starts, p], 1))
        title.set_text(f"training step {history.snapshot_steps[i]}")
        return [*dots, *halos, *lines, title]

    frames = list(range(len(history.snapshots))) + [len(history.snapshots) - 1] * hold  # hold the last frame
    FuncAnimation(fig, draw, frames=frames, blit=False).save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)


def first_block(pos: torch.Tensor) -> torch.Tensor:
    """(N, n_blocks, g, Hk, Wk, 2) -> the first block's (N, g, Hk, Wk, 2)."""
    return pos[:, 0]


def flat_keys(pos: torch.Tensor) -> torch.Tensor:
    """(..., Hk, Wk, 2) -> (..., Hk*Wk, 2)."""
    return rearrange(pos, "... h w p -> ... (h w) p")
