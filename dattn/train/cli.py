"""The command line: options, every one checked before any work, and the four modes.

    python -m dattn.train --variant deformable --steps 1000 --out runs/d.pt   # train (Ctrl-C saves, then exits)
    python -m dattn.train --resume runs/d.pt                                  # continue to its --steps
    python -m dattn.train --evaluate runs/d.pt                                # held-out metrics
    python -m dattn.train --compare-shipped                                   # the shipped variants, side by side
    python -m dattn.train --sweep --variants deformable fixed dense --seeds 0 1 2 --record runs/seeds.json

A bad option gets one line that names it, on stderr, and exit code 2, before any training step.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from .checkpoints import CheckpointError, read_checkpoint
from .config import VARIANTS, Config, ConfigError

PROG = "python -m dattn.train"
# Config fields the command line sets through dedicated options (or never)
_PAIRS = ("n_objects", "radius")
_TYPES = {"int": int, "float": float, "str": str}
_TRAIN_ONLY = ("steps", "seed", "out", "export", "gif", "snapshot_every", "save_every", "stop_after", "resume")
_SWEEP_ONLY = ("variants", "seeds", "strides", "record")


class UsageError(Exception):
    """A bad command line, said in one line that names the option."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors (unknown option, "abc" for an int): one line too
        raise UsageError(re.sub(r"^argument (--[\w-]+): (?=\1 )", "", message))


def _at_least(name: str, low: int):
    """An argparse type: an integer >= low, or an error that names the option."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} must be an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"--{name} must be at least {low}, got {v}")
        return v
    return parse


def _positive(name: str):
    return _at_least(name, 1)


def _non_negative(name: str):
    return _at_least(name, 0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train the scene model (deformable, fixed-grid or dense attention), "
                                        "evaluate it, compare the shipped variants.",
                argument_default=None)
    mode = p.add_argument_group("modes (default: train)")
    mode.add_argument("--evaluate", type=Path, metavar="CHECKPOINT", help="print the held-out metrics and exit")
    mode.add_argument("--compare-shipped", action="store_true",
                      help="evaluate assets/scenes_<variant>.pt on the same held-out scenes, one line per variant")
    mode.add_argument("--sweep", action="store_true",
                      help="train every --variants x --strides x --seeds, one after another; print mean and spread")
    mode.add_argument("--markdown", action="store_true", help="with --compare-shipped: a markdown table")
    run = p.add_argument_group("training")
    run.add_argument("--steps", type=_positive("steps"), help="total number of training steps (default 1000)")
    run.add_argument("--seed", type=_non_negative("seed"), help="initial weights and batches (default 0)")
    run.add_argument("--out", type=Path, help="checkpoint (model, optimizer, step, RNG, history); default "
                                              "runs/scenes_<variant>_seed<seed>.pt")
    run.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="continue this checkpoint (config kept)")
    run.add_argument("--save-every", type=_non_negative("save-every"),
                     help="also write the checkpoint every N steps (default 0: at the end and on Ctrl-C only)")
    run.add_argument("--stop-after", type=_positive("stop-after"), help="stop (and save) after N steps of this call")
    run.add_argument("--export", type=Path, help="also write the weights (.pt) and their record (.json) here")
    run.add_argument("--gif", type=Path, help="animate the sampled keys during training (needs --snapshot-every)")
    run.add_argument("--snapshot-every", type=_positive("snapshot-every"), help="record the keys every K steps")
    sweep = p.add_argument_group("sweep")
    sweep.add_argument("--variants", nargs="+", choices=VARIANTS, help="variants to train (default: all three)")
    sweep.add_argument("--seeds", nargs="+", type=_non_negative("seeds"), help="seeds to train (default 0 1 2)")
    sweep.add_argument("--strides", nargs="+", type=_positive("strides"), help="key-grid strides (default: --stride)")
    sweep.add_argument("--record", type=Path, help="JSON record of the sweep, rewritten after every run; runs "
                                                   "already in it are skipped")
    p.add_argument("--threads", type=_positive("threads"), help="CPU threads (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    cfg = p.add_argument_group("model and data (a new run only; --resume keeps the checkpoint's)")
    for f in fields(Config):
        flag = f"--{f.name.replace('_', '-')}"
        if f.name in ("steps", "seed"):
            continue
        if f.name in _PAIRS:
            default = " ".join(map(str, f.default))
            cfg.add_argument(flag, nargs=2, type=int, metavar=("MIN", "MAX"), help=f"default {default}")
        elif f.type in _TYPES:
            cfg.add_argument(flag, type=_TYPES[f.type], help=f"default {f.default}")
    return p


def config_overrides(args: argparse.Namespace) -> dict:
    """The Config fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name, None) is not None}


# ----------------------------------------------------------------------------------------------------------
# Checks before any work
# ----------------------------------------------------------------------------------------------------------
def _given(args: argparse.Namespace, names) -> list[str]:
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]


def check_mode(args: argparse.Namespace) -> str:
    """Which mode the options ask for; refuses options that the mode would silently ignore."""
    modes = [m for m in ("evaluate", "compare_shipped", "sweep") if getattr(args, m)]
    if len(modes) > 1:
        raise UsageError(f"choose one of --evaluate, --compare-shipped, --sweep; got {', '.join(_given(args, modes))}")
    mode = modes[0] if modes else "train"
    config = [f.name for f in fields(Config) if f.name not in ("steps", "seed")]
    ignored = {
        "evaluate": [*_TRAIN_ONLY, *_SWEEP_ONLY, *config, "markdown"],
        "compare_shipped": [*_TRAIN_ONLY, *_SWEEP_ONLY, *config],
        "sweep": [*(n for n in _TRAIN_ONLY if n not in ("steps",)), "markdown", "variant", "seed"],
        "train": [*_SWEEP_ONLY, "markdown"],
    }[mode]
    bad = _given(args, ignored)
    if bad:
        name = "training" if mode == "train" else "--" + mode.replace("_", "-")
        raise UsageError(f"{bad[0]} does nothing in {name} mode")
    if mode == "train" and args.resume is not None:
        bad = _given(args, config + ["seed"])
        if bad:
            raise UsageError(f"{bad[0]} cannot change a resumed run (its checkpoint's config is kept; only --steps "
                             f"may grow)")
    return mode


def check_outputs(outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None) -> None:
    """Refuse outputs that would overwrite each other or an input, then create their folders and check that a
    file can be written in each: all before any work."""
    inputs = {k: v for k, v in (inputs or {}).items() if v is not None}
    suffix = {"--out": ".pt", "--export": ".pt", "--gif": ".gif", "--record": ".json"}
    seen: dict[Path, str] = {}
    files: list[tuple[str, Path]] = []
    for option, path in outputs.items():
        if path is None:
            continue
        want = suffix.get(option)
        if want and path.suffix != want:
            raise UsageError(f"{option} must end with {want}, got {path}")
        files.append((option, path))
        if option == "--export":
            files.append(("--export (its JSON record)", path.with_suffix(".json")))
    for name, p in files:
        key = p.resolve()
        if key in seen:
            raise UsageError(f"{name} {p} and {seen[key]} are the same file: one would overwrite the other")
        for in_name, in_path in inputs.items():
            if in_path.resolve() == key and not (name == "--out" and in_name == "--resume"):
                raise UsageError(f"{name} {p} would overwrite the {in_name} file")
        if p.is_dir():
            raise UsageError(f"{name} {p} is a folder; give a file name")
        seen[key] = f"{name} {p}" if name in outputs else name
    for name, p in files:
        _check_writable(name, p.parent)


def _check_writable(option: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option}: cannot create the folder {folder} ({e.strerror or e})") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(f"{option}: cannot write in the folder {folder} ({e.strerror or e})") from None


def check_resume(args: argparse.Namespace) -> dict:
    """The checkpoint to resume, read and checked against --steps."""
    try:
        ck = read_checkpoint(args.resume)
    except CheckpointError as e:
        raise UsageError(f"--resume: {e}") from None
    if ck.get("kind") == "export" or "optimizer" not in ck:
        raise UsageError(f"--resume: {args.resume} holds exported weights only; resume needs a checkpoint "
                         f"written by --out")
    done = ck["step"]
    if args.steps is not None and args.steps < done:
        raise UsageError(f"--steps ({args.steps}) is less than the {done} steps {args.resume} has already done")
    return ck


def check_train(args: argparse.Namespace) -> tuple[Config, dict | None]:
    """The run's config (and the checkpoint to resume), with every option checked."""
    ck = check_resume(args) if args.resume is not None else None
    if ck is not None:  # the resumed run finishes what its first command asked for, unless told otherwise
        for name, value in ck.get("run_options", {}).items():
            if getattr(args, name, None) is None and value is not None:
                setattr(args, name, Path(value) if name in ("export", "gif") else value)
    if args.gif is not None and args.snapshot_every is None:
        raise UsageError("--gif needs --snapshot-every K (the keys are recorded every K steps)")
    try:
        if ck is not None:
            cfg = Config.from_dict(ck["config"])
            if args.steps is not None:
                cfg.steps = args.steps
        else:
            cfg = Config(**{**config_overrides(args), **({"steps": args.steps} if args.steps else {}),
                            **({"seed": args.seed} if args.seed is not None else {})})
        cfg.validate()
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if args.out is None:
        args.out = args.resume or Path("runs") / f"scenes_{cfg.variant}_seed{cfg.seed}.pt"
    check_outputs({"--out": args.out, "--export": args.export, "--gif": args.gif}, {"--resume": args.resume})
    _check_model(cfg)
    return cfg, ck


def _check_model(cfg: Config) -> None:
    """Build the model once on the meta device so that DAttention's own checks run before any work."""
    import torch

    from .model import SceneDAT

    try:
        with torch.device("meta"):
            SceneDAT(cfg)
    except ValueError as e:
        raise UsageError(f"the model cannot be built: {e}") from None


def check_sweep(args: argparse.Namespace) -> Config:
    try:
        cfg = Config(**{**config_overrides(args), **({"steps": args.steps} if args.steps else {})})
        for stride in args.strides or [cfg.stride]:
            Config(**{**config_overrides(args), "stride": stride})
    except ConfigError as e:
        raise UsageError(str(e)) from None
    check_outputs({"--record": args.record})
    return cfg


def main(argv: list[str] | None = None):
    """Run the command line; returns the mode's result (tests call it), exits 2 on a bad option."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        mode = check_mode(args)
        if mode == "evaluate":
            from .commands import evaluate_command
            return evaluate_command(args)
        if mode == "compare_shipped":
            from .commands import compare_shipped_command
            return compare_shipped_command(args)
        if mode == "sweep":
            cfg = check_sweep(args)
            from .commands import sweep_command
            return sweep_command(args, cfg, argv)
        cfg, ck = check_train(args)
    except (UsageError, CheckpointError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    from .run import train_command
    return train_command(args, cfg, ck, argv)


def threads_for(args: argparse.Namespace) -> int:
    return max(1, (args.threads or 2) // int(os.environ.get("WORLD_SIZE", "1")))
