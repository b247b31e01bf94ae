"""Detection metrics against hand-worked examples and torchvision's NMS (YOLOv5's own val.py: tests/yolov5)."""

import numpy as np
import pytest
import torch
import torchvision

from dattn.yolo import metrics as mt


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    # overlap 5 x 10 = 50, union 150; the same box; disjoint
    np.testing.assert_allclose(mt.box_iou(a, b).numpy(), [[50 / 150, 1.0, 0.0]], atol=1e-6)


def test_xywh_to_xyxy():
    assert mt.xywh_to_xyxy(torch.tensor([10.0, 20, 4, 6])).tolist() == [8, 17, 12, 23]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_keeps_what_torchvision_keeps(seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(400, 2, generator=g) * 100
    wh = torch.rand(400, 2, generator=g) * 30 + 2
    boxes = torch.cat((xy, xy + wh), 1)
    scores = torch.rand(400, generator=g)
    classes = torch.randint(0, 3, (400,), generator=g).float()
    for thr in (0.3, 0.6):
        want = torchvision.ops.batched_nms(boxes, scores, classes.long(), thr)
        got = mt.nms(boxes, scores, classes, thr, max_det=10_000)
        assert got.tolist() == want.tolist()
        assert mt.nms(boxes, scores, classes, thr, max_det=7).tolist() == want[:7].tolist()


def test_detections_score_is_objectness_times_class_and_every_class_counts():
    # one box, objectness 0.5, class probabilities 0.9 and 0.4 -> two candidates scoring 0.45 and 0.2 (other
    # classes do not suppress each other); a second box below the threshold
    pred = torch.tensor([[50.0, 50, 20, 10, 0.5, 0.9, 0.4], [10, 10, 4, 4, 0.0005, 1.0, 1.0]])
    d = mt.detections(pred, conf_thres=0.1, iou_thres=0.5)
    assert d.shape == (2, 6)
    np.testing.assert_allclose(d.numpy(), [[40, 45, 60, 55, 0.45, 0], [40, 45, 60, 55, 0.2, 1]], rtol=1e-6)


def test_match_each_detection_proposes_its_best_label_and_a_label_takes_the_top_scorer():
    # boxes on y 0..10, so IoU is a ratio of x lengths: L1 = [0, 10], L2 = [4, 14]
    labels = torch.tensor([[0.0, 0, 0, 10, 10], [0, 4, 0, 14, 10]])
    # A = [1, 11]: IoU 9/11 = .818 with L1, 7/13 = .538 with L2; B = [1.5, 11.5]: 8.5/11.5 = .739 with L1,
    # 7.5/12.5 = .6 with L2. Both propose L1, which takes A (higher score); B does not fall back to L2.
    dets = torch.tensor([[1.0, 0, 11, 10, 0.9, 0], [1.5, 0, 11.5, 10, 0.8, 0]])
    correct = mt.match(dets, labels)
    assert correct[0].tolist() == [True] * 7 + [False] * 3  # A: up to IoU 0.8
    assert not correct[1].any()
    # another class never matches
    dets[:, 5] = 1
    assert not mt.match(dets, labels).any()


def test_ap_of_a_hand_worked_ranking():
    # 3 labels; detections by score: hit, miss, hit -> recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # Envelope: 1 up to recall 1/3, 2/3 up to 2/3, then falling linearly to 0 at recall 1 (the end sentinel).
    # Sampled at 0, 0.01, ..., 1 and integrated by trapezoids:
    want = 0.33 + 0.01 * (1 + 2 / 3) / 2 + 0.32 * 2 / 3 + 0.01 * (2 / 3 + 0.66) / 2 + 0.33**2
    tp = np.array([[True], [False], [True]])
    ap, classes = mt.average_precision(tp, np.array([0.9, 0.8, 0.7]), np.zeros(3), np.zeros(3))
    assert classes.tolist() == [0]
    assert ap[0, 0] == pytest.approx(want, abs=1e-12)


def test_map_averages_the_classes_of_the_labels():
    # class 0: one label, one hit -> precision 1 up to recall 1, but the end sentinel (recall 1, precision 0)
    # is the sample at recall 1, so the last trapezoid is half: 0.99 + 0.01 / 2 = 0.995, YOLOv5's "perfect" AP;
    # class 1: one label, no detection -> 0; a detection of class 2, which has no label, is ignored
    tp = np.array([[True] * 10, [False] * 10])
    out = mt.mean_ap(tp, np.array([0.9, 0.95]), np.array([0, 2]), np.array([0, 1]))
    assert out["AP50/0"] == pytest.approx(0.995) and out["AP50/1"] == 0.0
    assert out["mAP50"] == pytest.approx(0.4975) and out["mAP50-95"] == pytest.approx(0.4975)


def test_bad_thresholds():
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got 1.5 and 0.6"):
        mt.detections(torch.zeros(1, 7), conf_thres=1.5)


def test_detect_py_settings_best_class_and_agnostic_nms():
    # box A: objectness 0.5, classes 0.9 / 0.3 -> scores 0.45 / 0.15; box B, shifted 1 pixel (IoU 380 / 420):
    # objectness 0.45, classes 0.1 / 0.8 -> scores 0.045 / 0.36
    pred = torch.tensor([[50.0, 50, 20, 20, 0.5, 0.9, 0.3], [51, 50, 20, 20, 0.45, 0.1, 0.8]])
    a = mt.detections(pred[:1], conf_thres=0.1, iou_thres=0.45)
    assert a[:, 5].tolist() == [0, 1] and a[:, 4].tolist() == pytest.approx([0.45, 0.15])  # val.py: both classes
    assert mt.detections(pred[:1], conf_thres=0.1, iou_thres=0.45, multi_label=False)[:, 5].tolist() == [0]
    best = mt.detections(pred, conf_thres=0.1, iou_thres=0.45, multi_label=False)
    assert best[:, 5].tolist() == [0, 1] and best[:, 4].tolist() == pytest.approx([0.45, 0.36])  # per-class NMS
    one = mt.detections(pred, conf_thres=0.1, iou_thres=0.45, multi_label=False, agnostic=True)
    assert one[:, 5].tolist() == [0] and one[:, 4].tolist() == pytest.approx([0.45])
