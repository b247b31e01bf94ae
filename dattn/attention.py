"""DAttention: multi-head attention whose keys and values are sampled at learned, deformed positions.

The module keeps the seed's constructor, parameter names and shapes, so a state_dict taken from the seed's
(or the official DAT) module loads unchanged and gives the same outputs. Each step is its own function so
that the course can teach them one at a time; ``DAttention.trace`` returns all of their results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .geometry import REF_CONVENTIONS, norm_to_pixel, query_grid, reference_points
from .offsets import bound_offsets, grouped_offsets, key_grid_size, offset_network, sampling_positions
from .sampling import sample_keys

PE_KINDS = ("dwc", "fixed", "log_cpb", "table", "none")


# ----------------------------------------------------------------------------------------------------------
# Position-encoding biases: each returns an additive attention bias (B*heads, HW, Ns).
# ----------------------------------------------------------------------------------------------------------
def displacement(q_grid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Normalized (y, x) vector from every sampled key to every query: (B*g, HW, Ns, 2).

    q_grid (H, W, 2), pos (B*g, Hk, Wk, 2).
    """
    q = rearrange(q_grid, "h w p -> 1 (h w) 1 p")
    k = rearrange(pos, "bg h w p -> bg 1 (h w) p")
    return q - k


def table_bias(table: torch.Tensor, q_grid: torch.Tensor, pos: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Bias read from a (heads, 2H-1, 2W-1) relative-position table at the continuous displacements.

    The table spans displacements of -2..+2 in normalized units; halving the displacement maps it onto the
    table's [-1, 1] and grid_sample interpolates between its entries. Returns (B*heads, HW, Ns).
    """
    Bg = pos.shape[0]
    B = Bg // n_groups
    tab = rearrange(table, "(g hg) th tw -> g hg th tw", g=n_groups)
    tab = tab[None].expand(B, -1, -1, -1, -1).reshape(Bg, -1, *table.shape[-2:])  # (B*g, hg, 2H-1, 2W-1)
    grid = (displacement(q_grid, pos) * 0.5).flip(-1).to(table.dtype)  # (B*g, HW, Ns, 2) as (x, y)
    bias = F.grid_sample(tab, grid, mode="bilinear", align_corners=True)  # (B*g, hg, HW, Ns)
    return rearrange(bias, "bg hg m n -> (bg hg) m n")


def log_cpb_bias(mlp: nn.Module, q_grid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Swin-V2 style continuous bias: an MLP of the log-spaced displacement. Returns (B*heads, HW, Ns)."""
    d = displacement(q_grid, pos) * 4.0  # (B*g, HW, Ns, 2), roughly in [-8, 8]
    d = torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8.0)
    bias = mlp(d)  # (B*g, HW, Ns, hg)
    return rearrange(bias, "bg m n hg -> (bg hg) m n")


def fixed_bias(table: torch.Tensor, B: int) -> torch.Tensor:
    """A learned bias per (head, query, key) pair, (heads, HW, Ns) -> (B*heads, HW, Ns)."""
    return table[None].expand(B, -1, -1, -1).reshape(-1, *table.shape[1:])


# ----------------------------------------------------------------------------------------------------------
# Attention over the sampled keys: an explicit path that keeps the weights, and a fused path.
# ----------------------------------------------------------------------------------------------------------
def attention_explicit(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, bias: torch.Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scale + bias) v, as the seed computes it.

    q (B*h, c, HW), k and v (B*h, c, Ns), bias (B*h, HW, Ns) -> out (B*h, c, HW), weights (B*h, HW, Ns).
    """
    attn = torch.einsum("b c m, b c n -> b m n", q, k) * scale  # (B*h, HW, Ns)
    if bias is not None:
        attn = attn + bias
    attn = attn.softmax(dim=2)
    if dropout is not None:
        attn = dropout(attn)
    out = torch.einsum("b m n, b c n -> b c m", attn, v)  # (B*h, c, HW)
    return out, attn


def attention_fused(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, bias: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """The same result through ``F.scaled_dot_product_attention``, never materializing the weights when there
    is no bias. Shapes as ``attention_explicit``; returns out (B*h, c, HW)."""
    # CPU's flash kernel needs the channel axis innermost; strided views fall back to the slow math path
    qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))  # (B*h, HW | Ns, c)
    mask = None if bias is None else bias.to(q.dtype)
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    return out.transpose(1, 2)  # (B*h, c, HW)


@dataclass
class DAttentionTrace:
    """Every intermediate of one DAttention forward. Positions are (y, x) pairs in the last dimension.

    ``*_px`` fields are in pixels of the H x W input map (align_corners=True: pixel centres at integers).
    Per-group tensors have a leading (B, g) pair, per-head ones (B, heads).
    """

    reference: torch.Tensor  # (Hk, Wk, 2) normalized
    reference_px: torch.Tensor  # (Hk, Wk, 2)
    offsets: torch.Tensor  # (B, g, Hk, Wk, 2) normalized
    offsets_px: torch.Tensor  # (B, g, Hk, Wk, 2)
    positions: torch.Tensor  # (B, g, Hk, Wk, 2) normalized
    positions_px: torch.Tensor  # (B, g, Hk, Wk, 2)
    sampled: torch.Tensor  # (B, g, Cg, Hk, Wk) features read at the positions
    attn: torch.Tensor  # (B, heads, HW, Ns) attention weights of each query over the sampled keys
    bias: torch.Tensor | None  # (B, heads, HW, Ns) additive position bias, when the variant has one
    output: torch.Tensor  # (B, C, H, W)
    H: int
    W: int
    Hk: int
    Wk: int
    n_heads: int
    n_groups: int

    def group_of_head(self, head: int) -> int:
        """Group whose sampling positions a head attends to."""
        return head // (self.n_heads // self.n_groups)


class DAttention(nn.Module):
    """Deformable multi-head self-attention (Xia et al., CVPR 2022), in the seed's form.

    Input and output (B, C, H, W) with C == ``channel``. ``q_size`` is the (H, W) the module is built for;
    only the ``fixed_pe`` and table position encodings depend on it. Each of the ``n_groups`` channel groups
    gets its own offset field on an (H/stride) x (W/stride) key grid; ``n_heads / n_groups`` heads share
    each group's sampled keys.

    Position encoding (``use_pe=True``, chosen in this order): ``dwc_pe`` a depth-wise 3x3 conv of the
    queries added to the output; ``fixed_pe`` a learned bias per (query, key); ``log_cpb`` an MLP of the
    displacement; otherwise a (2H-1) x (2W-1) table read at the displacement.

    Differences from the seed, none of which changes its outputs where the seed runs:

    * ``ref_convention="centered"`` puts the reference points on the key-cell centres ("seed" is default);
    * a singleton key axis (H/stride == 1) does not divide by zero: see ``dattn.offsets.offset_scale``;
    * ``no_off=True`` has no position encoding (the seed builds none, then crashes adding the dwc one);
    * bad sizes raise ``ValueError`` naming the numbers before any work;
    * ``forward`` uses ``scaled_dot_product_attention`` (``fused=False`` gives the seed's einsum path).
    """

    def __init__(
        self, channel: int, q_size: tuple[int, int] | list[int], n_heads: int = 8, n_groups: int = 4,
        attn_drop: float = 0.0, proj_drop: float = 0.0, stride: int = 1, offset_range_factor: float = 4,
        use_pe: bool = True, dwc_pe: bool = True, no_off: bool = False, fixed_pe: bool = False,
        ksize: int = 3, log_cpb: bool = False, kv_size: tuple[int, int] | None = None,
        ref_convention: str = "seed",
    ) -> None:
        super().__init__()
        _check_config(channel, q_size, n_heads, n_groups, stride, ksize, ref_convention)
        self.channel, self.nc = channel, channel
        self.n_heads, self.n_groups = n_heads, n_groups
        self.n_head_channels = channel // n_heads
        self.n_group_channels = channel // n_groups
        self.n_group_heads = n_heads // n_groups
        self.scale = self.n_head_channels**-0.5
        self.q_h, self.q_w = int(q_size[0]), int(q_size[1])
        self.kv_h, self.kv_w = self.q_h // stride, self.q_w // stride  # kv_size is unused, as in the seed
        self.stride, self.ksize = stride, ksize
        self.offset_range_factor = offset_range_factor
        self.use_pe, self.dwc_pe, self.fixed_pe, self.log_cpb = use_pe, dwc_pe, fixed_pe, log_cpb
        self.no_off = no_off
        self.ref_convention = ref_convention
        self.fused = True

        self.conv_offset = offset_network(self.n_group_channels, ksize, stride)
        if no_off:
            self.conv_offset.requires_grad_(False)
        self.proj_q, self.proj_k, self.proj_v, self.proj_out = (
            nn.Conv2d(channel, channel, kernel_size=1) for _ in range(4)
        )
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_drop = nn.Dropout(attn_drop)
        self.rpe_table = self._make_pe()

    # -- construction ------------------------------------------------------------------------------------
    @property
    def pe_kind(self) -> str:
        """Which position encoding is active: one of ``PE_KINDS``."""
        if not self.use_pe or self.no_off:
            return "none"
        if self.dwc_pe:
            return "dwc"
        if self.fixed_pe:
            return "fixed"
        return "log_cpb" if self.log_cpb else "table"

    def _make_pe(self) -> nn.Module | nn.Parameter | None:
        kind, C = self.pe_kind, self.channel
        if kind == "dwc":
            return nn.Conv2d(C, C, kernel_size=3, stride=1, padding=1, groups=C)
        if kind == "fixed":
            table = torch.zeros(self.n_heads, self.q_h * self.q_w, self.kv_h * self.kv_w)
        elif kind == "log_cpb":
            return nn.Sequential(nn.Linear(2, 32), nn.ReLU(inplace=True), nn.Linear(32, self.n_group_heads, bias=False))
        elif kind == "table":
            table = torch.zeros(self.n_heads, self.q_h * 2 - 1, self.q_w * 2 - 1)
        else:
            return None
        return nn.Parameter(nn.init.trunc_normal_(table, std=0.01))

    # -- the steps ---------------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """Validate x and return (B, C, H, W); raises ValueError naming what was expected."""
        if x.dim() != 4:
            raise ValueError(f"DAttention expects a 4-D input (B, C, H, W), got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        if C != self.channel:
            raise ValueError(f"DAttention was built for {self.channel} channels, got an input with {C}")
        Hk, Wk = key_grid_size(H, W, self.ksize, self.stride)
        kind = self.pe_kind
        if kind == "fixed" and (H * W != self.q_h * self.q_w or Hk * Wk != self.kv_h * self.kv_w):
            raise ValueError(
                f"fixed_pe was built for a {self.q_h}x{self.q_w} map ({self.kv_h}x{self.kv_w} keys), "
                f"got a {H}x{W} map ({Hk}x{Wk} keys): build with q_size=({H}, {W}) or feed a {self.q_h}x{self.q_w} map"
            )
        if kind == "table" and (H, W) != (self.q_h, self.q_w):
            raise ValueError(
                f"the relative-position table was built for a {self.q_h}x{self.q_w} map, got {H}x{W}: "
                f"build with q_size=({H}, {W})"
            )
        return B, C, H, W

    def offsets(self, q: torch.Tensor) -> torch.Tensor:
        """Queries (B, C, H, W) -> bounded offsets (B*g, Hk, Wk, 2), normalized (dy, dx); zero if no_off."""
        if self.no_off:
            Hk, Wk = key_grid_size(*q.shape[-2:], self.ksize, self.stride)
            return q.new_zeros(q.shape[0] * self.n_groups, Hk, Wk, 2)
        raw = grouped_offsets(self.conv_offset, q, self.n_groups)  # (B*g, 2, Hk, Wk), all groups at once
        return bound_offsets(raw, self.offset_range_factor)

    def reference(self, Hk: int, Wk: int, H: int, W: int, x: torch.Tensor) -> torch.Tensor:
        """Reference points (Hk, Wk, 2) in this module's convention."""
        return reference_points(Hk, Wk, H, W, self.ref_convention, dtype=x.dtype, device=x.device)

    def sample(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Features at the positions: x (B, C, H, W), pos (B*g, Hk, Wk, 2) -> (B*g, Cg, Hk, Wk).

        With ``no_off`` the keys are the average-pooled map, as in the seed."""
        if self.no_off:
            return rearrange(
                F.avg_pool2d(x, self.stride, self.stride)[..., : pos.shape[1], : pos.shape[2]],
                "b (g c) h w -> (b g) c h w", g=self.n_groups,
            )
        return sample_keys(x, pos, self.n_groups)

    def position_bias(self, pos: torch.Tensor, B: int, H: int, W: int) -> torch.Tensor | None:
        """Additive attention bias (B*heads, HW, Ns) of the active encoding, or None (dwc and none)."""
        kind = self.pe_kind
        if kind == "fixed":
            return fixed_bias(self.rpe_table, B)
        if kind in ("table", "log_cpb"):
            q_grid = query_grid(H, W, dtype=pos.dtype, device=pos.device)
            if kind == "table":
                return table_bias(self.rpe_table, q_grid, pos, self.n_groups)
            return log_cpb_bias(self.rpe_table, q_grid, pos)
        return None

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B*heads, c, h*w)."""
        return rearrange(t, "b (hd c) h w -> (b hd) c (h w)", hd=self.n_heads)

    def _sample_keys(self, x: torch.Tensor, q: torch.Tensor, H: int, W: int) -> dict:
        """Offsets, reference points, positions and sampled features from the queries q (B, C, H, W)."""
        offsets = self.offsets(q)  # (B*g, Hk, Wk, 2)
        Hk, Wk = offsets.shape[1:3]
        ref = self.reference(Hk, Wk, H, W, x)  # (Hk, Wk, 2)
        pos = sampling_positions(ref, offsets, self.offset_range_factor)  # (B*g, Hk, Wk, 2)
        return dict(offsets=offsets, ref=ref, pos=pos, x_sampled=self.sample(x, pos))  # (B*g, Cg, Hk, Wk)

    def _run_explicit(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The seed's computation, step by step, keeping the attention weights."""
        B, C, H, W = self.check_input(x)
        q = self.proj_q(x)  # (B, C, H, W)
        parts = self._sample_keys(x, q, H, W)
        kv_in = rearrange(parts["x_sampled"], "(b g) c h w -> b (g c) 1 (h w)", b=B)  # (B, C, 1, Ns)
        qh = self._heads(q)  # (B*heads, c, HW)
        k = self._heads(self.proj_k(kv_in))  # (B*heads, c, Ns)
        v = self._heads(self.proj_v(kv_in))
        bias = self.position_bias(parts["pos"], B, H, W)  # (B*heads, HW, Ns) or None
        out, attn = attention_explicit(qh, k, v, self.scale, bias, self.attn_drop)  # (B*heads, c, HW)
        if self.pe_kind == "dwc":
            out = out + self._heads(self.rpe_table(q))  # (B*heads, c, HW)
        out = rearrange(out, "(b hd) c (h w) -> b (hd c) h w", b=B, h=H)
        y = self.proj_drop(self.proj_out(out))
        return y, dict(parts, attn=attn, bias=bias, B=B, H=H, W=W)

    def _run_fused(self, x: torch.Tensor) -> torch.Tensor:
        """The same result with the projections as matrix products laid out for
        ``scaled_dot_product_attention``: no (HW x Ns) matrix unless a bias needs one, and few copies."""
        B, C, H, W = self.check_input(x)
        hd = self.n_heads
        qT = F.linear(rearrange(x, "b c h w -> b (h w) c"), _matrix(self.proj_q), self.proj_q.bias)  # (B, HW, C)
        q = rearrange(qT, "b (h w) c -> b c h w", h=H)  # (B, C, H, W), a channels-last view
        parts = self._sample_keys(x, q, H, W)
        kv_in = rearrange(parts["x_sampled"], "(b g) c h w -> b (h w) (g c)", b=B)  # (B, Ns, C), a view
        w_kv = torch.cat((_matrix(self.proj_k), _matrix(self.proj_v)))  # (2C, C): k and v in one product
        kv = F.linear(kv_in, w_kv, torch.cat((self.proj_k.bias, self.proj_v.bias)))  # (B, Ns, 2C)
        k, v = rearrange(kv, "b n (two hd c) -> two b hd n c", two=2, hd=hd)  # (B, heads, Ns, c) views
        bias = self.position_bias(parts["pos"], B, H, W)  # (B*heads, HW, Ns) or None
        mask = None if bias is None else rearrange(bias, "(b hd) m n -> b hd m n", b=B).to(x.dtype)
        out = F.scaled_dot_product_attention(
            rearrange(qT, "b m (hd c) -> b hd m c", hd=hd), k, v, attn_mask=mask,
            dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale,
        )  # (B, heads, HW, c)
        out = rearrange(out, "b hd m c -> b m (hd c)")  # (B, HW, C), a view of the kernel's output
        if self.pe_kind == "dwc":
            pe = rearrange(self.rpe_table(q), "b c h w -> b (h w) c")  # (B, HW, C)
            # in place when nothing records a graph (one big buffer fewer); autograd needs the kernel's out
            out = out + pe if torch.is_grad_enabled() else out.add_(pe)
        w_out = _matrix(self.proj_out).expand(B, C, C)
        y = torch.baddbmm(self.proj_out.bias.view(1, C, 1), w_out, out.transpose(1, 2))  # (B, C, HW): NCHW, no copy
        return self.proj_drop(y.view(B, C, H, W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self._run_fused(x) if self.fused else self._run_explicit(x)[0]

    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> DAttentionTrace:
        """Run the forward on x and return every intermediate (see ``DAttentionTrace``)."""
        y, p = self._run_explicit(x)
        B, H, W, g, h = p["B"], p["H"], p["W"], self.n_groups, self.n_heads
        Hk, Wk = p["ref"].shape[:2]

        def to_px(t: torch.Tensor) -> torch.Tensor:
            return torch.stack((norm_to_pixel(t[..., 0], H), norm_to_pixel(t[..., 1], W)), dim=-1)

        def per_group(t: torch.Tensor) -> torch.Tensor:
            return rearrange(t, "(b g) ... -> b g ...", b=B)

        scale_px = torch.tensor([(H - 1) / 2.0, (W - 1) / 2.0], dtype=x.dtype, device=x.device)
        return DAttentionTrace(
            reference=p["ref"], reference_px=to_px(p["ref"]),
            offsets=per_group(p["offsets"]), offsets_px=per_group(p["offsets"]) * scale_px,
            positions=per_group(p["pos"]), positions_px=to_px(per_group(p["pos"])),
            sampled=per_group(p["x_sampled"]),
            attn=rearrange(p["attn"], "(b hd) m n -> b hd m n", b=B),
            bias=None if p["bias"] is None else rearrange(p["bias"], "(b hd) m n -> b hd m n", b=B),
            output=y, H=H, W=W, Hk=Hk, Wk=Wk, n_heads=h, n_groups=g,
        )

    def extra_repr(self) -> str:
        return (
            f"channel={self.channel}, q_size=({self.q_h}, {self.q_w}), n_heads={self.n_heads}, "
            f"n_groups={self.n_groups}, stride={self.stride}, offset_range_factor={self.offset_range_factor}, "
            f"pe={self.pe_kind}, ref_convention={self.ref_convention!r}"
        )


def _matrix(conv: nn.Conv2d) -> torch.Tensor:
    """The (C_out, C_in) matrix of a 1x1 convolution."""
    return conv.weight.view(conv.out_channels, conv.in_channels)


def _check_config(channel, q_size, n_heads, n_groups, stride, ksize, ref_convention) -> None:
    """Raise ValueError for constructor arguments that cannot work, naming the numbers."""
    for name, value in (("channel", channel), ("n_heads", n_heads), ("n_groups", n_groups),
                        ("stride", stride), ("ksize", ksize)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if len(q_size) != 2 or any(not isinstance(s, int) or s < 1 for s in q_size):
        raise ValueError(f"q_size must be two positive ints (H, W), got {q_size!r}")
    if channel % n_heads:
        raise ValueError(f"channel ({channel}) must be divisible by n_heads ({n_heads})")
    if channel % n_groups:
        raise ValueError(f"channel ({channel}) must be divisible by n_groups ({n_groups})")
    if n_heads % n_groups:
        raise ValueError(f"n_heads ({n_heads}) must be divisible by n_groups ({n_groups})")
    if ref_convention not in REF_CONVENTIONS:
        raise ValueError(f"ref_convention must be one of {REF_CONVENTIONS}, got {ref_convention!r}")
