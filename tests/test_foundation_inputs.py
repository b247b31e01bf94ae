"""What the foundations (geometry, offsets, sampling, profiling) do with odd inputs: work, or say why not."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dattn.geometry import norm_to_pixel, pixel_to_norm, query_grid, reference_points
from dattn.offsets import (
    bound_offsets,
    grouped_offsets,
    key_grid_size,
    offset_network,
    offset_scale,
    sampling_positions,
)
from dattn.profiling import count_flops, interleaved_medians, keep_freed_memory, peak_memory
from dattn.sampling import bilinear_sample, sample_keys

# -- geometry ------------------------------------------------------------------------------------------------


def test_sizes_may_be_numpy_ints_or_0d_integer_tensors():
    expected = reference_points(5, 7, 10, 14, convention="centered")
    for kind in (np.int64, np.int32, torch.tensor):
        assert torch.equal(reference_points(kind(5), kind(7), kind(10), kind(14), convention="centered"), expected)
    assert torch.equal(query_grid(np.int64(3), np.int8(4)), query_grid(3, 4))
    assert key_grid_size(np.int64(20), np.int64(13), np.int64(3), np.int64(2)) == (10, 7)


@pytest.mark.parametrize("bad", [2.0, "3", True, 0, -1, None, torch.tensor(2.0)])
def test_sizes_that_are_not_positive_ints_are_named(bad):
    with pytest.raises(ValueError, match=r"Hk must be a positive int, got "):
        reference_points(bad, 3)
    with pytest.raises(ValueError, match=r"W must be a positive int, got "):
        query_grid(3, bad)


def test_a_seed_grid_checks_the_map_size_it_ignores():
    with pytest.raises(ValueError, match=r"H must be a positive int, got 0"):
        reference_points(3, 3, 0, 3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32"])
def test_coordinates_need_a_floating_dtype(dtype):
    with pytest.raises(ValueError, match=r"dtype must be a floating-point torch.dtype"):
        reference_points(3, 3, dtype=dtype)
    with pytest.raises(ValueError, match=r"dtype must be a floating-point torch.dtype"):
        query_grid(3, 3, dtype=dtype)


@pytest.mark.parametrize("align_corners", [True, False])
def test_pixel_conversions_take_lists_and_numpy_arrays(align_corners):
    px = [0.0, 2.5, 9.0]
    expected = pixel_to_norm(torch.tensor(px), 10, align_corners)
    assert torch.allclose(pixel_to_norm(px, 10, align_corners), expected)
    assert torch.allclose(pixel_to_norm(np.array(px), 10, align_corners), expected)
    assert torch.allclose(norm_to_pixel(expected.tolist(), 10, align_corners), torch.tensor(px), atol=1e-6)


# -- offsets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [(dict(n_group_channels=0), "n_group_channels"),
                                          (dict(n_group_channels=4, stride=0), "stride"),
                                          (dict(n_group_channels=4, ksize=2.5), "ksize")])
def test_offset_network_sizes_are_checked(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} must be a positive int"):
        offset_network(**kwargs)


@pytest.mark.parametrize("factor", [float("nan"), float("inf"), "4"])
def test_the_offset_bound_needs_a_finite_factor(factor):
    raw, ref = torch.zeros(1, 2, 3, 3), torch.zeros(3, 3, 2)
    for call in (lambda: offset_scale(3, 3, factor), lambda: bound_offsets(raw, factor),
                 lambda: sampling_positions(ref, torch.zeros(1, 3, 3, 2), factor)):
        with pytest.raises(ValueError, match=r"offset_range_factor must be a finite number"):
            call()


def test_offset_shapes_that_do_not_fit_are_named():
    with pytest.raises(ValueError, match=r"expected raw offsets \(B\*g, 2, Hk, Wk\), got shape \(1, 3, 4, 4\)"):
        bound_offsets(torch.zeros(1, 3, 4, 4), 4)
    with pytest.raises(ValueError, match=r"expected reference \(Hk, Wk, 2\) and offsets .* got \(3, 3, 2\) and"):
        sampling_positions(torch.zeros(3, 3, 2), torch.zeros(2, 4, 4, 2), 4)
    with pytest.raises(ValueError, match=r"\(B, 12, H, W\) for a network of 4 channels and n_groups=3, got"):
        grouped_offsets(offset_network(4), torch.zeros(1, 10, 5, 5), 3)


# -- sampling ------------------------------------------------------------------------------------------------


def test_bilinear_sample_computes_mixed_dtypes_in_the_promoted_one():
    g = torch.Generator().manual_seed(0)
    inp = torch.randn(1, 2, 4, 5, generator=g)  # float32
    grid = torch.rand(1, 3, 3, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2
    out = bilinear_sample(inp, grid)
    assert out.dtype == torch.float64
    assert torch.allclose(out, F.grid_sample(inp.double(), grid, align_corners=True))
    ints = torch.arange(20).reshape(1, 1, 4, 5)  # an integer image reads in the grid's dtype
    assert torch.allclose(bilinear_sample(ints, grid), F.grid_sample(ints.double(), grid, align_corners=True))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_bilinear_sample_reads_nan_where_grid_sample_does(bad):
    inp = torch.randn(1, 2, 4, 4)
    grid = torch.tensor([[[[bad, 0.0], [0.0, bad], [0.3, -0.2]]]])
    out, expected = bilinear_sample(inp, grid), F.grid_sample(inp, grid, align_corners=True)
    assert torch.isnan(out[..., :2]).all() and torch.isnan(expected[..., :2]).all()
    assert torch.allclose(out[..., 2], expected[..., 2])


def test_bilinear_sample_wants_tensors():
    with pytest.raises(ValueError, match=r"expected two tensors inp and grid, got list and Tensor"):
        bilinear_sample([[1.0]], torch.zeros(1, 1, 1, 2))


@pytest.mark.parametrize(
    "x_shape, pos_shape, groups, message",
    [
        ((1, 5, 4, 4), (2, 2, 2, 2), 2, r"x's channels \(5\) divisible by n_groups \(2\)"),
        ((1, 4, 4, 4), (3, 2, 2, 2), 2, r"pos with B\*g = 1\*2 rows, got 3"),
        ((1, 4, 4, 4), (2, 2, 2), 2, r"expected x \(B, C, H, W\) and pos \(B\*g, Hk, Wk, 2\)"),
        ((1, 4, 4, 4), (2, 2, 2, 2), 0, r"n_groups must be a positive int, got 0"),
    ],
)
def test_sample_keys_names_shapes_that_do_not_fit(x_shape, pos_shape, groups, message):
    with pytest.raises(ValueError, match=message):
        sample_keys(torch.zeros(x_shape), torch.zeros(pos_shape), groups)


def test_sample_keys_takes_a_numpy_group_count():
    x, pos = torch.randn(1, 4, 4, 4), torch.rand(2, 2, 2, 2) * 2 - 1
    assert torch.equal(sample_keys(x, pos, np.int64(2)), sample_keys(x, pos, 2))


# -- profiling -----------------------------------------------------------------------------------------------


def test_count_flops_and_peak_memory_take_a_module_and_its_inputs():
    lin, x = torch.nn.Linear(8, 3), torch.randn(5, 8)
    assert count_flops(lin, x) == count_flops(lambda: lin(x)) == 2 * 5 * 8 * 3
    assert peak_memory(torch.zeros, 100, 10) == 4000
    with pytest.raises(TypeError, match=r"count_flops expects a function, e.g. lambda: model\(x\), .* got a Tensor"):
        count_flops(x)
    with pytest.raises(TypeError, match=r"peak_memory expects a function"):
        peak_memory(3)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(fns={}), ValueError, r"fns must be a non-empty dict"),
        (dict(fns={"a": 3}), TypeError, r"interleaved_medians\['a'\] expects a function"),
        (dict(reps=0), ValueError, r"reps must be a positive int, got 0"),
        (dict(reps=5, max_reps=3), ValueError, r"max_reps \(3\) must be >= reps \(5\)"),
        (dict(budget_s=float("nan")), ValueError, r"budget_s must be a finite number of seconds >= 0, got nan"),
    ],
)
def test_interleaved_medians_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        interleaved_medians(**{"fns": {"a": lambda: None}, **kwargs})


@pytest.mark.parametrize("bad", [1.5, "1", -1, True])
def test_keep_freed_memory_wants_a_byte_count(bad):
    with pytest.raises(ValueError, match=r"keep_bytes must be an int >= 0, got "):
        keep_freed_memory(bad)
