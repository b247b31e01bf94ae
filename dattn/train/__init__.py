"""Train a small attention classifier on synthetic scenes, on CPU, and measure where its keys go.

The task names the colour of one small object at a random place in a cluttered scene; with a per-pixel stem
a key knows only the pixel it reads, so the model can answer only when some key reads the object. Three
variants are trained with the same budget, data and seeds (``dattn.train.config``): ``deformable``
(DAttention with learned offsets on a 4 x 4 key grid), ``fixed`` (the same grid, offsets off) and ``dense``
(a key at every position). The package, one concern per module:

* ``config``       ``Config``: task, model, variant and optimiser settings, each checked;
* ``task``         the scenes of a run, their labels, the batch of each step, the held-out scenes;
* ``model``        ``SceneDAT`` and the map from feature-map pixels to image pixels;
* ``loop``         optimiser, schedule, ``train_step`` and ``train``;
* ``metrics``      accuracy, and where the keys go (on objects, read from objects, distance to them);
* ``checkpoints``  atomic checkpoints, exported weights with their JSON record, ``load_shipped``;
* ``cli``, ``run``, ``commands``  the command line (``python -m dattn.train --help``); ``gif`` its animation.

For the explorer of a trained model::

    model = load_shipped("deformable")               # eval mode; model.info is its record
    scenes = heldout(model.cfg)                       # Scenes: images (N, 3, S, S), masks (N, S, S), ...
    t = model.blocks[0].trace(model.attention_input(scenes.images[:1]))   # a DAttentionTrace
    keys_img = model.to_image_px(t.positions_px)      # feature-map pixels -> image pixels
"""

from .checkpoints import SHIPPED, CheckpointError, export, load_checkpoint, load_model, load_shipped, save_checkpoint
from .config import VARIANTS, Config, ConfigError
from .loop import History, build, learning_rate, train, train_step
from .metrics import (
    distance_to_masks,
    evaluate,
    key_placement,
    placement_summary,
    points_on_masks,
    read_from_masks,
)
from .model import SceneDAT, build_model, conv_geometry, feature_to_image_px
from .task import heldout, scenes_for, targets, train_batch

__all__ = [
    "SHIPPED",
    "VARIANTS",
    "CheckpointError",
    "Config",
    "ConfigError",
    "History",
    "SceneDAT",
    "build",
    "build_model",
    "conv_geometry",
    "distance_to_masks",
    "evaluate",
    "export",
    "feature_to_image_px",
    "heldout",
    "key_placement",
    "learning_rate",
    "load_checkpoint",
    "load_model",
    "load_shipped",
    "placement_summary",
    "points_on_masks",
    "read_from_masks",
    "save_checkpoint",
    "scenes_for",
    "targets",
    "train",
    "train_batch",
    "train_step",
]
