"""The from-scratch bilinear sampler against F.grid_sample and a hand computation."""

import pytest
import torch
import torch.nn.functional as F

from dattn.sampling import bilinear_sample, sample_keys


@pytest.mark.parametrize("align_corners", [True, False])
def test_equals_grid_sample_inside_and_outside(align_corners):
    g = torch.Generator().manual_seed(0)
    inp = torch.randn(2, 3, 5, 7, generator=g)
    grid = torch.rand(2, 4, 6, 2, generator=g) * 2.6 - 1.3  # partly outside [-1, 1]
    grid[0, 0, 0] = torch.tensor([1.0, -1.0])  # exactly on the corners
    grid[0, 0, 1] = torch.tensor([-1.0, 1.0])
    expected = F.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    assert torch.allclose(bilinear_sample(inp, grid, align_corners), expected, atol=1e-6)


def test_four_neighbour_weights_by_hand():
    # value at pixel (y, x) is 10*y + x; sample at pixel (1.25, 2.5) with align_corners=True
    H, W = 4, 5
    img = torch.tensor([[10.0 * y + x for x in range(W)] for y in range(H)]).reshape(1, 1, H, W)
    y, x = 1.25, 2.5
    grid = torch.tensor([[[[x / (W - 1) * 2 - 1, y / (H - 1) * 2 - 1]]]])
    by_hand = (0.75 * 0.5 * 12 + 0.75 * 0.5 * 13 + 0.25 * 0.5 * 22 + 0.25 * 0.5 * 23)
    assert bilinear_sample(img, grid, True).item() == pytest.approx(by_hand)


def test_zero_padding_halves_a_point_half_outside():
    img = torch.ones(1, 1, 3, 3)
    grid = torch.tensor([[[[1.0 + 0.5, 0.0]]]])  # half a pixel beyond the right edge (align_corners=True)
    assert bilinear_sample(img, grid, True).item() == pytest.approx(0.5)


@pytest.mark.parametrize("align_corners", [True, False])
def test_gradients_reach_the_grid(align_corners):
    g = torch.Generator().manual_seed(1)
    inp = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    # keep positions away from integer pixels, where bilinear interpolation has kinks
    grid = (torch.rand(1, 3, 3, 2, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, q: bilinear_sample(i, q, align_corners), (inp, grid))
    out = bilinear_sample(inp, grid, align_corners).sum()
    ref = F.grid_sample(inp, grid, align_corners=align_corners).sum()
    g1 = torch.autograd.grad(out, grid)[0]
    g2 = torch.autograd.grad(ref, grid)[0]
    assert torch.allclose(g1, g2, atol=1e-9)


def test_sample_keys_groups_and_both_samplers_agree():
    g = torch.Generator().manual_seed(2)
    B, C, groups, H, W = 2, 6, 3, 5, 4
    x = torch.randn(B, C, H, W, generator=g)
    pos = torch.rand(B * groups, 2, 3, 2, generator=g) * 2 - 1  # (y, x)
    out = sample_keys(x, pos, groups)
    assert out.shape == (B * groups, C // groups, 2, 3)
    assert torch.allclose(out, sample_keys(x, pos, groups, sampler="manual"), atol=1e-6)
    # group 1 of batch 1 reads channels 2..3 of image 1 at its own positions
    ref = F.grid_sample(x[1:2, 2:4], pos[4:5].flip(-1), align_corners=True)
    assert torch.allclose(out[4:5], ref)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="expected inp"):
        bilinear_sample(torch.zeros(1, 1, 3, 3), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="sampler"):
        sample_keys(torch.zeros(1, 2, 3, 3), torch.zeros(2, 1, 1, 2), 2, sampler="nearest")
