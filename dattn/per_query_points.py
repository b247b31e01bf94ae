"""An illustration of Deformable DETR's sampling scheme, the contrast to DAT's shared keys.

In Deformable DETR (Zhu et al., ICLR 2021) each query predicts, from its own feature, a few sampling offsets
around its own position and one attention weight per point (a linear layer and a softmax, no dot product
with keys): every query reads its own points. ``PerQueryPoints`` does that with one head and one feature
level (Deformable DETR has several of each), and is never trained in this course: it is a picture of the
scheme, not of Deformable DETR's trained behaviour.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .geometry import _check_size


class PerQueryPoints(nn.Module):
    """Per query: ``n_points`` sampling points (offsets in map pixels from the query's own pixel) and their
    weights, both from a linear layer of that query's feature alone.

    (B, C, H, W) -> points (B, H*W, n_points, 2) as (y, x) map pixels, weights (B, H*W, n_points) summing to 1.
    """

    def __init__(self, channel: int, n_points: int = 4) -> None:
        super().__init__()
        self.channel, self.n_points = _check_size(channel, "channel"), _check_size(n_points, "n_points")
        self.offsets = nn.Linear(channel, 2 * n_points)  # query feature -> its own K (dy, dx) offsets
        self.weights = nn.Linear(channel, n_points)  # query feature -> its own K attention weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channel:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"PerQueryPoints expects (B, {self.channel}, H, W), got {got}")
        B, _, H, W = x.shape
        feats = rearrange(x, "b c h w -> b (h w) c")  # (B, HW, C): one row per query
        ys, xs = torch.meshgrid(torch.arange(H, dtype=x.dtype), torch.arange(W, dtype=x.dtype), indexing="ij")
        own = rearrange(torch.stack((ys, xs), -1), "h w p -> 1 (h w) 1 p")  # (1, HW, 1, 2): each query's pixel
        offsets = rearrange(self.offsets(feats), "b m (k p) -> b m k p", p=2)  # (B, HW, K, 2)
        return own + offsets, self.weights(feats).softmax(-1)  # (B, HW, K, 2), (B, HW, K)
