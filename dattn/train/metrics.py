"""What a trained scene model gets right, and where its keys go, measured on held-out scenes.

Three ways to say that a key is "on" an object, each for its own question:

* ``points_on_masks``: the pixel the key falls in (pixel ``i`` covers [i - 0.5, i + 0.5)) belongs to an
  object. Its share over all keys compares with the objects' area, which is what random keys would score.
* ``read_from_masks``: the share of the key's bilinear read that comes from object pixels (the mask read
  exactly as ``grid_sample`` reads the features). A read that touches the object (more than ``TOUCH`` of it,
  which ignores float rounding at pixel centres) carries some of its colour: what a key can tell the model.
* ``distance_to_masks``: how far (image pixels) the key is from the centre of the nearest object pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from ..data import Scenes
from ..profiling import count_flops
from .model import SceneDAT
from .task import targets

TOUCH = 1e-3  # a read "touches" an object when more than this share of it comes from object pixels


# ----------------------------------------------------------------------------------------------------------
# Points against masks
# ----------------------------------------------------------------------------------------------------------
def points_on_masks(points: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Whether each image-pixel point lies on its scene's mask.

    points (B, ..., 2) as (y, x) image pixels, masks (B, S, S) bool -> (B, ...) bool. Pixel ``i`` covers
    [i - 0.5, i + 0.5), so a point belongs to pixel ``floor(p + 0.5)``; points outside the image are off.
    """
    B, S = masks.shape[0], masks.shape[-1]
    idx = torch.floor(points + 0.5).long()  # (B, ..., 2)
    inside = ((idx >= 0) & (idx < S)).all(-1)  # (B, ...)
    idx = idx.clamp(0, S - 1)
    flat = rearrange(idx, "b ... p -> b (...) p")
    hit = masks[torch.arange(B)[:, None], flat[..., 0], flat[..., 1]]  # (B, P)
    return hit.reshape(inside.shape) & inside


def read_from_masks(points: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each point's bilinear read that comes from mask pixels: (B, ..., 2), (B, S, S) -> (B, ...).

    The mask is read as DAttention reads features: ``grid_sample`` with ``align_corners=True`` (pixel
    centres at integers) and zero padding, so a point half outside the image reads half zeros.
    """
    S = masks.shape[-1]
    flat = rearrange(points, "b ... p -> b (...) 1 p").to(torch.float32)  # (B, P, 1, 2) as (y, x)
    grid = (flat / (S - 1) * 2 - 1).flip(-1)  # normalized (x, y), as grid_sample wants
    read = F.grid_sample(masks[:, None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return read.reshape(points.shape[:-1])  # (B, ...)


def distance_to_masks(points: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Euclidean distance (image pixels) from each point to the centre of its scene's nearest mask pixel.

    points (B, ..., 2) as (y, x), masks (B, S, S) bool, each with at least one pixel -> (B, ...).
    """
    B = masks.shape[0]
    flat = rearrange(points, "b ... p -> b (...) p").to(torch.float32)  # (B, P, 2)
    out = torch.empty(flat.shape[:2])
    for b in range(B):
        pix = torch.nonzero(masks[b]).to(torch.float32)  # (M, 2) object pixel centres
        if len(pix) == 0:
            raise ValueError(f"scene {b} has no object pixel to measure a distance to")
        out[b] = torch.cdist(flat[b], pix).min(1).values
    return out.reshape(points.shape[:-1])


# ----------------------------------------------------------------------------------------------------------
# Where a model's keys go
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def key_placement(model: SceneDAT, scenes: Scenes, batch_size: int = 250) -> dict[str, torch.Tensor]:
    """Per-key measurements on these scenes, for the sampled keys and for the reference grid.

    Returns tensors of shape (N, n_blocks, g, Hk, Wk) (the reference grid's are broadcast to it):
    ``on`` and ``ref_on`` (bool, ``points_on_masks``), ``read`` and ``ref_read`` (``read_from_masks``),
    ``distance`` and ``ref_distance`` (``distance_to_masks``), and ``offset_px`` (length of each offset);
    plus ``positions`` (N, n_blocks, g, Hk, Wk, 2) and ``reference`` (n_blocks, Hk, Wk, 2) in image pixels.
    """
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    ref = None
    for i in range(0, len(scenes), batch_size):
        part = scenes.subset(slice(i, i + batch_size))
        pos, ref = model.sampling_points(part.images)  # (b, n, g, Hk, Wk, 2), (n, Hk, Wk, 2)
        refs = ref[None, :, None].expand_as(pos)
        out = dict(positions=pos, on=points_on_masks(pos, part.masks), ref_on=points_on_masks(refs, part.masks),
                   read=read_from_masks(pos, part.masks), ref_read=read_from_masks(refs, part.masks),
                   distance=distance_to_masks(pos, part.masks), ref_distance=distance_to_masks(refs, part.masks),
                   offset_px=(pos - refs).norm(dim=-1))
        for k, v in out.items():
            parts.setdefault(k, []).append(v)
    return dict({k: torch.cat(v) for k, v in parts.items()}, reference=ref)


def nearest_key(distance: torch.Tensor) -> torch.Tensor:
    """Distance of each group's nearest key: (N, n_blocks, g, Hk, Wk) -> (N, n_blocks, g)."""
    return distance.flatten(3).min(-1).values


def placement_summary(p: dict[str, torch.Tensor], coverage: float, size: int | None = None) -> dict:
    """Numbers from ``key_placement``: shares over all keys, per scene and per group (lists over groups).

    ``nearest_distance_mean`` is the mean over scenes and groups of the group's nearest key's distance;
    ``group_scenes_with_key_on_objects`` the share of scenes where the group has a key on an object. With the
    image ``size``, ``keys_off_map`` is the share of keys outside the image and ``keys_reading_padding`` the
    share whose whole bilinear read is zero padding (such a key gets no gradient to come back).
    """

    def scenes_reached(read: torch.Tensor) -> float:  # some key's read touches an object
        return (rearrange(read, "n ... -> n (...)") > TOUCH).any(1).float().mean().item()

    def per_group(t: torch.Tensor) -> list[float]:
        return rearrange(t.float(), "n b g h w -> g (n b h w)").mean(1).tolist()

    out = dict(
        object_area=coverage,
        keys_on_objects=p["on"].float().mean().item(),
        reference_on_objects=p["ref_on"].float().mean().item(),
        read_from_objects=p["read"].mean().item(),
        reference_read_from_objects=p["ref_read"].mean().item(),
        scenes_reached=scenes_reached(p["read"]),
        reference_scenes_reached=scenes_reached(p["ref_read"]),
        distance_mean=p["distance"].mean().item(),
        reference_distance_mean=p["ref_distance"].mean().item(),
        nearest_distance_mean=nearest_key(p["distance"]).mean().item(),
        reference_nearest_distance_mean=nearest_key(p["ref_distance"]).mean().item(),
        offset_px_mean=p["offset_px"].mean().item(),
        group_keys_on_objects=per_group(p["on"]),
        group_read_from_objects=per_group(p["read"]),
        group_distance_mean=per_group(p["distance"]),
        group_nearest_distance_mean=rearrange(nearest_key(p["distance"]), "n b g -> g (n b)").mean(1).tolist(),
        group_scenes_with_key_on_objects=rearrange(p["on"], "n b g h w -> g n (b h w)").any(-1).float().mean(1)
        .tolist(),
        group_offset_px_mean=per_group(p["offset_px"]),
    )
    if size is not None:
        pos = p["positions"]  # (N, n_blocks, g, Hk, Wk, 2)
        out["keys_off_map"] = ((pos < -0.5) | (pos > size - 0.5)).any(-1).float().mean().item()
        out["keys_reading_padding"] = ((pos <= -1) | (pos >= size)).any(-1).float().mean().item()
    return out


# ----------------------------------------------------------------------------------------------------------
# Accuracy, cost, all together
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def logits_of(model: SceneDAT, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """The model's logits (N, n_classes) in eval mode, in batches."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def forward_gflops(model: SceneDAT) -> float:
    """GFLOPs of one forward on one image (torch's counter with the CPU attention kernel counted)."""
    x = torch.zeros(1, 3, model.cfg.size, model.cfg.size)
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 1e9


@torch.no_grad()
def evaluate(model: SceneDAT, scenes: Scenes, placement: bool = True) -> dict:
    """Held-out loss and accuracy; with ``placement`` also ``placement_summary`` and the forward GFLOPs."""
    y = targets(scenes, model.cfg)
    logits = logits_of(model, scenes.images)
    out = dict(loss=F.cross_entropy(logits, y).item(), accuracy=(logits.argmax(1) == y).float().mean().item(),
               n_scenes=len(scenes))
    if placement:
        out.update(placement_summary(key_placement(model, scenes), scenes.coverage, scenes.images.shape[-1]))
        out["gflops_per_image"] = forward_gflops(model)
    return out


def format_metrics(m: dict) -> str:
    """One line: accuracy, loss and where the keys are."""
    line = f"accuracy {m['accuracy']:.3f}  loss {m['loss']:.3f}"
    if "keys_on_objects" in m:
        line += (f"  keys on objects {m['keys_on_objects']:.1%} (reference grid {m['reference_on_objects']:.1%},"
                 f" object area {m['object_area']:.1%})  scenes where a key reads the object"
                 f" {m['scenes_reached']:.1%}  {m['gflops_per_image'] * 1e3:.1f} MFLOPs/image")
    return line
