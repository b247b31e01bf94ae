"""Notebook 1: where the reference points sit, in pixels of the query map."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import geometry
from ..offsets import key_grid_size
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
    tolerance,
    verdict,
)

DECIMALS = 2  # notebook 1 prints reference rows with two decimals

register(
    "reference_pixels_seed", "01",
    hint="the seed takes linspace(0.5, Hk - 0.5, Hk), divides by Hk - 1 and maps [0, 1] to [-1, 1]; "
         "with align_corners=True a normalized u is pixel (u + 1) / 2 * (H - 1).",
    solution="""\
Hk, H = 5, 20
u = [(i + 0.5) / (Hk - 1) * 2 - 1 for i in range(Hk)]   # the seed's normalized rows
rows = [(ui + 1) / 2 * (H - 1) for ui in u]              # = (i + 0.5) * (H - 1) / (Hk - 1)
print([round(r, 2) for r in rows])                        # 2.38, 7.12, 11.88, 16.62, 21.38: the last is off the map""",
)
register(
    "reference_pixels_centered", "01",
    hint="the map's H rows are cut into Hk cells of H / Hk rows; a cell from pixel a to pixel b "
         "(its first and last pixel centres) has its centre at (a + b) / 2.",
    solution="""\
Hk, H = 5, 20
cell = H / Hk                                       # 4 rows per cell
rows = [(i + 0.5) * cell - 0.5 for i in range(Hk)]  # cell i covers pixels 4i .. 4i + 3: centre 4i + 1.5
print(rows)                                         # 1.5, 5.5, 9.5, 13.5, 17.5""",
)
register(
    "reference_rows", "01",
    hint="write the seed's formula for any Hk >= 2 and H: the rows (i + 0.5) / (Hk - 1), mapped to [-1, 1], then "
         "to pixels with align_corners=True. Return Hk numbers (a list or a tensor).",
    solution="""\
def seed_rows(Hk, H):
    i = torch.arange(Hk, dtype=torch.float64)
    u = (i + 0.5) / (Hk - 1) * 2 - 1        # normalized, as the seed builds them
    return (u + 1) / 2 * (H - 1)            # pixels of the H-row map (align_corners=True)""",
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
               "dattn.geometry._centered_axis": geometry._centered_axis}
    try:
        from ..viz import reference_plots
    except ImportError:  # matplotlib missing: the figures' helper cannot be called either
        return helpers
    helpers["dattn.viz.reference_plots.reference_grid_px"] = reference_plots.reference_grid_px
    return helpers


def check_reference_rows(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``reference_rows``: ``fn(Hk, H)`` returns the seed's Hk reference rows in pixels of an H-row
    map. Checked on sizes made at check time, with ``reference_points`` switched off."""
    key = "reference_rows"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    rng = np.random.default_rng(fresh_seed(seed))
    cases = []
    for stride in (2, 3, 4, 1):
        H = int(rng.integers(9, 41))
        cases.append((key_grid_size(H, H, 3, stride)[0], H))
    cases.append((2, int(rng.integers(5, 12))))  # two rows: both ends of the formula at once
    for Hk, H in cases:
        run = run_learner(fn, (Hk, H), _helpers())
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: "
                                       f"write the formula yourself.", "cheat", show_solution, with_hint=False)
        if run.error is not None:
            return verdict(key, False, f"for Hk={Hk}, H={H} your function raised {type(run.error).__name__}: "
                                       f"{run.error}", "raised", show_solution)
        try:
            got = as_tensor_result(run.result, (Hk,), f"{Hk} pixel rows").numpy()
        except BadAnswer as err:
            return garbage(key, f"for Hk={Hk}, H={H} {err}", show_solution)
        want = _seed(Hk, H)
        if not close(got, want, 4):
            name, text = _diagnose(got, want, Hk, H, "seed")
            return verdict(key, False, f"for Hk={Hk}, H={H}: {text}", name, show_solution)
    return verdict(key, True, f"your rows equal the seed's on {len(cases)} grids you had not seen "
                              f"(Hk from {min(c[0] for c in cases)} to {max(c[0] for c in cases)}).",
                   show_solution=show_solution)
