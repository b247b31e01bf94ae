"""The YOLO-format detection dataset: labels against boxes measured on the masks, determinism, files read back."""

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dattn.data import SHAPES
from dattn.yolo import dataset as ds

SPEC = ds.DetectionSpec(size=64, n_train=20, n_val=9, n_objects=(1, 4), radius=(2, 9), seed=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    ds.write_dataset(root, SPEC, progress=False)
    return root


def mask_extent(mask: torch.Tensor) -> tuple[float, float, float, float]:
    """Continuous (x0, y0, x1, y1) of a mask's pixels, pixel i spanning [i, i + 1)."""
    ys, xs = np.nonzero(mask.numpy())
    return xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0


@pytest.mark.parametrize("split", ds.SPLITS)
def test_label_files_hold_the_boxes_measured_on_the_masks(root, split):
    scenes = ds.split_scenes(SPEC, split)
    paths, labels = ds.load_split(root, split)
    assert len(paths) == len(labels) == SPEC.count(split) == len(scenes)
    S = SPEC.size
    for n, rows in enumerate(labels):
        objs = torch.nonzero(scenes.present[n]).flatten().tolist()
        assert len(rows) == len(objs) >= 1
        for row, k in zip(rows, objs, strict=True):
            x0, y0, x1, y1 = mask_extent(scenes.object_masks[n, k])
            want = [(x0 + x1) / 2 / S, (y0 + y1) / 2 / S, (x1 - x0) / S, (y1 - y0) / S]
            np.testing.assert_allclose(row[1:], want, atol=1e-9)
            assert SHAPES[int(row[0])] == SHAPES[scenes.shapes[n, k]]


@pytest.mark.parametrize("split", ds.SPLITS)
def test_pngs_hold_the_scene_pixels(root, split):
    scenes = ds.split_scenes(SPEC, split)
    paths, _ = ds.load_split(root, split)
    for n in (0, len(paths) - 1):
        png = np.asarray(Image.open(paths[n]).convert("RGB"))
        want = np.round(scenes.images[n].permute(1, 2, 0).numpy() * 255)
        assert png.shape == (SPEC.size, SPEC.size, 3)
        assert np.abs(png.astype(float) - want).max() == 0


def test_classes_sizes_and_counts_vary(root):
    _, labels = ds.load_split(root, "train")
    rows = np.concatenate(labels)
    assert set(rows[:, 0].astype(int)) == {0, 1, 2}
    sides = np.round(rows[:, 3] * SPEC.size)
    assert sides.min() == 2 * SPEC.radius[0] + 1 and sides.max() == 2 * SPEC.radius[1] + 1
    assert len({len(r) for r in labels}) > 1


def digest(root) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "data.yaml":  # data.yaml names the folder
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_same_spec_same_bytes_other_seed_other_images(root, tmp_path):
    ds.write_dataset(tmp_path / "again", SPEC, progress=False)
    assert digest(tmp_path / "again") == digest(root)
    other = ds.DetectionSpec(**{**SPEC.__dict__, "seed": 6})
    ds.write_dataset(tmp_path / "other", other, progress=False)
    a = Image.open(tmp_path / "other" / "images" / "val" / "00000.png")
    b = Image.open(root / "images" / "val" / "00000.png")
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_any_range_of_a_split_equals_the_whole_split_sliced():
    whole = ds.split_scenes(SPEC, "train")
    part = ds.split_scenes(SPEC, "train", 14, 19)  # crosses a chunk border
    assert torch.equal(part.images, whole.images[14:19]) and torch.equal(part.boxes, whole.boxes[14:19])
    with pytest.raises(ValueError, match=r"images 0\.\.19, asked for 3\.\.20"):
        ds.split_scenes(SPEC, "train", 3, 21)


def test_data_yaml_and_manifest(root):
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert data == {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "nc": 3,
                    "names": ["disc", "square", "triangle"]}
    assert ds.DetectionSpec.from_dict(json.loads((root / ds.MANIFEST).read_text())) == SPEC


def test_ensure_reuses_a_complete_dataset_and_rebuilds_a_damaged_or_different_one(tmp_path, capsys):
    ds.ensure(tmp_path, SPEC, progress=False)
    assert ds.is_complete(tmp_path, SPEC)
    stamp = (tmp_path / "labels" / "val" / "00003.txt").stat().st_mtime_ns
    ds.ensure(tmp_path, SPEC, progress=False)
    assert (tmp_path / "labels" / "val" / "00003.txt").stat().st_mtime_ns == stamp  # reused
    (tmp_path / "images" / "val" / "00003.png").unlink()
    assert not ds.is_complete(tmp_path, SPEC)
    ds.ensure(tmp_path, SPEC, progress=False)
    assert ds.is_complete(tmp_path, SPEC)
    bigger = ds.DetectionSpec(**{**SPEC.__dict__, "n_val": 10})
    assert not ds.is_complete(tmp_path, bigger)
    ds.ensure(tmp_path, bigger, progress=False)
    assert len(list((tmp_path / "images" / "val").glob("*.png"))) == 10


@pytest.mark.parametrize("text", ["0 0.5 0.5 0.2\n", "1 0.5 0.5 1.2 0.1\n", "x 0.5 0.5 0.2 0.2\n",
                                  "0.5 0.5 0.5 0.2 0.2\n"])
def test_bad_label_lines_are_named(tmp_path, text):
    p = tmp_path / "bad.txt"
    p.write_text("0 0.5 0.5 0.25 0.25\n" + text)
    with pytest.raises(ValueError, match="line 2: expected 'class x y w h'"):
        ds.read_labels(p)


def test_bad_spec():
    with pytest.raises(ValueError, match="n_val must be a positive int, got 0"):
        ds.DetectionSpec(n_val=0)
    with pytest.raises(ValueError, match="split must be one of"):
        SPEC.count("test")
