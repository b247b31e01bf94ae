"""DAttention's inputs: batch 0, fixed_pe and no_off on any map, numpy ints, q_size as an int, clear errors."""

import numpy as np
import pytest
import torch

from dattn.attention import DAttention

from .reference_loop import loop_dattention
from .test_attention import VARIANTS, randomized


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_batch_of_zero_gives_an_empty_output_on_both_paths_and_in_trace(name):
    m = DAttention(16, (8, 6), n_heads=4, n_groups=2, **VARIANTS[name])
    for fused in (True, False):
        m.fused = fused
        x = torch.randn(0, 16, 8, 6, requires_grad=True)
        y = m(x)
        assert y.shape == (0, 16, 8, 6) and y.dtype == x.dtype
        y.sum().backward()  # a training step on an empty batch works too
        assert x.grad.shape == x.shape
    t = m.trace(torch.randn(0, 16, 8, 6))
    assert t.output.shape == (0, 16, 8, 6)
    assert t.attn.shape[:2] == (0, 4) and t.positions.shape[:2] == (0, 2)


@pytest.mark.parametrize(
    "shape, kw, keys",
    [
        ((7, 5), dict(stride=2), (4, 3)),  # (7 + 2 - 3) // 2 + 1, (5 + 2 - 3) // 2 + 1: the seed sizes it 3 x 2
        ((6, 5), dict(ksize=4), (7, 6)),  # an even kernel pads by 2: one key more per axis than the seed's table
        ((9, 7), dict(stride=3, ksize=5), (3, 3)),
    ],
)
def test_fixed_pe_works_where_the_stride_does_not_divide_the_map_or_ksize_is_even(shape, kw, keys):
    m = randomized(DAttention(16, shape, n_heads=4, n_groups=2, dwc_pe=False, fixed_pe=True, **kw)).double()
    assert (m.kv_h, m.kv_w) == keys and m.rpe_table.shape == (4, shape[0] * shape[1], keys[0] * keys[1])
    x = torch.randn(2, 16, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = loop_dattention(m, x)
    for fused in (True, False):
        m.fused = fused
        assert torch.allclose(m(x), expected, atol=1e-10)


def test_fixed_pe_keeps_the_seeds_table_where_the_stride_divides_the_map():
    m = DAttention(16, (8, 12), n_heads=4, n_groups=2, dwc_pe=False, fixed_pe=True, stride=4)
    assert m.rpe_table.shape == (4, 8 * 12, (8 // 4) * (12 // 4))  # the seed: q_size // stride


def test_fixed_pe_needs_a_map_big_enough_for_its_key_grid():
    with pytest.raises(ValueError, match=r"a 2x2 map is too small for the offset network \(ksize=4, stride=4\)"):
        DAttention(16, (2, 2), n_heads=4, n_groups=2, dwc_pe=False, fixed_pe=True, ksize=4, stride=4)


def test_no_off_averages_whole_cells_where_the_stride_does_not_divide_the_map():
    m = randomized(DAttention(16, (7, 5), n_heads=4, n_groups=2, no_off=True, stride=2)).double()
    x = torch.randn(2, 16, 7, 5, dtype=torch.float64)
    assert m.key_grid(7, 5) == (3, 2)  # avg_pool2d's cells; the seed asserts here
    expected = loop_dattention(m, x)
    for fused in (True, False):
        m.fused = fused
        assert torch.allclose(m(x), expected, atol=1e-10)
    t = m.trace(x)
    assert (t.Hk, t.Wk) == (3, 2) and t.sampled.shape[-2:] == (3, 2)
    with pytest.raises(ValueError, match=r"no_off=True averages 2x2 cells: a 1x5 map has none"):
        m(torch.randn(1, 16, 1, 5))


@pytest.mark.parametrize("factor", [float("nan"), float("inf"), -float("inf"), "4", None, True])
def test_offset_range_factor_must_be_a_finite_number(factor):
    with pytest.raises(ValueError, match=r"offset_range_factor must be a finite number .* got "):
        DAttention(16, (8, 8), n_heads=4, n_groups=2, offset_range_factor=factor)


@pytest.mark.parametrize("q_size", [8, np.int64(8), np.array([8, 8]), torch.Size([8, 8]), [8, 8]])
def test_q_size_given_as_one_int_means_a_square_map(q_size):
    square = randomized(DAttention(16, (8, 8), n_heads=4, n_groups=2, dwc_pe=False))  # the table depends on q_size
    m = DAttention(16, q_size, n_heads=4, n_groups=2, dwc_pe=False).eval()
    assert (m.q_h, m.q_w) == (8, 8) and type(m.q_h) is int
    m.load_state_dict(square.state_dict())  # strict: the (heads, 15, 15) table
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(m(x), square(x))


def test_numpy_integers_are_accepted_wherever_ints_are():
    i = np.int64
    m = DAttention(i(32), (i(8), np.int32(6)), n_heads=i(4), n_groups=np.int8(2), stride=i(2), ksize=i(3),
                   dwc_pe=False, fixed_pe=True)
    plain = randomized(DAttention(32, (8, 6), n_heads=4, n_groups=2, stride=2, ksize=3, dwc_pe=False, fixed_pe=True))
    for name in ("channel", "n_heads", "n_groups", "stride", "ksize", "q_h", "q_w", "kv_h", "kv_w"):
        assert type(getattr(m, name)) is int, name
    m.load_state_dict(plain.state_dict())
    x = torch.randn(2, 32, 8, 6)
    assert torch.equal(m.eval()(x), plain(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_heads=True), r"n_heads must be a positive int, got True"),
        (dict(channel=16.0), r"channel must be a positive int, got 16.0"),
        (dict(q_size=(8.0, 8)), r"q_size must be two positive ints \(H, W\), got \(8.0, 8\)"),
        (dict(q_size="88"), r"q_size must be two positive ints"),
        (dict(q_size=0), r"q_size must be two positive ints"),
        (dict(attn_drop=float("nan")), r"attn_drop must be a probability in \[0, 1\], got nan"),
        (dict(proj_drop=1.5), r"proj_drop must be a probability in \[0, 1\], got 1.5"),
    ],
)
def test_arguments_that_are_not_what_they_should_be_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DAttention(**{**dict(channel=16, q_size=(8, 8), n_heads=4, n_groups=2), **kwargs})


@pytest.mark.parametrize(
    "x, message",
    [
        ([[1.0, 2.0]], r"4-D input \(B, C, H, W\), got a list"),
        (torch.ones(1, 16, 8, 8, dtype=torch.int64), r"floating-point input, got torch.int64"),
        (torch.ones(1, 16, 0, 8), r"H must be a positive int, got 0"),
    ],
)
def test_inputs_that_are_not_maps_raise_value_errors(x, message):
    with pytest.raises(ValueError, match=message):
        DAttention(16, (8, 8), n_heads=4, n_groups=2)(x)
