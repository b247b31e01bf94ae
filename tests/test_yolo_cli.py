"""python -m dattn.yolo and the yaml builder: every bad input gets one line naming what is wrong, exit code 2."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml

from dattn.yolo import DetectionModel, build_model, load_cfg
from dattn.yolo.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dattn.yolo", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in this process: (exit code, stdout, stderr); argparse's errors exit through SystemExit."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def n_layers_cfg() -> dict:
    d = load_cfg("yolov5n.yaml")
    d.pop("yaml_file")
    return d


def edit(key_path, value):
    """A change to yolov5n's config: key_path is a list of keys/indices, value the new value (or DELETE)."""

    def apply(d):
        *parents, last = key_path
        for k in parents:
            d = d[k]
        if value is DELETE:
            del d[last]
        else:
            d[last] = value

    return apply


DELETE = object()
BAD = {
    "no_nc": (edit(["nc"], DELETE), ["'nc'"]),
    "no_anchors": (edit(["anchors"], DELETE), ["'anchors'"]),
    "no_backbone": (edit(["backbone"], DELETE), ["'backbone'"]),
    "no_head": (edit(["head"], DELETE), ["'head'"]),
    "nc_string": (edit(["nc"], "80"), ["'nc'", "'80'"]),
    "nc_zero": (edit(["nc"], 0), ["'nc'", "int >= 1"]),
    "width_string": (edit(["width_multiple"], "0.25"), ["'width_multiple'"]),
    "repeats_string": (edit(["backbone", 2, 1], "1"), ["layer 2", "'number'"]),
    "repeats_negative": (edit(["backbone", 2, 1], -3), ["layer 2", "'number'", "-3"]),
    "channels_string": (edit(["backbone", 2, 3], ["128"]), ["layer 2", "'128'"]),
    "from_out_of_range": (edit(["head", -1, 0], [17, 20, 99]), ["layer 24", "'from'", "99"]),
    "from_forward": (edit(["backbone", 3, 0], 5), ["layer 3", "'from'", "5"]),
    "unknown_module": (edit(["backbone", 1, 2], "C2f"), ["layer 1", "C2f"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_yaml_one_line_exit_2(tmp_path, capsys, case):
    change, needles = BAD[case]
    d = n_layers_cfg()
    change(d)
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(d))
    code, out, err = cli(capsys, "--cfg", str(path), "--img", "64")
    assert code == 2 and out == "", (code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, (needle, err)


def test_bad_yaml_in_a_real_process(tmp_path):
    """The same from the shell: exit code 2, one line, no traceback."""
    d = n_layers_cfg()
    d["backbone"][2][1] = -3
    path = tmp_path / "negative.yaml"
    path.write_text(yaml.safe_dump(d))
    r = run_cli("--cfg", str(path), "--img", "64")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: negative.yaml: layer 2: 'number' (repeats) must be an int >= 1, got -3"


@pytest.mark.parametrize("text", ["", "nc: 80\n", "- 1\n- 2\n", "nc: [80\n"])
def test_empty_or_malformed_yaml(tmp_path, capsys, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    code, _, err = cli(capsys, "--cfg", str(path), "--img", "64")
    assert code == 2 and "broken.yaml" in err and len(err.strip().splitlines()) == 1, err


def test_a_missing_path_is_an_error_not_the_shipped_config(tmp_path):
    r = run_cli("--cfg", "/nope/yolov5s.yaml", "--img", "64")
    assert r.returncode == 2 and "/nope/yolov5s.yaml" in r.stderr and "YOLOv5s summary" not in r.stdout
    with pytest.raises(FileNotFoundError):
        load_cfg(tmp_path / "yolov5s.yaml")
    # a bare shipped name still reads the shipped config, unless a file of that name is in the current folder
    assert run_cli("--cfg", "yolov5s.yaml", "--img", "64", cwd=tmp_path).returncode == 0
    d = n_layers_cfg()
    d["nc"] = 3
    (tmp_path / "yolov5s.yaml").write_text(yaml.safe_dump(d))
    r = run_cli("--cfg", "yolov5s.yaml", "--img", "64", cwd=tmp_path)
    assert r.returncode == 0 and "[3, [[10, 13" in r.stdout  # the local file's nc, not the shipped 80
    assert "bare name" in run_cli("--help").stdout


@pytest.mark.parametrize("img", [["0"], ["-1"], ["10000"], ["64", "100"], ["x"], ["64", "64", "64"]])
def test_bad_image_sizes(capsys, img):
    code, out, err = cli(capsys, "--cfg", "yolov5n.yaml", "--img", *img)
    assert code == 2 and out == "", err
    assert "--img" in err or "image size" in err


def test_non_square_image_runs(capsys):
    code, out, err = cli(capsys, "--cfg", "yolov5n.yaml", "--img", "96", "64", "--stock-profile")
    assert code == 0, err
    assert "YOLOv5n summary" in out and "scaled to 96x64" in out


def test_probe_must_give_whole_strides():
    with pytest.raises(ValueError, match="multiple of the largest stride"):
        DetectionModel("yolov5n.yaml", probe=110)  # P4 and P5 maps of 7 and 4 pixels cannot be concatenated
    one_level = n_layers_cfg()  # Conv 3x3 stride 3 into Detect: a 11x11 probe gives a 4x4 map, stride 2.75
    one_level["anchors"] = [[10, 13, 16, 30, 33, 23]]
    one_level["backbone"] = [[-1, 1, "Conv", [16, 3, 3, 1]]]
    one_level["head"] = [[[0], 1, "Detect", ["nc", "anchors"]]]
    with pytest.raises(ValueError, match=r"do not divide it \(strides \[2.75\]\)"):
        DetectionModel(one_level, probe=11)
    assert DetectionModel(one_level, probe=12).stride.tolist() == [3.0]
    with pytest.raises(ValueError, match="probe"):
        DetectionModel("yolov5n.yaml", probe=0)
    assert build_model("yolov5n.yaml", probe=96).stride.tolist() == [8.0, 16.0, 32.0]


def test_dict_configs_are_checked_too():
    d = n_layers_cfg()
    bad = copy.deepcopy(d)
    bad["backbone"][2][1] = 0
    with pytest.raises(ValueError, match="layer 2"):
        build_model(bad)
