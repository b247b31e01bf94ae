"""What defines a training run of the scene model: the task, the model, the attention variant, the optimiser.

Three attention variants share everything but where the keys are read:

* ``deformable``: DAttention with learned offsets on a coarse key grid (one key per ``stride`` x ``stride`` cell);
* ``fixed``: the same module with ``offset_range_factor=0``, so every key is a point read at its reference point;
* ``dense``: a key at every position of the feature map (stride 1, no offsets): the upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..data import COLOURS, SHAPES

VARIANTS: tuple[str, ...] = ("deformable", "fixed", "dense")
TASKS: tuple[str, ...] = ("colour", "shape", "count")
OFFSET_INITS: tuple[str, ...] = ("zero", "default")


class ConfigError(ValueError):
    """A setting that cannot work; ``option`` names it as the command line spells it (``--batch-size``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"--{option.replace('_', '-')} {message}")
        self.option = option


@dataclass
class Config:
    """Everything that defines a run: data, model, attention variant and optimisation."""

    variant: str = "deformable"
    task: str = "colour"  # the single object's "colour" or "shape", or how many objects there are ("count")
    size: int = 18  # scenes are size x size pixels
    n_objects: tuple[int, int] = (1, 1)  # (min, max) objects per scene
    radius: tuple[int, int] = (1, 1)  # (min, max) object radius in pixels: radius 1 is a 3 x 3 box
    channels: int = 32
    patch: int = 1  # the stem's first conv: kernel = stride = patch (1: one feature pixel per image pixel)
    stem_kernel: int = 1  # kernel of the stem's second conv (1: each feature knows only its own pixel)
    n_blocks: int = 1
    n_heads: int = 2
    n_groups: int = 2
    stride: int = 6  # key-grid stride of the deformable and fixed variants, in feature pixels
    offset_ksize: int = 0  # kernel of the offset network's strided conv; 0: equal to the stride (one cell)
    offset_range_factor: float = 2.0
    offset_init: str = "zero"  # the offset network's last conv: "zero" or torch's "default" initialisation
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: int = 30
    seed: int = 0
    heldout_seed: int = 2022
    heldout_n: int = 1000

    def __post_init__(self) -> None:
        self.n_objects, self.radius = tuple(self.n_objects), tuple(self.radius)
        self.validate()

    # -- validation ---------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ConfigError`` (naming the option) for any setting that cannot work."""
        for name, allowed in (("variant", VARIANTS), ("task", TASKS), ("offset_init", OFFSET_INITS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (not isinstance(v, int) or isinstance(v, bool)):
                raise ConfigError(f.name, f"must be an integer, got {v!r}")
            if f.type == "float" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f.name, f"must be a finite number, got {v!r}")
        positive = ("size", "channels", "patch", "stem_kernel", "n_blocks", "n_heads", "n_groups", "stride",
                    "steps", "batch_size", "heldout_n")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("offset_ksize", "warmup", "weight_decay", "offset_range_factor", "seed", "heldout_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be 0 or more, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError("lr", f"must be positive, got {self.lr}")
        self._validate_pairs()
        self._validate_sizes()

    def _validate_pairs(self) -> None:
        for name in ("n_objects", "radius"):
            pair = getattr(self, name)
            if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
                raise ConfigError(name, f"needs two integers MIN MAX, got {pair!r}")
            if not 1 <= pair[0] <= pair[1]:
                raise ConfigError(name, f"needs 1 <= MIN <= MAX, got {pair[0]} {pair[1]}")
        if self.task != "count" and self.n_objects != (1, 1):
            raise ConfigError("n_objects", f"must be 1 1 for the {self.task} task (its label is the one object's "
                                           f"{self.task}), got {self.n_objects[0]} {self.n_objects[1]}")
        if self.task == "count" and self.n_objects[0] == self.n_objects[1]:
            raise ConfigError("n_objects", f"must span at least two counts for the count task (one class otherwise), "
                                           f"got {self.n_objects[0]} {self.n_objects[1]}; e.g. --n-objects 1 4")
        if 2 * self.radius[1] + 1 > self.size:
            raise ConfigError("radius", f"{self.radius[1]} does not fit a {self.size}x{self.size} scene")

    def _validate_sizes(self) -> None:
        if self.size % self.patch:
            raise ConfigError("patch", f"({self.patch}) must divide --size ({self.size})")
        if self.stem_kernel % 2 == 0:
            raise ConfigError("stem_kernel", f"must be odd (the feature map keeps its size), got {self.stem_kernel}")
        if self.channels % self.n_heads:
            raise ConfigError("channels", f"({self.channels}) must be divisible by --n-heads ({self.n_heads})")
        if self.n_heads % self.n_groups:
            raise ConfigError("n_heads", f"({self.n_heads}) must be divisible by --n-groups ({self.n_groups})")
        if self.key_stride > self.feature_size:
            raise ConfigError("stride", f"({self.stride}) is larger than the {self.feature_size}x{self.feature_size} "
                                        f"feature map")
        if self.key_ksize > self.feature_size:
            raise ConfigError("offset_ksize", f"({self.key_ksize}) is larger than the feature map "
                                              f"({self.feature_size})")

    # -- derived values -----------------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return dict(colour=len(COLOURS), shape=len(SHAPES)).get(self.task, self.n_objects[1] - self.n_objects[0] + 1)

    @property
    def feature_size(self) -> int:
        return self.size // self.patch

    @property
    def key_stride(self) -> int:
        """Stride of the key grid this variant reads: 1 for dense, ``stride`` otherwise."""
        return 1 if self.variant == "dense" else self.stride

    @property
    def key_ksize(self) -> int:
        """Kernel of the offset network's strided conv."""
        return 1 if self.variant == "dense" else (self.offset_ksize or self.stride)

    @property
    def key_grid(self) -> int:
        """Keys per side of the grid of each group (the offset network's output size)."""
        pad = 0 if self.key_ksize == self.key_stride else self.key_ksize // 2
        return (self.feature_size + 2 * pad - self.key_ksize) // self.key_stride + 1

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """Build from a dict (e.g. a checkpoint's), ignoring keys this version does not know."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
