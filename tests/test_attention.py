"""DAttention against the literal loop, the seed's own code, and hand counts; its errors and edge cases."""

import pytest
import torch

from dattn.attention import DAttention
from dattn.sampling import sample_keys

from .reference_loop import loop_dattention
from .seed_reference import seed_namespace

SEED = seed_namespace()
needs_seed = pytest.mark.skipif(SEED is None, reason="the seed post (shared/seed) is not beside this checkout")

VARIANTS = {
    "dwc": {},
    "table": dict(dwc_pe=False),
    "log_cpb": dict(dwc_pe=False, log_cpb=True),
    "fixed": dict(dwc_pe=False, fixed_pe=True),
    "no_pe": dict(use_pe=False),
    "stride2": dict(stride=2),
    "clamped": dict(offset_range_factor=-1),
    "no_off": dict(no_off=True, use_pe=False),
}


def randomized(m: DAttention, seed: int = 0) -> DAttention:
    """Give every parameter a non-trivial value (zero-initialised tables would hide bias bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return m.eval()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_matches_the_literal_loop(name):
    kw = VARIANTS[name]
    m = randomized(DAttention(16, (5, 6), n_heads=4, n_groups=2, **kw)).double()
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = loop_dattention(m, x)
    for fused in (True, False):
        m.fused = fused
        assert torch.allclose(m(x), expected, atol=1e-10), f"fused={fused}"


@needs_seed
@pytest.mark.parametrize("name", list(VARIANTS) + ["stride4_table", "non_square_log_cpb"])
def test_seed_state_dict_loads_and_gives_the_same_output(name):
    kw = {"stride4_table": dict(stride=4, dwc_pe=False), "non_square_log_cpb": dict(log_cpb=True, dwc_pe=False)}
    kw = {**VARIANTS, **kw}[name]
    torch.manual_seed(0)
    seed = SEED["DAttention"](32, [8, 12], n_heads=4, n_groups=2, **kw).eval()
    with torch.no_grad():
        for p in seed.parameters():  # beyond the zero init of the tables
            p.add_(torch.randn_like(p) * 0.05)
    ours = DAttention(32, [8, 12], n_heads=4, n_groups=2, **kw).eval()
    ours.load_state_dict(seed.state_dict())  # strict: same names and shapes
    x = torch.randn(2, 32, 8, 12)
    with torch.no_grad():
        expected = seed(x)
        for fused in (True, False):
            ours.fused = fused
            assert torch.allclose(ours(x), expected, atol=1e-5)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_path_equals_explicit_path(name):
    torch.manual_seed(0)
    m = DAttention(64, (12, 10), n_heads=8, n_groups=4, **VARIANTS[name]).eval()  # default init: O(1) outputs
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # the zero-initialised tables too
    x = torch.randn(3, 64, 12, 10)
    with torch.no_grad():
        m.fused = True
        fast = m(x)
        m.fused = False
        slow = m(x)
    assert (fast - slow).abs().max() < 1e-5


def test_parameter_count_by_hand_for_the_seed_size():
    m = DAttention(512, [20, 20])
    C, Cg = 512, 512 // 4
    offset_net = (Cg * 9 + Cg) + 2 * Cg + Cg * 2
    projections = 4 * (C * C + C)
    dwc_pe = C * 9 + C
    assert offset_net == 1792 and projections == 1_050_624 and dwc_pe == 5120  # the seed README's numbers
    assert sum(p.numel() for p in m.parameters()) == offset_net + projections + dwc_pe == 1_057_536


def test_trace_holds_consistent_intermediates_and_does_not_change_the_output():
    m = randomized(DAttention(32, (9, 7), n_heads=4, n_groups=2, stride=2, dwc_pe=False))
    x = torch.randn(2, 32, 9, 7)
    with torch.no_grad():
        before = m(x)
        t = m.trace(x)
        after = m(x)
    assert torch.equal(before, after)
    assert torch.allclose(t.output, before, atol=1e-5)
    Hk, Wk = 5, 4  # (9 + 2 - 3) // 2 + 1, (7 + 2 - 3) // 2 + 1
    assert (t.Hk, t.Wk) == (Hk, Wk)
    assert t.positions.shape == (2, 2, Hk, Wk, 2) and t.attn.shape == (2, 4, 9 * 7, Hk * Wk)
    assert torch.allclose(t.positions, t.reference + t.offsets)
    # pixels: align_corners=True, y on the 9-pixel axis, x on the 7-pixel axis
    assert torch.allclose(t.positions_px[..., 0], (t.positions[..., 0] + 1) / 2 * 8)
    assert torch.allclose(t.positions_px[..., 1], (t.positions[..., 1] + 1) / 2 * 6)
    assert torch.allclose(t.positions_px, t.reference_px + t.offsets_px, atol=1e-5)
    assert torch.allclose(t.attn.sum(-1), torch.ones(2, 4, 63), atol=1e-5)
    resampled = sample_keys(x, t.positions.flatten(0, 1), 2).reshape(t.sampled.shape)
    assert torch.allclose(t.sampled, resampled, atol=1e-6)
    assert t.group_of_head(3) == 1 and t.bias is not None and t.bias.shape == t.attn.shape


@pytest.mark.parametrize("shape, stride", [((1, 1), 1), ((1, 7), 1), ((6, 1), 1), ((4, 8), 4), ((1, 1), 2)])
def test_degenerate_maps_are_finite_and_trainable(shape, stride):
    m = DAttention(16, shape, n_heads=2, n_groups=2, stride=stride)
    x = torch.randn(2, 16, *shape, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(m.conv_offset[3].weight.grad).all()


@needs_seed
def test_the_seed_fails_where_we_do_not():
    with pytest.raises(ZeroDivisionError):
        SEED["DAttention"](16, [1, 1], n_heads=2, n_groups=2)(torch.randn(1, 16, 1, 1))
    with pytest.raises(UnboundLocalError):
        SEED["DAttention"](16, [4, 4], n_heads=2, n_groups=2, no_off=True)(torch.randn(1, 16, 4, 4))
    assert torch.isfinite(DAttention(16, [4, 4], n_heads=2, n_groups=2, no_off=True)(torch.randn(1, 16, 4, 4))).all()


def test_no_off_has_no_position_encoding_and_equals_use_pe_false():
    a = DAttention(16, [4, 4], n_heads=2, n_groups=2, no_off=True)
    b = DAttention(16, [4, 4], n_heads=2, n_groups=2, no_off=True, use_pe=False)
    assert a.rpe_table is None and a.pe_kind == "none"
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 16, 4, 4)
    assert torch.equal(a(x), b(x))
    assert not any(p.requires_grad for p in a.conv_offset.parameters())


def test_offsets_learn():
    m = DAttention(16, [6, 6], n_heads=2, n_groups=2)
    m(torch.randn(2, 16, 6, 6)).square().mean().backward()
    assert m.conv_offset[0].weight.grad.abs().sum() > 0


def test_centered_convention_moves_only_the_reference_points():
    a = randomized(DAttention(16, [6, 6], n_heads=2, n_groups=2))
    b = DAttention(16, [6, 6], n_heads=2, n_groups=2, ref_convention="centered")
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 16, 6, 6)
    ta, tb = a.trace(x), b.trace(x)
    assert torch.allclose(ta.reference_px - tb.reference_px, torch.full((6, 6, 2), 0.5), atol=1e-5)
    assert torch.allclose(ta.offsets, tb.offsets)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channel=60, q_size=(4, 4)), r"channel \(60\) must be divisible by n_heads \(8\)"),
        (dict(channel=18, q_size=(4, 4), n_heads=6), r"channel \(18\) must be divisible by n_groups \(4\)"),
        (dict(channel=24, q_size=(4, 4), n_heads=6, n_groups=4), r"n_heads \(6\) must be divisible by n_groups \(4\)"),
        (dict(channel=32, q_size=(4, 4), n_heads=4, n_groups=8), r"n_heads \(4\) must be divisible by n_groups \(8\)"),
        (dict(channel=32, q_size=(4,)), r"q_size must be two positive ints"),
        (dict(channel=32, q_size=(4, 4), ref_convention="corner"), r"ref_convention"),
        (dict(channel=32, q_size=(4, 4), stride=0), r"stride must be a positive int"),
    ],
)
def test_bad_configurations_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DAttention(**kwargs)


@pytest.mark.parametrize(
    "kwargs, x_shape, message",
    [
        (dict(), (16, 8, 8), r"4-D input \(B, C, H, W\), got shape \(16, 8, 8\)"),
        (dict(), (1, 8, 8, 8), r"built for 16 channels, got an input with 8"),
        (dict(dwc_pe=False, fixed_pe=True), (1, 16, 10, 8), r"fixed_pe was built for a 8x8 map .* got a 10x8 map"),
        (dict(dwc_pe=False), (1, 16, 8, 6), r"table was built for a 8x8 map, got 8x6"),
    ],
)
def test_bad_inputs_raise_before_any_work(kwargs, x_shape, message):
    m = DAttention(16, (8, 8), n_heads=4, n_groups=2, **kwargs)
    calls = []
    m.proj_q.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match=message):
        m(torch.randn(*x_shape))
    assert calls == []


@pytest.mark.parametrize("name", ["dwc", "table", "stride2", "no_off"])
def test_fast_path_gradients_equal_explicit_path_gradients(name):
    torch.manual_seed(1)
    m = DAttention(32, (9, 7), n_heads=4, n_groups=2, **VARIANTS[name]).double()
    x = torch.randn(2, 32, 9, 7, dtype=torch.float64)
    target = torch.randn(2, 32, 9, 7, dtype=torch.float64)
    grads = []
    for fused in (True, False):
        m.fused = fused
        m.zero_grad()
        xg = x.clone().requires_grad_()
        ((m(xg) - target) ** 2).sum().backward()
        grads.append([xg.grad] + [p.grad for p in m.parameters() if p.requires_grad])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-9)
