"""The command line loses nothing and refuses bad options in one line: real subprocesses get SIGINT and SIGTERM
during training and during the save, then resume to the uninterrupted run's weights, bit for bit."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from dattn.train import load_checkpoint, load_model
from dattn.train.cli import main

ROOT = Path(__file__).resolve().parents[1]
# a tiny, fast run: 12 x 12 scenes, a 2 x 2 key grid
TINY = ["--size", "12", "--channels", "8", "--n-heads", "2", "--n-groups", "2", "--batch-size", "4",
        "--heldout-n", "8", "--warmup", "2", "--threads", "1", "--quiet"]


def cli(*args: str, cwd: Path, timeout: float = 120, prelude: str = "") -> subprocess.CompletedProcess:
    """Run ``python -m dattn.train`` (optionally after some Python ``prelude``) in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if prelude:
        code = prelude + "\nimport sys\nfrom dattn.train.cli import main\nmain(sys.argv[1:])\n"
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "dattn.train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The reference: 30 steps without a stop."""
    path = tmp_path_factory.mktemp("full") / "full.pt"
    main(["--steps", "30", "--seed", "2", "--out", str(path), "--snapshot-every", "10", *TINY])
    return path


# ----------------------------------------------------------------------------------------------------------
# Bad options: one line naming the option, exit code 2, before any work
# ----------------------------------------------------------------------------------------------------------
BAD = [
    (["--steps", "-3"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--steps", "abc"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--patch", "0"], "--patch"),
    (["--patch", "5"], "--patch"),
    (["--heldout-n", "0"], "--heldout-n"),
    (["--n-blocks", "0"], "--n-blocks"),
    (["--stop-after", "-1"], "--stop-after"),
    (["--save-every", "-5"], "--save-every"),
    (["--threads", "0"], "--threads"),
    (["--lr", "nan"], "--lr"),
    (["--channels", "30", "--n-heads", "4"], "--channels"),
    (["--variant", "sparse"], "--variant"),
    (["--task", "count"], "--n-objects"),
    (["--task", "colour", "--n-objects", "1", "3"], "--n-objects"),
    (["--gif", "k.gif"], "--snapshot-every"),
    (["--export", "w.json"], "--export"),
    (["--out", "a.json", "--export", "a.pt"], "--out"),
    (["--out", "x.pt", "--export", "x.pt"], "same file"),
    (["--out", "w.pt", "--gif", "w.pt", "--snapshot-every", "2"], "--gif"),
    (["--evaluate", "ck.pt", "--steps", "3"], "--steps does nothing"),
    (["--compare-shipped", "--sweep"], "choose one"),
    (["--sweep", "--seed", "1"], "--seed does nothing"),
    (["--markdown"], "--markdown does nothing"),
    (["--offset-init", "ones"], "--offset-init"),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_options_get_one_line_and_exit_code_2(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main([*args, "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not list(tmp_path.rglob("*.pt")) and not (tmp_path / "runs").exists()  # nothing written


def test_a_bad_option_in_a_real_process_has_no_traceback(tmp_path):
    run = cli("--batch-size", "0", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == "python -m dattn.train: error: --batch-size must be at least 1, got 0"


@pytest.mark.parametrize("content, words", [(b"", "is empty"), (os.urandom(3000), "not a readable checkpoint"),
                                            (None, "does not exist")])
@pytest.mark.parametrize("mode", ["--evaluate", "--resume"])
def test_broken_checkpoints_get_one_line(content, words, mode, tmp_path):
    path = tmp_path / "ck.pt"
    if content is not None:
        path.write_bytes(content)
    run = cli(mode, str(path), cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and words in run.stderr, run.stderr


def test_a_foreign_torch_file_is_refused(tmp_path, capsys):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(SystemExit):
        main(["--evaluate", str(tmp_path / "other.pt")])
    assert "not a dattn.train checkpoint" in capsys.readouterr().err


def test_output_folders_are_checked_before_the_first_step(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile" / "x.pt", "cannot create the folder"), (Path("/proc/dattn_x.pt"),
                                                                                    "cannot write")):
        with pytest.raises(SystemExit):
            main(["--out", str(out), *TINY])
        err = capsys.readouterr()
        assert words in err.err and "before training" not in err.out  # refused before any work


def test_resume_refuses_fewer_steps_and_config_changes(uninterrupted, capsys):
    for args, words in ((["--steps", "10"], "--steps (10) is less than the 30 steps"),
                        (["--lr", "0.1"], "--lr cannot change a resumed run"),
                        (["--seed", "4"], "--seed cannot change")):
        with pytest.raises(SystemExit):
            main(["--resume", str(uninterrupted), *args])
        assert words in capsys.readouterr().err


def test_resume_refuses_an_exported_file(tmp_path, capsys):
    main(["--steps", "1", "--out", str(tmp_path / "a.pt"), "--export", str(tmp_path / "w.pt"), *TINY])
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path / "w.pt")])
    assert "exported weights only" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------
# Nothing lost: signals, periodic saves, atomic writes
# ----------------------------------------------------------------------------------------------------------
def start_and_signal(tmp_path: Path, out: Path, sig: int) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dattn.train", "--steps", "30", "--seed", "2", "--out", str(out),
                             "--snapshot-every", "10", *TINY], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # wait until the loop starts
        if line.startswith("training deformable from step"):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_training_saves_and_resume_equals_the_uninterrupted_run(sig, uninterrupted, tmp_path):
    part = tmp_path / "part.pt"
    rc, err = start_and_signal(tmp_path, part, sig)
    assert rc == 128 + sig and "Traceback" not in err, err
    assert "stopped at step" in err and "--resume" in err
    stopped = torch.load(part, weights_only=True)
    assert 1 <= stopped["step"] <= 30
    assert len(stopped["history"]["losses"]) == stopped["step"]
    main(["--resume", str(part), "--quiet", "--threads", "1"])  # continues in place, to the recorded 30 steps
    assert_same_weights(part, uninterrupted)
    a, b = load_checkpoint(part), load_checkpoint(uninterrupted)
    assert a["step"] == b["step"] == 30
    assert a["history"].losses == b["history"].losses and a["history"].snapshot_steps == [0, 10, 20, 30]


SIGNAL_IN_SAVE = textwrap.dedent("""
    import os, signal, time
    real_fsync = os.fsync
    def fsync_with_a_signal(fd):
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C while the checkpoint is being written
        time.sleep(0.2)
        real_fsync(fd)
    os.fsync = fsync_with_a_signal
""")


def test_a_signal_during_the_save_waits_for_it_then_resume_equals_the_uninterrupted_run(uninterrupted, tmp_path):
    part = tmp_path / "part.pt"
    run = cli("--steps", "30", "--seed", "2", "--out", str(part), "--snapshot-every", "10", "--save-every", "7",
              *TINY, cwd=tmp_path, prelude=SIGNAL_IN_SAVE)
    assert run.returncode == 130 and "Traceback" not in run.stderr, run.stderr
    assert torch.load(part, weights_only=True)["step"] == 7  # the save finished, then the run stopped
    assert not list(tmp_path.glob(".part.pt.*"))  # no temporary file left behind
    main(["--resume", str(part), "--quiet", "--threads", "1"])
    assert_same_weights(part, uninterrupted)


CRASH_IN_SECOND_SAVE = textwrap.dedent("""
    import os
    real_replace, calls = os.replace, []
    def replace_then_crash(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            os._exit(9)          # the machine dies after writing the temporary file, before the rename
        real_replace(src, dst)
    os.replace = replace_then_crash
""")


def test_a_crash_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    out = tmp_path / "ck.pt"
    run = cli("--steps", "30", "--out", str(out), "--save-every", "5", *TINY, cwd=tmp_path,
              prelude=CRASH_IN_SECOND_SAVE)
    assert run.returncode == 9
    ck = load_checkpoint(out)  # the first periodic save, whole
    assert ck["step"] == 5


def test_save_every_writes_periodic_checkpoints(tmp_path, monkeypatch):
    import dattn.train.run as run

    saved = []
    real = run.save_checkpoint
    monkeypatch.setattr(run, "save_checkpoint", lambda path, *a, **k: (saved.append(a[2]), real(path, *a, **k)))
    main(["--steps", "12", "--save-every", "5", "--out", str(tmp_path / "ck.pt"), *TINY])
    assert saved == [5, 10, 12]


# ----------------------------------------------------------------------------------------------------------
# Outputs: record, export, GIF, count task, evaluate
# ----------------------------------------------------------------------------------------------------------
def test_export_record_gif_and_evaluate(tmp_path):
    ck, exported, gif = tmp_path / "tiny.pt", tmp_path / "out" / "tiny_w.pt", tmp_path / "keys.gif"
    main(["--steps", "4", "--seed", "0", "--out", str(ck), "--export", str(exported), "--gif", str(gif),
          "--snapshot-every", "2", *TINY])
    record = json.loads(exported.with_suffix(".json").read_text())
    assert record["seed"] == 0 and record["steps"] == 4 and record["command"].startswith("python -m dattn.train")
    assert record["budget"] == dict(steps=4, batch_size=4, scenes=16) and record["threads"] == 1
    assert record["train_seconds"] > 0 and record["train_cpu_seconds"] > 0
    assert 0 <= record["metrics_after"]["accuracy"] <= 1
    model = load_model(exported)
    assert model.cfg.size == 12 and not model.training and model.info["seed"] == 0
    with Image.open(gif) as im:
        assert im.n_frames >= 3  # snapshots at steps 0, 2, 4
    run = cli("--evaluate", str(ck), "--threads", "1", cwd=tmp_path)
    assert run.returncode == 0 and "accuracy" in run.stdout and "keys on objects" in run.stdout


def test_count_task_takes_the_number_of_objects(tmp_path):
    record = main(["--steps", "2", "--task", "count", "--n-objects", "1", "3", "--out", str(tmp_path / "c.pt"),
                   *TINY, "--size", "16"])
    model = load_model(tmp_path / "c.pt")
    assert model.head[-1].out_features == 3 and model.cfg.n_objects == (1, 3)
    assert record["metrics_after"]["n_scenes"] == 8


def test_the_default_checkpoint_path_is_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["--steps", "1", "--variant", "fixed", "--seed", "3", *TINY])
    assert (tmp_path / "runs" / "scenes_fixed_seed3.pt").is_file()


def test_torchrun_with_two_processes_takes_the_single_process_steps(tmp_path):
    """DDP on gloo: each process takes half of the same batch and gradients are averaged, so two processes
    must end with the single process's weights and losses."""
    single, ddp = tmp_path / "single.pt", tmp_path / "ddp.pt"
    main(["--steps", "4", "--seed", "3", "--out", str(single), *TINY])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dattn.train",
           "--steps", "4", "--seed", "3", "--out", str(ddp), *TINY[:-3], "--threads", "2", "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = load_checkpoint(single), load_checkpoint(ddp)
    assert torch.allclose(torch.tensor(a["history"].losses), torch.tensor(b["history"].losses), atol=1e-5)
    for (name, pa), pb in zip(a["model"].state_dict().items(), b["model"].state_dict().values(), strict=True):
        # a key bias adds the same q.b to every score of a query, which softmax ignores: its true gradient is
        # zero, and Adam scales the rounding noise that stands in for it up to lr-sized steps
        tol = 4 * 2e-3 if name.endswith("proj_k.bias") else 1e-5
        assert torch.allclose(pa, pb, atol=tol), name
