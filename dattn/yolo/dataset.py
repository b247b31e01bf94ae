"""A synthetic detection dataset in YOLO format, made on demand from ``dattn.data.make_scenes``.

Each image holds a few non-overlapping shapes (the classes: ``SHAPES``, i.e. disc, square, triangle) of varied
size and random colour on a cluttered background. ``make_scenes`` gives every object's exact box; a box of
inclusive pixel indices ``(y0, x0, y1, x1)`` covers the continuous extent ``[x0, x1 + 1) x [y0, y1 + 1)``
(pixel ``i`` spans ``[i, i + 1)``, YOLO's convention), so its label row is::

    class  (x0 + x1 + 1) / 2 / S  (y0 + y1 + 1) / 2 / S  (x1 - x0 + 1) / S  (y1 - y0 + 1) / S

The layout is YOLOv5's: ``images/{train,val}/*.png``, ``labels/{train,val}/*.txt`` and ``data.yaml``.
Scenes are generated in chunks of ``CHUNK`` images, chunk ``k`` of a split from the seed ``[seed, split, k]``,
so every image is a pure function of the spec and its index. ``dataset.json`` records the spec; ``ensure``
rebuilds only when it is missing or different.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import yaml

from ..data import SHAPES, Scenes, make_scenes

CHUNK = 16  # scenes generated at once (memory: masks of CHUNK x objects x S x S)
SPLITS = ("train", "val")
MANIFEST = "dataset.json"


@dataclass(frozen=True)
class DetectionSpec:
    """What a dataset holds: its image side, split sizes, objects per image, object radii and seed."""

    size: int = 256
    n_train: int = 1024
    n_val: int = 256
    n_objects: tuple[int, int] = (1, 6)
    radius: tuple[int, int] = (4, 28)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("size", "n_train", "n_val"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        object.__setattr__(self, "n_objects", tuple(int(v) for v in self.n_objects))
        object.__setattr__(self, "radius", tuple(int(v) for v in self.radius))

    def count(self, split: str) -> int:
        """Number of images of a split."""
        check_split(split)
        return self.n_train if split == "train" else self.n_val

    @classmethod
    def from_dict(cls, d: dict) -> DetectionSpec:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def split_scenes(spec: DetectionSpec, split: str, start: int = 0, stop: int | None = None) -> Scenes:
    """Scenes ``start..stop-1`` of a split (all by default), exactly as the dataset's files hold them."""
    n = spec.count(split)
    stop = n if stop is None else stop
    if not 0 <= start < stop <= n:
        raise ValueError(f"the {split} split has images 0..{n - 1}, asked for {start}..{stop - 1}")
    parts = []
    for k in range(start // CHUNK, (stop - 1) // CHUNK + 1):
        m = min(CHUNK, n - k * CHUNK)
        s = make_scenes(m, size=spec.size, seed=[spec.seed, SPLITS.index(split), k], n_objects=spec.n_objects,
                        radius=spec.radius)
        lo, hi = max(start - k * CHUNK, 0), min(stop - k * CHUNK, m)
        parts.append(s.subset(slice(lo, hi)))
    return Scenes(**{f: torch.cat([getattr(p, f) for p in parts]) for f in Scenes.__dataclass_fields__})


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) floats in [0, 1] -> (N, S, S, 3) uint8, the pixels the PNG files store."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def yolo_labels(scenes: Scenes) -> list[np.ndarray]:
    """One (n_objects, 5) float64 array per scene: class, x centre, y centre, width, height (fractions of S)."""
    S = scenes.images.shape[-1]
    out = []
    for boxes, shapes, present in zip(scenes.boxes.numpy(), scenes.shapes.numpy(), scenes.present.numpy(),
                                      strict=True):
        y0, x0, y1, x1 = boxes[present].T.astype(np.float64)  # inclusive pixel indices
        rows = np.stack([shapes[present].astype(np.float64), (x0 + x1 + 1) / 2 / S, (y0 + y1 + 1) / 2 / S,
                         (x1 - x0 + 1) / S, (y1 - y0 + 1) / S], axis=1)
        out.append(rows.reshape(-1, 5))
    return out


def format_labels(rows: np.ndarray) -> str:
    """Label-file text: one ``class x y w h`` line per object (9 decimals hold any k / 512 exactly)."""
    return "".join(f"{int(c)} {x:.9f} {y:.9f} {w:.9f} {h:.9f}\n" for c, x, y, w, h in rows)


def read_labels(path: str | Path) -> np.ndarray:
    """A YOLO label file -> (n, 5) float64 array (class, x, y, w, h); ValueError naming the bad line."""
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
        if len(values) != 5 or values[0] != int(values[0]) or not all(0 <= v <= 1 for v in values[1:]):
            raise ValueError(f"{path}: line {i + 1}: expected 'class x y w h' with x..h in [0, 1], got {line!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def image_name(index: int) -> str:
    return f"{index:05d}"


def data_yaml(root: Path) -> dict:
    return {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "nc": len(SHAPES),
            "names": list(SHAPES)}


def write_dataset(root: str | Path, spec: DetectionSpec = DetectionSpec(), progress: bool = True,
                  splits: tuple[str, ...] = SPLITS) -> Path:
    """Write these splits of ``spec`` under ``root`` (replacing all that was there); returns ``root/data.yaml``."""
    for split in splits:
        check_split(split)
    from PIL import Image  # only here: the light core does not need Pillow

    root = Path(root)
    (root / MANIFEST).unlink(missing_ok=True)  # a half-written dataset has no manifest
    for sub in ("images", "labels"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for split in splits:
        t0 = time.perf_counter()
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        n = spec.count(split)
        for start in range(0, n, CHUNK):
            scenes = split_scenes(spec, split, start, min(start + CHUNK, n))
            for i, (img, rows) in enumerate(zip(to_uint8(scenes.images), yolo_labels(scenes), strict=True)):
                name = image_name(start + i)
                Image.fromarray(img).save(root / "images" / split / f"{name}.png", compress_level=1)
                (root / "labels" / split / f"{name}.txt").write_text(format_labels(rows))
            if progress:
                done = min(start + CHUNK, n)
                print(f"\r{split}: {done}/{n} images, {time.perf_counter() - t0:.0f} s", end="", flush=True)
        if progress:
            print()
    (root / "data.yaml").write_text(yaml.safe_dump(data_yaml(root), sort_keys=False))
    (root / MANIFEST).write_text(json.dumps({**asdict(spec), "splits": list(splits)}, indent=1) + "\n")
    return root / "data.yaml"


def is_complete(root: str | Path, spec: DetectionSpec, splits: tuple[str, ...] = SPLITS) -> bool:
    """True when ``root`` holds these splits of this spec's dataset (manifest equal, every file there)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        if DetectionSpec.from_dict(manifest) != spec or not set(splits) <= set(manifest["splits"]):
            return False
    except (OSError, ValueError, TypeError, KeyError):
        return False
    return all(
        len(list((root / kind / split).glob(f"*.{ext}"))) == spec.count(split)
        for split in splits for kind, ext in (("images", "png"), ("labels", "txt"))
    )


def ensure(root: str | Path, spec: DetectionSpec = DetectionSpec(), progress: bool = True,
           splits: tuple[str, ...] = SPLITS) -> Path:
    """``root/data.yaml`` of this spec's dataset with these splits, written first when missing or different."""
    root = Path(root)
    if is_complete(root, spec, splits):
        return root / "data.yaml"
    if progress:
        print(f"making the detection dataset ({', '.join(splits)}) in {root} ({spec})")
    return write_dataset(root, spec, progress, splits)


def load_split(root: str | Path, split: str) -> tuple[list[Path], list[np.ndarray]]:
    """Image paths (sorted) and their label arrays, read back from the files of a split."""
    root = Path(root)
    check_split(split)
    images = sorted((root / "images" / split).glob("*.png"))
    return images, [read_labels(root / "labels" / split / f"{p.stem}.txt") for p in images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic detection dataset (YOLO format).")
    parser.add_argument("--out", type=Path, default=Path("build/detector_data"))
    for f in fields(DetectionSpec):
        if isinstance(f.default, int):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=f.default)
    args = parser.parse_args(argv)
    spec = DetectionSpec(**{f.name: getattr(args, f.name) for f in fields(DetectionSpec) if hasattr(args, f.name)})
    print(ensure(args.out, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
