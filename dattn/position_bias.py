"""Position-encoding biases of DAttention: each returns an additive attention bias (B*heads, HW, Ns).

``table`` reads a learned (2H-1) x (2W-1) table per head at the continuous query-key displacement, ``log_cpb``
(Swin-V2) runs a small MLP on the log-spaced displacement, ``fixed`` learns one number per (head, query, key).
Each bias is an HW x Ns matrix per head: see ``DAttention``'s docstring for the memory that costs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


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
    tab = rearrange(table, "(g hg) th tw -> g hg th tw", g=n_groups)
    tab = tab[None].expand(pos.shape[0] // n_groups, -1, -1, -1, -1)  # (B, g, hg, 2H-1, 2W-1), a view
    tab = rearrange(tab, "b g hg th tw -> (b g) hg th tw")  # (B*g, hg, 2H-1, 2W-1)
    grid = displacement(q_grid.flip(-1) * 0.5, pos.flip(-1) * 0.5).to(table.dtype)  # (B*g, HW, Ns, 2) as (x, y)
    bias = F.grid_sample(tab, grid, mode="bilinear", align_corners=True)  # (B*g, hg, HW, Ns)
    return rearrange(bias, "bg hg m n -> (bg hg) m n")


def log_cpb_bias(mlp: nn.Module, q_grid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Swin-V2 style continuous bias: an MLP of the log-spaced displacement. Returns (B*heads, HW, Ns)."""
    d = displacement(q_grid, pos) * 4.0  # (B*g, HW, Ns, 2), roughly in [-8, 8]
    d = torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8.0)
    bias = mlp(d.reshape(-1, 2))  # (B*g*HW*Ns, hg): on a 2-D input Linear adds its bias in the product
    bias = bias.reshape(*d.shape[:3], bias.shape[-1])  # (B*g, HW, Ns, hg)
    return rearrange(bias, "bg m n hg -> (bg hg) m n")


def fixed_bias(table: torch.Tensor, B: int) -> torch.Tensor:
    """A learned bias per (head, query, key) pair, (heads, HW, Ns) -> (B*heads, HW, Ns)."""
    return rearrange(table[None].expand(B, -1, -1, -1), "b hd m n -> (b hd) m n")
