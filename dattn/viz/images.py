"""The course's images: a photograph, a few generated scenes, and the conversions the plots need.

Names known to ``load_image``: ``"grace_hopper"`` (matplotlib's sample photograph) and the stem of every PNG
in the repository's ``assets/`` folder. ``synthetic_scene`` draws a display scene with numpy alone; the
trainable data generator of notebook 6 lives in ``dattn.data``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.cbook as cbook
import matplotlib.image as mpimg
import numpy as np
import torch
from einops import rearrange

import dattn

ASSETS_DIR = Path(dattn.__file__).resolve().parents[1] / "assets"
PHOTO = "grace_hopper"
SCENE_SEEDS = (0, 1)


def assets_dir() -> Path:
    """The repository's ``assets/`` folder (it may be absent in an installed copy of the package)."""
    return ASSETS_DIR


def list_images() -> list[str]:
    """Names ``load_image`` accepts: the photograph first, then the scenes ``assets/scene_*.png`` by name
    (other PNGs there are figures of the README, not inputs)."""
    names = [PHOTO]
    if ASSETS_DIR.is_dir():
        names += sorted(p.stem for p in ASSETS_DIR.glob("scene_*.png"))
    return names


def _to_float_rgb(a: np.ndarray) -> np.ndarray:
    """uint8 or float image, gray / RGB / RGBA -> float32 (H, W, 3) in [0, 1]."""
    a = np.asarray(a)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    return np.clip(a[..., :3], 0.0, 1.0)


def _photo_path() -> Path:
    try:
        return Path(cbook.get_sample_data(f"{PHOTO}.jpg", asfileobj=False))
    except (OSError, ValueError):  # matplotlib built without its sample data: use the assets copy
        return ASSETS_DIR / f"{PHOTO}.jpg"


def load_image(name: str) -> np.ndarray:
    """The image called ``name`` (see ``list_images``) as a float32 (H, W, 3) array in [0, 1]."""
    path = _photo_path() if name == PHOTO else ASSETS_DIR / f"{name}.png"
    if name not in list_images() or not path.is_file():
        raise ValueError(f"no image called {name!r} (looked for {path}); known images: {list_images()}")
    return _to_float_rgb(mpimg.imread(path))


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array in [0, 1] -> float32 tensor (1, 3, H, W)."""
    a = _to_float_rgb(image)
    return rearrange(torch.from_numpy(np.ascontiguousarray(a)), "h w c -> 1 c h w")


# ----------------------------------------------------------------------------------------------------------
# A simple scene for display: a few coloured shapes on a textured background, numpy only.
# ----------------------------------------------------------------------------------------------------------
PALETTE = np.array(
    [[0.84, 0.37, 0.0], [0.0, 0.45, 0.70], [0.90, 0.62, 0.0], [0.0, 0.62, 0.45], [0.80, 0.47, 0.65],
     [0.95, 0.90, 0.25], [0.34, 0.71, 0.91]],
    dtype=np.float32,
)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Soft stripes plus fine noise on a muted base colour: (size, size, 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 9)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    base = rng.uniform(0.35, 0.6, size=3).astype(np.float32)
    noise = rng.normal(0, 0.03, size=(size, size, 1)).astype(np.float32)
    return base * (0.8 + 0.2 * stripes[..., None]) + noise


def _shape_mask(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Boolean (size, size) mask of one circle, rectangle or triangle at a random place."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(0.08, 0.18) * size
    cy, cx = rng.uniform(r, size - r, size=2)
    if kind == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if kind == "rectangle":
        h, w = rng.uniform(0.6, 1.0, size=2) * r
        return (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= w)
    # triangle pointing up: inside the three half-planes
    t = (yy - (cy - r)) / (2 * r)  # 0 at the apex, 1 at the base
    return (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * r)


def synthetic_scene(seed: int = 0, size: int = 128, n_shapes: int | None = None) -> np.ndarray:
    """A (size, size, 3) float32 scene in [0, 1]: 3-5 coloured shapes on a striped, slightly noisy ground."""
    if size < 8:
        raise ValueError(f"size ({size}) must be at least 8 pixels")
    rng = np.random.default_rng(seed)
    img = _background(rng, size)
    n = int(rng.integers(3, 6)) if n_shapes is None else n_shapes
    for k in range(n):
        kind = ("circle", "rectangle", "triangle")[int(rng.integers(0, 3))]
        mask = _shape_mask(kind, rng, size)
        img[mask] = PALETTE[(seed + k) % len(PALETTE)] * rng.uniform(0.9, 1.05)
        edge = mask ^ _erode(mask)
        img[edge] *= 0.55  # a dark outline, so that edges are visible features
    return np.clip(img, 0.0, 1.0)


def _erode(mask: np.ndarray) -> np.ndarray:
    """One-pixel binary erosion with a 4-neighbourhood (numpy only)."""
    m = np.pad(mask, 1)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def write_assets(folder: Path | str | None = None, size: int = 160) -> list[Path]:
    """Write the generated scenes and a copy of the photograph into ``assets/``; return the written paths.

    ``assets/README.md`` (hand-written) records where each file comes from.
    """
    folder = Path(folder) if folder is not None else ASSETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in SCENE_SEEDS:
        path = folder / f"scene_{seed}.png"
        mpimg.imsave(path, synthetic_scene(seed, size))
        written.append(path)
    photo = folder / f"{PHOTO}.jpg"
    source = _photo_path()
    if source.resolve() != photo.resolve():
        shutil.copyfile(source, photo)
    written.append(photo)
    return written


if __name__ == "__main__":
    for p in write_assets():
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KB)")
