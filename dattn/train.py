"""Train a small deformable-attention classifier on synthetic scenes, on CPU, and measure where it looks.

The default task names the colour of the one small object in a cluttered scene: the colour is only on the
object, so a key that samples the background learns nothing, and the offsets learn to move keys onto it.
The model is a patchify conv stem (64 x 64 image -> 16 x 16 features), DAttention blocks whose keys sit on a
coarse grid (``stride`` > 1) with no position encoding, and a head on the mean of the attention output.
Without a residual path or a dwc position encoding, everything the head learns passes through the sampled
keys, so moving the keys onto the objects pays off.

Command line::

    # the shipped weights (about 1.5 min on 2 cores):
    python -m dattn.train --steps 1200 --seed 0 --out runs/dat.pt --export assets/dat_scenes.pt
        --gif assets/offsets_training.gif --snapshot-every 50
    python -m dattn.train --resume runs/dat.pt --out runs/dat.pt      # continue to the recorded --steps
    python -m dattn.train --evaluate runs/dat.pt                        # held-out accuracy and on-object share
    torchrun --standalone --nproc_per_node=2 -m dattn.train --steps 1200 --out runs/ddp.pt  # DDP, gloo

The batch of step ``t`` is ``make_scenes(batch_size, seed=[0, seed, t])``, so a resumed run sees exactly the
batches an uninterrupted one would, and its losses are identical.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn
from tqdm.auto import tqdm

from .attention import DAttention, DAttentionTrace
from .data import COLOURS, SHAPES, Scenes, make_scenes

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PRETRAINED = ASSETS / "dat_scenes.pt"
TASKS = ("colour", "shape", "count")


# ----------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Config:
    """Everything that defines a run: data, model and optimisation."""

    task: str = "colour"  # the single object's "colour" or "shape", or how many objects there are ("count")
    size: int = 64
    n_objects: tuple[int, int] = (1, 1)
    radius: tuple[int, int] = (3, 6)
    channels: int = 48
    patch: int = 4  # the stem's first conv: kernel = stride = patch
    stem_convs: int = 1  # 3 x 3 convs after it, stride 1
    n_blocks: int = 1
    n_heads: int = 4
    n_groups: int = 2
    stride: int = 4  # DAttention key-grid stride on the feature map
    offset_ksize: int = 4  # kernel of the offset network's strided conv (== stride: one cell, no padding)
    offset_range_factor: float = 2.0
    steps: int = 600
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 30
    seed: int = 0
    heldout_seed: int = 2022
    heldout_n: int = 512

    def __post_init__(self) -> None:
        self.n_objects, self.radius = tuple(self.n_objects), tuple(self.radius)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task != "count" and self.n_objects != (1, 1):
            raise ValueError(f"the {self.task!r} task needs one object per scene, got n_objects={self.n_objects}")
        if self.size % self.patch:
            raise ValueError(f"image size {self.size} is not a multiple of the patch {self.patch}")

    @property
    def n_classes(self) -> int:
        return dict(colour=len(COLOURS), shape=len(SHAPES)).get(self.task, self.n_objects[1] - self.n_objects[0] + 1)

    @property
    def feature_size(self) -> int:
        return self.size // self.patch

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """Build from a dict (e.g. a checkpoint's), ignoring keys this version does not know."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def targets(scenes: Scenes, cfg: Config) -> torch.Tensor:
    """Class index of every scene for the task: (N,) int64."""
    if cfg.task == "count":
        return scenes.counts - cfg.n_objects[0]
    return scenes.labels if cfg.task == "shape" else scenes.colour_labels


def scenes_for(cfg: Config, n: int, seed: int | list[int]) -> Scenes:
    """``n`` scenes drawn with the run's data settings."""
    return make_scenes(n, cfg.size, seed, n_objects=cfg.n_objects, radius=cfg.radius)


def train_batch(cfg: Config, step: int) -> Scenes:
    """The training batch of ``step``: a function of (seed, step) only."""
    return scenes_for(cfg, cfg.batch_size, [0, cfg.seed, step])


def heldout(cfg: Config, n: int | None = None) -> Scenes:
    """The fixed held-out scenes (their own seed, never drawn in training)."""
    return scenes_for(cfg, n or cfg.heldout_n, [1, cfg.heldout_seed])


# ----------------------------------------------------------------------------------------------------------
# Feature-map pixels -> image pixels
# ----------------------------------------------------------------------------------------------------------
def conv_geometry(convs: list[nn.Conv2d]) -> tuple[float, float]:
    """(scale, shift) with ``image_px = scale * feature_px + shift`` for a chain of convs (first to last).

    A conv of kernel k, stride s and padding p centres output pixel ``i`` on input pixel
    ``s * i + (k - 1) / 2 - p``; chaining composes these affine maps, last conv first.
    """
    scale, shift = 1.0, 0.0
    for conv in reversed(convs):
        (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
        scale, shift = s * scale, s * shift + (k - 1) / 2 - p
    return scale, shift


def feature_to_image_px(p: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """Positions in feature-map pixels (any shape) -> the same positions in image pixels."""
    return p * scale + shift


def points_on_masks(points: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Whether each image-pixel point lies on its scene's mask.

    points (B, ..., 2) as (y, x) image pixels, masks (B, S, S) bool -> (B, ...) bool. Pixel ``i`` covers
    [i - 0.5, i + 0.5), so a point belongs to pixel ``floor(p + 0.5)``; points outside the image are off.
    """
    B, S = masks.shape[0], masks.shape[-1]
    idx = torch.floor(points + 0.5).long()  # (B, ..., 2)
    inside = ((idx >= 0) & (idx < S)).all(-1)  # (B, ...)
    idx = idx.clamp(0, S - 1)
    flat = rearrange(idx, "b ... p -> b (...) p")
    hit = masks[torch.arange(B)[:, None], flat[..., 0], flat[..., 1]]  # (B, P)
    return hit.reshape(inside.shape) & inside


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------
class SceneDAT(nn.Module):
    """Conv stem -> DAttention blocks (keys on a stride-``cfg.stride`` grid) -> mean pool -> linear head."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        C, Hf = cfg.channels, cfg.feature_size
        convs = [nn.Conv2d(3, C, cfg.patch, cfg.patch)]
        convs += [nn.Conv2d(C, C, 3, 1, 1) for _ in range(cfg.stem_convs)]
        layers: list[nn.Module] = []
        for conv in convs:
            layers += [conv, nn.GroupNorm(1, C), nn.GELU()]
        self.stem = nn.Sequential(*layers)
        self.norms = nn.ModuleList(nn.GroupNorm(1, C) for _ in range(cfg.n_blocks))
        self.blocks = nn.ModuleList(
            DAttention(C, (Hf, Hf), n_heads=cfg.n_heads, n_groups=cfg.n_groups, stride=cfg.stride,
                       offset_range_factor=cfg.offset_range_factor, ksize=cfg.offset_ksize, use_pe=False,
                       ref_convention="centered")
            for _ in range(cfg.n_blocks)
        )
        self.head = nn.Sequential(nn.LayerNorm(C), nn.Linear(C, cfg.n_classes))
        self.scale, self.shift = conv_geometry(convs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, n_classes)."""
        f = self.stem(images)  # (B, C, Hf, Wf)
        for norm, block in zip(self.norms, self.blocks, strict=True):
            f = block(norm(f))
        return self.head(reduce(f, "b c h w -> b c", "mean"))

    @torch.no_grad()
    def trace(self, images: torch.Tensor) -> list[DAttentionTrace]:
        """Every DAttention block's trace on these images (positions still in feature-map pixels)."""
        f, out = self.stem(images), []
        for norm, block in zip(self.norms, self.blocks, strict=True):
            out.append(block.trace(norm(f)))
            f = out[-1].output
        return out

    @torch.no_grad()
    def sampling_points(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled key positions (B, n_blocks, g, Hk, Wk, 2) and reference points (n_blocks, Hk, Wk, 2),
        both as (y, x) image pixels."""
        tr = self.trace(images)
        pos = torch.stack([t.positions_px for t in tr], 1)
        ref = torch.stack([t.reference_px for t in tr], 0)
        return feature_to_image_px(pos, self.scale, self.shift), feature_to_image_px(ref, self.scale, self.shift)


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def on_object_share(model: SceneDAT, scenes: Scenes, batch_size: int = 256) -> dict[str, float]:
    """Where the sampled keys land, on held-out scenes.

    * ``learned``: share of sampled key positions (all blocks, groups and keys) on an object;
    * ``reference``: the same share for the reference grid (the keys without their offsets);
    * ``coverage``: share of the image the objects cover (what uniformly random points would score);
    * ``lift``: learned / coverage.
    """
    model.eval()
    hits = ref_hits = total = ref_total = 0
    for i in range(0, len(scenes), batch_size):
        part = scenes.subset(slice(i, i + batch_size))
        pos, ref = model.sampling_points(part.images)  # (b, n, g, Hk, Wk, 2), (n, Hk, Wk, 2)
        on = points_on_masks(pos, part.masks)
        ref_on = points_on_masks(ref.expand(len(part), *ref.shape), part.masks)
        hits, total = hits + on.sum().item(), total + on.numel()
        ref_hits, ref_total = ref_hits + ref_on.sum().item(), ref_total + ref_on.numel()
    learned, coverage = hits / total, scenes.coverage
    return dict(learned=learned, reference=ref_hits / ref_total, coverage=coverage, lift=learned / coverage)


@torch.no_grad()
def evaluate(model: SceneDAT, scenes: Scenes, batch_size: int = 256) -> dict[str, float]:
    """Held-out loss and accuracy, plus ``on_object_share`` (keys prefixed ``share_``)."""
    model.eval()
    y = targets(scenes, model.cfg)
    logits = torch.cat([model(scenes.images[i:i + batch_size]) for i in range(0, len(scenes), batch_size)])
    out = dict(loss=F.cross_entropy(logits, y).item(), accuracy=(logits.argmax(1) == y).float().mean().item())
    out.update({f"share_{k}": v for k, v in on_object_share(model, scenes, batch_size).items()})
    return out


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------
@dataclass
class History:
    """Losses of every step and snapshots of the sampling points on one fixed held-out scene."""

    losses: list[float] = field(default_factory=list)
    snapshot_steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # each (n_blocks, g, Hk, Wk, 2) image px
    reference: torch.Tensor | None = None  # (n_blocks, Hk, Wk, 2) image px
    scene_index: int = 0


def make_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """AdamW with weight decay on the weight matrices only."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    groups = [dict(params=decay, weight_decay=cfg.weight_decay), dict(params=rest, weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def learning_rate(cfg: Config, step: int) -> float:
    """Linear warm-up for ``cfg.warmup`` steps, then a cosine down to 5% at ``cfg.steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless started by torchrun with several processes."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train_step(
    model: SceneDAT, opt: torch.optim.Optimizer, cfg: Config, step: int, net: nn.Module | None = None
) -> float:
    """One optimisation step on the batch of ``step``; returns its loss (the mean over the whole batch).

    Under torchrun, ``net`` is the DistributedDataParallel wrapper of ``model``: each of the N processes
    takes every N-th scene of the same batch and DDP averages the gradients, so the step equals the
    single-process step on the whole batch.
    """
    rank, size = world()
    model.train()
    batch = train_batch(cfg, step)
    if size > 1:
        batch = batch.subset(slice(rank, None, size))
    for g in opt.param_groups:
        g["lr"] = learning_rate(cfg, step)
    loss = F.cross_entropy((net or model)(batch.images), targets(batch, cfg))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    loss = loss.detach()
    if size > 1:
        dist.all_reduce(loss)
        loss /= size
    return loss.item()


def build(cfg: Config) -> tuple[SceneDAT, torch.optim.Optimizer]:
    """A freshly initialised model (seeded by ``cfg.seed``) and its optimizer."""
    torch.manual_seed(cfg.seed)
    model = SceneDAT(cfg)
    return model, make_optimizer(model, cfg)


def train(
    cfg: Config, model: SceneDAT | None = None, opt: torch.optim.Optimizer | None = None, start: int = 0,
    until: int | None = None, history: History | None = None, snapshot_every: int = 0, progress: bool = True,
    net: nn.Module | None = None,
) -> tuple[SceneDAT, torch.optim.Optimizer, History]:
    """Train from step ``start`` up to (not including) ``until`` (default ``cfg.steps``).

    With ``snapshot_every = K > 0`` the sampling points on held-out scene ``history.scene_index`` are
    recorded before every step that is a multiple of K, and after the run's last step (``cfg.steps``).
    ``net`` is the DistributedDataParallel wrapper of ``model`` under torchrun (see ``train_step``).
    """
    if model is None or opt is None:
        model, opt = build(cfg)
    history = history or History()
    until = cfg.steps if until is None else until
    scene = heldout(cfg, history.scene_index + 1).images[history.scene_index:][:1] if snapshot_every else None

    def snap(step: int) -> None:
        if scene is not None and (not history.snapshot_steps or history.snapshot_steps[-1] != step):
            pos, ref = model.sampling_points(scene)
            history.snapshot_steps.append(step)
            history.snapshots.append(pos[0])
            history.reference = ref

    bar = tqdm(range(start, until), desc="training", disable=not progress or world()[0] > 0, initial=start,
               total=until)
    for step in bar:
        if snapshot_every and step % snapshot_every == 0:
            snap(step)
        history.losses.append(train_step(model, opt, cfg, step, net))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(history.losses[-10:]):.3f}")
    if snapshot_every and (until == cfg.steps or until % snapshot_every == 0):
        snap(until)  # the final weights, or a regular snapshot a resumed run would not take twice
    return model, opt, history


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------
def rng_states() -> dict:
    """The global RNG states (torch, numpy, python), in types that ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    return dict(torch=torch.get_rng_state(), python=random.getstate(),
                numpy=[np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]])


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    kind, key, *rest = states["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))


def save_checkpoint(path: str | Path, model: SceneDAT, opt: torch.optim.Optimizer, step: int,
                    history: History, commands: list[str], train_seconds: float, **extra) -> None:
    """Everything needed to resume: model, optimizer, next step, RNG states, config, history, commands."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), step=step, rng=rng_states(),
                    config=asdict(model.cfg), history=asdict(history), commands=commands,
                    command=commands[-1], train_seconds=train_seconds, **extra), path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint dict (full or exported) with ``model`` rebuilt and loaded, in eval mode."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    cfg = Config.from_dict(ck["config"])
    model = SceneDAT(cfg)
    model.load_state_dict(ck["model"])
    ck["model_state"], ck["model"] = ck["model"], model.eval()
    if "history" in ck:
        ck["history"] = History(**ck["history"])
    return ck


def load_pretrained(path: str | Path | None = None) -> SceneDAT:
    """The shipped trained model (``assets/dat_scenes.pt``), in eval mode; ``model.info`` holds its record."""
    ck = load_checkpoint(path or PRETRAINED)
    model = ck["model"]
    model.info = {k: v for k, v in ck.items() if k not in ("model", "model_state")}
    return model


def export(path: str | Path, model: SceneDAT, ck_info: dict) -> None:
    """Weights-only file (plus its record) and a JSON twin beside it, for the notebook and the README."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(model=model.state_dict(), config=asdict(model.cfg), **ck_info), path)
    path.with_suffix(".json").write_text(json.dumps(dict(config=asdict(model.cfg), **ck_info), indent=2) + "\n")


# ----------------------------------------------------------------------------------------------------------
# The training GIF
# ----------------------------------------------------------------------------------------------------------
def save_training_gif(history: History, scene: Scenes, path: str | Path, fps: int = 5) -> None:
    """Animate the sampling points over the snapshot scene during training: each key is a dot (one colour
    per group) joined to its reference point (white cross) by a line, the object outlined in white."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.collections import LineCollection

    S = scene.images.shape[-1]
    fig, ax = plt.subplots(figsize=(3.3, 3.5), dpi=80)
    ax.imshow(rearrange(scene.images[0], "c h w -> h w c").numpy() * 0.55 + 0.2)  # dimmed scene
    ax.contour(scene.masks[0].numpy(), levels=[0.5], colors="white", linewidths=1.0)
    ref = rearrange(history.reference, "n h w p -> n (h w) p")  # (n_blocks, Hk*Wk, 2)
    ax.scatter(ref[..., 1].flatten(), ref[..., 0].flatten(), s=30, c="white", marker="+", linewidths=1.0)
    ax.set_xlim(-0.5 - S * 0.1, S * 1.1 - 0.5)
    ax.set_ylim(S * 1.1 - 0.5, -0.5 - S * 0.1)
    ax.set_axis_off()
    first = history.snapshots[0]  # (n_blocks, g, Hk, Wk, 2)
    colours = plt.cm.tab10(np.arange(first.shape[0] * first.shape[1]) % 10)
    lines = [ax.add_collection(LineCollection([], colors=[c], linewidths=0.8)) for c in colours]
    dots = [ax.scatter([], [], s=22, color=c, edgecolors="black", linewidths=0.5, zorder=3) for c in colours]
    title = ax.set_title("", fontsize=9)
    fig.tight_layout()

    def draw(i: int) -> list:
        pts = rearrange(history.snapshots[i], "n g h w p -> (n g) (h w) p").flip(-1)  # (x, y) for matplotlib
        starts = ref.flip(-1).repeat_interleave(first.shape[1], 0)  # (n*g, Hk*Wk, 2)
        for d, ln, p, r in zip(dots, lines, pts, starts, strict=True):
            d.set_offsets(p.numpy())
            ln.set_segments(torch.stack([r, p], 1).numpy())
        title.set_text(f"step {history.snapshot_steps[i]}: sampled keys")
        return [*dots, *lines, title]

    frames = list(range(len(history.snapshots))) + [len(history.snapshots) - 1] * fps  # hold the last frame
    FuncAnimation(fig, draw, frames=frames, blit=False).save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dattn.train", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, help="total number of training steps (default: the config's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="checkpoint to write (model, optimizer, step, RNG, config, history)")
    p.add_argument("--resume", type=Path, help="checkpoint to continue from (its config is kept)")
    p.add_argument("--evaluate", type=Path, metavar="CHECKPOINT", help="print the held-out metrics and exit")
    p.add_argument("--export", type=Path, help="also write weights-only .pt + .json here (e.g. assets/dat_scenes.pt)")
    p.add_argument("--gif", type=Path, help="write the animation of the sampling points during training here")
    p.add_argument("--snapshot-every", type=int, default=0, help="record the sampling points every K steps")
    p.add_argument("--stop-after", type=int, help="stop (and save) after this many steps of this call")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    types = {"int": int, "float": float, "str": str}
    for f in fields(Config):
        if f.name not in ("steps", "seed") and f.type in types:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=types[f.type], help=f"config (default {f.default})")
    return p.parse_args(argv)


def format_metrics(m: dict[str, float]) -> str:
    return (f"accuracy {m['accuracy']:.3f}  loss {m['loss']:.3f}  on-object share: learned {m['share_learned']:.3f}"
            f"  reference grid {m['share_reference']:.3f}  object coverage {m['share_coverage']:.3f}"
            f"  (lift x{m['share_lift']:.1f})")


def start_distributed(cfg: Config) -> tuple[int, int]:
    """Join torchrun's process group (gloo, CPU) when there are several processes; returns (rank, size)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        if cfg.batch_size % size:
            raise ValueError(f"batch_size ({cfg.batch_size}) must be divisible by the number of processes ({size})")
        dist.init_process_group("gloo")
    return world()


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads // int(os.environ.get("WORLD_SIZE", "1"))))
    if args.evaluate:
        ck = load_checkpoint(args.evaluate)
        m = evaluate(ck["model"], heldout(ck["model"].cfg))
        print(f"{args.evaluate} (step {ck.get('step', ck.get('steps'))}): {format_metrics(m)}")
        return m
    command = shlex.join(["python", "-m", "dattn.train", *(sys.argv[1:] if argv is None else argv)])
    if args.resume:
        ck = torch.load(args.resume, map_location="cpu", weights_only=True)
        cfg = Config.from_dict(ck["config"])
        if args.steps is not None:
            cfg.steps = args.steps
        model, opt = build(cfg)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        set_rng_states(ck["rng"])
        start, history, commands = ck["step"], History(**ck["history"]), [*ck["commands"], command]
        seconds, before = ck["train_seconds"], ck.get("metrics_before")
    else:
        overrides = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name, None) is not None}
        cfg = Config(**overrides)
        model, opt = build(cfg)
        start, history, commands, seconds = 0, History(), [command], 0.0
        before = None
        if int(os.environ.get("RANK", "0")) == 0:
            before = evaluate(model, heldout(cfg))
            print(f"before training: {format_metrics(before)}")
    until = cfg.steps if args.stop_after is None else min(cfg.steps, start + args.stop_after)
    rank, size = start_distributed(cfg)
    net = torch.nn.parallel.DistributedDataParallel(model) if size > 1 else None
    t0 = time.perf_counter()
    model, opt, history = train(cfg, model, opt, start, until, history, args.snapshot_every, not args.quiet, net)
    seconds += time.perf_counter() - t0
    info: dict = dict(command=command, commands=commands, seed=cfg.seed, steps=until,
                      train_seconds=round(seconds, 2), threads=torch.get_num_threads(), processes=size,
                      torch=str(torch.__version__), metrics_before=before)
    if rank == 0:  # one process reports and writes; the others wait at the barrier below
        info["metrics_after"] = after = evaluate(model, heldout(cfg))
        print(f"after {until} steps ({seconds:.1f} s of training): {format_metrics(after)}")
        if args.out:
            save_checkpoint(args.out, model, opt, until, history, commands, seconds, metrics_before=before)
        if args.export:
            export(args.export, model, info)
        if args.gif and history.snapshots:
            save_training_gif(history, heldout(cfg, history.scene_index + 1).subset([history.scene_index]), args.gif)
    if size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return info


if __name__ == "__main__":
    main()
