"""Make build/yolov5: YOLOv5 v7.0's code (PyPI's yolov5 7.0.14) with the guide's edits applied as text.

    python tests/yolov5/prepare.py source --out build/yolov5   # wheel -> patched tree + requirements.txt
    python tests/yolov5/prepare.py finish --out build/yolov5   # in the venv: a local font, the tree on sys.path

``source`` downloads the wheel once (kept in build/), unpacks a fresh copy of its ``yolov5`` package into
``OUT/yolov5``, applies Edits 2-4 of ``dattn/yolo/ultralytics_guide.md`` exactly as the guide writes them (the
import line before ``def autopad``, the fused blocks at the end of ``models/common.py``, the diff to
``models/yolo.py``), copies the seed's yaml files into ``models/``, and writes ``OUT/requirements.txt``: the
wheel's own requirements plus the pins that the guide's last table gives. ``finish`` runs with the venv's
python after the install: it puts a TrueType font where YOLOv5 looks for Arial.ttf (``OUT/config``, used as
``YOLOV5_CONFIG_DIR``) and a ``.pth`` file that puts ``OUT`` on the venv's ``sys.path`` (``import yolov5``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "dattn" / "yolo" / "ultralytics_guide.md"
CONFIGS = ROOT / "dattn" / "yolo" / "configs"
VERSION = "7.0.14"
# the fixes of the guide's table "YOLOv5 v7.0 on today's Python packages"
PINS = ["setuptools<81", "numpy<2", "Pillow<10"]
# ... and what the tests need besides: the exporters' checkers, pytest
TEST_TOOLS = ["pytest", "onnx", "onnxscript", "onnxruntime"]


def snippet(name: str, lang: str) -> str:
    """The fenced block that follows ``<!-- snippet: name -->`` in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    m = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```{lang}\n(.*?)```", text, re.S)
    if not m:
        raise SystemExit(f"{GUIDE.name} has no {lang} snippet {name!r}")
    return m.group(1)


def apply_diff(text: str, diff: str) -> str:
    """Apply a unified diff's hunks to text, each found by its context and removed lines (line numbers are
    only hints, as for ``git apply``); exits naming the hunk that does not match."""
    hunks = re.split(r"^@@[^\n]*@@[^\n]*\n", diff, flags=re.M)[1:]
    lines = text.split("\n")
    for k, hunk in enumerate(hunks):
        old, new = [], []
        for line in hunk.rstrip("\n").split("\n"):
            tag, body = (line[:1], line[1:]) if line else (" ", "")
            if tag in " -":
                old.append(body)
            if tag in " +":
                new.append(body)
        at = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
        if len(at) != 1:
            raise SystemExit(f"hunk {k + 1} of the guide's diff matches {len(at)} places instead of one")
        lines[at[0] : at[0] + len(old)] = new
    return "\n".join(lines)


def insert_before(text: str, anchor: str, block: str) -> str:
    """block inserted before the line that starts with anchor (exactly one)."""
    lines = text.split("\n")
    at = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    if len(at) != 1:
        raise SystemExit(f"{anchor!r} starts {len(at)} lines instead of one")
    return "\n".join([*lines[: at[0]], *block.rstrip("\n").split("\n"), "", "", *lines[at[0] :]])


def wheel(cache: Path) -> Path:
    """PyPI's yolov5 wheel, downloaded once into cache."""
    found = sorted(cache.glob(f"yolov5-{VERSION}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"yolov5=={VERSION}", "-d", str(cache)]
        subprocess.run(cmd, check=True)
        found = sorted(cache.glob(f"yolov5-{VERSION}-*.whl"))
    return found[0]


def requirements(whl: Path) -> list[str]:
    """The wheel's Requires-Dist lines (without extras)."""
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def make_source(out: Path) -> None:
    whl = wheel(out.parent / "wheels")
    if (out / "yolov5").exists():
        shutil.rmtree(out / "yolov5")
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        z.extractall(out, [n for n in z.namelist() if n.startswith("yolov5/")])
    models = out / "yolov5" / "models"
    common = models / "common.py"
    text = common.read_text(encoding="utf-8")
    text = insert_before(text, "def autopad", snippet("common.py imports", "python"))  # Edit 2
    text = text.rstrip("\n") + "\n\n\n" + snippet("common.py", "python")  # Edit 3
    common.write_text(text, encoding="utf-8")
    yolo = models / "yolo.py"
    yolo.write_text(apply_diff(yolo.read_text(encoding="utf-8"), snippet("yolo.py", "diff")), encoding="utf-8")  # 4
    for cfg in CONFIGS.glob("yolov5_C3_DAttention*.yaml"):
        shutil.copy(cfg, models / cfg.name)
    reqs = [*requirements(whl), *PINS, *TEST_TOOLS]
    (out / "requirements.txt").write_text(
        f"# PyPI's yolov5 {VERSION} requirements, the guide's pins, the test tools (tests/yolov5/prepare.py)\n"
        + "\n".join(reqs) + "\n"
    )
    print(f"{out}/yolov5: YOLOv5 {VERSION} with the guide's edits; {out}/requirements.txt")


def finish(out: Path) -> None:
    import matplotlib  # installed with YOLOv5's requirements; ships DejaVu Sans

    config = out / "config"
    config.mkdir(parents=True, exist_ok=True)
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    shutil.copy(font, config / "Arial.ttf")  # where YOLOv5 looks before it downloads Arial.ttf
    pth = Path(site.getsitepackages()[0]) / "yolov5_build.pth"
    pth.write_text(str(out.resolve()) + "\n")
    print(f"{config / 'Arial.ttf'} (DejaVu Sans); {pth} -> {out.resolve()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["source", "finish"])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "yolov5")
    args = parser.parse_args()
    make_source(args.out) if args.step == "source" else finish(args.out)


if __name__ == "__main__":
    main()
