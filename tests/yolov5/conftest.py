"""The environment of the real-YOLOv5 tests (run by `make test-yolov5` in .venv-yolov5, after `make yolov5-env`).

Nothing may be downloaded or installed at run time: YOLOv5 finds its font in build/yolov5/config (a local TrueType
file copied there as Arial.ttf), its pip auto-install is off (YOLOv5_AUTOINSTALL for a v7.0 clone, YOLO_AUTOINSTALL
for PyPI's package, which checks with ultralytics' checker), and torch.load reads YOLOv5's pickled checkpoints
(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD: the checkpoints are the ones these tests write).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "yolov5"
CONFIG = BUILD / "config"

ENV = {
    "YOLOV5_CONFIG_DIR": str(CONFIG),
    "YOLO_CONFIG_DIR": str(CONFIG),
    "YOLOv5_AUTOINSTALL": "false",
    "YOLO_AUTOINSTALL": "false",
    "YOLO_OFFLINE": "true",
    "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "2",
}
os.environ.update(ENV)  # before YOLOv5 is imported: it reads them at import

if not (BUILD / "yolov5" / "models" / "yolo.py").is_file():
    raise pytest.UsageError(f"{BUILD} is missing: run `make yolov5-env` (make test-yolov5 does)")
