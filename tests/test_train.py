"""The scene model: pixel mapping, the on-object metric by hand, a training step, save/resume, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dattn.data import make_scenes
from dattn.train import (
    PRETRAINED,
    Config,
    SceneDAT,
    build,
    conv_geometry,
    feature_to_image_px,
    load_checkpoint,
    load_pretrained,
    main,
    on_object_share,
    points_on_masks,
    targets,
    train_batch,
    train_step,
)

TINY = ["--size", "32", "--channels", "16", "--n-heads", "2", "--n-groups", "2", "--batch-size", "8",
        "--heldout-n", "16", "--warmup", "2", "--quiet"]
TINY_CFG = dict(size=32, channels=16, n_heads=2, n_groups=2, batch_size=8, heldout_n=16, warmup=2)


# ----------------------------------------------------------------------------------------------------------
# Feature-map pixel -> image pixel
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layers, formula",
    [
        ([(4, 4, 0)], lambda f: (f + 0.5) * 4 - 0.5),  # patchify: centre of each 4 x 4 patch
        ([(4, 4, 0), (3, 1, 1)], lambda f: 4 * f + 1.5),  # a padded 3 x 3 keeps the centres
        ([(3, 2, 1), (3, 2, 1)], lambda f: 4 * f),  # "same"-padded stride-2 convs: pixel 0 stays at 0
        ([(2, 2, 0), (2, 2, 0), (3, 1, 0)], lambda f: 4 * f + 5.5),
    ],
)
def test_conv_geometry_matches_the_formula(layers, formula):
    convs = [nn.Conv2d(1, 1, k, s, p) for k, s, p in layers]
    scale, shift = conv_geometry(convs)
    f = torch.tensor([0.0, 1.0, 2.5, 7.0])
    assert torch.allclose(feature_to_image_px(f, scale, shift), formula(f))


def test_conv_geometry_is_the_receptive_field_centre():
    """With all-ones kernels, an interior output pixel's gradient on the input is centred on its mapped pixel."""
    convs = [nn.Conv2d(1, 1, 4, 4, 0, bias=False), nn.Conv2d(1, 1, 3, 1, 1, bias=False)]
    for c in convs:
        nn.init.ones_(c.weight)
    scale, shift = conv_geometry(convs)
    x = torch.zeros(1, 1, 40, 40, requires_grad=True)
    out = nn.Sequential(*convs)(x)  # (1, 1, 10, 10)
    out[0, 0, 4, 6].backward()
    w = x.grad[0, 0]
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    centre = torch.stack([(w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()])
    assert torch.allclose(centre, torch.tensor([4 * scale + shift, 6 * scale + shift]))


def test_model_reference_points_sit_on_image_cell_centres():
    """Patch 4, key stride 4, centred references: key (i, j) sits at the centre of image cell (i, j) of 16 px."""
    model = SceneDAT(Config()).eval()
    _, ref = model.sampling_points(torch.rand(1, 3, 64, 64))  # (n_blocks, 4, 4, 2)
    centres = (torch.arange(4.0) + 0.5) * 16 - 0.5
    assert torch.allclose(ref[0, ..., 0], centres[:, None].expand(4, 4))
    assert torch.allclose(ref[0, ..., 1], centres[None, :].expand(4, 4))


# ----------------------------------------------------------------------------------------------------------
# The on-object metric, by hand
# ----------------------------------------------------------------------------------------------------------
def hand_mask() -> torch.Tensor:
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    m[0, 1, 2] = m[0, 2, 2] = m[0, 3, 3] = True
    return m


def test_points_on_masks_by_hand():
    pts = torch.tensor([[[1.0, 2.0], [1.49, 2.49], [1.5, 2.0], [0.5, 2.0], [2.0, 1.49], [3.49, 3.49],
                         [3.5, 3.0], [-0.6, 0.0], [0.0, 0.0]]])  # (1, 9, 2) as (y, x)
    # pixel i covers [i - 0.5, i + 0.5): (1,2) on, (1,2) on, (2,2) on, (1,2) on, (2,1) off, (3,3) on,
    # outside (y = 3.5 rounds to 4), outside, (0,0) off
    expected = [True, True, True, True, False, True, False, False, False]
    assert points_on_masks(pts, hand_mask())[0].tolist() == expected


def test_on_object_share_counts_by_hand():
    model = SceneDAT(Config(**TINY_CFG))
    scenes = make_scenes(1, size=4, seed=0, radius=(1, 1))
    scenes.masks = hand_mask()
    # one block, two groups of 2 x 2 keys: 3 of the 8 points on the mask
    pos = torch.tensor([[[1.0, 2.0], [2.2, 1.8]], [[3.0, 3.0], [0.0, 0.0]]])  # (2, 2, 2): 3 hits
    pos = torch.stack([pos, torch.full_like(pos, 9.0)])[None, None]  # (1, 1, g=2, 2, 2, 2): group 2 outside
    ref = torch.tensor([[[[0.0, 0.0], [1.0, 2.0]], [[3.0, 0.0], [3.0, 1.0]]]])  # (1, 2, 2, 2): 1 hit of 4
    model.sampling_points = lambda images: (pos, ref)
    share = on_object_share(model, scenes)
    assert share["learned"] == 3 / 8
    assert share["reference"] == 1 / 4
    assert share["coverage"] == 3 / 16
    assert share["lift"] == pytest.approx((3 / 8) / (3 / 16))


# ----------------------------------------------------------------------------------------------------------
# Training, checkpoints, the command line
# ----------------------------------------------------------------------------------------------------------
def test_one_step_decreases_the_loss_on_its_batch():
    cfg = Config(**{**TINY_CFG, "warmup": 1, "lr": 3e-3})
    model, opt = build(cfg)
    batch = train_batch(cfg, 0)
    loss = lambda: nn.functional.cross_entropy(model(batch.images), targets(batch, cfg)).item()
    before = loss()
    assert train_step(model, opt, cfg, 0) == pytest.approx(before, rel=1e-5)
    assert loss() < before


def test_the_batch_of_a_step_depends_only_on_seed_and_step():
    cfg = Config(**TINY_CFG)
    assert torch.equal(train_batch(cfg, 5).images, train_batch(cfg, 5).images)
    assert not torch.equal(train_batch(cfg, 5).images, train_batch(cfg, 6).images)


def test_resume_gives_the_same_steps_as_an_uninterrupted_run(tmp_path: Path):
    full, part, resumed = tmp_path / "full.pt", tmp_path / "part.pt", tmp_path / "resumed.pt"
    main(["--steps", "6", "--seed", "1", "--out", str(full), "--snapshot-every", "2", *TINY])
    main(["--steps", "6", "--seed", "1", "--out", str(part), "--snapshot-every", "2", "--stop-after", "3", *TINY])
    main(["--resume", str(part), "--out", str(resumed), "--snapshot-every", "2", "--quiet"])
    a, p, b = (torch.load(f, weights_only=True) for f in (full, part, resumed))
    assert p["step"] == 3 and a["step"] == b["step"] == 6
    assert len(a["history"]["losses"]) == 6
    assert a["history"]["losses"] == b["history"]["losses"]  # exactly the same numbers
    assert a["history"]["snapshot_steps"] == b["history"]["snapshot_steps"] == [0, 2, 4, 6]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert b["commands"][0] == p["command"] and "--resume" in b["command"]
    assert a["config"]["seed"] == 1 and set(p["rng"]) == {"torch", "numpy", "python"}


def test_evaluate_cli_and_export(tmp_path: Path):
    ck, exported = tmp_path / "tiny.pt", tmp_path / "tiny_export.pt"
    main(["--steps", "2", "--seed", "0", "--out", str(ck), "--export", str(exported), *TINY])
    run = subprocess.run([sys.executable, "-m", "dattn.train", "--evaluate", str(ck), "--threads", "1"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert "accuracy" in run.stdout and "on-object share" in run.stdout
    record = json.loads(exported.with_suffix(".json").read_text())
    assert record["seed"] == 0 and record["steps"] == 2 and record["command"].startswith("python -m dattn.train")
    assert {"learned", "reference", "coverage"} <= {k[6:] for k in record["metrics_after"]}
    model = load_checkpoint(exported)["model"]
    assert isinstance(model, SceneDAT) and model.cfg.size == 32


@pytest.mark.skipif(not PRETRAINED.exists(), reason="assets/dat_scenes.pt not built yet")
def test_pretrained_weights_load_and_beat_the_reference_grid():
    model = load_pretrained()
    assert not model.training and PRETRAINED.stat().st_size < 500_000
    after = model.info["metrics_after"]
    assert after["share_learned"] > 2 * max(after["share_reference"], after["share_coverage"])
    scenes = make_scenes(32, seed=123)
    share = on_object_share(model, scenes)
    assert share["learned"] > 2 * share["coverage"]


def test_torchrun_with_two_processes_takes_the_single_process_steps(tmp_path: Path):
    """DDP on gloo: each process takes half of the same batch and gradients are averaged, so two processes
    must end with the single process's weights and losses."""
    single, ddp = tmp_path / "single.pt", tmp_path / "ddp.pt"
    main(["--steps", "4", "--seed", "3", "--out", str(single), "--threads", "1", *TINY])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dattn.train",
           "--steps", "4", "--seed", "3", "--out", str(ddp), "--threads", "2", *TINY]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = load_checkpoint(single), load_checkpoint(ddp)
    assert torch.allclose(torch.tensor(a["history"].losses), torch.tensor(b["history"].losses), atol=1e-5)
    for (name, pa), pb in zip(a["model"].state_dict().items(), b["model"].state_dict().values(), strict=True):
        # a key bias adds the same q.b to every score of a query, which softmax ignores: its true gradient is
        # zero, and Adam scales the rounding noise that stands in for it up to lr-sized steps
        tol = 4 * 2e-3 if name.endswith("proj_k.bias") else 1e-6
        assert torch.allclose(pa, pb, atol=tol), name
