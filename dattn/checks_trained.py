"""Exercise checker of notebook 6: predict the fixed grid's accuracy from geometry alone.

The fixed-grid model reads each key at its reference point. With a per-pixel stem a key tells only what its
bilinear read contains, so the model can name the object's colour only in scenes where some reference
point's read touches the object; elsewhere it can only guess, right one time in ``n_classes``. The
prediction is ``p + (1 - p) / n_classes`` with ``p`` the share of scenes whose object some read touches.

Like every checker of the course: it accepts the answer at the precision the notebook prints (3 decimals),
says what the likely mistake is, never prints the expected value, and shows a solution only when asked
(``check_fixed_accuracy(..., show_solution=True)`` or ``fixed_accuracy_solution()``).
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from .data import Scenes
from .geometry import norm_to_pixel, reference_points
from .offsets import key_grid_size

TOLERANCE = 6e-4  # three printed decimals, rounded

SOLUTION = '''\
ref = reference_grid_px(size, stride)                     # (K, 2) (y, x) image pixels of the K keys
y0, x0 = ref[:, 0].floor().long(), ref[:, 1].floor().long()
touched = torch.zeros(len(masks), dtype=torch.bool)
for dy in (0, 1):                                          # the read mixes the 4 pixels around the point,
    for dx in (0, 1):                                      # each with weight (1 - |y - py|) (1 - |x - px|)
        py, px = y0 + dy, x0 + dx
        w = (1 - (ref[:, 0] - py).abs()) * (1 - (ref[:, 1] - px).abs())
        ok = (w > 0) & (py >= 0) & (py < size) & (px >= 0) & (px < size)
        touched |= masks[:, py[ok], px[ok]].any(1)         # some key's read includes an object pixel
p = touched.float().mean().item()
predicted = p + (1 - p) / n_classes                       # the other scenes: a guess among n_classes
'''


def reference_grid_px(size: int, stride: int) -> torch.Tensor:
    """The reference points (K, 2) as (y, x) image pixels of a stride-``stride`` key grid on a size x size map
    with the scene models' settings (offset kernel = stride, centred convention, one feature per pixel),
    rounded to 1e-9 pixels so that a point on a pixel centre is exactly on it."""
    Hk, Wk = key_grid_size(size, size, stride, stride)
    ref = reference_points(Hk, Wk, size, size, "centered", dtype=torch.float64)  # (Hk, Wk, 2) normalized
    return torch.round(norm_to_pixel(ref, size).reshape(-1, 2) * 1e9) / 1e9


def _reads(ref: torch.Tensor, masks: torch.Tensor, nearest: bool) -> torch.Tensor:
    """Per scene, whether some point's read (its nearest pixel only, if ``nearest``) includes a mask pixel."""
    N, S = masks.shape[0], masks.shape[-1]
    hit = torch.zeros(N, dtype=torch.bool)
    for y, x in ref.tolist():
        if nearest:
            pix = [(math.floor(y + 0.5), math.floor(x + 0.5))]
        else:
            pix = [(py, px) for py in (math.floor(y), math.floor(y) + 1) for px in (math.floor(x), math.floor(x) + 1)
                   if (1 - abs(y - py)) * (1 - abs(x - px)) > 0]
        for py, px in pix:
            if 0 <= py < S and 0 <= px < S:
                hit |= masks[:, py, px]
    return hit


def _number(answer) -> float | None:
    """The answer as a float, or None (after one line saying why) for anything that is not one number."""
    if answer is None:
        print("Not yet: replace None with your predicted accuracy (a number between 0 and 1) and run the cell again.")
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        print(f"Not yet: the answer must be one number between 0 and 1, got {type(answer).__name__} {answer!r:.40}.")
        return None
    value = float(answer)
    if not math.isfinite(value):
        print(f"Not yet: the answer must be a finite number between 0 and 1, got {value}.")
        return None
    return value


def fixed_accuracy_solution() -> None:
    """Print a solution of the exercise."""
    print(SOLUTION)


def check_fixed_accuracy(answer, stride: int, scenes: Scenes, n_classes: int = 6, show_solution: bool = False) -> bool:
    """Check a predicted accuracy of the fixed-grid model at this key-grid ``stride`` on these ``scenes``."""
    if show_solution:
        fixed_accuracy_solution()
    value = _number(answer)
    if value is None:
        return False
    masks, S = scenes.masks, scenes.masks.shape[-1]
    ref = reference_grid_px(S, stride)
    p = _reads(ref, masks, nearest=False).float().mean().item()
    want = p + (1 - p) / n_classes
    if abs(value - want) <= TOLERANCE:
        print(f"Correct! With a stride-{stride} grid ({len(ref)} keys per group), some key's read touches the object "
              f"in a share p of the scenes, and the model guesses in the rest.")
        return True
    if not 0 <= value <= 1:
        print(f"Not yet: an accuracy lies between 0 and 1, got {value:g}.")
        return False
    p_near = _reads(ref, masks, nearest=True).float().mean().item()
    other = {s: _reads(reference_grid_px(S, s), masks, nearest=False).float().mean().item()
             for s in (2, 3, 4, 6, 8, 12) if s != stride and s <= S}
    if abs(value - p) <= TOLERANCE:
        msg = ("that is p, the share of scenes where a key reads the object. In the other scenes the model "
               f"still guesses right one time in {n_classes}: add that.")
    elif abs(value - (p_near + (1 - p_near) / n_classes)) <= TOLERANCE or abs(value - p_near) <= TOLERANCE:
        msg = ("you counted a key only when its nearest pixel is on the object. A bilinear read at y = 2.5 mixes "
               "rows 2 and 3: every pixel with a weight above 0 counts.")
    elif any(abs(value - (q + (1 - q) / n_classes)) <= TOLERANCE for q in other.values()):
        msg = f"that is the prediction for another stride: build the reference grid with stride={stride}."
    elif abs(value - (1 - p)) <= TOLERANCE or abs(value - ((1 - p) + p / n_classes)) <= TOLERANCE:
        msg = "p and 1 - p are swapped: p is the share of scenes where some key's read DOES touch the object."
    else:
        msg = (f"too {'high' if value > want else 'low'}. Find, for each scene, whether any reference point's read "
               f"includes an object pixel; p is the share of such scenes; predicted = p + (1 - p) / {n_classes}.")
    print(f"Not yet: {msg} (solution: check_fixed_accuracy(..., show_solution=True))")
    return False
