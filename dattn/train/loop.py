"""The training loop: AdamW with warm-up and cosine decay, one step per seeded batch, snapshots of the keys.

The batch of step ``t`` is ``train_batch(cfg, t)``, a function of (seed, t) only, so a run that stops and
resumes from its checkpoint takes exactly the steps of an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import Config
from .model import SceneDAT, build_model
from .task import heldout, targets, train_batch


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


def build(cfg: Config) -> tuple[SceneDAT, torch.optim.Optimizer]:
    """A freshly initialised model (seeded by ``cfg.seed``) and its optimizer."""
    model = build_model(cfg)
    return model, make_optimizer(model, cfg)


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


def train(
    cfg: Config, model: SceneDAT | None = None, opt: torch.optim.Optimizer | None = None, start: int = 0,
    until: int | None = None, history: History | None = None, snapshot_every: int = 0, progress: bool = True,
    net: nn.Module | None = None, should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[SceneDAT, torch.optim.Optimizer, History]:
    """Train from step ``start`` up to (not including) ``until`` (default ``cfg.steps``).

    With ``snapshot_every = K > 0`` the sampling points on held-out scene ``history.scene_index`` are
    recorded before every step that is a multiple of K, and after the run's last step (``cfg.steps``).
    ``should_stop()`` is asked after every step (a signal arrived: stop there); ``on_step(done)`` is called
    with the number of steps done after each one (periodic checkpoints). ``net`` is the DDP wrapper.
    The number of steps done when it returns is ``len(history.losses)`` (a resumed history holds the earlier ones).
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

    bar = tqdm(range(start, until), desc=f"training {cfg.variant}", disable=not progress or world()[0] > 0,
               initial=start, total=until, mininterval=1.0)
    step = start
    for step in bar:
        if snapshot_every and step % snapshot_every == 0:
            snap(step)
        history.losses.append(train_step(model, opt, cfg, step, net))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(history.losses[-10:]):.3f}", refresh=False)
        if on_step is not None:
            on_step(step + 1)
        if should_stop is not None and should_stop():
            step += 1
            break
    else:
        step = until
    bar.close()
    if snapshot_every and (step == cfg.steps or step % snapshot_every == 0):
        snap(step)  # the final weights, or a regular snapshot a resumed run would not take twice
    return model, opt, history
