"""Deformable attention inside any model: find its DAttention modules, trace them during one forward, and draw
their sampled keys on the model's input image.

``find_dattention`` finds ``dattn.DAttention`` modules and modules built like the official DAT code's
``DAttentionBaseline`` (LeapLabTHU/DAT: ``conv_offset``, ``proj_q``, ``proj_k``, ``proj_v``, ``proj_out``,
``rpe_table`` and the attributes ``nc``, ``n_heads``, ``n_groups``, ``q_h``, ``stride``, ...).
``record_traces`` runs the model once with a forward hook on each: the hook calls ``DAttention.trace`` on the
module's input (an official module is traced through a ``dattn.DAttention`` twin holding its weights) and
checks that the traced output equals the output the model really computed.

Feature map -> input image. A map of H x W cells computed from an Himg x Wimg image has the stride
``s = Himg / H`` (32 for YOLOv5's P5). Map cell ``i`` covers the image pixels ``s*i .. s*i + s - 1``, and a
map position ``p`` (in map pixels, cell centres at integers, as in ``DAttentionTrace.positions_px``) is drawn at
the image pixel ``s * (p + 0.5) - 0.5``: cell centres land on the centres of their s x s blocks, which is
where YOLOv5's ``Detect`` puts a cell (``(grid + 0.5) * stride``). (The exact centre of a cell's receptive
field can differ by a constant: in YOLOv5, whose convolutions pad symmetrically, it is ``s*i + 0.5``; see
``receptive_field_centre``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from ..attention import DAttention, DAttentionTrace
from . import style

OFFICIAL_MODULES = ("conv_offset", "proj_q", "proj_k", "proj_v", "proj_out")
OFFICIAL_ATTRS = ("nc", "n_heads", "n_groups", "q_h", "q_w", "stride", "offset_range_factor", "ksize")


@dataclass
class ModuleTrace:
    """One DAttention module's trace in a model's forward, and where its map sits on the input image."""

    name: str  # qualified name of the module in the model
    trace: DAttentionTrace
    image_hw: tuple[int, int]  # the model's input (Himg, Wimg)
    twin: bool  # traced through a dattn.DAttention twin (a module with the official DAT layout)

    @property
    def map_hw(self) -> tuple[int, int]:
        return self.trace.H, self.trace.W

    @property
    def stride(self) -> tuple[float, float]:
        """Image pixels per map cell along (y, x)."""
        return self.image_hw[0] / self.trace.H, self.image_hw[1] / self.trace.W

    def to_image(self, points_yx: torch.Tensor) -> torch.Tensor:
        """(..., 2) map pixels (y, x) -> input-image pixels (see the module docstring)."""
        return map_to_input(points_yx, self.map_hw, self.image_hw)

    def to_map(self, points_yx: torch.Tensor) -> torch.Tensor:
        """(..., 2) input-image pixels (y, x) -> map pixels."""
        return input_to_map(points_yx, self.map_hw, self.image_hw)

    def keys_px(self, group: int, batch: int = 0) -> torch.Tensor:
        """The sampled key positions of one group in image pixels: (Hk * Wk, 2) as (y, x)."""
        return self.to_image(self.trace.positions_px[batch, group]).reshape(-1, 2)


def map_to_input(points_yx: torch.Tensor, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
    """Map pixels -> image pixels of the input the map was computed from: ``s * (p + 0.5) - 0.5`` per axis."""
    p = torch.as_tensor(points_yx, dtype=torch.float32)
    s = p.new_tensor([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return s * (p + 0.5) - 0.5


def input_to_map(points_yx: torch.Tensor, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of ``map_to_input``."""
    p = torch.as_tensor(points_yx, dtype=torch.float32)
    s = p.new_tensor([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return (p + 0.5) / s - 0.5


# ----------------------------------------------------------------------------------------------------------
# Finding and tracing
# ----------------------------------------------------------------------------------------------------------
def is_official_dat(module: nn.Module) -> bool:
    """A module laid out like LeapLabTHU/DAT's DAttentionBaseline (and not a dattn.DAttention)."""
    return (not isinstance(module, DAttention) and all(hasattr(module, a) for a in OFFICIAL_MODULES + OFFICIAL_ATTRS)
            and hasattr(module, "rpe_table"))


def find_dattention(model: nn.Module) -> dict[str, nn.Module]:
    """Every deformable-attention module of a model by qualified name, in registration order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, DAttention) or is_official_dat(m)}


def twin_of(module: nn.Module) -> DAttention:
    """A dattn.DAttention with the configuration and the weights (strict state_dict) of an official-layout module."""
    if isinstance(module, DAttention):
        return module
    attr = {a: getattr(module, a) for a in OFFICIAL_ATTRS}
    flags = {k: bool(getattr(module, k, False)) for k in ("use_pe", "dwc_pe", "no_off", "fixed_pe", "log_cpb")}
    twin = DAttention(int(attr["nc"]), (int(attr["q_h"]), int(attr["q_w"])), n_heads=int(attr["n_heads"]),
                      n_groups=int(attr["n_groups"]), stride=int(attr["stride"]),
                      offset_range_factor=attr["offset_range_factor"], ksize=int(attr["ksize"]), **flags)
    p = next(module.parameters())
    twin = twin.to(device=p.device, dtype=p.dtype)
    twin.load_state_dict(module.state_dict(), strict=True)
    return twin.train(module.training)


@torch.no_grad()
def record_traces(model: nn.Module, x: torch.Tensor, names: list[str] | None = None, atol: float = 1e-4
                  ) -> dict[str, ModuleTrace]:
    """Run ``model(x)`` once and return the trace of each DAttention module (all, or those in ``names``).

    A forward hook traces each module on its actual input; the traced output must equal the module's own output
    (within ``atol``, relative to its scale), else RuntimeError: the trace would not show what the model did.
    Run the model in eval mode: dropout would make the two differ.
    """
    found = find_dattention(model)
    if names is not None:
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(f"no DAttention module named {missing}; the model has {list(found)}")
        found = {n: found[n] for n in names}
    if not found:
        raise ValueError(f"{type(model).__name__} contains no DAttention module (nor one with DAT's layout)")
    twins = {name: twin_of(m) for name, m in found.items()}
    out: dict[str, ModuleTrace] = {}

    def hook(name: str):
        def fn(module: nn.Module, args: tuple, output) -> None:
            y = output[0] if isinstance(output, (tuple, list)) else output  # the official module returns (y, pos, ref)
            tr = twins[name].trace(args[0])
            err = (tr.output - y).abs().max().item()
            if err > atol * max(1.0, y.abs().max().item()):
                raise RuntimeError(f"{name}: the trace's output differs from the module's by {err:.3g}")
            out[name] = ModuleTrace(name, tr, tuple(x.shape[-2:]), twin=twins[name] is not module)
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in found.items()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def receptive_field_centre(model: nn.Module, module: nn.Module, image_hw: tuple[int, int], cell: tuple[int, int]
                           ) -> tuple[float, float]:
    """Image pixel (y, x) at the centre of the receptive field of one cell of ``module``'s input map.

    Measured, not assumed: the gradient of that cell (all channels) with respect to a random image is non-zero
    exactly on its receptive field; the centre is the midpoint of that support. The field must lie inside the
    image (choose a large enough image), else ValueError.
    """
    seen: dict[str, torch.Tensor] = {}

    def pre(mod, args):
        seen["x"] = args[0]

    handle = module.register_forward_pre_hook(pre)
    try:
        img = torch.rand(1, 3, *image_hw, generator=torch.Generator().manual_seed(0), requires_grad=True)
        with torch.enable_grad():
            model(img)
            seen["x"][0, :, cell[0], cell[1]].sum().backward()
    finally:
        handle.remove()
    g = img.grad[0].abs().sum(0)  # (Himg, Wimg)
    centre = []
    for axis, n in ((1, image_hw[0]), (0, image_hw[1])):
        idx = torch.nonzero(g.sum(axis) > 0).flatten()
        if idx[0] == 0 or idx[-1] == n - 1:
            raise ValueError(f"the receptive field of cell {cell} reaches the image border: use a larger image")
        centre.append((idx[0].item() + idx[-1].item()) / 2)
    return centre[0], centre[1]


# ----------------------------------------------------------------------------------------------------------
# Drawing on the input image, with the course's plotting functions
# ----------------------------------------------------------------------------------------------------------
def _unit_hwc(image) -> np.ndarray:
    """(H, W, 3) arrays or (3, H, W) tensors, uint8 or floats in [0, 1] -> (H, W, 3) floats in [0, 1]."""
    if isinstance(image, torch.Tensor):  # as_hwc moves a tensor's channel axis last
        return style.as_hwc(image.float() / 255 if image.dtype == torch.uint8 else image)
    a = np.asarray(image)
    return style.as_hwc(a.astype(np.float32) / 255 if a.dtype == np.uint8 else a)


def _image_under_map(ax: Axes, image, rec: ModuleTrace, alpha: float) -> None:
    """The input image under a plot drawn in map pixels: its pixels span the map's cells (-0.5 .. H - 0.5)."""
    H, W = rec.map_hw
    a = np.clip(_unit_hwc(image), 0, 1)
    if a.shape[:2] != tuple(rec.image_hw):
        raise ValueError(f"the image is {a.shape[0]}x{a.shape[1]}, the model's input was "
                         f"{rec.image_hw[0]}x{rec.image_hw[1]}")
    im = ax.imshow(a, extent=(-0.5, W - 0.5, H - 0.5, -0.5), alpha=alpha, zorder=1, interpolation="antialiased")
    im.set_gid("input image")


def _image_axes(ax: Axes, rec: ModuleTrace) -> None:
    """Bottom and left axes in input-image pixels, top and right in map pixels."""
    sy, sx = rec.stride
    ax.set_xlabel(f"x (map pixels, stride {sx:g})", fontsize="small", color="0.35")
    ax.set_ylabel(f"y (map pixels, stride {sy:g})", fontsize="small", color="0.35")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()
    ax.tick_params(labelsize="small", colors="0.35")
    sec_x = ax.secondary_xaxis("bottom", functions=(lambda v: sx * (v + 0.5) - 0.5, lambda u: (u + 0.5) / sx - 0.5))
    sec_y = ax.secondary_yaxis("left", functions=(lambda v: sy * (v + 0.5) - 0.5, lambda u: (u + 0.5) / sy - 0.5))
    sec_x.set_xlabel("x (image pixels)")
    sec_y.set_ylabel("y (image pixels)")


def _show_everything(ax: Axes, rec: ModuleTrace, points_map: torch.Tensor) -> int:
    """Widen the view to every point and outline the image; returns how many points lie off the image."""
    H, W = rec.map_hw
    p = points_map.reshape(-1, 2)
    off = ((p[:, 0] < -0.5) | (p[:, 0] > H - 0.5) | (p[:, 1] < -0.5) | (p[:, 1] > W - 0.5))
    lo = torch.minimum(p.min(0).values, torch.tensor([-0.5, -0.5])) - 0.3
    hi = torch.maximum(p.max(0).values, torch.tensor([H - 0.5, W - 0.5])) + 0.3
    ax.set_xlim(float(lo[1]), float(hi[1]))
    ax.set_ylim(float(hi[0]), float(lo[0]))
    border = Rectangle((-0.5, -0.5), W, H, fill=False, edgecolor="black", lw=1.0, zorder=2, gid="image border")
    ax.add_patch(border)
    if off.any():
        ax.scatter(*style.xy(p[off]).T, s=90, facecolors="none", edgecolors=style.QUERY_COLOR, linewidths=1.2,
                   zorder=7, label="off the image (reads zero padding; only zeros from 1 map px past the edge cells)",
                   gid="off image")
    return int(off.sum())


def plot_keys(image, rec: ModuleTrace, head: int = 0, query: tuple[int, int] | None = None, ax: Axes | None = None,
              title: str | None = None, alpha: float = 0.75, colorbar: bool = True, batch: int = 0,
              legend: bool = True, vmax: float | None = None, marker_scale: float = 0.5) -> Figure:
    """The sampled keys of one head's group on the input image: coloured and sized by the attention weight of
    ``query`` (a map cell (y, x)), or, with ``query=None``, as offset arrows from their reference points.

    Drawn by the course's ``plot_attention`` / ``plot_offsets`` on the map's pixel grid, with the input image
    laid under the map's cells (image pixels on the bottom and left axes); keys off the image are circled.
    ``image`` (uint8, or floats in [0, 1]) is the traced input ``batch`` of the trace. Weights are coloured
    relative to the query's largest, or on the absolute scale 0..``vmax`` when given (to compare queries);
    ``marker_scale`` shrinks the markers of the course's figure, made for maps of a few dozen keys.
    """
    from . import plot_attention, plot_offsets  # the course's figures (imported late: this module is in dattn.viz)

    tr = rec.trace
    if not isinstance(head, (int, np.integer)) or not 0 <= head < tr.n_heads:
        raise ValueError(f"head ({head!r}) must be an int in 0..{tr.n_heads - 1}")
    group = tr.group_of_head(int(head))
    if not 0 <= batch < tr.attn.shape[0]:
        n = tr.attn.shape[0]
        raise ValueError(f"batch ({batch}) must be in 0..{n - 1}: the trace holds {n} images")
    if query is None:
        fig = plot_offsets(None, tr, group, ax=ax, title=title, batch=batch)
    else:
        fig = plot_attention(None, tr, query, head, ax=ax, colorbar=colorbar, title=title, relative=vmax is None,
                             batch=batch)
    ax = ax or fig.axes[0]
    if query is not None:
        sc = next(c for c in ax.collections if c.get_gid() == "attention")
        if vmax is not None:
            w = np.asarray(sc.get_array())  # the weights, lightest first
            sc.set_clim(0.0, vmax)
            sc.set_sizes(8.0 + 252.0 * w / vmax)
        sc.set_sizes(sc.get_sizes() * marker_scale)
    _image_under_map(ax, image, rec, alpha)
    _image_axes(ax, rec)
    _show_everything(ax, rec, tr.positions_px[batch, group])
    for line in ax.lines:  # the course's "off the map" ring marks the same keys as "off the image": one entry
        if line.get_label() == style.LABELS["outside"]:
            line.set_label("_off the map")
    if legend:
        style.legend(ax)
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    return fig


def queries_on_mask(rec: ModuleTrace, mask: np.ndarray | torch.Tensor) -> tuple[list[tuple[int, int]],
                                                                                list[tuple[int, int]]]:
    """Map cells (y, x) whose centre pixel lies on the mask (H_img, W_img), and those whose centre does not."""
    m = torch.as_tensor(np.asarray(mask)).bool()
    H, W = rec.map_hw
    cells = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).reshape(-1, 2)
    px = rec.to_image(cells.float()).round().long()  # (HW, 2) centre pixels
    px[:, 0] = px[:, 0].clamp(0, m.shape[0] - 1)
    px[:, 1] = px[:, 1].clamp(0, m.shape[1] - 1)
    on = m[px[:, 0], px[:, 1]]
    as_list = [tuple(c) for c in cells.tolist()]
    return ([c for c, o in zip(as_list, on.tolist(), strict=True) if o],
            [c for c, o in zip(as_list, on.tolist(), strict=True) if not o])


# ----------------------------------------------------------------------------------------------------------
# Where the weight goes: keys and queries on a mask (objects) or off it (background)
# ----------------------------------------------------------------------------------------------------------
def _on_mask(points_px: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B, ..., 2) image pixels (y, x) -> (B, ...) True where the nearest pixel is inside the image and on its mask."""
    B, Hi, Wi = masks.shape
    idx = points_px.round().long()
    inside = (idx[..., 0] >= 0) & (idx[..., 0] < Hi) & (idx[..., 1] >= 0) & (idx[..., 1] < Wi)
    y, x = idx[..., 0].clamp(0, Hi - 1), idx[..., 1].clamp(0, Wi - 1)
    b = torch.arange(B).view(B, *([1] * (idx.dim() - 2))).expand(y.shape)
    return inside & masks[b, y, x]


def weight_on_mask(rec: ModuleTrace, masks: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """Per head, the mean share of a query's attention weight on keys that land on the mask, over the queries
    whose cell centre is on the mask ("object") and over the others ("background"); each query's share
    ("per_query", (B, heads, HW)); what equal weights over the same keys would give to the same queries
    ("uniform_object", "uniform_background"); and the share of sampled keys, and of reference points, on the mask.
    masks (B, Himg, Wimg), one per traced image; a key lands where its nearest pixel is (off the image: nowhere)."""
    tr = rec.trace
    masks = torch.as_tensor(np.asarray(masks)).bool()
    if masks.shape != (tr.attn.shape[0], *rec.image_hw):
        raise ValueError(f"expected masks of shape {(tr.attn.shape[0], *rec.image_hw)}, got {tuple(masks.shape)}")
    B, g = tr.positions_px.shape[:2]
    keys_on = _on_mask(rec.to_image(tr.positions_px).reshape(B, g, -1, 2), masks)  # (B, g, Ns)
    ref = rec.to_image(tr.reference_px).reshape(1, -1, 2).expand(B, -1, -1)  # (B, Ns, 2)
    ref_on = _on_mask(ref, masks)  # (B, Ns)
    H, W = rec.map_hw
    cells = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).reshape(1, -1, 2)
    query_on = _on_mask(rec.to_image(cells.float()).expand(B, -1, -1), masks)  # (B, HW)
    group = torch.tensor([tr.group_of_head(h) for h in range(tr.n_heads)])
    on_keys = keys_on[:, group].float()  # (B, heads, Ns): each head reads its group's keys
    share = torch.einsum("bhmn,bhn->bhm", tr.attn, on_keys)  # (B, heads, HW) weight on object keys
    uniform = on_keys.mean(-1, keepdim=True).expand_as(share)  # (B, heads, HW): the share equal weights would give
    q = query_on[:, None].expand_as(share)

    def mean(x: torch.Tensor, sel: torch.Tensor) -> np.ndarray:  # over images and the selected queries, per head
        return ((x * sel).sum((0, 2)) / sel.sum((0, 2)).clamp(min=1)).numpy()

    return {"object": mean(share, q.float()), "background": mean(share, (~q).float()), "per_query": share,
            "uniform_object": mean(uniform, q.float()), "uniform_background": mean(uniform, (~q).float()),
            "keys_on_objects": keys_on.float().mean().item(), "reference_on_objects": ref_on.float().mean().item(),
            "object_queries": int(query_on.sum()), "background_queries": int((~query_on).sum())}
