"""Exercise checkers of notebook 7 (does the fusion help?): each prints one verdict line, says what looks wrong
without printing the expected value, and returns True or False. ``solution(name)`` shows a solution on request.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .yolo.detector import summarize, verdict


def _verdict(ok: bool, message: str) -> bool:
    print(("Correct! " if ok else "Not yet: ") + message)
    return ok


def _number(answer: Any) -> float | None:
    """A finite real number from an int, float, numpy or 0-d tensor answer; None (after one line) otherwise."""
    if answer is None:
        print("Not yet: replace None with your answer and run the cell again.")
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, np.ndarray) and answer.size == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        print(f"Not yet: expected a number, got {type(answer).__name__} {answer!r:.60}.")
        return None
    value = float(answer)
    if not math.isfinite(value):
        print(f"Not yet: expected a finite number, got {value}.")
        return None
    return value


# ----------------------------------------------------------------------------------------------------------
# Exercise 1: feature-map positions to input-image pixels
# ----------------------------------------------------------------------------------------------------------
def _reference_to_image(p: np.ndarray, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    s = np.array([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return s * (p + 0.5) - 0.5


# unseen cases: other map sizes, strides that differ per axis, fractional and off-map positions
_CASES = [
    (np.array([[0.0, 0.0], [3.0, 5.0], [2.25, -0.4]]), (4, 6), (128, 96)),
    (np.array([[1.5, 7.0], [-0.5, 0.0], [9.0, 3.75]]), (10, 8), (160, 256)),
    (np.array([[0.0, 1.0], [5.0, 2.0]]), (6, 3), (48, 48)),
]


def _mistakes(p: np.ndarray, map_hw: tuple[int, int], image_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    s = np.array([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    stretch = np.array([(image_hw[0] - 1) / max(map_hw[0] - 1, 1), (image_hw[1] - 1) / max(map_hw[1] - 1, 1)])
    right = _reference_to_image(p, map_hw, image_hw)
    return {
        "corner": s * p,
        "half pixel": s * (p + 0.5),
        "stretch": stretch * p,
        "swapped": right[:, ::-1],
        "one stride": s[0] * (p + 0.5) - 0.5,
    }


_HINTS = {
    "corner": "you put map cell 0 on image pixel 0, its corner. Cell i covers the image pixels s*i to s*i + s - 1: "
              "draw it at the centre of that block.",
    "half pixel": "half a pixel off: image pixel j is centred on the integer j (it spans j - 0.5 .. j + 0.5), so the "
                  "centre of a block of s pixels starting at pixel a is a + (s - 1) / 2.",
    "stretch": "that is the align_corners stretch of notebooks 1-4 (first cell on pixel 0, last cell on the last "
               "pixel). A strided CNN's map tiles the image: every cell covers s x s pixels.",
    "swapped": "y and x are swapped: positions are (y, x) pairs, and the stride of y is image height / map height.",
    "one stride": "one stride for both axes: when the image is not square the strides differ; compute y's from the "
                  "heights and x's from the widths.",
}


def check_to_image(fn: Callable) -> bool:
    """Exercise 1: ``fn(points_yx, map_hw, image_hw)`` -> image pixels of (N, 2) map positions (y, x).

    Checked on maps, images and positions the notebook does not show.
    """
    if fn is None:
        print("Not yet: replace None with your function and run the cell again.")
        return False
    if not callable(fn):
        return _verdict(False, f"expected a function fn(points_yx, map_hw, image_hw), got {type(fn).__name__}.")
    for p, map_hw, image_hw in _CASES:
        where = f"for a {map_hw[0]}x{map_hw[1]} map of a {image_hw[0]}x{image_hw[1]} image"
        try:
            got = fn(torch.tensor(p, dtype=torch.float32), map_hw, image_hw)
            if got is None:
                return _verdict(False, "your function returned None: write its body (return the image pixels).")
            got = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
        except Exception as e:  # the learner's code: report it in one line
            return _verdict(False, f"{where} your function raised {type(e).__name__}: {e}")
        if got.shape != p.shape:
            return _verdict(False, f"{where} expected one (y, x) pair per point, shape {p.shape}, got {got.shape}.")
        if not np.isfinite(got).all():
            return _verdict(False, f"{where} your function returned NaN or inf.")
        want = _reference_to_image(p, map_hw, image_hw)
        if np.allclose(got, want, atol=1e-4):
            continue
        for name, wrong in _mistakes(p, map_hw, image_hw).items():
            if np.allclose(got, wrong, atol=1e-4):
                return _verdict(False, f"{where}: " + _HINTS[name])
        return _verdict(False, f"{where} some positions are off by up to {np.abs(got - want).max():.3g} pixels.")
    return _verdict(True, "cell centres land on the centres of their s x s blocks, on every map and image tried.")


# ----------------------------------------------------------------------------------------------------------
# Exercise 2: the honest comparison
# ----------------------------------------------------------------------------------------------------------
def check_map_difference(answer: Any, records: list[dict], metric: str = "mAP50") -> bool:
    """Exercise 2: mean mAP50 of C3_DAttention minus mean mAP50 of stock, over the seeds of the records.

    Accepted at the table's precision: computed from means rounded to 3 decimals, the difference can be off by 0.001.
    """
    value = _number(answer)
    if value is None:
        return False
    want = verdict(records, metric)["difference"]
    tol = 1e-3 + 1e-9
    if abs(value - want) <= tol:
        return _verdict(True, f"the difference of the means over {len(records) // 2} seeds each; compare it with the "
                              "spread between seeds before you call it an improvement.")
    if abs(value + want) <= tol:
        return _verdict(False, "the sign is flipped: the question is C3_DAttention minus stock.")
    other = "mAP50-95" if metric == "mAP50" else "mAP50"
    if abs(value - verdict(records, other)["difference"]) <= tol:
        return _verdict(False, f"that is the difference in {other}; the question asks for {metric}.")
    by = {r["kind"]: {} for r in records}
    for r in records:
        by[r["kind"]][r["seed"]] = r["metrics"][metric]
    for seed in set(by["stock"]) & set(by["c3_dattention"]):
        if abs(value - (by["c3_dattention"][seed] - by["stock"][seed])) <= tol:
            return _verdict(False, f"that is the difference for seed {seed} alone: average each model over all its "
                                   "seeds first.")
    rows = {r["kind"]: r[metric] for r in summarize(records)}
    if abs(value - sum(rows["c3_dattention"]["values"]) + sum(rows["stock"]["values"])) <= tol:
        return _verdict(False, "that is the difference of the sums over seeds: divide by the number of seeds.")
    return _verdict(False, f"not the difference of the two means of {metric} (off by more than 0.001).")


_SOLUTIONS = {
    "to_image": '''def to_image(points_yx, map_hw, image_hw):
    stride = torch.tensor([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return stride * (points_yx + 0.5) - 0.5  # centre of the stride x stride block of each cell''',
    "map_difference": '''rows = {r["kind"]: r["mAP50"]["mean"] for r in summarize(records)}
answer = rows["c3_dattention"] - rows["stock"]''',
}


def solution(name: str) -> None:
    """Print a solution of exercise ``name`` ("to_image" or "map_difference")."""
    if name not in _SOLUTIONS:
        print(f"No exercise called {name!r}; the exercises are {sorted(_SOLUTIONS)}.")
        return
    print(_SOLUTIONS[name])
