"""DAttention: multi-head attention whose keys and values are sampled at learned, deformed positions.

The module keeps the seed's constructor, parameter names and shapes, so a state_dict taken from the seed's
(or the official DAT) module loads unchanged and gives the same outputs. Each step is its own function so
that the course can teach them one at a time; ``DAttention.trace`` returns all of their results.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .geometry import REF_CONVENTIONS, _check_size, norm_to_pixel, query_grid, reference_points
from .offsets import (
    bound_offsets,
    check_offset_range_factor,
    grouped_offsets,
    key_grid_size,
    offset_network,
    sampling_positions,
)
from .position_bias import fixed_bias, log_cpb_bias, table_bias
from .sampling import sample_keys

PE_KINDS = ("dwc", "fixed", "log_cpb", "table", "none")


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
    """The same result through ``F.scaled_dot_product_attention``, without materializing the scores or the
    weights (unless autograd records a graph and the bias requires grad: the CPU kernel then runs its math
    path). Shapes as ``attention_explicit``; returns out (B*h, c, HW)."""
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

    Input and output (B, C, H, W) with C == ``channel``. ``q_size`` is the (H, W) the module is built for (an
    int n means (n, n)); only the ``fixed_pe`` and table position encodings depend on it. Each of the
    ``n_groups`` channel groups gets its own offset field on an (H/stride) x (W/stride) key grid
    (``key_grid``); ``n_heads / n_groups`` heads share each group's sampled keys.

    Position encoding (``use_pe=True``, chosen in this order): ``dwc_pe`` a depth-wise 3x3 conv of the
    queries added to the output; ``fixed_pe`` a learned bias per (query, key); ``log_cpb`` an MLP of the
    displacement; otherwise a (2H-1) x (2W-1) table read at the displacement.

    Differences from the seed, none of which changes its outputs where the seed runs:

    * ``ref_convention="centered"`` puts the reference points on the key-cell centres ("seed" is default);
    * a singleton key axis (H/stride == 1) does not divide by zero: see ``dattn.offsets.offset_scale``;
    * ``no_off=True`` has no position encoding (the seed builds none, then crashes adding the dwc one), and its
      keys are the stride x stride cells that avg_pool2d averages, on any map size (the seed asserts);
    * ``fixed_pe``'s table has one column per key of the grid the forward computes for a ``q_size`` map; the
      seed sizes it (q_size // stride), which differs when the stride does not divide the map or ``ksize`` is
      even, and then fails at every forward;
    * bad sizes and arguments raise ``ValueError`` naming the numbers before any work; a batch of 0 gives an
      empty output; numpy integers are accepted wherever ints are;
    * ``forward`` uses ``scaled_dot_product_attention`` (``fused=False`` gives the seed's einsum path).

    Memory (HW queries, Ns keys; 4 bytes a number in float32). Where no graph is recorded (``torch.no_grad``,
    inference), the fused path allocates no HW x Ns tensor, not even one head's, when the encoding adds no
    bias to the scores (``dwc``, ``none``, ``no_off``) or when it is ``fixed``, whose bias is its parameter
    (heads x HW x Ns numbers, held by the module), broadcast over the batch. With ``table`` it holds the bias,
    B x heads x HW x Ns, and while computing it the displacements, B x g x HW x Ns x 2; with ``log_cpb`` the
    bias and the MLP's hidden layer, B x g x HW x Ns x 32 (16 times the bias at 2 heads per group). The
    explicit path also holds the scores and the weights, B x heads x HW x Ns each. Where autograd records a
    graph and there is a bias, the CPU kernel cannot take a mask that needs a gradient and runs its math path,
    which holds the scores and the weights as the explicit path does.

    Export: ``torch.jit.trace``, ``torch.onnx.export`` (both exporters, opset >= 16 for GridSample) and
    ``torch.export`` work with every encoding; the exported graph is specialised to the map size it was
    exported with (H, W and the key grid are constants in it), the batch size stays free.
    ``torch.jit.script`` does not apply: the layout changes are einops calls, which TorchScript cannot compile.
    """

    def __init__(
        self, channel: int, q_size: int | tuple[int, int] | list[int], n_heads: int = 8, n_groups: int = 4,
        attn_drop: float = 0.0, proj_drop: float = 0.0, stride: int = 1, offset_range_factor: float = 4,
        use_pe: bool = True, dwc_pe: bool = True, no_off: bool = False, fixed_pe: bool = False,
        ksize: int = 3, log_cpb: bool = False, kv_size: tuple[int, int] | None = None,
        ref_convention: str = "seed",
    ) -> None:
        super().__init__()
        channel, q_size, n_heads, n_groups, stride, ksize = _check_config(
            channel, q_size, n_heads, n_groups, stride, ksize, ref_convention, attn_drop, proj_drop
        )
        self.channel, self.nc = channel, channel
        self.n_heads, self.n_groups = n_heads, n_groups
        self.n_head_channels = channel // n_heads
        self.n_group_channels = channel // n_groups
        self.n_group_heads = n_heads // n_groups
        self.scale = self.n_head_channels**-0.5
        self.q_h, self.q_w = q_size
        self.stride, self.ksize = stride, ksize
        factor = check_offset_range_factor(offset_range_factor)
        self.offset_range_factor = int(factor) if isinstance(offset_range_factor, numbers.Integral) else factor
        self.use_pe, self.dwc_pe, self.fixed_pe, self.log_cpb = use_pe, dwc_pe, fixed_pe, log_cpb
        self.no_off = no_off
        self.ref_convention = ref_convention
        self.fused = True
        # the key grid of a q_size map (kv_size is unused, as in the seed); only fixed_pe's table depends on it
        fixed = self.pe_kind == "fixed"
        self.kv_h, self.kv_w = self.key_grid(self.q_h, self.q_w) if fixed else (self.q_h // stride, self.q_w // stride)

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
    def key_grid(self, H: int, W: int) -> tuple[int, int]:
        """(Hk, Wk) of the keys of an H x W map: the offset network's output grid, or with ``no_off`` the
        stride x stride cells that ``avg_pool2d`` averages (a partial last row or column of cells is dropped)."""
        if not self.no_off:
            return key_grid_size(H, W, self.ksize, self.stride)
        H, W = _check_size(H, "H"), _check_size(W, "W")
        if H < self.stride or W < self.stride:
            raise ValueError(f"no_off=True averages {self.stride}x{self.stride} cells: a {H}x{W} map has none")
        return H // self.stride, W // self.stride

    def check_input(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """Validate x and return (B, C, H, W); raises ValueError naming what was expected."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"
            raise ValueError(f"DAttention expects a 4-D input (B, C, H, W), got {got}")
        if not x.is_floating_point():
            raise ValueError(f"DAttention expects a floating-point input, got {x.dtype}")
        # sizes as Python ints (while torch.jit.trace runs they are 0-d tensors); the batch stays as it is
        B, (C, H, W) = x.shape[0], (_check_size(n, name) for n, name in zip(x.shape[1:], "CHW", strict=True))
        if C != self.channel:
            raise ValueError(f"DAttention was built for {self.channel} channels, got an input with {C}")
        Hk, Wk = self.key_grid(H, W)
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
            Hk, Wk = self.key_grid(q.shape[-2], q.shape[-1])
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
            return rearrange(F.avg_pool2d(x, self.stride, self.stride), "b (g c) h w -> (b g) c h w", g=self.n_groups)
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
        ref = self.reference(*self.key_grid(H, W), H, W, x)  # (Hk, Wk, 2)
        pos = sampling_positions(ref, offsets, self.offset_range_factor)  # (B*g, Hk, Wk, 2)
        return dict(offsets=offsets, ref=ref, pos=pos, x_sampled=self.sample(x, pos))  # (B*g, Cg, Hk, Wk)

    def _run_explicit(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The seed's computation, step by step, keeping the attention weights."""
        B, C, H, W = self.check_input(x)
        q = self.proj_q(x)  # (B, C, H, W)
        parts = self._sample_keys(x, q, H, W)
        kv_in = rearrange(parts["x_sampled"], "(b g) c h w -> b (g c) 1 (h w)", g=self.n_groups)  # (B, C, 1, Ns)
        qh = self._heads(q)  # (B*heads, c, HW)
        k = self._heads(self.proj_k(kv_in))  # (B*heads, c, Ns)
        v = self._heads(self.proj_v(kv_in))
        bias = self.position_bias(parts["pos"], B, H, W)  # (B*heads, HW, Ns) or None
        out, attn = attention_explicit(qh, k, v, self.scale, bias, self.attn_drop)  # (B*heads, c, HW)
        if self.pe_kind == "dwc":
            out = out + self._heads(self.rpe_table(q))  # (B*heads, c, HW)
        out = rearrange(out, "(b hd) c (h w) -> b (hd c) h w", hd=self.n_heads, h=H)
        y = self.proj_drop(self.proj_out(out))
        return y, dict(parts, attn=attn, bias=bias, B=B, H=H, W=W)

    def _run_fused(self, x: torch.Tensor) -> torch.Tensor:
        """The same result with channels-last 1x1 convolutions feeding ``scaled_dot_product_attention`` (the
        channel axis innermost, as its CPU kernel needs): no (HW x Ns) matrix unless a bias needs one."""
        B, C, H, W = self.check_input(x)
        hd = self.n_heads
        q = self.proj_q(x.contiguous(memory_format=torch.channels_last))  # (B, C, H, W), channels-last
        parts = self._sample_keys(x, q, H, W)
        mask = self._fused_mask(parts["pos"], B, H, W, x.dtype)  # (B or 1, heads, HW, Ns) or None
        kv_in = rearrange(parts.pop("x_sampled"), "(b g) c h w -> b (g c) h w", g=self.n_groups)  # (B, C, Hk, Wk)
        kv_in = kv_in.contiguous(memory_format=torch.channels_last)
        k, v = (rearrange(proj(kv_in), "b (hd c) h w -> b hd (h w) c", hd=hd) for proj in (self.proj_k, self.proj_v))
        del kv_in, parts  # (the del statements free buffers early: lower peak memory)
        out = F.scaled_dot_product_attention(
            rearrange(q, "b (hd c) h w -> b hd (h w) c", hd=hd), k, v, attn_mask=mask,
            dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale,
        )  # (B, heads, HW, c), laid out in memory as (B, HW, heads, c)
        del k, v
        out = out.transpose(1, 2)  # (B, HW, heads, c)
        if mask is not None:  # the dynamo ONNX exporter mistakes this layout when the mask needs grad; a copy
            out = out.clone(memory_format=torch.contiguous_format)  # the size of x, small beside the mask
        del mask
        out = rearrange(out, "b (h w) hd c -> b (hd c) h w", h=H)  # (B, C, H, W), a channels-last view
        if self.pe_kind == "dwc":
            # in place when nothing records a graph (one big buffer fewer); autograd needs the kernel's out,
            # and a trace must be the same graph with and without grad
            in_place = not torch.is_grad_enabled() and not torch.jit.is_tracing()
            out = out.add_(self.rpe_table(q)) if in_place else out + self.rpe_table(q)
        del q
        y = self.proj_out(out)  # (B, C, H, W), channels-last
        del out
        return self.proj_drop(y.contiguous())  # NCHW, as the seed returns it

    def _fused_mask(self, pos: torch.Tensor, B: int, H: int, W: int, dtype: torch.dtype) -> torch.Tensor | None:
        """The position bias as ``scaled_dot_product_attention``'s additive mask (B or 1, heads, HW, Ns), or None.

        A mask that requires grad sends the CPU kernel to its math path, which builds the whole score matrix;
        where no graph is recorded the mask is detached, so that it does not (not while tracing: a trace must
        be the same graph with and without grad)."""
        if self.pe_kind == "fixed":
            mask = self.rpe_table[None]  # (1, heads, HW, Ns): the kernel broadcasts it over the batch
        else:
            bias = self.position_bias(pos, B, H, W)  # (B*heads, HW, Ns) or None
            if bias is None:
                return None
            mask = rearrange(bias, "(b hd) m n -> b hd m n", hd=self.n_heads)
        keep_grad = torch.is_grad_enabled() or torch.jit.is_tracing()
        return mask.to(dtype) if keep_grad else mask.detach().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self._run_fused(x) if self.fused else self._run_explicit(x)[0]

    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> DAttentionTrace:
        """Run the forward on x and return every intermediate (see ``DAttentionTrace``)."""
        y, p = self._run_explicit(x)
        H, W, g, h = p["H"], p["W"], self.n_groups, self.n_heads
        Hk, Wk = p["ref"].shape[:2]

        def to_px(t: torch.Tensor) -> torch.Tensor:
            return torch.stack((norm_to_pixel(t[..., 0], H), norm_to_pixel(t[..., 1], W)), dim=-1)

        def per_group(t: torch.Tensor) -> torch.Tensor:
            return rearrange(t, "(b g) ... -> b g ...", g=g)

        def per_head(t: torch.Tensor) -> torch.Tensor:
            return rearrange(t, "(b hd) m n -> b hd m n", hd=h)

        scale_px = torch.tensor([(H - 1) / 2.0, (W - 1) / 2.0], dtype=x.dtype, device=x.device)
        return DAttentionTrace(
            reference=p["ref"], reference_px=to_px(p["ref"]),
            offsets=per_group(p["offsets"]), offsets_px=per_group(p["offsets"]) * scale_px,
            positions=per_group(p["pos"]), positions_px=to_px(per_group(p["pos"])),
            sampled=per_group(p["x_sampled"]), attn=per_head(p["attn"]),
            bias=None if p["bias"] is None else per_head(p["bias"]),
            output=y, H=H, W=W, Hk=Hk, Wk=Wk, n_heads=h, n_groups=g,
        )

    def extra_repr(self) -> str:
        return (
            f"channel={self.channel}, q_size=({self.q_h}, {self.q_w}), n_heads={self.n_heads}, "
            f"n_groups={self.n_groups}, stride={self.stride}, offset_range_factor={self.offset_range_factor}, "
            f"pe={self.pe_kind}, ref_convention={self.ref_convention!r}"
        )


def _check_config(channel, q_size, n_heads, n_groups, stride, ksize, ref_convention, attn_drop, proj_drop) -> tuple:
    """The sizes as ints (q_size as (H, W); an int n is (n, n)); ValueError naming the numbers if they cannot
    work."""
    channel, n_heads, n_groups, stride, ksize = (
        _check_size(v, name) for v, name in ((channel, "channel"), (n_heads, "n_heads"), (n_groups, "n_groups"),
                                             (stride, "stride"), (ksize, "ksize"))
    )
    for name, p in (("attn_drop", attn_drop), ("proj_drop", proj_drop)):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:  # False for NaN
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    if isinstance(q_size, numbers.Integral) and not isinstance(q_size, bool):
        q_size = (q_size, q_size)
    if isinstance(q_size, (np.ndarray, torch.Tensor)) and q_size.ndim == 1:
        q_size = q_size.tolist()
    if not isinstance(q_size, (tuple, list)) or len(q_size) != 2:
        raise ValueError(f"q_size must be two positive ints (H, W), got {q_size!r}")
    try:
        q_size = tuple(_check_size(s, "q_size") for s in q_size)
    except ValueError:
        raise ValueError(f"q_size must be two positive ints (H, W), got {q_size!r}") from None
    if channel % n_heads:
        raise ValueError(f"channel ({channel}) must be divisible by n_heads ({n_heads})")
    if channel % n_groups:
        raise ValueError(f"channel ({channel}) must be divisible by n_groups ({n_groups})")
    if n_heads % n_groups:
        raise ValueError(f"n_heads ({n_heads}) must be divisible by n_groups ({n_groups})")
    if ref_convention not in REF_CONVENTIONS:
        raise ValueError(f"ref_convention must be one of {REF_CONVENTIONS}, got {ref_convention!r}")
    return channel, q_size, n_heads, n_groups, stride, ksize
