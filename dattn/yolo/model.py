"""Build YOLOv5 models from yaml files, following the rules of YOLOv5's ``parse_model`` (v7.0).

A yaml lists layers as ``[from, number, module, args]``. The parser

* scales ``number`` by ``depth_multiple``: ``max(round(n * gd), 1)`` when n > 1;
* for conv-like modules takes c1 from the ``from`` layer, scales the output width c2 by ``width_multiple``
  and rounds it up to a multiple of 8 (except when c2 equals the Detect output size), and prepends (c1, c2)
  to the arguments; C3-like modules (C3, C3_DAttention) get the repeat count inserted as their 3rd argument
  and are built once;
* gives Concat the sum of its inputs' channels, and Detect/Segment the list of their inputs' channels;
* keeps in ``save`` every layer index that a later layer reads through ``from``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from .common import C3, SPPF, Bottleneck, Concat, Conv
from .fused import Bottleneck_DAttention, C3_DAttention
from .heads import Detect, Segment

#: depth_multiple, width_multiple of YOLOv5's n/s/m/l/x models
SCALES: dict[str, tuple[float, float]] = {
    "n": (0.33, 0.25),
    "s": (0.33, 0.50),
    "m": (0.67, 0.75),
    "l": (1.00, 1.00),
    "x": (1.33, 1.25),
}

#: names a yaml file may use for its modules
MODULES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "Bottleneck": Bottleneck,
    "C3": C3,
    "SPPF": SPPF,
    "Concat": Concat,
    "C3_DAttention": C3_DAttention,
    "Bottleneck_DAttention": Bottleneck_DAttention,
    "Detect": Detect,
    "Segment": Segment,
    "nn.Upsample": nn.Upsample,
    "nn.BatchNorm2d": nn.BatchNorm2d,
    "nn.Identity": nn.Identity,
}
CONV_LIKE = {Conv, Bottleneck, SPPF, C3, C3_DAttention, Bottleneck_DAttention, nn.ConvTranspose2d}
REPEAT_IN_ARGS = {C3, C3_DAttention}  # modules that take the repeat count as their 3rd argument
HEADS = (Detect, Segment)


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of divisor that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def shipped_configs() -> list[str]:
    """Names of the yaml files that ship with the package."""
    return sorted(
        p.name for p in resources.files(__package__).joinpath("configs").iterdir() if p.name.endswith(".yaml")
    )


def load_cfg(cfg: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A config dict from a dict, a path to a yaml file, or the name of a shipped yaml (e.g. 'yolov5l.yaml').

    The returned dict is a deep copy and carries ``yaml_file`` (the file name, used in the summary line).
    """
    if isinstance(cfg, Mapping):
        d = copy.deepcopy(dict(cfg))
        d.setdefault("yaml_file", "model.yaml")
        return d
    path = Path(cfg)
    if not path.is_file():
        shipped = resources.files(__package__).joinpath("configs", path.name)
        if not shipped.is_file():
            raise FileNotFoundError(f"no yaml file {str(cfg)!r}; shipped configs are {shipped_configs()}")
        text = shipped.read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    d = yaml.safe_load(text)
    d["yaml_file"] = path.name
    return d


def scale_cfg(cfg: str | Path | Mapping[str, Any], scale: str | None) -> dict[str, Any]:
    """The config with YOLOv5's n/s/m/l/x depth and width multiples (unchanged when scale is None)."""
    d = load_cfg(cfg)
    if scale is None:
        return d
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    d["depth_multiple"], d["width_multiple"] = SCALES[scale]
    d["scale"] = scale
    return d


def _resolve_arg(a: Any, d: Mapping[str, Any]) -> Any:
    """yaml names in module arguments: 'nc', 'anchors' (and any other top-level key) and 'None'."""
    if isinstance(a, str):
        if a == "None":
            return None
        if a in d and a not in ("backbone", "head"):
            return copy.deepcopy(d[a])
    return a


def parse_model(d: Mapping[str, Any], ch: int = 3) -> tuple[nn.Sequential, list[int]]:
    """Layers and save list from a config dict (see the module docstring for the rules).

    Every layer gets ``i`` (index), ``f`` (from), ``n`` (repeats after depth scaling), ``type`` (qualified
    class name), ``np`` (parameters) and ``args`` (the arguments it was built with), for the summary table.
    """
    anchors, nc = d["anchors"], d["nc"]
    gd, gw = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    na = len(anchors[0]) // 2 if isinstance(anchors, list) else anchors  # anchors per level
    no = na * (nc + 5)  # Detect output channels
    layers: list[nn.Module] = []
    save: list[int] = []
    chs = [ch]  # output channels of every layer so far (the input first, dropped after layer 0)
    for i, (f, n, name, args) in enumerate(d["backbone"] + d["head"]):
        if name not in MODULES:
            raise ValueError(f"layer {i}: unknown module {name!r}; known modules are {sorted(MODULES)}")
        m = MODULES[name]
        args = [_resolve_arg(a, d) for a in args]
        n = n_ = max(round(n * gd), 1) if n > 1 else n  # depth gain
        if m in CONV_LIKE:
            c1, c2 = chs[f], args[0]
            if c2 != no:  # not the output
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m in REPEAT_IN_ARGS:
                args.insert(2, n)
                n = 1
        elif m is nn.BatchNorm2d:
            args = [chs[f]]
            c2 = chs[f]
        elif m is Concat:
            c2 = sum(chs[x] for x in f)
        elif m in HEADS:
            args.append([chs[x] for x in f])
            if isinstance(args[1], int):  # a number of anchors instead of a list
                args[1] = [list(range(args[1] * 2))] * len(f)
            if m is Segment:
                args[3] = make_divisible(args[3] * gw, 8)
        else:
            c2 = chs[f]
        m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        m_.i, m_.f, m_.n, m_.args = i, f, n_, args
        m_.type = f"{m.__module__}.{m.__qualname__}"
        m_.np = sum(p.numel() for p in m_.parameters())
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(m_)
        if i == 0:
            chs = []
        chs.append(c2)
    return nn.Sequential(*layers), sorted(save)


def initialize_weights(model: nn.Module) -> None:
    """YOLOv5's BatchNorm settings (eps 1e-3, momentum 0.03) and in-place activations."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
        elif isinstance(m, (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)):
            m.inplace = True


class DetectionModel(nn.Module):
    """A YOLOv5 model built from a yaml (a shipped name, a path or a dict), optionally at a scale n/s/m/l/x.

    At build, a dry forward of a ``probe`` x ``probe`` image (256, as YOLOv5) gives the head's strides, and
    the anchors are divided by them. A model whose attention only accepts one map size (``fixed_pe``) needs
    the probe size it was built for.
    """

    def __init__(
        self,
        cfg: str | Path | Mapping[str, Any] = "yolov5l.yaml",
        ch: int = 3,
        nc: int | None = None,
        anchors: Any = None,
        scale: str | None = None,
        probe: int = 256,
    ) -> None:
        super().__init__()
        self.yaml = scale_cfg(cfg, scale)
        self.yaml_file = self.yaml["yaml_file"]
        self.yaml["ch"] = ch = self.yaml.get("ch", ch)
        if nc is not None:
            self.yaml["nc"] = nc
        if anchors is not None:
            self.yaml["anchors"] = anchors
        self.model, self.save = parse_model(copy.deepcopy(self.yaml), ch=ch)
        self.names = [str(i) for i in range(self.yaml["nc"])]
        head = self.model[-1]
        if isinstance(head, HEADS):
            head.inplace = self.yaml.get("inplace", True)
            self._set_strides(head, ch, probe)
            self.stride = head.stride
            head.initialize_biases()
        else:
            self.stride = torch.tensor([32.0])
        initialize_weights(self)

    def _set_strides(self, head: Detect, ch: int, probe: int) -> None:
        """Strides from a dry forward at probe x probe; anchors from pixels to grid units."""
        try:  # shapes are all it needs: fake tensors make the probe free and leave BatchNorm statistics alone
            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
                out = self.forward(torch.zeros(1, ch, probe, probe))
        except ValueError as err:
            raise ValueError(f"the {probe}x{probe} stride probe failed ({err}); build with probe=<size>") from err
        maps = out[0] if isinstance(head, Segment) else out  # train mode: raw maps
        head.stride = torch.tensor([probe / x.shape[-2] for x in maps])  # (nl,)
        a = head.anchors.prod(-1).mean(-1).view(-1)  # mean anchor area per level
        da, ds = a[-1] - a[0], head.stride[-1] - head.stride[0]
        if da and da.sign() != ds.sign():  # anchors listed large to small: flip them
            head.anchors[:] = head.anchors.flip(0)
        head.anchors /= head.stride.view(-1, 1, 1)

    def forward(self, x: torch.Tensor):
        """(B, ch, H, W), H and W multiples of the largest stride -> the head's output."""
        y: list[torch.Tensor | None] = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


class SegmentationModel(DetectionModel):
    """DetectionModel whose yaml ends with Segment (default: the seed's segmentation yaml)."""

    def __init__(self, cfg: str | Path | Mapping[str, Any] = "yolov5_C3_DAttention_seg.yaml", **kwargs: Any) -> None:
        super().__init__(cfg, **kwargs)


def build_model(cfg: str | Path | Mapping[str, Any], scale: str | None = None, **kwargs: Any) -> DetectionModel:
    """DetectionModel or SegmentationModel, whichever the yaml's last layer asks for."""
    d = load_cfg(cfg)
    last = (d["backbone"] + d["head"])[-1][2]
    cls = SegmentationModel if last == "Segment" else DetectionModel
    return cls(d, scale=scale, **kwargs)
