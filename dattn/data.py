"""Synthetic scenes: a few small solid shapes on a cluttered, textured background.

Every object is a disc, a square or an upward triangle of integer centre and integer "radius" ``r``, so its
rasterisation (pixel centres at integer coordinates) has the exact box ``(cy - r, cx - r, cy + r, cx + r)``,
painted in one of six saturated palette colours (``COLOURS``), jittered.
Objects never overlap, so each object's mask is its whole shape. The background is a sum of random colour
gratings and smooth colour noise: clutter that says nothing about the objects.

Everything is vectorised over scenes with numpy; a scene set is a pure function of ``(n, size, seed, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

SHAPES: tuple[str, ...] = ("disc", "square", "triangle")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan")
PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32)


@dataclass
class Scenes:
    """A batch of N scenes of size S with up to K objects each. Absent object slots hold -1 / False.

    Boxes are inclusive pixel indices ``(y0, x0, y1, x1)``; centres are ``(y, x)`` pixels.
    """

    images: torch.Tensor  # (N, 3, S, S) float32 in [0, 1]
    masks: torch.Tensor  # (N, S, S) bool, union of the object masks
    object_masks: torch.Tensor  # (N, K, S, S) bool
    boxes: torch.Tensor  # (N, K, 4) int64
    centres: torch.Tensor  # (N, K, 2) int64
    radii: torch.Tensor  # (N, K) int64
    shapes: torch.Tensor  # (N, K) int64 index into SHAPES
    colour_ids: torch.Tensor  # (N, K) int64 index into COLOURS
    colours: torch.Tensor  # (N, K, 3) float32, the exact RGB drawn
    present: torch.Tensor  # (N, K) bool

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def counts(self) -> torch.Tensor:
        """Number of objects per scene: (N,)."""
        return self.present.sum(1)

    @property
    def labels(self) -> torch.Tensor:
        """Shape of each scene's first object: (N,) int64 (a target for single-object scenes)."""
        return self.shapes[:, 0]

    @property
    def colour_labels(self) -> torch.Tensor:
        """Colour name index of each scene's first object: (N,) int64 (a target for single-object scenes)."""
        return self.colour_ids[:, 0]

    @property
    def coverage(self) -> float:
        """Share of all pixels that lie on an object."""
        return self.masks.float().mean().item()

    def subset(self, index: slice | Sequence[int] | torch.Tensor) -> Scenes:
        """The scenes at ``index`` (a slice, a list of ints or an index tensor)."""
        return Scenes(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def _background(rng: np.random.Generator, n: int, size: int, contrast: float) -> np.ndarray:
    """Random colour gratings plus blocky colour patches and pixel noise around mid grey: (N, 3, S, S)."""
    n_gratings, f32 = 3, np.float32
    ax = np.arange(size, dtype=f32)
    angle = rng.uniform(0, np.pi, (n, n_gratings, 1)).astype(f32)
    freq = rng.uniform(2.0, 8.0, (n, n_gratings, 1)).astype(f32) * f32(2 * np.pi / size)  # 2..8 periods
    phase = rng.uniform(0, 2 * np.pi, (n, n_gratings, 1)).astype(f32)
    # sin(u x + v y + phase) = sin(u x) cos(v y + phase) + cos(u x) sin(v y + phase), separable in y and x
    ux, vy = freq * np.cos(angle) * ax, freq * np.sin(angle) * ax + phase  # (N, G, S) each
    waves = np.einsum("ngy,ngx->ngyx", np.cos(vy), np.sin(ux)) + np.einsum("ngy,ngx->ngyx", np.sin(vy), np.cos(ux))
    colour = rng.uniform(-1, 1, (n, n_gratings, 3)).astype(f32)
    img = np.einsum("ngyx,ngc->ncyx", waves, colour / n_gratings)  # (N, 3, S, S)
    cells = -(-size // 8)
    coarse = rng.uniform(-0.5, 0.5, (n, 3, cells, 1, cells, 1)).astype(f32)
    img += np.broadcast_to(coarse, (n, 3, cells, 8, cells, 8)).reshape(n, 3, cells * 8, cells * 8)[
        ..., :size, :size]  # blocky colour patches, 8 x 8 pixels
    img += rng.standard_normal(img.shape, dtype=f32) * f32(0.3)  # pixel noise
    return f32(0.5) + f32(contrast) * img


def _place(
    rng: np.random.Generator, n: int, k: int, size: int, radius: tuple[int, int], gap: int, tries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping integer centres (N, K, 2), radii (N, K) and a presence mask (N, K).

    Object j takes the first of ``tries`` random candidates whose box keeps ``gap`` pixels from every box
    already placed; when no candidate fits, the slot stays empty.
    """
    radii = rng.integers(radius[0], radius[1] + 1, (n, k))
    centres = np.zeros((n, k, 2), dtype=np.int64)
    present = np.zeros((n, k), dtype=bool)
    for j in range(k):
        r = radii[:, j, None]  # (N, 1)
        cand = rng.integers(0, 1 << 30, (n, tries, 2)) % (size - 2 * r[..., None]) + r[..., None]  # (N, T, 2)
        ok = np.ones((n, tries), dtype=bool)
        for i in range(j):
            dist = np.abs(cand - centres[:, None, i]).max(-1)  # (N, T) Chebyshev distance
            ok &= ~present[:, i, None] | (dist > r + radii[:, i, None] + gap)
        first = ok.argmax(1)  # (N,)
        present[:, j] = ok[np.arange(n), first]
        centres[:, j] = cand[np.arange(n), first]
    return centres, radii, present


def _rasterise(centres: np.ndarray, radii: np.ndarray, shapes: np.ndarray, size: int) -> np.ndarray:
    """Masks (N, K, S, S) of every object slot, whatever its presence."""
    ax = np.arange(size)
    dy = ax[None, None, :, None] - centres[..., 0, None, None]  # (N, K, S, 1)
    dx = ax[None, None, None, :] - centres[..., 1, None, None]  # (N, K, 1, S)
    r = radii[..., None, None]  # (N, K, 1, 1)
    disc = dy**2 + dx**2 <= r**2
    square = (np.abs(dy) <= r) & (np.abs(dx) <= r)
    triangle = (np.abs(dy) <= r) & (2 * np.abs(dx) <= dy + r)  # apex (cy - r, cx), base row cy + r
    s = shapes[..., None, None]
    return np.where(s == 0, disc, np.where(s == 1, square, triangle))


def make_scenes(
    n: int, size: int = 64, seed: int | Sequence[int] = 0, n_objects: tuple[int, int] = (1, 1),
    radius: tuple[int, int] = (3, 6), contrast: float = 0.25, gap: int = 2,
) -> Scenes:
    """``n`` random scenes of ``size`` x ``size`` pixels with ``n_objects[0]..n_objects[1]`` objects each.

    ``seed`` is anything ``np.random.default_rng`` takes (an int or a list of ints, e.g. ``[seed, step]``).
    Every scene has at least one object; a slot after the first stays empty when no candidate fits.
    """
    lo, hi = n_objects
    if not 1 <= lo <= hi:
        raise ValueError(f"n_objects must satisfy 1 <= min <= max, got {n_objects}")
    if not 1 <= radius[0] <= radius[1] or 2 * radius[1] + 1 > size:
        raise ValueError(f"radius {radius} does not fit a {size}x{size} image")
    rng = np.random.default_rng(seed)
    images = _background(rng, n, size, contrast)
    centres, radii, present = _place(rng, n, hi, size, radius, gap, tries=32)
    wanted = np.arange(hi)[None] < rng.integers(lo, hi + 1, (n, 1))  # (N, K)
    present &= wanted  # the first placement never fails; later ones may, in crowded images
    shapes = rng.integers(0, len(SHAPES), (n, hi))
    colour_ids = rng.integers(0, len(COLOURS), (n, hi))
    colours = _object_colours(rng, colour_ids)
    obj = _rasterise(centres, radii, shapes, size) & present[..., None, None]  # (N, K, S, S)
    for j in range(hi):
        m = obj[:, j, None]  # (N, 1, S, S)
        images = np.where(m, colours[:, j, :, None, None], images)
    r = radii * present
    boxes = np.concatenate([centres - r[..., None], centres + r[..., None]], -1)  # (y0, x0, y1, x1)
    boxes = np.where(present[..., None], boxes, -1)
    return Scenes(
        images=torch.from_numpy(np.clip(images, 0, 1).astype(np.float32)),
        masks=torch.from_numpy(obj.any(1)),
        object_masks=torch.from_numpy(obj),
        boxes=torch.from_numpy(boxes.astype(np.int64)),
        centres=torch.from_numpy(np.where(present[..., None], centres, -1).astype(np.int64)),
        radii=torch.from_numpy(np.where(present, radii, -1).astype(np.int64)),
        shapes=torch.from_numpy(np.where(present, shapes, -1).astype(np.int64)),
        colour_ids=torch.from_numpy(np.where(present, colour_ids, -1).astype(np.int64)),
        colours=torch.from_numpy(colours.astype(np.float32)),
        present=torch.from_numpy(present),
    )


def _object_colours(rng: np.random.Generator, colour_ids: np.ndarray) -> np.ndarray:
    """RGB (N, K, 3) of palette colours, each channel jittered: on-channels in [0.8, 1], off ones in [0, 0.2]."""
    base = PALETTE[colour_ids]  # (N, K, 3)
    return np.where(base > 0, rng.uniform(0.8, 1.0, base.shape), rng.uniform(0.0, 0.2, base.shape))
