"""The shipped detectors: weights load strictly into dattn.yolo, records are complete, and re-evaluating the
weights on the val split (made here) gives the metrics YOLOv5 recorded, within 0.005."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dattn.yolo import dataset as ds
from dattn.yolo.detector import (
    ASSETS,
    KINDS,
    build_detector,
    load_detector,
    load_records,
    results_table,
    shipped_seeds,
    summarize,
    verdict,
    weights_path,
)

ROOT = Path(__file__).resolve().parents[1]
RECORDS = load_records()
IDS = [f"{r['kind']}_s{r['seed']}" for r in RECORDS]


def test_two_kinds_at_least_two_seeds_each_same_settings():
    for kind in KINDS:
        assert len(shipped_seeds(kind)) >= 2
    assert shipped_seeds("stock") == shipped_seeds("c3_dattention")
    same = {(r["epochs"], r["img"], r["batch"], r["workers"], r["hyp"], str(r["dataset"])) for r in RECORDS}
    assert len(same) == 1  # the same hyperparameters, epochs and data for every run


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_record_is_complete_and_consistent(record):
    assert record["command"].startswith("python -m yolov5.train ") and "--weights ''" in record["command"]
    assert f"--seed {record['seed']}" in record["command"] and f"--epochs {record['epochs']}" in record["command"]
    curves = record["curves"]
    assert curves["epoch"] == list(range(record["epochs"]))
    assert record["metrics"]["mAP50"] == curves["metrics/mAP_0.5"][-1]
    assert record["metrics"]["mAP50-95"] == curves["metrics/mAP_0.5:0.95"][-1]
    assert re.search(r"summary: \d+ layers, [\d,]+ parameters, .* GFLOPs", record["yolov5_summary"])
    assert record["machine"]["cores"] >= 1 and record["machine"]["yolov5"] == "7.0.14"


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_weights_are_small_fp16_and_load_strictly(record):
    path = weights_path(record["kind"], record["seed"])
    assert path.stat().st_size <= 10 * 2**20 and path.stat().st_size == record["weights_bytes"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    model = load_detector(record["kind"], record["seed"])  # strict=True inside
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
    assert set(state) == set(build_detector(record["kind"]).state_dict())


@pytest.fixture(scope="module")
def val_root(tmp_path_factory):
    spec = ds.DetectionSpec.from_dict(RECORDS[0]["dataset"])
    root = tmp_path_factory.mktemp("detector_val")
    ds.write_dataset(root, spec, progress=False, splits=("val",))
    return root


def test_detector_eval_command_prints_one_line_per_model_and_fails_on_a_wrong_record(val_root, tmp_path):
    """`make detector-eval`'s command: a line per model starting with its kind and holding `mAP50 <value>` (the
    re-evaluation's, within 0.005 of the record), and exit 1 when a record's mAP50 is 0.01 off. Shown on one model,
    stock seed 0, to keep the test short; `make detector-eval` (in .ci/run) checks all of them, exit 0."""
    import json
    import shutil

    record = next(r for r in RECORDS if r["kind"] == "stock" and r["seed"] == 0)
    for wrong, code in ((0.01, 1),):
        assets = tmp_path / f"assets_{code}"
        assets.mkdir()
        shutil.copy(weights_path("stock", 0), assets)
        r = dict(record, metrics=dict(record["metrics"], mAP50=record["metrics"]["mAP50"] + wrong))
        (assets / "detector_stock_s0.json").write_text(json.dumps(r))
        out = subprocess.run([sys.executable, "-m", "dattn.yolo.evaluate", "--assets", str(assets), "--data",
                              str(val_root)], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert out.returncode == code, out.stderr[-2000:]
        lines = [line for line in out.stdout.splitlines() if line.startswith(("stock", "c3_dattention"))]
        assert len(lines) == 1 and lines[0].startswith("stock seed 0: mAP50 "), out.stdout
        got = float(re.search(r"mAP50 ([\d.]+)", lines[0]).group(1))
        assert abs(got - record["metrics"]["mAP50"]) <= 0.005  # the value printed is the re-evaluation's
        assert ("FAILED: stock seed 0" in out.stderr) == bool(code)


def test_table_and_verdict_are_computed_from_the_records():
    rows = {r["kind"]: r for r in summarize(RECORDS)}
    v = verdict(RECORDS)
    assert v["difference"] == pytest.approx(rows["c3_dattention"]["mAP50"]["mean"] - rows["stock"]["mAP50"]["mean"])
    table = results_table(RECORDS)
    for kind in KINDS:
        mean, std = rows[kind]["mAP50"]["mean"], rows[kind]["mAP50"]["std"]
        assert f"| {kind} |" in table and f"{mean:.3f} ± {std:.3f}" in table


def test_readme_shows_the_table_the_records_command_prints():
    out = subprocess.run([sys.executable, "-m", "dattn.yolo.detector"], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=300).stdout
    readme = (ROOT / "README.md").read_text()
    for line in out.splitlines():
        assert line in readme, line
    assert ASSETS == ROOT / "assets"


def test_the_detectors_load_and_detect_with_the_light_core():
    """A YOLO user's install (torch, einops, numpy, pyyaml): the shipped weights load and detect, the metrics run."""
    from .test_light_core import run_blocked

    r = run_blocked(
        """
        import numpy as np
        import torch
        from dattn.yolo.dataset import DetectionSpec, split_scenes, to_uint8, yolo_labels
        from dattn.yolo.detector import load_detector
        from dattn.yolo.evaluate import predict
        from dattn.yolo.metrics import match, mean_ap, xywh_to_xyxy

        scenes = split_scenes(DetectionSpec(), "val", 0, 2)
        dets = predict(load_detector("c3_dattention", 0), to_uint8(scenes.images))
        rows = yolo_labels(scenes)[0]
        labels = torch.cat((torch.from_numpy(rows[:, :1]), xywh_to_xyxy(torch.from_numpy(rows[:, 1:]) * 256)), 1)
        tp = match(dets[0], labels)
        out = mean_ap(tp, dets[0][:, 4].numpy(), dets[0][:, 5].numpy(), rows[:, 0])
        assert 0 <= out["mAP50"] <= 1 and len(dets) == 2
        print("detector ok")
        """
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "detector ok" in r.stdout
