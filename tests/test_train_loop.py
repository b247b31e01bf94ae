"""The training loop: a step lowers its batch's loss, batches depend on (seed, step) only, the schedule, and
an interrupted run resumed in the same process takes the uninterrupted run's steps."""

import math

import pytest
import torch
from torch import nn

from dattn.train import Config, History, build, learning_rate, targets, train, train_batch, train_step

TINY = dict(channels=16, n_heads=2, n_groups=2, batch_size=8, heldout_n=16, warmup=2)


def test_one_step_decreases_the_loss_on_its_batch():
    cfg = Config(**{**TINY, "warmup": 1, "lr": 3e-3})
    model, opt = build(cfg)
    batch = train_batch(cfg, 0)
    loss = lambda: nn.functional.cross_entropy(model(batch.images), targets(batch, cfg)).item()
    before = loss()
    assert train_step(model, opt, cfg, 0) == pytest.approx(before, rel=1e-5)
    assert loss() < before


def test_the_batch_of_a_step_depends_only_on_seed_and_step():
    cfg = Config(**TINY)
    assert torch.equal(train_batch(cfg, 5).images, train_batch(cfg, 5).images)
    assert not torch.equal(train_batch(cfg, 5).images, train_batch(cfg, 6).images)
    assert not torch.equal(train_batch(cfg, 5).images, train_batch(Config(**TINY, seed=1), 5).images)


def test_learning_rate_schedule_by_the_formula():
    cfg = Config(**{**TINY, "lr": 1.0, "warmup": 4, "steps": 104})
    assert [learning_rate(cfg, s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(cfg, 4) == pytest.approx(1.0)
    assert learning_rate(cfg, 54) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way through the cosine
    assert learning_rate(cfg, 104) == pytest.approx(0.05)
    assert learning_rate(cfg, 30) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 26 / 100)))


def test_stopped_and_continued_in_process_equals_uninterrupted():
    cfg = Config(**{**TINY, "steps": 6})
    full_model, _, full = train(cfg, snapshot_every=2, progress=False)
    model, opt, part = train(cfg, until=6, snapshot_every=2, progress=False, should_stop=lambda: True)
    assert len(part.losses) == 1  # asked to stop after its first step
    model, opt, part = train(cfg, model, opt, start=1, history=part, snapshot_every=2, progress=False)
    assert part.losses == full.losses
    assert part.snapshot_steps == full.snapshot_steps == [0, 2, 4, 6]
    for a, b in zip(full_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_on_step_sees_every_step_count():
    seen = []
    train(Config(**{**TINY, "steps": 4}), progress=False, on_step=seen.append)
    assert seen == [1, 2, 3, 4]


def test_history_snapshots_are_image_pixels_of_the_first_heldout_scene():
    cfg = Config(**{**TINY, "steps": 2})
    model, _, h = train(cfg, snapshot_every=1, progress=False)
    assert isinstance(h, History) and h.snapshot_steps == [0, 1, 2]
    assert h.snapshots[0].shape == (1, 2, 3, 3, 2) and h.reference.shape == (1, 3, 3, 2)  # 18 x 18, stride 6
    assert h.reference.min() >= 0 and h.reference.max() <= 17
