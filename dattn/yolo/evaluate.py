"""Evaluate a detector on a split of the YOLO-format dataset as YOLOv5 v7.0's ``val.py`` does, without YOLOv5.

``val.py`` (and the validation inside ``train.py``) reads each image, pads it with grey (114) to the batch shape
``ceil(img / 32 + 0.5) * 32`` (a 256 image becomes 288 x 288, centred: 16 pixels each side), runs the model,
keeps detections with ``dattn.yolo.metrics.detections`` (conf 0.001, NMS IoU 0.6, 300 per image), moves them
back by the padding, clips them to the image and scores them with ``dattn.yolo.metrics``.

    python -m dattn.yolo.evaluate          # = make detector-eval: every shipped detector, against its record
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .dataset import DetectionSpec, ensure, load_split
from .detector import ASSETS, load_detector, load_records
from .metrics import detections, match, mean_ap, xywh_to_xyxy

PAD_VALUE = 114  # YOLOv5's letterbox grey


def val_side(img: int, stride: int = 32, pad: float = 0.5) -> int:
    """The side YOLOv5's rectangular validation batches have for square img x img images."""
    return math.ceil(img / stride + pad) * stride


def letterbox(images: np.ndarray, side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(N, S, S, 3) uint8 -> (N, 3, side, side) floats in [0, 1], grey-padded, and the (top, left) padding."""
    n, h, w, _ = images.shape
    if h > side or w > side:
        raise ValueError(f"images of {h}x{w} do not fit a {side}x{side} batch (resizing is not implemented)")
    top, left = round((side - h) / 2 - 0.1), round((side - w) / 2 - 0.1)  # YOLOv5's rounding of odd pads
    out = np.full((n, side, side, 3), PAD_VALUE, dtype=np.uint8)
    out[:, top : top + h, left : left + w] = images
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255, (top, left)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, img: int | None = None, conf_thres: float = 0.001,
            iou_thres: float = 0.6, max_det: int = 300, multi_label: bool = True, agnostic: bool = False
            ) -> list[torch.Tensor]:
    """Detections (n, 6: x1, y1, x2, y2, score, class) in the pixels of each (S, S, 3) uint8 image.

    The defaults are ``val.py``'s; ``detect.py`` draws with ``conf_thres=0.25, iou_thres=0.45, multi_label=False``
    (and ``agnostic=True`` with ``--agnostic-nms``).
    """
    S = images.shape[1]
    x, (top, left) = letterbox(images, val_side(img or S))
    preds = model(x)[0]  # (N, A, 5 + nc) decoded, in padded pixels
    out = []
    for p in preds:
        d = detections(p, conf_thres, iou_thres, max_det, multi_label=multi_label, agnostic=agnostic)
        d[:, [0, 2]] -= left
        d[:, [1, 3]] -= top
        d[:, :4] = d[:, :4].clamp(0, S)
        out.append(d)
    return out


def read_images(paths: list[Path]) -> np.ndarray:
    from PIL import Image  # not in the light core

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def evaluate(model: nn.Module, root: str | Path, split: str = "val", batch: int = 16,
             img: int | None = None) -> dict[str, Any]:
    """mAP50, mAP50-95 and AP50 per class of a model on a split of the dataset at root (see module doc)."""
    paths, labels = load_split(root, split)
    if not paths:
        raise FileNotFoundError(f"{root} has no {split} images")
    model.eval()
    tps, confs, classes, targets = [], [], [], []
    for start in range(0, len(paths), batch):
        images = read_images(paths[start : start + batch])
        S = images.shape[1]
        for dets, rows in zip(predict(model, images, img), labels[start : start + batch], strict=True):
            lab = torch.from_numpy(rows)  # (m, 5) class, xywh fractions
            boxes = torch.cat((lab[:, :1], xywh_to_xyxy(lab[:, 1:] * S)), 1)  # (m, 5) class, xyxy pixels
            tps.append(match(dets, boxes))
            confs.append(dets[:, 4].numpy())
            classes.append(dets[:, 5].numpy())
            targets.append(rows[:, 0])
    result = mean_ap(np.concatenate(tps), np.concatenate(confs), np.concatenate(classes), np.concatenate(targets))
    result.update(images=len(paths), instances=int(sum(len(r) for r in labels)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-evaluate the shipped detectors on the val split.")
    parser.add_argument("--data", type=Path, default=Path("build/detector_data"),
                        help="dataset folder (the val split is made there when missing)")
    parser.add_argument("--assets", type=Path, default=ASSETS)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--tolerance", type=float, default=0.005,
                        help="largest difference from a record's mAP50 and mAP50-95 that passes (exit code 1 beyond)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    records = load_records(args.assets)
    if not records:
        raise SystemExit(f"no detector records in {args.assets}")
    specs = {DetectionSpec.from_dict(r["dataset"]) for r in records}
    if len(specs) != 1:
        raise SystemExit(f"the records name {len(specs)} different datasets: {specs}")
    (spec,) = specs
    root = args.data
    ensure(root, spec, splits=("val",))
    print(f"val split: {spec.n_val} images of {spec.size}x{spec.size} in {root}; YOLOv5 v7.0's val protocol "
          f"(padded to {val_side(spec.size)}, conf 0.001, NMS IoU 0.6)")
    off = []
    for r in records:
        model = load_detector(r["kind"], r["seed"], args.assets)
        m = evaluate(model, root, img=r["img"])
        want = r["metrics"]
        diff = {k: m[k] - want[k] for k in ("mAP50", "mAP50-95")}
        print(f"{r['kind']} seed {r['seed']}: mAP50 {m['mAP50']:.4f} mAP50-95 {m['mAP50-95']:.4f} "
              f"(record: mAP50 {want['mAP50']:.4f} mAP50-95 {want['mAP50-95']:.4f}; "
              f"difference {diff['mAP50']:+.4f} / {diff['mAP50-95']:+.4f})", flush=True)
        if max(abs(d) for d in diff.values()) > args.tolerance:
            off.append(f"{r['kind']} seed {r['seed']}")
    if off:
        print(f"FAILED: {', '.join(off)} differ from their records by more than {args.tolerance}", file=sys.stderr)
        return 1
    print(f"all {len(records)} models agree with their records within {args.tolerance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
