"""The course's detector experiment against the real YOLOv5 v7.0 code (run by `make test-yolov5`).

YOLOv5's loader reads the dataset's labels as written; train.py is deterministic by seed; dattn's evaluator gives
val.py's mAPs on the shipped weights; dattn.viz traces the course's block inside YOLOv5's own model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dattn.viz import any_model
from dattn.yolo import dataset as ds
from dattn.yolo.detector import KINDS, detector_cfg, load_detector, load_records, shipped_seeds
from dattn.yolo.evaluate import evaluate

from .conftest import ENV, ROOT

TINY = ds.DetectionSpec(size=64, n_train=16, n_val=8, n_objects=(1, 3), radius=(3, 10), seed=11)


def yolov5_model(cfg: dict):
    from yolov5.models.yolo import Model

    return Model({k: v for k, v in cfg.items() if k != "yaml_file"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    return ds.write_dataset(root, TINY, progress=False)


def test_yolov5_loader_reads_the_labels_and_pixels_as_written(tiny):
    from yolov5.utils.dataloaders import LoadImagesAndLabels

    root = tiny.parent
    loader = LoadImagesAndLabels(str(root / "images" / "val"), img_size=64, augment=False, rect=False)
    paths, labels = ds.load_split(root, "val")
    assert [Path(f).name for f in loader.im_files] == [p.name for p in paths]
    scenes = ds.split_scenes(TINY, "val")
    for i, want in enumerate(labels):
        np.testing.assert_allclose(loader.labels[i], want, atol=1e-6)  # class, x, y, w, h as YOLOv5 parsed them
        img, _, _ = loader.load_image(i)  # BGR, as cv2 reads it
        np.testing.assert_array_equal(img[..., ::-1], ds.to_uint8(scenes.images[i : i + 1])[0])


def train(data: Path, seed: int, out: Path) -> dict[str, torch.Tensor]:
    cfg = out / "yolov5n_C3_DAttention.yaml"
    out.mkdir(parents=True)
    d = detector_cfg("c3_dattention", 64)
    d.pop("yaml_file")
    cfg.write_text(yaml.safe_dump(d))
    args = ["--img", "64", "--batch-size", "4", "--epochs", "1", "--data", str(data), "--cfg", str(cfg),
            "--weights", "", "--seed", str(seed), "--workers", "2", "--device", "cpu", "--project", str(out),
            "--name", "run", "--noplots"]
    r = subprocess.run([sys.executable, "-m", "yolov5.train", *args], capture_output=True, text=True, timeout=900,
                       cwd=out, env={**os.environ, **ENV})
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = torch.load(out / "run" / "weights" / "last.pt", map_location="cpu", weights_only=False)
    return ckpt["model"].state_dict()


def test_train_py_is_deterministic_by_seed(tiny, tmp_path):
    """The experiment's premise: two runs with the same --seed give the same weights, bit for bit (two dataloader
    workers, the machine's threads), and another seed gives other weights."""
    a = train(tiny, 0, tmp_path / "a")
    b = train(tiny, 0, tmp_path / "b")
    c = train(tiny, 1, tmp_path / "c")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# -- the shipped weights: dattn's evaluator against YOLOv5's val.py --------------------------------------------
@pytest.fixture(scope="module")
def val_root(tmp_path_factory) -> Path:
    records = load_records()
    spec = ds.DetectionSpec.from_dict(records[0]["dataset"])
    root = ROOT / "build" / "detector_data"  # shared with `make detector-eval`; made here when missing
    ds.ensure(root, spec, progress=False, splits=("val",))
    return root


def yolov5_checkpoint(kind: str, seed: int, folder: Path) -> Path:
    """The shipped state_dict in YOLOv5's own Model, saved as a YOLOv5 checkpoint (fp16, as train.py saves)."""
    model = yolov5_model(detector_cfg(kind))
    state = torch.load(f"{ROOT}/assets/detector_{kind}_s{seed}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.names = {i: n for i, n in enumerate(("disc", "square", "triangle"))}
    model.nc = len(model.names)  # train.py attaches both; val.py reads them
    path = folder / f"{kind}_s{seed}.pt"
    torch.save({"model": model.half(), "epoch": -1}, path)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_dattn_evaluator_gives_val_py_maps(kind, val_root, tmp_path):
    from yolov5 import val

    seed = shipped_seeds(kind)[0]
    weights = yolov5_checkpoint(kind, seed, tmp_path)
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({**ds.data_yaml(val_root), "train": "images/val"}))
    (mp, mr, map50, map5095, *_), *_ = val.run(data=str(data), weights=str(weights), batch_size=16, imgsz=256,
                                                conf_thres=0.001, iou_thres=0.6, device="cpu", workers=0,
                                                project=str(tmp_path), name="val", plots=False)
    ours = evaluate(load_detector(kind, seed), val_root, img=256)
    assert ours["mAP50"] == pytest.approx(map50, abs=2e-4)
    assert ours["mAP50-95"] == pytest.approx(map5095, abs=2e-4)
    print(f"{kind} seed {seed}: val.py mAP50 {map50:.5f} mAP50-95 {map5095:.5f}; dattn {ours['mAP50']:.5f} "
          f"{ours['mAP50-95']:.5f}")


# -- dattn.viz inside YOLOv5's own model ----------------------------------------------------------------------
def test_viz_traces_the_block_inside_yolov5():
    import matplotlib

    matplotlib.use("Agg")
    torch.manual_seed(0)
    model = yolov5_model(detector_cfg("c3_dattention")).eval()
    assert type(model).__module__ == "yolov5.models.yolo"
    name = "model.8.m.0.attention"
    assert list(any_model.find_dattention(model)) == [name]
    got = {}
    handle = dict(model.named_modules())[name].register_forward_hook(lambda m, a, o: got.setdefault("y", o))
    image = torch.rand(3, 256, 256)
    try:
        rec = any_model.record_traces(model, image[None])[name]
    finally:
        handle.remove()
    torch.testing.assert_close(rec.trace.output, got["y"], rtol=1e-4, atol=1e-4)
    assert rec.map_hw == (8, 8) and rec.stride == (32, 32)
    fig = any_model.plot_keys(image, rec, head=5, query=(2, 6))
    assert any(a.get_gid() == "input image" for a in fig.axes[0].images)
    attn = dict(model.named_modules())[name]
    assert any_model.receptive_field_centre(model, attn, (576, 576), (9, 8)) == (32 * 9 + 0.5, 32 * 8 + 0.5)
