"""A slow, literal DAttention written from the paper's description: one query, one key at a time.

It shares nothing with ``dattn`` but the module's parameter tensors: convolutions are written as sums,
LayerNorm, GELU, tanh bound, reference points and bilinear reads are spelled out per point.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bilinear_at(img: torch.Tensor, py: float, px: float) -> torch.Tensor:
    """img (C, H, W) read at pixel (py, px), zero outside."""
    C, H, W = img.shape
    y0, x0 = math.floor(py), math.floor(px)
    out = torch.zeros(C, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < H and 0 <= xx < W:
                out = out + wy * wx * img[:, yy, xx]
    return out


def pointwise(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv as a sum over input channels: x (B, C, ...) -> (B, C', ...)."""
    w = conv.weight[:, :, 0, 0]
    y = torch.einsum("oc,bc...->bo...", w, x)
    if conv.bias is not None:
        y = y + conv.bias.reshape(1, -1, *([1] * (x.dim() - 2)))
    return y


def loop_dattention(m, x: torch.Tensor) -> torch.Tensor:
    """Output (B, C, H, W) of DAttention ``m`` on x, computed query by query (seed reference convention)."""
    B, C, H, W = x.shape
    g, heads = m.n_groups, m.n_heads
    Cg, hc, hg = C // g, C // heads, heads // g
    q = pointwise(m.proj_q, x)  # (B, C, H, W)

    conv0, ln, _, conv3 = m.conv_offset
    out = torch.zeros_like(x)
    for b in range(B):
        # offsets and sampled keys, group by group
        keys = None
        pos_all = []
        for gi in range(g):
            qg = q[b : b + 1, gi * Cg : (gi + 1) * Cg]
            h = F.conv2d(qg, conv0.weight, conv0.bias, conv0.stride, conv0.padding, groups=Cg)[0]  # (Cg, Hk, Wk)
            mu, var = h.mean(0, keepdim=True), h.var(0, unbiased=False, keepdim=True)
            h = (h - mu) / torch.sqrt(var + ln.norm.eps) * ln.norm.weight[:, None, None] + ln.norm.bias[:, None, None]
            h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
            raw = torch.einsum("oc,chw->ohw", conv3.weight[:, :, 0, 0], h)  # (2, Hk, Wk)
            Hk, Wk = raw.shape[1:]
            if m.no_off:  # the keys are the whole stride x stride cells of the map; a partial last one is dropped
                Hk, Wk = H // m.stride, W // m.stride
            if keys is None:
                keys = torch.zeros(C, Hk * Wk, dtype=x.dtype)
            pos_g = []
            if m.no_off:  # keys are the stride x stride averages of x, no sampling
                s = m.stride
                for i in range(Hk):
                    for j in range(Wk):
                        cell = x[b, gi * Cg : (gi + 1) * Cg, i * s : (i + 1) * s, j * s : (j + 1) * s]
                        keys[gi * Cg : (gi + 1) * Cg, i * Wk + j] = cell.mean((1, 2))
                pos_all.append(pos_g)
                continue
            for i in range(Hk):
                for j in range(Wk):
                    ry = (i + 0.5) / (Hk - 1) * 2 - 1
                    rx = (j + 0.5) / (Wk - 1) * 2 - 1
                    f = m.offset_range_factor
                    if f >= 0:
                        py = ry + math.tanh(raw[0, i, j].item()) * f / (Hk - 1)
                        px = rx + math.tanh(raw[1, i, j].item()) * f / (Wk - 1)
                    else:
                        py = min(max(ry + raw[0, i, j].item(), -1.0), 1.0)
                        px = min(max(rx + raw[1, i, j].item(), -1.0), 1.0)
                    pos_g.append((py, px))
                    pix_y, pix_x = (py + 1) / 2 * (H - 1), (px + 1) / 2 * (W - 1)
                    keys[gi * Cg : (gi + 1) * Cg, i * Wk + j] = bilinear_at(x[b, gi * Cg : (gi + 1) * Cg], pix_y, pix_x)
            pos_all.append(pos_g)
        k = pointwise(m.proj_k, keys[None])[0]  # (C, Ns)
        v = pointwise(m.proj_v, keys[None])[0]
        attended = torch.zeros(C, H, W, dtype=x.dtype)
        for head in range(heads):
            gi = head // hg
            ch = slice(head * hc, (head + 1) * hc)
            for y in range(H):
                for xq in range(W):
                    scores = (q[b, ch, y, xq][:, None] * k[ch]).sum(0) * hc**-0.5  # (Ns,)
                    scores = scores + bias_for(m, head, y, xq, H, W, pos_all[gi], scores)
                    w = torch.exp(scores - scores.max())
                    w = w / w.sum()
                    attended[ch, y, xq] = (w[None, :] * v[ch]).sum(1)
        if m.pe_kind == "dwc":
            attended = attended + F.conv2d(q[b : b + 1], m.rpe_table.weight, m.rpe_table.bias, padding=1, groups=C)[0]
        out[b] = pointwise(m.proj_out, attended[None])[0]
    return out


def bias_for(m, head, y, xq, H, W, pos_g, scores) -> torch.Tensor:
    """Additive bias of one query over all keys (like ``scores``) for the module's position encoding."""
    Ns, dtype = scores.shape[0], scores.dtype
    kind = m.pe_kind
    if kind in ("dwc", "none"):
        return torch.zeros(Ns, dtype=dtype)
    if kind == "fixed":
        return m.rpe_table[head, y * W + xq]
    qy, qx = y / (H - 1) * 2 - 1, xq / (W - 1) * 2 - 1
    out = torch.zeros(Ns, dtype=dtype)
    for n, (py, px) in enumerate(pos_g):
        dy, dx = qy - py, qx - px
        if kind == "table":
            tab = m.rpe_table[head]  # (2H-1, 2W-1), spans displacements -2..2 with align_corners=True
            ty, tx = (dy * 0.5 + 1) / 2 * (2 * H - 2), (dx * 0.5 + 1) / 2 * (2 * W - 2)
            out[n] = bilinear_at(tab[None], ty, tx)[0]
        else:  # log_cpb: Swin-V2 continuous bias
            d = torch.tensor([dy, dx], dtype=dtype) * 4.0
            d = torch.sign(d) * torch.log2(d.abs() + 1.0) / math.log2(8.0)
            l1, _, l2 = m.rpe_table
            hidden = torch.relu(l1.weight @ d + l1.bias)
            out[n] = (l2.weight @ hidden)[head % (m.n_heads // m.n_groups)]
    return out
