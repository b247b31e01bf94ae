"""Notebook 7: map positions to image pixels, and what two seeds alone would have said about the fusion."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .core import (
    BadAnswer,
    Verdict,
    as_number,
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

register(
    "to_image", "07",
    hint="a strided CNN tiles the image: map cell i covers the image pixels s*i to s*i + s - 1 (s = image size / "
         "map size, per axis), and a block of pixels from a to b has its centre at (a + b) / 2.",
    solution="""\
def to_image(points_yx, map_hw, image_hw):
    stride = torch.tensor([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])  # (sy, sx) pixels per cell
    return stride * (points_yx + 0.5) - 0.5  # cell i: pixels s*i .. s*i + s - 1, centre s*i + (s - 1) / 2""",
)
register(
    "two_seeds", "07",
    hint="take the mAP50 of seeds 0 and 1 only from the table's 'mAP50 per seed' column, average each model over "
         "those two seeds, then subtract: C3_DAttention's mean minus stock's mean.",
    solution="""\
per_seed = {r["kind"]: {} for r in records}
for r in records:
    per_seed[r["kind"]][r["seed"]] = r["metrics"]["mAP50"]
mean = {kind: (v[0] + v[1]) / 2 for kind, v in per_seed.items()}   # seeds 0 and 1 only
print(f"{mean['c3_dattention'] - mean['stock']:+.3f}")""",
)


# ----------------------------------------------------------------------------------------------------------
# Exercise to_image: feature-map positions to input-image pixels
# ----------------------------------------------------------------------------------------------------------
def _to_image(p: np.ndarray, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    s = np.array([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return s * (p + 0.5) - 0.5


def _to_image_mistakes(p: np.ndarray, map_hw: tuple[int, int], image_hw: tuple[int, int]
                       ) -> list[tuple[str, np.ndarray, str]]:
    s = np.array([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    stretch = np.array([(image_hw[0] - 1) / max(map_hw[0] - 1, 1), (image_hw[1] - 1) / max(map_hw[1] - 1, 1)])
    right = _to_image(p, map_hw, image_hw)
    return [
        ("corner", s * p, "you put map cell 0 on image pixel 0, its corner. Cell i covers the image pixels s*i to "
                          "s*i + s - 1: draw it at the centre of that block."),
        ("half_pixel", s * (p + 0.5), "half a pixel off: image pixel j is centred on the integer j (it spans "
                                      "j - 0.5 .. j + 0.5), so a block of s pixels from pixel a has its centre at "
                                      "a + (s - 1) / 2."),
        ("stretch", stretch * p, "that is the align_corners stretch of notebooks 1-4 (first cell on pixel 0, last "
                                 "cell on the last pixel). A strided CNN's map tiles the image: every cell covers "
                                 "s x s pixels."),
        ("swapped", right[:, ::-1].copy(), "y and x are swapped: positions are (y, x) pairs, and the stride of y is "
                                           "image height / map height."),
        ("one_stride", s[0] * (p + 0.5) - 0.5, "one stride for both axes: when the image is not square the strides "
                                               "differ; compute y's from the heights and x's from the widths."),
    ]


def _to_image_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, tuple[int, int], tuple[int, int]]]:
    """Maps, images and positions made at check time: strides that differ per axis, fractional and off-map
    positions; the notebook's own 8 x 8 map of a 256 x 256 image is never among them."""
    cases = []
    for _ in range(3):
        map_hw = (int(rng.integers(3, 11)), int(rng.integers(3, 11)))
        strides = rng.choice([4, 8, 16, 32], size=2, replace=False)  # y and x strides always differ
        image_hw = (int(map_hw[0] * strides[0]), int(map_hw[1] * strides[1]))
        n = int(rng.integers(2, 5))
        p = np.round(rng.uniform(-1.0, 1.0, size=(n, 2)) * np.array(map_hw), 2)  # some off the map
        p[0] = 0.0  # the first cell's centre
        cases.append((p, map_hw, image_hw))
    return cases


def _to_image_helpers() -> dict[str, Callable]:
    try:
        from ..viz import any_model
    except ImportError:  # no matplotlib: the helpers cannot be called either
        return {}
    return {"dattn.viz.any_model.map_to_input": any_model.map_to_input,
            "dattn.viz.any_model.ModuleTrace.to_image": any_model.ModuleTrace.to_image,
            "dattn.viz.any_model.ModuleTrace.keys_px": any_model.ModuleTrace.keys_px}


def check_to_image(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``to_image``: ``fn(points_yx (N, 2) tensor, map_hw, image_hw)`` returns the input-image pixels
    (y, x) of map positions. Checked on maps, images and positions made at check time, with dattn's own
    mapping switched off."""
    key = "to_image"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    cases = _to_image_cases(np.random.default_rng(fresh_seed(seed)))
    for p, map_hw, image_hw in cases:
        where = f"for a {map_hw[0]}x{map_hw[1]} map of a {image_hw[0]}x{image_hw[1]} image"
        run = run_learner(fn, (torch.tensor(p, dtype=torch.float32), map_hw, image_hw), _to_image_helpers())
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: write "
                                       f"the mapping yourself.", "cheat", show_solution, with_hint=False)
        if run.error is not None:
            return verdict(key, False, f"{where}, your function raised {type(run.error).__name__}: {run.error}.",
                           "raised", show_solution)
        try:
            got = as_tensor_result(run.result, p.shape, "one (y, x) pair per point").numpy()
        except BadAnswer as err:
            return garbage(key, f"{where}: {err}", show_solution)
        want = _to_image(p, map_hw, image_hw)
        if close(got, want, 4):
            continue
        found = first_match(got, [m for m in _to_image_mistakes(p, map_hw, image_hw) if not close(m[1], want, 4)], 4)
        if found:
            return verdict(key, False, f"{where}: {found[1]}", found[0], show_solution)
        wrong = int(np.sum(np.any(np.abs(got - want) > tolerance(4), axis=1)))
        return verdict(key, False, f"{where}, {wrong} of your {len(p)} points are elsewhere.", "other", show_solution)
    return verdict(key, True, f"cell centres land on the centres of their blocks, on {len(cases)} maps and images "
                              f"you had not seen (non-square strides, positions off the map).",
                   show_solution=show_solution)


# ----------------------------------------------------------------------------------------------------------
# Exercise two_seeds: the comparison a two-seed study would have made
# ----------------------------------------------------------------------------------------------------------
DECIMALS = 3  # the table shows each seed's mAP50 with three decimals


def _per_seed(records: Sequence[dict[str, Any]], metric: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in records:
        out.setdefault(r["kind"], {})[int(r["seed"])] = float(r["metrics"][metric])
    return out


def _mean_difference(by: dict[str, dict[int, float]], seeds: Sequence[int]) -> float:
    return (statistics.fmean(by["c3_dattention"][s] for s in seeds)
            - statistics.fmean(by["stock"][s] for s in seeds))


def check_two_seeds(answer, records: Sequence[dict[str, Any]], seeds: Sequence[int] = (0, 1), *,
                    show_solution: bool = False) -> Verdict:
    """Exercise ``two_seeds``: mean mAP50 of C3_DAttention minus mean mAP50 of stock over ``seeds`` only.

    Accepted from the table's values at three decimals: the means of rounded values and a rounded answer can be
    off by up to 0.0015."""
    key = "two_seeds"
    try:
        got = as_number(answer, "one number (C3_DAttention's mean mAP50 minus stock's)")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    by, by_95 = _per_seed(records, "mAP50"), _per_seed(records, "mAP50-95")
    want = _mean_difference(by, seeds)
    slack = 0.001  # two means of values rounded to 0.001 each: their difference moves by up to 0.001
    if abs(got - want) <= tolerance(DECIMALS) + slack:
        return verdict(key, True, f"{got:+.3f} over seeds {', '.join(map(str, seeds))} alone. Compare its sign with "
                                  f"the difference over all seeds printed above the exercise.",
                       show_solution=show_solution)
    all_seeds = sorted(set(by["stock"]) & set(by["c3_dattention"]))
    candidates = [
        ("sign", -want, "the sign is flipped: the question is C3_DAttention minus stock."),
        ("all_seeds", _mean_difference(by, all_seeds),
         f"that is the difference over all {len(all_seeds)} seeds (printed above); the exercise keeps seeds "
         f"{', '.join(map(str, seeds))} only."),
        ("metric", _mean_difference(by_95, seeds), "that is the difference in mAP50-95; the question asks for mAP50."),
        *[("one_seed", by["c3_dattention"][s] - by["stock"][s],
           f"that is the difference for seed {s} alone: average each model over the seeds first.") for s in seeds],
        ("sum", len(seeds) * want, "that is the difference of the sums over seeds: divide by the number of seeds."),
    ]
    candidates = [c for c in candidates if abs(c[1] - want) > tolerance(DECIMALS) + 2 * slack]
    found = first_match(np.float64(got), [(n, np.float64(v), t) for n, v, t in candidates], DECIMALS)
    if found is None:  # the same mistakes from the table's rounded values
        found = next(((n, t) for n, v, t in candidates if abs(got - v) <= tolerance(DECIMALS) + slack), None)
    if found:
        return verdict(key, False, found[1], found[0], show_solution)
    side = "high" if got > want else "low"
    return verdict(key, False, f"{got:+.4f} is too {side} by more than the table's rounding can explain.", "other",
                   show_solution)
