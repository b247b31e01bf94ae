"""The seed's fusion: a YOLO bottleneck whose output goes through DAttention, and a C3 made of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..attention import DAttention
from .common import C3, Bottleneck


class Bottleneck_DAttention(Bottleneck):  # the seed's name, as the yaml files spell it
    """Bottleneck (Conv k[0] -> Conv k[1]) followed by DAttention(c2, fmapsize), residual when ``self.add``.

    ``attn_kwargs`` are passed on to DAttention (e.g. ``{"dwc_pe": False, "fixed_pe": True}``).
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        fmapsize: Sequence[int] | None,
        shortcut: bool = True,
        g: int = 1,
        k: tuple[int, int] = (3, 3),
        e: float = 0.5,
        attn_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(c1, c2, shortcut, g, k, e)
        if fmapsize is None or len(fmapsize) != 2:
            raise ValueError(
                "Bottleneck_DAttention needs fmapsize=[H, W], the feature-map size the attention is built "
                f"for (e.g. [20, 20] at P5 of a 640 input), got {fmapsize!r}"
            )
        self.attention = DAttention(c2, list(fmapsize), **(attn_kwargs or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c1, H, W) -> (B, c2, H, W)."""
        y = self.attention(self.cv2(self.cv1(x)))
        return x + y if self.add else y


class C3_DAttention(C3):  # the seed's name, as the yaml files spell it
    """C3 whose n inner bottlenecks are Bottleneck_DAttention(c_, c_, k=(1, 3), e=1.0), shortcut off
    by default.

    Parameters: cv1 + cv2 + cv3 as in C3, plus n x (1x1 conv + 3x3 conv + DAttention(c_)).
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        fmapsize: Sequence[int] | None = None,
        shortcut: bool = False,
        g: int = 1,
        e: float = 0.5,
        attn_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(c1, c2, 0, shortcut, g, e)  # n=0: C3's plain bottlenecks are replaced below
        c_ = int(c2 * e)  # hidden channels
        self.m = nn.Sequential(
            *(
                Bottleneck_DAttention(c_, c_, fmapsize, shortcut, g, k=(1, 3), e=1.0, attn_kwargs=attn_kwargs)
                for _ in range(n)
            )
        )
