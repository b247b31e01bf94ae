"""The task: synthetic scenes for a run's config, their labels, the batch of every step, the held-out scenes.

The default task names the colour of the one small object (3 x 3 pixels or less) at a random place on a
cluttered background: the colour is only on the object, so a key that never reads the object cannot tell it.
"""

from __future__ import annotations

import torch

from ..data import Scenes, make_scenes
from .config import Config


def targets(scenes: Scenes, cfg: Config) -> torch.Tensor:
    """Class index of every scene for the task: (N,) int64."""
    if cfg.task == "count":
        return scenes.counts - cfg.n_objects[0]
    return scenes.labels if cfg.task == "shape" else scenes.colour_labels


def scenes_for(cfg: Config, n: int, seed: int | list[int]) -> Scenes:
    """``n`` scenes drawn with the run's data settings."""
    return make_scenes(n, cfg.size, seed, n_objects=cfg.n_objects, radius=cfg.radius)


def train_batch(cfg: Config, step: int) -> Scenes:
    """The training batch of ``step``: a function of (seed, step) only, so a resumed run sees the same batches."""
    return scenes_for(cfg, cfg.batch_size, [0, cfg.seed, step])


def heldout(cfg: Config, n: int | None = None) -> Scenes:
    """The fixed held-out scenes: their own seed, never drawn in training, the same for every variant and seed."""
    return scenes_for(cfg, n or cfg.heldout_n, [1, cfg.heldout_seed])
