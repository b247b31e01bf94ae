"""The course's two trained detectors: yolov5n (stock C3 at layer 8) and its C3_DAttention twin, their
shipped weights and their training records.

Both are built by ``dattn.yolo`` from the shipped yaml files, for the three shape classes of
``dattn.yolo.dataset``: ``stock`` is ``yolov5n.yaml``; ``c3_dattention`` is the seed's
``yolov5_C3_DAttention.yaml`` at scale n with ``q_size`` set to the P5 map of the training size (256 / 32 = 8).
The weights (``assets/detector_<kind>_s<seed>.pt``, fp16 state_dicts) were trained by YOLOv5 v7.0's own
``train.py`` (see ``dattn.yolo.experiment``); each has a record beside it (``.json``): the command, seed,
epochs, per-epoch curves, final metrics, training time and machine.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import torch

from ..data import SHAPES
from .model import DetectionModel, build_model, scale_cfg

KINDS = ("stock", "c3_dattention")
IMG = 256  # the training and evaluation image side
ASSETS = Path(__file__).resolve().parents[2] / "assets"
METRICS = ("precision", "recall", "mAP50", "mAP50-95")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def detector_cfg(kind: str, img: int = IMG, nc: int = len(SHAPES)) -> dict[str, Any]:
    """The yaml dict of a detector: yolov5n, or the seed's yaml at scale n with q_size = the P5 map of img."""
    check_kind(kind)
    if img % 32:
        raise ValueError(f"img must be a multiple of 32 (the P5 stride), got {img}")
    if kind == "stock":
        d = scale_cfg("yolov5n.yaml", None)
        d["yaml_file"] = "yolov5n.yaml"
    else:
        d = scale_cfg("yolov5_C3_DAttention.yaml", "n")
        d.pop("scale")
        layer = d["backbone"][8]
        assert layer[2] == "C3_DAttention", layer  # the seed's layer 8
        layer[3] = [layer[3][0], [img // 32, img // 32], *layer[3][2:]]
        d["yaml_file"] = "yolov5n_C3_DAttention.yaml"
    d["nc"] = nc
    return d


def build_detector(kind: str, img: int = IMG) -> DetectionModel:
    """An untrained detector of this kind (dattn.yolo), in train mode as built."""
    return build_model(detector_cfg(kind, img))


def weights_path(kind: str, seed: int, folder: Path = ASSETS) -> Path:
    check_kind(kind)
    return Path(folder) / f"detector_{kind}_s{seed}.pt"


def record_path(kind: str, seed: int, folder: Path = ASSETS) -> Path:
    return weights_path(kind, seed, folder).with_suffix(".json")


def load_detector(kind: str, seed: int = 0, folder: Path = ASSETS) -> DetectionModel:
    """The shipped detector in eval mode (fp32), its state_dict loaded with strict=True."""
    path = weights_path(kind, seed, folder)
    if not path.is_file():
        raise FileNotFoundError(f"no shipped weights {path}; seeds with weights: {shipped_seeds(kind, folder)}")
    model = build_detector(kind, load_record(kind, seed, folder)["img"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.names = list(SHAPES)
    return model.float().eval()


def shipped_seeds(kind: str, folder: Path = ASSETS) -> list[int]:
    """Seeds of the shipped weights of one kind, ascending."""
    check_kind(kind)
    return sorted(int(p.stem.rsplit("_s", 1)[1]) for p in Path(folder).glob(f"detector_{kind}_s*.pt"))


def load_record(kind: str, seed: int, folder: Path = ASSETS) -> dict[str, Any]:
    return json.loads(record_path(kind, seed, folder).read_text())


def load_records(folder: Path = ASSETS) -> list[dict[str, Any]]:
    """Every shipped record, stock first, seeds ascending."""
    return [load_record(kind, seed, folder) for kind in KINDS for seed in shipped_seeds(kind, folder)]


def summarize(records: list[dict[str, Any]], source: str = "metrics") -> list[dict[str, Any]]:
    """Per kind: seeds, and for each metric the mean, the sample standard deviation and min..max over seeds.

    ``source`` picks the record's field: ``metrics`` (YOLOv5's last-epoch validation) or ``reevaluated``.
    """
    rows = []
    for kind in KINDS:
        runs = [r for r in records if r["kind"] == kind]
        if not runs:
            continue
        row: dict[str, Any] = {"kind": kind, "seeds": [r["seed"] for r in runs]}
        for m in (m for m in METRICS if all(m in r[source] for r in runs)):
            v = [r[source][m] for r in runs]
            row[m] = {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                      "min": min(v), "max": max(v), "values": v}
        rows.append(row)
    return rows


def yolov5_gflops_line(record: dict[str, Any]) -> float | None:
    """The GFLOPs of the summary line YOLOv5 printed when train.py built the model (thop, at 640), if any."""
    import re

    m = re.search(r"([\d.]+) GFLOPs", record.get("yolov5_summary") or "")
    return float(m.group(1)) if m else None


def results_table(records: list[dict[str, Any]], source: str = "metrics") -> str:
    """The comparison as a markdown table: mean ± sample std (and each seed) of the val metrics, parameters,
    GFLOPs counted with the attention (torch.utils.flop_counter) at the training size and at 640, the GFLOPs
    of YOLOv5's own summary line (thop at 640), and the training time."""
    from .summary import count_flops

    head = ("| model | seeds | epochs | val mAP50 | val mAP50-95 | mAP50 per seed | parameters | GFLOPs at {img} "
            "| GFLOPs at 640 | YOLOv5's line at 640 | train min |")
    lines = []
    for row in summarize(records, source):
        runs = [r for r in records if r["kind"] == row["kind"]]
        img = runs[0]["img"]
        model = build_detector(row["kind"], img)
        params = sum(p.numel() for p in model.parameters())
        line5 = yolov5_gflops_line(runs[0])
        lines.append(
            f"| {row['kind']} | {', '.join(map(str, row['seeds']))} | {runs[0]['epochs']} "
            f"| {row['mAP50']['mean']:.3f} ± {row['mAP50']['std']:.3f} "
            f"| {row['mAP50-95']['mean']:.3f} ± {row['mAP50-95']['std']:.3f} "
            f"| {', '.join(f'{v:.3f}' for v in row['mAP50']['values'])} | {params:,} "
            f"| {count_flops(model, img) / 1e9:.3f} | {count_flops(model, 640) / 1e9:.2f} "
            f"| {'-' if line5 is None else f'{line5:.1f}'} "
            f"| {statistics.fmean(r['train_seconds'] for r in runs) / 60:.1f} |"
        )
    if not lines:
        raise ValueError("no records")
    imgs = {r["img"] for r in records}
    sep = "|" + "---|" * 11
    return "\n".join([head.format(img="/".join(map(str, sorted(imgs)))), sep, *lines])


def verdict(records: list[dict[str, Any]], metric: str = "mAP50", source: str = "metrics") -> dict[str, float]:
    """Difference of the mean metric (c3_dattention - stock) and each model's seed spread (max - min)."""
    rows = {r["kind"]: r[metric] for r in summarize(records, source)}
    if set(rows) != set(KINDS):
        raise ValueError(f"the records hold {sorted(rows)}, not both {KINDS}")
    return {"difference": rows["c3_dattention"]["mean"] - rows["stock"]["mean"],
            "spread_stock": rows["stock"]["max"] - rows["stock"]["min"],
            "spread_c3_dattention": rows["c3_dattention"]["max"] - rows["c3_dattention"]["min"]}


def main() -> int:
    """Print the records' table (``python -m dattn.yolo.detector``)."""
    records = load_records()
    if not records:
        raise SystemExit(f"no detector records in {ASSETS}")
    print(results_table(records))
    for metric in ("mAP50", "mAP50-95"):
        v = verdict(records, metric)
        print(f"{metric}: c3_dattention - stock = {v['difference']:+.3f} (means over seeds); seed spread (max - min): "
              f"stock {v['spread_stock']:.3f}, c3_dattention {v['spread_c3_dattention']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
