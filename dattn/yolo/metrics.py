"""Detection metrics by the rules of YOLOv5 v7.0's ``val.py``: NMS, matching at ten IoU thresholds, 101-point AP.

* **Candidates** (``detections``): a box survives when its objectness exceeds ``conf_thres``; its score for a
  class is objectness x class probability, and every (box, class) pair scoring above ``conf_thres`` is a
  candidate (YOLOv5's ``multi_label=True``). The ``max_nms`` best are kept, then greedy NMS per class: in
  descending score, a candidate is kept unless it overlaps an already kept one of its class by IoU >
  ``iou_thres``; at most ``max_det`` are kept per image.
* **Matching** (``match``), at each IoU threshold t: every detection proposes the label of its class that it
  overlaps most (IoU >= t), and every label accepts, among the detections proposing it, the one with the
  highest score. Accepted detections are true positives.
* **AP** (``average_precision``), per class present in the labels: detections of the class over the whole
  split in descending score give the precision and recall curves; the precision envelope (the best precision at
  any recall at least as high) is interpolated linearly at the 101 recall values 0, 0.01, ..., 1 and
  integrated with the trapezoid rule. mAP50 is the mean over classes at t = 0.5, mAP50-95 the mean over classes
  and the ten thresholds 0.5, 0.55, ..., 0.95.

Boxes are ``(x1, y1, x2, y2)`` in image pixels, a pixel spanning ``[i, i + 1)``.
"""

from __future__ import annotations

import numpy as np
import torch

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre x, centre y, width, height -> x1, y1, x2, y2."""
    xy, wh = b[..., :2], b[..., 2:4]
    return torch.cat((xy - wh / 2, xy + wh / 2), dim=-1)


def box_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of every box of a (N, 4) with every box of b (M, 4): (N, M)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)  # (N, M)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)  # (N,)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)  # (M,)
    return inter / (area_a[:, None] + area_b[None, :] - inter + eps)


def nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_thres: float,
        max_det: int = 300) -> torch.Tensor:
    """Indices kept by greedy per-class NMS, in descending score (at most ``max_det``).

    boxes (N, 4) xyxy, scores (N,), classes (N,). A box is dropped when it overlaps a kept box of its class by
    IoU > iou_thres (the IoU without the small epsilon of ``box_iou``, as torchvision's ``nms``).
    """
    order = torch.argsort(scores, descending=True, stable=True)
    boxes, classes = boxes[order].double(), classes[order]
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1)  # (N,)
    alive = torch.ones(len(order), dtype=torch.bool)
    keep: list[int] = []
    while len(keep) < max_det:
        left = torch.nonzero(alive).flatten()
        if not len(left):
            break
        i = int(left[0])
        keep.append(i)
        alive[i] = False
        rest = left[1:]
        rest = rest[classes[rest] == classes[i]]
        lt = torch.maximum(boxes[rest, :2], boxes[i, :2])
        rb = torch.minimum(boxes[rest, 2:], boxes[i, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        iou = inter / (area[rest] + area[i] - inter)
        alive[rest[iou > iou_thres]] = False
    return order[torch.tensor(keep, dtype=torch.long)]


def detections(pred: torch.Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300,
               max_nms: int = 30000, multi_label: bool = True, agnostic: bool = False) -> torch.Tensor:
    """One image's decoded predictions (A, 5 + nc): box xywh, objectness, class probabilities ->
    detections (n, 6): x1, y1, x2, y2, score, class, in descending score.

    ``multi_label=False`` keeps only each box's best class (YOLOv5's ``detect.py``; ``val.py`` keeps them all);
    ``agnostic=True`` lets boxes of any class suppress each other (``detect.py --agnostic-nms``).
    """
    if not (0 <= conf_thres <= 1 and 0 <= iou_thres <= 1):
        raise ValueError(f"conf_thres and iou_thres must be in [0, 1], got {conf_thres} and {iou_thres}")
    pred = pred[pred[:, 4] > conf_thres].float()  # (A', 5 + nc)
    scores = pred[:, 5:] * pred[:, 4:5]  # (A', nc) objectness x class probability
    if multi_label:
        box_i, cls = torch.nonzero(scores > conf_thres, as_tuple=True)  # every (box, class) above the threshold
    else:
        best, cls = scores.max(1)
        box_i = torch.nonzero(best > conf_thres).flatten()
        cls = cls[box_i]
    cand = torch.cat((xywh_to_xyxy(pred[box_i, :4]), scores[box_i, cls, None], cls[:, None].float()), 1)
    cand = cand[torch.argsort(cand[:, 4], descending=True, stable=True)[:max_nms]]  # (n, 6)
    keep = nms(cand[:, :4], cand[:, 4], torch.zeros_like(cand[:, 5]) if agnostic else cand[:, 5], iou_thres, max_det)
    return cand[keep]


def match(dets: torch.Tensor, labels: torch.Tensor, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """True positives (n, T) of detections (n, 6, in descending score) against labels (m, 5: class, xyxy).

    At each threshold every detection proposes its best-overlapping label of its class (IoU >= t), and every
    label accepts the highest-scoring detection that proposes it.
    """
    n, m = len(dets), len(labels)
    correct = np.zeros((n, len(thresholds)), dtype=bool)
    if not n or not m:
        return correct
    iou = box_iou(labels[:, 1:5].double(), dets[:, :4].double()).numpy()  # (m, n)
    same = labels[:, :1].numpy() == dets[:, 5].numpy()[None]  # (m, n)
    for t, thr in enumerate(thresholds):
        ok = (iou >= thr) & same
        iou_ok = np.where(ok, iou, -1.0)
        best = iou_ok.argmax(0)  # (n,) each detection's best label
        proposes = ok.any(0)  # (n,)
        taken = set()
        for j in np.nonzero(proposes)[0]:  # descending score: the first proposer of a label wins
            if best[j] not in taken:
                taken.add(best[j])
                correct[j, t] = True
    return correct


def ap_101(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, read at recall 0, 0.01, ..., 1 by linear interpolation (trapezoids)."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([1.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]  # envelope: best precision at this recall or beyond
    x = np.linspace(0, 1, 101)
    y = np.interp(x, r, p)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))


def average_precision(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """AP (C, T) of each class present in target_cls, and those classes (C,).

    tp (n, T) true positives of all detections of a split, conf (n,) their scores, pred_cls (n,) their classes,
    target_cls (m,) the classes of all labels.
    """
    order = np.argsort(-conf, kind="stable")
    tp, pred_cls = tp[order], pred_cls[order]
    classes, n_labels = np.unique(target_cls, return_counts=True)
    ap = np.zeros((len(classes), tp.shape[1]))
    for ci, (c, n_l) in enumerate(zip(classes, n_labels, strict=True)):
        hits = tp[pred_cls == c].astype(float)  # (n_c, T)
        if not len(hits):
            continue
        tpc = hits.cumsum(0)
        fpc = (1 - hits).cumsum(0)
        recall = tpc / n_l
        precision = tpc / (tpc + fpc)
        ap[ci] = [ap_101(recall[:, t], precision[:, t]) for t in range(tp.shape[1])]
    return ap, classes.astype(int)


def mean_ap(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray) -> dict[str, float]:
    """mAP50 and mAP50-95 (means over the classes present in the labels), and AP50 per class."""
    ap, classes = average_precision(tp, conf, pred_cls, target_cls)
    out = {"mAP50": float(ap[:, 0].mean()), "mAP50-95": float(ap.mean())}
    out.update({f"AP50/{int(c)}": float(a) for c, a in zip(classes, ap[:, 0], strict=True)})
    return out
