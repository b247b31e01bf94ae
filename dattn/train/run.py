"""Training mode of the command line: nothing lost on Ctrl-C, SIGTERM or a crash of the machine.

The checkpoint is written atomically at the end, every ``--save-every`` steps, and when SIGINT or SIGTERM
arrives: the step in progress finishes, the checkpoint is saved, and the process exits with 128 + the
signal's number (130 for Ctrl-C) without a traceback. A signal during a save waits for the save to finish.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time

import torch
import torch.distributed as dist

from .checkpoints import export, save_checkpoint, set_rng_states
from .cli import threads_for
from .config import Config
from .loop import History, build, train, world
from .metrics import evaluate, format_metrics
from .task import heldout


class StopSignals:
    """Catches SIGINT and SIGTERM while active: the first one only sets ``signum``; the loop stops after its
    current step. Restores the previous handlers on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self) -> StopSignals:
        for s in self.SIGNALS:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            print(f"\n{signal.Signals(signum).name}: stopping after this step and saving the checkpoint",
                  file=sys.stderr, flush=True)
        self.signum = self.signum or signum

    def stop(self) -> bool:
        """Whether to stop now; under torchrun every process stops when any one was signalled."""
        flag = torch.tensor(float(self.signum is not None))
        if world()[1] > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def start_distributed(cfg: Config) -> tuple[int, int]:
    """Join torchrun's process group (gloo, CPU) when there are several processes; returns (rank, size)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        if cfg.batch_size % size:
            print(f"python -m dattn.train: error: --batch-size ({cfg.batch_size}) must be divisible by the "
                  f"number of processes ({size})", file=sys.stderr)
            raise SystemExit(2)
        dist.init_process_group("gloo")
    return world()


def train_command(args: argparse.Namespace, cfg: Config, ck: dict | None, argv: list[str]) -> dict:
    """Train (or resume) as the checked options say; returns the run's record."""
    torch.set_num_threads(threads_for(args))
    command = shlex.join(["python", "-m", "dattn.train", *argv])
    rank, size = start_distributed(cfg)
    with StopSignals() as signals:
        model, opt = build(cfg)
        if ck is not None:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            set_rng_states(ck["rng"])
            start, history, commands = ck["step"], History(**ck["history"]), [*ck["commands"], command]
            seconds, before = ck["train_seconds"], ck.get("metrics_before")
            cpu = ck.get("train_cpu_seconds", 0.0)
        else:
            start, history, commands, seconds, cpu, before = 0, History(), [command], 0.0, 0.0, None
            if rank == 0:
                before = evaluate(model, heldout(cfg))
                print(f"before training: {format_metrics(before)}", flush=True)
        until = cfg.steps if args.stop_after is None else min(cfg.steps, start + args.stop_after)
        if rank == 0:
            print(f"training {cfg.variant} from step {start} to {until} of {cfg.steps}; checkpoint {args.out}",
                  flush=True)
        net = torch.nn.parallel.DistributedDataParallel(model) if size > 1 else None
        t0, c0 = time.perf_counter(), time.process_time()

        options = dict(snapshot_every=args.snapshot_every, save_every=args.save_every,
                       export=None if args.export is None else str(args.export),
                       gif=None if args.gif is None else str(args.gif))

        def save(done: int) -> None:
            if rank == 0:
                save_checkpoint(args.out, model, opt, done, history, commands,
                                seconds + time.perf_counter() - t0, metrics_before=before, run_options=options,
                                train_cpu_seconds=cpu + time.process_time() - c0)

        def periodic(done: int) -> None:
            if args.save_every and done % args.save_every == 0 and done < until:
                save(done)

        model, opt, history = train(cfg, model, opt, start, until, history, args.snapshot_every or 0,
                                    not args.quiet, net, should_stop=signals.stop, on_step=periodic)
        done = len(history.losses)
        seconds, cpu = seconds + time.perf_counter() - t0, cpu + time.process_time() - c0
        save(done)
        if signals.signum is not None:
            if rank == 0:
                print(f"stopped at step {done} of {cfg.steps}; saved {args.out}. Continue with: "
                      f"python -m dattn.train --resume {shlex.quote(str(args.out))}", file=sys.stderr, flush=True)
            _finish_distributed(size)
            raise SystemExit(128 + signals.signum)
        record = dict(command=command, commands=commands, variant=cfg.variant, seed=cfg.seed, steps=done,
                      budget=dict(steps=cfg.steps, batch_size=cfg.batch_size, scenes=cfg.steps * cfg.batch_size),
                      train_seconds=round(seconds, 2), train_cpu_seconds=round(cpu, 2),
                      threads=torch.get_num_threads(), processes=size,
                      cpu_load_1min=round(os.getloadavg()[0], 2), torch=str(torch.__version__),
                      metrics_before=before)
        if rank == 0:
            record["metrics_after"] = after = evaluate(model, heldout(cfg))
            print(f"after {done} steps ({seconds:.1f} s of training, {cpu:.1f} s of CPU time): {format_metrics(after)}",
                  flush=True)
            if args.export:
                export(args.export, model, record)
            if args.gif and history.snapshots:
                from .gif import save_training_gif

                save_training_gif(history, heldout(cfg, history.scene_index + 1).subset([history.scene_index]),
                                  args.gif)
    _finish_distributed(size)
    return record


def _finish_distributed(size: int) -> None:
    if size > 1:
        dist.barrier()
        dist.destroy_process_group()
