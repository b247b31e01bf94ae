"""Synthetic scenes: masks against independently computed boxes, seeds, the union mask, shapes by hand."""

import numpy as np
import pytest
import torch

from dattn.data import COLOURS, PALETTE, SHAPES, make_scenes


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(64, size=48, seed=3, n_objects=(1, 4), radius=(2, 6))


def mask_box(m: torch.Tensor) -> list[int]:
    """Inclusive (y0, x0, y1, x1) of the True pixels of a 2-D mask."""
    ys, xs = torch.nonzero(m, as_tuple=True)
    return [ys.min().item(), xs.min().item(), ys.max().item(), xs.max().item()]


def test_shapes_and_dtypes(scenes):
    N, K, S = 64, 4, 48
    assert scenes.images.shape == (N, 3, S, S) and scenes.images.dtype == torch.float32
    assert scenes.masks.shape == (N, S, S) and scenes.masks.dtype == torch.bool
    assert scenes.object_masks.shape == (N, K, S, S)
    assert scenes.boxes.shape == (N, K, 4) and scenes.centres.shape == (N, K, 2)
    assert scenes.shapes.shape == scenes.colour_ids.shape == scenes.present.shape == (N, K)
    assert 0.0 <= scenes.images.min() and scenes.images.max() <= 1.0
    assert len(scenes) == N


def test_each_mask_has_the_box_computed_from_centre_and_radius(scenes):
    for n in range(len(scenes)):
        for k in range(scenes.present.shape[1]):
            m = scenes.object_masks[n, k]
            if not scenes.present[n, k]:
                assert not m.any() and scenes.boxes[n, k].tolist() == [-1, -1, -1, -1]
                continue
            (cy, cx), r = scenes.centres[n, k].tolist(), scenes.radii[n, k].item()
            expected = [cy - r, cx - r, cy + r, cx + r]
            assert mask_box(m) == expected == scenes.boxes[n, k].tolist(), (n, k, SHAPES[scenes.shapes[n, k]])


def test_union_mask_is_the_objects_and_objects_do_not_overlap(scenes):
    om = scenes.object_masks
    assert torch.equal(scenes.masks, om.any(1))
    assert om.sum(1).max() <= 1  # no pixel belongs to two objects
    assert scenes.counts.min() >= 1 and scenes.counts.max() <= 4
    assert scenes.counts.float().mean() > 2  # most requested objects fit


def test_objects_are_painted_in_their_colour(scenes):
    for n in range(8):
        for k in torch.nonzero(scenes.present[n]).flatten().tolist():
            pix = scenes.images[n][:, scenes.object_masks[n, k]]  # (3, P)
            assert torch.allclose(pix, scenes.colours[n, k][:, None].expand_as(pix))
            on = torch.from_numpy(PALETTE[scenes.colour_ids[n, k]]) > 0
            assert (scenes.colours[n, k][on] >= 0.8).all() and (scenes.colours[n, k][~on] <= 0.2).all()


def test_shapes_drawn_by_hand():
    """One object of radius 2 in a 5 x 5 image (so centred at (2, 2)) against masks drawn by hand."""
    expected = {
        "disc": ["00100", "01110", "11111", "01110", "00100"],  # dy^2 + dx^2 <= 4
        "square": ["11111"] * 5,
        "triangle": ["00100", "00100", "01110", "01110", "11111"],  # apex on top, 2|dx| <= dy + 2
    }
    found = {}
    for seed in range(30):
        s = make_scenes(1, size=5, seed=seed, radius=(2, 2))
        assert s.centres[0, 0].tolist() == [2, 2]
        found.setdefault(SHAPES[s.shapes[0, 0]], ["".join(str(int(v)) for v in row) for row in s.masks[0].tolist()])
    assert found == expected


def test_seeds_reproduce_and_differ():
    a, b = make_scenes(6, seed=[0, 7, 5]), make_scenes(6, seed=[0, 7, 5])
    c = make_scenes(6, seed=[0, 7, 6])
    for f in a.__dataclass_fields__:
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.centres, c.centres)


def test_subset_and_labels():
    s = make_scenes(10, seed=1)
    sub = s.subset([3, 5])
    assert torch.equal(sub.images, s.images[[3, 5]])
    assert torch.equal(s.labels, s.shapes[:, 0]) and torch.equal(s.colour_labels, s.colour_ids[:, 0])
    assert set(s.colour_labels.tolist()) <= set(range(len(COLOURS)))
    assert s.coverage == pytest.approx(s.masks.float().mean().item())


def test_bad_arguments_name_the_numbers():
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        make_scenes(2, n_objects=(3, 2))
    with pytest.raises(ValueError, match="radius"):
        make_scenes(2, size=8, radius=(3, 5))


def test_fast_enough():
    import time

    t = time.perf_counter()
    make_scenes(64, seed=0)
    assert time.perf_counter() - t < 2.0
    assert np.isfinite(make_scenes(2, seed=0).images.numpy()).all()
