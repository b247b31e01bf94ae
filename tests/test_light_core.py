"""dattn's core runs with its four dependencies only: the course's and the tests' packages are blocked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the course extra, the test extra and what they pull in (timm -> torchvision, matplotlib -> PIL, ...)
BLOCKED = (
    "matplotlib", "tqdm", "timm", "ipywidgets", "IPython", "jupyterlab", "jupyter_server", "ipykernel", "PIL",
    "torchvision", "thop", "onnx", "onnxruntime", "onnxscript", "pytest", "nbmake",
)

# A None entry in sys.modules is how Python spells "not installed": `import name` raises ModuleNotFoundError and
# importlib.util.find_spec(name) returns None (torch probes optional packages that way).
BLOCKER = f"""
import sys

BLOCKED = {BLOCKED!r}
sys.modules.update(dict.fromkeys(BLOCKED))
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter whose imports of the blocked packages fail as if they were missing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = BLOCKER + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False, env=env, cwd=ROOT
    )


def test_the_blocker_blocks():
    """The course's figures need matplotlib: under the blocker they cannot be imported (so the test can fail)."""
    r = run_blocked("import dattn.viz")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr and "matplotlib" in r.stderr, r.stderr[-2000:]


def test_core_builds_and_runs_without_the_course_packages():
    r = run_blocked(
        """
        import contextlib, io, sys
        import torch
        import dattn
        import dattn.checks, dattn.cost, dattn.data, dattn.profiling
        import dattn.yolo
        from dattn import DAttention
        from dattn.yolo import C3_DAttention, build_model, count_flops, summary
        from dattn.yolo.__main__ import main
        from dattn.yolo.summary import stock_profile_gflops

        torch.manual_seed(0)
        attn = DAttention(64, (8, 8), n_heads=4, n_groups=2, stride=2)
        x = torch.randn(2, 64, 8, 8, requires_grad=True)
        attn(x).sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape
        c3 = C3_DAttention(64, 64, n=2, fmapsize=[4, 4]).eval()
        with torch.no_grad():
            assert c3(torch.randn(1, 64, 4, 4)).shape == (1, 64, 4, 4)
        model = build_model("yolov5_C3_DAttention.yaml", scale="n").eval()
        with torch.no_grad():
            preds, _ = model(torch.zeros(1, 3, 64, 64))
        assert preds.shape[-1] == 85
        assert count_flops(model, 64) > 0 and stock_profile_gflops(model, 64) is not None
        assert "C3_DAttention" in summary(model, img=64)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["--cfg", "yolov5n.yaml", "--img", "64", "--stock-profile"]) == 0
        assert "YOLOv5n summary:" in out.getvalue()
        loaded = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
        assert not loaded, loaded
        print("core ok")
        """
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "core ok" in r.stdout
