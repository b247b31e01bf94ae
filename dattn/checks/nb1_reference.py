"""Notebook 1: where the reference points sit, in pixels of the query map."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import geometry, offsets
from .core import (
    BadAnswer,
    Verdict,
    as_number,
    as_numbers,
    close,
    first_match,
    fresh_seed,
    garbage,
    not_a_function,
    register,
    run_learner,
    tolerance,
    verdict,
)

DECIMALS = 2  # notebook 1 prints reference rows with two decimals

register(
    "reference_pixels_seed", "01",
    hint="the seed takes linspace(0.5, Hk - 0.5, Hk), divides by Hk - 1 and maps [0, 1] to [-1, 1]; "
         "with align_corners=True a normalized u is pixel (u + 1) / 2 * (H - 1).",
    solution="""\
Hk, H = 4, 14
u = [(i + 0.5) / (Hk - 1) * 2 - 1 for i in range(Hk)]   # the seed's normalized rows
rows = [(ui + 1) / 2 * (H - 1) for ui in u]              # = (i + 0.5) * (H - 1) / (Hk - 1)
print([round(r, 2) for r in rows])                        # 2.17, 6.5, 10.83, 15.17: the last is off the map""",
)
register(
    "reference_pixels_centered", "01",
    hint="the map's H rows are cut into Hk cells of H / Hk rows; a cell from pixel a to pixel b "
         "(its first and last pixel centres) has its centre at (a + b) / 2.",
    solution="""\
Hk, H = 4, 14
cell = H / Hk                                       # 3.5 rows per cell
rows = [(i + 0.5) * cell - 0.5 for i in range(Hk)]  # cell i runs from pixel 3.5 i - 0.5 to 3.5 (i + 1) - 0.5
print(rows)                                         # 1.25, 4.75, 8.25, 11.75""",
)
register(
    "seed_spacing", "01",
    hint="the key grid has Hk = (H + 2*padding - kernel) // stride + 1 rows (padding kernel // 2, or 0 when the "
         "kernel equals the stride); the seed spreads them evenly, its first row half a spacing below pixel 0 "
         "and its last half a spacing past pixel H - 1, so consecutive rows are (H - 1) / (Hk - 1) pixels apart.",
    solution="""\
def seed_spacing(H, stride, ksize=3):
    pad = 0 if ksize == stride else ksize // 2      # the offset network's first conv
    Hk = (H + 2 * pad - ksize) // stride + 1         # key rows
    return (H - 1) / (Hk - 1)                        # rows (i + 0.5) * (H - 1) / (Hk - 1): stretched, not stride""",
)


def _seed(Hk: int, H: int) -> np.ndarray:
    return (np.arange(Hk) + 0.5) * (H - 1) / (Hk - 1)


def _centered(Hk: int, H: int) -> np.ndarray:
    return (np.arange(Hk) + 0.5) * H / Hk - 0.5


def _mistakes(Hk: int, H: int, convention: str) -> list[tuple[str, np.ndarray, str]]:
    """Answers that common mistakes give, with their diagnosis."""
    i = np.arange(Hk, dtype=np.float64)
    u_seed = (i + 0.5) / (Hk - 1) * 2 - 1 if Hk > 1 else np.zeros(1)
    common = [
        ("align_corners_false", (u_seed + 1) * H / 2 - 0.5 if convention == "seed" else None,
         "that converts with align_corners=False; DAttention samples with align_corners=True, where "
         "a normalized u is pixel (u + 1) / 2 * (H - 1)."),
    ]
    if convention == "seed":
        return [
            ("centered", _centered(Hk, H), "those are the centered convention's points; the seed's are elsewhere."),
            ("no_half", i * (H - 1) / max(Hk - 1, 1),
             "those are spread evenly from the first to the last pixel centre; the seed starts from "
             "linspace(0.5, Hk - 0.5, Hk), half a key cell further."),
            ("divide_by_hk", (i + 0.5) / Hk * (H - 1), "the seed divides by Hk - 1, not by Hk."),
            ("h_not_h_minus_1", (i + 0.5) / max(Hk - 1, 1) * H,
             "with align_corners=True one normalized unit is (H - 1) / 2 pixels, not H / 2."),
            ("normalized", u_seed, "those are normalized coordinates; the question asks for pixels of the map."),
            ("key_cells", i + 0.5, "those are in cells of the key grid; the question asks for pixels of the "
                                   "H-row map."),
            ("reversed", _seed(Hk, H)[::-1].copy(), "top row first: list the rows in increasing order."),
            *common,
        ]
    return [
        ("seed", _seed(Hk, H) if Hk > 1 else None, "those are the seed's points; the centered ones sit on the "
                                                  "cells' centres."),
        ("cell_start", i * H / Hk, "those are the first pixels of the cells, not their centres."),
        ("no_minus_half", (i + 0.5) * H / Hk,
         "pixel centres sit at integers (pixel 0's centre is 0, its edges -0.5 and 0.5): the cell from pixel a "
         "to pixel b has its centre at (a + b) / 2."),
        ("normalized", geometry.pixel_to_norm(torch.from_numpy(_centered(Hk, H)), H).numpy(),
         "those are normalized coordinates; the question asks for pixels of the map."),
        ("reversed", _centered(Hk, H)[::-1].copy(), "top row first: list the rows in increasing order."),
    ]


def _diagnose(got: np.ndarray, want: np.ndarray, Hk: int, H: int, convention: str) -> tuple[str, str]:
    found = first_match(got, _mistakes(Hk, H, convention), DECIMALS)
    if found:
        return found
    diff = got - want
    if np.ptp(diff) <= 2 * 10.0**-DECIMALS:
        return "shift", "every value is off by the same amount: check the half-pixel term and which pixel is 0."
    n_right = int(np.sum(np.abs(diff) <= tolerance(DECIMALS)))
    if n_right == 0 and np.all(np.diff(got) > 0):
        return "spacing", ("the spacing between your rows is not the grid's: check what you divide by "
                           "(Hk or Hk - 1, H or H - 1).")
    return "other", f"{n_right} of your {len(got)} values are right."


def check_reference_pixels(answer, Hk: int, H: int, convention: str = "seed", *,
                           show_solution: bool = False) -> Verdict:
    """Exercises ``reference_pixels_seed`` / ``_centered``: the y pixel coordinates (Hk values) of the
    reference rows of an Hk-row key grid on an H-row map, accepted at two decimals."""
    key = f"reference_pixels_{convention}"
    if convention not in geometry.REF_CONVENTIONS:
        raise ValueError(f"convention must be one of {geometry.REF_CONVENTIONS}, got {convention!r}")
    try:
        got = as_numbers(answer, Hk, "one pixel row per key row")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    want = geometry.norm_to_pixel(geometry.reference_points(Hk, 1, H, 1, convention, dtype=torch.float64)[:, 0, 0],
                                  H).numpy()
    if close(got, want, DECIMALS):
        off = int(np.sum((want < -0.5) | (want > H - 0.5)))
        where = f"; {off} of them past the map's last row" if off else ""
        return verdict(key, True, f"the {convention} reference rows{where}.", show_solution=show_solution)
    name, text = _diagnose(got, want, Hk, H, convention)
    return verdict(key, False, text, name, show_solution)


def _helpers() -> dict[str, Callable]:
    helpers = {"dattn.geometry.reference_points": geometry.reference_points,
               "dattn.geometry._seed_axis": geometry._seed_axis,
               "dattn.offsets.key_grid_size": offsets.key_grid_size}
    try:
        from ..viz import reference_plots
    except ImportError:  # matplotlib missing: the figures' helper cannot be called either
        return helpers
    helpers["dattn.viz.reference_plots.reference_grid_px"] = reference_plots.reference_grid_px
    return helpers


def _spacing_mistakes(H: int, stride: int, ksize: int) -> list[tuple[str, float | None, str]]:
    Hk = offsets.key_grid_size(H, H, ksize, stride)[0]
    padded = (H + 2 * (ksize // 2) - ksize) // stride + 1
    floor_hk = H // stride
    return [
        *[("centered", value, "that is the centered grid's spacing (H / Hk, the stride when it divides H); the "
                              "seed's Hk rows run from half a spacing after pixel 0 to half a spacing past pixel "
                              "H - 1.") for value in (float(stride), H / Hk)],
        ("padding", (H - 1) / (padded - 1) if padded > 1 and padded != Hk else None,
         "when the kernel equals the stride the offset network's conv has no padding."),
        ("divide_by_hk", (H - 1) / Hk, "the seed divides by Hk - 1, not by Hk."),
        ("h_not_h_minus_1", H / max(Hk - 1, 1), "with align_corners=True the map spans H - 1 pixels from its "
                                                "first to its last pixel centre."),
        ("floor_hk", (H - 1) / (floor_hk - 1) if floor_hk > 1 and floor_hk != Hk else None,
         "Hk is not H // stride: the conv keeps a partial last window."),
    ]


def check_seed_spacing(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``seed_spacing``: ``fn(H, stride)`` returns the distance in pixels between two consecutive
    reference rows of the seed's grid on an H-row map (kernel 3). Checked on sizes made at check time, with
    ``key_grid_size`` and ``reference_points`` switched off."""
    key = "seed_spacing"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    rng = np.random.default_rng(fresh_seed(seed))
    # sizes that tell every diagnosed mistake from the right answer: at stride 2 an even H (spacing is not 2),
    # at stride 4 H = 4m + 2 or 4m + 3 (H // 4 is not the conv's rows, and the spacing is not 4), at stride 3
    # (the kernel: no padding) H = 3m + 2 (a padded conv would give one row more)
    cases = [(2 * int(rng.integers(5, 20)), 2), (4 * int(rng.integers(3, 10)) + int(rng.integers(2, 4)), 4),
             (int(rng.integers(9, 41)), 1), (3 * int(rng.integers(3, 13)) + 2, 3)]
    for H, stride in cases:
        run = run_learner(fn, (H, stride), _helpers())
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: "
                                       f"write the formula yourself.", "cheat", show_solution, with_hint=False)
        if run.error is not None:
            return verdict(key, False, f"for H={H}, stride={stride} your function raised "
                                       f"{type(run.error).__name__}: {run.error}", "raised", show_solution)
        if run.result is None:
            return garbage(key, f"for H={H}, stride={stride} your function returned None: return the spacing "
                                f"in pixels.", show_solution)
        try:
            got = as_number(run.result, "one number of pixels")
        except BadAnswer as err:
            return garbage(key, f"for H={H}, stride={stride}: {err}", show_solution)
        Hk = offsets.key_grid_size(H, H, 3, stride)[0]
        want = (H - 1) / (Hk - 1)
        if not close(got, want, 4):
            found = first_match(got, [m for m in _spacing_mistakes(H, stride, 3)
                                      if m[1] is not None and not close(m[1], want, 4)], 4)
            name, text = found or ("other", "that is not the distance between two of the seed's rows.")
            return verdict(key, False, f"for H={H}, stride={stride}: {text}", name, show_solution)
    return verdict(key, True, f"your spacing is the seed's on {len(cases)} maps you had not seen: wider than the "
                              f"stride, the grid is stretched as well as shifted.", show_solution=show_solution)
