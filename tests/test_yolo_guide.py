"""The guide for the real ultralytics/yolov5 repository: its snippets run, and it names the seed's bugs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import dattn.yolo
from dattn.attention import DAttention
from dattn.yolo.common import C3, Conv

GUIDE = Path(dattn.yolo.__file__).with_name("ultralytics_guide.md")


def snippet(name: str, lang: str = "python") -> str:
    """The fenced block that follows ``<!-- snippet: name -->`` in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    m = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```{lang}\n(.*?)```", text, re.S)
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
        "from dattn import DAttention",
        "--weights yolov5s.pt",
        "hyp.scratch-high.yaml",
        "yolov5_C3_DAttention_seg.yaml",
        "attn_kwargs",
        "setuptools<81",
        "numpy<2",
        "Pillow<10",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
        "Arial.ttf",
        "YOLOv5_AUTOINSTALL",
        "4·C·HW·Ns",
        "--stock-profile",
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
    assert len(blocks) >= 2
    for b in blocks:
        compile(b, GUIDE.name, "exec")


def test_seed_style_super_call_fails_on_stock_bottleneck():
    """The first bug, reproduced: passing k to YOLOv5's bottleneck."""

    class SeedStyle(StockBottleneck):
        def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
            super().__init__(c1, c2, shortcut, g, k, e)

    with pytest.raises(TypeError, match="positional argument"):
        SeedStyle(8, 8)


def test_edit_2_is_one_import_from_dattn():
    code = snippet("common.py imports")
    assert len([line for line in code.splitlines() if line.strip()]) == 1
    ns: dict = {}
    exec(code, ns)
    assert ns["DAttention"] is DAttention


def test_common_snippet_builds_the_seed_layer():
    """Executed in a namespace like YOLOv5's models/common.py (whose Bottleneck has no k)."""
    ns = {"nn": nn, "torch": torch, "Conv": Conv, "C3": C3, "Bottleneck": StockBottleneck}
    exec(snippet("common.py imports"), ns)
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


def test_parse_model_diff_registers_c3_dattention():
    """The diff, applied the way make test-yolov5 applies it, to the two sets of a v7.0-like parse_model; then the
    edited branch runs on the seed's layer 8 with stand-ins for YOLOv5's other classes."""
    from tests.yolov5.prepare import apply_diff

    diff = snippet("yolo.py", "diff")
    lines = diff.splitlines()[2:]  # after the --- and +++ headers
    assert sum(x.startswith("-") for x in lines) == sum(x.startswith("+") for x in lines) == 2  # two lines changed
    before = "\n".join(line[1:] for line in lines if line[:1] in " -")
    after = apply_diff(before, diff)
    assert after.count("C3_DAttention") == 2 and before.count("C3_DAttention") == 0
    body = textwrap.dedent(after.split("\n", 1)[1].rsplit("\n", 1)[0])  # from `if m in {` to `n = 1`
    code = "def parse_model(m, ch, f, args, no, gw, n):\n" + textwrap.indent(body, "    ") + "\n    return args, n\n"
    names = set(re.findall(r"\b([A-Z][A-Za-z0-9_]*)\b", body.split(":", 1)[0]))

    class Stub:
        pass

    ns = {name: type(name, (Stub,), {}) for name in names}
    ns.update(nn=nn, C3_DAttention=dattn.yolo.C3_DAttention, make_divisible=dattn.yolo.make_divisible)
    exec(code, ns)
    args, n = ns["parse_model"](dattn.yolo.C3_DAttention, [1024], -1, [1024, [20, 20]], 255, 0.25, 3)
    assert args == [1024, 256, 3, [20, 20]] and n == 1


def test_quoted_stock_profile_output_is_what_the_command_prints(capsys):
    """The guide quotes the last lines of `python -m dattn.yolo ... --stock-profile`: they must be today's."""
    from dattn.yolo.__main__ import main

    text = GUIDE.read_text(encoding="utf-8")
    quoted = re.search(r"<!-- output: stock-profile -->\s*```text\n(.*?)```", text, re.S).group(1).splitlines()
    assert main(["--cfg", "yolov5_C3_DAttention.yaml", "--img", "640", "--stock-profile"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-len(quoted) :] == quoted
    attention = float(re.search(r"([\d.]+) in scaled_dot_product_attention", quoted[-1]).group(1))
    assert attention == round(3 * 4 * 512 * 400 * 400 / 1e9, 2)  # the formula the guide gives
