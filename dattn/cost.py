"""What attention costs: dense self-attention against deformable attention at several strides."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import DAttention
from .profiling import count_flops, interleaved_medians, peak_memory


class DenseAttention(nn.Module):
    """Plain multi-head self-attention over all H*W pixels, with the same 1x1 projections as DAttention:
    the dense baseline that deformable attention is compared with. (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channel: int, n_heads: int = 8) -> None:
        super().__init__()
        if channel % n_heads:
            raise ValueError(f"channel ({channel}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.proj_q, self.proj_k, self.proj_v, self.proj_out = (nn.Conv2d(channel, channel, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = (
            rearrange(p(x), "b (hd c) h w -> b hd (h w) c", hd=self.n_heads).contiguous()
            for p in (self.proj_q, self.proj_k, self.proj_v)
        )  # (B, heads, HW, c)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, c)
        return self.proj_out(rearrange(out, "b hd (h w) c -> b (hd c) h w", h=H))


def cost_table(
    channel: int = 64, size: int = 40, strides: tuple[int, ...] = (1, 2, 4, 8), batch: int = 1,
    n_heads: int = 8, n_groups: int = 4, reps: int = 3, budget_s: float = 0.5,
) -> list[dict]:
    """Measured cost of one forward of dense attention and of DAttention at each stride on a size x size map.

    Each row: name, keys per query, GFLOPs (torch's counter), milliseconds (median, all models timed in
    turn), and peak MiB of the explicit path (which holds the HW x keys weights) and of the fused path.
    """
    torch.manual_seed(0)
    x = torch.randn(batch, channel, size, size)
    models: dict[str, nn.Module] = {"dense": DenseAttention(channel, n_heads).eval()}
    for s in strides:
        models[f"stride {s}"] = DAttention(channel, (size, size), n_heads=n_heads, n_groups=n_groups, stride=s).eval()

    def call(m: nn.Module, fused: bool = True):
        def run():
            if isinstance(m, DAttention):
                m.fused = fused
            with torch.no_grad():
                return m(x)
        return run

    times = interleaved_medians({k: call(m) for k, m in models.items()}, reps=reps, budget_s=budget_s)
    rows = []
    for name, m in models.items():
        keys = size * size if name == "dense" else m.trace(x[:1]).Hk * m.trace(x[:1]).Wk
        rows.append(dict(
            name=name, keys=keys, gflops=count_flops(call(m)) / 1e9, ms=1e3 * times[name],
            peak_mib_explicit=_mib(peak_memory(call(m, fused=False))) if isinstance(m, DAttention) else None,
            peak_mib_fused=_mib(peak_memory(call(m))),
        ))
    return rows


def _mib(b: int) -> float:
    return b / 2**20
