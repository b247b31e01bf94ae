"""Notebook 2: how far the tanh bound lets a key move, along one axis and along the diagonal."""

from __future__ import annotations

import math

from ..offsets import key_grid_size, offset_scale
from .core import BadAnswer, Verdict, as_number, close, first_match, garbage, register, tolerance, verdict

DECIMALS = 2  # notebook 2 prints bounds in pixels with two decimals

register(
    "max_offset", "02",
    hint="find Hk from the offset network's conv, (H + 2 - 3) // stride + 1; tanh reaches at most 1, times "
         "factor / (Hk - 1) normalized units; one normalized unit is (H - 1) / 2 pixels of the map.",
    solution="""\
H, stride, factor = 26, 4, 2
Hk = (H + 2 * 1 - 3) // stride + 1          # 7 key rows (26 // 4 would say 6)
bound = factor / (Hk - 1)                   # normalized units: |tanh(raw)| <= 1
print(round(bound * (H - 1) / 2, 2))        # 4.17 pixels along y (and the same along x)""",
)
register(
    "max_offset_diagonal", "02",
    hint="tanh bounds dy and dx separately, so both can reach the bound at the same time; "
         "the distance moved is sqrt(dy**2 + dx**2).",
    solution="""\
H, stride, factor = 26, 4, 2
Hk = (H + 2 * 1 - 3) // stride + 1
b = factor / (Hk - 1) * (H - 1) / 2         # 4.17 px along each axis
print(round((b**2 + b**2) ** 0.5, 2))       # 5.89 px: a key moving diagonally goes sqrt(2) times further""",
)


def _bounds(H: int, stride: int, factor: float, ksize: int) -> tuple[int, float]:
    Hk, _ = key_grid_size(H, H, ksize, stride)
    return Hk, offset_scale(Hk, Hk, factor)[0] * (H - 1) / 2


def _axis_mistakes(H: int, stride: int, factor: float, Hk: int, want: float) -> list[tuple[str, float, str]]:
    n = max(Hk - 1, 1)
    return [
        ("normalized", factor / n, "that is the bound in normalized units; one normalized unit is (H - 1) / 2 "
                                   "pixels of the map."),
        ("divide_by_hk", factor / Hk * (H - 1) / 2, "the seed scales tanh by factor / (Hk - 1), not factor / Hk."),
        ("h_not_h_minus_1", factor / n * H / 2, "with align_corners=True one normalized unit is (H - 1) / 2 "
                                                 "pixels, not H / 2."),
        ("floor_hk", factor / max(H // stride - 1, 1) * (H - 1) / 2 if H // stride != Hk else None,
         "Hk is not H // stride: the conv keeps a partial last window, (H + 2 - 3) // stride + 1 rows."),
        ("stride_one_or_key_cells", factor / 2,
         "that is factor / 2: the bound of a stride-1 grid (Hk = H), or the bound measured in key-grid cells; "
         "here the key grid is smaller and pixels of the H-row map are wanted."),
        ("no_factor", 1 / n * (H - 1) / 2, "tanh's range is multiplied by offset_range_factor."),
        ("both_directions", 2 * want, "tanh spans -1..1, so a key moves at most the bound in either direction, "
                                      "not twice it."),
        ("diagonal", math.sqrt(2) * want, "that is the diagonal; this exercise asks along y only."),
    ]


def _judge(key: str, got: float, want: float, mistakes, show_solution: bool) -> Verdict:
    if close(got, want, DECIMALS):
        return verdict(key, True, f"{got:g} pixels, at the two decimals the notebook shows.",
                       show_solution=show_solution)
    found = first_match(got, [m for m in mistakes if m[1] is not None and not close(m[1], want, DECIMALS)],
                        DECIMALS)
    if found:
        return verdict(key, False, found[1], found[0], show_solution)
    if abs(got - want) <= 10 * tolerance(DECIMALS):
        return verdict(key, False, "close: keep two decimals (the notebook shows two).", "rounding", show_solution)
    side = "large" if got > want else "small"
    return verdict(key, False, f"{got:g} pixels is too {side}.", "other", show_solution)


def check_max_offset_pixels(answer, H: int, stride: int, offset_range_factor: float, ksize: int = 3, *,
                            show_solution: bool = False) -> Verdict:
    """Exercise ``max_offset``: the largest offset along y, in pixels of the H-row map, that the tanh bound
    allows; accepted at two decimals (4.22 for 4.2222...)."""
    key = "max_offset"
    try:
        got = as_number(answer, "one number of pixels")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    Hk, want = _bounds(H, stride, offset_range_factor, ksize)
    return _judge(key, got, want, _axis_mistakes(H, stride, offset_range_factor, Hk, want), show_solution)


def check_max_offset_distance(answer, H: int, stride: int, offset_range_factor: float, ksize: int = 3, *,
                              show_solution: bool = False) -> Verdict:
    """Exercise ``max_offset_diagonal``: the farthest (Euclidean) distance, in pixels, a key can move from its
    reference point on a square H x H map; accepted at two decimals."""
    key = "max_offset_diagonal"
    try:
        got = as_number(answer, "one number of pixels")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    Hk, axis = _bounds(H, stride, offset_range_factor, ksize)
    want = math.hypot(axis, axis)
    mistakes = [
        ("per_axis", axis, "that is the bound along one axis; tanh bounds dy and dx separately, so a diagonal "
                           "move can be longer."),
        ("sum", 2 * axis, "a key moving dy down and dx right ends sqrt(dy**2 + dx**2) away, not dy + dx."),
        ("normalized", math.hypot(*offset_scale(Hk, Hk, offset_range_factor)),
         "that is the distance in normalized units; one normalized unit is (H - 1) / 2 pixels."),
    ]
    # the mistakes of the per-axis bound, carried to the diagonal
    for name, value, text in _axis_mistakes(H, stride, offset_range_factor, Hk, axis)[1:6]:
        if value is not None:
            mistakes.append((name, math.sqrt(2) * value, text))
    return _judge(key, got, want, mistakes, show_solution)
