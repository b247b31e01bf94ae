"""The guide for the real ultralytics/yolov5 repository: its snippets run, and it names the seed's bugs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import dattn.yolo
from dattn.attention import DAttention
from dattn.yolo.common import C3, Conv

GUIDE = Path(dattn.yolo.__file__).with_name("ultralytics_guide.md")


def snippet(name: str) -> str:
    """The fenced python block that follows ``<!-- snippet: name -->`` in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    m = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"no snippet {name!r} in {GUIDE.name}"
    return m.group(1)


class StockBottleneck(nn.Module):
    """YOLOv5 v7.0's bottleneck signature: no ``k``."""

    def __init__(self, c1, c2, shortcut=True, g=1, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2


def test_guide_names_both_bugs_and_the_edits():
    text = GUIDE.read_text(encoding="utf-8")
    for needed in (
        "import torch.nn.functional as F",
        "import einops",
        "TypeError",
        "NameError",
        "parse_model",
        "ZeroDivisionError",
        "models/common.py",
        "models/yolo.py",
    ):
        assert needed in text, needed


def test_python_blocks_compile():
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for b in blocks:
        if b.lstrip().startswith("if m in"):
            b = "def parse_model():\n" + "\n".join("    " + line for line in b.splitlines())
        compile(b, GUIDE.name, "exec")


def test_seed_style_super_call_fails_on_stock_bottleneck():
    """The first bug, reproduced: passing k to YOLOv5's bottleneck."""

    class SeedStyle(StockBottleneck):
        def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
            super().__init__(c1, c2, shortcut, g, k, e)

    with pytest.raises(TypeError, match="positional argument"):
        SeedStyle(8, 8)


def test_common_snippet_builds_the_seed_layer():
    """Executed in a namespace like YOLOv5's models/common.py (whose Bottleneck has no k)."""
    ns = {"nn": nn, "torch": torch, "Conv": Conv, "C3": C3, "Bottleneck": StockBottleneck, "DAttention": DAttention}
    exec(snippet("common.py"), ns)
    m = ns["C3_DAttention"](1024, 1024, 3, [20, 20])
    c_ = 512
    conv = lambda c1, c2, k: c2 * c1 * k * k + 2 * c2  # noqa: E731  conv without bias + BatchNorm
    attention = (128 * 9 + 128 + 2 * 128 + 2 * 128) + 4 * (c_ * c_ + c_) + (c_ * 9 + c_)
    expected = 2 * conv(1024, c_, 1) + conv(2 * c_, 1024, 1) + 3 * (conv(c_, c_, 1) + conv(c_, c_, 3) + attention)
    assert sum(p.numel() for p in m.parameters()) == expected == 13_144_320
    small = ns["C3_DAttention"](32, 32, 1, [2, 2]).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 32, 2, 2)).shape == (1, 32, 2, 2)


def test_parse_model_snippet_registers_c3_dattention():
    """The edited parse_model branch, run on the seed's layer 8 with stand-ins for YOLOv5's other classes."""
    code = snippet("yolo.py")
    names = set(re.findall(r"\b([A-Z][A-Za-z0-9_]*)\b", code.split(":", 1)[0]))
    assert {"C3", "C3_DAttention"} <= names
    assert re.search(r"if m in \{[^}]*C3_DAttention[^}]*\}:[^\n]*\n\s*args\.insert\(2, n\)", code)

    class Stub:
        pass

    ns = {name: type(name, (Stub,), {}) for name in names}
    ns.update(nn=nn, C3_DAttention=dattn.yolo.C3_DAttention, make_divisible=dattn.yolo.make_divisible)
    ns.update(m=dattn.yolo.C3_DAttention, ch=[1024], f=-1, args=[1024, [20, 20]], no=255, gw=0.25, n=3)
    exec(code, ns)
    assert ns["args"] == [1024, 256, 3, [20, 20]] and ns["n"] == 1
