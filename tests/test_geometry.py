"""Reference points and coordinate conventions against formulas written here and F.grid_sample."""

import pytest
import torch
import torch.nn.functional as F

from dattn.geometry import norm_to_pixel, pixel_to_norm, query_grid, reference_points


# a singleton axis with align_corners=True maps every pixel to 0, so it has no round trip
@pytest.mark.parametrize("n, align_corners", [(1, False), (2, True), (2, False), (7, True), (20, True), (20, False)])
def test_pixel_norm_round_trip(n, align_corners):
    p = torch.linspace(-1.0, n, 11)
    assert torch.allclose(norm_to_pixel(pixel_to_norm(p, n, align_corners), n, align_corners), p, atol=1e-5)


@pytest.mark.parametrize("align_corners", [True, False])
def test_pixel_to_norm_agrees_with_grid_sample(align_corners):
    # Sampling a ramp whose value is its own x pixel index at pixel_to_norm(i) must return i.
    W = 9
    ramp = torch.arange(W, dtype=torch.float64).reshape(1, 1, 1, W)
    px = torch.tensor([0.0, 2.0, 3.5, 8.0], dtype=torch.float64)
    grid = torch.stack((pixel_to_norm(px, W, align_corners), torch.zeros_like(px)), -1).reshape(1, 1, 4, 2)
    out = F.grid_sample(ramp, grid, mode="bilinear", align_corners=align_corners)
    assert torch.allclose(out.flatten(), px)


def test_seed_convention_matches_the_seed_formula():
    Hk, Wk = 5, 7
    ref = reference_points(Hk, Wk, convention="seed", dtype=torch.float64)
    for i in range(Hk):
        for j in range(Wk):
            assert ref[i, j, 0].item() == pytest.approx((i + 0.5) / (Hk - 1) * 2 - 1)
            assert ref[i, j, 1].item() == pytest.approx((j + 0.5) / (Wk - 1) * 2 - 1)


def test_seed_points_sit_half_a_pixel_off_the_queries_at_stride_1():
    H, W = 6, 8
    ref_px = norm_to_pixel(reference_points(H, W, convention="seed"), H)  # y rows first
    assert torch.allclose(ref_px[:, 0, 0], torch.arange(H) + 0.5)
    ref_px_x = norm_to_pixel(reference_points(H, W, convention="seed")[..., 1], W)
    assert torch.allclose(ref_px_x[0], torch.arange(W) + 0.5)
    # the last row lies half outside the map (beyond pixel H - 1)
    assert ref_px[-1, 0, 0] > H - 1


def test_centered_points_are_the_query_pixels_at_stride_1():
    H, W = 6, 8
    ref = reference_points(H, W, H, W, convention="centered")
    assert torch.allclose(ref, query_grid(H, W), atol=1e-6)


def test_centered_points_are_cell_centres_at_stride_4():
    H, W, s = 20, 12, 4
    ref = reference_points(H // s, W // s, H, W, convention="centered", dtype=torch.float64)
    ys = norm_to_pixel(ref[:, 0, 0], H)
    xs = norm_to_pixel(ref[0, :, 1], W)
    assert torch.allclose(ys, torch.tensor([1.5 + s * i for i in range(H // s)], dtype=torch.float64))
    assert torch.allclose(xs, torch.tensor([1.5 + s * j for j in range(W // s)], dtype=torch.float64))


@pytest.mark.parametrize("convention", ["seed", "centered"])
def test_singleton_axes_are_finite_and_centred(convention):
    ref = reference_points(1, 4, 5, 4, convention=convention)
    assert torch.isfinite(ref).all()
    assert torch.all(ref[..., 0] == 0)
    assert torch.all(query_grid(1, 1) == 0)


def test_bad_convention_and_sizes_are_rejected():
    with pytest.raises(ValueError, match="convention"):
        reference_points(3, 3, convention="corner")
    with pytest.raises(ValueError, match="Hk"):
        reference_points(0, 3)
