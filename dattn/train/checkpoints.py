"""Checkpoints that survive Ctrl-C and full disks, exported weights with their JSON record, the shipped models.

Every file is written to a temporary file in the same folder, flushed, fsync'ed and renamed over the
target: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import VARIANTS, Config, ConfigError
from .loop import History
from .model import SceneDAT

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED = {v: ASSETS / f"scenes_{v}.pt" for v in VARIANTS}


class CheckpointError(ValueError):
    """A file that is not a checkpoint this package can read, said in one line."""


# ----------------------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------------------
def atomic_write(path: str | Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then flush, fsync and rename it to ``path``.

    If anything fails (an exception, a full disk) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_torch(path: str | Path, obj) -> None:
    """``torch.save`` through ``atomic_write``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_json(path: str | Path, obj) -> None:
    """Indented JSON through ``atomic_write``."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


# ----------------------------------------------------------------------------------------------------------
# RNG states
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


# ----------------------------------------------------------------------------------------------------------
# Full checkpoints (to resume) and exported weights (to ship)
# ----------------------------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, model: SceneDAT, opt: torch.optim.Optimizer, step: int,
                    history: History, commands: list[str], train_seconds: float, **extra) -> None:
    """Everything needed to resume: model, optimizer, next step, RNG states, config, history, commands."""
    save_torch(path, dict(kind="checkpoint", model=model.state_dict(), optimizer=opt.state_dict(), step=step,
                          rng=rng_states(), config=asdict(model.cfg), history=asdict(history), commands=commands,
                          command=commands[-1], train_seconds=train_seconds, **extra))


def read_checkpoint(path: str | Path) -> dict:
    """The raw dict of a checkpoint or an exported file; ``CheckpointError`` in one line for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged or foreign file
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {reason})") from None
    if not isinstance(ck, dict) or not {"model", "config"} <= set(ck):
        raise CheckpointError(f"{path} is a torch file but not a dattn.train checkpoint (it needs 'model' and "
                              f"'config' entries)")
    return ck


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint dict (full or exported) with ``model`` rebuilt and loaded, in eval mode."""
    ck = read_checkpoint(path)
    try:
        cfg = Config.from_dict(ck["config"])
        model = SceneDAT(cfg)
        model.load_state_dict(ck["model"])
    except (ConfigError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its weights do not fit its config ({str(e).splitlines()[0][:160]})") from None
    ck["model_state"], ck["model"] = ck["model"], model.eval()
    if "history" in ck:
        ck["history"] = History(**ck["history"])
    return ck


def export(path: str | Path, model: SceneDAT, record: dict) -> None:
    """Weights (plus their record) at ``path`` and the record alone as JSON beside it (same name, .json)."""
    path = Path(path)
    save_torch(path, dict(kind="export", model=model.state_dict(), config=asdict(model.cfg), **record))
    save_json(path.with_suffix(".json"), dict(config=asdict(model.cfg), **record))


def load_model(path: str | Path) -> SceneDAT:
    """The model of a checkpoint or exported file, in eval mode; ``model.info`` holds its record."""
    ck = load_checkpoint(path)
    model = ck["model"]
    model.info = {k: v for k, v in ck.items() if k not in ("model", "model_state", "optimizer", "rng")}
    return model


def load_shipped(variant: str = "deformable") -> SceneDAT:
    """A shipped trained model (``assets/scenes_<variant>.pt``) in eval mode; ``model.info`` holds its record.

    ``variant`` is one of ``VARIANTS``: deformable, fixed (offsets off) or dense (a key at every position).
    """
    if variant not in SHIPPED:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return load_model(SHIPPED[variant])
