"""The shipped models: small, loadable, recorded; ``--compare-shipped`` agrees with their JSON records and with an
accuracy recomputed here from the models' logits on scenes drawn here; the targets of the comparison hold."""

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from dattn.data import make_scenes
from dattn.train import SHIPPED, VARIANTS, load_shipped

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {v: json.loads(SHIPPED[v].with_suffix(".json").read_text()) for v in VARIANTS}


@pytest.fixture(scope="module")
def compare() -> str:
    run = subprocess.run([sys.executable, "-m", "dattn.train", "--compare-shipped", "--threads", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def own_accuracy(model) -> float:
    """Accuracy on the held-out scenes, drawn here from the recorded settings, argmax of the logits by hand."""
    cfg = model.cfg
    scenes = make_scenes(cfg.heldout_n, cfg.size, [1, cfg.heldout_seed], n_objects=tuple(cfg.n_objects),
                         radius=tuple(cfg.radius))
    right = 0
    with torch.no_grad():
        for i in range(0, len(scenes), 100):
            logits = model(scenes.images[i:i + 100])
            right += sum(int(row.argmax()) == int(c) for row, c in zip(logits, scenes.colour_ids[i:i + 100, 0],
                                                                        strict=True))
    return right / len(scenes)


def test_shipped_files_are_small_and_load_in_eval_mode(records):
    for v in VARIANTS:
        assert SHIPPED[v].stat().st_size < 300_000
        model = load_shipped(v)
        assert not model.training and model.cfg.variant == v
        assert records[v]["command"].startswith("python -m dattn.train") and f"--variant {v}" in records[v]["command"]
        assert records[v]["seed"] == model.cfg.seed and records[v]["train_seconds"] > 0 and records[v]["threads"] >= 1
    budgets = {json.dumps(records[v]["budget"]) for v in VARIANTS}
    assert len(budgets) == 1  # the same budget for every variant
    with pytest.raises(ValueError, match="deformable, fixed, dense"):
        load_shipped("sparse")


def test_compare_shipped_agrees_with_the_records_and_with_logits(compare, records):
    lines = {ln.split()[0]: ln for ln in compare.splitlines() if ln.split() and ln.split()[0] in VARIANTS}
    assert list(lines) == list(VARIANTS)
    for v in VARIANTS:
        acc = float(re.search(r"accuracy (\S+)", lines[v]).group(1))
        assert 0 <= acc <= 1
        assert acc == pytest.approx(records[v]["metrics_after"]["accuracy"], abs=1e-4)
        assert acc == pytest.approx(own_accuracy(load_shipped(v)), abs=1e-4)


def test_the_targets_hold_over_three_seeds():
    seeds = json.loads((ASSETS / "scenes_seeds.json").read_text())
    assert seeds["command"].startswith("python -m dattn.train --sweep")
    acc = {v: [r["accuracy"] for r in seeds["runs"] if r["variant"] == v] for v in VARIANTS}
    assert all(len(a) >= 3 for a in acc.values())
    mean = {v: statistics.fmean(a) for v, a in acc.items()}
    assert mean["deformable"] >= mean["fixed"] + 0.15  # at least 15 points above the fixed grid
    assert mean["deformable"] >= mean["dense"] - 0.05  # within a few points of dense
    assert min(acc["deformable"]) >= max(acc["fixed"]) + 0.15  # on every seed, not only on average


def test_stride_sweep_record_and_training_gif():
    strides = json.loads((ASSETS / "scenes_strides.json").read_text())
    assert strides["command"].startswith("python -m dattn.train --sweep")
    grids = sorted({r["key_grid"] for r in strides["runs"]})
    assert len(grids) >= 4 and {r["variant"] for r in strides["runs"]} == {"deformable", "fixed"}
    gif = ASSETS / "scenes_keys_training.gif"
    assert gif.stat().st_size < 1_000_000
    with Image.open(gif) as im:
        assert im.n_frames >= 10


def test_assets_readme_names_every_file():
    listed = (ASSETS / "README.md").read_text()
    for path in ASSETS.iterdir():
        if path.name != "README.md" and not path.name.startswith("."):
            assert f"`{path.name}`" in listed, path.name
