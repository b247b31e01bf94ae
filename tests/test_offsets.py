"""The offset network, its bound, and the sampling positions."""

import pytest
import torch

from dattn.offsets import bound_offsets, key_grid_size, offset_network, offset_scale, sampling_positions


@pytest.mark.parametrize("Cg, k", [(128, 3), (32, 5)])
def test_parameter_count_by_hand(Cg, k):
    net = offset_network(Cg, ksize=k)
    depthwise = Cg * k * k + Cg
    layernorm = 2 * Cg
    pointwise = Cg * 2  # no bias
    assert sum(p.numel() for p in net.parameters()) == depthwise + layernorm + pointwise


@pytest.mark.parametrize(
    "H, W, k, s", [(20, 20, 3, 1), (20, 13, 3, 2), (20, 20, 3, 4), (20, 20, 4, 4), (9, 9, 3, 3), (1, 5, 3, 1)]
)
def test_key_grid_size_matches_the_network(H, W, k, s):
    net = offset_network(4, ksize=k, stride=s)
    raw = net(torch.zeros(1, 4, H, W))
    assert key_grid_size(H, W, k, s) == tuple(raw.shape[-2:])


def test_too_small_map_is_rejected():
    with pytest.raises(ValueError, match="too small"):
        key_grid_size(2, 2, 4, 4)  # kernel == stride: no padding


def test_tanh_bound_and_scale():
    raw = torch.tensor([1e3, -1e3, 0.0]).reshape(1, 1, 1, 3).expand(1, 2, 5, 3).contiguous()
    off = bound_offsets(raw, 4)  # (1, 5, 3, 2)
    assert off.shape == (1, 5, 3, 2)
    assert torch.allclose(off[0, 0, :, 0], torch.tensor([4 / 4, -4 / 4, 0.0]))  # y: factor / (Hk - 1)
    assert torch.allclose(off[0, 0, :, 1], torch.tensor([4 / 2, -4 / 2, 0.0]))  # x: factor / (Wk - 1)


def test_singleton_axis_is_bounded_by_the_map():
    assert offset_scale(1, 5, 4) == (1.0, 1.0)
    off = bound_offsets(torch.full((1, 2, 1, 1), 50.0), 4)
    assert torch.isfinite(off).all() and off.abs().max() <= 1.0


def test_negative_factor_clamps_positions_instead():
    ref = torch.zeros(2, 2, 2)
    raw = torch.tensor([[[[3.0, -0.2], [0.1, -7.0]]] * 2])  # (1, 2, 2, 2)
    off = bound_offsets(raw, -1)
    assert torch.equal(off[..., 0], raw[:, 0])  # untouched
    pos = sampling_positions(ref, off, -1)
    assert pos.max() == 1.0 and pos.min() == -1.0
    assert sampling_positions(ref, off, 4).max() == 3.0  # bounded factors are never clamped


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (4, 4)])
def test_grouped_offsets_equal_the_network_run_group_by_group(k, s):
    from einops import rearrange

    from dattn.offsets import grouped_offsets

    torch.manual_seed(0)
    net = offset_network(6, ksize=k, stride=s)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    q = torch.randn(2, 18, 9, 11)
    per_group = net(rearrange(q, "b (g c) h w -> (b g) c h w", g=3))  # (B*g, 2, Hk, Wk)
    assert torch.allclose(grouped_offsets(net, q, 3), per_group, atol=1e-5)
    q_last = q.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(grouped_offsets(net, q_last, 3), per_group, atol=1e-5)
