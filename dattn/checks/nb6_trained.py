"""Notebook 6: predict the fixed grid's accuracy from geometry alone.

The fixed-grid model reads each key at its reference point. With a per-pixel stem a key tells only what its
bilinear read contains, so the model can name the object's colour only in scenes where some reference
point's read touches the object; elsewhere it can only guess, right one time in ``n_classes``. The
prediction is ``p + (1 - p) / n_classes`` with ``p`` the share of scenes whose object some read touches.
"""

from __future__ import annotations

import math

import torch

from ..data import Scenes
from ..geometry import norm_to_pixel, reference_points
from ..offsets import key_grid_size
from .core import BadAnswer, Verdict, as_number, close, garbage, register, verdict

DECIMALS = 3  # the notebook prints accuracies with three decimals

register(
    "fixed_accuracy", "06",
    hint="for each scene, find whether any reference point's bilinear read includes an object pixel (every pixel "
         "with a weight above 0 counts); p is the share of such scenes; the prediction is p + (1 - p) / n_classes.",
    solution="""\
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
predicted = p + (1 - p) / n_classes                       # the other scenes: a guess among n_classes""",
)


def reference_grid_px(size: int, stride: int) -> torch.Tensor:
    """The reference points (K, 2) as (y, x) image pixels of a stride-``stride`` key grid on a size x size map
    with the scene models' settings (offset kernel = stride, centred convention, one feature per pixel),
    rounded to 1e-9 pixels so that a point on a pixel centre is exactly on it."""
    Hk, Wk = key_grid_size(size, size, stride, stride)
    ref = reference_points(Hk, Wk, size, size, "centered", dtype=torch.float64)  # (Hk, Wk, 2) normalized
    return torch.round(norm_to_pixel(ref, size).reshape(-1, 2) * 1e9) / 1e9


def touched_share(ref: torch.Tensor, masks: torch.Tensor, nearest: bool = False) -> float:
    """The share of scenes in which some point's read (only its nearest pixel, if ``nearest``) includes a mask
    pixel; ``ref`` (K, 2) image pixels (y, x), ``masks`` (N, S, S) bool."""
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
    return hit.float().mean().item()


def check_fixed_accuracy(answer, stride: int, scenes: Scenes, n_classes: int = 6, *,
                         show_solution: bool = False) -> Verdict:
    """Exercise ``fixed_accuracy``: the fixed-grid model's accuracy at this key-grid ``stride`` on ``scenes``,
    predicted from geometry alone (three decimals)."""
    key = "fixed_accuracy"
    try:
        value = as_number(answer, "one accuracy between 0 and 1")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    masks, S = scenes.masks, scenes.masks.shape[-1]
    ref = reference_grid_px(S, stride)
    p = touched_share(ref, masks)
    want = p + (1 - p) / n_classes
    if close(value, want, DECIMALS):
        return verdict(key, True, f"with a stride-{stride} grid ({len(ref)} keys per group), some key's read "
                                  "touches the object in a share p of the scenes, and the model guesses in the rest.",
                       show_solution=show_solution)
    if not 0 <= value <= 1:
        return verdict(key, False, f"an accuracy lies between 0 and 1, got {value:g}.", "range", show_solution)
    p_near = touched_share(ref, masks, nearest=True)
    others = [touched_share(reference_grid_px(S, s), masks) for s in (2, 3, 4, 6, 8, 12) if s != stride and s <= S]
    if close(value, p, DECIMALS):
        msg, mistake = ("that is p, the share of scenes where a key reads the object. In the other scenes the model "
                        f"still guesses right one time in {n_classes}: add that."), "no_guess"
    elif close(value, p_near + (1 - p_near) / n_classes, DECIMALS) or close(value, p_near, DECIMALS):
        msg, mistake = ("you counted a key only when its nearest pixel is on the object. A bilinear read at y = 2.5 "
                        "mixes rows 2 and 3: every pixel with a weight above 0 counts."), "nearest"
    elif any(close(value, q + (1 - q) / n_classes, DECIMALS) for q in others):
        msg, mistake = f"that is the prediction for another stride: build the reference grid with stride={stride}.", \
            "stride"
    elif close(value, 1 - p, DECIMALS) or close(value, (1 - p) + p / n_classes, DECIMALS):
        msg, mistake = ("p and 1 - p are swapped: p is the share of scenes where some key's read DOES touch the "
                        "object."), "swapped"
    else:
        msg, mistake = f"too {'high' if value > want else 'low'}.", "other"
    return verdict(key, False, msg, mistake, show_solution)
