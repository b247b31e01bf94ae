"""The command line's other modes: evaluate one checkpoint, compare the shipped variants, sweep variants x
strides x seeds with the same budget and data."""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from dataclasses import asdict

import torch

from .checkpoints import ASSETS, SHIPPED, load_checkpoint, load_model, save_json
from .cli import UsageError, config_overrides, threads_for
from .config import VARIANTS, Config
from .loop import train
from .metrics import evaluate, format_metrics
from .task import heldout

SWEEP_SEEDS = ASSETS / "scenes_seeds.json"  # the shipped record of the variants over three seeds
DATA_FIELDS = ("task", "size", "n_objects", "radius", "heldout_seed", "heldout_n")


def evaluate_command(args: argparse.Namespace) -> dict:
    torch.set_num_threads(threads_for(args))
    ck = load_checkpoint(args.evaluate)
    m = evaluate(ck["model"], heldout(ck["model"].cfg))
    print(f"{args.evaluate} ({ck['model'].cfg.variant}, step {ck.get('step', ck.get('steps'))}): {format_metrics(m)}")
    return m


def spread(values: list[float]) -> dict:
    """Mean, standard deviation (0 for one value), min and max."""
    return dict(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                min=min(values), max=max(values), n=len(values))


def compare_shipped_command(args: argparse.Namespace) -> dict[str, dict]:
    """Evaluate every shipped variant on the same held-out scenes; print one line per variant."""
    torch.set_num_threads(threads_for(args))
    models = {v: load_model(p) for v, p in SHIPPED.items()}
    data = {v: {k: getattr(m.cfg, k) for k in DATA_FIELDS} for v, m in models.items()}
    if len({json.dumps(d, sort_keys=True) for d in data.values()}) > 1:
        raise UsageError(f"the shipped models were trained on different scenes: {data}")
    cfg = models["deformable"].cfg
    scenes = heldout(cfg)
    seeds = summarise(json.loads(SWEEP_SEEDS.read_text())["runs"]) if SWEEP_SEEDS.exists() else {}
    print(f"{len(scenes)} held-out scenes ({cfg.size}x{cfg.size}, seed {cfg.heldout_seed}), task {cfg.task}; "
          f"each model trained {cfg.steps} steps of {cfg.batch_size} scenes")
    if args.markdown:
        print("| variant | keys per group | accuracy | over seeds (mean ± std, min-max) | keys on objects | "
              "scenes where a key reads the object | MFLOPs / image | train s (CPU s) |")
        print("|---|---|---|---|---|---|---|---|")
    out = {}
    for v, model in models.items():
        m = evaluate(model, scenes)
        s = seeds.get((v, model.cfg.stride))
        over = (f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}-{s['max']:.3f}, {s['n']} seeds)" if s else "n/a")
        keys = model.cfg.key_grid**2
        if args.markdown:
            print(f"| {v} | {keys} | {m['accuracy']:.3f} | {over} | {m['keys_on_objects']:.1%} | "
                  f"{m['scenes_reached']:.1%} | {m['gflops_per_image'] * 1e3:.1f} | "
                  f"{model.info['train_seconds']:.0f} ({model.info.get('train_cpu_seconds', float('nan')):.0f}) |")
        else:
            print(f"{v:10s} accuracy {m['accuracy']:.4f}  seeds {over}  keys {keys}/group  keys on objects "
                  f"{m['keys_on_objects']:.1%}  scenes reached {m['scenes_reached']:.1%}  "
                  f"{m['gflops_per_image'] * 1e3:.1f} MFLOPs/image  trained {model.info['train_seconds']:.0f} s "
                  f"({model.info.get('train_cpu_seconds', float('nan')):.0f} s CPU)")
        out[v] = dict(m, seeds=s)
    return out


# ----------------------------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------------------------
def run_key(run: dict) -> tuple:
    return run["variant"], run["stride"], run["seed"]


def summarise(runs: list[dict]) -> dict[tuple[str, int], dict]:
    """Accuracy mean and spread per (variant, stride) over the seeds of a sweep's runs."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        groups.setdefault((r["variant"], r["stride"]), []).append(r["accuracy"])
    return {k: spread(v) for k, v in groups.items()}


def sweep_command(args: argparse.Namespace, base: Config, argv: list[str]) -> dict:
    """Train every variant x stride x seed with the same budget and data; print and record the accuracies."""
    torch.set_num_threads(threads_for(args))
    command = shlex.join(["python", "-m", "dattn.train", *argv])
    variants, seeds = args.variants or list(VARIANTS), args.seeds if args.seeds is not None else [0, 1, 2]
    strides = args.strides or [base.stride]
    overrides = {k: v for k, v in config_overrides(args).items() if k != "stride"}
    record = dict(command=command, base_config=asdict(base), runs=[])
    if args.record is not None and args.record.exists():
        old = json.loads(args.record.read_text())
        if old.get("base_config", {}) | {"stride": 0} != record["base_config"] | {"stride": 0}:
            raise UsageError(f"--record {args.record} holds a sweep with another config; choose another file")
        record["runs"] = old["runs"]
    done = {run_key(r) for r in record["runs"]}
    todo = [(v, s, seed) for s in strides for v in variants for seed in seeds]
    for i, (v, s, seed) in enumerate(todo):
        if (v, s, seed) in done:
            continue
        # dense ignores the stride: train it once, at the first stride
        if v == "dense" and s != strides[0]:
            continue
        cfg = Config(**{**overrides, "variant": v, "stride": s, "seed": seed,
                        **({"steps": args.steps} if args.steps else {})})
        print(f"[{i + 1}/{len(todo)}] {v}, stride {s}, seed {seed}", flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        model, _, history = train(cfg, progress=not args.quiet)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = evaluate(model, heldout(cfg))
        print(f"    {format_metrics(m)}  ({seconds:.0f} s)", flush=True)
        record["runs"].append(dict(variant=v, stride=s, seed=seed, key_grid=cfg.key_grid, accuracy=m["accuracy"],
                                   train_seconds=round(seconds, 2), train_cpu_seconds=round(cpu, 2),
                                   threads=torch.get_num_threads(),
                                   metrics=m, final_loss=statistics.fmean(history.losses[-50:])))
        if args.record is not None:
            save_json(args.record, record)
    summary = summarise(record["runs"])
    for (v, s), st in sorted(summary.items(), key=lambda kv: (kv[0][1], VARIANTS.index(kv[0][0]))):
        print(f"{v:10s} stride {s:2d}: accuracy {st['mean']:.3f} ± {st['std']:.3f} "
              f"(min {st['min']:.3f}, max {st['max']:.3f}, {st['n']} seeds)")
    return record

