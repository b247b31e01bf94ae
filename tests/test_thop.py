"""thop, the counter YOLOv5 prints its GFLOPs with, sees DAttention's four 1x1 projections.

thop counts leaf modules only (here a 1x1 Conv2d: one multiply-add per output number and input channel);
the attention products and the offset network's grouped convolutions are functional calls it cannot see.
"""

import copy

import pytest
import thop
import torch

from dattn.attention import DAttention


def thop_layers(m: DAttention, x: torch.Tensor) -> tuple[float, dict]:
    macs, _, layers = thop.profile(copy.deepcopy(m), inputs=(x,), verbose=False, ret_layer_info=True)
    return macs, {name: info[0] for name, info in layers.items()}


@pytest.mark.parametrize(
    "C, shape, stride, batch, keys",
    [
        (32, (12, 10), 1, 1, 12 * 10),
        (32, (12, 10), 2, 2, 6 * 5),  # (12 + 2 - 3) // 2 + 1, (10 + 2 - 3) // 2 + 1
        (64, (9, 7), 3, 1, 3 * 2),  # kernel == stride: no padding, (9 - 3) // 3 + 1, (7 - 3) // 3 + 1
    ],
)
def test_thop_counts_the_four_projections_by_hand_on_both_paths(C, shape, stride, batch, keys):
    m = DAttention(C, shape, n_heads=8, n_groups=4, stride=stride).eval()
    x = torch.randn(batch, C, *shape)
    HW = shape[0] * shape[1]
    for fused in (True, False):
        m.fused = fused
        total, layers = thop_layers(m, x)
        assert layers["proj_q"] == layers["proj_out"] == batch * HW * C * C  # a C x C matrix per query
        assert layers["proj_k"] == layers["proj_v"] == batch * keys * C * C  # ... and per sampled key
        assert layers["rpe_table"] == batch * HW * C * 3 * 3  # the depth-wise 3x3 position encoding
        assert total == sum(layers.values())


def test_yolov5s_gflops_line_sees_the_seed_sized_block():
    """DAttention(512, (20, 20)): the four projections alone are 4 x 400 x 512 x 512 multiply-adds, 0.839
    GFLOPs as YOLOv5 prints them (2 FLOPs per multiply-add); thop saw 0.005 when they were functional calls."""
    total, layers = thop_layers(DAttention(512, (20, 20)).eval(), torch.randn(1, 512, 20, 20))
    projections = 4 * 400 * 512 * 512
    assert sum(layers[p] for p in ("proj_q", "proj_k", "proj_v", "proj_out")) == projections
    assert 2 * total / 1e9 == pytest.approx(2 * projections / 1e9, abs=0.01)
