"""Train a course detector with YOLOv5 v7.0's own ``train.py`` and record the run (in .venv-yolov5).

    .venv-yolov5/bin/python -m dattn.yolo.experiment --kind c3_dattention --seed 0 --epochs 12

makes the dataset (``dattn.yolo.dataset``) when missing, writes the model's yaml (``dattn.yolo.detector``),
runs ``python -m yolov5.train`` from scratch (``--weights ''``: nothing is downloaded) with the environment of
``make yolov5-env`` (a local font, no auto-install), then exports the last epoch's EMA weights (what YOLOv5
validated, stored by YOLOv5 in fp16) as a plain state_dict, and writes the record beside them: the command,
seed, epochs, YOLOv5's per-epoch ``results.csv`` and the last epoch's metrics, its summary line, the wall time
and the machine. Nothing here imports YOLOv5; it runs in the environment whose ``yolov5`` package is the patched
v7.0 of ``make yolov5-env``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from .dataset import DetectionSpec, ensure
from .detector import ASSETS, KINDS, detector_cfg, record_path, weights_path

ROOT = Path(__file__).resolve().parents[2]
YOLOV5_VERSION = "7.0.14"
CONFIG = ROOT / "build" / "yolov5" / "config"  # made by `make yolov5-env`: a local font as Arial.ttf
ENV = {
    "YOLOV5_CONFIG_DIR": str(CONFIG),
    "YOLO_CONFIG_DIR": str(CONFIG),
    "YOLOv5_AUTOINSTALL": "false",
    "YOLO_AUTOINSTALL": "false",
    "YOLO_OFFLINE": "true",
    "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",  # YOLOv5 pickles its checkpoints; these are the ones it writes
    "MPLBACKEND": "Agg",
}
# results.csv column -> record name
COLUMNS = {
    "metrics/precision": "precision",
    "metrics/recall": "recall",
    "metrics/mAP_0.5": "mAP50",
    "metrics/mAP_0.5:0.95": "mAP50-95",
}


def machine() -> dict[str, Any]:
    """Where the run happened: CPU model, cores, torch and its threads, Python, YOLOv5's version."""
    cpu = platform.processor() or "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:  # the kernel shares the CPU between sessions (autogroups) by their nice value, not the processes'
        autogroup = Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        autogroup = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "yolov5": YOLOV5_VERSION, "os": platform.platform(),
            "autogroup": autogroup}


def train_args(data: Path, cfg: Path, seed: int, epochs: int, batch: int, workers: int, img: int, project: Path,
               name: str) -> list[str]:
    """The arguments of YOLOv5's train.py for one run (hyperparameters: its default hyp.scratch-low.yaml)."""
    return ["--img", str(img), "--batch-size", str(batch), "--epochs", str(epochs), "--data", str(data),
            "--cfg", str(cfg), "--weights", "", "--seed", str(seed), "--workers", str(workers), "--device", "cpu",
            "--project", str(project), "--name", name, "--exist-ok", "--noplots", "--cache", "ram"]


def read_results(path: Path) -> dict[str, list[float]]:
    """YOLOv5's results.csv as columns (names stripped of their padding)."""
    with open(path, newline="") as f:
        rows = [[c.strip() for c in row] for row in csv.reader(f)]
    header, body = rows[0], rows[1:]
    return {h: [float(r[i]) for r in body] for i, h in enumerate(header) if h}


def export_weights(last: Path, dest: Path) -> dict[str, Any]:
    """Save the EMA model of a YOLOv5 checkpoint (train.py's last.pt, stripped) as an fp16 state_dict."""
    ckpt = torch.load(last, map_location="cpu", weights_only=False)  # YOLOv5's pickle: needs its classes
    model = ckpt.get("ema") or ckpt["model"]  # after strip_optimizer, 'model' holds the EMA
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(dest)
    return {"weights": dest.name, "weights_bytes": dest.stat().st_size,
            "weights_sha256": hashlib.sha256(dest.read_bytes()).hexdigest(),
            "parameters": sum(v.numel() for k, v in model.named_parameters())}


def log_line(log: str, pattern: str, first: bool = False) -> str | None:
    """The last (or first) line of the log that matches pattern, without colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in log.splitlines()]
    found = [line for line in lines if re.search(pattern, line)]
    return (found[0] if first else found[-1]) if found else None


def run(kind: str, seed: int, epochs: int, batch: int = 16, workers: int = 2, spec: DetectionSpec | None = None,
        data_root: Path = ROOT / "build" / "detector_data", project: Path = ROOT / "runs" / "detector",
        export: Path | None = ASSETS, argv: list[str] | None = None) -> dict[str, Any]:
    """Train one detector with YOLOv5's train.py; export and record it when ``export`` is a folder."""
    spec = spec or DetectionSpec()
    project, data_root = Path(project).resolve(), Path(data_root).resolve()
    if not (CONFIG / "Arial.ttf").is_file():
        raise SystemExit(f"{CONFIG} has no Arial.ttf: run `make yolov5-env` first")
    data = ensure(data_root, spec)
    name = f"{kind}_s{seed}"
    run_dir = project / name
    shutil.rmtree(run_dir, ignore_errors=True)  # train.py appends to an old results.csv
    run_dir.mkdir(parents=True)
    cfg = run_dir / detector_cfg(kind, spec.size)["yaml_file"]
    d = detector_cfg(kind, spec.size)
    d.pop("yaml_file")
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    args = train_args(data, cfg, seed, epochs, batch, workers, spec.size, project, name)
    cmd = [sys.executable, "-m", "yolov5.train", *args]
    print("$", shlex.join(["python", "-m", "yolov5.train", *args]), flush=True)
    log_path = project / f"{name}.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, cwd=run_dir)
    seconds = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"train.py failed (exit {proc.returncode}); the end of {log_path}:\n{text[-3000:]}")
    results = read_results(run_dir / "results.csv")
    if len(results["epoch"]) != epochs:
        raise SystemExit(f"{run_dir / 'results.csv'} has {len(results['epoch'])} epochs instead of {epochs}")
    record: dict[str, Any] = {
        "kind": kind, "seed": seed, "epochs": epochs, "img": spec.size, "batch": batch, "workers": workers,
        "hyp": "hyp.scratch-low.yaml (train.py's default)",
        "command": shlex.join(["python", "-m", "yolov5.train", *[a.replace(str(ROOT) + "/", "") for a in args]]),
        "driver": shlex.join(["python", "-m", "dattn.yolo.experiment", *(argv or [])]),
        "dataset": {**spec.__dict__, "root": os.path.relpath(data_root, ROOT)},
        "metrics": {COLUMNS[c]: results[c][-1] for c in COLUMNS},
        "metrics_source": "results.csv, last epoch: YOLOv5's validation of the EMA model (fp32) on the val split",
        "curves": results,
        "train_seconds": round(seconds, 1),
        "yolov5_summary": log_line(text, r" summary: .* GFLOPs", first=True),  # printed when train.py builds it
        "yolov5_summary_fused": log_line(text, r" summary: .* GFLOPs"),  # the final validation's fused model
        "yolov5_time": log_line(text, r"epochs completed in"),
        "autoanchor": log_line(text, r"AutoAnchor: .*Best Possible Recall"),
        "nms_time_limit_warnings": text.count("NMS time limit"),
        "machine": machine(),
        "load_average_at_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if export is not None:
        record.update(export_weights(run_dir / "weights" / "last.pt", weights_path(kind, seed, export)))
        record["weights_from"] = "train.py's last.pt: the EMA model of the last epoch, fp16 as YOLOv5 saves it"
        record_path(kind, seed, export).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {weights_path(kind, seed, export)} and {record_path(kind, seed, export)}")
    print(f"{kind} seed {seed}: {epochs} epochs in {seconds / 60:.1f} min, " +
          ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items()))
    return record


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=DetectionSpec.n_train)
    parser.add_argument("--project", type=Path, default=ROOT / "runs" / "detector")
    parser.add_argument("--export", type=Path, default=ASSETS, help="folder for weights and record")
    parser.add_argument("--no-export", action="store_true", help="train only (pilots, determinism checks)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch < 1 or args.workers < 0:
        parser.error("--epochs and --batch must be >= 1, --workers >= 0")
    spec = DetectionSpec(n_train=args.n_train)
    run(args.kind, args.seed, args.epochs, args.batch, args.workers, spec, project=args.project,
        export=None if args.no_export else args.export, argv=argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
