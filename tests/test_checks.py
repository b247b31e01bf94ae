"""Exercise checkers accept right answers, reject wrong ones, and say why."""

import math

import torch

from dattn import checks
from dattn.yolo.common import Bottleneck


def test_reference_pixels(capsys):
    assert checks.check_reference_pixels([i + 0.5 for i in range(6)], Hk=6, H=6)
    assert not checks.check_reference_pixels(list(range(6)), Hk=6, H=6)
    assert "off by -0.500" in capsys.readouterr().out
    assert checks.check_reference_pixels(list(range(6)), Hk=6, H=6, convention="centered")
    assert not checks.check_reference_pixels([1, 2], Hk=6, H=6)
    assert "expected 6 numbers" in capsys.readouterr().out


def test_max_offset_pixels(capsys):
    # stride 1, 20 rows: the bound is 4 / 19 normalized units, one unit being 9.5 pixels
    assert checks.check_max_offset_pixels(4 / 19 * 9.5, H=20, stride=1, offset_range_factor=4)
    # stride 4: Hk = (20 + 2 - 3) // 4 + 1 = 5 rows
    assert checks.check_max_offset_pixels(4 / 4 * 9.5, H=20, stride=4, offset_range_factor=4)
    assert not checks.check_max_offset_pixels(4 / 19, H=20, stride=1, offset_range_factor=4)
    assert "normalized units" in capsys.readouterr().out


def _my_bilinear(img, y, x):
    C, H, W = img.shape
    out = torch.zeros(C, dtype=img.dtype)
    y0, x0 = math.floor(y), math.floor(x)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < H and 0 <= xx < W:
                out += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx]
    return out


def test_bilinear(capsys):
    assert checks.check_bilinear(_my_bilinear)

    def clamped(img, y, x):  # reads the border instead of zeros
        H, W = img.shape[1:]
        return _my_bilinear(img, min(max(y, 0), H - 1), min(max(x, 0), W - 1))

    assert not checks.check_bilinear(clamped)
    assert "count as zero" in capsys.readouterr().out


def test_attention_flops(capsys):
    B, h, HW, Ns, c = 2, 8, 400, 100, 64
    assert checks.check_attention_flops(4 * B * h * HW * Ns * c, B, h, HW, Ns, c)
    assert not checks.check_attention_flops(2 * B * h * HW * Ns * c, B, h, HW, Ns, c)
    assert "two matmuls" in capsys.readouterr().out


def test_parameter_count(capsys):
    b = Bottleneck(16, 16, k=(1, 3), e=0.5)  # cv1: 16*8 + 2*8 (BN), cv2: 8*16*9 + 2*16
    assert checks.check_parameter_count(16 * 8 + 16 + 8 * 16 * 9 + 32, b)
    assert not checks.check_parameter_count(16 * 8 + 8 * 16 * 9, b)
    assert "off by -48" in capsys.readouterr().out


def test_key_count_and_unanswered(capsys):
    assert checks.check_key_count(100, H=40, W=40, stride=4)  # (40 + 2 - 3) // 4 + 1 = 10 rows and columns
    assert not checks.check_key_count(1600, H=40, W=40, stride=4)
    assert "number of queries" in capsys.readouterr().out
    assert checks.check_key_count(11 * 11, H=21, W=21, stride=2)  # (21 + 2 - 3) // 2 + 1 = 11, not 21 // 2
    assert not checks.check_key_count(100, H=21, W=21, stride=2)
    assert "(H + 2*pad - ksize)" in capsys.readouterr().out
    for check, args in [(checks.check_key_count, (40, 40, 4)), (checks.check_bilinear, ()),
                        (checks.check_reference_pixels, (4, 4))]:
        assert not check(None, *args)
        assert "replace None" in capsys.readouterr().out
