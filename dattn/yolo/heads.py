"""YOLOv5's anchor-based heads (v7.0): Detect, and Segment with its mask-prototype branch Proto."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from .common import Conv


class Detect(nn.Module):
    """One 1x1 conv per pyramid level predicting, for each of na anchors, (x, y, w, h, obj, nc classes).

    Train mode returns the raw maps ``[(B, na, ny, nx, no), ...]``; eval mode decodes them into boxes in input
    pixels and returns ``(preds (B, N, no), raw maps)`` with N = sum of na * ny * nx over levels.
    ``stride`` is set by the model (a dry forward), and ``anchors`` are then stored in grid units.
    """

    stride: torch.Tensor | None = None  # strides of the levels, set at build

    def __init__(
        self,
        nc: int = 80,
        anchors: Sequence[Sequence[float]] = (),
        ch: Sequence[int] = (),
        inplace: bool = True,
    ) -> None:
        super().__init__()
        self.nc = nc
        self.no = nc + 5  # outputs per anchor
        self.nl = len(anchors)  # pyramid levels
        self.na = len(anchors[0]) // 2  # anchors per level
        if len(ch) != self.nl:
            raise ValueError(f"Detect got {len(ch)} input levels for {self.nl} anchor levels")
        self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2))  # (nl, na, 2)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.inplace = inplace

    def _raw(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        """[(B, c_i, ny, nx)] -> [(B, na, ny, nx, no)]."""
        maps = [m(xi) for m, xi in zip(self.m, x, strict=True)]  # (B, na * no, ny, nx)
        return [rearrange(p, "b (a o) y x -> b a y x o", a=self.na).contiguous() for p in maps]

    def _make_grid(self, nx: int, ny: int, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell offsets (minus 0.5) and anchor sizes in pixels of level i, both (1, na, ny, nx, 2)."""
        d, t = self.anchors[i].device, self.anchors[i].dtype
        shape = (1, self.na, ny, nx, 2)
        yv, xv = torch.meshgrid(torch.arange(ny, device=d, dtype=t), torch.arange(nx, device=d, dtype=t), indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5  # (1, na, ny, nx, 2) as (x, y)
        anchor_grid = (self.anchors[i] * self.stride[i]).view(1, self.na, 1, 1, 2).expand(shape)
        return grid, anchor_grid

    def _decode(self, p: torch.Tensor, i: int) -> torch.Tensor:
        """Raw (B, na, ny, nx, no) -> boxes (B, na*ny*nx, no): xywh in pixels, then sigmoid scores."""
        B, _, ny, nx, _ = p.shape
        grid, anchor_grid = self._make_grid(nx, ny, i)  # cheap; no cache to go stale across sizes or fake runs
        xy, wh, rest = p.split((2, 2, self.no - 4), dim=4)
        xy = (xy.sigmoid() * 2 + grid) * self.stride[i]
        wh = (wh.sigmoid() * 2) ** 2 * anchor_grid
        rest = self._scores(rest)
        return rearrange(torch.cat((xy, wh, rest), dim=4), "b a y x o -> b (a y x) o")

    def _scores(self, rest: torch.Tensor) -> torch.Tensor:
        """Objectness and class logits -> probabilities."""
        return rest.sigmoid()

    def forward(self, x: list[torch.Tensor]):
        """[(B, c_i, H/s_i, W/s_i)] -> train: [(B, na, ny, nx, no)]; eval: ((B, N, no), the same list)."""
        raw = self._raw(x)
        if self.training:
            return raw
        if self.stride is None:
            raise RuntimeError("Detect.stride is not set: build the head through DetectionModel")
        return torch.cat([self._decode(p, i) for i, p in enumerate(raw)], dim=1), raw

    def initialize_biases(self, nc_freq: torch.Tensor | None = None) -> None:
        """YOLOv5's prior: objectness for ~8 objects per 640 image, class scores near 0.6 / nc."""
        for mi, s in zip(self.m, self.stride, strict=True):
            b = mi.bias.view(self.na, -1).detach().clone()  # (na, no)
            b[:, 4] += math.log(8 / (640 / float(s)) ** 2)
            cls = math.log(0.6 / (self.nc - 0.99999)) if nc_freq is None else torch.log(nc_freq / nc_freq.sum())
            b[:, 5 : 5 + self.nc] += cls
            mi.bias = nn.Parameter(b.view(-1), requires_grad=True)


class Proto(nn.Module):
    """Mask prototypes: Conv 3x3 -> 2x nearest upsample -> Conv 3x3 -> Conv 1x1 to nm channels."""

    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, k=3)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.cv2 = Conv(c_, c_, k=3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c1, H, W) -> (B, c2, 2H, 2W)."""
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class Segment(Detect):
    """Detect with nm mask coefficients per anchor, plus Proto on the P3 map.

    Train mode returns ``(raw maps, protos)``; eval mode ``(preds (B, N, 5 + nc + nm), protos, raw maps)``;
    protos are (B, nm, H/4, W/4) for an H x W input.
    """

    def __init__(
        self,
        nc: int = 80,
        anchors: Sequence[Sequence[float]] = (),
        nm: int = 32,
        npr: int = 256,
        ch: Sequence[int] = (),
        inplace: bool = True,
    ) -> None:
        super().__init__(nc, anchors, ch, inplace)
        self.nm = nm  # number of masks
        self.npr = npr  # number of prototype channels
        self.no = 5 + nc + self.nm  # outputs per anchor
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.proto = Proto(ch[0], self.npr, self.nm)

    def _scores(self, rest: torch.Tensor) -> torch.Tensor:
        """Objectness and class logits -> probabilities; mask coefficients stay raw."""
        conf, mask = rest.split((self.nc + 1, self.nm), dim=4)
        return torch.cat((conf.sigmoid(), mask), dim=4)

    def forward(self, x: list[torch.Tensor]):
        """Train: ([(B, na, ny, nx, no)], (B, nm, H/4, W/4)); eval: ((B, N, no), protos, raw maps)."""
        p = self.proto(x[0])  # (B, nm, 2 * H/8, 2 * W/8)
        out = super().forward(x)
        if self.training:
            return out, p
        return out[0], p, out[1]
