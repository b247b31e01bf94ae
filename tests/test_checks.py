"""Exercise checkers: right answers pass (also at the precision the notebook shows), each diagnosed mistake
gets its diagnosis and never the expected value, helpers that compute the answer do not pass, garbage gets
one line, and the worked solution appears only on request."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from dattn import checks
from dattn.attention import attention_explicit
from dattn.checks.core import switched_off
from dattn.geometry import norm_to_pixel, reference_points
from dattn.sampling import bilinear_sample
from dattn.yolo.common import Bottleneck
from dattn.yolo.fused import Bottleneck_DAttention

GARBAGE = [None, float("nan"), float("inf"), -float("inf"), "4.22", [1, 2], (), {"a": 1}, True, object(),
           torch.tensor([1.0, 2.0]), np.array([[1.0]]) * np.nan, 3 + 4j]


def says(capsys, *fragments, absent=()):
    """The printed verdict contains every fragment and none of ``absent``; returns it."""
    out = capsys.readouterr().out
    for f in fragments:
        assert f in out, f"{f!r} not in {out!r}"
    for f in absent:
        assert f not in out, f"{f!r} in {out!r}"
    return out


def assert_garbage(capsys, check, answer, *args, **kwargs):
    capsys.readouterr()
    v = check(answer, *args, **kwargs)
    out = capsys.readouterr().out
    assert not v and v.mistake == "garbage", (answer, v)
    assert out.count("\n") == 1 and out.startswith("Not yet:") and "Traceback" not in out, (answer, out)


def assert_hidden(out: str, *values: float) -> None:
    """None of the expected values appears in the output, at any usual rounding."""
    for v in values:
        for text in {f"{v}", f"{v:.2f}", f"{v:.3f}", f"{v:.4g}", f"{v:,}", f"{v:g}"}:
            assert text not in out, f"the expected value {text} leaked: {out!r}"


# -- notebook 0: key count --------------------------------------------------------------------------------------
def test_key_count(capsys):
    # 30x30 map, stride 4: the offset conv (k 3, pad 1) gives (30 + 2 - 3) // 4 + 1 = 8 rows -> 64 keys
    assert checks.check_key_count(64, H=30, W=30, stride=4)
    assert checks.check_key_count(64.0, H=30, W=30, stride=4) and checks.check_key_count(np.int64(64), 30, 30, 4)
    says(capsys, "Correct!")
    for answer, mistake, text in [(49, "floor", "H // stride rounds down"), (900, "queries", "number of queries"),
                                  (8, "one_side", "key rows"), (64 * 8, "per_head", "heads do not multiply"),
                                  (64 * 4, "per_group", "groups do not multiply"), (56.25, "fraction", "whole number"),
                                  (70, "other", "too many")]:
        v = checks.check_key_count(answer, H=30, W=30, stride=4)
        assert not v and v.mistake == mistake
        out = says(capsys, text, "Hint:", "checks.solution('key_count')", absent=("Solution",))
        assert_hidden(out, 64)
    # no padding: a 3x3 conv with stride 3 has padding 0 (kernel = stride): (30 - 3) // 3 + 1 = 10 -> 100
    assert checks.check_key_count(100, H=30, W=30, stride=3)
    v = checks.check_key_count(14 * 14, H=30, W=30, stride=2)  # (30 - 3) // 2 + 1 = 14: the conv unpadded
    assert not v and v.mistake == "no_padding"
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_key_count, g, 30, 30, 4)


# -- notebook 1: reference rows ---------------------------------------------------------------------------------
SEED_ROWS = [(i + 0.5) * 19 / 4 for i in range(5)]  # Hk = 5 on H = 20: 2.375, 7.125, ..., 21.375
CENTRED_ROWS = [4 * i + 1.5 for i in range(5)]  # cells of 4 pixels, pixel centres at integers


def test_reference_pixels_seed(capsys):
    assert checks.check_reference_pixels(SEED_ROWS, Hk=5, H=20)
    assert checks.check_reference_pixels([round(v, 2) for v in SEED_ROWS], Hk=5, H=20)  # as displayed
    assert checks.check_reference_pixels([2.37, 7.12, 11.87, 16.62, 21.37], Hk=5, H=20)  # other way of rounding
    assert checks.check_reference_pixels(torch.tensor(SEED_ROWS), Hk=5, H=20)
    assert checks.check_reference_pixels(np.array(SEED_ROWS)[None], Hk=5, H=20)
    says(capsys, "Correct!", "1 of them past the map's last row")
    i = np.arange(5)
    mistakes = {
        "centered": CENTRED_ROWS,
        "no_half": i * 19 / 4,
        "divide_by_hk": (i + 0.5) / 5 * 19,
        "h_not_h_minus_1": (i + 0.5) / 4 * 20,
        "normalized": (i + 0.5) / 4 * 2 - 1,
        "key_cells": i + 0.5,
        "reversed": SEED_ROWS[::-1],
        "align_corners_false": ((i + 0.5) / 4 * 2) * 20 / 2 - 0.5,
        "shift": np.array(SEED_ROWS) + 0.3,
        "other": [2.375, 7.125, 11.875, 16.625, 30.0],
    }
    for name, answer in mistakes.items():
        capsys.readouterr()
        v = checks.check_reference_pixels(list(answer), Hk=5, H=20)
        assert not v and v.mistake == name, (name, v)
        assert_hidden(says(capsys, "Not yet:", absent=("Solution",)), *SEED_ROWS)
    assert "4 of your 5 values are right" in (checks.check_reference_pixels(mistakes["other"], 5, 20).message)
    for g in GARBAGE + [[1, 2], [1, 2, 3, 4, "5"], [[1, 2], [3, 4], 5, 6, 7]]:
        assert_garbage(capsys, checks.check_reference_pixels, g, 5, 20)


def test_reference_pixels_centered(capsys):
    assert checks.check_reference_pixels(CENTRED_ROWS, Hk=5, H=20, convention="centered")
    i = np.arange(5)
    for name, answer in {"seed": SEED_ROWS, "cell_start": 4 * i, "no_minus_half": 4 * i + 2,
                         "normalized": (4 * i + 1.5) / 19 * 2 - 1}.items():
        v = checks.check_reference_pixels(list(answer), Hk=5, H=20, convention="centered")
        assert not v and v.mistake == name, (name, v)
        assert_hidden(says(capsys, "Not yet:"), *CENTRED_ROWS)
    with pytest.raises(ValueError, match="convention"):
        checks.check_reference_pixels(CENTRED_ROWS, 5, 20, convention="middle")


def seed_spacing(H, stride):
    pad = 0 if stride == 3 else 1  # kernel 3: no padding when the kernel equals the stride
    Hk = (H + 2 * pad - 3) // stride + 1
    rows = [(i + 0.5) / (Hk - 1) * (H - 1) for i in range(Hk)]  # the seed's rows in pixels
    return rows[1] - rows[0]


def test_seed_spacing_success_message_is_true_of_the_sizes_it_checks(capsys):
    """The verdict says the spacing is 1 pixel at stride 1 and wider than the stride elsewhere: the sizes the
    checker tries, recorded here, must bear that out (a hand formula, not the checker's)."""
    for seed in range(40):
        seen = []

        def recording(H, stride, seen=seen):
            seen.append((H, stride))
            return seed_spacing(H, stride)

        assert checks.check_seed_spacing(recording, seed=seed)
        assert sorted(s for _, s in seen) == [1, 2, 3, 4]
        for H, stride in seen:
            assert (seed_spacing(H, stride) > stride + 1e-9) == (stride > 1), (H, stride)
    says(capsys, "1 pixel at stride 1, wider than the stride on the other 3")


def test_seed_spacing_function(capsys):
    for seed in range(6):
        assert checks.check_seed_spacing(seed_spacing, seed=seed)
    assert checks.check_seed_spacing(lambda H, s: torch.tensor(seed_spacing(H, s)))
    says(capsys, "Correct!", "maps you had not seen")
    wrong = {
        "centered": lambda H, s: s,
        "centered ": lambda H, s: H / ((H + 2 * (s != 3) - 3) // s + 1),
        "divide_by_hk": lambda H, s: (H - 1) / ((H + 2 * (s != 3) - 3) // s + 1),
        "h_not_h_minus_1": lambda H, s: H / ((H + 2 * (s != 3) - 3) // s),
        "floor_hk": lambda H, s: (H - 1) / (H // s - 1),
        "padding": lambda H, s: (H - 1) / ((H + 2 - 3) // s),  # pads at stride 3 too
    }
    for name, fn in wrong.items():
        for seed in range(12):  # every draw of sizes tells each mistake from the right answer
            v = checks.check_seed_spacing(fn, seed=seed)
            assert not v and v.mistake == name.strip(), (name, seed, v)
    says(capsys, "Not yet:")
    from dattn.offsets import key_grid_size
    from dattn.viz.reference_plots import reference_grid_px

    cheats = [lambda H, s: (H - 1) / (key_grid_size(H, H, 3, s)[0] - 1),
              lambda H, s: float(norm_to_pixel(reference_points(3, 1)[1, 0, 0] - reference_points(3, 1)[0, 0, 0] - 1,
                                               H)),
              lambda H, s: float(reference_grid_px(H, H, s)[1, 0, 0] - reference_grid_px(H, H, s)[0, 0, 0])]
    for fn in cheats:
        v = checks.check_seed_spacing(fn, seed=0)
        assert not v and v.mistake == "cheat", v
    for g in (None, 3, "seed_spacing"):
        assert_garbage(capsys, checks.check_seed_spacing, g)
    v = checks.check_seed_spacing(lambda H, s: 1 / 0, seed=0)
    assert not v and v.mistake == "raised" and "ZeroDivisionError" in v.message
    for bad in (lambda H, s: "far", lambda H, s: float("nan"), lambda H, s: None, lambda H, s: [1.0, 2.0]):
        assert_garbage(capsys, checks.check_seed_spacing, bad, seed=0)


# -- notebook 2: offset bounds ----------------------------------------------------------------------------------
BOUND = 4 / 9 * 19 / 2  # 20x20 map, stride 2: Hk = (20 + 2 - 3) // 2 + 1 = 10; 4 / (Hk - 1) * (H - 1) / 2 = 4.222


def test_max_offset(capsys):
    assert checks.check_max_offset_pixels(BOUND, H=20, stride=2, offset_range_factor=4)
    assert checks.check_max_offset_pixels(4.22, H=20, stride=2, offset_range_factor=4)  # as the notebook shows it
    assert checks.check_max_offset_pixels(torch.tensor(4.22), H=20, stride=2, offset_range_factor=4)
    says(capsys, "Correct!")
    assert not checks.check_max_offset_pixels(4.23, H=20, stride=2, offset_range_factor=4)
    for answer, mistake in [(4 / 9, "normalized"), (4 / 10 * 9.5, "divide_by_hk"), (4 / 9 * 10, "h_not_h_minus_1"),
                            (2.0, "stride_one_or_key_cells"), (1 / 9 * 9.5, "no_factor"),
                            (2 * BOUND, "both_directions"), (math.sqrt(2) * BOUND, "diagonal"), (4.2, "rounding"),
                            (7.0, "other")]:
        v = checks.check_max_offset_pixels(answer, H=20, stride=2, offset_range_factor=4)
        assert not v and v.mistake == mistake, (answer, v)
        assert_hidden(says(capsys, "Not yet:", "Hint:"), BOUND)
    # at stride 4 on 21 rows Hk = 6, but 21 // 4 = 5: the floor mistake is diagnosed
    v = checks.check_max_offset_pixels(4 / 4 * 10, H=21, stride=4, offset_range_factor=4)
    assert not v and v.mistake == "floor_hk"
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_max_offset_pixels, g, 20, 2, 4)


def test_max_offset_diagonal(capsys):
    assert checks.check_max_offset_distance(math.hypot(BOUND, BOUND), H=20, stride=2, offset_range_factor=4)
    assert checks.check_max_offset_distance(5.97, H=20, stride=2, offset_range_factor=4)
    for answer, mistake in [(BOUND, "per_axis"), (4.22, "per_axis"), (2 * BOUND, "sum"),
                            (math.hypot(4 / 9, 4 / 9), "normalized"), (math.sqrt(2) * 4 / 10 * 9.5, "divide_by_hk")]:
        capsys.readouterr()
        v = checks.check_max_offset_distance(answer, H=20, stride=2, offset_range_factor=4)
        assert not v and v.mistake == mistake, (answer, v)
        assert_hidden(says(capsys, "Not yet:"), math.hypot(BOUND, BOUND))
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_max_offset_distance, g, 20, 2, 4)


# -- notebook 3: bilinear read and its slope --------------------------------------------------------------------
def my_bilinear(img, y, x):
    C, H, W = img.shape
    out = torch.zeros(C, dtype=img.dtype)
    y0, x0 = math.floor(y), math.floor(x)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < H and 0 <= xx < W:
                out += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
    return out


def test_bilinear(capsys):
    for seed in range(5):
        assert checks.check_bilinear(my_bilinear, seed=seed)
    assert checks.check_bilinear(my_bilinear)
    assert checks.check_bilinear(lambda img, y, x: my_bilinear(img, y, x).numpy().tolist(), seed=0)
    says(capsys, "Correct!")

    def clamped(img, y, x):  # reads the border instead of zeros
        H, W = img.shape[1:]
        return my_bilinear(img, min(max(y, 0), H - 1), min(max(x, 0), W - 1))

    def truncating(img, y, x):  # int() instead of floor: int(-0.3) is 0, so the weights leave 0..1
        C, H, W = img.shape
        out = torch.zeros(C, dtype=img.dtype)
        y0, x0 = int(y), int(x)
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= yy < H and 0 <= xx < W:
                    out += wy * wx * img[:, yy, xx]
        return out

    def unguarded(img, y, x):  # reads all four neighbours without a bounds check
        y0, x0 = math.floor(y), math.floor(x)
        wy, wx = y - y0, x - x0
        return ((1 - wy) * (1 - wx) * img[:, y0, x0] + (1 - wy) * wx * img[:, y0, x0 + 1]
                + wy * (1 - wx) * img[:, y0 + 1, x0] + wy * wx * img[:, y0 + 1, x0 + 1])

    def nearest(img, y, x):
        H, W = img.shape[1:]
        yy, xx = math.floor(y + 0.5), math.floor(x + 0.5)
        return img[:, yy, xx] if 0 <= yy < H and 0 <= xx < W else torch.zeros(img.shape[0], dtype=img.dtype)

    def swapped(img, y, x):
        return my_bilinear(img.transpose(1, 2), y, x)

    def reversed_weights(img, y, x):
        y0, x0 = math.floor(y), math.floor(x)
        return my_bilinear(img, y0 + 1 - (y - y0), x0 + 1 - (x - x0))

    def shifted(img, y, x):
        return my_bilinear(img, y - 0.5, x - 0.5)

    for fn, mistake in [(clamped, "border"), (truncating, "trunc"), (nearest, "nearest"), (swapped, "swapped_axes"),
                        (reversed_weights, "weights_swapped"), (shifted, "half_pixel"), (unguarded, "raised")]:
        v = checks.check_bilinear(fn, seed=3)
        assert not v and v.mistake == mistake, (fn.__name__, v)
        says(capsys, "Not yet:", absent=("Solution",))
    assert "weight 0 still has to be skipped" in checks.check_bilinear(unguarded, seed=3).message

    def wrapping(img, y, x):  # guards the far side only: a negative index wraps to the last row
        C, H, W = img.shape
        out = torch.zeros(C, dtype=img.dtype)
        y0, x0 = math.floor(y), math.floor(x)
        for yy in (y0, y0 + 1):
            for xx in (x0, x0 + 1):
                if yy < H and xx < W:
                    out += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
        return out

    v = checks.check_bilinear(wrapping, seed=3)
    assert not v and v.mistake == "wraps"


def test_bilinear_helpers_do_not_pass(capsys):
    gs = F.grid_sample  # bound before the check: still caught
    from dattn.viz.bilinear_plots import bilinear_value

    def grid(img, y, x):
        H, W = img.shape[1:]
        return torch.tensor([[[[x / (W - 1) * 2 - 1, y / (H - 1) * 2 - 1]]]], dtype=img.dtype)

    cheats = [lambda img, y, x: bilinear_sample(img[None], grid(img, y, x))[0, :, 0, 0],
              lambda img, y, x: gs(img[None], grid(img, y, x), align_corners=True)[0, :, 0, 0],
              lambda img, y, x: torch.grid_sampler(img[None], grid(img, y, x), 0, 0, True)[0, :, 0, 0],
              lambda img, y, x: torch.tensor(np.stack([bilinear_value(c.numpy(), (y, x)) for c in img]))]
    for fn in cheats:
        v = checks.check_bilinear(fn, seed=0)
        assert not v and v.mistake == "cheat", v
        says(capsys, "switches off")

    def swallowing(img, y, x):  # catches the refusal and answers anyway: still refused
        try:
            return bilinear_sample(img[None], grid(img, y, x))[0, :, 0, 0]
        except Exception:
            return my_bilinear(img, y, x)

    v = checks.check_bilinear(swallowing, seed=0)
    assert not v and v.mistake == "cheat"
    # after the check everything works again, and a profiler set before is restored
    assert bilinear_sample(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 1, 2)).item() == 1.0


def test_bilinear_garbage(capsys):
    for g in (None, 5, "my_bilinear", lambda img, y, x: None, lambda img, y, x: "x",
              lambda img, y, x: torch.full((img.shape[0],), float("nan")), lambda img, y, x: torch.zeros(99)):
        assert_garbage(capsys, checks.check_bilinear, g, seed=0)


def test_switched_off_restores_a_previous_profiler():
    import sys

    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(event))
    try:
        with switched_off({"grid_sample": F.grid_sample}):
            pass
        assert sys.getprofile() is not None
    finally:
        sys.setprofile(None)
    assert calls


ROW = [1.0, 2.0, 4.0, 3.0, 2.0]


def autograd_slopes(row, xs):
    """d(read)/dx per pixel from grid_sample's own autograd: an independent computation of the answer."""
    W = len(row)
    u = torch.tensor([x / (W - 1) * 2 - 1 for x in xs], dtype=torch.float64, requires_grad=True)
    grid = torch.stack((u, torch.zeros_like(u)), -1).view(1, 1, -1, 2)
    F.grid_sample(torch.tensor(row, dtype=torch.float64).view(1, 1, 1, W), grid, align_corners=True).sum().backward()
    return (u.grad * 2 / (W - 1)).tolist()


def test_position_gradient(capsys):
    want = autograd_slopes(ROW, [2.0, 4.0, -1.5])
    assert want == [-1.0, -2.0, 0.0]
    assert checks.check_position_gradient(want)
    assert checks.check_position_gradient([-1, -2, 0]) and checks.check_position_gradient(np.array(want))
    for answer, mistake in [([2.0, -1.0, 0.0], "left"), ([0.5, -1.5, 0.0], "average"),
                            ([-2.0, -4.0, 0.0], "normalized"), ([-1.0, -2.0, 1.0], "other")]:
        v = checks.check_position_gradient(answer)
        assert not v and v.mistake == mistake, (answer, v)
        says(capsys, "Not yet:")
    assert "x = -1.5" in checks.check_position_gradient([-1.0, -2.0, 1.0]).message
    for g in GARBAGE + [[1, 2]]:
        assert_garbage(capsys, checks.check_position_gradient, g)


# -- notebook 4: attention --------------------------------------------------------------------------------------
def test_attention_flops(capsys):
    B, h, HW, Ns, c = 1, 8, 400, 100, 64
    want = 2 * (2 * B * h * HW * Ns * c)  # two matmuls, 2 FLOPs per multiply-add
    assert checks.check_attention_flops(want, B, h, HW, Ns, c)
    assert checks.check_attention_flops(float(want), B, h, HW, Ns, c)
    for answer, mistake in [(want // 2, "one_matmul"), (want // 4, "one_matmul_macs"), (want * 4, "dense"),
                            (want * h, "full_channels"), (want // h, "no_heads"), (want * 2, "double"),
                            (want + 3 * B * h * HW * Ns, "softmax"), (want + 7, "softmax"), (want - 1000, "other")]:
        capsys.readouterr()
        v = checks.check_attention_flops(answer, B, h, HW, Ns, c)
        assert not v and v.mistake == mistake, (answer, v)
        assert_hidden(says(capsys, "Not yet:"), want)
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_attention_flops, g, B, h, HW, Ns, c)


def test_layer_attention_flops(capsys):
    """The layer as the notebook states it: 20x20 map, 512 channels, 8 heads, stride 2 (a 10x10 key grid by the
    conv formula (20 + 2 - 3) // 2 + 1, counted here by hand)."""
    HW, Ns, c = 400, 10 * 10, 512 // 8
    want = 2 * (2 * 8 * HW * Ns * c)
    assert checks.check_layer_attention_flops(want, 1, 8, 512, 20, 2)
    assert checks.check_layer_attention_flops(float(want), 1, 8, 512, 20, 2)
    says(capsys, "Correct!")
    for answer, mistake in [(2 * (2 * 8 * HW * (HW // 2) * c), "keys_hw_over_stride"), (want // 2, "one_matmul"),
                            (want * 4, "dense"), (want * 8, "full_channels"), (want + 5, "softmax")]:
        v = checks.check_layer_attention_flops(answer, 1, 8, 512, 20, 2)
        assert not v and v.mistake == mistake, (answer, v)
        assert_hidden(says(capsys, "Not yet:"), want)
    # at 30x30 and stride 4 the conv formula gives 8x8 keys, not 7x7 (30 // 4)
    assert checks.check_layer_attention_flops(2 * (2 * 8 * 900 * 64 * 64), 1, 8, 512, 30, 4)
    assert not checks.check_layer_attention_flops(2 * (2 * 8 * 900 * 49 * 64), 1, 8, 512, 30, 4)
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_layer_attention_flops, g, 1, 8, 512, 20, 2)


def naive_multihead(q, k, v, bias, n_heads):
    """softmax(q_h . k_h / sqrt(c) + bias_h) v_h, one query of one head at a time, in plain loops."""
    B, C, HW = q.shape
    c = C // n_heads
    out = torch.zeros(B, C, HW, dtype=q.dtype)
    for b in range(B):
        for h in range(n_heads):
            ch = slice(h * c, (h + 1) * c)  # head h: consecutive channels
            for m in range(HW):
                s = torch.tensor([float(q[b, ch, m] @ k[b, ch, n]) / math.sqrt(c) + float(bias[b, h, m, n])
                                  for n in range(k.shape[2])], dtype=q.dtype)
                w = torch.exp(s - s.max())
                out[b, ch, m] = (v[b, ch] * (w / w.sum())).sum(1)
    return out


def test_naive_multihead_is_the_modules_attention():
    """The reference of the tests equals dattn's attention_explicit with a bias, heads split '(hd c)'."""
    g = torch.Generator().manual_seed(3)
    B, h, c, HW, Ns = 2, 4, 3, 10, 6
    q, k, v = (torch.randn(B, h * c, n, generator=g, dtype=torch.float64) for n in (HW, Ns, Ns))
    bias = torch.randn(B, h, HW, Ns, generator=g, dtype=torch.float64)
    split = lambda t: t.reshape(B * h, c, -1)  # noqa: E731 - (B, (hd c), n) -> (B*hd, c, n)
    out, _ = attention_explicit(split(q), split(k), split(v), c**-0.5, bias.reshape(B * h, HW, Ns))
    assert torch.allclose(naive_multihead(q, k, v, bias, h), out.reshape(B, h * c, HW))


def my_attention(q, k, v, bias, n_heads, *, split="b (hd c) n -> (b hd) c n", merge="(b hd) c m -> b (hd c) m",
                 scale=None, bias_at="logits", softmax_dim=-1):
    """A right answer, and (by keyword) the likely mistakes, written as a learner would."""
    qh, kh, vh = (rearrange(t, split, hd=n_heads) for t in (q, k, v))
    s = torch.einsum("n c m, n c k -> n m k", qh, kh)
    b = rearrange(bias, "b hd m k -> (b hd) m k")
    sc = qh.shape[1] ** -0.5 if scale is None else scale(q.shape[1] // n_heads, q.shape[1])
    if bias_at == "before_scale":
        s = (s + b) * sc
    else:
        s = s * sc + (b if bias_at == "logits" else 0)
    w = s.softmax(softmax_dim)
    if bias_at == "weights":
        w = w + b
    return rearrange(torch.einsum("n m k, n c k -> n c m", w, vh), merge, hd=n_heads)


def test_multihead_attention_function(capsys):
    for seed in range(3):
        assert checks.check_multihead_attention(my_attention, seed=seed)
    assert checks.check_multihead_attention(naive_multihead, seed=4)  # an independent right answer
    says(capsys, "Correct!")
    # right at the precision a float32 computation gives
    f32 = lambda q, k, v, b, h: my_attention(q.float(), k.float(), v.float(), b.float(), h)  # noqa: E731
    assert checks.check_multihead_attention(f32, seed=5)
    wrong = {
        "no_bias": lambda q, k, v, b, h: my_attention(q, k, v, 0 * b, h),
        "bias_after_softmax": lambda q, k, v, b, h: my_attention(q, k, v, b, h, bias_at="weights"),
        "bias_scaled": lambda q, k, v, b, h: my_attention(q, k, v, b, h, bias_at="before_scale"),
        "scale_all_channels": lambda q, k, v, b, h: my_attention(q, k, v, b, h, scale=lambda c, C: C**-0.5),
        "no_scale": lambda q, k, v, b, h: my_attention(q, k, v, b, h, scale=lambda c, C: 1.0),
        "softmax_over_queries": lambda q, k, v, b, h: my_attention(q, k, v, b, h, softmax_dim=1),
        "heads_interleaved": lambda q, k, v, b, h: my_attention(q, k, v, b, h, split="b (c hd) n -> (b hd) c n",
                                                                merge="(b hd) c m -> b (c hd) m"),
        "merge_interleaved": lambda q, k, v, b, h: my_attention(q, k, v, b, h, merge="(b hd) c m -> b (c hd) m"),
        "split_interleaved": lambda q, k, v, b, h: my_attention(q, k, v, b, h, split="b (c hd) n -> (b hd) c n"),
        "weights": lambda q, k, v, b, h: rearrange(
            (torch.einsum("b c m, b c k -> b m k", *(rearrange(t, "b (hd c) n -> (b hd) c n", hd=h) for t in (q, k)))
             * (q.shape[1] // h) ** -0.5 + rearrange(b, "b hd m k -> (b hd) m k")).softmax(-1),
            "(b hd) m k -> b hd m k", hd=h),
        "not_merged": lambda q, k, v, b, h: my_attention(q, k, v, b, h, merge="(b hd) c m -> b hd c m"),
        "transposed": lambda q, k, v, b, h: my_attention(q, k, v, b, h).transpose(1, 2),
        "raised": lambda q, k, v, b, h: my_attention(q, k, v, b.transpose(2, 3), h),  # bias (B, h, Ns, HW)
        "other": lambda q, k, v, b, h: my_attention(q, k, v, b, h) + 0.01,
    }
    for name, fn in wrong.items():
        for seed in (1, 2):
            capsys.readouterr()
            v = checks.check_multihead_attention(fn, seed=seed)
            assert not v and v.mistake == name, (name, seed, v)
            out = says(capsys, "Not yet:")
            assert "tensor(" not in out and "solution" in out  # no expected output, only the offer of a solution
    sdpa = F.scaled_dot_product_attention

    def via_sdpa(q, k, v, b, h):
        qh, kh, vh = (rearrange(t, "b (hd c) n -> b hd n c", hd=h) for t in (q, k, v))
        return rearrange(sdpa(qh, kh, vh, attn_mask=b), "b hd m c -> b (hd c) m")

    def via_dattn(q, k, v, b, h):
        qh, kh, vh = (rearrange(t, "b (hd c) n -> (b hd) c n", hd=h) for t in (q, k, v))
        out, _ = attention_explicit(qh, kh, vh, qh.shape[1] ** -0.5, rearrange(b, "b hd m k -> (b hd) m k"))
        return rearrange(out, "(b hd) c m -> b (hd c) m", hd=h)

    g = torch.Generator().manual_seed(0)
    args = (*(torch.randn(2, 8, n, generator=g, dtype=torch.float64) for n in (9, 5, 5)),
            torch.randn(2, 2, 9, 5, generator=g, dtype=torch.float64), 2)
    for cheat in (via_sdpa, via_dattn):  # outside the check, each cheat gives the right answer
        assert torch.allclose(cheat(*args), naive_multihead(*args))
    for cheat in (via_sdpa, via_dattn):
        capsys.readouterr()
        v = checks.check_multihead_attention(cheat, seed=0)
        assert not v and v.mistake == "cheat", v
        says(capsys, "switches off")
    for g in (None, 1.5, "my_attention", lambda q, k, v, b, h: "out", lambda q, k, v, b, h: None,
              lambda q, k, v, b, h: [1.0, 2.0], lambda q, k, v, b, h: my_attention(q, k, v, b, h) * float("nan")):
        assert_garbage(capsys, checks.check_multihead_attention, g, seed=0)


# -- notebook 5: parameters -------------------------------------------------------------------------------------
def test_parameter_count_of_a_bottleneck(capsys):
    b = Bottleneck(16, 16, k=(1, 3), e=0.5)  # cv1: 16*8 + 2*8 (BN), cv2: 8*16*9 + 2*16
    right = 16 * 8 + 16 + 8 * 16 * 9 + 32
    assert checks.check_parameter_count(right, b)
    capsys.readouterr()
    v = checks.check_parameter_count(16 * 8 + 8 * 16 * 9, b)
    assert not v and "BatchNorm" in v.message
    assert_hidden(says(capsys, "Not yet:"), right)
    v = checks.check_parameter_count(right + 8 + 16, b)  # conv biases added
    assert not v and "no bias" in v.message


def test_parameter_count_of_the_seed_block(capsys):
    block = Bottleneck_DAttention(512, 512, [20, 20], k=(1, 3), e=1.0)
    c, Cg = 512, 128
    parts = dict(cv1=c * c + 2 * c, cv2=c * c * 9 + 2 * c, offset=(Cg * 9 + Cg) + 2 * Cg + Cg * 2,
                 proj=4 * (c * c + c), pe=c * 9 + c)
    right = sum(parts.values())
    assert checks.check_parameter_count(right, block)
    assert checks.check_parameter_count(torch.tensor(right), block)
    says(capsys, "Correct!")
    mistakes = [(right + 3 * parts["offset"], "shared by the groups"), (right - parts["pe"], "position encoding"),
                (right - (c * c + c), "four 1x1 projections"), (right + c * 9 * (c - 1), "depth-wise"),
                (right - 2 * Cg, "LayerNorm"), (right + 2, "last 1x1 conv has no bias"),
                (right - 4 * c, "projections have biases"), (right - 4 * c, "BatchNorm layers were left out"),
                (right + 4 * c, "running mean and variance are buffers"), (right - c, "encoding's conv has a bias"),
                (right - parts["offset"], "offset network was left out"), (right + Cg * 9 * (Cg - 1),
                                                                          "one 3x3 kernel per channel")]
    for answer, text in mistakes:
        v = checks.check_parameter_count(answer, block)
        assert not v and text in v.message, (answer, text, v.message)
        assert_hidden(says(capsys, "Not yet:"), right)
    v = checks.check_parameter_count(right - 12345, block)
    assert not v and v.mistake == "other" and "cv1" in v.message
    for g in GARBAGE:
        assert_garbage(capsys, checks.check_parameter_count, g, block)


# -- solutions on request only ----------------------------------------------------------------------------------
def test_solutions_only_on_request(capsys):
    assert set(checks.exercises()) >= {"key_count", "reference_pixels_seed", "reference_pixels_centered",
                                       "seed_spacing", "max_offset", "max_offset_diagonal", "bilinear",
                                       "position_gradient", "attention_flops", "multihead_bias", "parameter_count"}
    assert checks.exercises("02") == ["max_offset", "max_offset_diagonal"]
    checks.check_max_offset_pixels(3.0, 20, 2, 4)
    assert "Solution" not in capsys.readouterr().out
    checks.check_max_offset_pixels(3.0, 20, 2, 4, show_solution=True)
    says(capsys, "Solution of 'max_offset'", "4.17")
    checks.solution("bilinear")
    says(capsys, "def my_bilinear")
    checks.solution("nope")
    says(capsys, "No exercise called 'nope'", "key_count")
    checks.hint("multihead_bias")
    says(capsys, "Hint:", "softmax")


def test_every_solution_runs_and_is_accepted(capsys):
    """The worked solutions are code: run them and feed their result to their own checker."""
    ns: dict = {"torch": torch}
    for key in ("seed_spacing", "bilinear", "multihead_bias"):
        exec(checks.EXERCISES[key].solution, ns)  # noqa: S102 - our own solution text
    assert checks.check_seed_spacing(ns["seed_spacing"], seed=0)
    assert checks.check_bilinear(ns["my_bilinear"], seed=0)
    assert checks.check_multihead_attention(ns["my_attention"], seed=0)
    for key, check in [("key_count", lambda a: checks.check_key_count(a, 30, 30, 4)),
                       ("max_offset", lambda a: checks.check_max_offset_pixels(a, 26, 4, 2)),
                       ("max_offset_diagonal", lambda a: checks.check_max_offset_distance(a, 26, 4, 2)),
                       ("attention_flops", lambda a: checks.check_attention_flops(a, 1, 8, 400, 100, 64)),
                       ("position_gradient", checks.check_position_gradient),
                       ("reference_pixels_seed", lambda a: checks.check_reference_pixels(a, 4, 14)),
                       ("reference_pixels_centered", lambda a: checks.check_reference_pixels(a, 4, 14, "centered")),
                       ("parameter_count", lambda a: checks.check_parameter_count(
                           a, Bottleneck_DAttention(512, 512, [20, 20], k=(1, 3), e=1.0)))]:
        printed: list = []
        exec(checks.EXERCISES[key].solution, {"torch": torch, "print": printed.append})  # noqa: S102
        answer = printed[-1]
        if isinstance(answer, str):  # "81,920,000"
            answer = int(answer.replace(",", ""))
        assert check(answer), key
    capsys.readouterr()


class EqualsAnything(float):
    """A float that claims to equal everything: a cheat against checkers that compare with ==."""

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class Pretender:
    """Not a number at all, but equal to everything and convertible to anything."""

    def __eq__(self, other):
        return True

    def __float__(self):
        return 1.0

    def __int__(self):
        return 1

    def __index__(self):
        return 1


@pytest.mark.parametrize("check, args", [
    (checks.check_key_count, (30, 30, 4)), (checks.check_max_offset_pixels, (20, 2, 4)),
    (checks.check_max_offset_distance, (20, 2, 4)), (checks.check_attention_flops, (1, 8, 400, 100, 64)),
    (checks.check_parameter_count, (Bottleneck(16, 16),)),
])
def test_value_checkers_resist_cheats(capsys, check, args):
    from dattn.offsets import key_grid_size

    assert not check(EqualsAnything(1.0), *args)  # compared by value, not by its ==
    assert_garbage(capsys, check, Pretender(), *args)
    assert_garbage(capsys, check, key_grid_size, *args)  # the helper itself is not an answer
    assert_garbage(capsys, check, np.array([64, 49, 100, 4.22, 5.97, 81920000]), *args)  # every candidate at once


def test_vector_checkers_resist_cheats(capsys):
    assert not checks.check_reference_pixels([EqualsAnything(0.0)] * 5, 5, 20)
    assert_garbage(capsys, checks.check_reference_pixels, [Pretender()] * 5, 5, 20)
    assert_garbage(capsys, checks.check_reference_pixels, np.array(SEED_ROWS + CENTRED_ROWS), 5, 20)
    assert not checks.check_position_gradient([EqualsAnything(9.0)] * 3)
