"""The scene model: a stem, DAttention blocks in one of three variants, a mean over the queries, a linear head.

With the default per-pixel stem (1 x 1 convolutions) a feature pixel knows only its own image pixel, so a
key tells what is at the place it is read and nothing else: where the keys go decides what the model sees.
There is no residual path around the attention and no position encoding, so everything the head learns
passes through the keys.
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce
from torch import nn

from ..attention import DAttention, DAttentionTrace
from ..geometry import norm_to_pixel
from ..offsets import LayerNormProxy, sampling_positions
from .config import Config


# ----------------------------------------------------------------------------------------------------------
# Feature-map pixels -> image pixels
# ----------------------------------------------------------------------------------------------------------
def conv_geometry(convs: list[nn.Conv2d]) -> tuple[float, float]:
    """(scale, shift) with ``image_px = scale * feature_px + shift`` for a chain of convs (first to last).

    A conv of kernel k, stride s and padding p centres output pixel ``i`` on input pixel
    ``s * i + (k - 1) / 2 - p``; chaining composes these affine maps, last conv first.
    """
    scale, shift = 1.0, 0.0
    for conv in reversed(convs):
        (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
        scale, shift = s * scale, s * shift + (k - 1) / 2 - p
    return scale, shift


def feature_to_image_px(p: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """Positions in feature-map pixels (any shape) -> the same positions in image pixels."""
    return p * scale + shift


def attention_block(cfg: Config) -> DAttention:
    """One DAttention block of the config's variant (see ``dattn.train.config``)."""
    C, Hf = cfg.channels, cfg.feature_size
    common = dict(n_heads=cfg.n_heads, n_groups=cfg.n_groups, use_pe=False, ref_convention="centered")
    if cfg.variant == "dense":  # stride 1 with no offsets: avg_pool2d(x, 1) is x itself, a key on every position
        block = DAttention(C, (Hf, Hf), stride=1, ksize=1, no_off=True, **common)
    else:
        factor = cfg.offset_range_factor if cfg.variant == "deformable" else 0.0
        block = DAttention(C, (Hf, Hf), stride=cfg.stride, ksize=cfg.key_ksize, offset_range_factor=factor,
                           **common)
    if cfg.offset_init == "zero":  # the keys start on their reference points and move only as the task asks
        nn.init.zeros_(block.conv_offset[-1].weight)
    return block


class SceneDAT(nn.Module):
    """Stem -> [LayerNorm, DAttention] x n_blocks -> mean over the queries -> LayerNorm, linear head.

    ``trace`` gives every block's ``DAttentionTrace``; ``sampling_points`` the keys in image pixels.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        C = cfg.channels
        convs = [nn.Conv2d(3, C, cfg.patch, cfg.patch), nn.Conv2d(C, C, cfg.stem_kernel, 1, cfg.stem_kernel // 2)]
        self.stem = nn.Sequential(convs[0], nn.GELU(), convs[1], nn.GELU())
        self.norms = nn.ModuleList(LayerNormProxy(C) for _ in range(cfg.n_blocks))  # per pixel: keys stay local
        self.blocks = nn.ModuleList(attention_block(cfg) for _ in range(cfg.n_blocks))
        self.head = nn.Sequential(nn.LayerNorm(C), nn.Linear(C, cfg.n_classes))
        self.scale, self.shift = conv_geometry(convs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, n_classes)."""
        f = self.stem(images)  # (B, C, Hf, Wf)
        for norm, block in zip(self.norms, self.blocks, strict=True):
            f = block(norm(f))
        return self.head(reduce(f, "b c h w -> b c", "mean"))

    def to_image_px(self, p: torch.Tensor) -> torch.Tensor:
        """(y, x) positions in feature-map pixels (any shape) -> image pixels."""
        return feature_to_image_px(p, self.scale, self.shift)

    @torch.no_grad()
    def attention_input(self, images: torch.Tensor, block: int = 0) -> torch.Tensor:
        """What DAttention block ``block`` reads for these images (B, C, Hf, Wf): pass it to its ``trace``."""
        f = self.stem(images)
        for i in range(block):
            f = self.blocks[i](self.norms[i](f))
        return self.norms[block](f)

    @torch.no_grad()
    def trace(self, images: torch.Tensor) -> list[DAttentionTrace]:
        """Every DAttention block's trace on these images (positions in feature-map pixels)."""
        f, out = self.stem(images), []
        for norm, block in zip(self.norms, self.blocks, strict=True):
            out.append(block.trace(norm(f)))
            f = out[-1].output
        return out

    @torch.no_grad()
    def sampling_points(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled key positions (B, n_blocks, g, Hk, Wk, 2) and reference points (n_blocks, Hk, Wk, 2),
        both as (y, x) image pixels. The same positions as ``trace`` gives, without the attention weights."""
        f, pos, ref = self.stem(images), [], []
        for norm, block in zip(self.norms, self.blocks, strict=True):
            x = norm(f)  # (B, C, H, W)
            offsets = block.offsets(block.proj_q(x))  # (B*g, Hk, Wk, 2) normalized
            H, W, (Hk, Wk) = *x.shape[-2:], offsets.shape[1:3]
            r = block.reference(Hk, Wk, H, W, x)  # (Hk, Wk, 2) normalized
            p = sampling_positions(r, offsets, block.offset_range_factor)  # (B*g, Hk, Wk, 2)
            pos.append(rearrange(_to_px(p, H, W), "(b g) h w p -> b g h w p", g=block.n_groups))
            ref.append(_to_px(r, H, W))
            f = block(x)
        return self.to_image_px(torch.stack(pos, 1)), self.to_image_px(torch.stack(ref, 0))


def _to_px(p: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Normalized (y, x) -> pixels of an H x W map (align_corners=True)."""
    return torch.stack((norm_to_pixel(p[..., 0], H), norm_to_pixel(p[..., 1], W)), dim=-1)


def build_model(cfg: Config) -> SceneDAT:
    """A freshly initialised model, seeded by ``cfg.seed`` (torch's global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return SceneDAT(cfg)
