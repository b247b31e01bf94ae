"""The seed post's own DAttention, executed from the post's text, for equivalence tests.

The code is read at test time from ``shared/seed`` beside the checkout (or ``$DATTN_SEED_DIR``); it is
never copied into the project. Returns None when the post is not there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import einops
import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

SEED_DIRS = [Path(os.environ["DATTN_SEED_DIR"])] if "DATTN_SEED_DIR" in os.environ else []
SEED_DIRS.append(Path(__file__).resolve().parents[2] / "shared" / "seed")


def seed_text() -> str | None:
    for d in SEED_DIRS:
        for path in sorted(d.glob("*.txt")) if d.is_dir() else []:
            text = path.read_text(encoding="utf-8")
            if "class DAttention" in text:
                return text
    return None


def seed_namespace() -> dict | None:
    """Exec the post's LayerNormProxy and DAttention; their names are keys of the returned dict."""
    text = seed_text()
    if text is None:
        return None
    start = text.index("class LayerNormProxy")
    stop = text.index("class Bottleneck_DAttention")
    code = text[start:stop].replace("\u00a0", " ")
    code = re.sub(r"[ \t]+$", "", code, flags=re.M)
    ns: dict = {"torch": torch, "nn": nn, "F": F, "einops": einops, "np": np,
                "trunc_normal_": trunc_normal_}
    exec(compile(code, "seed_post_DAttention", "exec"), ns)
    return ns
