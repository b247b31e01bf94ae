"""Notebook 3: a bilinear read written by hand, and its slope with respect to the position."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import sampling
from .core import (
    BadAnswer,
    Verdict,
    as_numbers,
    as_tensor_result,
    close,
    first_match,
    fresh_seed,
    garbage,
    not_a_function,
    register,
    run_learner,
    verdict,
)

DECIMALS = 2
ROW = (1.0, 2.0, 4.0, 3.0, 2.0)  # the 1 x 5 map of the slope exercise
XS = (2.0, 4.0, -1.5)  # where its slope is asked: a pixel centre, the last centre, beyond the border

register(
    "bilinear", "03",
    hint="y0 = floor(y), x0 = floor(x) (math.floor, not int: int(-0.5) is 0); the four neighbours (y0 or y0 + 1, "
         "x0 or x0 + 1) get weights (1 - wy or wy) * (1 - wx or wx) with wy = y - y0, wx = x - x0; a neighbour "
         "outside 0..H-1 or 0..W-1 adds nothing, even when its weight is 0.",
    solution="""\
import math

def my_bilinear(img, y, x):
    C, H, W = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = torch.zeros(C, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < H and 0 <= xx < W:      # zero padding: outside neighbours add nothing
                out += wy * wx * img[:, yy, xx]
    return out""",
)
register(
    "position_gradient", "03",
    hint="along a row the read is (1 - w) f(x0) + w f(x0 + 1), so its slope is f(x0 + 1) - f(x0) with "
         "x0 = floor(x); a neighbour outside the map is 0. At a pixel centre floor picks the cell to the right.",
    solution="""\
import math

row = [1.0, 2.0, 4.0, 3.0, 2.0]
f = lambda i: row[i] if 0 <= i < len(row) else 0.0       # zero padding
slope = lambda x: f(math.floor(x) + 1) - f(math.floor(x))
print([slope(x) for x in (2.0, 4.0, -1.5)])              # [-1.0, -2.0, 0.0]
# 2.0: floor(2.0) = 2, so torch uses the cell from 2 to 3 (the slope on the left would be 2.0);
# 4.0: the right neighbour (x = 5) is padding, 0 - 2 = -2; -1.5: both neighbours are outside, nothing to move""",
)


# ----------------------------------------------------------------------------------------------------------
# The bilinear read, by hand
# ----------------------------------------------------------------------------------------------------------
def _manual(img: torch.Tensor, y: float, x: float, floor=math.floor, swap_weights: bool = False,
            outside: str = "zeros") -> torch.Tensor:
    """The checker's own bilinear read, with switches that reproduce common mistakes."""
    C, H, W = img.shape
    y0, x0 = floor(y), floor(x)
    wy, wx = y - y0, x - x0
    if swap_weights:
        wy, wx = 1 - wy, 1 - wx
    out = torch.zeros(C, dtype=torch.float64)
    for yy, a in ((y0, 1 - wy), (y0 + 1, wy)):
        for xx, b in ((x0, 1 - wx), (x0 + 1, wx)):
            if outside == "border":
                yy, xx = min(max(yy, 0), H - 1), min(max(xx, 0), W - 1)
            if outside == "wrap" and -H <= yy < H and -W <= xx < W:  # Python's negative indices
                out += a * b * img[:, yy, xx]
            elif 0 <= yy < H and 0 <= xx < W:
                out += a * b * img[:, yy, xx]
    return out


def _bilinear_mistakes(img: torch.Tensor, y: float, x: float) -> list[tuple[str, np.ndarray, str]]:
    swapped = _manual(img.transpose(1, 2), y, x).numpy()  # img[:, x, y] read with y's weights on rows
    return [
        ("border", _manual(img, y, x, outside="border").numpy(),
         "outside neighbours must count as zero (padding_mode='zeros'), not as the nearest border pixel."),
        ("wraps", _manual(img, y, x, outside="wrap").numpy(),
         "a negative index wraps around in Python (img[:, -1] is the last row): skip the neighbours outside "
         "the map."),
        ("trunc", _manual(img, y, x, floor=int).numpy(),
         "int() rounds toward zero (int(-0.75) is 0): left of or above the map use math.floor."),
        ("weights_swapped", _manual(img, y, x, swap_weights=True).numpy(),
         "the nearer neighbour must get the larger weight: y0 gets 1 - wy, y0 + 1 gets wy."),
        ("nearest", _manual(img, float(math.floor(y + 0.5)), float(math.floor(x + 0.5))).numpy(),
         "that is the nearest pixel's value; bilinear mixes the four neighbours."),
        ("swapped_axes", swapped, "rows are y and columns are x: img[:, y, x], not img[:, x, y]."),
        ("half_pixel", _manual(img, y - 0.5, x - 0.5).numpy(),
         "pixel i's centre is at i (align_corners=True), not at i + 0.5."),
    ]


def _cases(rng: np.random.Generator, H: int, W: int) -> list[tuple[float, float, str]]:
    u = lambda a, b: float(np.round(rng.uniform(a, b), 3))  # noqa: E731
    return [
        (u(0.1, H - 1.1), u(0.1, W - 1.1), "inside the map"),
        (float(rng.integers(1, H - 1)), float(rng.integers(1, W - 1)), "on a pixel centre"),
        (float(H - 1), u(0.2, W - 1.2), "on the last row's centres"),
        (u(H - 0.9, H - 0.1), u(0.2, W - 1.2), "below the last row, partly outside"),
        (u(-0.9, -0.1), u(0.2, W - 1.2), "above the first row, partly outside"),
        (u(0.2, H - 1.2), u(W - 0.9, W - 0.1), "right of the last column, partly outside"),
        (u(-2.5, -1.1), u(W + 0.1, W + 1.5), "more than a pixel past the top-right corner"),
    ]


def _sampling_helpers() -> dict[str, Callable]:
    helpers: dict[str, Callable] = {
        "dattn.sampling.bilinear_sample": sampling.bilinear_sample,
        "dattn.sampling.corner_weights": sampling.corner_weights,
        "dattn.sampling.sample_keys": sampling.sample_keys,
        "torch.nn.functional.grid_sample": F.grid_sample,
        "torch.grid_sampler": torch.grid_sampler,
        "torch.grid_sampler_2d": torch.grid_sampler_2d,
    }
    try:
        from ..viz import bilinear_plots
    except ImportError:  # no matplotlib: those helpers cannot be called either
        return helpers
    helpers["dattn.viz.bilinear_plots.bilinear_value"] = bilinear_plots.bilinear_value
    helpers["dattn.viz.bilinear_plots.bilinear_neighbours"] = bilinear_plots.bilinear_neighbours
    return helpers


def check_bilinear(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``bilinear``: ``fn(img (C, H, W), y, x)`` returns the C values read bilinearly at pixel (y, x),
    zero outside. Checked on a map and positions made at check time, with grid_sample and dattn's sampling
    helpers switched off."""
    key = "bilinear"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    rng = np.random.default_rng(fresh_seed(seed))
    C, H, W = int(rng.integers(2, 4)), int(rng.integers(5, 9)), int(rng.integers(5, 9))
    img = torch.from_numpy(rng.normal(size=(C, H, W)))  # float64
    cases = _cases(rng, H, W)
    for y, x, where in cases:
        want = _manual(img, y, x).numpy()
        run = run_learner(fn, (img.clone(), y, x), _sampling_helpers())
        at = f"at (y, x) = ({y:g}, {x:g}) on a {H}x{W} map ({where})"
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: "
                                       f"write the read yourself.", "cheat", show_solution, with_hint=False)
        if run.error is not None:
            extra = (" A neighbour with weight 0 still has to be skipped when it lies outside the map."
                     if isinstance(run.error, IndexError) else "")
            return verdict(key, False, f"{at}, your function raised {type(run.error).__name__}: "
                                       f"{run.error}.{extra}", "raised", show_solution)
        try:
            got = as_tensor_result(run.result, (C,), f"the {C} values of the channels").numpy()
        except BadAnswer as err:
            return garbage(key, f"{at}: {err}", show_solution)
        if not close(got, want, 6):
            found = first_match(got, [m for m in _bilinear_mistakes(img, y, x) if not close(m[1], want, 6)], 6)
            name, text = found or ("other", "your values differ from a bilinear read with zero padding.")
            return verdict(key, False, f"{at}: {text}", name, show_solution)
    return verdict(key, True, f"your read equals grid_sample's on {len(cases)} positions you had not seen: inside, "
                              f"on centres, at every border and past a corner.", show_solution=show_solution)


# ----------------------------------------------------------------------------------------------------------
# The slope of the read with respect to the position
# ----------------------------------------------------------------------------------------------------------
def _slope(row: Sequence[float], x: float, side: str = "right") -> float:
    f = lambda i: row[i] if 0 <= i < len(row) else 0.0  # noqa: E731
    x0 = math.floor(x)
    if side == "left" and x == x0:
        x0 -= 1
    return f(x0 + 1) - f(x0)


def check_position_gradient(answer, row: Sequence[float] = ROW, xs: Sequence[float] = XS, *,
                            show_solution: bool = False) -> Verdict:
    """Exercise ``position_gradient``: d(read)/dx, per pixel, that autograd gives for a 1 x len(row) map read
    at each x of ``xs``; accepted at two decimals."""
    key = "position_gradient"
    try:
        got = as_numbers(answer, len(xs), "one slope per position")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    want = np.array([_slope(row, x) for x in xs])
    if close(got, want, DECIMALS):
        return verdict(key, True, "torch's slopes: the cell right of a centre, zero padding beyond the last "
                                  "pixel, and nothing at all more than a pixel outside.", show_solution=show_solution)
    n = len(row)
    per_norm = (n - 1) / 2  # pixels per normalized unit
    mistakes = [
        ("left", np.array([_slope(row, x, "left") for x in xs]),
         "at a pixel centre torch takes the cell to the right (floor(2.0) is 2), not the one to the left."),
        ("average", np.array([(_slope(row, x) + _slope(row, x, "left")) / 2 for x in xs]),
         "the average of the two sides is what a centred finite difference sees (why gradcheck fails on a "
         "centre); autograd takes one side."),
        ("normalized", want * per_norm,
         "that is the slope per normalized unit (what grid_sample's gradient holds); per pixel, divide by "
         "(W - 1) / 2."),
    ]
    found = first_match(got, [m for m in mistakes if not close(m[1], want, DECIMALS)], DECIMALS)
    if found:
        return verdict(key, False, found[1], found[0], show_solution)
    wrong = [i for i in range(len(xs)) if not close(got[i], want[i], DECIMALS)]
    notes = {0: "on a pixel centre, which cell does floor pick?",
             1: "on the last pixel centre the right neighbour is zero padding.",
             2: "more than a pixel outside, both neighbours are padding: the read is 0 all around."}
    text = " ".join(f"x = {xs[i]:g}: {notes.get(i, 'check this slope.')}" for i in wrong) if tuple(xs) == XS else \
        f"{len(wrong)} of your {len(xs)} slopes are wrong."
    return verdict(key, False, text, "other", show_solution)
