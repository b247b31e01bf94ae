"""What attention costs: dense self-attention against deformable attention at several strides."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .attention import DAttention
from .offsets import sampling_positions
from .profiling import best_times, count_flops, peak_memory


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
    n_heads: int = 8, n_groups: int = 4, runs: int = 10, threads: int | None = 1,
) -> list[dict]:
    """Cost of one inference forward of dense attention and of DAttention at each stride on a size x size map.

    Each row: ``name``, ``keys`` per query, ``gflops`` of the whole forward and ``attention_gflops`` of its
    two attention products (both counted by torch's counter), ``scores_mib``: the HW x keys weights of all
    heads that the explicit path holds, ``peak_mib_explicit`` and ``peak_mib_fused`` (peak tensor memory of
    one call), and wall time in ms over ``runs`` interleaved single-threaded runs: ``ms_best``,
    ``ms_median``, ``ms_worst``. FLOPs and bytes are the same on every run; the times are this machine's.
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

    times = best_times({k: call(m) for k, m in models.items()}, runs=runs, threads=threads)
    rows = []
    for name, m in models.items():
        keys = size * size if name == "dense" else math.prod(m.key_grid(size, size))
        rows.append(dict(
            name=name, keys=keys, gflops=count_flops(call(m)) / 1e9,
            attention_gflops=attention_flops(batch, n_heads, size * size, keys, channel // n_heads) / 1e9,
            scores_mib=_mib(batch * n_heads * size * size * keys * x.element_size()),
            peak_mib_explicit=_mib(peak_memory(call(m, fused=False))) if isinstance(m, DAttention) else None,
            peak_mib_fused=_mib(peak_memory(call(m))),
            **{f"ms_{k}": 1e3 * v for k, v in times[name].items()},
        ))
    return rows


def attention_flops(batch: int, n_heads: int, n_queries: int, n_keys: int, head_dim: int) -> int:
    """FLOPs of the two attention products, scores q k^T and weights times v, as torch's counter counts
    them: ``scaled_dot_product_attention`` on (batch, n_heads) queries (n_queries, head_dim) and keys and
    values (n_keys, head_dim), on meta tensors (nothing is computed)."""
    q = torch.empty(batch, n_heads, n_queries, head_dim, device="meta")
    kv = torch.empty(batch, n_heads, n_keys, head_dim, device="meta")
    with FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, kv, kv)
    return counter.get_total_flops()


def sharing_cost(
    channel: int = 64, size: int = 40, stride: int = 4, batch: int = 1, n_heads: int = 8, n_groups: int = 4,
    n_per_query: int | None = None,
) -> dict:
    """What sharing the keys buys, for one DAttention on a size x size map.

    The module's keys are read and projected once per image; with the same number of keys read separately
    for every query (``n_per_query`` keys each, by default as many as DAttention's), the reads and the key
    and value projections are repeated per query. Returns ``queries`` (HW), ``keys`` (Ns), and for
    ``shared`` and ``per_query``: ``sampled_bytes`` (the key features read), ``kv_flops`` (the k and v
    projections, counted by torch's counter on the real tensors) and ``attention_flops`` (the two products).
    """
    m = DAttention(channel, (size, size), n_heads=n_heads, n_groups=n_groups, stride=stride).eval()
    x = torch.randn(batch, channel, size, size)
    with torch.no_grad():
        q = m.proj_q(x)  # (B, C, H, W)
        offsets = m.offsets(q)  # (B*g, Hk, Wk, 2)
        pos = sampling_positions(m.reference(*offsets.shape[1:3], size, size, x), offsets, m.offset_range_factor)
        sampled = m.sample(x, pos)  # (B*g, C/g, Hk, Wk): every group's keys, read once
        kv_in = rearrange(sampled, "(b g) c h w -> b (g c) 1 (h w)", b=batch)  # (B, C, 1, Ns)
        kv_flops = count_flops(lambda: (m.proj_k(kv_in), m.proj_v(kv_in)))
    HW, Ns = size * size, kv_in.shape[-1]
    K = Ns if n_per_query is None else n_per_query
    head_dim = channel // n_heads
    return dict(
        queries=HW, keys=Ns, per_query_keys=K,
        shared=dict(sampled_bytes=sampled.numel() * sampled.element_size(), kv_flops=kv_flops,
                    attention_flops=attention_flops(batch, n_heads, HW, Ns, head_dim)),
        per_query=dict(sampled_bytes=HW * K * batch * channel * sampled.element_size(),
                       kv_flops=HW * K * kv_flops // Ns,
                       attention_flops=HW * attention_flops(batch, n_heads, 1, K, head_dim)),
    )


def _mib(b: int) -> float:
    return b / 2**20
