"""What the pictures feed DAttention: an image reduced to a small feature map, and an untrained module.

Nothing here adjusts the module the course teaches: ``build_model`` is ``DAttention(...)`` exactly as
PyTorch initialises it after ``torch.manual_seed(seed)`` (untrained: its attention is close to uniform and
its offsets are small), and ``features_from_image`` is a stand-in for a backbone's features made of the
image's colours, brightness and brightness gradients, nothing else.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..attention import DAttention
from .images import image_to_tensor

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luminance weights of R, G, B


def box_blur(x: torch.Tensor, k: tuple[int, int]) -> torch.Tensor:
    """Centred box blur of (N, C, H, W) with odd widths k = (ky, kx), replicate padding, via cumulative sums."""
    for dim, width in ((2, k[0]), (3, k[1])):
        if width > 1:
            r = width // 2
            pad = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
            c = F.pad(x, pad, mode="replicate").cumsum(dim)
            c = torch.cat((torch.zeros_like(c.narrow(dim, 0, 1)), c), dim)  # leading zero row / column
            n = x.shape[dim]
            x = (c.narrow(dim, width, n) - c.narrow(dim, 0, n)) / width
    return x


def resize_image(image, size: int | tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) image -> (1, 3, S, S) tensor, blurred then resized with align_corners=True so that map pixel
    i is the (smoothed) image at ``i * (H - 1) / (S - 1)`` (see ``dattn.viz.map_to_image``)."""
    S = (size, size) if isinstance(size, int) else tuple(size)
    x = image_to_tensor(np.asarray(image))  # (1, 3, H, W)
    k = tuple(max(1, int(round(n / s))) // 2 * 2 + 1 for n, s in zip(x.shape[-2:], S, strict=True))  # odd
    x = box_blur(x, k)  # against aliasing; a centred blur moves no pixel centre
    return F.interpolate(x, size=S, mode="bilinear", align_corners=True)  # (1, 3, S, S)


def image_channels(image, size: int) -> torch.Tensor:
    """The six base channels of ``features_from_image``: centred R, G, B, luminance and its y and x
    gradients, each standardized over the map: (6, S, S)."""
    rgb = resize_image(image, size)[0]  # (3, S, S)
    lum = (rgb * torch.tensor(LUMA).view(3, 1, 1)).sum(0)  # (S, S)
    gy, gx = torch.gradient(lum)
    base = torch.stack((*(rgb - 0.5), lum - 0.5, gy, gx))  # (6, S, S)
    # a channel that is flat over the map (std below 1e-3) stays about zero instead of amplifying rounding
    return (base - base.mean((1, 2), keepdim=True)) / base.std((1, 2), keepdim=True).clamp_min(1e-3)


def features_from_image(image, channels: int = 32, size: int = 20, seed: int = 0) -> torch.Tensor:
    """A deterministic (1, C, S, S) stand-in for a backbone's feature map of an RGB image.

    The six ``image_channels`` (colour, brightness, its gradients; no position information) mixed by a
    fixed random 1x1 projection drawn from a local generator seeded by ``seed``.
    """
    base = image_channels(image, size)  # (6, S, S)
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(channels, base.shape[0], generator=g) / base.shape[0] ** 0.5  # (C, 6)
    feats = torch.einsum("cb, b h w -> c h w", proj, base)  # (C, S, S)
    return feats[None]  # (1, C, S, S)


def build_model(
    channels: int = 32, size: int = 20, n_heads: int = 8, n_groups: int = 4, stride: int = 1,
    offset_range_factor: float = 4.0, seed: int = 0, ref_convention: str = "seed",
) -> DAttention:
    """An untrained DAttention in eval mode: exactly ``torch.manual_seed(seed); DAttention(...)``.

    The seeding happens inside ``torch.random.fork_rng``, so torch's global generator is left as it was:
    a caller's own random numbers do not depend on whether a picture was drawn.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = DAttention(channels, (size, size), n_heads=n_heads, n_groups=n_groups, stride=stride,
                       offset_range_factor=offset_range_factor, ref_convention=ref_convention)
    return m.eval()


def map_luminance(image, map_hw: tuple[int, int]) -> np.ndarray:
    """The image's luminance at the map's resolution, (H, W): what the bilinear panel reads from."""
    rgb = resize_image(image, map_hw)[0]  # (3, H, W)
    return (rgb * torch.tensor(LUMA).view(3, 1, 1)).sum(0).numpy()
