"""What the reference-grid and offsets widgets draw in the browser, computed once for every setting they offer.

A panel payload holds named point arrays (map pixels, float32, with the indices of the points off the map)
and one frame per combination of the controls' values; a frame lists the layers to draw (points or arrows)
by array name, and its title. The browser switches frames without asking the kernel.

``reference_grid_data`` runs ``reference_grid_px`` for every stride and convention. ``offsets_data`` runs the
untrained module's own steps once per stride (queries, the offset network's raw output) and bounds them for
every offset_range_factor offered with ``bound_offsets`` and ``sampling_positions``, as its forward does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..attention import DAttention
from ..geometry import REF_CONVENTIONS, norm_to_pixel
from ..offsets import bound_offsets, grouped_offsets, sampling_positions
from .features import build_model, features_from_image
from .live_data import image_url, pack, palette
from .mapping import image_hw_of, map_to_image, outside_map, outside_note
from .reference_plots import reference_grid_px

OFFSET_FACTORS = tuple(float(f) for f in np.arange(-1.0, 8.01, 0.5))  # the offsets widget's slider


def frame_key(*values) -> str:
    """The key of the frame shown for these control values, in the controls' order (as live.js builds it)."""
    return "|".join(_value_text(v) for v in values)


def _value_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _array(points: torch.Tensor, map_hw: tuple[int, int]) -> dict:
    """(..., 2) map-pixel points as a payload array: float32 (y, x) pairs and which ones lie off the map."""
    p = points.reshape(-1, 2).float()
    return dict(data=pack(p, "float32"), n=len(p), rings=np.flatnonzero(outside_map(p, map_hw).numpy()).tolist())


def _frame_of_map(image, map_hw: tuple[int, int], extra_points: torch.Tensor) -> dict:
    """The parts every panel shares: the image, the map <-> image mapping, the map's edge, the view box."""
    img_hw = image_hw_of(image, map_hw)
    H, W = map_hw
    o, y1, x1 = map_to_image(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), map_hw, img_hw)
    edge = map_to_image(torch.tensor([[-0.5, -0.5], [H - 0.5, W - 0.5]]), map_hw, img_hw).reshape(-1)
    pts = map_to_image(extra_points.reshape(-1, 2), map_hw, img_hw)
    lo = torch.minimum(pts.min(0).values, torch.minimum(edge[:2], torch.tensor([-0.5, -0.5])))
    hi = torch.maximum(pts.max(0).values, torch.maximum(edge[2:], torch.tensor(img_hw) - 0.5))
    off = bool(outside_map(extra_points.reshape(-1, 2), map_hw).any())
    pad = 0.6 * max(img_hw) / max(map_hw) if off else 0.0
    return dict(
        image=None if image is None else image_url(image), image_hw=list(img_hw), map_hw=[H, W],
        to_image=[float(o[0]), float(y1[0] - o[0]), float(o[1]), float(x1[1] - o[1])],  # y0, sy, x0, sx
        map_edge=edge.tolist(), bounds=[float(lo[0] - pad), float(lo[1] - pad), float(hi[0] + pad),
                                        float(hi[1] + pad)], palette=palette())


def reference_grid_data(
    image, size: int = 20, strides: Sequence[int] = (1, 2, 4, 8), conventions: Sequence[str] = REF_CONVENTIONS,
    ksize: int = 3,
) -> dict:
    """The reference-grid widget's payload: the query pixels and, for every stride and convention, the
    reference points (``reference_grid_px``) with the title ``plot_reference_grid`` gives them."""
    H = W = size
    q = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).float()  # (H, W, 2)
    arrays, frames, everything = {"grid": _array(q, (H, W))}, {}, [q.reshape(-1, 2)]
    for s in strides:
        for c in conventions:
            ref = reference_grid_px(H, W, s, c, ksize)  # (Hk, Wk, 2) map pixels
            Hk, Wk = ref.shape[:2]
            name = f"reference {s} {c}"
            arrays[name] = _array(ref, (H, W))
            everything.append(ref.reshape(-1, 2))
            frames[frame_key(s, c)] = dict(
                title=f"{Hk}x{Wk} reference points, stride {s} ({c})\n"
                      f"{outside_note(len(arrays[name]['rings']), Hk * Wk)}",
                layers=[dict(style="grid", points="grid"), dict(style="reference", points=name)])
    return dict(
        kind="panel", version=1, cells=True, label=f"reference points on a {H}x{W} map",
        controls=[dict(name="stride", label="stride", values=list(strides)),
                  dict(name="convention", label="convention", values=list(conventions))],
        arrays=arrays, frames=frames, initial=dict(stride=2 if 2 in strides else strides[0], convention=conventions[0]),
        **_frame_of_map(image, (H, W), torch.cat(everything)),
    )


def offsets_positions(model: DAttention, x: torch.Tensor, factors: Sequence[float]) -> tuple[torch.Tensor, dict]:
    """Reference points (Hk, Wk, 2) and, per factor, sampling positions (g, Hk, Wk, 2), in map pixels, of
    ``model`` on ``x`` (batch 1): the offset network runs once, its raw output is bounded per factor."""
    H, W = x.shape[-2:]
    with torch.no_grad():
        raw = grouped_offsets(model.conv_offset, model.proj_q(x), model.n_groups)  # (g, 2, Hk, Wk)
        Hk, Wk = raw.shape[-2:]
        ref = model.reference(Hk, Wk, H, W, x)  # (Hk, Wk, 2) normalized

        def px(p: torch.Tensor) -> torch.Tensor:
            return torch.stack((norm_to_pixel(p[..., 0], H), norm_to_pixel(p[..., 1], W)), -1)

        return px(ref), {f: px(sampling_positions(ref, bound_offsets(raw, f), f)) for f in factors}


def offsets_data(
    image, size: int = 20, channels: int = 32, n_groups: int = 4, seed: int = 0, strides: Sequence[int] = (1, 2, 4),
    factors: Sequence[float] = OFFSET_FACTORS,
) -> dict:
    """The offsets widget's payload: for every stride of an untrained DAttention (``build_model``) and every
    offset_range_factor, each group's arrows from reference to sampling points, titled as ``plot_offsets``."""
    H = W = size
    feats = features_from_image(image, channels, size, seed)  # (1, C, S, S)
    factors = [float(f) for f in factors]
    arrays, frames, everything = {}, {}, []
    for s in strides:
        ref, pos = offsets_positions(build_model(channels, size, n_groups=n_groups, stride=s, seed=seed), feats,
                                     factors)
        Hk, Wk = ref.shape[:2]
        Ns = Hk * Wk
        arrays[f"reference {s}"] = _array(ref, (H, W))
        everything.append(ref.reshape(-1, 2))
        for f in factors:
            name = f"sampling {s} {f:g}"
            arrays[name] = _array(pos[f], (H, W))  # (g * Ns) points, group-major
            everything.append(pos[f].reshape(-1, 2))
            for g in range(n_groups):
                n_out = int(outside_map(pos[f][g], (H, W)).sum())
                part = dict(start=g * Ns, count=Ns)
                frames[frame_key(s, f, g)] = dict(
                    title=f"untrained, stride {s}, factor {f:g}, group {g}: offsets of {Hk}x{Wk} keys\n"
                          f"{outside_note(n_out, Ns)}",
                    layers=[dict(style="offsets", points=f"reference {s}", to=name, **part),
                            dict(style="reference", points=f"reference {s}"),
                            dict(style="sampling", points=name, **part)])
    return dict(
        kind="panel", version=1, cells=False,
        label=f"untrained DAttention ({channels} channels, {n_groups} groups) on a {H}x{W} map of the image",
        controls=[dict(name="stride", label="stride", values=list(strides)),
                  dict(name="offset_range_factor", label="factor", values=factors),
                  dict(name="group", label="group", values=list(range(n_groups)))],
        arrays=arrays, frames=frames,
        initial=dict(stride=2 if 2 in strides else strides[0],
                     offset_range_factor=4.0 if 4.0 in factors else factors[0], group=0),
        **_frame_of_map(image, (H, W), torch.cat(everything)),
    )
