"""C3_DAttention inside the real YOLOv5 v7.0 code, with the guide's edits applied as text (tests/yolov5/prepare.py).

Run with `make test-yolov5` (in .venv-yolov5, which `make yolov5-env` builds), never by `make test`.
"""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dattn.yolo import build_model

from .conftest import BUILD, ENV, ROOT

MODELS = BUILD / "yolov5" / "models"
SEED_YAML = MODELS / "yolov5_C3_DAttention.yaml"
SEED_SUMMARY = re.compile(
    r"YOLOv5_C3_DAttention summary: 410 layers, 49736317 parameters, 49736317 gradients, \d+\.\d GFLOPs"
)


def yolov5_model(cfg: Path | dict):
    """YOLOv5's own Model from a yaml path or dict, and the lines its logger printed while building it."""
    from yolov5.models.yolo import Model
    from yolov5.utils.general import LOGGER

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    LOGGER.addHandler(handler)
    try:
        model = Model(copy.deepcopy(cfg) if isinstance(cfg, dict) else str(cfg))
    finally:
        LOGGER.removeHandler(handler)
    return model, lines


def stock_profile_line(*args: str) -> str:
    """The line `python -m dattn.yolo ... --stock-profile` says YOLOv5 prints."""
    r = subprocess.run(
        [sys.executable, "-m", "dattn.yolo", *args, "--stock-profile"],
        capture_output=True, text=True, check=True, timeout=300, cwd=ROOT,
    )
    lines = r.stdout.splitlines()
    return lines[lines.index(next(x for x in lines if x.startswith("YOLOv5 v7.0 prints"))) + 1]


def scaled_cfg(path: Path, scale: tuple[float, float], nc: int | None = None) -> dict:
    """The yaml with other depth and width multiples, as the guide says to change them."""
    d = yaml.safe_load(path.read_text())
    d["depth_multiple"], d["width_multiple"] = scale
    if nc is not None:
        d["nc"] = nc
    return d


N = (0.33, 0.25)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yolov5")


# -- the build and its summary line ---------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", ["yolov5_C3_DAttention.yaml", "yolov5l.yaml"])
def test_summary_line_is_what_stock_profile_prints(cfg):
    model, lines = yolov5_model(MODELS / cfg)
    line = next(x for x in lines if " summary: " in x)
    if cfg == "yolov5_C3_DAttention.yaml":
        assert SEED_SUMMARY.fullmatch(line), line
        assert sum(isinstance(m, torch.nn.Module) for m in model.modules()) == 410
    assert line == stock_profile_line("--cfg", cfg)


def test_segmentation_yaml_builds():
    from yolov5.models.yolo import SegmentationModel

    model = SegmentationModel(scaled_cfg(MODELS / "yolov5_C3_DAttention_seg.yaml", N)).eval()
    with torch.no_grad():
        preds, protos = model(torch.zeros(1, 3, 64, 64))[:2]
    assert protos.shape == (1, 32, 16, 16) and preds.shape[-1] == 5 + 80 + 32


def test_dattention_options_from_the_yaml():
    """The guide's yaml line: DAttention's options in a mapping after shortcut, g, e."""
    d = scaled_cfg(SEED_YAML, N)
    d["backbone"][8][3] = [1024, [20, 20], False, 1, 0.5, {"stride": 2, "ref_convention": "centered"}]
    model, _ = yolov5_model(d)
    attn = model.model[8].m[0].attention
    assert attn.stride == 2 and attn.ref_convention == "centered"


# -- forward, and state_dicts both ways -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def twins():
    """The seed's yaml at scale n, in YOLOv5 and in dattn.yolo, with the same weights (YOLOv5's, loaded strictly)."""
    torch.manual_seed(0)
    cfg = scaled_cfg(SEED_YAML, N)
    y5, _ = yolov5_model(cfg)
    ours = build_model(copy.deepcopy(cfg))
    ours.load_state_dict(y5.state_dict(), strict=True)
    return y5.eval(), ours.eval()


@pytest.mark.parametrize("hw", [(640, 640), (320, 256), (32, 32)])
def test_forward_sizes_and_equal_outputs(twins, hw):
    y5, ours = twins
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        a, b = y5(x)[0], ours(x)[0]
    n = 3 * sum((hw[0] // s) * (hw[1] // s) for s in (8, 16, 32))
    assert a.shape == b.shape == (1, n, 85)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_state_dict_from_dattn_to_yolov5(twins):
    """The other way: dattn.yolo's weights (perturbed, so nothing is left at init) load strictly into YOLOv5."""
    y5, ours = twins
    ours = copy.deepcopy(ours)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    target, _ = yolov5_model(scaled_cfg(SEED_YAML, N))
    target.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(x)[0], ours(x)[0], rtol=1e-5, atol=1e-4)


# -- training: one epoch of train.py on a small synthetic dataset ---------------------------------------------
def make_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """YOLO-format images and labels: one or two filled rectangles (class 0 wide, class 1 tall) on noise."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k in range(n):
            img = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            rows = []
            for _ in range(rng.integers(1, 3)):
                cls = int(rng.integers(0, 2))
                w, h = (24, 10) if cls == 0 else (10, 24)
                x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                img[y0 : y0 + h, x0 : x0 + w] = (230, 60, 60) if cls == 0 else (60, 60, 230)
                rows.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            Image.fromarray(img).save(root / "images" / split / f"{k}.png")
            (root / "labels" / split / f"{k}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump(
        {"path": str(root), "train": "images/train", "val": "images/val", "nc": 2, "names": ["wide", "tall"]}
    ))
    return data


def run_yolov5(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", f"yolov5.{module}", *args],
        capture_output=True, text=True, timeout=900, cwd=cwd, env={**__import__("os").environ, **ENV},
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    return r


@pytest.fixture(scope="module")
def trained(work) -> Path:
    """One epoch of YOLOv5's train.py from scratch (--weights ''), the seed's yaml at scale n, nc 2."""
    data = make_dataset(work / "data")
    cfg = work / "yolov5n_C3_DAttention.yaml"
    cfg.write_text(yaml.safe_dump(scaled_cfg(SEED_YAML, N, nc=2)))
    r = run_yolov5(
        "train", "--img", "64", "--batch-size", "4", "--epochs", "1", "--data", str(data), "--cfg", str(cfg),
        "--weights", "", "--workers", "0", "--device", "cpu", "--project", str(work / "runs"), "--name", "exp",
        "--exist-ok", cwd=work,
    )
    log = r.stdout + r.stderr
    assert "1 epochs completed" in log, log[-3000:]
    return work / "runs" / "exp"


def test_one_epoch_of_train_py(trained):
    weights = trained / "weights"
    assert (weights / "last.pt").is_file() and (weights / "best.pt").is_file()
    assert (trained / "results.csv").is_file() and (trained / "train_batch0.jpg").is_file()  # plotted, font found
    ckpt = torch.load(weights / "last.pt", map_location="cpu", weights_only=False)
    model = ckpt["model"].float()
    assert type(model.model[8]).__name__ == "C3_DAttention"
    assert type(model.model[8].m[0].attention).__module__ == "dattn.attention"
    ours = build_model(scaled_cfg(SEED_YAML, N, nc=2))
    ours.load_state_dict(model.state_dict(), strict=True)  # the trained weights load into dattn.yolo
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)[0], ours.eval()(x)[0], rtol=1e-5, atol=1e-4)


# -- export: TorchScript and ONNX through YOLOv5's export.py ------------------------------------------------------
@pytest.fixture(scope="module")
def exported(trained, work):
    weights = trained / "weights" / "last.pt"
    r = run_yolov5("export", "--weights", str(weights), "--include", "torchscript", "onnx", "--imgsz", "64",
                   "--device", "cpu", cwd=work)
    model = torch.load(weights, map_location="cpu", weights_only=False)["model"].float().eval()
    return weights, model, r.stdout + r.stderr  # export.py logs a failed format and exits 0


def test_export_onnx_agrees_with_torch(exported):
    import onnxruntime

    weights, model, log = exported
    assert re.search(r"ONNX:.*export success", log), log[-3000:]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = model(x)[0].numpy()
    session = onnxruntime.InferenceSession(str(weights.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_export_torchscript_agrees_with_torch(exported):
    weights, model, log = exported
    assert re.search(r"TorchScript:.*export success", log), log[-3000:]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = model(x)[0]
        got = torch.jit.load(str(weights.with_suffix(".torchscript")))(x)[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# -- --weights yolov5l.pt: what train.py transfers ------------------------------------------------------------
@pytest.mark.parametrize("nc", [80, 2])
def test_what_train_py_transfers_from_yolov5l(nc):
    """train.py's own rule (utils.general.intersect_dicts, exclude 'anchor' when --cfg is given) from a yolov5l
    (COCO: nc 80) into the seed's yaml: every tensor but the attention's, the anchors and, when nc is not 80,
    Detect's convs."""
    from yolov5.utils.general import intersect_dicts

    stock, _ = yolov5_model(MODELS / "yolov5l.yaml")
    seed, _ = yolov5_model(scaled_cfg(SEED_YAML, (1.0, 1.0), nc=nc))
    got = intersect_dicts(stock.float().state_dict(), seed.state_dict(), exclude=["anchor"])
    keys = seed.state_dict()
    expected = {k for k in keys if ".attention." not in k and "anchors" not in k and (nc == 80 or ".24.m." not in k)}
    assert set(got) == expected
    print(f"nc={nc}: Transferred {len(got)}/{len(keys)} items from yolov5l")
