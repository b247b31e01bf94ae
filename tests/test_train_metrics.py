"""Where the keys go, measured: each metric against a count by hand or a naive loop."""

import math

import pytest
import torch

from dattn.data import make_scenes
from dattn.train import (
    Config,
    build_model,
    distance_to_masks,
    evaluate,
    key_placement,
    placement_summary,
    points_on_masks,
    read_from_masks,
    targets,
)


def hand_mask() -> torch.Tensor:
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    m[0, 1, 2] = m[0, 2, 2] = m[0, 3, 3] = True
    return m


def test_points_on_masks_by_hand():
    pts = torch.tensor([[[1.0, 2.0], [1.49, 2.49], [1.5, 2.0], [0.5, 2.0], [2.0, 1.49], [3.49, 3.49],
                         [3.5, 3.0], [-0.6, 0.0], [0.0, 0.0]]])  # (1, 9, 2) as (y, x)
    # pixel i covers [i - 0.5, i + 0.5): (1,2) on, (1,2) on, (2,2) on, (1,2) on, (2,1) off, (3,3) on,
    # outside (y = 3.5 rounds to 4), outside, (0,0) off
    expected = [True, True, True, True, False, True, False, False, False]
    assert points_on_masks(pts, hand_mask())[0].tolist() == expected


def test_read_from_masks_by_hand():
    pts = torch.tensor([[[1.0, 2.0], [1.5, 2.0], [1.5, 2.5], [0.5, 1.5], [3.0, 3.5], [2.25, 2.0], [-1.0, 0.0]]])
    # (1,2) all object; halfway (1,2)-(2,2) both object; (1,2),(1,3),(2,2),(2,3): two of four;
    # (0,1),(0,2),(1,1),(1,2): one of four; (3,3) and outside (3,4) read as zero: a half;
    # 0.75 of (2,2) + 0.25 of (3,2); outside the image: nothing
    expected = [1.0, 1.0, 0.5, 0.25, 0.5, 0.75, 0.0]
    assert torch.allclose(read_from_masks(pts, hand_mask())[0], torch.tensor(expected))


def test_distance_to_masks_against_a_naive_loop():
    scenes = make_scenes(3, size=16, seed=4, n_objects=(1, 1), radius=(1, 2))
    pts = torch.rand(3, 5, 2) * 20 - 2
    got = distance_to_masks(pts, scenes.masks)
    for b in range(3):
        for i in range(5):
            y, x = pts[b, i].tolist()
            want = min(math.hypot(y - py, x - px) for py in range(16) for px in range(16) if scenes.masks[b, py, px])
            assert got[b, i].item() == pytest.approx(want, abs=1e-4)


def test_placement_summary_counts_by_hand():
    """Two scenes, one block, two groups of 1 x 2 keys, placements chosen by hand."""
    on = torch.tensor([[[[True, False]], [[False, False]]], [[[False, False]], [[True, True]]]])[:, None]  # (2,1,2,1,2)
    read = torch.tensor([[[[1.0, 0.25]], [[0.0, 0.0]]], [[[0.0, 0.0]], [[0.5, 1.0]]]])[:, None]
    ref_read = torch.zeros_like(read)
    ref_read[0, 0, 0, 0, 1] = 0.25
    p = dict(on=on, ref_on=torch.zeros_like(on), read=read, ref_read=ref_read,
             distance=torch.arange(8.0).reshape(read.shape), ref_distance=torch.full(read.shape, 3.0),
             offset_px=torch.ones(read.shape))
    s = placement_summary(p, coverage=0.02)
    assert s["keys_on_objects"] == 3 / 8 and s["reference_on_objects"] == 0
    assert s["read_from_objects"] == pytest.approx(2.75 / 8)
    assert s["scenes_reached"] == 1.0 and s["reference_scenes_reached"] == 0.5
    assert s["distance_mean"] == 3.5 and s["reference_distance_mean"] == 3.0
    assert s["nearest_distance_mean"] == (0 + 2 + 4 + 6) / 4  # the nearer of each group's two keys
    assert s["group_nearest_distance_mean"] == [(0 + 4) / 2, (2 + 6) / 2]
    assert s["group_scenes_with_key_on_objects"] == [1 / 2, 1 / 2]  # group 0 in scene 0, group 1 in scene 1
    p["positions"] = torch.tensor([0.0, 0.0, -0.7, 3.0, 1.0, 5.0, -1.0, 2.0, 4.2, 4.9, 4.0, 1.0, 2.0, 2.0, 3.0, 3.0]
                                  ).reshape(2, 1, 2, 1, 2, 2)  # 8 keys of a 5 x 5 image
    s = placement_summary(p, coverage=0.02, size=5)
    assert s["keys_off_map"] == 4 / 8  # y = -0.7, x = 5.0, y = -1.0, x = 4.9 > 4.5
    assert s["keys_reading_padding"] == 2 / 8  # x = 5.0 and y = -1.0: no pixel of the image in their reads
    assert s["group_keys_on_objects"] == [1 / 4, 2 / 4]
    assert s["group_distance_mean"] == [(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4]


def test_key_placement_and_evaluate_agree_with_direct_computations():
    cfg = Config(size=24, channels=16, n_heads=2, n_groups=2, offset_init="default", seed=3)
    model = build_model(cfg).eval()
    scenes = make_scenes(20, size=24, seed=9, radius=(1, 1))
    p = key_placement(model, scenes, batch_size=7)  # several batches
    pos, ref = model.sampling_points(scenes.images)
    assert torch.allclose(p["positions"], pos, atol=1e-4)  # batches of 7 round differently from one of 20
    assert torch.equal(p["on"], points_on_masks(p["positions"], scenes.masks))
    m = evaluate(model, scenes)
    with torch.no_grad():
        logits = model(scenes.images)
    assert m["accuracy"] == pytest.approx((logits.argmax(1) == targets(scenes, cfg)).float().mean().item())
    assert m["keys_on_objects"] == pytest.approx(points_on_masks(pos, scenes.masks).float().mean().item())
    assert m["object_area"] == pytest.approx(scenes.masks.float().mean().item())
    assert 0 < m["gflops_per_image"] < 1
